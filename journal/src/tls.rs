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
//! The trusted authorities are the PEM file `sslrootcert` names; when it names none, libpq's
//! `~/.postgresql/root.crt` if that file exists (which makes `require` check the chain, as libpq
//! does), else the system's certificate store (where libpq would refuse the verify modes);
//! `sslrootcert=system` is the system's store. A server that asks for a client certificate (`cert`
//! authentication, or `clientcert=verify-ca`/`verify-full` in `pg_hba.conf`) gets the one `sslcert`
//! names, else `~/.postgresql/postgresql.crt` if it exists (a PEM chain, the client's certificate
//! first), with the key `sslkey` names, else `~/.postgresql/postgresql.key` (a PEM key: PKCS#8,
//! PKCS#1 or SEC1, or encrypted PKCS#8 opened with `sslpassword`). As libpq, the key file must be a
//! regular file that other users cannot read (`0600`, or `0640` when root owns it). TLS is rustls
//! with the ring provider: no system OpenSSL, so the portable wheel needs none.
//!
//! Options the URL does not give come from `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT` and
//! `PGSSLKEY` ([`crate::environment`]).
//!
//! The `postgres` crate knows `sslmode` `disable`, `prefer` and `require` only, and no
//! `sslrootcert`, `sslcert`, `sslkey` or `sslpassword`: [`split`] takes them out of the URL and
//! hands the crate what it understands.

use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use position_manager_core::persist::{read_bounded, BoundedReadError};

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
    /// The mode libpq's name `text` stands for.
    pub(crate) fn parse(text: &str) -> Option<SslMode> {
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

/// A URL's TLS settings, as given (the files libpq would look for in `~/.postgresql/` are
/// found when connecting: [`client_config`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`, if given.
    pub roots: Option<Roots>,
    /// `sslcert`, if given.
    pub cert: Option<PathBuf>,
    /// `sslkey`, if given.
    pub key: Option<PathBuf>,
    /// `sslpassword`, if given: the passphrase of an encrypted `sslkey`.
    pub key_password: Option<String>,
}

/// The files libpq reads from `~/.postgresql/` when the URL names none.
const DEFAULT_ROOTS: &str = "root.crt";
const DEFAULT_CERT: &str = "postgresql.crt";
const DEFAULT_KEY: &str = "postgresql.key";

