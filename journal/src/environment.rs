//! What libpq takes from the environment when a PostgreSQL URL leaves it out, so a journal URL
//! behaves as `psql` does with the same URL in the same environment:
//!
//! | variable | fills in |
//! |---|---|
//! | `PGHOST` | the hosts (comma-separated; one starting with `/` is a Unix socket directory) |
//! | `PGHOSTADDR` | the hosts' IP addresses (comma-separated) |
//! | `PGPORT` | the ports (comma-separated) |
//! | `PGUSER` | the user (else the operating system's user name, as libpq) |
//! | `PGDATABASE` | the database (else the user's name) |
//! | `PGAPPNAME` | `application_name` (else `position-manager-rs`) |
//! | `PGCONNECT_TIMEOUT` | the connect timeout in seconds (else [`DEFAULT_CONNECT_TIMEOUT`]) |
//! | `PGOPTIONS` | `options` (server settings, `-c name=value`) |
//! | `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY` | the TLS options ([`crate::tls`]) |
//! | `PGPASSWORD`, `PGPASSFILE` | the password ([`crate::passfile`]) |
//! | `PGSERVICE`, `PGSERVICEFILE`, `PGSYSCONFDIR` | a service's options ([`crate::service`]) |
//!
//! A URL with neither host nor `PGHOST` connects to the Unix socket of the default directory,
//! as libpq does: `/var/run/postgresql` (Debian's) or `/run/postgresql` (Red Hat's), the first
//! one holding the server's socket file (`.s.PGSQL.<port>`), else `/var/run/postgresql`. Never
//! `/tmp`, where any local user may create that file ([`SOCKET_DIRS`]): name it as the host. An empty
//! variable is not set. A value libpq would refuse is a configuration error naming the variable.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::config::Host;

use crate::{JournalError, JournalResult};

/// The connect timeout when neither the URL (its `connect_timeout`, or a service's) nor
/// `PGCONNECT_TIMEOUT` gives one, or when they say 0 or less (libpq's "wait for ever": a
/// manager never waits for ever). It bounds each attempt as a whole ([`crate::session`]):
/// socket connection, TLS, start-up, authentication and the session's settings. A server
/// that answers at all does so in milliseconds, or in a second or two over a slow link with a
/// costly password hash (SCRAM) or TLS; 10 s is several times that, and short enough that a
/// constructor, a `Journal(...)` or a write reconnecting during an outage comes back soon
/// from a server (or anything else on the port) that accepted the connection and went silent.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// libpq's shortest connect timeout: a shorter one given is taken as this.
pub const MIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the environment is read from: the process's, or a test's.
pub trait Environment {
    /// The variable `name`, when set and not empty.
    fn var(&self, name: &str) -> Option<String>;
    /// The user's home directory.
    fn home(&self) -> Option<PathBuf>;
    /// The operating system's name for the user running the process.
    fn user_name(&self) -> Option<String>;
    /// Whether the file `path` exists (a socket file, for the default host).
    fn exists(&self, path: &Path) -> bool;
}

