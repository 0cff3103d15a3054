//! PostgreSQL over TLS, against the test server `.ci/postgres` starts: TLS on, its certificate
//! signed by a throwaway authority (`PMRS_TEST_POSTGRES_CA`) for the name `localhost` only,
//! and a second authority (`other-ca.pem` beside it) that signed nothing. Each `sslmode` must do
//! what libpq does with the same URL (the `psql` answers are in the comments). The role
//! `pmrs_cert` logs in only with the client certificate `client.crt` (key `client.key`, beside
//! the authority), over TLS, to its database `pmrs_cert`.

use std::path::Path;

use position_manager_journal::postgres::Postgres;
use position_manager_journal::sql::{Sql, Val};
use position_manager_journal::writer::Writer;
use position_manager_journal::{JournalError, SyncMode, Target};

mod common;

use common::{postgres_db, test_server_env};

/// A fresh database and the test server's authority, or `None` (skipped) without a server.
fn server() -> Option<(String, String)> {
    let db = postgres_db()?;
    let ca = test_server_env("PMRS_TEST_POSTGRES_CA")?;
    Some((db, ca))
}

/// Whether the session `url` opens is encrypted, or the connection's error.
fn encrypted(url: &str) -> Result<bool, JournalError> {
    let mut pg = Postgres::connect(url, SyncMode::Full, false)?;
    let rows = pg.query(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )?;
    Ok(rows.first().and_then(|r| r.first()) == Some(&Val::Int(Some(1))))
}

fn refused(url: &str, why: &str) {
    match encrypted(url) {
        Err(JournalError::Database(m)) => assert!(m.contains(why), "{url}: {m}"),
        other => panic!("{url}: expected a refusal ({why}), got {other:?}"),
    }
}

#[test]
fn each_sslmode_does_what_libpq_does() {
    let Some((db, ca)) = server() else { return };
    let other = Path::new(&ca).with_file_name("other-ca.pem");
    let other = other.to_str().unwrap();
    let by_name = db.replacen("127.0.0.1", "localhost", 1);
    assert_ne!(by_name, db);
    let with = |url: &str, query: &str| format!("{url}?{query}");

    // No sslmode is prefer: encrypted when the server offers it (psql: ssl = t).
    assert_eq!(encrypted(&db), Ok(true));
    assert_eq!(encrypted(&with(&db, "sslmode=disable")), Ok(false));
    assert_eq!(encrypted(&with(&db, "sslmode=allow")), Ok(true));
    // require checks no certificate ...
    assert_eq!(encrypted(&with(&db, "sslmode=require")), Ok(true));
    // ... unless given a root file: then it is verify-ca (psql: certificate verify failed).
    refused(
        &with(&db, &format!("sslmode=require&sslrootcert={other}")),
        "UnknownIssuer",
    );
    // verify-ca: the chain, not the name (the certificate names localhost, we dial 127.0.0.1).
    assert_eq!(
        encrypted(&with(&db, &format!("sslmode=verify-ca&sslrootcert={ca}"))),
        Ok(true)
    );
    refused(
        &with(&db, &format!("sslmode=verify-ca&sslrootcert={other}")),
        "UnknownIssuer",
    );
    // verify-full: the chain and the name (psql: does not match host name "127.0.0.1").
    refused(
        &with(&db, &format!("sslmode=verify-full&sslrootcert={ca}")),
        "not valid for name \"127.0.0.1\"",
    );
    assert_eq!(
        encrypted(&with(
            &by_name,
            &format!("sslmode=verify-full&sslrootcert={ca}")
        )),
        Ok(true)
    );
    // The system's authorities do not know the throwaway one (a machine without any is told
    // so before connecting).
    for query in [
        "sslmode=verify-full",
        "sslmode=verify-full&sslrootcert=system",
    ] {
        match encrypted(&with(&by_name, query)) {
            Err(JournalError::Database(m)) => assert!(m.contains("UnknownIssuer"), "{m}"),
            Err(JournalError::Config(m)) => assert!(m.contains("store is empty"), "{m}"),
            other => panic!("{query}: expected a refusal, got {other:?}"),
        }
    }
}

