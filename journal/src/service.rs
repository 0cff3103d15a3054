//! Connection services, as libpq reads them: a URL's `service=NAME` option (else `PGSERVICE`)
//! names a section of the service file, whose `key=value` lines give the connection options the
//! URL leaves out. Options the URL gives win; the environment ([`crate::environment`]) fills
//! what neither gives.
//!
//! The section is looked for in `PGSERVICEFILE` (else `~/.pg_service.conf`), then in
//! `pg_service.conf` of `PGSYSCONFDIR` (else `/etc/postgresql-common`, Debian's). The file is
//! INI-like: `[name]` starts a section, `#` a comment; a key libpq does not know, a line that is
//! not `key=value`, or a service found nowhere is a configuration error naming the file and
//! line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use position_manager_core::persist::{read_bounded, BoundedReadError};

use crate::environment::Environment;
use crate::{JournalError, JournalResult};

/// The system-wide directory of `pg_service.conf` when `PGSYSCONFDIR` is not set (Debian's
/// libpq build).
const SYSCONFDIR: &str = "/etc/postgresql-common";

/// The connection options a service file may give (libpq's names).
const OPTIONS: [&str; 27] = [
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "connect_timeout",
    "options",
    "application_name",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "keepalives",
    "keepalives_idle",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
    "tcp_user_timeout",
    "keepalives_interval",
    "keepalives_count",
    "gssencmode",
    "fallback_application_name",
    "sslsni",
    "sslcompression",
];

/// `url` with its `service=` option resolved: the option taken out and the service's options
/// the URL does not give appended (percent-encoded). Unchanged when no service is named.
pub fn resolve(url: &str, env: &dyn Environment) -> JournalResult<String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut name = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = crate::target::query_option(pair);
        if key == "service" {
            name = (!value.is_empty()).then(|| value.into_owned());
        } else {
            kept.push(pair);
        }
    }
    let Some(name) = name.or_else(|| env.var("PGSERVICE")) else {
        return Ok(url.to_owned());
    };
    let options = find(&name, env)?;
    let given = given_by(base, &kept);
    let added = options
        .into_iter()
        .filter(|(key, _)| !given.contains(key.as_str()))
        .map(|(key, value)| {
            let value =
                percent_encoding::utf8_percent_encode(&value, crate::environment::QUERY_VALUE);
            format!("{key}={value}")
        });
    let query: Vec<String> = kept.iter().map(|p| (*p).to_owned()).chain(added).collect();
    Ok(match query.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", query.join("&")),
    })
}

/// The options `name`'s section gives, from the first file holding it.
fn find(name: &str, env: &dyn Environment) -> JournalResult<Vec<(String, String)>> {
    let user_file = env
        .var("PGSERVICEFILE")
        .map(PathBuf::from)
        .or_else(|| env.home().map(|h| h.join(".pg_service.conf")));
    let system_file = Path::new(
        &env.var("PGSYSCONFDIR")
            .unwrap_or_else(|| SYSCONFDIR.to_owned()),
    )
    .join("pg_service.conf");
    let mut looked = Vec::new();
    for file in user_file.into_iter().chain([system_file]) {
        let Some(text) = read(&file)? else {
            looked.push(file.display().to_string());
            continue;
        };
        if let Some(options) = section(&text, name, &file)? {
            return Ok(options);
        }
        looked.push(file.display().to_string());
    }
    Err(error(&format!(
        "service {name:?} is defined in no service file (looked in {})",
        looked.join(", ")
    )))
}

/// The largest service file read: 16 MiB, as the TLS files and the password file (a section
/// takes a few hundred bytes).
const MAX_SERVICE_FILE_BYTES: u64 = 16 << 20;

