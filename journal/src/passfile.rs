//! The password a PostgreSQL URL leaves out, found where libpq finds it, so a `DATABASE_URL`
//! that `psql` logs in with needs no password added for this package either:
//!
//! 1. the URL's own (user info `user:password@`, or the option `password=`);
//! 2. the environment variable `PGPASSWORD`;
//! 3. the password file: the URL option `passfile=`, else `PGPASSFILE`, else `~/.pgpass`.
//!
//! The password file holds lines `host:port:database:user:password`; each of the first four
//! fields is a value or `*` (anything), `\:` and `\\` stand for `:` and `\`, and lines starting
//! with `#` are comments. The first line matching the connection wins. Its host is matched as
//! the URL names it (a Unix socket directory is matched as `localhost` when it is one of the
//! default ones, [`SOCKET_DIRS`], which `/tmp` is not; an address given alone, by its text), its port as digits
//! (5432 when not given); the database defaults to the user's name. A URL naming several hosts
//! uses the first host with an entry. As libpq, a file that is not a regular file, or that the
//! group or others may access, is not used: make it `0600`. libpq warns; here the connection's
//! error says why, should the connection fail without it.

use std::borrow::Cow;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use position_manager_core::persist::{read_bounded, BoundedReadError};
use tokio_postgres::config::Host;

use crate::environment::{Environment, DEFAULT_PORT, SOCKET_DIRS};

/// `url` without its `passfile=` options, and the file the last one names (an empty value is
/// not given, libpq's meaning). The `postgres` crate does not know the option.
pub fn take(url: &str) -> (Cow<'_, str>, Option<PathBuf>) {
    let Some((base, query)) = url.split_once('?') else {
        return (Cow::Borrowed(url), None);
    };
    let mut file = None;
    let mut kept = Vec::new();
    let mut taken = false;
    for pair in query.split('&') {
        let (name, value) = crate::target::query_option(pair);
        if name == "passfile" {
            taken = true;
            file = (!value.is_empty()).then(|| PathBuf::from(value.as_ref()));
        } else {
            kept.push(pair);
        }
    }
    if !taken {
        return (Cow::Borrowed(url), None);
    }
    let url = match kept.iter().any(|p| !p.is_empty()) {
        true => format!("{base}?{}", kept.join("&")),
        false => base.to_owned(),
    };
    (Cow::Owned(url), file)
}

/// Gives `config` the password libpq would use when the URL has none (see the module
/// documentation); `passfile` is the URL's `passfile=` option. Returns why a password file
/// that exists was not used, for the connection's error should it fail (libpq warns; this
/// logs nothing, since a connection may be opened with the journal's lock held).
pub fn fill(
    config: &mut tokio_postgres::Config,
    passfile: Option<PathBuf>,
    env: &dyn Environment,
) -> Option<String> {
    if config.get_password().is_some() {
        return None;
    }
    if let Some(password) = env.var("PGPASSWORD") {
        config.password(password);
        return None;
    }
    let Some(user) = config.get_user().map(str::to_owned) else {
        // No user even from the system: the connection says what is missing.
        return None;
    };
    let file = passfile
        .or_else(|| env.var("PGPASSFILE").map(PathBuf::from))
        .or_else(|| env.home().map(|home| home.join(".pgpass")))?;
    let text = match read_private(&file) {
        Ok(Some(text)) => text,
        Ok(None) => return None,
        Err(why) => return Some(format!("the password file {} {why}", file.display())),
    };
    let dbname = config.get_dbname().unwrap_or(&user).to_owned();
    let ports = config.get_ports();
    // Each host as libpq names it for the file: its name, else (addresses alone) the address.
    let hosts: Vec<String> = match config.get_hosts() {
        [] => config
            .get_hostaddrs()
            .iter()
            .map(|a| a.to_string())
            .collect(),
        hosts => hosts
            .iter()
            .map(|host| match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(dir) => socket_host(dir),
            })
            .collect(),
    };
    let found = hosts.iter().enumerate().find_map(|(i, host)| {
        let port = ports
            .get(i)
            .or_else(|| ports.first())
            .copied()
            .unwrap_or(DEFAULT_PORT);
        password_for(&text, host, port, &dbname, &user)
    });
    if let Some(password) = found {
        config.password(password);
    }
    None
}

