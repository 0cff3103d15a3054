//! A PostgreSQL session driven synchronously: `tokio-postgres` on a current-thread tokio
//! runtime of the session's own (as the `postgres` crate's synchronous client does), with the
//! whole start-up bounded.
//!
//! The `postgres` crate bounds only each socket connection (`connect_timeout`): a server, or
//! anything else listening on the port, that accepts the connection and then never answers the
//! request for TLS, the TLS handshake, the start-up message or the authentication held the
//! connect — and `PositionManager(..., journal=...)`, `Journal(...)`, or a write reconnecting
//! after an outage — for ever, Ctrl+C included (found by an audit). Its synchronous client
//! cannot be built around a connection made another way, and a connection without TLS
//! (`sslmode=disable`, or the server's refusal of TLS) runs on the raw socket, which no
//! [`tokio_postgres::tls::MakeTlsConnect`] wrapper ever sees; so the session drives
//! `tokio-postgres` itself, and each attempt — socket connection, request for TLS, TLS
//! handshake, start-up and authentication, and the session's settings — runs under one timer.
//!
//! As in libpq, the bound (`connect_timeout`) is per attempt: each host, and each address a
//! host name resolves to, is tried in turn (in random order with `load_balance_hosts=random`),
//! the next one after a failure or a silence, so a silent server does not keep a failover
//! from its standby. A host name's lookup is bounded the same way, as a part of the host's
//! attempt: a resolver that never answers gives the host up after the connect timeout, and the
//! next host is tried ([`lookup_within`]). The lookup (`getaddrinfo`, on a thread of the
//! runtime's blocking pool) cannot be interrupted; the runtime is shut down without waiting for
//! that thread ([`Session::runtime`]), which ends whenever the resolver answers (before, the
//! lookup was left to the system resolver's own timeouts, which may be long or never end).

use std::collections::hash_map::RandomState;
use std::future::{poll_fn, Future};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::config::{Host, LoadBalanceHosts};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Error, Row, Socket, Statement};

use crate::environment::DEFAULT_CONNECT_TIMEOUT;
use crate::postgres::err;
use crate::{JournalError, JournalResult};

/// The connection's side of a session: it reads the server's answers and writes the requests.
/// Polled with every request ([`drive`]); `None` once it ended.
type Driver = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// How long dropping a session waits for its connection to tell the server it leaves (the
/// `Terminate` message, written to a socket buffer: at once, unless the network is stuck).
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A connected session (see the module docs).
pub struct Session {
    /// `None` only while the session is dropped: then shut down without waiting for its
    /// blocking pool's threads ([`Runtime::shutdown_background`]). A name lookup given up on
    /// its bound ([`lookup_within`]) leaves `getaddrinfo` running on one of them, which nothing
    /// can interrupt, and a plain drop of the runtime waits for it — as long as the system
    /// resolver takes, which may be for ever. The thread ends on its own when the resolver
    /// answers.
    runtime: Option<Runtime>,
    /// `None` only while the session is dropped.
    client: Option<Client>,
    connection: Option<Driver>,
    /// A request failed in a way that ends the session ([`ends_session`]), though the
    /// connection may not have read the socket's end yet.
    ended: bool,
}

/// A host name's addresses, or why the lookup failed.
type Addresses = std::io::Result<Vec<IpAddr>>;

/// A lookup of a host name under way ([`Session::connect_via`]).
type Lookup = Pin<Box<dyn Future<Output = Addresses> + Send>>;

/// The system's resolver (`getaddrinfo`, on a thread of the runtime's blocking pool: it cannot
/// be interrupted), one lookup of a name at a time in the process ([`shared_lookup`]).
fn system_lookup(name: &str, port: u16) -> Lookup {
    shared_lookup(name, port, |name, port| {
        use std::net::ToSocketAddrs;
        Ok((name, port).to_socket_addrs()?.map(|a| a.ip()).collect())
    })
}

/// What a lookup under way will tell: `None` until it answers (the error as text, to be
/// shared).
type Answer = Option<Result<Vec<IpAddr>, String>>;