/// The process's environment.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn home(&self) -> Option<PathBuf> {
        std::env::home_dir()
    }

    fn user_name(&self) -> Option<String> {
        whoami::username().ok()
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// The directories a URL with no host looks for the server's Unix socket in, first the default:
/// Debian's and Red Hat's, which only root and the server's user may write to. Never `/tmp`
/// (the default of libpq's own build, and of servers built from source): any local user can
/// create a socket there, and a hostless URL sent its password to whatever listened on
/// `/tmp/.s.PGSQL.<port>` when the server's own socket was elsewhere (found by an audit on
/// 2026-12-07). A server whose socket is in `/tmp` is reached by naming it (`host=/tmp`,
/// `?host=%2Ftmp`, `PGHOST=/tmp`): the user's own choice.
pub const SOCKET_DIRS: [&str; 2] = ["/var/run/postgresql", "/run/postgresql"];

/// PostgreSQL's port when nothing names one.
pub const DEFAULT_PORT: u16 = 5432;

/// The URL-level options the environment gives (the TLS ones [`crate::tls::split`] reads).
const URL_OPTIONS: [(&str, &str); 4] = [
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("sslcert", "PGSSLCERT"),
    ("sslkey", "PGSSLKEY"),
];

/// `url` with the TLS options it does not give taken from the environment (a query option
/// given empty counts as given, libpq's meaning). A `PGSSLMODE` libpq does not know is a
/// configuration error naming it.
pub fn with_url_options<'a>(url: &'a str, env: &dyn Environment) -> JournalResult<Cow<'a, str>> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let given: Vec<Cow<'_, str>> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| crate::target::query_option(pair).0)
        .collect();
    let added: Vec<String> = URL_OPTIONS
        .iter()
        .filter(|(option, _)| !given.iter().any(|g| g == option))
        .filter_map(|(option, var)| Some((option, var, env.var(var)?)))
        .map(|(option, var, value)| {
            if *var == "PGSSLMODE" && crate::tls::SslMode::parse(&value).is_none() {
                return Err(invalid(var, &value));
            }
            let encoded = percent_encoding::utf8_percent_encode(&value, QUERY_VALUE);
            Ok(format!("{option}={encoded}"))
        })
        .collect::<JournalResult<_>>()?;
    if added.is_empty() {
        return Ok(Cow::Borrowed(url));
    }
    let joiner = match (url.contains('?'), query.is_empty() || query.ends_with('&')) {
        (false, _) => "?",
        (true, true) => "",
        (true, false) => "&",
    };
    Ok(Cow::Owned(format!("{url}{joiner}{}", added.join("&"))))
}

/// What must be percent-encoded in a query value.
pub(crate) const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'=')
    .add(b'?')
    // The `postgres` crate takes a URL's user info up to its first '@', even one in the query.
    .add(b'@');

/// Fills what `config` lacks from the environment and libpq's defaults (see the module
/// documentation): hosts, addresses, ports, user, database, application name, connect timeout
/// and options. Returns the socket directory it chose when no host was given at all (for the
/// connection error, which would not name it).
pub fn fill(
    config: &mut tokio_postgres::Config,
    env: &dyn Environment,
) -> JournalResult<Option<PathBuf>> {
    if config.get_hosts().is_empty() {
        if let Some(hosts) = env.var("PGHOST") {
            for host in hosts.split(',') {
                config.host(host.trim());
            }
        }
    }
    if config.get_hostaddrs().is_empty() {
        if let Some(addrs) = env.var("PGHOSTADDR") {
            for addr in addrs.split(',') {
                let ip = addr
                    .trim()
                    .parse()
                    .map_err(|_| invalid("PGHOSTADDR", &addrs))?;
                config.hostaddr(ip);
            }
        }
    }
    if config.get_ports().is_empty() {
        if let Some(ports) = env.var("PGPORT") {
            for port in ports.split(',') {
                let port = port.trim().parse().map_err(|_| invalid("PGPORT", &ports))?;
                config.port(port);
            }
        }
    }
    if config.get_user().is_none() {
        if let Some(user) = env.var("PGUSER").or_else(|| env.user_name()) {
            config.user(&user);
        }
    }
    if config.get_dbname().is_none() {
        if let Some(db) = env.var("PGDATABASE") {
            config.dbname(&db);
        }
    }
    if config.get_application_name().is_none() {
        let name = env.var("PGAPPNAME");
        config.application_name(name.as_deref().unwrap_or("position-manager-rs"));
    }
    // A URL's `connect_timeout` of 0 or less is no timeout to the driver, as to libpq.
    let timeout = match config.get_connect_timeout() {
        Some(given) => *given,
        None => match env.var("PGCONNECT_TIMEOUT") {
            // libpq: 0 or less waits for ever, which a manager never does.
            Some(text) => match text.trim().parse::<i64>() {
                Ok(s) if s <= 0 => DEFAULT_CONNECT_TIMEOUT,
                Ok(s) => Duration::from_secs(s as u64),
                Err(_) => return Err(invalid("PGCONNECT_TIMEOUT", &text)),
            },
            None => DEFAULT_CONNECT_TIMEOUT,
        },
    };
    config.connect_timeout(timeout.max(MIN_CONNECT_TIMEOUT));
    if config.get_options().is_none() {
        if let Some(options) = env.var("PGOPTIONS") {
            config.options(&options);
        }
    }
    if config
        .get_hosts()
        .iter()
        .any(|h| matches!(h, Host::Tcp(name) if name.is_empty()))
    {
        // libpq reads an empty host (`postgresql://:5433/db`, `PGHOST=a,,b`) as the default
        // one; the postgres crate cannot be given "no host" for it, so this is told rather than
        // dialled as "".
        return Err(JournalError::Config(
            "journal has an empty host name (in the URL, as in postgresql://:5433/db, or in \
             PGHOST): name the host, or leave the host out for the default Unix socket \
             (postgresql:///db?port=5433)"
                .to_owned(),
        ));
    }
    if !config.get_hosts().is_empty() || !config.get_hostaddrs().is_empty() {
        return Ok(None);
    }
    let port = config.get_ports().first().copied().unwrap_or(DEFAULT_PORT);
    let socket = format!(".s.PGSQL.{port}");
    let dir = SOCKET_DIRS
        .iter()
        .map(Path::new)
        .find(|dir| env.exists(&dir.join(&socket)))
        .unwrap_or(Path::new(SOCKET_DIRS[0]))
        .to_owned();
    config.host_path(&dir);
    Ok(Some(dir))
}