/// Splits `url` into the URL the `postgres` crate is given (its `sslmode` one it knows, no
/// `sslrootcert`, `sslcert`, `sslkey` or `sslpassword`) and the TLS settings. An `sslmode` libpq
/// does not know is a configuration error naming it.
pub fn split(url: &str) -> JournalResult<(String, Tls)> {
    let mut tls = Tls {
        mode: SslMode::Prefer,
        roots: None,
        cert: None,
        key: None,
        key_password: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), tls));
    };
    let mut kept: Vec<&str> = Vec::new();
    // An empty value is not given (libpq's meaning: its default).
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = crate::target::query_option(pair);
        match name.as_ref() {
            "sslmode" => {
                tls.mode = SslMode::parse(&value).ok_or_else(|| {
                    JournalError::Config(format!(
                        "journal sslmode must be disable, allow, prefer, require, verify-ca or \
                         verify-full, got {:?}",
                        crate::target::redact_value(&value)
                    ))
                })?;
            }
            "sslrootcert" => {
                tls.roots = Some(match value.as_ref() {
                    "" | "system" => Roots::System,
                    path => Roots::File(PathBuf::from(path)),
                });
            }
            "sslcert" => tls.cert = (!value.is_empty()).then(|| PathBuf::from(value.as_ref())),
            "sslkey" => tls.key = (!value.is_empty()).then(|| PathBuf::from(value.as_ref())),
            "sslpassword" => tls.key_password = (!value.is_empty()).then(|| value.into_owned()),
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

/// The rustls configuration for `tls` (`None` for `sslmode=disable`), with the files libpq
/// would read from `~/.postgresql/` where the URL names none.
pub fn client_config(tls: &Tls) -> JournalResult<Option<ClientConfig>> {
    configure(tls, std::env::home_dir().as_deref())
}

/// [`client_config`], with `home` as the user's home directory.
fn configure(tls: &Tls, home: Option<&Path>) -> JournalResult<Option<ClientConfig>> {
    if tls.mode == SslMode::Disable {
        // Without TLS no file is read (libpq's meaning).
        return Ok(None);
    }
    let files = Files::find(tls, home)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let check = match (tls.mode, &files.roots) {
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
            let roots = trusted(files.roots.as_ref().unwrap_or(&Roots::System))?;
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
    let config = match &files.client {
        None => builder.with_no_client_auth(),
        Some(client) => {
            let chain = read_pem("sslcert", &client.cert)?;
            if chain.is_empty() {
                return Err(tls_error(&format!(
                    "sslcert {} holds no certificate",
                    client.cert.display()
                )));
            }
            let key = read_key(&client.key, tls.key_password.as_deref())?;
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

/// The files a connection uses: those the URL names, else libpq's in `~/.postgresql/`.
struct Files {
    /// The trusted authorities; `None`: none named and no `root.crt` (the system's store for
    /// the verify modes, nothing checked under `require`).
    roots: Option<Roots>,
    /// The client certificate and its key, when there is a certificate.
    client: Option<ClientCert>,
}

impl Files {
    /// libpq's rules: a default file is used when it exists; a named root or certificate file
    /// must exist (libpq skips a named certificate that does not; a typo is better named);
    /// a certificate needs its key, and the key must pass [`check_key_file`]. A key named with
    /// no certificate at all is an error too (libpq ignores it; it can only be a mistake).
    fn find(tls: &Tls, home: Option<&Path>) -> JournalResult<Files> {
        let dir = home.map(|h| h.join(".postgresql"));
        let default = |name: &str| -> JournalResult<Option<PathBuf>> {
            match &dir {
                Some(dir) => present(&dir.join(name)),
                None => Ok(None),
            }
        };
        let roots = match &tls.roots {
            Some(roots) => Some(roots.clone()),
            None => default(DEFAULT_ROOTS)?.map(Roots::File),
        };
        let cert = match &tls.cert {
            Some(cert) => Some(cert.clone()),
            None => default(DEFAULT_CERT)?,
        };
        let client = match (cert, &tls.key) {
            (None, None) => None,
            (None, Some(key)) => {
                return Err(tls_error(&format!(
                    "sslkey {} has no certificate to go with it: name the client certificate \
                     with sslcert{}",
                    key.display(),
                    match &dir {
                        Some(dir) => format!(" (there is no {})", dir.join(DEFAULT_CERT).display()),
                        None => String::new(),
                    }
                )))
            }
            (Some(cert), key) => {
                if let Err(e) = std::fs::metadata(&cert) {
                    return Err(tls_error(&format!(
                        "cannot read sslcert {}: {e}",
                        cert.display()
                    )));
                }
                let key = match (key, &dir) {
                    (Some(key), _) => key.clone(),
                    (None, Some(dir)) => dir.join(DEFAULT_KEY),
                    (None, None) => {
                        return Err(tls_error(&format!(
                            "sslcert {} needs sslkey (the file with the certificate's private \
                             key)",
                            cert.display()
                        )))
                    }
                };
                check_key_file(&cert, &key)?;
                Some(ClientCert { cert, key })
            }
        };
        Ok(Files { roots, client })
    }
}

/// `path` if the file exists, `None` if it (or a directory on its way) does not; another
/// failure to look (no permission) is an error naming it.
fn present(path: &Path) -> JournalResult<Option<PathBuf>> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(Some(path.to_owned())),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
        Err(e) => Err(tls_error(&format!(
            "cannot look for {}: {e}",
            path.display()
        ))),
    }
}

/// The largest certificate or key file read: 16 MiB. A PEM certificate takes a few KiB and a
/// system's whole bundle of authorities well under 1 MiB; a larger file is refused before it
/// is read, so a wrong or hostile path cannot exhaust memory.
pub const MAX_TLS_FILE_BYTES: u64 = 16 << 20;

/// The file `path` that the URL option `option` names must be a regular file (a FIFO or a
/// device such as `/dev/zero` is never read) of at most [`MAX_TLS_FILE_BYTES`].
fn check_tls_file(option: &str, path: &Path, meta: &std::fs::Metadata) -> JournalResult<()> {
    if !meta.is_file() {
        return Err(not_regular(option, path));
    }
    if meta.len() > MAX_TLS_FILE_BYTES {
        return Err(too_large(option, path, meta.len()));
    }
    Ok(())
}

fn not_regular(option: &str, path: &Path) -> JournalError {
    tls_error(&format!(
        "{option} {} is not a regular file",
        path.display()
    ))
}

fn too_large(option: &str, path: &Path, size: u64) -> JournalError {
    tls_error(&format!(
        "{option} {} is {size} bytes, more than the {MAX_TLS_FILE_BYTES} a certificate or key \
         file may have",
        path.display()
    ))
}

/// The bytes of the file `path` that the URL option `option` names, read as [`check_tls_file`]
/// requires ([`read_bounded`]: checked again on the open file, which is opened without
/// blocking in case it was swapped for a FIFO, and at most [`MAX_TLS_FILE_BYTES`] read, so a
/// file that grows meanwhile is refused too).
fn read_tls_file(option: &str, path: &Path) -> JournalResult<Vec<u8>> {
    let cannot = |why: &dyn fmt::Display| {
        tls_error(&format!("cannot read {option} {}: {why}", path.display()))
    };
    read_bounded(path, MAX_TLS_FILE_BYTES).map_err(|e| match e {
        BoundedReadError::Io(e) => cannot(&e),
        BoundedReadError::NotRegular(_) => not_regular(option, path),
        BoundedReadError::TooLarge(size) => too_large(option, path, size),
        BoundedReadError::NoMemory(size) => cannot(&format!("no memory for its {size} bytes")),
    })
}

/// The private key `key` of the certificate `cert` must be a regular file ([`check_tls_file`])
/// others cannot read, as libpq requires ([`key_access_problem`]; a key others can read is no
/// longer private).
fn check_key_file(cert: &Path, key: &Path) -> JournalResult<()> {
    let meta = std::fs::metadata(key).map_err(|e| {
        tls_error(&format!(
            "sslcert {} needs its private key, and sslkey {} cannot be read: {e}",
            cert.display(),
            key.display()
        ))
    })?;
    check_tls_file("sslkey", key, &meta)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Some(why) = key_access_problem(meta.uid(), meta.mode()) {
            return Err(tls_error(&format!("sslkey {}: {why}", key.display())));
        }
    }
    Ok(())
}

/// Why a key file owned by the user id `owner` with permission bits `mode` is refused (libpq's
/// rule, checked against `psql`): a file of root's may give its group read access (`0640` at
/// most: a key shared through a group), any other file must give the group and others nothing
/// (`0600` at most).
#[cfg_attr(not(unix), allow(dead_code))]
fn key_access_problem(owner: u32, mode: u32) -> Option<String> {
    let (forbidden, limit) = if owner == 0 {
        (0o037, "0640")
    } else {
        (0o077, "0600")
    };
    (mode & forbidden != 0).then(|| {
        format!(
            "other users may read or change the key (permissions {:04o}); make it {limit} or \
             less (chmod {})",
            mode & 0o7777,
            &limit[1..]
        )
    })
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

/// The private key in the PEM file `path` (`sslkey`): unencrypted (PKCS#8, PKCS#1 or SEC1), or
/// an encrypted PKCS#8 key (`BEGIN ENCRYPTED PRIVATE KEY`: what OpenSSL 3 writes when asked
/// for a passphrase; PBES2 with AES-CBC and PBKDF2 or scrypt) opened with `password`
/// (`sslpassword`).
fn read_key(path: &Path, password: Option<&str>) -> JournalResult<PrivateKeyDer<'static>> {
    let cannot = |why: &dyn fmt::Display| {
        tls_error(&format!("cannot read sslkey {}: {why}", path.display()))
    };
    let text = String::from_utf8(read_tls_file("sslkey", path)?)
        .map_err(|_| cannot(&"stream did not contain valid UTF-8"))?;
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let Some(password) = password else {
            return Err(tls_error(&format!(
                "sslkey {} is encrypted: give its passphrase with sslpassword",
                path.display()
            )));
        };
        let (label, der) =
            pkcs8::der::pem::decode_vec(text.trim().as_bytes()).map_err(|e| cannot(&e))?;
        if label != "ENCRYPTED PRIVATE KEY" {
            return Err(cannot(&format!(
                "a PEM block {label:?} where a key was expected"
            )));
        }
        let encrypted =
            pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice()).map_err(|e| cannot(&e))?;
        let key = encrypted.decrypt(password).map_err(|_| {
            tls_error(&format!(
                "sslkey {} cannot be opened with the sslpassword given (a wrong passphrase, \
                 or a cipher other than AES-CBC with PBKDF2 or scrypt)",
                path.display()
            ))
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.as_bytes().to_vec(),
        )));
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(cannot(
            &"it is encrypted in OpenSSL's old format, which is not supported; convert it \
              with openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD -out NEW",
        ));
    }
    PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|e| {
        cannot(&format!(
            "{e} (a PEM key is needed: PKCS#8, PKCS#1 or SEC1, or an encrypted PKCS#8 one)"
        ))
    })
}