/// A lookup under way: its host name and port, and what it will answer.
type Lookups = Vec<((String, u16), tokio::sync::watch::Receiver<Answer>)>;

/// The lookups under way in this process.
static LOOKING_UP: parking_lot::Mutex<Lookups> = parking_lot::Mutex::new(Vec::new());

/// Ends a lookup under way: takes it off [`LOOKING_UP`] and tells its answer to every attempt
/// waiting for it — or, dropped without an answer (the lookup dropped before it ran, its
/// runtime shut down first), tells them it ended without one.
struct UnderWay {
    key: (String, u16),
    tell: tokio::sync::watch::Sender<Answer>,
}

impl Drop for UnderWay {
    fn drop(&mut self) {
        LOOKING_UP.lock().retain(|(k, _)| k != &self.key);
        self.tell.send_if_modified(|answer| {
            let unanswered = answer.is_none();
            if unanswered {
                *answer = Some(Err("the lookup ended without an answer".to_owned()));
            }
            unanswered
        });
    }
}

/// `resolve(name, port)` on a thread of the runtime's blocking pool, shared: an attempt that
/// finds a lookup of the same name and port under way in this process (from any session, any
/// runtime) waits for that one's answer instead of starting another. A lookup the resolver
/// never answers keeps its thread until it does (nothing can interrupt it, and the runtime is
/// shut down without waiting for it); without the sharing every later attempt for the host (a
/// reader reconnecting at each query, a writer after each hold) left one more such thread
/// behind, without end (found by a review on 2026-12-07). Each attempt still gives up after
/// its own bound ([`lookup_within`]).
fn shared_lookup(
    name: &str,
    port: u16,
    resolve: impl FnOnce(&str, u16) -> Addresses + Send + 'static,
) -> Lookup {
    let key = (name.to_owned(), port);
    Box::pin(async move {
        let mut answer = {
            let mut under_way = LOOKING_UP.lock();
            match under_way.iter().find(|(k, _)| k == &key) {
                Some((_, answer)) => answer.clone(),
                None => {
                    let (tell, answer) = tokio::sync::watch::channel(None);
                    under_way.push((key.clone(), answer.clone()));
                    let ending = UnderWay { key, tell };
                    drop(tokio::task::spawn_blocking(move || {
                        let ending = ending;
                        let found = resolve(&ending.key.0, ending.key.1);
                        // Off the list first: an attempt woken by the answer finds no lookup under way.
                        LOOKING_UP.lock().retain(|(k, _)| k != &ending.key);
                        ending
                            .tell
                            .send_replace(Some(found.map_err(|e| e.to_string())));
                    }));
                    answer
                }
            }
        };
        loop {
            if let Some(found) = answer.borrow_and_update().clone() {
                return found.map_err(std::io::Error::other);
            }
            if answer.changed().await.is_err() {
                return Err(std::io::Error::other("the lookup ended without an answer"));
            }
        }
    })
}

/// The addresses `lookup` gives (in order, without repeats next to each other), within
/// `bound` (the connect timeout, as for each attempt): [`Failure::LookupSilent`] when it has not
/// answered by then, for the next host to be tried.
async fn lookup_within(
    lookup: impl Future<Output = Addresses>,
    bound: Duration,
) -> Result<Vec<IpAddr>, Failure> {
    let mut addrs = match tokio::time::timeout(bound, lookup).await {
        Ok(found) => found.map_err(Failure::Lookup)?,
        Err(_) => return Err(Failure::LookupSilent),
    };
    addrs.dedup();
    if addrs.is_empty() {
        return Err(Failure::Lookup(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "could not resolve any addresses",
        )));
    }
    Ok(addrs)
}

/// Why one attempt failed.
enum Failure {
    /// The driver's error: the server's, the network's, the TLS layer's.
    Driver(Error),
    /// The name lookup's.
    Lookup(std::io::Error),
    /// No answer from the name lookup within the bound.
    LookupSilent,
    /// No answer within the bound; `connected`: the socket connection was made.
    Silent { connected: bool },
}

/// One place to try: its configuration (one host, at most one address) and its name for
/// messages.
struct Attempt {
    config: Config,
    at: String,
}

