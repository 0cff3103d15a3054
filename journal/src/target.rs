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
        if is_keyword_value_string(spec) {
            // Not `bad`: the string is not shown, it may hold the password.
            return Err(JournalError::Config(
                "journal is a libpq keyword/value connection string (host=... dbname=...), which \
                 is not read here: give a postgresql:// URL, e.g. \
                 postgresql://user:password@host:5432/dbname?sslmode=require (the string is not \
                 shown, as it may hold a password; a file of such a name is given as ./NAME)"
                    .to_owned(),
            ));
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

/// libpq's connection keywords (`PQconndefaults`, PostgreSQL 17, and the deprecated ones it
/// still reads).
const LIBPQ_KEYWORDS: [&str; 46] = [
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslmode",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslcertmode",
    "sslpassword",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "gssencmode",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "replication",
    "target_session_attrs",
    "load_balance_hosts",
    "service",
    "requiressl",
    "authtype",
    "tty",
    "min_protocol_version",
    "max_protocol_version",
];

/// Whether `spec` is, as libpq reads one, a keyword/value connection string
/// (`host=db.example.com user=bot password=hunter2 dbname=trading`): one or more `keyword =
/// value` pairs and nothing else, every keyword one of libpq's ([`LIBPQ_KEYWORDS`], lower
/// case, as libpq), a value either unquoted (up to the next white space, `\` escaping) or in
/// single quotes (`\'` and `\\` inside). Such a string was taken as a file name and became an
/// SQLite file named after it, password included, which `journal_status` showed (found by an
/// audit on 2026-12-07). A file name is taken for one only when it is wholly made of such pairs
/// (`host=a.db`, `dbname=x user=y`); `./host=a.db`, `data/dbname=x.db`, `x=1.db` and
/// `my journal.db` are file names.
fn is_keyword_value_string(spec: &str) -> bool {
    let mut chars = spec.chars().peekable();
    let mut pairs = 0;
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return pairs > 0;
        }
        let mut keyword = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            keyword.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') || !LIBPQ_KEYWORDS.contains(&keyword.as_str()) {
            return false;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return false,
                    Some('\\') => {
                        if chars.next().is_none() {
                            return false;
                        }
                    }
                    Some('\'') => break,
                    Some(_) => {}
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    chars.next();
                }
            }
        }
        pairs += 1;
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

/// Whether the query option named `raw_name` (as written, percent-encoded) holds a password:
/// `password` or `sslpassword`, in any case (libpq knows them in lower case only, and another
/// case is refused as an unknown option, whose message must not show it either).
fn is_password_option(raw_name: &str) -> bool {
    let name = percent_decode_str(raw_name).decode_utf8_lossy();
    let name = name.trim();
    name.eq_ignore_ascii_case("password") || name.eq_ignore_ascii_case("sslpassword")
}

/// The byte ranges of `text[from..]`, read as a URL's query, that hold a password: the value
/// of every `password`/`sslpassword` option, up to the next `&`. A stray `?` inside the query
/// separates too (`sslmode=disable?password=x` hides `x`: the parsers take it as part of
/// `sslmode`'s value, which a message may quote), and a password's value runs to the next `&`
/// whatever it holds (`password=ab?cd` hides `ab?cd`).
fn query_secrets(text: &str, from: usize, out: &mut Vec<(usize, usize)>) {
    let mut offset = from;
    for pair in text[from..].split('&') {
        let mut segment_offset = offset;
        for segment in pair.split('?') {
            if let Some((name, _)) = segment.split_once('=') {
                if is_password_option(name) {
                    out.push((segment_offset + name.len() + 1, offset + pair.len()));
                    break;
                }
            }
            segment_offset += segment.len() + 1;
        }
        offset += pair.len() + 1;
    }
}

/// `text` with the byte ranges `secrets` (any order, overlapping or not) replaced by `***`.
fn masked(text: &str, mut secrets: Vec<(usize, usize)>) -> String {
    secrets.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for (start, end) in secrets {
        if end < done {
            continue;
        }
        if start >= done {
            out.push_str(&text[done..start]);
            out.push_str("***");
        }
        done = end;
    }
    out.push_str(&text[done..]);
    out
}

