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
//! When a position closes, no new reads are started and the step ends once the reads in flight
//! have answered (they are kept for the next step): the closed position reaches the caller
//! before the next one is examined, and no client call runs while the caller holds it. An
//! interruption a worker's call raised stops new reads and ends the cycle when the examination
//! reaches that position, as the sequential cycle would have ended there; an interruption
//! waiting on the caller's thread (a Ctrl+C, one a logging handler raised) is noticed within
//! [`WAIT`] while the caller waits, and where the sequential cycle would have made a call.
//!
//! Threads: scoped, so none outlives the step, and none holds a lock of the manager; a thread
//! that cannot be started leaves its share of the reads to the caller's thread (made there, in
//! order, as the sequential cycle makes them).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use super::fetch::{prefetch, Fetched};
use super::update::{Closed, Source, UpdateCycle};
use super::Manager;
use crate::error::CoreResult;
use crate::exchange::Exchange;
use crate::key::Key;

/// How long the caller's thread waits for a read before it checks for an interruption.
pub(super) const WAIT: Duration = Duration::from_millis(50);

/// Stack of a worker thread: it runs the client's Python code, which may nest deeply.
const WORKER_STACK: usize = 8 << 20;

/// The reads still to make in this step: key indices in the book's order.
struct Jobs {
    pending: Vec<usize>,
    cursor: AtomicUsize,
    stop: AtomicBool,
}

impl Jobs {
    /// The next key index to read, unless the step is ending.
    fn take(&self) -> Option<usize> {
        if self.stop.load(Ordering::Acquire) {
            return None;
        }
        let at = self.cursor.fetch_add(1, Ordering::AcqRel);
        self.pending.get(at).copied()
    }

    /// No read starts after this.
    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
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
    while let Some(i) = jobs.take() {
        let Some(key) = keys.get(i) else { break };
        let symbol = key.symbol();
        let fetched = prefetch(exchange, delays, symbol, prices.get(symbol).copied());
        if fetched.interruption().is_some() {
            // The sequential cycle would have made no call after this one.
            jobs.stop();
        }
        if results.send((i, fetched)).is_err() {
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
        // Reads already made in an earlier step are kept; nothing is read past a read that
        // met an interruption (the cycle ends there).
        let limit = fetched
            .iter()
            .position(|f| f.as_ref().is_some_and(|f| f.interruption().is_some()))
            .unwrap_or(total);
        let pending: Vec<usize> = (*next..limit)
            .filter(|i| fetched.get(*i).is_some_and(Option::is_none))
            .collect();
        let jobs = Jobs {
            cursor: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
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
                        work(exchange, delays, keys, prices, jobs, sender)
                    });
                if started.is_err() {
                    break; // the caller's thread reads what no worker takes
                }
            }
            drop(sender);
            let outcome = self.examine_in_order(keys, prices, next, snapshot, fetched, &results);
            jobs.stop();
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
                    batch: prices.get(key.symbol()).copied(),
                },
            };
            if let Some(closed) = self.update_one(key, snapshot.as_ref(), source)? {
                return Ok(Some(closed));
            }
        }
        Ok(None)
    }

    /// The reads of key `i`: waits for them while workers are running (checking for an
    /// interruption every [`WAIT`]); `None` when no worker will deliver them.
    fn wait_for_read(
        &self,
        i: usize,
        fetched: &mut [Option<Fetched>],
        results: &Receiver<(usize, Fetched)>,
    ) -> CoreResult<Option<Fetched>> {
        loop {
            if let Some(read) = fetched.get_mut(i).and_then(Option::take) {
                return Ok(Some(read));
            }
            match results.recv_timeout(WAIT) {
                Ok((j, read)) => {
                    if let Some(slot) = fetched.get_mut(j) {
                        *slot = Some(read);
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.exchange().check_interrupt()?,
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
#[path = "concurrent_tests.rs"]
mod tests;