impl Session {
    /// Connects as `config` says and applies `settings` (SQL statements), every host name's
    /// lookup and every attempt (socket connection, TLS, start-up, authentication and
    /// `settings`) within the connect timeout ([`DEFAULT_CONNECT_TIMEOUT`] when `config` has none). The error tells each
    /// place tried and why it failed; it never holds the password.
    pub fn connect<T>(config: &Config, tls: T, settings: &str) -> JournalResult<Session>
    where
        T: MakeTlsConnect<Socket> + Clone,
        T::Stream: Send + 'static,
    {
        Session::connect_via(config, tls, settings, system_lookup)
    }

    /// [`Session::connect`], looking host names up with `resolve` (the system's resolver, or a
    /// test's).
    fn connect_via<T>(
        config: &Config,
        tls: T,
        settings: &str,
        resolve: impl Fn(&str, u16) -> Lookup,
    ) -> JournalResult<Session>
    where
        T: MakeTlsConnect<Socket> + Clone,
        T::Stream: Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                JournalError::Database(format!("PostgreSQL: cannot start the client: {e}"))
            })?;
        let bound = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let random = config.get_load_balance_hosts() == LoadBalanceHosts::Random;
        let outcome = runtime.block_on(async {
            let mut failures: Vec<(String, Failure)> = Vec::new();
            for place in places(config, random) {
                let attempts = match place {
                    Place::Direct(index) => vec![attempt(config, index, None)],
                    Place::Lookup { name, port, index } => {
                        match lookup_within(resolve(&name, port), bound).await {
                            Ok(mut addrs) => {
                                if random {
                                    shuffle(&mut addrs);
                                }
                                addrs
                                    .into_iter()
                                    .map(|ip| attempt(config, index, Some(ip)))
                                    .collect()
                            }
                            Err(failure) => {
                                failures.push((format!("{name}:{port}"), failure));
                                continue;
                            }
                        }
                    }
                };
                for attempt in attempts {
                    match connect_once(&attempt.config, tls.clone(), settings, bound).await {
                        Ok(session) => return Ok(session),
                        Err(failure) => failures.push((attempt.at, failure)),
                    }
                }
            }
            Err(failures)
        });
        match outcome {
            Ok((client, connection)) => Ok(Session {
                runtime: Some(runtime),
                client: Some(client),
                connection,
                ended: false,
            }),
            Err(failures) => {
                // Not waiting for a lookup given up on its bound (see `Session::runtime`).
                runtime.shutdown_background();
                Err(JournalError::Database(format!(
                    "PostgreSQL: {}",
                    explain(&failures, bound)
                )))
            }
        }
    }

    /// Runs `f` on the client while the connection is driven: the connection's error when it
    /// fails meanwhile, as the `postgres` crate's synchronous client does.
    fn run<'a, T, F>(&'a mut self, f: impl FnOnce(&'a Client) -> F) -> JournalResult<T>
    where
        F: Future<Output = Result<T, Error>> + 'a,
    {
        let Session {
            runtime,
            client,
            connection,
            ended,
        } = self;
        let (Some(client), Some(runtime)) = (client.as_ref(), runtime.as_ref()) else {
            return Err(JournalError::Database(
                "PostgreSQL: the connection is closed".to_owned(),
            ));
        };
        let result = runtime.block_on(drive(connection, f(client)));
        if let Err(e) = &result {
            *ended |= ends_session(e);
        }
        result.map_err(err)
    }

    /// Runs `sql` (statements separated by `;`, no parameters).
    pub fn batch_execute(&mut self, sql: &str) -> JournalResult<()> {
        self.run(|c| c.batch_execute(sql))
    }

    /// Prepares `sql`.
    pub fn prepare(&mut self, sql: &str) -> JournalResult<Statement> {
        self.run(|c| c.prepare(sql))
    }

    /// Runs `statement` with `params`: the number of rows it changed.
    pub fn execute(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> JournalResult<u64> {
        self.run(|c| c.execute(statement, params))
    }

    /// Runs `statement` with `params`: its rows.
    pub fn query(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> JournalResult<Vec<Row>> {
        self.run(|c| c.query(statement, params))
    }

    /// Whether the connection ended (the server closed it, or it failed): the session is of no
    /// more use.
    pub fn is_closed(&self) -> bool {
        self.ended || self.client.as_ref().is_none_or(Client::is_closed)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Without its client, the connection tells the server it leaves and ends.
        drop(self.client.take());
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        if let Some(connection) = self.connection.take() {
            // The timer made inside the runtime: made outside, it panics.
            let _ = runtime.block_on(async { tokio::time::timeout(CLOSE_WAIT, connection).await });
        }
        runtime.shutdown_background();
    }
}

/// Whether `e` ends the session: the connection closed, or an error of severity `FATAL` or
/// `PANIC` (PostgreSQL ends the session after sending one: `pg_terminate_backend`, a server
/// shutting down, `idle_session_timeout`). Such an error can reach the request that was
/// waiting before the connection has read the socket's end, and the session must then count
/// as ended at once, for the caller to reconnect (a reader's query failed, and did not retry,
/// when the server ended its session in the middle of it; found by CI on 2026-12-07).
fn ends_session(e: &Error) -> bool {
    e.is_closed()
        || e.as_db_error()
            .is_some_and(|d| matches!(d.severity(), "FATAL" | "PANIC"))
}

/// Polls `connection` (while it runs) with `f`: the connection's error if it fails first.
async fn drive<T>(
    connection: &mut Option<Driver>,
    f: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let mut f = pin!(f);
    poll_fn(|cx| {
        if let Some(driver) = connection.as_mut() {
            match driver.as_mut().poll(cx) {
                Poll::Pending => {}
                // Dropped before `f` is polled: its answer, never coming, then fails at once.
                Poll::Ready(Ok(())) => *connection = None,
                Poll::Ready(Err(e)) => {
                    *connection = None;
                    return Poll::Ready(Err(e));
                }
            }
        }
        f.as_mut().poll(cx)
    })
    .await
}

/// The client and its connection, as [`connect_once`] gives them.
type Connected = (Client, Option<Driver>);

/// One attempt, all of it within `bound`.
async fn connect_once<T>(
    config: &Config,
    tls: T,
    settings: &str,
    bound: Duration,
) -> Result<Connected, Failure>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let connected = Arc::new(AtomicBool::new(false));
    let tls = Noted {
        inner: tls,
        connected: Arc::clone(&connected),
    };
    let attempt = async {
        let (client, connection) = config.connect(tls).await.map_err(Failure::Driver)?;
        let mut connection: Option<Driver> = Some(Box::pin(connection));
        if !settings.is_empty() {
            drive(&mut connection, client.batch_execute(settings))
                .await
                .map_err(Failure::Driver)?;
        }
        Ok((client, connection))
    };
    match tokio::time::timeout(bound, attempt).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Silent {
            connected: connected.load(Ordering::Relaxed),
        }),
    }
}