/// `url` with its passwords replaced by `***`: the one in its user info, and the values of the
/// query options `password` and `sslpassword` (libpq takes a password either way).
///
/// A URL can be read two ways when it holds characters RFC 3986 does not allow where they are,
/// and whatever either reading takes for a password is hidden: the `postgres` crate's (the user
/// info is everything before the first `@`, whatever it holds: `bot:ab/cd@host` has the
/// password `ab/cd`) and RFC 3986's and libpq's (the user info ends with the authority, at the
/// first `/`, `?` or `#`). An unencoded `@` in the password leaves the rest of it in the host,
/// so the user info's password is hidden up to the host part's last `@`. In the query, a stray
/// `?` separates options too ([`query_secrets`]), and an option name matches in any case and
/// percent-encoded. Such URLs are refused anyway ([`check_url`]); this is for every message
/// that shows one.
pub fn redact(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let mut secrets = Vec::new();
    // The `postgres` crate's reading.
    if let Some(at) = rest.find('@') {
        let host_end = rest[at + 1..]
            .find(['/', '?'])
            .map_or(rest.len(), |i| at + 1 + i);
        if let Some(colon) = rest[..at].find(':') {
            let end = rest[..host_end].rfind('@').unwrap_or(at);
            secrets.push((colon + 1, end));
        }
        if let Some(q) = rest[at + 1..].find('?') {
            query_secrets(rest, at + 1 + q + 1, &mut secrets);
        }
    }
    // RFC 3986's and libpq's.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if let Some(at) = rest[..authority_end].rfind('@') {
        if let Some(colon) = rest[..at].find(':') {
            secrets.push((colon + 1, at));
        }
    }
    if let Some(q) = rest.find('?') {
        query_secrets(rest, q + 1, &mut secrets);
    }
    format!("{}{}", &url[..start], masked(rest, secrets))
}

/// An option's value as a message may quote it: a value that holds another option's password
/// (after a stray `?`, or a `&` percent-encoded into it) shows `***` for it.
pub(crate) fn redact_value(value: &str) -> String {
    let mut secrets = Vec::new();
    query_secrets(value, 0, &mut secrets);
    masked(value, secrets)
}

