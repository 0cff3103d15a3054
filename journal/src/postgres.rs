//! PostgreSQL through a synchronous session on `tokio-postgres` ([`crate::session`]: its whole
//! start-up bounded), over TLS as the URL's `sslmode` asks ([`crate::tls`]).
//! `synchronous_commit` follows the [`SyncMode`]; a broken connection is reported as such and
//! re-opened by the writer before its next write.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::environment::{Environment, ProcessEnvironment};
use crate::session::Session;
use crate::sql::{Dialect, Sql, Val};
use crate::target::redact;
use crate::tls::Tls;
use crate::writer::LOCK_WAIT;
use crate::{JournalError, JournalResult, SyncMode};

/// A PostgreSQL connection.
pub struct Postgres {
    client: Session,
    url: String,
    read_only: bool,
    /// Prepared statements by text: a statement costs one round trip, not two.
    statements: HashMap<String, Statement>,
    /// How long a write waits for another session's lock ([`Sql::set_lock_wait`]).
    lock_wait: Duration,
}

/// Statements kept prepared at most (the journal uses a few dozen).
const MAX_STATEMENTS: usize = 256;

/// The driver's error `e` as the journal reports it.
pub(crate) fn err(e: tokio_postgres::Error) -> JournalError {
    JournalError::Database(format!("PostgreSQL: {}", error_text(&e)))
}

/// The server's own message (SQLSTATE and text) when there is one, else [`describe`].
pub(crate) fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => describe(e),
    }
}

/// `e` with its causes: the client's own text names only the kind ("error performing TLS
/// handshake", "invalid connection string"), its causes say why.
pub fn describe(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// What a journal URL asks for, completed from the environment as libpq completes it
/// ([`crate::environment`]).
pub(crate) struct ParsedUrl {
    /// The driver's (`tokio-postgres`) configuration (without the options it does not know).
    pub config: tokio_postgres::Config,
    /// The TLS settings.
    pub tls: Tls,
    /// The URL's `passfile=`.
    pub passfile: Option<PathBuf>,
    /// The Unix socket directory chosen when no host was given at all.
    pub socket: Option<PathBuf>,
}

/// Reads `url` into a [`ParsedUrl`]. A URL the crate cannot read is a configuration error
/// saying why.
pub(crate) fn parse_url(url: &str, env: &dyn Environment) -> JournalResult<ParsedUrl> {
    crate::target::check_url(url)?;
    let url = crate::service::resolve(url, env)?;
    let (url, passfile) = crate::passfile::take(&url);
    let url = crate::environment::with_url_options(&url, env)?;
    let (crate_url, tls) = crate::tls::split(&url)?;
    let crate_url = libpq_only_options(&crate_url)?;
    // What the service file and the environment added is percent-encoded; checked again all
    // the same, since this is what the crate reads.
    crate::target::check_url(&crate_url)?;
    let mut config: tokio_postgres::Config = crate_url.parse().map_err(|e| {
        JournalError::Config(format!(
            "journal is not a valid PostgreSQL URL ({}), got {:?}",
            describe(&e),
            redact(&url)
        ))
    })?;
    let socket = crate::environment::fill(&mut config, env)?;
    dead_peer_defaults(&mut config, &url);
    Ok(ParsedUrl {
        config,
        tls,
        passfile,
        socket,
    })
}

/// `url` with the libpq options the driver does not know taken out or renamed, so that a URL
/// `psql` takes works here too (such a URL was refused as having an unknown option; found by an
/// audit on 2026-12-06): `gssencmode` (GSSAPI encryption is not offered: `disable`, `allow` or
/// `prefer` connect without it, `require` is refused), `keepalives_count` (the driver's
/// `keepalives_retries`), `fallback_application_name` (the application name when none is
/// given), and `sslsni` and `sslcompression`, which change nothing here (the TLS layer always
/// sends the host name, and no TLS library offers compression any more).
fn libpq_only_options(url: &str) -> JournalResult<String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(url.to_owned());
    };
    let mut kept: Vec<String> = Vec::new();
    let mut fallback_name = None;
    let mut named = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = crate::target::query_option(pair);
        match name.as_ref() {
            "gssencmode" => match value.as_ref() {
                "" | "disable" | "allow" | "prefer" => {}
                other => {
                    let other = crate::target::redact_value(other);
                    return Err(JournalError::Config(format!(
                        "journal gssencmode={other:?} is not supported: GSSAPI encryption is not \
                         offered (use disable or prefer, and sslmode for encryption)"
                    )));
                }
            },
            "keepalives_count" => kept.push(format!("keepalives_retries={}", value)),
            "fallback_application_name" => fallback_name = Some(pair.to_owned()),
            "sslsni" | "sslcompression" => {}
            other => {
                named |= other == "application_name";
                kept.push(pair.to_owned());
            }
        }
    }
    if let (false, Some(pair)) = (named, fallback_name) {
        let value = pair.split_once('=').map_or("", |(_, v)| v);
        kept.push(format!("application_name={value}"));
    }
    Ok(if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    })
}

