//! Phase C with `max_concurrent_calls` > 1: the reads are made ahead on worker threads, the
//! positions examined on the caller's thread in the book's order.
//!
//! Each step of the cycle (one `next()` of `update_positions()`) opens a scope
//! ([`std::thread::scope`]) with up to `max_concurrent_calls` worker threads. A worker takes the
//! next position not read yet (in the book's order) and makes its reads exactly as the
//! sequential cycle would for it ([`super::fetch::prefetch`]: the ticker with retries unless the
//! batched answer priced it, then the candles if there is a price) and hands them over. The
//! caller's thread examines position after position as their reads arrive, with the same code
//! as the sequential cycle, so decisions, events and log lines come in the sequential order.
//!
//! When a position closes, no new reads are started, pauses between ticker attempts are cut
//! short, and the step ends once the calls in flight have answered (what was read is kept for
//! the next step, and reads cut short in a pause go on from there): the closed position reaches
//! the caller before the next one is examined, and no client call runs while the caller holds
//! it. An interruption a worker's call raised stops new reads and ends the cycle when the
//! examination reaches that position, as the sequential cycle would have ended there; an
//! interruption waiting on the caller's thread (a Ctrl+C, one a logging handler raised) is
//! noticed within [`WAIT`] while the caller waits, and where the sequential cycle would have
//! made a call.
//!
//! Threads: scoped, so none outlives the step, and none holds a lock of the manager; a thread
//! that cannot be started leaves its share of the reads to the caller's thread (made there, in
//! order, as the sequential cycle makes them).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::fetch::{prefetch, Attempt, Fetched};
use super::update::{Closed, Source, UpdateCycle};
use super::Manager;
use crate::error::CoreResult;
use crate::exchange::Exchange;
use crate::key::Key;

/// How long the caller's thread waits for a read before it checks for an interruption.
pub(super) const WAIT: Duration = Duration::from_millis(50);

/// Stack of a worker thread: it runs the client's Python code, which may nest deeply.
const WORKER_STACK: usize = 8 << 20;

/// The reads still to make in this step: key indices in the book's order, each with the failed
/// ticker attempts an earlier read cut short already made.
struct Jobs {
    pending: Vec<(usize, Vec<Attempt>)>,
    cursor: AtomicUsize,
    /// No new read starts.
    stop: AtomicBool,
    /// And pauses between ticker attempts end now (the step is ending).
    cancel: AtomicBool,
}

impl Jobs {
    /// The next read to make, unless no new read may start.
    fn take(&self) -> Option<&(usize, Vec<Attempt>)> {
        if self.stop.load(Ordering::Acquire) {
            return None;
        }
        let at = self.cursor.fetch_add(1, Ordering::AcqRel);
        self.pending.get(at)
    }

    /// No read starts after this.
    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// No read starts after this, and reads waiting between ticker attempts stop waiting.
    fn cancel(&self) {
        self.stop();
        self.cancel.store(true, Ordering::Release);
    }

