//! PostgreSQL through a synchronous session on `tokio-postgres` ([`crate::session`]: its whole
//! start-up bounded), over TLS as the URL's `sslmode` asks ([`crate::tls`]).
//! `synchronous_commit` follows the [`SyncMode`]; a broken connection is reported as such and
//! re-opened by the writer before its next write.
//!
//! Every statement waits for another session's lock and runs only so long ([`STARTUP_LOCK_WAIT`],
//! [`STARTUP_STATEMENT_TIME`], [`READER_STATEMENT_TIME`]; a migration [`MIGRATION_LOCK_WAIT`] and
//! [`MIGRATION_STATEMENT_TIME`]; a write its own, [`bounded_write`]), unless the URL's `options`
//! set `lock_timeout` or `statement_timeout` themselves: a table someone locked in a transaction
//! left open, an uncommitted update of the account's row or a migration that never ends held the
//! start-up of a manager or a reader (and its queries) for ever, Ctrl+C included (found by an
//! audit). A wait given up is an error saying what was waited for, how long, which sessions hold
//! locks on the journal, and what to do ([`Sql::explain_wait`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::environment::{Environment, ProcessEnvironment};
use crate::schema::MIGRATION_LOCK;
use crate::session::Session;
use crate::sql::{Dialect, MigrationStep, Sql, Val};
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
    /// The session's own lock wait and statement time (the URL's or ours), in force outside a
    /// transaction that set others.
    session: Limits,
    /// The lock wait and statement time in force for the next statement.
    in_force: Limits,
    /// The last statement given up on a bound ([`Sql::explain_wait`] tells it).
    given_up: Option<GivenUp>,
}

/// A bound on a wait: the journal's own, or the one the URL's `options` set (its text).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Limit {
    Ours(Duration),
    Users(String),
}

impl Limit {
    /// `ours`, unless the URL's `options` set the server setting `name` themselves.
    fn of(options: Option<&str>, name: &str, ours: Duration) -> Limit {
        match options.and_then(|o| option_setting(o, name)) {
            Some(value) => Limit::Users(value),
            None => Limit::Ours(ours),
        }
    }

    /// This bound as the setting `name`'s value in `SET` (`None`: the URL's, already in
    /// force).
    fn set(&self, local: bool, name: &str) -> Option<String> {
        match self {
            Limit::Users(_) => None,
            // `0` would mean no limit: at least 1 ms.
            Limit::Ours(d) => Some(format!(
                "SET {}{name} = '{}ms';",
                if local { "LOCAL " } else { "" },
                d.as_millis().max(1)
            )),
        }
    }

    /// For messages: "10 s (lock_timeout)", or "1500ms (the lock_timeout the connection's
    /// options set)".
    fn describe(&self, name: &str) -> String {
        match self {
            Limit::Ours(d) => format!("{} ({name})", seconds(*d)),
            Limit::Users(v) => format!("{v} (the {name} the connection's options set)"),
        }
    }
}

/// `d` for messages: "10 s", "2 min", "1500 ms".
fn seconds(d: Duration) -> String {
    let s = d.as_secs();
    match (d.subsec_millis(), s) {
        (0, s) if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        (0, s) => format!("{s} s"),
        _ => format!("{} ms", d.as_millis()),
    }
}

/// A lock wait and a statement time.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Limits {
    lock_wait: Limit,
    statement_time: Limit,
}

impl Limits {
    /// The `SET` (`SET LOCAL`: for the transaction only) statements that put these bounds in
    /// force, space-separated; empty when the URL's own are (already in force).
    fn sets(&self, local: bool) -> String {
        [
            self.lock_wait.set(local, "lock_timeout"),
            self.statement_time.set(local, "statement_timeout"),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
    }
}

/// A statement the server gave up on a bound: which, and what it was waiting for.
#[derive(Clone, Debug)]
struct GivenUp {
    /// The bound: `lock_timeout` (else `statement_timeout`).
    lock: bool,
    limit: Limit,
    /// The statement waited for the migration lock.
    migration_lock: bool,
}

/// Which bound the server gave a statement up on, from its error `message`: `Some(true)` for
/// `lock_timeout` (SQLSTATE 55P03), `Some(false)` for `statement_timeout` (57014), `None` for
/// any other error. Told by the SQLSTATE, which is the same in every language the server
/// speaks; 57014 is also a cancel another session asked for (`pg_cancel_backend`), which an
/// English server says ("due to user request") and is then not taken for a timeout.
fn bound_given_up(message: &str) -> Option<bool> {
    let rest = message.strip_prefix("PostgreSQL: ")?;
    if rest.starts_with("55P03:") {
        Some(true)
    } else if rest.starts_with("57014:") && !rest.contains("due to user request") {
        Some(false)
    } else {
        None
    }
}

/// The value `options` (libpq's `options`: the server's command-line switches, separated by
/// spaces, `\` escaping the next character) give the setting `name`, with `-c name=value`,
/// `-cname=value` or `--name=value` (the server reads `-` in a name as `_`, and names in any
/// case).
fn option_setting(options: &str, name: &str) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_ascii_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut found = None;
    let mut i = 0;
    while i < words.len() {
        let setting = match words[i].as_str() {
            "-c" => {
                i += 1;
                words.get(i).map(String::as_str)
            }
            w => w.strip_prefix("--").or_else(|| w.strip_prefix("-c")),
        };
        if let Some((key, value)) = setting.and_then(|s| s.split_once('=')) {
            if key.replace('-', "_").eq_ignore_ascii_case(name) {
                // The last one wins, as on the server.
                found = Some(value.to_owned());
            }
        }
        i += 1;
    }
    found
}

