//! Where a journal lives and how durable its writes are.
//!
//! - a file path, or `sqlite:///relative/path.db` / `sqlite:////absolute/path.db` (the
//!   SQLAlchemy spelling freqtrade uses): SQLite in WAL mode;
//! - `postgresql://user:password@host:port/database?options` (or `postgres://`), as libpq
//!   and the bot's `DATABASE_URL` spell it: PostgreSQL.
//!
//! Anything else with a `scheme://` is refused, so a typo never becomes a file named
//! `mysql:/...`.

use std::borrow::Cow;
use std::path::PathBuf;

use percent_encoding::percent_decode_str;

use crate::{JournalError, JournalResult};

/// A journal's database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (a URL).
    Postgres(String),
}

impl Target {
    /// Reads a journal URL or a file path.
    pub fn parse(spec: &str) -> JournalResult<Target> {
        let bad =
            |why: &str| JournalError::Config(format!("journal {why}, got {:?}", redact(spec)));
        if spec.is_empty() {
            return Err(bad(
                "must be a file path, sqlite:///path or postgresql://...",
            ));
        }
        if spec.contains('\0') {
            return Err(bad("must not contain a NUL byte"));
        }
        if let Some(rest) = spec.strip_prefix("sqlite:///") {
            if rest.is_empty() {
                return Err(bad("sqlite:/// needs a file path after it"));
            }
            return Ok(Target::Sqlite(PathBuf::from(rest)));
        }
        if spec.starts_with("sqlite:") {
            return Err(bad(
                "must spell an SQLite file sqlite:///relative/path or sqlite:////absolute/path",
            ));
        }
        if spec.starts_with("postgresql://") || spec.starts_with("postgres://") {
            crate::postgres::parse_url(spec, &crate::environment::ProcessEnvironment)?;
            return Ok(Target::Postgres(spec.to_owned()));
        }
        if let Some((scheme, _)) = spec.split_once("://") {
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
            {
                return Err(bad(&format!(
                    "scheme {scheme:?} is not supported (a file path, sqlite:///path or postgresql://...)"
                )));
            }
        }
        Ok(Target::Sqlite(PathBuf::from(spec)))
    }

    /// [`Target::parse`] of the argument `name` (a manager's `journal=`, a reader's `url`): a
    /// refusal names that argument rather than "journal".
    pub fn parse_arg(name: &str, spec: &str) -> JournalResult<Target> {
        Target::parse(spec).map_err(|e| match e {
            JournalError::Config(m) => JournalError::Config(match m.strip_prefix("journal ") {
                Some(rest) => format!("{name} {rest}"),
                None => m,
            }),
            other => other,
        })
    }

    /// The target as [`Target::parse`] reads it back, without a password: for messages and a
    /// reader's `url`. An SQLite file is `sqlite:///` and its path (`sqlite:////tmp/j.db` for
    /// `/tmp/j.db`; a relative path stays relative); a PostgreSQL URL has its passwords
    /// replaced by `***` ([`redact`]).
    pub fn display(&self) -> String {
        match self {
            Target::Sqlite(p) => format!("sqlite:///{}", p.display()),
            Target::Postgres(url) => redact(url),
        }
    }
}

/// One `name=value` option of a URL's query: its name and value percent-decoded (a pair
/// without `=` has an empty value). What [`redact`] and [`crate::tls::split`] both read.
pub(crate) fn query_option(pair: &str) -> (Cow<'_, str>, Cow<'_, str>) {
    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
    (
        percent_decode_str(name).decode_utf8_lossy(),
        percent_decode_str(value).decode_utf8_lossy(),
    )
}