/// The TLS connector, noting that the socket connection was made: the driver asks for a
/// connector right after it, and before the start-up, with or without TLS.
#[derive(Clone)]
struct Noted<T> {
    inner: T,
    connected: Arc<AtomicBool>,
}

impl<T: MakeTlsConnect<Socket>> MakeTlsConnect<Socket> for Noted<T> {
    type Stream = T::Stream;
    type TlsConnect = T::TlsConnect;
    type Error = T::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<T::TlsConnect, T::Error> {
        self.connected.store(true, Ordering::Relaxed);
        self.inner.make_tls_connect(domain)
    }
}

/// A host of the configuration (its index): one place to try, or a name to look up first.
enum Place {
    Direct(usize),
    Lookup {
        name: String,
        port: u16,
        index: usize,
    },
}

/// The hosts of `config` in the order they are tried (random with `random`), as the driver
/// pairs them: the `i`-th host with the `i`-th address and the `i`-th port (or the only port,
/// or 5432).
fn places(config: &Config, random: bool) -> Vec<Place> {
    let count = config.get_hosts().len().max(config.get_hostaddrs().len());
    let mut order: Vec<usize> = (0..count).collect();
    if random {
        shuffle(&mut order);
    }
    order
        .into_iter()
        .map(
            |i| match (config.get_hosts().get(i), config.get_hostaddrs().get(i)) {
                (Some(Host::Tcp(name)), None) => Place::Lookup {
                    name: name.clone(),
                    port: port_of(config, i),
                    index: i,
                },
                _ => Place::Direct(i),
            },
        )
        .collect()
}