/// How long a start-up statement of a manager's journal (reading the schema's version, the
/// migration's changes of the tables, claiming the account and reading it back) and every
/// statement of a reader waits for another session's lock, unless the URL sets `lock_timeout`:
/// the journal's sessions hold their locks for milliseconds (a write, a migration of this
/// build's catalog changes), so a lock held this long is someone else's — a transaction left
/// open in a shell, a backup restoring, a migration that does not end — and the start-up
/// gives up, naming it, rather than wait for ever. As long as the connect timeout's default.
pub const STARTUP_LOCK_WAIT: Duration = Duration::from_secs(10);

/// How long a start-up statement of a manager's journal runs at most, unless the URL sets
/// `statement_timeout`: as long as a write's. The claim reads the account back by its keys
/// (its book, its newest events), which takes milliseconds even on a large journal.
pub const STARTUP_STATEMENT_TIME: Duration = Duration::from_secs(60);

/// How long a statement of a reader runs at most, unless the URL sets `statement_timeout`:
/// longer than a manager's, since a dashboard's query may go through a large history (every
/// closed position of every account), but not for ever.
pub const READER_STATEMENT_TIME: Duration = Duration::from_secs(300);

/// How long a migration waits for the migration lock ([`MIGRATION_LOCK`]), unless the URL sets
/// `lock_timeout`. A manager migrating the same database at the same moment holds it for its
/// migration only: this build's migrations change the catalog only (new tables, new columns
/// without a default), milliseconds, each waiting at most [`STARTUP_LOCK_WAIT`] for its table
/// behind the other sessions' statements — five such changes wait at most 50 s together — so
/// two minutes cover that with room; a holder still there after them is stuck (a frozen
/// process, a build without these bounds waiting behind a lock) and is named in the error.
pub const MIGRATION_LOCK_WAIT: Duration = Duration::from_secs(120);

/// How long a statement of a migration runs at most, unless the URL sets `statement_timeout`:
/// far longer than a write, for a migration of a later build that rewrites a table or builds
/// an index over a large journal (this build's run in milliseconds).
pub const MIGRATION_STATEMENT_TIME: Duration = Duration::from_secs(600);

/// How long a write's statements run at most ([`bounded_write`]).
pub const WRITE_STATEMENT_TIME: Duration = Duration::from_secs(60);