/// How a password file names the Unix socket directory `dir`.
fn socket_host(dir: &Path) -> String {
    match dir.to_str() {
        Some(d) if SOCKET_DIRS.contains(&d.trim_end_matches('/')) => "localhost".to_owned(),
        _ => dir.to_string_lossy().into_owned(),
    }
}

/// The largest password file read: 16 MiB (a line per server takes a few dozen bytes).
const MAX_PASSFILE_BYTES: u64 = 16 << 20;

/// The password file at `path`: `Ok(None)` when it is missing, `Err(why)` when it is not used:
/// not a regular file, open to the group or others (as libpq), larger than
/// [`MAX_PASSFILE_BYTES`], or unreadable. It is read as the state file is ([`read_bounded`]: a
/// file swapped for a FIFO after the checks never blocks the read).
fn read_private(path: &Path) -> Result<Option<String>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(None)
        }
        Err(e) => return Err(format!("cannot be read ({e})")),
    };
    #[cfg(unix)]
    if meta.is_file() {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "was not used: the group or others may access it (permissions {:04o}; make it \
                 0600)",
                mode & 0o7777
            ));
        }
    }
    let bytes = read_bounded(path, MAX_PASSFILE_BYTES).map_err(|e| match e {
        BoundedReadError::Io(e) => format!("cannot be read ({e})"),
        BoundedReadError::NotRegular(_) => "is not a regular file".to_owned(),
        BoundedReadError::TooLarge(size) | BoundedReadError::NoMemory(size) => {
            format!("was not used: it is {size} bytes, more than a password file may have")
        }
    })?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| format!("cannot be read ({e})"))
}

/// The password of the first line of the password file `text` matching the connection.
pub fn password_for(text: &str, host: &str, port: u16, dbname: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    let wanted = [host, port.as_str(), dbname, user];
    text.lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .find_map(|line| {
            let (fields, password) = parse_line(line)?;
            fields
                .iter()
                .zip(wanted)
                .all(|(field, want)| field.as_deref().is_none_or(|f| f == want))
                .then_some(password)
        })
}