/// A journal write's `BEGIN`: it waits at most `lock_wait` ([`LOCK_WAIT`] unless the writer set another
/// wait with [`Sql::set_lock_wait`]: shorter while
/// the journal is failing) for another session's lock and runs at most 60 s (a query someone
/// left open on the journal's rows held a manager call for as long as it ran, Ctrl+C included;
/// found by an audit on 2026-12-06), and then fails, stays queued and is retried with the next
/// write. One round trip, for this transaction only.
fn bounded_write(lock_wait: Duration) -> String {
    // `lock_timeout = 0` would mean no limit: at least 1 ms.
    let ms = lock_wait.as_millis().max(1);
    format!("BEGIN; SET LOCAL lock_timeout = '{ms}ms'; SET LOCAL statement_timeout = '60s'")
}

/// How soon a connection whose network went silent is given up, unless the URL says otherwise
/// (`keepalives_idle`, `tcp_user_timeout`): the operating system's defaults wait about two hours
/// for an idle connection and about fifteen minutes for unacknowledged data, and a manager call
/// writing the journal waited that long (found by an audit on 2026-12-06). A write that fails
/// this way is queued and retried, as after any failure.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// See [`KEEPALIVE_IDLE`]: data unacknowledged this long ends the connection.
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(60);

fn dead_peer_defaults(config: &mut tokio_postgres::Config, url: &str) {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let option = |key: &str| {
        query
            .split('&')
            .map(crate::target::query_option)
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.into_owned())
    };
    if option("keepalives_idle").is_none() {
        config.keepalives_idle(KEEPALIVE_IDLE);
    }
    if option("keepalives_interval").is_none() {
        config.keepalives_interval(Duration::from_secs(10));
    }
    if option("keepalives_count").is_none() && option("keepalives_retries").is_none() {
        config.keepalives_retries(3);
    }
    match option("tcp_user_timeout") {
        None => {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        // libpq reads it in milliseconds, the driver in seconds: libpq's reading, as for every
        // option a URL shares with psql.
        Some(value) => {
            if let Ok(ms) = value.trim().parse::<u64>() {
                config.tcp_user_timeout(Duration::from_millis(ms));
            }
        }
    }
}

impl Postgres {
    /// Connects to `url` and applies `sync`; `read_only` makes every transaction read-only.
    /// What the URL leaves out is taken where libpq takes it: the environment
    /// ([`crate::environment`]) and the password file ([`crate::passfile`]).
    ///
    /// Each attempt (each host, each of its addresses) is bounded as a whole — socket
    /// connection, TLS, start-up, authentication and the session's settings — by the connect
    /// timeout, as libpq's `connect_timeout` (the URL's, `PGCONNECT_TIMEOUT`, a service's, else
    /// [`crate::environment::DEFAULT_CONNECT_TIMEOUT`]): a server that accepts the connection
    /// and never answers is given up, "did not answer the start-up within N s", naming the
    /// host and port ([`crate::session`]).
    pub fn connect(url: &str, sync: SyncMode, read_only: bool) -> JournalResult<Postgres> {
        let env = ProcessEnvironment;
        let ParsedUrl {
            mut config,
            tls,
            passfile,
            socket,
        } = parse_url(url, &env)?;
        let unused_passfile = crate::passfile::fill(&mut config, passfile, &env);
        let commit = match sync {
            SyncMode::Full => "on",
            SyncMode::Normal | SyncMode::Off => "off",
        };
        let mut settings =
            format!("SET synchronous_commit = {commit}; SET client_min_messages = warning;");
        if read_only {
            settings.push_str(" SET default_transaction_read_only = on;");
        }
        let connected = match crate::tls::client_config(&tls)? {
            None => Session::connect(&config, NoTls, &settings),
            Some(tls) => Session::connect(&config, MakeRustlsConnect::new(tls), &settings),
        };
        let client = connected.map_err(|e| {
            let JournalError::Database(why) = e else {
                return e;
            };
            // The crate's error does not say where it looked when the URL named no host.
            let looked = match &socket {
                Some(dir) => format!(
                    " (no host given: the server's socket was looked for in {})",
                    dir.display()
                ),
                None => String::new(),
            };
            let passfile = match &unused_passfile {
                Some(why) => format!(" ({why})"),
                None => String::new(),
            };
            JournalError::Database(format!(
                "cannot connect to the journal {}{looked}: {why}{passfile}",
                redact(url),
            ))
        })?;
        Ok(Postgres {
            client,
            url: url.to_owned(),
            read_only,
            statements: HashMap::new(),
            lock_wait: LOCK_WAIT,
        })
    }

    fn statement(&mut self, sql: &str) -> JournalResult<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let statement = self.client.prepare(sql)?;
        if self.statements.len() >= MAX_STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// The URL it was connected with.
    pub fn url(&self) -> &str {
        &self.url
    }
}

