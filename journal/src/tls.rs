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
//! store when it is absent or `system`. A server that asks for a client certificate (`cert`
//! authentication, or `clientcert=verify-ca`/`verify-full` in `pg_hba.conf`) gets the one
//! `sslcert` names (a PEM chain, the client's certificate first) with the key `sslkey` names (an
//! unencrypted PEM key: PKCS#8, PKCS#1 or SEC1); both or neither, and only when given (libpq
//! also looks in `~/.postgresql/`; this does not). TLS is rustls with the ring provider: no
//! system OpenSSL, so the portable wheel needs none.
//!
//! The `postgres` crate knows `sslmode` `disable`, `prefer` and `require` only, and no
//! `sslrootcert`, `sslcert` or `sslkey`: [`split`] takes them out of the URL and hands the crate
//! what it understands.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
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

/// The client's certificate chain and key, PEM files (`sslcert`, `sslkey`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    /// `sslcert`: the client's certificate first, then any intermediates.
    pub cert: PathBuf,
    /// `sslkey`: its private key, unencrypted.
    pub key: PathBuf,
}

/// A URL's TLS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`, if given.
    pub roots: Option<Roots>,
    /// `sslcert` and `sslkey`, if given.
    pub client: Option<ClientCert>,
}

/// Splits `url` into the URL the `postgres` crate is given (its `sslmode` one it knows, no
/// `sslrootcert`, `sslcert` or `sslkey`) and the TLS settings. An `sslmode` libpq does not know,
/// and `sslcert` without `sslkey` or the other way round, are configuration errors naming them.
pub fn split(url: &str) -> JournalResult<(String, Tls)> {
    let mut tls = Tls {
        mode: SslMode::Prefer,
        roots: None,
        client: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), tls));
    };
    let mut kept: Vec<&str> = Vec::new();
    // An empty value is not given (libpq's meaning: its default).
    let mut client_cert: Option<PathBuf> = None;
    let mut client_key: Option<PathBuf> = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = crate::target::query_option(pair);
        match name.as_ref() {
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
            "sslcert" => client_cert = (!value.is_empty()).then(|| PathBuf::from(value.as_ref())),
            "sslkey" => client_key = (!value.is_empty()).then(|| PathBuf::from(value.as_ref())),
            _ => kept.push(pair),
        }
    }
    tls.client = match (client_cert, client_key) {
        (Some(cert), Some(key)) => Some(ClientCert { cert, key }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(tls_error(
                "sslcert needs sslkey (the file with the certificate's private key)",
            ))
        }
        (None, Some(_)) => {
            return Err(tls_error(
                "sslkey needs sslcert (the file with the client certificate)",
            ))
        }
    };
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
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(&e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match &tls.client {
        None => builder.with_no_client_auth(),
        Some(client) => {
            let chain = read_pem("sslcert", &client.cert)?;
            if chain.is_empty() {
                return Err(tls_error(&format!(
                    "sslcert {} holds no certificate",
                    client.cert.display()
                )));
            }
            let key = PrivateKeyDer::from_pem_file(&client.key).map_err(|e| {
                tls_error(&format!(
                    "cannot read sslkey {}: {e} (an unencrypted PEM key is needed: PKCS#8, \
                     PKCS#1 or SEC1)",
                    client.key.display()
                ))
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                tls_error(&format!(
                    "sslkey {} does not go with sslcert {}: {e}",
                    client.key.display(),
                    client.cert.display()
                ))
            })?
        }
    };
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
            for cert in read_pem("sslrootcert", path)? {
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

/// The certificates of the PEM file `path` (the URL option `option` names it).
fn read_pem(option: &str, path: &Path) -> JournalResult<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(&format!("cannot read {option} {}: {e}", path.display())))
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

    /// Settings with `mode` and nothing else.
    fn bare(mode: SslMode) -> Tls {
        Tls {
            mode,
            roots: None,
            client: None,
        }
    }

    /// An empty file named `.pem`, in a directory of this test process's own.
    fn empty_pem() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pmrs-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        empty
    }

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
        let (url, tls) =
            split("postgres://h/db?sslcert=%2Fc%2Fclient.crt&sslmode=verify-full&sslkey=k.pem")
                .unwrap();
        assert_eq!(url, "postgres://h/db?sslmode=require");
        assert_eq!(
            tls.client,
            Some(ClientCert {
                cert: PathBuf::from("/c/client.crt"),
                key: PathBuf::from("k.pem")
            })
        );
        let (_, tls) = split("postgres://h/db?sslcert=&sslkey=").unwrap();
        assert_eq!(tls.client, None, "empty values are not given");
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_the_other_way_round() {
        for (url, named) in [
            ("postgres://h/db?sslcert=c.pem", "sslcert needs sslkey"),
            (
                "postgres://h/db?sslkey=k.pem&sslcert=",
                "sslkey needs sslcert",
            ),
        ] {
            match split(url) {
                Err(JournalError::Config(m)) => assert!(m.contains(named), "{url}: {m}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn client_certificate_files_that_are_missing_or_empty_are_named() {
        let empty = empty_pem();
        let with = |cert: &Path, key: &Path| Tls {
            client: Some(ClientCert {
                cert: cert.to_owned(),
                key: key.to_owned(),
            }),
            ..bare(SslMode::Require)
        };
        let missing = Path::new("/nonexistent/client.crt");
        let err = client_config(&with(missing, &empty)).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot read sslcert /nonexistent/client.crt"),
            "{err}"
        );
        let err = client_config(&with(&empty, &empty)).unwrap_err();
        assert!(err.to_string().contains("holds no certificate"), "{err}");
        // Without TLS no certificate is read (libpq's meaning).
        assert!(client_config(&Tls {
            mode: SslMode::Disable,
            ..with(missing, missing)
        })
        .unwrap()
        .is_none());
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
        /// unchanged and in order, sslmode is the last one and mapped, sslrootcert, sslcert
        /// and sslkey are taken out and decoded.
        #[test]
        fn split_keeps_other_options_and_takes_out_its_own(
            others in proptest::collection::vec(("[a-z_]{1,12}", "[A-Za-z0-9%._-]{0,12}"), 0..6),
            mode in proptest::option::of(0..MODES.len()),
            root in proptest::option::of("[a-z/._-]{1,20}"),
            mode_at in 0usize..7,
            root_at in 0usize..8,
            client in proptest::option::of(("[a-z/._-]{1,20}", "[a-z/._-]{1,20}")),
            cert_at in 0usize..9,
            key_at in 0usize..10,
        ) {
            let others: Vec<(String, String)> = others
                .into_iter()
                .filter(|(k, _)| !matches!(k.as_str(), "sslmode" | "sslrootcert" | "sslcert" | "sslkey"))
                .collect();
            let mut pairs: Vec<String> = others.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if let Some(m) = mode {
                pairs.insert(mode_at.min(pairs.len()), format!("sslmode={}", MODES[m].0));
            }
            if let Some(r) = &root {
                let encoded = r.replace('/', "%2F");
                pairs.insert(root_at.min(pairs.len()), format!("sslrootcert={encoded}"));
            }
            if let Some((cert, key)) = &client {
                let cert = cert.replace('/', "%2F");
                pairs.insert(cert_at.min(pairs.len()), format!("sslcert={cert}"));
                pairs.insert(key_at.min(pairs.len()), format!("sslkey={key}"));
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
            let client_expected = client.as_ref().map(|(c, k)| ClientCert {
                cert: PathBuf::from(c),
                key: PathBuf::from(k),
            });
            prop_assert_eq!(tls.client, client_expected);
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
            roots: Some(Roots::File(PathBuf::from("/nonexistent/ca.pem"))),
            ..bare(SslMode::VerifyFull)
        };
        let err = client_config(&missing).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let err = client_config(&Tls {
            roots: Some(Roots::File(empty_pem())),
            ..bare(SslMode::VerifyCa)
        })
        .unwrap_err();
        assert!(err.to_string().contains("holds no certificate"), "{err}");
    }

    #[test]
    fn modes_without_a_check_need_no_certificates() {
        assert!(client_config(&bare(SslMode::Disable)).unwrap().is_none());
        for mode in [SslMode::Prefer, SslMode::Require] {
            assert!(client_config(&bare(mode)).unwrap().is_some());
        }
    }
}
