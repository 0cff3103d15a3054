//! Time as the original sees it: naive local wall-clock time with microsecond resolution.
//!
//! The original reads `datetime.now()` (naive local time) and only ever uses differences of such
//! values. A [`Timestamp`] is that value as microseconds since the naive epoch 1970-01-01 00:00:00,
//! which converts losslessly to and from a Python naive `datetime`.
//!
//! The clock is an input: the manager holds an `Arc<dyn Clock>`, and positions created outside a
//! manager read [`now`], the process-wide clock, which tests can freeze ([`freeze`]).
//!
//! A clock gives two readings:
//! - [`Clock::now`], the time the original exposes: entry times, ages and the 24 h exit rules,
//!   events' and logs' times. Naive local wall time, so a DST change, another `TZ` or an NTP
//!   step moves it by as much.
//! - [`Clock::timer`], the frame every *safety timer* measures and keeps its times in: re-open
//!   holds, the removal and outcome graces, tombstone and unconfirmed-close lifetimes, the reuse
//!   of a fresh position list. For [`SystemClock`] (and the process-wide clock unless frozen)
//!   it is UTC that never goes below an earlier reading in the process: no DST or time-zone
//!   jump, no step back inside a process, suspended time counted, and comparable across
//!   restarts and machines in any time zone (UTC). Clocks that are moved by hand ([`ManualClock`], the
//!   frozen process-wide clock) have one frame: their `timer` is their `now`, so paper time and
//!   deterministic tests see the same time in both.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// A naive local point in time, in microseconds since 1970-01-01 00:00:00 (no time zone).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Seconds elapsed from `earlier` to `self`, as Python's `timedelta.total_seconds()` computes it
    /// (integer microseconds divided by 10^6, correctly rounded).
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1e6
    }

    /// Hours elapsed from `earlier` to `self` (`total_seconds() / 3600`, as the original).
    pub fn hours_since(self, earlier: Timestamp) -> f64 {
        self.seconds_since(earlier) / 3600.0
    }

    /// Minutes elapsed from `earlier` to `self` (`total_seconds() / 60`, as the original).
    pub fn minutes_since(self, earlier: Timestamp) -> f64 {
        self.seconds_since(earlier) / 60.0
    }

    /// This timestamp moved by a (possibly negative or fractional) number of seconds.
    pub fn plus_seconds(self, seconds: f64) -> Timestamp {
        Timestamp(self.0 + (seconds * 1e6).round() as i64)
    }

    /// `YYYY-mm-dd HH:MM:SS`, the format of the original's log lines.
    pub fn format_seconds(self) -> String {
        match chrono::DateTime::from_timestamp_micros(self.0) {
            Some(dt) => dt.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string(),
            None => format!("<invalid time {}>", self.0),
        }
    }
}

/// A source of "now".
pub trait Clock: Send + Sync {
    /// The current naive local time.
    fn now(&self) -> Timestamp;

    /// The current time in the frame safety timers measure durations in (see the module docs):
    /// only differences of two readings (and readings kept across restarts, such as a
    /// journaled hold) mean anything. By default the clock's [`Clock::now`].
    fn timer(&self) -> Timestamp {
        self.now()
    }
}

/// The machine's local wall clock (what the original's `datetime.now()` returns).
///
/// The local time's offset from UTC is looked up once per UTC second and kept (the lookup, in
/// the time-zone rules, costs more than reading the clock); time-zone transitions fall on whole
/// seconds, so the time read is the same as looking the offset up every time.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

/// The last UTC second whose offset was looked up and that offset, packed: the second in the
/// high bits, the offset (seconds, biased to be positive) in the low [`OFFSET_BITS`].
static LAST_OFFSET: AtomicU64 = AtomicU64::new(0);
const OFFSET_BITS: u32 = 20;
const OFFSET_BIAS: i64 = 1 << (OFFSET_BITS - 1);