/// The certificates of the PEM file `path` (the URL option `option` names it), read by
/// [`read_tls_file`] and parsed from its bytes.
fn read_pem(option: &str, path: &Path) -> JournalResult<Vec<CertificateDer<'static>>> {
    let bytes = read_tls_file(option, path)?;
    CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
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
    use crate::environment::testing::{set_mode, write_with_mode};

    /// Settings with `mode` and nothing else.
    fn bare(mode: SslMode) -> Tls {
        Tls {
            mode,
            roots: None,
            cert: None,
            key: None,
            key_password: None,
        }
    }

    /// An empty file named `.pem`, in a directory of this test process's own.
    fn empty_pem() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pmrs-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        // Private, so it may stand for a key too.
        write_with_mode(&empty, "", 0o600);
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
        assert_eq!(tls.cert, Some(PathBuf::from("/c/client.crt")));
        assert_eq!(tls.key, Some(PathBuf::from("k.pem")));
        let (_, tls) = split("postgres://h/db?sslcert=&sslkey=").unwrap();
        assert_eq!(
            (tls.cert, tls.key),
            (None, None),
            "empty values are not given"
        );
        // One without the other is for the connection to settle (libpq's defaults).
        let (_, tls) = split("postgres://h/db?sslcert=c.pem").unwrap();
        assert_eq!((tls.cert, tls.key), (Some(PathBuf::from("c.pem")), None));
    }

    /// A home directory of this test's own, with `files` in its `.postgresql/` (key files
    /// `0600`).
    fn home_with(files: &[&str]) -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(".postgresql");
        std::fs::create_dir(&dir).unwrap();
        for name in files {
            write_with_mode(&dir.join(name), "", 0o600);
        }
        home
    }

    fn config_error(tls: &Tls, home: Option<&Path>) -> String {
        match Files::find(tls, home) {
            Err(JournalError::Config(m)) => m,
            Err(e) => panic!("not a configuration error: {e}"),
            Ok(files) => panic!("accepted: {:?} {:?}", files.roots, files.client),
        }
    }

    #[test]
    fn files_not_named_are_read_from_the_home_directory_as_libpq_reads_them() {
        let require = bare(SslMode::Require);
        // Nothing there, or no home: no roots, no client certificate.
        for home in [Some(home_with(&[])), None] {
            let files = Files::find(&require, home.as_ref().map(|h| h.path())).unwrap();
            assert_eq!((files.roots, files.client), (None, None));
        }
        let home = home_with(&[DEFAULT_ROOTS, DEFAULT_CERT, DEFAULT_KEY]);
        let dir = home.path().join(".postgresql");
        let files = Files::find(&require, Some(home.path())).unwrap();
        assert_eq!(files.roots, Some(Roots::File(dir.join("root.crt"))));
        assert_eq!(
            files.client,
            Some(ClientCert {
                cert: dir.join("postgresql.crt"),
                key: dir.join("postgresql.key"),
            })
        );
        // What the URL names wins, file by file.
        let named = home_with(&["ca.pem", "me.crt", "me.key"]);
        let own = named.path().join(".postgresql");
        let files = Files::find(
            &Tls {
                roots: Some(Roots::System),
                cert: Some(own.join("me.crt")),
                ..bare(SslMode::VerifyFull)
            },
            Some(home.path()),
        )
        .unwrap();
        assert_eq!(files.roots, Some(Roots::System));
        assert_eq!(
            files.client.map(|c| (c.cert, c.key)),
            Some((own.join("me.crt"), dir.join("postgresql.key")))
        );
        let files = Files::find(
            &Tls {
                key: Some(own.join("me.key")),
                ..require.clone()
            },
            Some(home.path()),
        )
        .unwrap();
        assert_eq!(files.client.map(|c| c.key), Some(own.join("me.key")));
        // A root file alone: require then checks the chain (as libpq), nothing else is read.
        let roots_only = home_with(&[DEFAULT_ROOTS]);
        let files = Files::find(&require, Some(roots_only.path())).unwrap();
        assert!(matches!(files.roots, Some(Roots::File(_))));
        assert_eq!(files.client, None);
        // Without TLS nothing is read at all.
        let broken = home_with(&[DEFAULT_CERT]);
        assert!(configure(&bare(SslMode::Disable), Some(broken.path()))
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_a_key_its_certificate() {
        // The default certificate without the default key: the key's path is named.
        let home = home_with(&[DEFAULT_CERT]);
        let m = config_error(&bare(SslMode::Prefer), Some(home.path()));
        assert!(
            m.contains("needs its private key")
                && m.contains(".postgresql/postgresql.key")
                && m.contains("cannot be read"),
            "{m}"
        );
        // A named certificate and no home to find a key in.
        let cert = home.path().join(".postgresql").join(DEFAULT_CERT);
        let m = config_error(
            &Tls {
                cert: Some(cert.clone()),
                ..bare(SslMode::Require)
            },
            None,
        );
        assert!(m.contains("needs sslkey"), "{m}");
        // A named certificate that does not exist is named, not skipped.
        let m = config_error(
            &Tls {
                cert: Some(PathBuf::from("/nonexistent/client.crt")),
                key: Some(cert.clone()),
                ..bare(SslMode::Require)
            },
            None,
        );
        assert!(
            m.contains("cannot read sslcert /nonexistent/client.crt"),
            "{m}"
        );
        // A key with no certificate anywhere.
        let empty = home_with(&[]);
        let key = Tls {
            key: Some(PathBuf::from("k.pem")),
            ..bare(SslMode::Require)
        };
        let m = config_error(&key, Some(empty.path()));
        assert!(
            m.contains("sslkey k.pem has no certificate") && m.contains("postgresql.crt"),
            "{m}"
        );
        assert!(config_error(&key, None).contains("has no certificate"));
    }

    #[test]
    fn a_key_file_must_be_private_and_regular() {
        let home = home_with(&[DEFAULT_CERT, DEFAULT_KEY]);
        let dir = home.path().join(".postgresql");
        let tls = bare(SslMode::Require);
        assert!(Files::find(&tls, Some(home.path()))
            .unwrap()
            .client
            .is_some());
        #[cfg(unix)]
        for (mode, shown) in [(0o644, "0644"), (0o604, "0604"), (0o660, "0660")] {
            set_mode(&dir.join(DEFAULT_KEY), mode);
            let m = config_error(&tls, Some(home.path()));
            assert!(
                m.contains("postgresql.key")
                    && m.contains(&format!("permissions {shown}"))
                    && m.contains("chmod 6"),
                "{m}"
            );
        }
        set_mode(&dir.join(DEFAULT_KEY), 0o400);
        assert!(
            Files::find(&tls, Some(home.path())).is_ok(),
            "read-only for its owner"
        );
        let m = config_error(
            &Tls {
                key: Some(dir.clone()),
                ..tls.clone()
            },
            Some(home.path()),
        );
        assert!(m.contains("is not a regular file"), "{m}");
    }

    #[test]
    fn key_permissions_follow_libpqs_rule() {
        for (owner, mode, refused) in [
            (1000, 0o100600, false),
            (1000, 0o400, false),
            (1000, 0o700, false),
            (1000, 0o640, true),
            (1000, 0o604, true),
            (1000, 0o610, true),
            (0, 0o600, false),
            (0, 0o640, false),
            (0, 0o660, true),
            (0, 0o650, true),
            (0, 0o644, true),
        ] {
            let problem = key_access_problem(owner, mode);
            assert_eq!(
                problem.is_some(),
                refused,
                "owner {owner} mode {mode:o}: {problem:?}"
            );
            if let Some(why) = problem {
                let limit = if owner == 0 { "chmod 640" } else { "chmod 600" };
                assert!(why.contains(limit), "{why}");
            }
        }
    }

    #[test]
    fn client_certificate_files_that_are_missing_or_empty_are_named() {
        let empty = empty_pem();
        let with = |cert: &Path, key: &Path| Tls {
            cert: Some(cert.to_owned()),
            key: Some(key.to_owned()),
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
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "sslmode" | "sslrootcert" | "sslcert" | "sslkey" | "sslpassword"
                    )
                })
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
            prop_assert_eq!(tls.cert, client.as_ref().map(|(c, _)| PathBuf::from(c)));
            prop_assert_eq!(tls.key, client.as_ref().map(|(_, k)| PathBuf::from(k)));
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
