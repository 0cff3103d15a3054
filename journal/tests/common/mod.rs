//! Databases for the journal's integration tests.

use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique(tag: &str) -> String {
    format!(
        "{tag}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh, empty database on the test server, or `None` (skipped) when there is none.
pub fn postgres_db() -> Option<String> {
    let Ok(base) = std::env::var("PMRS_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but PMRS_TEST_POSTGRES_URL is not set: the PostgreSQL tests cannot run"
        );
        eprintln!("PMRS_TEST_POSTGRES_URL is not set: PostgreSQL part skipped");
        return None;
    };
    let name = unique("pmrs_store");
    let mut admin = postgres::Client::connect(&base, postgres::NoTls).expect("test server");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let (prefix, _) = base.rsplit_once('/').expect("a URL with a database");
    Some(format!("{prefix}/{name}"))
}