/// A password file line's four matching fields (`None`: `*`, anything) and its password,
/// de-escaped; `None` for a line with fewer than five fields. The password ends at an
/// unescaped `:` or the line's end. An escaped `\*` is a literal star.
fn parse_line(line: &str) -> Option<([Option<String>; 4], String)> {
    let mut fields: Vec<Option<String>> = Vec::with_capacity(4);
    let mut current = String::new();
    let mut escaped_any = false;
    let mut chars = line.chars();
    loop {
        match chars.next() {
            Some('\\') => {
                escaped_any = true;
                current.push(chars.next().unwrap_or('\\'));
            }
            Some(':') if fields.len() < 4 => {
                let wildcard = current == "*" && !escaped_any;
                fields.push((!wildcard).then(|| std::mem::take(&mut current)));
                current.clear();
                escaped_any = false;
            }
            Some(':') | None => break,
            Some(c) => current.push(c),
        }
    }
    let fields: [Option<String>; 4] = fields.try_into().ok()?;
    Some((fields, current))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::testing::{write_with_mode, FakeEnvironment};

    #[test]
    fn passfile_options_are_taken_out_of_the_url() {
        assert_eq!(
            take("postgres://u@h/db"),
            (Cow::Borrowed("postgres://u@h/db"), None)
        );
        assert_eq!(
            take("postgres://u@h/db?sslmode=require&connect_timeout=5"),
            (
                Cow::Borrowed("postgres://u@h/db?sslmode=require&connect_timeout=5"),
                None
            )
        );
        let (url, file) = take("postgres://u@h/db?passfile=%2Fetc%2Fbot.pgpass&sslmode=require");
        assert_eq!(url, "postgres://u@h/db?sslmode=require");
        assert_eq!(file, Some(PathBuf::from("/etc/bot.pgpass")));
        let (url, file) = take("postgres://u@h/db?passfile=");
        assert_eq!((url.as_ref(), file), ("postgres://u@h/db", None));
    }

    const FILE: &str = "\
# comment:*:*:*:nope
db.example.com:5432:trading:bot:first
*:5433:*:bot:on 5433
localhost:*:*:bot:s3c\\:r\\\\et
*:*:*:*:fallback:ignored after a colon
short:line
";

    #[test]
    fn the_first_matching_line_gives_the_password() {
        // (file, host, port, database, user, password)
        for (file, host, port, db, user, expected) in [
            (
                FILE,
                "db.example.com",
                5432,
                "trading",
                "bot",
                Some("first"),
            ),
            (
                FILE,
                "db.example.com",
                5433,
                "trading",
                "bot",
                Some("on 5433"),
            ),
            (FILE, "localhost", 5432, "x", "bot", Some("s3c:r\\et")),
            (
                FILE,
                "db.example.com",
                5432,
                "other",
                "bot",
                Some("fallback"),
            ),
            (FILE, "# comment", 0, "*", "*", Some("fallback")), // comments are skipped
            ("h:1:d:u", "h", 1, "d", "u", None),                // four fields
            ("h:1:d:u:", "h", 1, "d", "u", Some("")),
            ("h\\:x:1:d:u:p", "h:x", 1, "d", "u", Some("p")),
            ("h:1:d:u:p\r\n", "h", 1, "d", "u", Some("p")),
            ("\\*:1:d:u:p", "h", 1, "d", "u", None), // a literal star
            ("\\*:1:d:u:p", "*", 1, "d", "u", Some("p")),
            ("", "h", 1, "d", "u", None),
        ] {
            let found = password_for(file, host, port, db, user);
            assert_eq!(found.as_deref(), expected, "{file:?}");
        }
    }

    fn password(url: &str, passfile: Option<PathBuf>, env: &FakeEnvironment) -> Option<Vec<u8>> {
        let mut config: tokio_postgres::Config = url.parse().unwrap();
        let _ = fill(&mut config, passfile, env);
        config.get_password().map(<[u8]>::to_vec)
    }

    #[test]
    fn the_url_then_pgpassword_then_the_file_as_libpq_looks() {
        let home = tempfile::tempdir().unwrap();
        write_with_mode(&home.path().join(".pgpass"), "*:*:*:bot:from home\n", 0o600);
        let other = home.path().join("other.pgpass");
        write_with_mode(&other, "*:*:*:bot:from other\n", 0o600);
        let mut env = FakeEnvironment {
            home: Some(home.path().to_owned()),
            ..FakeEnvironment::default()
        };
        let url = "postgresql://bot@db/trading";
        assert_eq!(password(url, None, &env), Some(b"from home".to_vec()));
        assert_eq!(
            password("postgresql://bot:given@db/trading", None, &env),
            Some(b"given".to_vec())
        );
        assert_eq!(
            password("postgresql://bot@db/trading?password=opt", None, &env),
            Some(b"opt".to_vec())
        );
        env.vars.push(("PGPASSFILE", other.display().to_string()));
        assert_eq!(password(url, None, &env), Some(b"from other".to_vec()));
        // The URL's passfile= comes before PGPASSFILE.
        let third = home.path().join("third");
        write_with_mode(&third, "db:5432:trading:bot:third\n", 0o600);
        assert_eq!(password(url, Some(third), &env), Some(b"third".to_vec()));
        env.vars.push(("PGPASSWORD", "from env".to_owned()));
        assert_eq!(password(url, None, &env), Some(b"from env".to_vec()));
        // No user: nothing to match (the connection says what is missing).
        let nobody = FakeEnvironment {
            home: Some(home.path().to_owned()),
            ..FakeEnvironment::default()
        };
        assert_eq!(password("postgresql://db/trading", None, &nobody), None);
    }

    #[test]
    fn hosts_ports_and_databases_are_matched_as_libpq_matches_them() {
        let home = tempfile::tempdir().unwrap();
        write_with_mode(
            &home.path().join(".pgpass"),
            "b.example:6000:bot:bot:second host\nlocalhost:5432:bot:bot:socket\n",
            0o600,
        );
        let env = FakeEnvironment {
            home: Some(home.path().to_owned()),
            ..FakeEnvironment::default()
        };
        // The database defaults to the user's name; the first host with an entry wins.
        assert_eq!(
            password("postgresql://bot@a.example:5999,b.example:6000", None, &env),
            Some(b"second host".to_vec())
        );
        // The default socket directory is matched as localhost, another one by its path.
        assert_eq!(
            password("postgresql://bot@%2Fvar%2Frun%2Fpostgresql", None, &env),
            Some(b"socket".to_vec())
        );
        assert_eq!(password("postgresql://bot@%2Fsrv%2Fpg", None, &env), None);
        // /tmp is not a default directory (anyone may create a socket there): by its path.
        assert_eq!(password("postgresql://bot@%2Ftmp", None, &env), None);
        // An address alone is matched by its text.
        write_with_mode(
            &home.path().join(".pgpass"),
            "10.0.0.7:5432:bot:bot:by address\n",
            0o600,
        );
        assert_eq!(
            password("postgresql://bot@?hostaddr=10.0.0.7", None, &env),
            Some(b"by address".to_vec())
        );
        assert_eq!(
            password("postgresql://bot@localhost:5433", None, &env),
            None
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_may_read_is_not_used_and_says_why() {
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join(".pgpass");
        let env = FakeEnvironment {
            home: Some(home.path().to_owned()),
            ..FakeEnvironment::default()
        };
        let fill_with = || {
            let mut config: tokio_postgres::Config = "postgresql://bot@db/x".parse().unwrap();
            let why = fill(&mut config, None, &env);
            (config.get_password().is_some(), why)
        };
        for (mode, used) in [
            (0o600, true),
            (0o400, true),
            (0o640, false),
            (0o604, false),
            (0o660, false),
        ] {
            write_with_mode(&file, "*:*:*:*:pw\n", mode);
            let (found, why) = fill_with();
            assert_eq!(found, used, "mode {mode:o}");
            match why {
                None => assert!(used, "mode {mode:o}"),
                Some(why) => assert!(
                    why.contains(&format!("{} was not used", file.display()))
                        && why.contains(&format!("permissions {mode:04o}")),
                    "{why}"
                ),
            }
        }
        std::fs::remove_file(&file).unwrap();
        assert_eq!(fill_with(), (false, None), "no file: nothing to say");
        std::fs::create_dir(&file).unwrap();
        let (found, why) = fill_with();
        assert!(!found && why.is_some_and(|w| w.contains("is not a regular file")));
        std::fs::remove_dir(&file).unwrap();

        // A file claiming more than a password file may hold (sparse: nothing is written) is
        // refused before it is read.
        write_with_mode(&file, "*:*:*:*:pw\n", 0o600);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(MAX_PASSFILE_BYTES + 1)
            .unwrap();
        let (found, why) = fill_with();
        assert!(
            !found
                && why.as_deref().is_some_and(|w| w.contains(&format!(
                    "was not used: it is {} bytes",
                    MAX_PASSFILE_BYTES + 1
                ))),
            "{why:?}"
        );
    }
}