/// `url` with its passwords replaced by `***`: the one in its user info, and the values of the
/// query options `password` and `sslpassword` (libpq takes a password either way).
pub fn redact(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match url.split_once("://") {
        None => url.to_owned(),
        Some((scheme, rest)) => {
            let (authority, tail) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            match authority.rsplit_once('@') {
                Some((user, host)) => {
                    let user = match user.split_once(':') {
                        Some((name, _)) => format!("{name}:***"),
                        None => user.to_owned(),
                    };
                    format!("{scheme}://{user}@{host}{tail}")
                }
                None => url.to_owned(),
            }
        }
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match query_option(pair).0.as_ref() {
                "password" | "sslpassword" => {
                    let raw_name = pair.split_once('=').map_or(pair, |(name, _)| name);
                    format!("{raw_name}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// How durable a journal write is when the call that recorded it returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// Committed and on disk: survives the process's crash, an OS crash and a power loss
    /// (SQLite `synchronous=FULL`; PostgreSQL `synchronous_commit=on`).
    #[default]
    Full,
    /// Committed: survives the process's crash (SIGKILL); an OS crash or power loss may lose
    /// the last writes but never leaves an inconsistent journal (SQLite WAL
    /// `synchronous=NORMAL`; PostgreSQL `synchronous_commit=off`).
    Normal,
    /// Committed without waiting for the disk at all: survives the process's crash; an OS
    /// crash or power loss may lose the last writes and, for SQLite, damage the file
    /// (SQLite `synchronous=OFF`; PostgreSQL `synchronous_commit=off`).
    Off,
}

impl SyncMode {
    /// `"full"`, `"normal"` or `"off"`.
    pub fn parse(text: &str) -> JournalResult<SyncMode> {
        match text {
            "full" => Ok(SyncMode::Full),
            "normal" => Ok(SyncMode::Normal),
            "off" => Ok(SyncMode::Off),
            _ => Err(JournalError::Config(format!(
                "journal_sync must be 'full', 'normal' or 'off', got {text:?}"
            ))),
        }
    }

    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::Full => "full",
            SyncMode::Normal => "normal",
            SyncMode::Off => "off",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("j.db").unwrap(),
            Target::Sqlite(PathBuf::from("j.db"))
        );
        assert_eq!(
            Target::parse("sqlite:///j.db").unwrap(),
            Target::Sqlite(PathBuf::from("j.db"))
        );
        assert_eq!(
            Target::parse("sqlite:////tmp/j.db").unwrap(),
            Target::Sqlite(PathBuf::from("/tmp/j.db"))
        );
        assert!(matches!(
            Target::parse("postgresql://u:p@127.0.0.1:5432/db").unwrap(),
            Target::Postgres(_)
        ));
        for spec in ["j.db", "/tmp/j.db", "sqlite:///j.db", "sqlite:////tmp/j.db"] {
            let target = Target::parse(spec).unwrap();
            assert_eq!(Target::parse(&target.display()).unwrap(), target, "{spec}");
        }
        assert_eq!(
            Target::parse("/tmp/j.db").unwrap().display(),
            "sqlite:////tmp/j.db"
        );
        for bad in ["", "sqlite://j.db", "sqlite:///", "mysql://x/y", "a\0b"] {
            assert!(
                matches!(Target::parse(bad), Err(JournalError::Config(_))),
                "{bad}"
            );
        }
        assert_eq!(
            redact("postgresql://bot:secret@db:5432/trades"),
            "postgresql://bot:***@db:5432/trades"
        );
        assert_eq!(redact("postgresql://db/trades"), "postgresql://db/trades");
        assert_eq!(
            redact("postgresql://bot:secret@db/trades?password=also&sslmode=require&pass%77ord=x"),
            "postgresql://bot:***@db/trades?password=***&sslmode=require&pass%77ord=***"
        );
        assert_eq!(
            redact("postgresql://db/t?application_name=a@b&sslpassword=k&user=bot"),
            "postgresql://db/t?application_name=a@b&sslpassword=***&user=bot"
        );
        for (spec, start) in [
            ("", "url must be a file path"),
            ("sqlite://j.db", "url must spell an SQLite file"),
            ("mysql://x/y", "url scheme \"mysql\" is not supported"),
        ] {
            match Target::parse_arg("url", spec) {
                Err(JournalError::Config(m)) => assert!(m.starts_with(start), "{spec}: {m}"),
                other => panic!("{spec}: {other:?}"),
            }
        }
        assert_eq!(SyncMode::parse("normal").unwrap(), SyncMode::Normal);
        assert!(SyncMode::parse("FULL").is_err());
    }
}