#[test]
fn a_verified_journal_writes_and_reads_back() {
    let Some((db, ca)) = server() else { return };
    let url = format!(
        "{}?application_name=tls-test&sslmode=verify-full&sslrootcert={ca}",
        db.replacen("127.0.0.1", "localhost", 1)
    );
    let target = Target::parse(&url).unwrap();
    let (mut writer, restored) = Writer::open(
        target.clone(),
        SyncMode::Full,
        "tls",
        10,
        1_700_000_000_000_000,
    )
    .unwrap();
    assert_eq!(restored.last_seq, 0);
    assert_eq!(
        writer.write(Default::default(), 1_700_000_000_000_000),
        Ok(position_manager_journal::writer::Written::Nothing)
    );
    let mut reader = position_manager_journal::reader::Reader::open(&url).unwrap();
    let accounts = reader.accounts().unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].account, "tls");
}

#[test]
fn bad_tls_settings_are_configuration_errors_naming_them() {
    for (url, named) in [
        ("postgresql://h/db?sslmode=verify", "\"verify\""),
        ("postgresql://h/db?sslmode=", "\"\""),
        // The postgres client's own reason, not just the URL repeated.
        (
            "postgresql://h/db?frobnicate=1",
            "unknown option `frobnicate`",
        ),
    ] {
        match Target::parse(url) {
            Err(JournalError::Config(m)) => assert!(m.contains(named), "{url}: {m}"),
            other => panic!("{url}: {other:?}"),
        }
    }
    // Files are looked for when connecting (libpq's defaults in ~/.postgresql/ may complete
    // what the URL names), and one named but missing is told before any connection is tried.
    for (url, named) in [
        (
            "postgresql://127.0.0.1:1/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
            "/nonexistent/ca.pem",
        ),
        (
            "postgresql://127.0.0.1:1/db?sslcert=/nonexistent/client.pem",
            "cannot read sslcert /nonexistent/client.pem",
        ),
    ] {
        match Postgres::connect(url, SyncMode::Full, false) {
            Err(JournalError::Config(m)) => assert!(m.contains(named), "{url}: {m}"),
            Err(e) => panic!("{url}: {e}"),
            Ok(_) => panic!("{url}: connected"),
        }
    }
}

/// The `pmrs_cert` role's URL (no options) and the directory of the test server's certificates.
fn cert_role() -> Option<(String, std::path::PathBuf)> {
    let base = test_server_env("PMRS_TEST_POSTGRES_URL")?;
    let ca = test_server_env("PMRS_TEST_POSTGRES_CA")?;
    let (server, _) = base.rsplit_once('/').expect("a URL with a database");
    let url = format!(
        "{}/pmrs_cert",
        server.replacen("postgres@127.0.0.1", "pmrs_cert@localhost", 1)
    );
    assert!(url.contains("pmrs_cert@localhost"), "{url}");
    Some((
        url,
        Path::new(&ca).parent().expect("a directory").to_owned(),
    ))
}

