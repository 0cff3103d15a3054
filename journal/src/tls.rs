//! TLS for PostgreSQL journals, with libpq's `sslmode` meanings, so a `DATABASE_URL` that works
//! with `psql` works here too.
//!
//! | `sslmode` | encrypted | the server's certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow`, `prefer` (the default) | when the server offers TLS | not checked |
//! | `require` | always | not checked; with `sslrootcert`, checked as `verify-ca` |
//! | `verify-ca` | always | signed by a trusted authority |
//! | `verify-full` | always | signed by a trusted authority and naming the host |
//!
//! The trusted authorities are the PEM file `sslrootcert` names, or the system's certificate
//! store when it is absent or `system`. TLS is rustls with the ring provider: no system OpenSSL,
//! so the portable wheel needs none. Client certificates (`sslcert`, `sslkey`) are not supported.
//!
//! The `postgres` crate knows `sslmode` `disable`, `prefer` and `require` only, and no
//! `sslrootcert`: [`split`] takes both out of the URL and hands the crate what it understands.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::{JournalError, JournalResult};

/// What a URL's `sslmode` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, its certificate not checked (`allow` and `prefer`).
    Prefer,
    /// TLS always, the certificate not checked (checked as `VerifyCa` with a root file).
    Require,
    /// TLS always, the certificate's chain checked.
    VerifyCa,
    /// TLS always, the chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Option<SslMode> {
        Some(match text {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// Where the trusted authorities come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roots {
    /// The system's certificate store.
    System,
    /// A PEM file.
    File(PathBuf),
}

/// A URL's TLS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`, if given.
    pub roots: Option<Roots>,
}

/// Splits `url` into the URL the `postgres` crate is given (its `sslmode` one it knows, no
/// `sslrootcert`) and the TLS settings. An `sslmode` libpq does not know is a configuration
/// error naming it.
pub fn split(url: &str) -> JournalResult<(String, Tls)> {
    let mut tls = Tls {
        mode: SslMode::Prefer,
        roots: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), tls));
    };
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode_str(value).decode_utf8_lossy();
        match percent_decode_str(key).decode_utf8_lossy().as_ref() {
            "sslmode" => {
                tls.mode = SslMode::parse(&value).ok_or_else(|| {
                    JournalError::Config(format!(
                        "journal sslmode must be disable, allow, prefer, require, verify-ca or \
                         verify-full, got {value:?}"
                    ))
                })?;
            }
            "sslrootcert" => {
                tls.roots = Some(match value.as_ref() {
                    "" | "system" => Roots::System,
                    path => Roots::File(PathBuf::from(path)),
                });
            }
            _ => kept.push(pair),
        }
    }
    kept.push(match tls.mode {
        SslMode::Disable => "sslmode=disable",
        SslMode::Prefer => "sslmode=prefer",
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "sslmode=require",
    });
    Ok((format!("{base}?{}", kept.join("&")), tls))
}

/// The rustls configuration for `tls` (`None` for `sslmode=disable`).
pub fn client_config(tls: &Tls) -> JournalResult<Option<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let check = match (tls.mode, &tls.roots) {
        (SslMode::Disable, _) => return Ok(None),
        (SslMode::Prefer, _) | (SslMode::Require, None) => Check::Nothing,
        (SslMode::Require | SslMode::VerifyCa, _) => Check::Chain,
        (SslMode::VerifyFull, _) => Check::ChainAndName,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        Check::Nothing => Arc::new(Verifier {
            provider: provider.clone(),
            chain: None,
        }),
        Check::Chain | Check::ChainAndName => {
            let roots = trusted(tls.roots.as_ref().unwrap_or(&Roots::System))?;
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| tls_error(&format!("cannot use the trusted certificates: {e}")))?;
            if check == Check::Chain {
                Arc::new(Verifier {
                    provider: provider.clone(),
                    chain: Some(webpki),
                })
            } else {
                webpki
            }
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(&e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Some(config))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    Nothing,
    Chain,
    ChainAndName,
}

fn tls_error(why: &str) -> JournalError {
    JournalError::Config(format!("journal TLS: {why}"))
}

/// The trusted authorities `roots` names.
fn trusted(roots: &Roots) -> JournalResult<Arc<RootCertStore>> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            for cert in read_pem(path)? {
                store
                    .add(cert)
                    .map_err(|e| tls_error(&format!("sslrootcert {}: {e}", path.display())))?;
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            // Certificates the store holds but rustls cannot use are skipped, as libpq skips
            // what OpenSSL cannot parse.
            store.add_parsable_certificates(found.certs);
        }
    }
    if store.is_empty() {
        return Err(tls_error(&match roots {
            Roots::File(path) => format!("sslrootcert {} holds no certificate", path.display()),
            Roots::System => "the system's certificate store is empty or unreadable; name a \
                              PEM file with sslrootcert"
                .to_owned(),
        }));
    }
    Ok(Arc::new(store))
}

fn read_pem(path: &Path) -> JournalResult<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(&format!("cannot read sslrootcert {}: {e}", path.display())))
}