/// Refuses a PostgreSQL URL that the `postgres` crate and libpq would read differently in a way
/// that puts a password where messages show it, with a message that shows none of it:
///
/// - an unencoded `/`, `?` or `#` before the first `@` (RFC 3986 allows none of them in the
///   user info: the crate took `bot:ab/cd@host`'s password `ab/cd`, and `redact` cut the URL at
///   the `/` and showed it; found by an audit on 2026-12-07). An `@` in the path or the query
///   is met the same way (the crate takes the user info up to it);
/// - an `@` in the host part (an unencoded `@` in the password: the rest of it would be dialled
///   as the host's name);
/// - a `password`/`sslpassword` option after a stray `?` in the query: the parsers take it as
///   part of the option before it, whose value a message may quote.
///
/// Percent-encoded, each is read as meant (`ab%2Fcd` is the password `ab/cd`).
pub(crate) fn check_url(url: &str) -> JournalResult<()> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    if let Some(at) = rest.find('@') {
        if rest[..at].contains(['/', '?', '#']) {
            return Err(JournalError::Config(
                "journal has a '/', '?' or '#' before the first '@' of its URL (in the user \
                 name and password, where a URL does not allow them unencoded; the URL is not shown, as \
                 it may hold the password): percent-encode them in a password ('/' as %2F, '?' \
                 as %3F, '#' as %23), and an '@' in the path or the query as %40"
                    .to_owned(),
            ));
        }
        let host_end = rest[at + 1..]
            .find(['/', '?'])
            .map_or(rest.len(), |i| at + 1 + i);
        if rest[at + 1..host_end].contains('@') {
            return Err(JournalError::Config(
                "journal has more than one '@' before the host of its URL (the URL is not shown, as it \
                 may hold the password): percent-encode an '@' in the user name or the \
                 password as %40"
                    .to_owned(),
            ));
        }
    }
    if let Some(q) = rest.find('?') {
        let query = &rest[q + 1..];
        let names_password = |segment: &str| {
            segment
                .split_once('=')
                .is_some_and(|(name, _)| is_password_option(name))
        };
        // A password's own value runs to the next '&', '?' or not.
        let hidden = query.split('&').any(|pair| {
            let mut segments = pair.split('?');
            !segments.next().is_some_and(names_password) && segments.any(names_password)
        });
        if hidden {
            return Err(JournalError::Config(
                "journal has a password option after a second '?' in its URL's query (the \
                 URL is not shown): separate the options with '&', and write a '?' inside a value as \
                 %3F"
                    .to_owned(),
            ));
        }
    }
    Ok(())
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

    #[test]
    fn a_libpq_keyword_value_string_is_refused_without_showing_it() {
        // It became an SQLite file named after it, password included (found by an audit on
        // 2026-12-07).
        for spec in [
            "host=db.example.com user=bot password=hunter2 dbname=trading sslmode=require",
            "host=db.example.com user=bot password=hunter2 dbname=trading",
            "  dbname = trading   password = 'hunter2 with spaces'  ",
            "password='it\\'s hunter2' host=/var/run/postgresql",
            "service=trading password=hunter2",
            "password=hunter2",
            "host=db\\ example password=hunter2\tport=5432\n",
        ] {
            let m = refusal(spec);
            assert!(
                m.starts_with("journal is a libpq keyword/value connection string")
                    && m.contains("postgresql://")
                    && !m.contains("hunter2"),
                "{spec}: {m}"
            );
            match Target::parse_arg("url", spec) {
                Err(JournalError::Config(m)) => assert!(m.starts_with("url is a libpq"), "{m}"),
                other => panic!("{spec}: {other:?}"),
            }
        }
        // File names, however odd, are file names.
        for spec in [
            "journal.db",
            "/var/lib/bot/journal.db",
            "my journal.db",
            "./host=a.db",
            "data/dbname=x.db",
            "x=1.db",
            "host.db",
            "password",
            "host=a.db journal",
            "Host=a.db",
            "host",
            "=x",
            "dbname='unterminated",
            "a=b c=d",
            "journal host=a.db",
        ] {
            assert_eq!(
                Target::parse(spec).unwrap(),
                Target::Sqlite(PathBuf::from(spec)),
                "{spec}"
            );
        }
    }

    /// The message of `spec`'s refusal.
    fn refusal(spec: &str) -> String {
        match Target::parse(spec) {
            Err(JournalError::Config(m)) => m,
            other => panic!("{spec}: {other:?}"),
        }
    }

    #[test]
    fn a_password_with_unencoded_reserved_characters_is_refused_without_showing_it() {
        // The `postgres` crate takes everything before the first '@' as the user info, so
        // `bot:ab/cd@host` logged in with the password `ab/cd`, and every message showed it
        // (found by an audit on 2026-12-07).
        for (spec, secret, why) in [
            (
                "postgresql://bot:ab/cd?ef@127.0.0.1:1/trading",
                "ab/cd",
                "%2F",
            ),
            ("postgresql://bot:abc/def@127.0.0.1:1/trading", "def", "%2F"),
            ("postgresql://bot:abc?def@127.0.0.1:1/trading", "def", "%3F"),
            (
                "postgresql://bot:SEKRIT1#x@127.0.0.1:1/db",
                "SEKRIT1",
                "%23",
            ),
            ("postgres://bot:a/b@[::1]:5432/db", "a/b", "%2F"),
            ("postgresql://bot:SEK@RIT1@127.0.0.1:1/db", "RIT1", "%40"),
            (
                "postgresql:///db?host=h&user=u@corp&password=SEKRIT1",
                "SEKRIT1",
                "%40",
            ),
            (
                "postgresql://bot@h:1/db?sslmode=disable?password=SEKRIT1",
                "SEKRIT1",
                "separate the options with '&'",
            ),
            (
                "postgresql://bot@h:1/db?application_name=x?sslpassword=SEKRIT1",
                "SEKRIT1",
                "separate the options with '&'",
            ),
        ] {
            let m = refusal(spec);
            assert!(m.contains(why) && !m.contains(secret), "{spec}: {m}");
        }
        // Percent-encoded, each is the password meant.
        let env = crate::environment::testing::FakeEnvironment::default();
        let encoded = "postgresql://bot:ab%2Fcd%3Fef%23g%40h%3Ai@127.0.0.1:5432/db";
        assert!(matches!(Target::parse(encoded), Ok(Target::Postgres(_))));
        let parsed = crate::postgres::parse_url(encoded, &env).unwrap();
        assert_eq!(parsed.config.get_password(), Some(&b"ab/cd?ef#g@h:i"[..]));
        assert_eq!(
            redact(encoded),
            "postgresql://bot:***@127.0.0.1:5432/db",
            "nothing of it shown"
        );
        // A password option's own value may hold a '?' or a second "password=".
        let own = "postgresql://bot@h:1/db?password=ab?password=cd&sslmode=disable";
        let parsed = crate::postgres::parse_url(own, &env).unwrap();
        assert_eq!(parsed.config.get_password(), Some(&b"ab?password=cd"[..]));
        assert_eq!(
            redact(own),
            "postgresql://bot@h:1/db?password=***&sslmode=disable"
        );
    }

    #[test]
    fn redact_hides_whatever_either_reading_takes_for_a_password() {
        for (url, shown) in [
            // The crate's reading: the user info ends at the first '@'.
            (
                "postgresql://bot:ab/cd?ef@127.0.0.1:1/trading",
                "postgresql://bot:***@127.0.0.1:1/trading",
            ),
            (
                "postgresql://bot:abc?def@h/db?sslmode=disable",
                "postgresql://bot:***@h/db?sslmode=disable",
            ),
            ("postgresql://bot:x#y@h/db", "postgresql://bot:***@h/db"),
            // An '@' in the password: its rest is not shown as the host either.
            (
                "postgresql://bot:SEK@RIT1@127.0.0.1:1/db",
                "postgresql://bot:***@127.0.0.1:1/db",
            ),
            // Option names in any case, percent-encoded; a stray '?' separates.
            (
                "postgresql://bot@h/db?Password=SEKRIT1&PASS%57ORD=b&SslPassword=c",
                "postgresql://bot@h/db?Password=***&PASS%57ORD=***&SslPassword=***",
            ),
            (
                "postgresql://bot@h/db?sslmode=disable?password=SEKRIT1&x=1",
                "postgresql://bot@h/db?sslmode=disable?password=***&x=1",
            ),
            (
                "postgresql://bot@h/db?password=ab?cd&x=1",
                "postgresql://bot@h/db?password=***&x=1",
            ),
            // An '@' in the query: the crate's user info would run up to it.
            (
                "postgresql:///db?application_name=a@b&password=SEKRIT1",
                "postgresql:///db?application_name=a@b&password=***",
            ),
            (
                "postgresql://h:5432/db?application_name=a:b@c&password=SEKRIT1",
                "postgresql://h:***@c&password=***",
            ),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
        assert_eq!(
            redact_value("disable?password=SEKRIT1"),
            "disable?password=***"
        );
        assert_eq!(
            redact_value("disable&sslpassword=k"),
            "disable&sslpassword=***"
        );
        assert_eq!(redact_value("verify-fulll"), "verify-fulll");
    }

    #[test]
    fn no_refusal_of_a_postgresql_url_shows_its_password() {
        for spec in [
            "postgresql://bot@127.0.0.1:1/db?Password=SEKRIT1",
            "postgresql://bot@127.0.0.1:1/db?password=SEKRIT1&krbsrvname=x",
            "postgresql://bot:SEKRIT1@127.0.0.1:1/db?krbsrvname=x",
            "postgresql://bot:SEKRIT1@127.0.0.1:notaport/db",
            "postgresql://bot@127.0.0.1:1/db?gssencmode=require%3Fpassword%3DSEKRIT1",
        ] {
            let m = refusal(spec);
            assert!(!m.contains("SEKRIT1"), "{spec}: {m}");
        }
        // A bad sslmode's value is quoted; another option's password in it is not.
        match crate::tls::split("postgresql://h/db?sslmode=disable?password=SEKRIT1") {
            Err(JournalError::Config(m)) => {
                assert!(
                    m.contains("\"disable?password=***\"") && !m.contains("SEKRIT1"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
