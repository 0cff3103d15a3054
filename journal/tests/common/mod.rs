//! Databases for the journal's integration tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique(tag: &str) -> String {
    format!(
        "{tag}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The test server's setting `var` (`.ci/postgres start` sets them), or `None`: the tests
/// that need it are skipped, unless `CI=true`, where a missing one fails.
pub fn test_server_env(var: &str) -> Option<String> {
    let value = std::env::var(var).ok();
    if value.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {var} is not set: the tests that need it cannot run"
        );
        eprintln!("{var} is not set: the tests that need it are skipped");
    }
    value
}

/// A fresh, empty database on the test server, or `None` (skipped) when there is none.
pub fn postgres_db() -> Option<String> {
    let base = test_server_env("PMRS_TEST_POSTGRES_URL")?;
    let name = unique("pmrs_store");
    let mut admin = postgres::Client::connect(&base, postgres::NoTls).expect("test server");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let (prefix, _) = base.rsplit_once('/').expect("a URL with a database");
    Some(format!("{prefix}/{name}"))
}

/// How much later than its bound a connect or a start-up may return on a loaded two-core
/// machine.
const SLACK: Duration = Duration::from_secs(10);

/// `f` on a thread of its own: what it returned and how long it took, or a failure naming
/// `what` when it has not returned within `bound` plus [`SLACK`] (a hang fails the test
/// instead of holding it).
#[allow(dead_code)] // used by the connect and start-up tests
pub fn within<T: Send + 'static>(
    what: &str,
    bound: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> (T, Duration) {
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(bound + SLACK) {
        Ok(v) => (v, started.elapsed()),
        Err(_) => panic!(
            "{what} had not returned after {:?} (bound {bound:?}): it waits for ever",
            bound + SLACK
        ),
    }
}