/// The service file `file`, `None` when it is missing. It is read through [`read_bounded`]: a
/// FIFO, a device or a directory is refused without blocking (a FIFO held the manager's
/// constructor for ever, and the read had no limit; found by an audit on 2026-12-07), and so is
/// a file above [`MAX_SERVICE_FILE_BYTES`], each with an error naming the file.
fn read(file: &Path) -> JournalResult<Option<String>> {
    let cannot = |why: &dyn std::fmt::Display| {
        error(&format!(
            "cannot read the service file {}: {why}",
            file.display()
        ))
    };
    let bytes = match read_bounded(file, MAX_SERVICE_FILE_BYTES) {
        Ok(bytes) => bytes,
        Err(BoundedReadError::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None)
        }
        Err(BoundedReadError::Io(e)) => return Err(cannot(&e)),
        Err(BoundedReadError::NotRegular(_)) => return Err(cannot(&"it is not a regular file")),
        Err(BoundedReadError::TooLarge(size)) => {
            return Err(cannot(&format!(
                "it is {size} bytes, more than the {MAX_SERVICE_FILE_BYTES} a service file may \
                 have"
            )))
        }
        Err(BoundedReadError::NoMemory(size)) => {
            return Err(cannot(&format!("no memory for its {size} bytes")))
        }
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| cannot(&"it is not UTF-8 text"))
}

/// The options of the section `name` in the service file `text` (read from `file`), or `None`
/// when it has no such section. Every line of the file must be well-formed.
fn section(text: &str, name: &str, file: &Path) -> JournalResult<Option<Vec<(String, String)>>> {
    let mut current: Option<&str> = None;
    let mut found: Option<Vec<(String, String)>> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        // The file and the line's number, not the line: a malformed line may hold a password
        // (`password TopSecret99` was quoted whole; found by an audit on 2026-12-07), and
        // libpq names no more either.
        let bad = |why: &str| {
            error(&format!(
                "service file {}, line {}: {why}",
                file.display(),
                i + 1
            ))
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header
                .strip_suffix(']')
                .ok_or_else(|| bad("a section without ']'"))?;
            if found.is_some() {
                // The first section of that name is the one (libpq stops there).
                break;
            }
            current = Some(header);
            if header == name {
                found = Some(Vec::new());
            }
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| bad("not key=value"))?;
        let key = key.trim();
        if current.is_none() {
            return Err(bad("an option before any [section]"));
        }
        if !OPTIONS.contains(&key) {
            // Named only when it reads as an option's name.
            let shown = match key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                true => format!("{key:?}"),
                false => "the name before '='".to_owned(),
            };
            return Err(bad(&format!(
                "{shown} is not a connection option (or not one this package supports)"
            )));
        }
        if let Some(options) = found.as_mut() {
            options.push((key.to_owned(), value.trim().to_owned()));
        }
    }
    Ok(found)
}

/// The option names `base` (the URL before `?`) and its `query` pairs give.
fn given_by<'a>(base: &'a str, query: &[&'a str]) -> BTreeSet<String> {
    let mut given: BTreeSet<String> = query
        .iter()
        .map(|pair| crate::target::query_option(pair).0.into_owned())
        .collect();
    let rest = base.split_once("://").map_or(base, |(_, rest)| rest);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let hosts = match authority.rsplit_once('@') {
        Some((user_info, hosts)) => {
            let (user, password) = match user_info.split_once(':') {
                Some((user, _)) => (user, true),
                None => (user_info, false),
            };
            if !user.is_empty() {
                given.insert("user".to_owned());
            }
            if password {
                given.insert("password".to_owned());
            }
            hosts
        }
        None => authority,
    };
    for host in hosts.split(',') {
        // `[v6]:port`, `name:port`, `name`, `:port`.
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) if !name.ends_with(':') && !port.contains(']') => (name, port),
            _ => (host, ""),
        };
        if !name.is_empty() {
            given.insert("host".to_owned());
        }
        if !port.is_empty() {
            given.insert("port".to_owned());
        }
    }
    if !path.is_empty() {
        given.insert("dbname".to_owned());
    }
    given
}