    /// Waits `seconds` unless the reads are cancelled meanwhile (then `false`).
    fn pause(&self, seconds: f64) -> bool {
        let seconds = if seconds.is_finite() {
            seconds.clamp(0.0, 86_400.0)
        } else {
            0.0
        };
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        loop {
            if self.cancel.load(Ordering::Acquire) {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            std::thread::sleep((deadline - now).min(WAIT));
        }
    }
}

/// A worker: reads position after position until there are none left or the step ends.
fn work(
    exchange: &dyn Exchange,
    delays: &[f64],
    keys: &[Key],
    prices: &std::collections::HashMap<String, f64>,
    jobs: &Jobs,
    results: Sender<(usize, Fetched)>,
) {
    while let Some((i, attempts)) = jobs.take() {
        let Some(key) = keys.get(*i) else { break };
        let symbol = Key::market_of(key.as_str());
        let batch = prices.get(symbol).copied();
        let mut pause = |seconds: f64| Ok(jobs.pause(seconds));
        let fetched = prefetch(
            exchange,
            delays,
            symbol,
            batch,
            attempts.clone(),
            &mut pause,
        );
        if fetched.interruption().is_some() {
            // The sequential cycle would have made no call after this one.
            jobs.stop();
        }
        if results.send((*i, fetched)).is_err() {
            break;
        }
    }
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// Examines the cycle's remaining positions with their reads made ahead by up to `workers`
    /// threads; returns at the first close (or the end, `None`).
    pub(super) fn examine_concurrently(
        &self,
        cycle: &mut UpdateCycle,
        workers: usize,
    ) -> CoreResult<Option<Closed<H>>> {
        let UpdateCycle {
            keys,
            next,
            snapshot,
            prices,
            fetched,
            ..
        } = cycle;
        let total = keys.len();
        if fetched.len() < total {
            fetched.resize_with(total, || None);
        }
        // Reads already made in an earlier step are kept (those cut short in a pause go on
        // from there); nothing is read past a read that met an interruption (the cycle ends
        // there).
        let limit = fetched
            .iter()
            .position(|f| f.as_ref().is_some_and(|f| f.interruption().is_some()))
            .unwrap_or(total);
        let pending: Vec<(usize, Vec<Attempt>)> = (*next..limit)
            .filter_map(|i| match fetched.get(i) {
                Some(None) => Some((i, Vec::new())),
                Some(Some(f)) if !f.is_complete() => Some((i, f.attempts.clone())),
                _ => None,
            })
            .collect();
        let jobs = Jobs {
            cursor: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            cancel: AtomicBool::new(false),
            pending,
        };
        let (sender, results) = mpsc::channel::<(usize, Fetched)>();
        let exchange: &dyn Exchange = self.exchange().as_ref();
        let delays: &[f64] = &self.config().ticker_retry_delays;
        let (keys, prices): (&[Key], &_) = (keys, prices);
        let outcome = std::thread::scope(|scope| {
            for _ in 0..workers.min(jobs.pending.len()) {
                let sender = sender.clone();
                let jobs = &jobs;
                let started = std::thread::Builder::new()
                    .name("pmrs-cycle-read".to_owned())
                    .stack_size(WORKER_STACK)
                    .spawn_scoped(scope, move || {
                        // A panic (a bug) must not cross into the caller through the scope:
                        // the reads it did not deliver are made on the caller's thread.
                        let run = || work(exchange, delays, keys, prices, jobs, sender);
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
                    });
                if started.is_err() {
                    break; // the caller's thread reads what no worker takes
                }
            }
            drop(sender);
            let outcome = self.examine_in_order(keys, prices, next, snapshot, fetched, &results);
            jobs.cancel();
            outcome
        });
        // Reads that arrived after the step ended are kept for the next step.
        while let Ok((i, read)) = results.try_recv() {
            if let Some(slot) = fetched.get_mut(i) {
                *slot = Some(read);
            }
        }
        outcome
    }

    /// The examination loop of [`Manager::examine_concurrently`].
    fn examine_in_order(
        &self,
        keys: &[Key],
        prices: &std::collections::HashMap<String, f64>,
        next: &mut usize,
        snapshot: &Option<super::lists::ListRead>,
        fetched: &mut [Option<Fetched>],
        results: &Receiver<(usize, Fetched)>,
    ) -> CoreResult<Option<Closed<H>>> {
        while let Some(key) = keys.get(*next) {
            let i = *next;
            let read = self.wait_for_read(i, fetched, results)?;
            *next += 1;
            let source = match read {
                Some(read) => Source::Fetched(read),
                // Not read ahead (no worker could be started): read now, in order.
                None => Source::Live {
                    batch: prices.get(Key::market_of(key.as_str())).copied(),
                },
            };
            if let Some(closed) = self.update_one(key, snapshot.as_ref(), source)? {
                return Ok(Some(closed));
            }
        }
        Ok(None)
    }

    /// The reads of key `i`: waits for them while workers are running (checking for an
    /// interruption every [`WAIT`]); `None` when no worker will deliver them. Reads cut short
    /// in a pause come back only after the step's examination ended; one left from an earlier
    /// step that no worker took up is handed over as it is (the examination goes on with it
    /// where it stopped).
    fn wait_for_read(
        &self,
        i: usize,
        fetched: &mut [Option<Fetched>],
        results: &Receiver<(usize, Fetched)>,
    ) -> CoreResult<Option<Fetched>> {
        loop {
            let ready = fetched
                .get(i)
                .is_some_and(|f| f.as_ref().is_some_and(Fetched::is_complete));
            if ready {
                return Ok(fetched.get_mut(i).and_then(Option::take));
            }
            match results.recv_timeout(WAIT) {
                Ok((j, read)) => {
                    if let Some(slot) = fetched.get_mut(j) {
                        *slot = Some(read);
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.exchange().check_interrupt()?,
                // No worker left: what an earlier step left (if anything) is taken up here.
                Err(RecvTimeoutError::Disconnected) => {
                    return Ok(fetched.get_mut(i).and_then(Option::take))
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "concurrent_tests.rs"]
mod tests;