fn invalid(var: &str, value: &str) -> JournalError {
    JournalError::Config(format!(
        "journal: the environment variable {var} is not valid, got {value:?}"
    ))
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Sets `path`'s permission bits (Unix; nothing elsewhere).
    pub fn set_mode(path: &Path, mode: u32) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = (path, mode);
    }

    /// Writes `text` to `path` with the permission bits `mode`.
    pub fn write_with_mode(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        set_mode(path, mode);
    }

    /// An environment of a test's own.
    #[derive(Default)]
    pub struct FakeEnvironment {
        pub vars: Vec<(&'static str, String)>,
        pub home: Option<PathBuf>,
        pub user: Option<String>,
        pub files: Vec<PathBuf>,
    }

    impl FakeEnvironment {
        /// With the variable `name` set to `value` (a later one wins).
        pub fn with(mut self, name: &'static str, value: &str) -> Self {
            self.vars.insert(0, (name, value.to_owned()));
            self
        }
    }

    impl Environment for FakeEnvironment {
        fn var(&self, name: &str) -> Option<String> {
            self.vars
                .iter()
                .find(|(n, v)| *n == name && !v.is_empty())
                .map(|(_, v)| v.clone())
        }
        fn home(&self) -> Option<PathBuf> {
            self.home.clone()
        }
        fn user_name(&self) -> Option<String> {
            self.user.clone()
        }
        fn exists(&self, path: &Path) -> bool {
            self.files.iter().any(|f| f == path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::FakeEnvironment;
    use super::*;

    fn filled(url: &str, env: &FakeEnvironment) -> (tokio_postgres::Config, Option<PathBuf>) {
        let mut config: tokio_postgres::Config = url.parse().unwrap();
        let socket = fill(&mut config, env).unwrap();
        (config, socket)
    }

    #[test]
    fn the_environment_fills_only_what_the_url_leaves_out() {
        let env = FakeEnvironment {
            user: Some("osuser".into()),
            ..FakeEnvironment::default()
        }
        .with("PGHOST", "db1.example, /srv/pg")
        .with("PGPORT", "6001,6002")
        .with("PGUSER", "envuser")
        .with("PGDATABASE", "envdb")
        .with("PGAPPNAME", "bot")
        .with("PGCONNECT_TIMEOUT", "7")
        .with("PGOPTIONS", "-c statement_timeout=5s");
        let (c, socket) = filled("postgresql://", &env);
        assert_eq!(socket, None);
        assert_eq!(
            c.get_hosts(),
            &[
                Host::Tcp("db1.example".into()),
                Host::Unix(PathBuf::from("/srv/pg"))
            ]
        );
        assert_eq!(c.get_ports(), &[6001, 6002]);
        assert_eq!(c.get_user(), Some("envuser"));
        assert_eq!(c.get_dbname(), Some("envdb"));
        assert_eq!(c.get_application_name(), Some("bot"));
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(7)));
        assert_eq!(c.get_options(), Some("-c statement_timeout=5s"));
        // Everything the URL gives stays.
        let (c, _) = filled(
            "postgresql://u@h:1/d?application_name=a&connect_timeout=3&options=-c%20x%3D1",
            &env,
        );
        assert_eq!(c.get_hosts(), &[Host::Tcp("h".into())]);
        assert_eq!(c.get_ports(), &[1]);
        assert_eq!(
            (c.get_user(), c.get_dbname(), c.get_application_name()),
            (Some("u"), Some("d"), Some("a"))
        );
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(c.get_options(), Some("-c x=1"));
        // Nothing in the environment: libpq's defaults and ours.
        let bare = FakeEnvironment {
            user: Some("osuser".into()),
            ..FakeEnvironment::default()
        };
        let (c, socket) = filled("postgresql://", &bare);
        assert_eq!(c.get_user(), Some("osuser"));
        assert_eq!(c.get_dbname(), None, "the server takes the user's name");
        assert_eq!(c.get_application_name(), Some("position-manager-rs"));
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(10)));
        assert_eq!(socket, Some(PathBuf::from("/var/run/postgresql")));
        assert_eq!(
            c.get_hosts(),
            &[Host::Unix(PathBuf::from("/var/run/postgresql"))]
        );
    }

    #[test]
    fn the_default_socket_is_the_first_directory_holding_the_servers() {
        let env = FakeEnvironment {
            files: vec![
                PathBuf::from("/var/run/postgresql/.s.PGSQL.5432"),
                PathBuf::from("/run/postgresql/.s.PGSQL.5433"),
            ],
            ..FakeEnvironment::default()
        };
        assert_eq!(
            filled("postgresql:///db", &env).1,
            Some(PathBuf::from("/var/run/postgresql"))
        );
        assert_eq!(
            filled("postgresql:///db?port=5433", &env).1,
            Some(PathBuf::from("/run/postgresql"))
        );
        for (url, pghost) in [
            ("postgresql://u@:5433/db", "h"),
            ("postgresql:///db", "a,,b"),
        ] {
            let mut empty: tokio_postgres::Config = url.parse().unwrap();
            match fill(
                &mut empty,
                &FakeEnvironment::default().with("PGHOST", pghost),
            ) {
                Err(JournalError::Config(m)) => assert!(m.contains("empty host"), "{m}"),
                other => panic!("{url} {pghost}: {other:?}"),
            }
        }
        let env = env.with("PGPORT", "5433");
        assert_eq!(
            filled("postgresql:///db", &env).1,
            Some(PathBuf::from("/run/postgresql"))
        );
        // A host address alone is a host.
        let (c, socket) = filled("postgresql:///db?hostaddr=127.0.0.1", &env);
        assert_eq!((socket, c.get_hosts().len()), (None, 0));
    }

    #[test]
    fn a_socket_in_a_directory_anyone_may_write_to_is_dialled_only_when_named() {
        // Another local user listened on /tmp/.s.PGSQL.<port>, and a URL with no host sent it
        // the bot's password (found by an audit on 2026-12-07).
        let env = FakeEnvironment {
            files: vec![
                PathBuf::from("/tmp/.s.PGSQL.5432"),
                PathBuf::from("/tmp/.s.PGSQL.54997"),
            ],
            ..FakeEnvironment::default()
        };
        for url in ["postgresql:///db", "postgresql://bot@/trading?port=54997"] {
            let (c, socket) = filled(url, &env);
            assert_eq!(socket, Some(PathBuf::from("/var/run/postgresql")), "{url}");
            assert_eq!(
                c.get_hosts(),
                &[Host::Unix(PathBuf::from("/var/run/postgresql"))],
                "{url}"
            );
        }
        assert!(SOCKET_DIRS.iter().all(|dir| !dir.starts_with("/tmp")));
        // Named, it is the user's choice.
        for (url, pghost) in [
            ("postgresql:///db?host=%2Ftmp", None),
            ("postgresql:///db", Some("/tmp")),
        ] {
            let env = match pghost {
                Some(host) => FakeEnvironment::default().with("PGHOST", host),
                None => FakeEnvironment::default(),
            };
            let (c, socket) = filled(url, &env);
            assert_eq!(socket, None, "{url}");
            assert_eq!(c.get_hosts(), &[Host::Unix(PathBuf::from("/tmp"))], "{url}");
        }
    }

    #[test]
    fn timeouts_follow_libpq() {
        // libpq's "wait for ever" (0 or less) is the default bound: a manager never waits
        // for ever.
        for (given, expected) in [("0", 10), ("-3", 10), ("1", 2), ("30", 30)] {
            let env = FakeEnvironment::default().with("PGCONNECT_TIMEOUT", given);
            let (c, _) = filled("postgresql://h/d", &env);
            assert_eq!(
                c.get_connect_timeout(),
                Some(&Duration::from_secs(expected)),
                "{given}"
            );
        }
        // The URL's own, at least 2 s; 0 is none, and the environment's or the default
        // applies.
        let env = FakeEnvironment::default().with("PGCONNECT_TIMEOUT", "7");
        for (url, expected) in [
            ("postgresql://h/d?connect_timeout=1", 2),
            ("postgresql://h/d?connect_timeout=5", 5),
            ("postgresql://h/d?connect_timeout=0", 7),
        ] {
            let (c, _) = filled(url, &env);
            assert_eq!(
                c.get_connect_timeout(),
                Some(&Duration::from_secs(expected)),
                "{url}"
            );
        }
        let (c, _) = filled(
            "postgresql://h/d?connect_timeout=-1",
            &FakeEnvironment::default(),
        );
        assert_eq!(c.get_connect_timeout(), Some(&DEFAULT_CONNECT_TIMEOUT));
    }

    #[test]
    fn values_libpq_would_refuse_name_their_variable() {
        for (var, value) in [
            ("PGPORT", "54x2"),
            ("PGPORT", "70000"),
            ("PGHOSTADDR", "db.example"),
            ("PGCONNECT_TIMEOUT", "soon"),
        ] {
            let env = FakeEnvironment::default().with(var, value);
            let mut config: tokio_postgres::Config = "postgresql://".parse().unwrap();
            match fill(&mut config, &env) {
                Err(JournalError::Config(m)) => {
                    assert!(m.contains(var) && m.contains(value), "{m}")
                }
                other => panic!("{var}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn tls_options_come_from_the_environment_unless_the_url_gives_them() {
        let env = FakeEnvironment::default()
            .with("PGSSLMODE", "verify-full")
            .with("PGSSLROOTCERT", "/etc/my ca&more.pem")
            .with("PGSSLCERT", "");
        assert_eq!(
            with_url_options("postgresql://h/d", &env).unwrap(),
            "postgresql://h/d?sslmode=verify-full&sslrootcert=/etc/my%20ca%26more.pem"
        );
        assert_eq!(
            with_url_options("postgresql://h/d?sslmode=disable", &env).unwrap(),
            "postgresql://h/d?sslmode=disable&sslrootcert=/etc/my%20ca%26more.pem"
        );
        assert_eq!(
            with_url_options("postgresql://h/d?sslmode=&sslrootcert=", &env).unwrap(),
            "postgresql://h/d?sslmode=&sslrootcert=",
            "given empty is given"
        );
        assert_eq!(
            with_url_options("postgresql://h/d?", &env).unwrap(),
            "postgresql://h/d?sslmode=verify-full&sslrootcert=/etc/my%20ca%26more.pem"
        );
        let (_, tls) =
            crate::tls::split(&with_url_options("postgresql://h/d", &env).unwrap()).unwrap();
        assert_eq!(tls.mode, crate::tls::SslMode::VerifyFull);
        assert_eq!(
            tls.roots,
            Some(crate::tls::Roots::File(PathBuf::from(
                "/etc/my ca&more.pem"
            )))
        );
        let nothing = FakeEnvironment::default();
        assert!(matches!(
            with_url_options("postgresql://h/d", &nothing),
            Ok(Cow::Borrowed(_))
        ));
        let bad = FakeEnvironment::default().with("PGSSLMODE", "strict");
        match with_url_options("postgresql://h/d", &bad) {
            Err(JournalError::Config(m)) => {
                assert!(m.contains("PGSSLMODE") && m.contains("strict"))
            }
            other => panic!("{other:?}"),
        }
        assert!(
            with_url_options("postgresql://h/d?sslmode=require", &bad).is_ok(),
            "not read"
        );
    }
}