/// The sessions other than this one that hold a lock on one of the journal's tables or the
/// migration lock in this database (at most five, the oldest transactions first): each one's
/// process id, application, user, state, when its transaction began, and what it holds.
fn holders_query() -> String {
    // The advisory lock's key as pg_locks shows a bigint key: its high and low 32 bits.
    let (high, low) = (MIGRATION_LOCK >> 32, MIGRATION_LOCK & 0xffff_ffff);
    format!(
        "SELECT l.pid, COALESCE(a.application_name, ''), COALESCE(a.usename::text, ''), \
         COALESCE(a.state, ''), COALESCE(to_char(a.xact_start, 'YYYY-MM-DD HH24:MI:SS TZ'), ''), \
         string_agg(DISTINCT CASE WHEN l.locktype = 'advisory' THEN 'the migration lock' \
         ELSE l.mode || ' on ' || c.relname::text END, ', ') \
         FROM pg_locks l LEFT JOIN pg_class c ON l.locktype = 'relation' AND c.oid = l.relation \
         LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.granted AND l.pid <> pg_backend_pid() \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND ((l.locktype = 'relation' AND c.relkind IN ('r', 'p') \
         AND c.relname LIKE 'pmrs\\_%') \
         OR (l.locktype = 'advisory' AND l.classid = {high} AND l.objid = {low} \
         AND l.objsubid = 1)) \
         GROUP BY l.pid, a.application_name, a.usename, a.state, a.xact_start \
         ORDER BY a.xact_start NULLS LAST, l.pid LIMIT 5"
    )
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

/// A journal write's transaction bounds (`SET LOCAL` after its `BEGIN`, one round trip): it
/// waits at most `lock_wait` ([`LOCK_WAIT`] unless the writer set another wait with
/// [`Sql::set_lock_wait`]: shorter while the journal is failing) for another session's lock and
/// runs at most [`WRITE_STATEMENT_TIME`] (a query someone left open on the journal's rows held a
/// manager call for as long as it ran, Ctrl+C included; found by an audit on 2026-12-06), and
/// then fails, stays queued and is retried with the next write.
fn bounded_write(lock_wait: Duration) -> Limits {
    Limits {
        // `lock_timeout = 0` would mean no limit: at least 1 ms.
        lock_wait: Limit::Ours(lock_wait.max(Duration::from_millis(1))),
        statement_time: Limit::Ours(WRITE_STATEMENT_TIME),
    }
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
        // Every statement bounded from the first one on, unless the URL bounds them itself.
        let options = config.get_options();
        let session = Limits {
            lock_wait: Limit::of(options, "lock_timeout", STARTUP_LOCK_WAIT),
            statement_time: Limit::of(
                options,
                "statement_timeout",
                if read_only {
                    READER_STATEMENT_TIME
                } else {
                    STARTUP_STATEMENT_TIME
                },
            ),
        };
        let sets = session.sets(false);
        if !sets.is_empty() {
            settings.push(' ');
            settings.push_str(&sets);
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
            in_force: session.clone(),
            session,
            given_up: None,
        })
    }

    /// `result` of the statement `sql`, noting a statement the server gave up on a bound
    /// ([`Sql::explain_wait`]), and the session's own bounds back in force after a transaction.
    fn noted<T>(&mut self, sql: &str, result: JournalResult<T>) -> JournalResult<T> {
        // The rollback of the transaction that failed keeps what failed it.
        if sql != "ROLLBACK" {
            self.given_up = None;
        }
        if let Err(JournalError::Database(m)) = &result {
            if let Some(lock) = bound_given_up(m) {
                self.given_up = Some(GivenUp {
                    lock,
                    limit: if lock {
                        self.in_force.lock_wait.clone()
                    } else {
                        self.in_force.statement_time.clone()
                    },
                    migration_lock: sql.contains("pg_advisory_xact_lock"),
                });
            }
        }
        if matches!(sql, "COMMIT" | "ROLLBACK") {
            self.in_force = self.session.clone();
        }
        result
    }

    /// The sessions holding locks on the journal, for a message: `None` when it cannot be
    /// read (a transaction that failed is still open, the statement failed).
    fn holders(&mut self) -> Option<String> {
        let rows = self.query(&holders_query(), &[]).ok()?;
        self.given_up = None;
        let text = |v: Option<&Val>| v.and_then(Val::as_text).unwrap_or("").to_owned();
        let named: Vec<String> = rows
            .iter()
            .map(|r| {
                let pid = r.first().and_then(Val::as_int).unwrap_or(0);
                let mut about = Vec::new();
                for (label, value) in [
                    ("application", text(r.get(1))),
                    ("user", text(r.get(2))),
                    ("", text(r.get(3))),
                    ("transaction since", text(r.get(4))),
                ] {
                    if !value.is_empty() {
                        about.push(if label.is_empty() {
                            value
                        } else {
                            format!("{label} {value}")
                        });
                    }
                }
                format!("pid {pid} ({}) holds {}", about.join(", "), text(r.get(5)))
            })
            .collect();
        (!named.is_empty()).then(|| named.join("; "))
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
        let result = self.client.batch_execute(sql);
        self.noted(sql, result)
    }

    fn execute(&mut self, sql: &str, params: &[Val]) -> JournalResult<u64> {
        let sql = Dialect::Postgres.placeholders(sql);
        let boxed = params_of(params);
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
        let result = self
            .statement(&sql)
            .and_then(|statement| self.client.execute(&statement, &refs));
        self.noted(&sql, result)
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> JournalResult<Vec<Vec<Val>>> {
        let sql = Dialect::Postgres.placeholders(sql);
        let boxed = params_of(params);
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
        let result = self
            .statement(&sql)
            .and_then(|statement| self.client.query(&statement, &refs));
        let rows = self.noted(&sql, result)?;
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
        let limits = bounded_write(self.lock_wait);
        self.batch(&format!("BEGIN; {}", limits.sets(true)))?;
        self.in_force = limits;
        Ok(())
    }

    fn bound_migration(&mut self, step: MigrationStep) -> JournalResult<()> {
        let wanted = match step {
            MigrationStep::Lock => Limits {
                lock_wait: self.session.lock_wait.unless_users(MIGRATION_LOCK_WAIT),
                statement_time: self
                    .session
                    .statement_time
                    .unless_users(MIGRATION_STATEMENT_TIME),
            },
            MigrationStep::Tables => Limits {
                lock_wait: self.session.lock_wait.clone(),
                statement_time: self
                    .session
                    .statement_time
                    .unless_users(MIGRATION_STATEMENT_TIME),
            },
        };
        let sets = wanted.sets(true);
        if !sets.is_empty() {
            self.batch(&sets)?;
        }
        self.in_force = wanted;
        Ok(())
    }

    fn explain_wait(&mut self, e: JournalError, what: &str) -> JournalError {
        let Some(given_up) = self.given_up.take() else {
            return e;
        };
        let holders = self.holders();
        let (setting, waited) = if given_up.lock {
            let held = if given_up.migration_lock {
                "for the journal's migration lock, which another session holds (a manager \
                 migrating the journal's schema)"
            } else {
                "for a lock another session holds on the journal's tables"
            };
            (
                "lock_timeout",
                format!(
                    "gave up after waiting {} {held}",
                    given_up.limit.describe("lock_timeout")
                ),
            )
        } else {
            (
                "statement_timeout",
                format!(
                    "a statement ran longer than {} and was cancelled (it may have waited for \
                     another session's lock)",
                    given_up.limit.describe("statement_timeout")
                ),
            )
        };
        let held_by = match &holders {
            Some(h) => format!(". Sessions holding locks on the journal: {h}"),
            None => String::new(),
        };
        // The server's own words last (a message in its language, its SQLSTATE).
        let server = match &e {
            JournalError::Database(m) => m.strip_prefix("PostgreSQL: ").unwrap_or(m).to_owned(),
            other => other.to_string(),
        };
        JournalError::Database(format!(
            "{what}: PostgreSQL: {waited}{held_by}. End the session's transaction that holds it \
             (commit or roll it back, or SELECT pg_terminate_backend(pid)) and try again; to \
             wait longer, set {setting} in the URL's options (e.g. \
             options=-c%20{setting}%3D60s) (server: {server})"
        ))
    }

    fn set_lock_wait(&mut self, wait: Duration) -> JournalResult<()> {
        self.lock_wait = wait;
        Ok(())
    }

    fn is_broken(&self) -> bool {
        self.client.is_closed()
    }
}