fn port_of(config: &Config, i: usize) -> u16 {
    let ports = config.get_ports();
    ports.get(i).or(ports.first()).copied().unwrap_or(5432)
}

/// `config` narrowed to its `i`-th host and port, with `addr` (a looked-up address) or its
/// own `i`-th address; everything else as `config` has it.
fn attempt(config: &Config, i: usize, addr: Option<IpAddr>) -> Attempt {
    let host = config.get_hosts().get(i);
    let addr = addr.or_else(|| config.get_hostaddrs().get(i).copied());
    let port = port_of(config, i);
    let mut one = Config::new();
    if let Some(user) = config.get_user() {
        one.user(user);
    }
    if let Some(password) = config.get_password() {
        one.password(password);
    }
    if let Some(dbname) = config.get_dbname() {
        one.dbname(dbname);
    }
    if let Some(options) = config.get_options() {
        one.options(options);
    }
    if let Some(name) = config.get_application_name() {
        one.application_name(name);
    }
    one.ssl_mode(config.get_ssl_mode())
        .ssl_negotiation(config.get_ssl_negotiation());
    match host {
        Some(Host::Tcp(name)) => {
            one.host(name);
        }
        #[cfg(unix)]
        Some(Host::Unix(dir)) => {
            one.host_path(dir);
        }
        None => {}
    }
    if let Some(addr) = addr {
        one.hostaddr(addr);
    }
    one.port(port);
    if let Some(timeout) = config.get_connect_timeout() {
        one.connect_timeout(*timeout);
    }
    if let Some(timeout) = config.get_tcp_user_timeout() {
        one.tcp_user_timeout(*timeout);
    }
    one.keepalives(config.get_keepalives())
        .keepalives_idle(config.get_keepalives_idle());
    if let Some(interval) = config.get_keepalives_interval() {
        one.keepalives_interval(interval);
    }
    if let Some(retries) = config.get_keepalives_retries() {
        one.keepalives_retries(retries);
    }
    one.target_session_attrs(config.get_target_session_attrs())
        .channel_binding(config.get_channel_binding());
    let at = match (host, addr) {
        #[cfg(unix)]
        (Some(Host::Unix(dir)), None) => dir.join(format!(".s.PGSQL.{port}")).display().to_string(),
        (Some(Host::Tcp(name)), Some(addr)) if name.parse::<IpAddr>().ok() != Some(addr) => {
            format!("{name}:{port} ({addr})")
        }
        (_, Some(addr)) => match addr {
            IpAddr::V4(v4) => format!("{v4}:{port}"),
            IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        },
        (Some(Host::Tcp(name)), None) => format!("{name}:{port}"),
        (None, None) => format!("port {port}"),
    };
    Attempt { config: one, at }
}