fn error(why: &str) -> JournalError {
    JournalError::Config(format!("journal: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::testing::FakeEnvironment;

    fn env_with_files(
        user: Option<&str>,
        system: Option<&str>,
    ) -> (tempfile::TempDir, FakeEnvironment) {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&etc).unwrap();
        if let Some(text) = user {
            std::fs::write(home.join(".pg_service.conf"), text).unwrap();
        }
        if let Some(text) = system {
            std::fs::write(etc.join("pg_service.conf"), text).unwrap();
        }
        let env = FakeEnvironment {
            home: Some(home),
            ..FakeEnvironment::default()
        }
        .with("PGSYSCONFDIR", etc.to_str().unwrap());
        (dir, env)
    }

    const FILE: &str = "\
# the bots' databases
[trading]
host=db.example
port = 6432
dbname=trading
user=bot
sslmode=verify-full
sslrootcert=/etc/ssl/my ca.pem

[other]
host=elsewhere
";

    #[test]
    fn a_service_gives_what_the_url_leaves_out() {
        let (_dir, env) = env_with_files(Some(FILE), None);
        assert_eq!(
            resolve("postgresql://?service=trading", &env).unwrap(),
            "postgresql://?host=db.example&port=6432&dbname=trading&user=bot&sslmode=verify-full\
             &sslrootcert=/etc/ssl/my%20ca.pem"
        );
        // What the URL gives wins, part by part.
        assert_eq!(
            resolve(
                "postgresql://me@h2/db2?service=trading&sslmode=disable",
                &env
            )
            .unwrap(),
            "postgresql://me@h2/db2?sslmode=disable&port=6432&sslrootcert=/etc/ssl/my%20ca.pem"
        );
        assert_eq!(
            resolve("postgresql://:7000?service=trading", &env).unwrap(),
            "postgresql://:7000?host=db.example&dbname=trading&user=bot&sslmode=verify-full\
             &sslrootcert=/etc/ssl/my%20ca.pem"
        );
        // PGSERVICE names it when the URL does not; a URL without a service is left alone.
        let env = env.with("PGSERVICE", "other");
        assert_eq!(
            resolve("postgresql:///db", &env).unwrap(),
            "postgresql:///db?host=elsewhere"
        );
        let (_dir, bare) = env_with_files(Some(FILE), None);
        assert_eq!(
            resolve("postgresql:///db", &bare).unwrap(),
            "postgresql:///db"
        );
    }

    #[test]
    fn the_users_file_then_the_systems() {
        let (_dir, env) = env_with_files(
            Some("[mine]\nhost=a\n"),
            Some("[mine]\nhost=b\n[sys]\nhost=c\n"),
        );
        assert_eq!(
            resolve("postgresql://?service=mine", &env).unwrap(),
            "postgresql://?host=a"
        );
        assert_eq!(
            resolve("postgresql://?service=sys", &env).unwrap(),
            "postgresql://?host=c"
        );
        // PGSERVICEFILE instead of ~/.pg_service.conf.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("services");
        std::fs::write(&file, "[mine]\nhost=d\n").unwrap();
        let env = env.with("PGSERVICEFILE", file.to_str().unwrap());
        assert_eq!(
            resolve("postgresql://?service=mine", &env).unwrap(),
            "postgresql://?host=d"
        );
    }

    #[test]
    fn a_service_found_nowhere_or_a_bad_file_is_named() {
        let (_dir, env) = env_with_files(Some(FILE), None);
        let message = |url: &str, env: &FakeEnvironment| match resolve(url, env) {
            Err(JournalError::Config(m)) => m,
            other => panic!("{url}: {other:?}"),
        };
        let m = message("postgresql://?service=nope", &env);
        assert!(
            m.contains("\"nope\" is defined in no service file") && m.contains(".pg_service.conf"),
            "{m}"
        );
        for (text, why) in [
            ("[a]\nhots=x\n", "\"hots\" is not a connection option"),
            ("[a]\nhost\n", "not key=value"),
            ("host=x\n[a]\n", "an option before any [section]"),
            ("[a\nhost=x\n", "a section without ']'"),
        ] {
            let (_dir, env) = env_with_files(Some(text), None);
            let m = message("postgresql://?service=a", &env);
            assert!(m.contains(why) && m.contains("line "), "{text:?}: {m}");
        }
    }

    #[test]
    fn a_malformed_line_is_named_by_its_number_not_quoted() {
        // `not key=value: "password TopSecret99"` quoted the line, password and all (found by
        // an audit on 2026-12-07); libpq names the file and the line's number only.
        for (text, why) in [
            (
                "[a]\nhost=x\npassword TopSecret99\n",
                "line 3: not key=value",
            ),
            ("[a TopSecret99\n", "line 1: a section without ']'"),
            (
                "password=TopSecret99\n[a]\n",
                "line 1: an option before any [section]",
            ),
            (
                "[a]\npassword TopSecret99=x\n",
                "line 2: the name before '=' is not a connection option",
            ),
        ] {
            let (_dir, env) = env_with_files(Some(text), None);
            match resolve("postgresql://?service=a", &env) {
                Err(JournalError::Config(m)) => {
                    assert!(
                        m.contains(why) && !m.contains("TopSecret99"),
                        "{text:?}: {m}"
                    )
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_services_values_are_encoded_so_an_at_sign_stays_in_its_value() {
        // An '@' a service gives (`user=bot@corp`, a password) would end the URL's user info
        // for the `postgres` crate, which takes it up to the first '@' even in the query.
        let (_dir, env) = env_with_files(Some("[a]\nuser=bot@corp\npassword=p@ss/w?rd#1\n"), None);
        let url = resolve("postgresql://h/db?service=a", &env).unwrap();
        assert!(!url.contains('@'), "{url}");
        let parsed = crate::postgres::parse_url("postgresql://h/db?service=a", &env).unwrap();
        assert_eq!(parsed.config.get_user(), Some("bot@corp"));
        assert_eq!(parsed.config.get_password(), Some(&b"p@ss/w?rd#1"[..]));
    }

    #[cfg(unix)]
    #[test]
    fn a_service_file_that_is_a_fifo_or_too_large_is_refused_without_blocking() {
        // A FIFO held the manager's constructor for ever, and the read had no limit (found by
        // an audit on 2026-12-07).
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("services");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let big = dir.path().join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_SERVICE_FILE_BYTES + 1)
            .unwrap();
        for (file, why) in [
            (fifo, "it is not a regular file".to_owned()),
            (
                big,
                format!("it is {} bytes, more than", MAX_SERVICE_FILE_BYTES + 1),
            ),
        ] {
            let env = FakeEnvironment::default().with("PGSERVICEFILE", file.to_str().unwrap());
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(resolve("postgresql://h/db?service=x", &env).err());
            });
            let refused = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("the read of the service file hung");
            let m = refused.expect("accepted").to_string();
            let named = format!("cannot read the service file {}: {why}", file.display());
            assert!(m.contains(&named), "{m}");
        }
    }

    #[test]
    fn the_url_parts_given_are_told_apart() {
        let given = |url: &str| {
            let (base, query) = url.split_once('?').unwrap_or((url, ""));
            let pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
            given_by(base, &pairs)
                .into_iter()
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(given("postgresql://"), "");
        assert_eq!(given("postgresql:///db"), "dbname");
        assert_eq!(
            given("postgresql://u:p@h:1/d"),
            "dbname,host,password,port,user"
        );
        assert_eq!(given("postgresql://u@[::1]:5433"), "host,port,user");
        assert_eq!(given("postgresql://[::1]"), "host");
        assert_eq!(
            given("postgresql://a,b:2/d?sslmode=x"),
            "dbname,host,port,sslmode"
        );
        assert_eq!(given("postgresql://:5433"), "port");
    }
}
