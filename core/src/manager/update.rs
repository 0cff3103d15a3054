//! The update cycle (`update_positions()`), as explicit steps driven by the caller.
//!
//! [`Manager::begin_update`] does no work; each [`Manager::next_closed`] call advances until a
//! position has been closed (and returns it) or the cycle is over. That gives the Python layer
//! the original generator's semantics: nothing happens before iteration starts, and each closed
//! position reaches the caller before the next one is examined.
//!
//! Phases, as the original: A) fetch the exchange's open positions and drop what it no longer
//! lists; B) take the list of symbols; C) per symbol: price (with retries), candles and market
//! inputs, adaptive trailing stop and take profit ([`super::adaptive`]), advanced exit and smart
//! exit ([`super::exit_steps`]), `should_close`, close; D) closing separator.
//!
//! Two options change how phase C reads, never what it decides ([`super::fetch`],
//! [`super::concurrent`]): a client with `get_tickers` gives every price in one call at the
//! start of phase C, and `max_concurrent_calls` > 1 makes the reads ahead of the examination on
//! worker threads. Positions are examined in the book's order either way, with the same inputs,
//! so the decisions, events and log lines are the sequential cycle's. The clock is read once
//! per examined position (its "now" for every rule and record of that examination).

use std::collections::HashMap;

use log::Level;

use super::exit_steps::StepEnd;
use super::fetch::{FetchEnd, Fetched, TickerEnd, CANDLE_LIMIT, CANDLE_TIMEFRAME};
use super::lists::ListRead;
use super::messages::{leverage_text, py_set_repr, Channel, RULE};
use super::methods::Methods;
use super::{caught, Manager};
use crate::book::SharedPosition;
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::exchange::Ohlcv;
use crate::format::{format_pnl_usd, format_price, py_fixed, py_percent};
use crate::key::Key;
use crate::reconcile::Purpose;

/// A position the cycle closed: what `update_positions()` yields.
#[derive(Clone, Debug)]
pub struct Closed<H> {
    /// Book key.
    pub symbol: String,
    /// Leveraged P/L after fees returned by the close.
    pub pnl: f64,
    /// The handle of the closed position (the same Python object that was in the book).
    pub handle: H,
}

#[derive(Debug, PartialEq, Eq)]
enum Stage {
    NotStarted,
    Positions,
    Done,
}

/// The state of one update cycle; see [`Manager::begin_update`].
#[derive(Debug)]
pub struct UpdateCycle {
    stage: Stage,
    /// The keys phase B took, in the book's order.
    pub(super) keys: Vec<Key>,
    /// The index of the next key to examine.
    pub(super) next: usize,
    /// The cycle's position list, when it was usable.
    pub(super) snapshot: Option<ListRead>,
    /// Prices the batched `get_tickers` call gave, by symbol.
    pub(super) prices: HashMap<String, f64>,
    /// Reads made ahead by worker threads, by key index (`max_concurrent_calls` > 1).
    pub(super) fetched: Vec<Option<Fetched>>,
}

impl UpdateCycle {
    /// Whether the cycle has finished.
    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Ends the cycle where it stands (generator `close()`); the rest waits for the next cycle.
    /// Returns an interruption that a read made ahead (`max_concurrent_calls` > 1) met for a
    /// position the cycle did not examine: the client raised it in a call the manager made, so
    /// it must not be lost with the reads (DESIGN rule 8), though the sequential cycle would
    /// not have made that call yet.
    pub fn finish_without_work(&mut self) -> Option<CoreError> {
        self.stage = Stage::Done;
        self.fetched
            .drain(..)
            .flatten()
            .find_map(super::fetch::Fetched::into_interruption)
    }
}

/// How a price fetch ended.
enum PriceFetch {
    Price(f64),
    Failed,
}

/// Where a position's reads come from when it is examined.
pub(super) enum Source {
    /// Made now, in the original's order; the price is `batch` when the batched answer had it.
    Live {
        /// The price from the batched answer.
        batch: Option<f64>,
    },
    /// Made ahead on a worker thread.
    Fetched(Fetched),
}