impl Limit {
    /// `ours` in place of this session bound, unless the URL set it (then the URL's).
    fn unless_users(&self, ours: Duration) -> Limit {
        match self {
            Limit::Users(v) => Limit::Users(v.clone()),
            Limit::Ours(_) => Limit::Ours(ours),
        }
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
    fn a_bound_given_up_is_told_by_its_sqlstate_in_any_language() {
        let english = "PostgreSQL: 57014: canceling statement due to statement timeout";
        let german = "PostgreSQL: 57014: storniere Anfrage wegen Zeitüberschreitung der Anweisung";
        let french = "PostgreSQL: 55P03: annulation de la requête à cause du délai écoulé pour \
                      l'obtention des verrous";
        assert_eq!(bound_given_up(english), Some(false));
        assert_eq!(bound_given_up(german), Some(false));
        assert_eq!(
            bound_given_up("PostgreSQL: 55P03: canceling statement due to lock timeout"),
            Some(true)
        );
        assert_eq!(bound_given_up(french), Some(true));
        let cancelled = "PostgreSQL: 57014: canceling statement due to user request";
        assert_eq!(bound_given_up(cancelled), None);
        assert_eq!(bound_given_up("PostgreSQL: 40P01: deadlock detected"), None);
        assert_eq!(bound_given_up("cannot connect: 57014:"), None);
    }

    #[test]
    fn a_setting_the_urls_options_give_is_read_as_the_server_reads_it() {
        let lock = |o: &str| option_setting(o, "lock_timeout");
        assert_eq!(lock("-c lock_timeout=1s"), Some("1s".into()));
        assert_eq!(lock("-clock_timeout=1s"), Some("1s".into()));
        assert_eq!(lock("--lock-timeout=2s -c x=1"), Some("2s".into()));
        assert_eq!(lock("-c LOCK_TIMEOUT=4s"), Some("4s".into()));
        assert_eq!(
            lock("-c lock_timeout=1s -c lock_timeout=3s"),
            Some("3s".into())
        );
        assert_eq!(lock("-c statement_timeout=5s"), None);
        // An escaped space is part of the value: one setting, x.
        assert_eq!(lock("-c x=a\\ -c\\ lock_timeout=3s"), None);
        assert_eq!(lock(""), None);
        assert_eq!(seconds(Duration::from_secs(10)), "10 s");
        assert_eq!(seconds(Duration::from_secs(120)), "2 min");
        assert_eq!(seconds(Duration::from_millis(1500)), "1500 ms");
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