/// Shuffles `items` (Fisher-Yates; the standard library's per-process random keys are enough
/// to spread connections over hosts).
fn shuffle<T>(items: &mut [T]) {
    let random = RandomState::new();
    for i in (1..items.len()).rev() {
        let j = (random.hash_one(i) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// The failures of a connect, one per place tried (each named when there were several).
fn explain(failures: &[(String, Failure)], bound: Duration) -> String {
    let one = |at: &str, failure: &Failure, named: bool| -> String {
        let seconds = bound.as_secs();
        let text = match failure {
            Failure::Silent { connected: true } => {
                return format!("{at} did not answer the start-up within {seconds} s");
            }
            Failure::Silent { connected: false } => {
                return format!("{at} did not accept the connection within {seconds} s");
            }
            Failure::LookupSilent => {
                return format!("{at}: the host name lookup did not answer within {seconds} s");
            }
            Failure::Driver(e) => crate::postgres::error_text(e),
            Failure::Lookup(e) => format!("error connecting to server: {e}"),
        };
        if named {
            format!("{at}: {text}")
        } else {
            text
        }
    };
    match failures {
        [] => "no host to connect to".to_owned(),
        [(at, failure)] => one(at, failure, false),
        several => several
            .iter()
            .map(|(at, failure)| one(at, failure, true))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::NoTls;

    #[test]
    fn an_attempt_keeps_every_setting_of_the_configuration_but_the_other_hosts() {
        let url = "postgresql://u:pw@db1.example:6001/d?options=-c%20x%3D1&application_name=a\
                   &sslmode=require&connect_timeout=7&tcp_user_timeout=9&keepalives=1\
                   &keepalives_idle=11&keepalives_interval=12&keepalives_retries=13\
                   &target_session_attrs=read-write&channel_binding=require\
                   &hostaddr=10.0.0.1&sslnegotiation=direct";
        let config: Config = url.parse().unwrap();
        let one = attempt(&config, 0, None);
        assert_eq!(format!("{:?}", one.config), format!("{config:?}"));
        assert_eq!(one.config.get_password(), Some(&b"pw"[..]));
        assert_eq!(one.at, "db1.example:6001 (10.0.0.1)");
        // Several hosts: each its own, the only port shared.
        let mut config = Config::new();
        config.host("a").host("b").host_path("/srv/pg").port(6000);
        let named: Vec<String> = places(&config, false)
            .into_iter()
            .map(|p| match p {
                Place::Direct(i) => attempt(&config, i, None).at,
                Place::Lookup { name, port, .. } => format!("lookup {name}:{port}"),
            })
            .collect();
        assert_eq!(
            named,
            ["lookup a:6000", "lookup b:6000", "/srv/pg/.s.PGSQL.6000"]
        );
        let by_addr = attempt(&config, 1, Some("::1".parse().unwrap()));
        assert_eq!(by_addr.at, "b:6000 (::1)");
        assert_eq!(by_addr.config.get_hosts(), &[Host::Tcp("b".into())]);
        assert_eq!(
            by_addr.config.get_hostaddrs(),
            &["::1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(by_addr.config.get_ports(), &[6000]);
    }

    /// `f` on a thread of its own: what it returned and how long it took, or a failure when it
    /// has not returned within `limit` (a hang fails the test instead of holding it).
    fn within<T: Send + 'static>(
        limit: Duration,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> (T, Duration) {
        let (tx, rx) = std::sync::mpsc::channel();
        let started = std::time::Instant::now();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        match rx.recv_timeout(limit) {
            Ok(v) => (v, started.elapsed()),
            Err(_) => panic!("had not returned after {limit:?}: it waits for ever"),
        }
    }

    #[test]
    fn a_lookup_that_never_answers_is_given_up_after_the_bound() {
        let bound = Duration::from_millis(300);
        let (result, took) = within(Duration::from_secs(10), move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(lookup_within(std::future::pending(), bound))
        });
        assert!(
            matches!(result, Err(Failure::LookupSilent)),
            "{:?}",
            result.map_err(|f| explain(&[("h:1".into(), f)], bound))
        );
        assert!(took >= bound, "{took:?}");
        // A lookup that answers is taken as it is.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let found = runtime.block_on(lookup_within(async move { Ok(vec![one, one]) }, bound));
        assert!(matches!(found.as_deref(), Ok([ip]) if *ip == one));
    }

    #[test]
    fn a_resolver_stuck_in_its_blocking_thread_does_not_hold_the_connect() {
        // As getaddrinfo does when no DNS server answers: the lookup runs on a thread of the
        // runtime's blocking pool, which cannot be interrupted. The connect gives the host up
        // after its bound and tries the next one, and dropping the runtime does not wait for
        // that thread (it ends here when the test drops `release`).
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let stuck = Arc::new(parking_lot::Mutex::new(stuck));
        let config: Config = "postgresql://u:secret@stuck.example,next.example/d?connect_timeout=2"
            .parse()
            .unwrap();
        let ((result, lookups), took) = within(Duration::from_secs(2 * 2 + 10), move || {
            let asked = Arc::new(parking_lot::Mutex::new(Vec::new()));
            let seen = Arc::clone(&asked);
            let result = Session::connect_via(&config, NoTls, "", move |name, port| {
                seen.lock().push(format!("{name}:{port}"));
                if name == "next.example" {
                    return Box::pin(async { Ok(Vec::new()) });
                }
                let stuck = Arc::clone(&stuck);
                Box::pin(async move {
                    let _ = tokio::task::spawn_blocking(move || stuck.lock().recv()).await;
                    Ok(vec!["127.0.0.1".parse().unwrap()])
                })
            });
            let asked = asked.lock().clone();
            (result.map(|_| ()), asked)
        });
        let message = match result {
            Err(JournalError::Database(m)) => m,
            other => panic!("expected the connect to fail, got {other:?}"),
        };
        assert!(took >= Duration::from_millis(1900), "{took:?}: {message}");
        assert!(
            message.contains("stuck.example:5432: the host name lookup did not answer within 2 s"),
            "{message}"
        );
        assert!(message.contains("next.example:5432: "), "{message}");
        assert_eq!(lookups, ["stuck.example:5432", "next.example:5432"]);
        assert!(!message.contains("secret"), "{message}");
        drop(release);
    }

    #[test]
    fn attempts_meeting_a_lookup_under_way_wait_for_it_instead_of_starting_another() {
        // A reader reconnecting at every query left one more stuck `getaddrinfo` thread per
        // attempt. Attempts that find a lookup of the same name under way share it: one thread
        // however many attempts, and every one of them gets its answer when it comes.
        const NAME: &str = "shared-lookup.example";
        let ((silent, resolved, answers), _) = within(Duration::from_secs(20), || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let (release, stuck) = std::sync::mpsc::channel::<()>();
            let stuck = Arc::new(parking_lot::Mutex::new(stuck));
            let resolved = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let attempt = || {
                let stuck = Arc::clone(&stuck);
                let resolved = Arc::clone(&resolved);
                shared_lookup(NAME, 5432, move |_, _| {
                    resolved.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = stuck.lock().recv();
                    Ok(vec!["127.0.0.1".parse().unwrap()])
                })
            };
            let bound = Duration::from_millis(100);
            let mut silent = 0;
            for _ in 0..6 {
                if let Err(Failure::LookupSilent) =
                    runtime.block_on(lookup_within(attempt(), bound))
                {
                    silent += 1;
                }
            }
            // Two attempts waiting on the one lookup when it answers.
            let waiting: Vec<_> = (0..2)
                .map(|_| runtime.spawn(lookup_within(attempt(), Duration::from_secs(5))))
                .collect();
            runtime.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
            drop(release);
            let answers: Vec<_> = waiting
                .into_iter()
                .map(|w| runtime.block_on(w).ok().and_then(Result::ok))
                .collect();
            runtime.shutdown_background();
            (
                silent,
                resolved.load(std::sync::atomic::Ordering::SeqCst),
                answers,
            )
        });
        assert_eq!(silent, 6);
        assert_eq!(resolved, 1, "one lookup for every attempt");
        let one = vec!["127.0.0.1".parse::<IpAddr>().unwrap()];
        assert_eq!(answers, [Some(one.clone()), Some(one)]);
        assert!(!LOOKING_UP.lock().iter().any(|(k, _)| k.0 == NAME));
    }

    #[test]
    fn a_lookup_dropped_before_it_ran_leaves_nothing_under_way() {
        const NAME: &str = "dropped-lookup.example";
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        // Polled once (it registers and hands its resolve to the blocking pool), then the
        // runtime is shut down before that ran, or while it ran: nothing stays registered.
        let lookup = shared_lookup(NAME, 1, |_, _| Ok(Vec::new()));
        let _ = runtime.block_on(lookup_within(lookup, Duration::from_millis(1)));
        runtime.shutdown_background();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while LOOKING_UP.lock().iter().any(|(k, _)| k.0 == NAME) {
            assert!(
                std::time::Instant::now() < deadline,
                "the lookup stayed registered"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_shuffle_keeps_every_item() {
        let mut items: Vec<usize> = (0..50).collect();
        shuffle(&mut items);
        items.sort_unstable();
        assert_eq!(items, (0..50).collect::<Vec<_>>());
    }
}