/// What the steps after the reads share about one examination: the cycle's position list (for
/// closes) and the examination's one clock reading.
#[derive(Clone, Copy)]
pub(super) struct Examine<'a> {
    /// The cycle's position list, when it was usable.
    pub(super) snapshot: Option<&'a ListRead>,
    /// "Now" for every rule and record of this examination.
    pub(super) now: Timestamp,
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// A new cycle; no work is done until [`Manager::next_closed`] is called.
    pub fn begin_update(&self) -> UpdateCycle {
        UpdateCycle {
            stage: Stage::NotStarted,
            keys: Vec::new(),
            next: 0,
            snapshot: None,
            prices: HashMap::new(),
            fetched: Vec::new(),
        }
    }

    /// Advances `cycle` until a position closes (returned) or the cycle ends (`None`). Only an
    /// interruption is an error; the cycle is then over (the rest waits for the next one).
    pub fn next_closed(&self, cycle: &mut UpdateCycle) -> CoreResult<Option<Closed<H>>> {
        let result = self.advance(cycle);
        if result.is_err() {
            cycle.stage = Stage::Done;
        }
        result
    }

    fn advance(&self, cycle: &mut UpdateCycle) -> CoreResult<Option<Closed<H>>> {
        if cycle.stage == Stage::NotStarted {
            cycle.stage = Stage::Positions;
            cycle.snapshot = self.remove_closed_externally()?;
            cycle.keys = self.book().keys();
            let n = cycle.keys.len();
            if n > 0 {
                self.log(Channel::Position, Level::Info, || format!("\n{RULE}"));
                self.log(Channel::Position, Level::Info, || {
                    format!(
                        "UPDATING {n} OPEN POSITION(S) - {}",
                        self.now().format_seconds()
                    )
                });
                self.log(Channel::Position, Level::Info, || RULE.to_owned());
                cycle.prices = self.batch_prices(&cycle.keys)?;
            }
        }
        if cycle.stage == Stage::Positions {
            let workers = self.config().max_concurrent_calls;
            if workers > 1 {
                if let Some(closed) = self.examine_concurrently(cycle, workers)? {
                    return Ok(Some(closed));
                }
            }
            while let Some(key) = cycle.keys.get(cycle.next) {
                cycle.next += 1;
                let batch = cycle.prices.get(Key::market_of(key.as_str())).copied();
                let source = Source::Live { batch };
                if let Some(closed) = self.update_one(key, cycle.snapshot.as_ref(), source)? {
                    return Ok(Some(closed));
                }
            }
            if !self.book().is_empty() {
                self.log(Channel::Position, Level::Info, || format!("{RULE}\n"));
            }
            cycle.stage = Stage::Done;
            self.journal_checkpoint();
        }
        Ok(None)
    }

    /// Runs a whole cycle and returns everything it closed.
    pub fn update_all(&self) -> CoreResult<Vec<Closed<H>>> {
        let mut cycle = self.begin_update();
        let mut out = Vec::new();
        while let Some(c) = self.next_closed(&mut cycle)? {
            out.push(c);
        }
        Ok(out)
    }

    /// The batched prices for `keys`' symbols: one `get_tickers` call when the client has it
    /// (none otherwise). A failed call or unusable entries are a warning; those symbols are then
    /// asked per symbol. Only an interruption is an error.
    fn batch_prices(&self, keys: &[Key]) -> CoreResult<HashMap<String, f64>> {
        let mut symbols: Vec<&str> = Vec::with_capacity(keys.len());
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        for key in keys {
            let market = Key::market_of(key.as_str());
            if seen.insert(market) {
                symbols.push(market);
            }
        }
        let answer = match self.exchange().get_tickers(&symbols) {
            None => return Ok(HashMap::new()),
            Some(answer) => caught(answer)?,
        };
        let read = match answer {
            Ok(entries) => super::fetch::read_batch(&symbols, &entries),
            Err(e) => {
                let kind = e.kind_name().to_owned();
                self.log(Channel::Main, Level::Warn, || {
                    format!("Batched prices failed ({kind}: {e}), asking get_ticker per symbol this cycle")
                });
                return Ok(HashMap::new());
            }
        };
        if let Some(warning) = super::fetch::unusable_warning(&read.unusable) {
            self.log(Channel::Main, Level::Warn, || warning);
        }
        if !read.missing.is_empty() {
            self.log(Channel::Main, Level::Debug, || {
                format!(
                    "Batched prices: no entry for {} of {} symbol(s), asking get_ticker for them: {}",
                    read.missing.len(),
                    symbols.len(),
                    read.missing.join(", ")
                )
            });
        }
        Ok(read.prices)
    }

    /// Phase A: one `get_open_positions()` (two when it shows none of the tracked positions);
    /// tracked positions it no longer lists are removed (subject to the reconciliation rules).
    /// Returns the list when it was usable.
    fn remove_closed_externally(&self) -> CoreResult<Option<ListRead>> {
        let mut list = match self.read_list()? {
            Ok(list) => list,
            Err(e) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!("Unable to verify positions on exchange during update: {e}")
                });
                return Ok(None);
            }
        };
        let report = self.apply_list(&mut list, Purpose::Cycle, None, "closed_externally")?;
        if report.uncorroborated {
            return Ok(None);
        }
        let removed = report.removed;
        if !removed.is_empty() {
            let names: Vec<&str> = removed.iter().map(Key::as_str).collect();
            self.log(Channel::Main, Level::Info, || {
                format!(
                    "Cleaning up {} positions that were closed externally: {}",
                    removed.len(),
                    py_set_repr(&names)
                )
            });
            for key in &removed {
                self.log(Channel::Position, Level::Info, || {
                    format!("Removing externally closed position from tracking: {key}")
                });
            }
        }
        Ok(Some(list))
    }

    /// Phase C for one key. A position no longer in the book is skipped silently — but an
    /// interruption its reads met ahead of time ends the cycle here all the same (never
    /// swallowed).
    pub(super) fn update_one(
        &self,
        key: &Key,
        snapshot: Option<&ListRead>,
        source: Source,
    ) -> CoreResult<Option<Closed<H>>> {
        let symbol = key.as_str();
        let Some((position, handle)) = self.book().get(symbol) else {
            if let Source::Fetched(f) = &source {
                if let Some(e) = f.interruption() {
                    return Err(e.clone());
                }
            }
            return Ok(None);
        };
        self.bind_leg_side(key, &position);
        let mut price_seen = None;
        let methods = self.methods(&position, &handle);
        let update =
            self.update_position(key, &position, &methods, snapshot, &mut price_seen, source);
        match update {
            Ok(Some(pnl)) => Ok(Some(Closed {
                symbol: symbol.to_owned(),
                pnl,
                handle,
            })),
            Ok(None) => Ok(None),
            Err(e) if e.is_interrupt() => Err(e),
            Err(e) => {
                self.report_update_error(symbol, &methods, price_seen, &e)?;
                Ok(None)
            }
        }
    }

    /// The per-position step. `Ok(Some(pnl))` when it closed the position.
    fn update_position(
        &self,
        key: &Key,
        position: &SharedPosition,
        methods: &Methods<'_>,
        snapshot: Option<&ListRead>,
        price_seen: &mut Option<f64>,
        source: Source,
    ) -> Result<Option<f64>, CoreError> {
        let symbol = key.as_str();
        let (entry, amount, leverage, entry_time) = {
            let p = position.lock();
            (p.entry_price, p.amount, p.leverage, p.entry_time)
        };
        self.log(Channel::Position, Level::Info, || {
            // The lock is released before the record is emitted.
            let side = position.lock().side.to_uppercase();
            format!("\n--- Position: {symbol} ({side}) ---")
        });
        if self.log_enabled(Channel::Position, Level::Debug) {
            self.log(Channel::Position, Level::Debug, || {
                format!("  Entry Price: {}", format_price(entry))
            });
            self.log(Channel::Position, Level::Debug, || {
                format!("  Amount: {} contracts", py_fixed(amount, 4))
            });
            self.log(Channel::Position, Level::Debug, || {
                format!("  Leverage: {}x", leverage_text(leverage))
            });
            self.log(Channel::Position, Level::Debug, || {
                format!("  Entry Time: {}", entry_time.format_seconds())
            });
        }

        // The book key names a leg in hedge mode; the exchange is asked about the symbol.
        let market = Key::market_of(symbol);
        let (price, candles) = self.obtain_price(market, source)?;
        let price = match price {
            PriceFetch::Price(p) => p,
            PriceFetch::Failed => {
                self.log(Channel::Main, Level::Warn, || {
                    format!("All ticker retries failed for {symbol}, skipping position update this cycle")
                });
                self.log(Channel::Position, Level::Warn, || {
                    "  ⚠ API failed to fetch price - SKIPPING update to avoid using stale data"
                        .to_owned()
                });
                self.log(Channel::Position, Level::Warn, || {
                    "  ⚠ Stop loss protection: Will retry on next cycle".to_owned()
                });
                return Ok(None);
            }
        };
        *price_seen = Some(price);
        self.log(Channel::Position, Level::Info, || {
            format!("  Current Price: {}", format_price(price))
        });
        if self.log_enabled(Channel::Position, Level::Info) {
            let (u, r) = match methods {
                Methods::Builtin(p) => {
                    let p = p.lock();
                    (p.pnl(price, false), p.leveraged_pnl(price, false))
                }
                custom => (
                    custom.pnl(price, false)?,
                    custom.leveraged_pnl(price, false)?,
                ),
            };
            let (pnl_usd, stop, tp, mfe) = {
                let p = position.lock();
                let value = p.amount * p.entry_price * p.contract_size;
                (
                    u * value * p.leverage,
                    p.stop_loss,
                    p.take_profit,
                    p.max_favorable_excursion,
                )
            };
            self.log(Channel::Position, Level::Info, || {
                format!(
                    "  Current P/L: {} ({})",
                    py_percent(r, 2, true),
                    format_pnl_usd(pnl_usd)
                )
            });
            self.log(Channel::Position, Level::Debug, || {
                format!("  Stop Loss: {}", format_price(stop))
            });
            // The original crashed here on a missing take profit (§6.19); we print None.
            self.log(Channel::Position, Level::Debug, || {
                format!(
                    "  Take Profit: {}",
                    tp.map_or_else(|| "None".to_owned(), format_price)
                )
            });
            self.log(Channel::Position, Level::Debug, || {
                format!("  Max Favorable Excursion: {}", py_percent(mfe, 2, false))
            });
        }

        let candles = match candles {
            Some(read) => {
                // Where the sequential cycle would call get_ohlcv: an interruption waiting
                // (a logging handler's, a Ctrl+C) ends the cycle here as it would there.
                self.exchange().check_interrupt()?;
                read
            }
            None => self
                .exchange()
                .get_ohlcv(market, CANDLE_TIMEFRAME, CANDLE_LIMIT),
        };
        let ohlcv = match caught(candles)? {
            Err(e) => {
                // Only errors the client lets through reach this branch (ccxt AuthenticationError
                // with the original client); the original then checks the simple exits only.
                let kind = e.kind_name().to_owned();
                self.log(Channel::Main, Level::Warn, || {
                    format!("API error getting OHLCV for {symbol}: {kind}: {e}")
                });
                self.log(Channel::Position, Level::Debug, || {
                    format!("  Using simple trailing stop (OHLCV API error: {kind})")
                });
                let trailing = self.trailing_stop_percentage();
                methods.update_trailing_stop(price, trailing, 0.03, 0.0)?;
                let at = Examine {
                    snapshot,
                    now: self.now(),
                };
                return self.check_exit_and_close(symbol, position, methods, price, at);
            }
            Ok(ohlcv) => ohlcv,
        };
        // The one clock reading of this examination.
        let at = Examine {
            snapshot,
            now: self.now(),
        };
        // Step 7: market inputs of this position only (defaults without usable candles).
        let market = self.market_step(symbol, position, methods, price, &ohlcv, at.now)?;
        drop(ohlcv);

        if !self.book().holds(symbol, position) {
            self.log(Channel::Position, Level::Debug, || {
                format!("  Position {symbol} was closed during update cycle, skipping")
            });
            return Ok(None);
        }
        if let StepEnd::Finished(pnl) =
            self.advanced_exit_step(symbol, position, methods, price, &market, at)?
        {
            return Ok(pnl);
        }
        if let StepEnd::Finished(pnl) =
            self.smart_exit_step(symbol, position, methods, price, &market, at)?
        {
            return Ok(pnl);
        }
        self.check_exit_and_close(symbol, position, methods, price, at)
    }

    /// The price for `market` from `source`, and the candles when they were read ahead. The
    /// failed attempts of a read made ahead are logged now, and wherever the sequential cycle
    /// would have made a ticker call an interruption waiting ends the cycle as it would there.
    fn obtain_price(
        &self,
        market: &str,
        source: Source,
    ) -> CoreResult<(PriceFetch, Option<CoreResult<Ohlcv>>)> {
        let fetched = match source {
            Source::Live { batch: Some(p) } => return Ok((PriceFetch::Price(p), None)),
            Source::Live { batch: None } => return Ok((self.fetch_price(market, 0)?, None)),
            Source::Fetched(fetched) => fetched,
        };
        for call in 0..fetched.ticker_calls {
            self.exchange().check_interrupt()?;
            if let Some(attempt) = fetched.attempts.get(call) {
                self.log(Channel::Position, Level::Debug, || {
                    attempt.message(call + 1)
                });
            }
        }
        match fetched.end {
            FetchEnd::Interrupted(e) => Err(e),
            FetchEnd::NoPrice => Ok((PriceFetch::Failed, None)),
            FetchEnd::Priced { price, ohlcv } => Ok((PriceFetch::Price(price), Some(ohlcv))),
            // Cut short in a pause (no worker took it up again): go on here, in order.
            FetchEnd::CutShort => Ok((self.fetch_price(market, fetched.attempts.len())?, None)),
        }
    }

    /// A close decided inside the cycle, reusing the cycle's position list when it is fresh by
    /// the manager's timer, read here (a close is rare: the examination of a position that
    /// stays open reads the clock once), never by how long a call took.
    pub(super) fn close_in_cycle(
        &self,
        symbol: &str,
        reason: &str,
        at: Examine<'_>,
    ) -> CoreResult<Option<f64>> {
        let timer = self.timer();
        let fresh = at
            .snapshot
            .filter(|s| timer.seconds_since(s.taken_at) < self.config().snapshot_reuse_seconds);
        Ok(self.close_with(symbol, reason, fresh)?.pnl())
    }

    /// `should_close` and, when it says so, the close. Returns the realised P/L of a close.
    fn check_exit_and_close(
        &self,
        symbol: &str,
        position: &SharedPosition,
        methods: &Methods<'_>,
        price: f64,
        at: Examine<'_>,
    ) -> CoreResult<Option<f64>> {
        let now = at.now;
        let (close, reason) = match methods {
            Methods::Builtin(p) => {
                let mut p = p.lock();
                // The point the views show: the price and the targets this cycle settled on.
                p.record_tick(now, price);
                let check = p.should_close(price);
                (check.close, std::borrow::Cow::Borrowed(check.reason))
            }
            custom => {
                position.lock().record_tick(now, price);
                custom.should_close(price)?
            }
        };
        if close {
            self.log(Channel::Position, Level::Info, || {
                format!("  ✓ Closing position: {reason}")
            });
            self.close_in_cycle(symbol, &reason, at)
        } else {
            self.log(Channel::Position, Level::Info, || {
                "  ✓ Position still open and healthy".to_owned()
            });
            Ok(None)
        }
    }

    /// The ticker with the original's retries (attempts = pauses + 1), after `done` failed
    /// attempts already made, each failed attempt logged as it happens.
    fn fetch_price(&self, symbol: &str, done: usize) -> CoreResult<PriceFetch> {
        let exchange = self.exchange().as_ref();
        let mut n = done;
        let end = super::fetch::ticker_with_retries(
            exchange,
            &self.config().ticker_retry_delays,
            symbol,
            done,
            &mut |attempt| {
                n += 1;
                self.log(Channel::Position, Level::Debug, || attempt.message(n));
            },
            &mut |seconds| {
                // A pause that fails otherwise than by an interruption just ends early.
                caught(exchange.pause(seconds))?.ok();
                Ok(true)
            },
        )?;
        Ok(match end {
            TickerEnd::Price(p) => PriceFetch::Price(p),
            TickerEnd::NoPrice | TickerEnd::CutShort => PriceFetch::Failed,
        })
    }

    /// The original's per-position error handler, with its fallback trailing update. Unlike the
    /// original (§6.10) the fallback only ever uses this position's own price.
    fn report_update_error(
        &self,
        symbol: &str,
        methods: &Methods<'_>,
        price: Option<f64>,
        e: &CoreError,
    ) -> CoreResult<()> {
        let kind = e.kind_name().to_owned();
        self.log(Channel::Main, Level::Error, || {
            format!("Error updating position {symbol}: {kind}: {e}")
        });
        self.log(Channel::Position, Level::Error, || {
            format!("  ✗ Error updating position: {kind}: {e}")
        });
        let Some(price) = price else { return Ok(()) };
        let trailing = self.trailing_stop_percentage();
        match methods.update_trailing_stop(price, trailing, 0.03, 0.0) {
            Ok(()) => self.log(Channel::Position, Level::Info, || {
                "  ✓ Fallback: Applied simple trailing stop update".to_owned()
            }),
            Err(err) if err.is_interrupt() => return Err(err),
            Err(err) => {
                let kind = err.kind_name().to_owned();
                self.log(Channel::Main, Level::Error, || {
                    format!("Fallback update also failed for {symbol}: {kind}: {err}")
                });
                self.log(Channel::Position, Level::Error, || {
                    format!("  ✗ Fallback update failed: {kind}")
                });
            }
        }
        Ok(())
    }
}