/// The certificate check of `sslmode` `prefer`/`require` (none: the connection is encrypted,
/// the server not authenticated, libpq's meaning) and `verify-ca` (the chain must lead to a
/// trusted authority; the name is not checked). Handshake signatures are verified either way.
/// `verify-full` uses rustls' own verifier.
struct Verifier {
    provider: Arc<CryptoProvider>,
    /// The chain check of `verify-ca`; `None` checks nothing.
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.chain {
            None => "Verifier(nothing)",
            Some(_) => "Verifier(chain)",
        })
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            // The chain was verified before the name (webpki checks the name last).
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_maps_libpq_modes_and_takes_out_the_root_file() {
        let (url, tls) = split("postgresql://u@h/db").unwrap();
        assert_eq!(url, "postgresql://u@h/db");
        assert_eq!(tls.mode, SslMode::Prefer);
        let (url, tls) = split(
            "postgresql://u:p@h:5433/db?application_name=bot&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca.pem&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgresql://u:p@h:5433/db?application_name=bot&connect_timeout=5&sslmode=require"
        );
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.roots, Some(Roots::File(PathBuf::from("/etc/ca.pem"))));
        for (given, mode, passed) in [
            ("disable", SslMode::Disable, "disable"),
            ("allow", SslMode::Prefer, "prefer"),
            ("prefer", SslMode::Prefer, "prefer"),
            ("require", SslMode::Require, "require"),
            ("verify-ca", SslMode::VerifyCa, "require"),
        ] {
            let (url, tls) = split(&format!("postgres://h/db?sslmode={given}")).unwrap();
            assert_eq!(tls.mode, mode, "{given}");
            assert_eq!(url, format!("postgres://h/db?sslmode={passed}"), "{given}");
        }
        let (_, tls) = split("postgres://h/db?sslrootcert=system").unwrap();
        assert_eq!(tls.roots, Some(Roots::System));
    }

    use proptest::prelude::*;

    const MODES: [(&str, SslMode, &str); 6] = [
        ("disable", SslMode::Disable, "disable"),
        ("allow", SslMode::Prefer, "prefer"),
        ("prefer", SslMode::Prefer, "prefer"),
        ("require", SslMode::Require, "require"),
        ("verify-ca", SslMode::VerifyCa, "require"),
        ("verify-full", SslMode::VerifyFull, "require"),
    ];

    proptest! {
        // A fixed seed and no regression files: CI replays the same cases.
        #![proptest_config(ProptestConfig {
            cases: 512,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5EED_7150),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Whatever else the query holds, in whatever order: the other options reach the crate
        /// unchanged and in order, sslmode is the last one and mapped, sslrootcert is taken
        /// out and decoded.
        #[test]
        fn split_keeps_other_options_and_takes_out_its_own(
            others in proptest::collection::vec(("[a-z_]{1,12}", "[A-Za-z0-9%._-]{0,12}"), 0..6),
            mode in proptest::option::of(0..MODES.len()),
            root in proptest::option::of("[a-z/._-]{1,20}"),
            mode_at in 0usize..7,
            root_at in 0usize..8,
        ) {
            let others: Vec<(String, String)> = others
                .into_iter()
                .filter(|(k, _)| k != "sslmode" && k != "sslrootcert")
                .collect();
            let mut pairs: Vec<String> = others.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if let Some(m) = mode {
                pairs.insert(mode_at.min(pairs.len()), format!("sslmode={}", MODES[m].0));
            }
            if let Some(r) = &root {
                let encoded = r.replace('/', "%2F");
                pairs.insert(root_at.min(pairs.len()), format!("sslrootcert={encoded}"));
            }
            let url = if pairs.is_empty() {
                "postgresql://u@h:5432/db".to_owned()
            } else {
                format!("postgresql://u@h:5432/db?{}", pairs.join("&"))
            };
            let (crate_url, tls) = split(&url).unwrap();
            let (mode_expected, passed) = match mode {
                Some(m) => (MODES[m].1, MODES[m].2),
                None => (SslMode::Prefer, "prefer"),
            };
            prop_assert_eq!(tls.mode, mode_expected);
            let root_expected = root.as_ref().map(|r| Roots::File(PathBuf::from(r)));
            prop_assert_eq!(tls.roots, root_expected);
            if pairs.is_empty() {
                prop_assert_eq!(crate_url, url);
            } else {
                let mut kept: Vec<String> =
                    others.iter().map(|(k, v)| format!("{k}={v}")).collect();
                kept.push(format!("sslmode={passed}"));
                prop_assert_eq!(crate_url, format!("postgresql://u@h:5432/db?{}", kept.join("&")));
            }
        }
    }

    #[test]
    fn an_unknown_sslmode_is_named() {
        let err = split("postgres://h/db?sslmode=strict").unwrap_err();
        assert!(
            matches!(&err, JournalError::Config(m) if m.contains("\"strict\"")),
            "{err}"
        );
    }

    #[test]
    fn a_root_file_that_is_missing_or_empty_is_a_configuration_error() {
        let missing = Tls {
            mode: SslMode::VerifyFull,
            roots: Some(Roots::File(PathBuf::from("/nonexistent/ca.pem"))),
        };
        let err = client_config(&missing).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let dir = std::env::temp_dir().join(format!("pmrs-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = client_config(&Tls {
            mode: SslMode::VerifyCa,
            roots: Some(Roots::File(empty)),
        })
        .unwrap_err();
        assert!(err.to_string().contains("holds no certificate"), "{err}");
    }

    #[test]
    fn modes_without_a_check_need_no_certificates() {
        assert!(client_config(&Tls {
            mode: SslMode::Disable,
            roots: None
        })
        .unwrap()
        .is_none());
        for mode in [SslMode::Prefer, SslMode::Require] {
            assert!(client_config(&Tls { mode, roots: None }).unwrap().is_some());
        }
    }
}