/// The local offset from UTC (seconds) at `utc`, from the one-entry cache of its second.
fn local_offset(utc: &chrono::DateTime<chrono::Utc>) -> i64 {
    use chrono::{Offset, TimeZone};
    let second = utc.timestamp();
    let packed = LAST_OFFSET.load(Ordering::Relaxed);
    // 0 is "nothing cached" (the epoch's first second is never read twice in practice).
    if packed != 0 && (packed >> OFFSET_BITS) as i64 == second {
        return (packed & ((1 << OFFSET_BITS) - 1)) as i64 - OFFSET_BIAS;
    }
    let offset = i64::from(
        chrono::Local
            .offset_from_utc_datetime(&utc.naive_utc())
            .fix()
            .local_minus_utc(),
    );
    // Offsets are within a day; seconds fit the high bits until the year 559 000.
    if (0..=(i64::MAX >> OFFSET_BITS)).contains(&second) && offset.abs() < OFFSET_BIAS {
        let packed = ((second as u64) << OFFSET_BITS) | (offset + OFFSET_BIAS) as u64;
        LAST_OFFSET.store(packed, Ordering::Relaxed);
    }
    offset
}

/// The latest timer reading (UTC microseconds since the Unix epoch), which no later reading
/// goes below.
static TIMER_LAST: AtomicI64 = AtomicI64::new(i64::MIN);

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let utc = chrono::Utc::now();
        Timestamp(utc.timestamp_micros() + local_offset(&utc) * 1_000_000)
    }

    /// UTC, never below an earlier reading in this process: a DST change or another `TZ` never
    /// moves it, a wall-clock step back (NTP, a user setting the date) holds it until UTC
    /// catches up, and time the machine spends suspended counts (a monotonic clock anchored
    /// once would fall behind UTC by every suspend, and a time kept across a restart would then
    /// look that much older). Comparable between processes and machines as UTC is.
    fn timer(&self) -> Timestamp {
        let utc = chrono::Utc::now().timestamp_micros();
        let last = TIMER_LAST.fetch_max(utc, Ordering::Relaxed);
        Timestamp(utc.max(last))
    }
}

/// A clock that only moves when told to; for tests and fixture replay.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    /// A manual clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            micros: AtomicI64::new(start.0),
        }
    }

    /// Sets the time.
    pub fn set(&self, t: Timestamp) {
        self.micros.store(t.0, Ordering::SeqCst);
    }

    /// Moves the time forward (or backward, for a negative value) by `seconds`.
    pub fn advance(&self, seconds: f64) {
        let delta = (seconds * 1e6).round() as i64;
        self.micros.fetch_add(delta, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.micros.load(Ordering::SeqCst))
    }
}

/// The process-wide clock: the system clock unless frozen by [`freeze`].
///
/// A frozen clock is a test facility: it lets tests and fixture replays control the time seen by
/// every position and manager that uses the default clock.
pub struct GlobalClock;

static FROZEN: AtomicBool = AtomicBool::new(false);
static FROZEN_MICROS: AtomicI64 = AtomicI64::new(0);

impl Clock for GlobalClock {
    fn now(&self) -> Timestamp {
        now()
    }

    /// The frozen time while frozen (one frame, as [`ManualClock`]); else
    /// [`SystemClock::timer`].
    fn timer(&self) -> Timestamp {
        timer()
    }
}

/// The current time of the process-wide clock.
pub fn now() -> Timestamp {
    frozen().unwrap_or_else(|| SystemClock.now())
}

/// The current timer reading of the process-wide clock ([`Clock::timer`]): the frozen time
/// while frozen, else the system clock's timer (UTC, never going back).
pub fn timer() -> Timestamp {
    frozen().unwrap_or_else(|| SystemClock.timer())
}

/// The frozen time, while the process-wide clock is frozen.
fn frozen() -> Option<Timestamp> {
    FROZEN
        .load(Ordering::SeqCst)
        .then(|| Timestamp(FROZEN_MICROS.load(Ordering::SeqCst)))
}

