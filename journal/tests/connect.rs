//! Opening a PostgreSQL journal is bounded as a whole: a server (or anything listening on the
//! port) that accepts the connection and then never answers the start-up, the TLS handshake or
//! the authentication is given up after the connect timeout, naming where it was tried and no
//! password. Each connect runs on a thread of its own, joined with a timeout, so that a
//! connect that hangs fails the test instead of holding it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use position_manager_core::clock::Timestamp;
use position_manager_core::events::{EventKind, EventLog};
use position_manager_core::position::PositionState;
use position_manager_journal::postgres::Postgres;
use position_manager_journal::reader::Reader;
use position_manager_journal::store::{Batch, EventWrite};
use position_manager_journal::writer::Writer;
use position_manager_journal::{JournalError, SyncMode, Target};

#[allow(dead_code)] // the helpers other test files use
mod common;

use common::within;

/// A TCP listener on 127.0.0.1 that accepts every connection, writes `greeting` on it, reads
/// whatever comes and never answers. Returns its port.
fn silent_tcp(greeting: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let port = listener.local_addr().expect("its address").port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            thread::spawn(move || {
                let _ = stream.write_all(greeting);
                let mut sink = [0u8; 4096];
                // Read until the client gives up; answer nothing more.
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    port
}

/// A Unix socket at `dir/.s.PGSQL.5432` that accepts every connection and never answers.
#[cfg(unix)]
fn silent_unix(dir: &std::path::Path) {
    let listener = std::os::unix::net::UnixListener::bind(dir.join(".s.PGSQL.5432"))
        .expect("a socket in the temporary directory");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            thread::spawn(move || {
                let mut sink = [0u8; 4096];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
}

/// Connects to `url` (the bound being `seconds`) and returns the error's text, checking that
/// it came no sooner than the bound, names `at` and shows no password.
fn refused_after(url: &str, seconds: u64, at: &str) -> String {
    let bound = Duration::from_secs(seconds);
    let owned = url.to_owned();
    let (result, took) = within("the connect", bound, move || {
        Postgres::connect(&owned, SyncMode::Full, false).map(|_| ())
    });
    let message = match result {
        Err(JournalError::Database(m)) => m,
        other => panic!("{url}: expected a connection error, got {other:?}"),
    };
    assert!(
        took >= bound - Duration::from_millis(100),
        "{url}: gave up after {took:?}, before its bound {bound:?}: {message}"
    );
    assert!(
        message.contains(&format!("did not answer the start-up within {seconds} s")),
        "{url}: {message}"
    );
    assert!(message.contains(at), "{url}: {message} does not name {at}");
    assert!(!message.contains("secret"), "{url}: {message}");
    message
}

#[test]
fn a_server_that_accepts_and_never_answers_is_given_up_after_the_connect_timeout() {
    let port = silent_tcp(b"");
    let at = format!("127.0.0.1:{port}");
    // Without TLS: the start-up message waits for its answer.
    refused_after(
        &format!("postgresql://u:secret@127.0.0.1:{port}/db?connect_timeout=2&sslmode=disable"),
        2,
        &at,
    );
    // libpq's default sslmode, prefer: the request for TLS waits for its one-byte answer.
    refused_after(
        &format!("postgresql://u:secret@127.0.0.1:{port}/db?connect_timeout=3"),
        3,
        &at,
    );
    // TLS required: the same wait, and the password given as an option is not shown either.
    refused_after(
        &format!(
            "postgresql://u@127.0.0.1:{port}/db?connect_timeout=2&sslmode=require&password=secret"
        ),
        2,
        &at,
    );
}

#[test]
fn a_server_that_answers_a_few_bytes_then_goes_silent_is_given_up_too() {
    // 'S' accepts TLS: the handshake then waits for the server's hello.
    let tls = silent_tcp(b"S");
    refused_after(
        &format!("postgresql://u:secret@127.0.0.1:{tls}/db?connect_timeout=2&sslmode=require"),
        2,
        &format!("127.0.0.1:{tls}"),
    );
    // Half of an authentication request's header: the client waits for the rest.
    let half = silent_tcp(b"R\0\0");
    refused_after(
        &format!("postgresql://u:secret@127.0.0.1:{half}/db?connect_timeout=2&sslmode=disable"),
        2,
        &format!("127.0.0.1:{half}"),
    );
}

#[test]
fn a_timeout_below_two_seconds_is_two_seconds_as_in_libpq() {
    let port = silent_tcp(b"");
    refused_after(
        &format!("postgresql://u@127.0.0.1:{port}/db?connect_timeout=1&sslmode=disable"),
        2,
        &format!("127.0.0.1:{port}"),
    );
}

#[cfg(unix)]
#[test]
fn a_silent_unix_socket_is_given_up_after_the_connect_timeout() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    silent_unix(dir.path());
    let encoded = dir.path().display().to_string().replace('/', "%2F");
    let socket = dir.path().join(".s.PGSQL.5432");
    refused_after(
        &format!("postgresql://u:secret@{encoded}/db?connect_timeout=2"),
        2,
        &socket.display().to_string(),
    );
}

#[test]
fn the_next_host_is_tried_after_a_silent_one() {
    // libpq's connect_timeout is per host: the first one's silence does not end the connect,
    // the second is tried, and the error tells both.
    let first = silent_tcp(b"");
    let second = silent_tcp(b"");
    let url = format!(
        "postgresql://u:secret@127.0.0.1:{first},127.0.0.1:{second}/db?connect_timeout=2\
         &sslmode=disable"
    );
    let (result, took) = within("the connect", Duration::from_secs(4), move || {
        Postgres::connect(&url, SyncMode::Full, false).map(|_| ())
    });
    let message = match result {
        Err(JournalError::Database(m)) => m,
        other => panic!("expected a connection error, got {other:?}"),
    };
    assert!(took >= Duration::from_millis(3900), "{took:?}: {message}");
    for port in [first, second] {
        assert!(
            message.contains(&format!(
                "127.0.0.1:{port} did not answer the start-up within 2 s"
            )),
            "{message}"
        );
    }
    assert!(!message.contains("secret"), "{message}");
}

#[test]
fn the_reader_gives_up_a_silent_server_too() {
    let port = silent_tcp(b"");
    let url = format!("postgresql://u:secret@127.0.0.1:{port}/db?connect_timeout=2");
    let (result, _) = within("the connect", Duration::from_secs(2), move || {
        Reader::open(&url).map(|_| ())
    });
    match result {
        Err(JournalError::Database(m)) => {
            assert!(
                m.contains("did not answer the start-up within 2 s") && !m.contains("secret"),
                "{m}"
            );
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
}

/// A proxy on 127.0.0.1 to the test server: it forwards every connection until
/// [`Proxy::go_silent`], which ends the connections it forwards; from then on it accepts new
/// ones and never answers them.
struct Proxy {
    port: u16,
    silent: Arc<AtomicBool>,
    forwarded: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn to(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let port = listener.local_addr().expect("its address").port();
        let silent = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(Mutex::new(Vec::new()));
        let (quiet, kept) = (Arc::clone(&silent), Arc::clone(&forwarded));
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                if quiet.load(Ordering::SeqCst) {
                    thread::spawn(move || {
                        let mut sink = [0u8; 4096];
                        while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
                    });
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let pipes = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                );
                let (Ok(mut c_in), Ok(mut s_out), Ok(mut c_out), Ok(mut s_in)) = pipes else {
                    continue;
                };
                thread::spawn(move || std::io::copy(&mut c_in, &mut s_out));
                thread::spawn(move || std::io::copy(&mut s_in, &mut c_out));
                let mut kept = kept.lock().expect("not poisoned");
                kept.push(client);
                kept.push(server);
            }
        });
        Proxy {
            port,
            silent,
            forwarded,
        }
    }

    fn go_silent(&self) {
        self.silent.store(true, Ordering::SeqCst);
        for stream in self.forwarded.lock().expect("not poisoned").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// A batch of one new event of `log`.
fn one_event(log: &EventLog) -> Batch {
    let state = PositionState::new(
        "BTC/USDT:USDT",
        "long",
        100.0,
        2.0,
        10.0,
        95.0,
        Some(120.0),
        Timestamp(1_700_000_000_000_000),
    );
    let event = log.record(
        Timestamp(1_700_000_000_000_000),
        "BTC/USDT:USDT",
        EventKind::Added,
        "test",
        None,
        state,
    );
    let mut batch = Batch::default();
    batch.events.push(EventWrite::new(&event, None, None));
    batch
}

#[test]
fn a_writer_reconnecting_to_a_server_gone_silent_gives_up_after_the_connect_timeout() {
    // The writer re-opens a broken connection before its next write: a server that went
    // silent meanwhile held that write (and the manager call making it) for ever.
    let Some(db) = common::postgres_db() else {
        return;
    };
    let (scheme_user, rest) = db.split_once('@').expect("a URL with a host");
    let (upstream, database) = rest.split_once('/').expect("a URL with a database");
    let proxy = Proxy::to(upstream.to_owned());
    let url = format!(
        "{scheme_user}@127.0.0.1:{}/{database}?connect_timeout=2",
        proxy.port
    );
    let (mut writer, _) = Writer::open(
        Target::parse(&url).expect("a journal URL"),
        SyncMode::Full,
        "main",
        10,
        1_700_000_000_000_000,
    )
    .expect("the journal opens through the proxy");
    let log = EventLog::new(0);
    writer
        .write(one_event(&log), 0)
        .expect("a write through the proxy");
    proxy.go_silent();
    let silent = format!(
        "127.0.0.1:{} did not answer the start-up within 2 s",
        proxy.port
    );
    // The first write finds the connection ended and reconnects: given up after the bound.
    // The next ones, within three times that wait, do not try again (each would hold its
    // manager call for the whole bound): they fail at once, their events queued. After the
    // hold, a write tries again.
    let attempt = |mut writer: Writer, bound: Duration| {
        let batch = one_event(&log);
        let ((back, result), took) = within("the connect", bound, move || {
            let result = writer.write(batch, 1).map(|_| ());
            (writer, result)
        });
        match result {
            Err(JournalError::Database(m)) => (back, m, took),
            other => panic!("expected the write to fail, got {other:?}"),
        }
    };
    let (writer, m, took) = attempt(writer, Duration::from_secs(2));
    assert!(m.contains(&silent), "{m}");
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert_eq!(writer.queued_events(), 1);
    let (writer, m, took) = attempt(writer, Duration::ZERO);
    assert!(m.contains("not reconnecting to the journal yet"), "{m}");
    assert!(
        took < Duration::from_secs(1),
        "held writes fail at once: {took:?}"
    );
    assert_eq!(writer.queued_events(), 2);
    thread::sleep(Duration::from_secs(2) * 3 + Duration::from_millis(500));
    let (writer, m, _) = attempt(writer, Duration::from_secs(2));
    assert!(
        m.contains(&silent),
        "after the hold, a write tries again: {m}"
    );
    assert_eq!(writer.queued_events(), 3);
}

#[test]
fn a_session_the_server_ended_during_a_query_counts_as_ended_at_once() {
    // A fatal error (here `pg_terminate_backend`, as a server shutting down or
    // `idle_session_timeout` send) can reach the waiting query before the connection has read
    // the socket's end: the session must count as ended when the query fails, for the reader
    // and the writer to reconnect and ask again (a reader's query failed and did not retry in
    // CI on 2026-12-07).
    use position_manager_journal::sql::Sql;
    let Some(db) = common::postgres_db() else {
        return;
    };
    let url = format!("{db}?application_name=pmrs_ended_session");
    for round in 0..20 {
        let mut session = Postgres::connect(&url, SyncMode::Full, false).expect("connects");
        let admin_url = db.clone();
        let killer = thread::spawn(move || {
            let mut admin =
                postgres::Client::connect(&admin_url, postgres::NoTls).expect("test server");
            thread::sleep(Duration::from_millis(200));
            admin
                .batch_execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = 'pmrs_ended_session'",
                )
                .expect("terminates");
        });
        let failed = session.batch("SELECT pg_sleep(5)");
        let broken = session.is_broken();
        killer.join().expect("the killer thread");
        assert!(failed.is_err(), "round {round}: the query was ended");
        assert!(
            broken,
            "round {round}: the session counts as ended: {failed:?}"
        );
    }
}