#[test]
fn a_client_certificate_logs_in_where_the_server_asks_for_one() {
    let Some((url, dir)) = cert_role() else {
        return;
    };
    let file = |name: &str| dir.join(name).display().to_string();
    let verified = format!("sslmode=verify-full&sslrootcert={}", file("ca.pem"));
    let identity = |key: &str| format!("sslcert={}&sslkey={}", file("client.crt"), file(key));
    // psql: logged in as pmrs_cert, ssl = t, client_dn = /CN=pmrs_cert.
    let mut pg = Postgres::connect(
        &format!("{url}?{verified}&{}", identity("client.key")),
        SyncMode::Full,
        false,
    )
    .unwrap();
    let rows = pg
        .query(
            "SELECT current_user::text, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap();
    assert_eq!(
        rows,
        vec![vec![Val::text("pmrs_cert"), Val::text("/CN=pmrs_cert")]]
    );
    // Also under prefer, which checks nothing of the server's.
    assert_eq!(
        encrypted(&format!("{url}?{}", identity("client.key"))),
        Ok(true)
    );
    // psql without the certificate: "connection requires a valid client certificate".
    refused(
        &format!("{url}?{verified}"),
        "connection requires a valid client certificate",
    );
    // psql with sslmode=disable: pg_hba.conf rejects it (the certificate is not even read).
    refused(
        &format!("{url}?sslmode=disable&{}", identity("client.key")),
        "rejects connection",
    );
    // A key that is not the certificate's is told before connecting.
    match Postgres::connect(
        &format!("{url}?{verified}&{}", identity("server.key")),
        SyncMode::Full,
        false,
    ) {
        Err(JournalError::Config(m)) => assert!(m.contains("does not go with sslcert"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("connected with another certificate's key"),
    }
}

/// `openssl` with `args`, in `dir`; panics with its error when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The session's user through `psql` (never prompting), or its error.
fn psql_user(url: &str) -> Result<String, String> {
    let out = std::process::Command::new("psql")
        .args([url, "-w", "-qXAt", "-c", "SELECT current_user"])
        .output()
        .expect("psql runs");
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

#[cfg(unix)]
#[test]
fn an_encrypted_client_key_is_opened_with_sslpassword_as_psql_opens_it() {
    let Some((url, dir)) = cert_role() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let key = dir.join("client.key").display().to_string();
    // What OpenSSL 3 writes for a key with a passphrase (PBES2, AES-256-CBC, PBKDF2), and the
    // same with scrypt.
    for (name, extra) in [("pbkdf2.key", &[][..]), ("scrypt.key", &["-scrypt"][..])] {
        let mut args = vec![
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:s3cret",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-in", &key, "-out", name]);
        openssl(tmp.path(), &args);
    }
    openssl(
        tmp.path(),
        &[
            "rsa",
            "-aes256",
            "-traditional",
            "-passout",
            "pass:s3cret",
            "-in",
            &key,
            "-out",
            "old.key",
        ],
    );
    for name in ["pbkdf2.key", "scrypt.key", "old.key"] {
        let path = tmp.path().join(name);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    let with = |name: &str, password: Option<&str>| {
        let mut u = format!(
            "{url}?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
            dir.join("ca.pem").display(),
            dir.join("client.crt").display(),
            tmp.path().join(name).display()
        );
        if let Some(p) = password {
            u.push_str(&format!("&sslpassword={p}"));
        }
        u
    };
    for name in ["pbkdf2.key", "scrypt.key"] {
        let right = with(name, Some("s3cret"));
        assert_eq!(encrypted(&right), Ok(true), "{name}");
        assert_eq!(psql_user(&right).as_deref(), Ok("pmrs_cert"), "{name}");
        // A wrong passphrase: both refuse before connecting.
        let wrong = with(name, Some("nope"));
        match Postgres::connect(&wrong, SyncMode::Full, false) {
            Err(JournalError::Config(m)) => {
                assert!(
                    m.contains("cannot be opened with the sslpassword given"),
                    "{m}"
                )
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("{name}: opened with a wrong passphrase"),
        }
        let theirs = psql_user(&wrong).expect_err("psql opened it");
        assert!(
            theirs.contains("could not load private key file"),
            "{theirs}"
        );
    }
    // No passphrase: libpq would ask on a terminal; this says what is missing.
    match Postgres::connect(&with("pbkdf2.key", None), SyncMode::Full, false) {
        Err(JournalError::Config(m)) => {
            assert!(m.contains("give its passphrase with sslpassword"), "{m}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    // OpenSSL's old encrypted format: psql opens it, this names the conversion.
    let old = with("old.key", Some("s3cret"));
    assert_eq!(psql_user(&old).as_deref(), Ok("pmrs_cert"));
    match Postgres::connect(&old, SyncMode::Full, false) {
        Err(JournalError::Config(m)) => assert!(m.contains("openssl pkcs8 -topk8"), "{m}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn a_journal_over_a_client_certificate_writes_and_reads_back() {
    let Some((url, dir)) = cert_role() else {
        return;
    };
    let file = |name: &str| dir.join(name).display().to_string();
    let url = format!(
        "{url}?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        file("ca.pem"),
        file("client.crt"),
        file("client.key")
    );
    let account = format!("cert-{}", std::process::id());
    let target = Target::parse(&url).unwrap();
    let (_writer, restored) =
        Writer::open(target, SyncMode::Full, &account, 10, 1_700_000_000_000_000).unwrap();
    assert_eq!(restored.last_seq, 0);
    let mut reader = position_manager_journal::reader::Reader::open(&url).unwrap();
    assert!(reader
        .accounts()
        .unwrap()
        .iter()
        .any(|a| a.account == account));
}