fn params_of(params: &[Val]) -> Vec<Box<dyn ToSql + Sync + '_>> {
    params
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync> {
            match v {
                Val::Int(i) => Box::new(*i),
                Val::Real(r) => Box::new(*r),
                Val::Text(t) => Box::new(t.as_deref()),
            }
        })
        .collect()
}

impl Sql for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn batch(&mut self, sql: &str) -> JournalResult<()> {
        self.client.batch_execute(sql)
    }

    fn execute(&mut self, sql: &str, params: &[Val]) -> JournalResult<u64> {
        let sql = Dialect::Postgres.placeholders(sql);
        let boxed = params_of(params);
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
        let statement = self.statement(&sql)?;
        self.client.execute(&statement, &refs)
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> JournalResult<Vec<Vec<Val>>> {
        let sql = Dialect::Postgres.placeholders(sql);
        let boxed = params_of(params);
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
        let statement = self.statement(&sql)?;
        let rows = self.client.query(&statement, &refs)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut values = Vec::with_capacity(row.len());
            for (i, column) in row.columns().iter().enumerate() {
                let ty = column.type_();
                let v = if *ty == Type::INT8 {
                    Val::Int(row.try_get::<_, Option<i64>>(i).map_err(err)?)
                } else if *ty == Type::INT4 {
                    Val::Int(
                        row.try_get::<_, Option<i32>>(i)
                            .map_err(err)?
                            .map(i64::from),
                    )
                } else if *ty == Type::INT2 {
                    Val::Int(
                        row.try_get::<_, Option<i16>>(i)
                            .map_err(err)?
                            .map(i64::from),
                    )
                } else if *ty == Type::FLOAT8 {
                    Val::Real(row.try_get::<_, Option<f64>>(i).map_err(err)?)
                } else if *ty == Type::FLOAT4 {
                    Val::Real(
                        row.try_get::<_, Option<f32>>(i)
                            .map_err(err)?
                            .map(f64::from),
                    )
                } else if *ty == Type::BOOL {
                    Val::Int(
                        row.try_get::<_, Option<bool>>(i)
                            .map_err(err)?
                            .map(i64::from),
                    )
                } else {
                    // Text, or a type the journal never reads (then NULL).
                    Val::Text(row.try_get::<_, Option<String>>(i).ok().flatten())
                };
                values.push(v);
            }
            out.push(values);
        }
        Ok(out)
    }

    fn begin(&mut self, write: bool) -> JournalResult<()> {
        if write || !self.read_only {
            self.batch("BEGIN")
        } else {
            self.batch("BEGIN READ ONLY")
        }
    }

    fn begin_bounded_write(&mut self) -> JournalResult<()> {
        self.batch(&bounded_write(self.lock_wait))
    }

    fn set_lock_wait(&mut self, wait: Duration) -> JournalResult<()> {
        self.lock_wait = wait;
        Ok(())
    }

    fn is_broken(&self) -> bool {
        self.client.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::testing::FakeEnvironment;

    #[test]
    fn libpq_options_the_driver_does_not_know_are_taken_as_libpq_takes_them() {
        let env = FakeEnvironment::default();
        let url = "postgresql://u@h:5432/d?gssencmode=disable&keepalives_count=7&sslsni=1\
                   &sslcompression=0&fallback_application_name=dash";
        let parsed = parse_url(url, &env).unwrap();
        assert_eq!(parsed.config.get_keepalives_retries(), Some(7));
        assert_eq!(parsed.config.get_application_name(), Some("dash"));
        let own = "postgresql://u@h/d?fallback_application_name=dash&application_name=bot";
        assert_eq!(
            parse_url(own, &env).unwrap().config.get_application_name(),
            Some("bot")
        );
        let err = parse_url("postgresql://u@h/d?gssencmode=require", &env)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("gssencmode=\"require\" is not supported"),
            "{err}"
        );
    }

    #[test]
    fn a_silent_network_is_given_up_in_about_a_minute_unless_the_url_says_otherwise() {
        let env = FakeEnvironment::default();
        let parsed = parse_url("postgresql://u@h:5432/d", &env).unwrap();
        assert_eq!(parsed.config.get_keepalives_idle(), KEEPALIVE_IDLE);
        assert_eq!(
            parsed.config.get_tcp_user_timeout(),
            Some(&TCP_USER_TIMEOUT)
        );
        let own = "postgresql://u@h:5432/d?keepalives_idle=300&tcp_user_timeout=5000";
        let parsed = parse_url(own, &env).unwrap();
        assert_eq!(
            parsed.config.get_keepalives_idle(),
            Duration::from_secs(300)
        );
        assert_eq!(
            parsed.config.get_tcp_user_timeout(),
            Some(&Duration::from_millis(5000))
        );
    }
}