/// Freezes the process-wide clock at `t` (or moves a frozen clock to `t`).
pub fn freeze(t: Timestamp) {
    FROZEN_MICROS.store(t.0, Ordering::SeqCst);
    FROZEN.store(true, Ordering::SeqCst);
}

/// Moves the frozen process-wide clock by `seconds`; returns false if it is not frozen.
pub fn advance_frozen(seconds: f64) -> bool {
    if !FROZEN.load(Ordering::SeqCst) {
        return false;
    }
    FROZEN_MICROS.fetch_add((seconds * 1e6).round() as i64, Ordering::SeqCst);
    true
}

/// Lets the process-wide clock follow the system clock again.
pub fn unfreeze() {
    FROZEN.store(false, Ordering::SeqCst);
}

/// Whether the process-wide clock is frozen.
pub fn is_frozen() -> bool {
    FROZEN.load(Ordering::SeqCst)
}

/// The default clock of a manager: the process-wide one.
pub fn default_clock() -> Arc<dyn Clock> {
    Arc::new(GlobalClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_match_python_total_seconds() {
        let a = Timestamp(1_000_000);
        let b = Timestamp(1_000_000 + 360 * 1_000_000 + 1);
        assert_eq!(b.seconds_since(a), 360.000001);
        assert_eq!(b.hours_since(a), 360.000001 / 3600.0);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp(0));
        assert_eq!(c.now(), Timestamp(0));
        c.advance(1.5);
        assert_eq!(c.now(), Timestamp(1_500_000));
        c.set(Timestamp(7));
        assert_eq!(c.now(), Timestamp(7));
    }

    #[test]
    fn the_system_clock_reads_local_time_as_chrono_does() {
        for _ in 0..3 {
            let before = chrono::Local::now()
                .naive_local()
                .and_utc()
                .timestamp_micros();
            let ours = SystemClock.now().0;
            let after = chrono::Local::now()
                .naive_local()
                .and_utc()
                .timestamp_micros();
            assert!(before <= ours && ours <= after, "{before} {ours} {after}");
        }
    }

    #[test]
    fn a_manual_clock_has_one_frame() {
        let c = ManualClock::new(Timestamp(5_000_000));
        assert_eq!(c.timer(), c.now());
        c.advance(-3600.0);
        assert_eq!(c.timer(), Timestamp(5_000_000 - 3_600_000_000));
    }

    #[test]
    fn the_system_timer_is_utc_and_never_goes_back() {
        let mut last = SystemClock.timer();
        for _ in 0..1000 {
            let utc = chrono::Utc::now().timestamp_micros();
            let t = SystemClock.timer();
            assert!(t >= last, "monotonic: {last:?} then {t:?}");
            // UTC, not local time: within a second of the machine's UTC clock.
            assert!((t.0 - utc).abs() < 1_000_000, "{t:?} vs UTC {utc}");
            last = t;
        }
    }

    #[test]
    fn the_global_timer_follows_the_frozen_clock() {
        // The only test in this crate that freezes the process-wide clock.
        freeze(Timestamp(42_000_000));
        assert_eq!(GlobalClock.timer(), Timestamp(42_000_000));
        assert!(advance_frozen(-10.0));
        assert_eq!(GlobalClock.timer(), GlobalClock.now());
        assert_eq!(timer(), Timestamp(32_000_000));
        unfreeze();
        let utc = chrono::Utc::now().timestamp_micros();
        assert!((GlobalClock.timer().0 - utc).abs() < 1_000_000);
    }

    #[test]
    fn log_format_has_seconds_resolution() {
        // 2025-01-01 00:00:00 = 1735689600 s since the naive epoch.
        let t = Timestamp(1_735_689_600_000_000 + 999_999);
        assert_eq!(t.format_seconds(), "2025-01-01 00:00:00");
    }
}
