//! Passwords the URL leaves out, against the test server `.ci/postgres` starts: its role
//! `pmrs_pw` logs in with its password only (`PMRS_TEST_POSTGRES_PASSWORD`, which holds a `:`
//! and a `\`, so a password file must escape them). Each case is run through `psql` too, with
//! the same URL, and must get the same answer.

use std::path::Path;
use std::process::Command;

use position_manager_journal::postgres::Postgres;
use position_manager_journal::sql::{Sql, Val};
use position_manager_journal::{JournalError, SyncMode};

#[allow(dead_code)] // the helpers other test files use
mod common;

use common::test_server_env;

/// The `pmrs_pw` role's URL (no password) and its password, or `None` (skipped).
fn password_role() -> Option<(String, String)> {
    let base = test_server_env("PMRS_TEST_POSTGRES_URL")?;
    let password = test_server_env("PMRS_TEST_POSTGRES_PASSWORD")?;
    let (server, _) = base.rsplit_once('/').expect("a URL with a database");
    let url = format!("{}/pmrs_pw", server.replacen("postgres@", "pmrs_pw@", 1));
    assert!(url.contains("pmrs_pw@127.0.0.1:"), "{url}");
    Some((url, password))
}

/// The session's user with ours, or our error.
fn ours(url: &str) -> Result<String, String> {
    let mut pg = Postgres::connect(url, SyncMode::Full, false).map_err(|e| match e {
        JournalError::Database(m) => m,
        other => panic!("{url}: not a refusal: {other}"),
    })?;
    let rows = pg.query("SELECT current_user::text", &[]).unwrap();
    match rows.as_slice() {
        [row] => match row.as_slice() {
            [Val::Text(Some(user))] => Ok(user.clone()),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

/// The session's user with psql (never prompting), or its error.
fn theirs(url: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([url, "-w", "-qXAt", "-c", "SELECT current_user"])
        .env_remove("PGPASSWORD")
        .env_remove("PGPASSFILE")
        .output()
        .expect("psql runs");
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

fn write_private(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
}

#[test]
fn a_password_file_is_read_as_psql_reads_it() {
    let Some((url, password)) = password_role() else {
        return;
    };
    let port = url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(port, _)| port.to_owned())
        .expect("a port");
    let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgpass");
    let with_file = format!("{url}?passfile={}", file.display());
    let both = |expected: Result<&str, &str>| {
        let (mine, psql) = (ours(&with_file), theirs(&with_file));
        match expected {
            Ok(user) => {
                assert_eq!(mine.as_deref(), Ok(user), "ours");
                assert_eq!(psql.as_deref(), Ok(user), "psql");
            }
            Err(why) => {
                let mine = mine.expect_err("ours logged in");
                let psql = psql.expect_err("psql logged in");
                assert!(mine.contains(why), "ours: {mine}");
                assert!(psql.contains(why), "psql: {psql}");
            }
        }
    };
    // The entry for this server, escaped; comment and other lines before it.
    let entry = format!("127.0.0.1:{port}:pmrs_pw:pmrs_pw:{escaped}\n");
    write_private(
        &file,
        &format!("# the test server\nelsewhere:*:*:*:nope\n{entry}*:*:*:*:last\n"),
        0o600,
    );
    both(Ok("pmrs_pw"));
    // The first matching line wins, even with the wrong password.
    write_private(&file, &format!("*:{port}:*:pmrs_pw:wrong\n{entry}"), 0o600);
    both(Err("password authentication failed for user \"pmrs_pw\""));
    // A file the group or others may read is not used (psql warns too): no password at all.
    write_private(&file, &entry, 0o644);
    let mine = ours(&with_file).expect_err("ours logged in");
    let psql = theirs(&with_file).expect_err("psql logged in");
    assert!(psql.contains("has group or world access"), "psql: {psql}");
    assert!(psql.contains("no password supplied"), "psql: {psql}");
    assert!(
        mine.contains("password missing")
            && mine.contains(&format!(
                "the password file {} was not used",
                file.display()
            )),
        "ours: {mine}"
    );
    // The URL's own password comes first.
    write_private(&file, "*:*:*:*:wrong\n", 0o600);
    let encoded: String = password
        .chars()
        .map(|c| match c {
            ':' => "%3A".to_owned(),
            '\\' => "%5C".to_owned(),
            c => c.to_string(),
        })
        .collect();
    let given = with_file.replacen("pmrs_pw@", &format!("pmrs_pw:{encoded}@"), 1);
    assert_eq!(ours(&given).as_deref(), Ok("pmrs_pw"));
    assert_eq!(theirs(&given).as_deref(), Ok("pmrs_pw"));
}
