//! PostgreSQL over TLS, against the test server `.ci/postgres` starts: TLS on, its certificate
//! signed by a throwaway authority (`PMRS_TEST_POSTGRES_CA`) for the name `localhost` only,
//! and a second authority (`other-ca.pem` beside it) that signed nothing. Each `sslmode` must do
//! what libpq does with the same URL (the `psql` answers are in the comments).

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
            "postgresql://h/db?sslcert=/client.pem",
            "unknown option `sslcert`",
        ),
    ] {
        match Target::parse(url) {
            Err(JournalError::Config(m)) => assert!(m.contains(named), "{url}: {m}"),
            other => panic!("{url}: {other:?}"),
        }
    }
    let missing = "postgresql://127.0.0.1:1/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem";
    match Postgres::connect(missing, SyncMode::Full, false) {
        Err(JournalError::Config(m)) => assert!(m.contains("/nonexistent/ca.pem"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("connected with a missing root file"),
    }
}
