//! Reading the exchange's position list and applying it to the book.
//!
//! Every list the manager reads — the update cycle's, a sync's, a reconcile's, and the checks
//! inside operations — goes through [`Manager::apply_list`]: the planner decides
//! ([`crate::reconcile::plan`]), the book applies the plan in one critical section, and this
//! module then does what needs the exchange or Python, with no lock held: the price behind a
//! removal's reason, imports, positions an unknown open turned out to have opened; and records an
//! event for every change, in the plan's order.
//!
//! A list that shows none of the positions the manager believes open, and would act on their
//! absence, is read a second time first (rule 7): the bot's own client answers `[]` on any
//! failure, and one such answer must not untrack live positions.
//!
//! A read for one position (a close's check, an order's verification: [`Manager::read_list_for`])
//! reads only that symbol's entries, and entries that name no symbol, in full: what the list
//! says about that position is then exact. Whether the list is blind to every position the
//! manager believes open needs the other entries too; when that question comes up the rest of
//! the same answer is read (no second request) before anything is decided.

use std::sync::Arc;

use log::Level;

use super::imports::{Flavour, Import};
use super::messages::Channel;
use super::{caught, Manager};
use crate::book::{Applied, EndKept, Reported, Succession, Touched};
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::events::{EventKind, Evidence};
use crate::exchange::{TickerAnswer, WholeList};
use crate::format::{format_price, py_repr_float};
use crate::key::Key;
use crate::reconcile::{judge_removal, Context, Mode, Op, Purpose, Resolution};
use crate::snapshot::Snapshot;

/// A list read by the manager, with when it was read (the manager's timer).
#[derive(Clone, Debug)]
pub struct ListRead {
    /// The list.
    pub snapshot: Arc<Snapshot>,
    /// When it was read: the manager's timer reading ([`crate::clock::Clock::timer`]), what a
    /// re-open hold starts from and `snapshot_reuse_seconds` is measured from.
    pub taken_at: Timestamp,
    /// For a list read for one symbol: the rest of the same answer, read when a decision needs
    /// every entry (then `snapshot` becomes the whole list's).
    rest: Option<Arc<parking_lot::Mutex<Option<WholeList>>>>,
}

impl ListRead {
    /// Whether `snapshot` holds only some of the answer's entries (a read for one symbol).
    pub fn is_partial(&self) -> bool {
        self.rest.is_some()
    }
}

/// What applying a list did, for the caller's own log lines and return values.
#[derive(Debug, Default)]
pub struct ListReport {
    /// Keys removed as closed outside the manager (not flips).
    pub removed: Vec<Key>,
    /// Positions imported or restored by imports.
    pub imported: usize,
    /// Positions restored from a tombstone or an unconfirmed close.
    pub restored: usize,
    /// Whether a second read was needed and failed: nothing was applied.
    pub uncorroborated: bool,
    /// Orders with an unknown outcome this list resolved.
    pub resolved: Vec<(Key, Resolution)>,
    /// Orders with an unknown outcome whose effect this list did not show, not yet enough to
    /// take them as not executed.
    pub unseen: Vec<Key>,
}

impl<H: Clone + Send + Sync> Manager<H> {
    /// Reads the exchange's list once; the book's mark is taken just before the request. An
    /// interruption passes up; any other failure is `Ok(Err(..))`.
    pub(crate) fn read_list(&self) -> CoreResult<CoreResult<ListRead>> {
        if let Err(e) = self.tell_symbols()? {
            return Ok(Err(e));
        }
        let mark = self.book().mark();
        Ok(match caught(self.exchange().get_open_positions())? {
            Ok(entries) => Ok(ListRead {
                snapshot: Arc::new(Snapshot::read(entries, mark)),
                taken_at: self.timer(),
                rest: None,
            }),
            Err(e) => Err(e),
        })
    }

    /// Reads the exchange's list for `key`: its symbol's entries (and entries that name no
    /// symbol) in full, the rest only if [`Manager::apply_list`] needs it. Errors as
    /// [`Manager::read_list`].
    pub(crate) fn read_list_for(&self, key: &Key) -> CoreResult<CoreResult<ListRead>> {
        if let Err(e) = self.tell_symbols()? {
            return Ok(Err(e));
        }
        let mark = self.book().mark();
        Ok(
            match caught(self.exchange().get_open_positions_for(key.symbol()))? {
                Ok(found) => Ok(ListRead {
                    snapshot: Arc::new(Snapshot::read_indexed(found.entries, found.total, mark)),
                    taken_at: self.timer(),
                    rest: found
                        .whole
                        .map(|w| Arc::new(parking_lot::Mutex::new(Some(w)))),
                }),
                Err(e) => Err(e),
            },
        )
    }

    /// Tells a client that lists only the markets it knows of every symbol that entered the
    /// book since it was last told ([`crate::exchange::Exchange::watch_symbols`]), so the list
    /// about to be read covers them. While one thread tells, another's list read waits (the
    /// symbols it would have to tell are being told). An interruption passes up; a failure is
    /// `Ok(Err(..))`, and those symbols are told again before the next list.
    fn tell_symbols(&self) -> CoreResult<CoreResult<()>> {
        if !self.exchange().watches_symbols() {
            return Ok(Ok(()));
        }
        let Some(_telling) = self.telling.try_lock_for(self.telling_wait) else {
            return Ok(Err(CoreError::Exchange {
                kind: "TimeoutError".to_owned(),
                message: format!(
                    "another thread was still telling the client which symbols to list after {} s",
                    self.telling_wait.as_secs_f64()
                ),
            }));
        };
        let symbols = self.book().take_untold();
        if symbols.is_empty() {
            return Ok(Ok(()));
        }
        let names: Vec<&str> = symbols.iter().map(String::as_str).collect();
        let told = self.exchange().watch_symbols(&names);
        if told.is_err() {
            self.book().untell(symbols);
        }
        caught(told)
    }

    /// Logs a list read's warnings: each at WARNING when new, then held back to DEBUG while
    /// every read shows it, and said again every [`super::repeats::REPEAT_EVERY_US`]
    /// ([`super::repeats`]). Sorted under the mutex, logged after it is let go.
    fn tell_list_warnings(&self, warnings: &[String], partial: bool) {
        if warnings.is_empty() && partial {
            return;
        }
        let sorted = self.repeats.lock().sort(self.timer().0, warnings, partial);
        for say in sorted {
            match say {
                super::repeats::Say::Warn(text) => self.log(Channel::Main, Level::Warn, || text),
                super::repeats::Say::Quiet(text) => self.log(Channel::Main, Level::Debug, || text),
            }
        }
    }

    /// Whether `list` shows none of the positions the manager believes open while some change
    /// it calls for rests on an absence (see [`crate::reconcile::Plan::needs_corroboration`]).
    fn needs_corroboration(&self, list: &ListRead, purpose: Purpose, focus: Option<&Key>) -> bool {
        let cx = Context {
            snapshot: &list.snapshot,
            policy: self.policy(),
            timer: self.timer(),
            purpose,
            focus,
        };
        self.book().plan(&cx).needs_corroboration
    }

    /// Reads the rest of a partial list's answer into its snapshot. `Ok(Err(..))`: it could not
    /// be read.
    fn complete(&self, list: &mut ListRead) -> CoreResult<CoreResult<()>> {
        let Some(whole) = list.rest.take().and_then(|r| r.lock().take()) else {
            return Ok(Ok(()));
        };
        Ok(match caught(whole.read())? {
            Ok(entries) => {
                list.snapshot = Arc::new(Snapshot::read(entries, list.snapshot.requested_at));
                Ok(())
            }
            Err(e) => Err(e),
        })
    }

    /// Applies `list` for `purpose` (`focus`: the one key a [`Purpose::Verify`] read is about).
    /// When the plan asks for corroboration the list is read again and the new one applied
    /// instead; `list` is updated to the list that was applied. `removal_reason` is the reason
    /// of a removal nothing else explains (`closed_externally`, `orphaned`).
    pub(crate) fn apply_list(
        &self,
        list: &mut ListRead,
        purpose: Purpose,
        focus: Option<&Key>,
        removal_reason: &'static str,
    ) -> CoreResult<ListReport> {
        let mut needs_second_read = self.needs_corroboration(list, purpose, focus);
        // A partial list is exact about its focus only: anything else, or the question whether
        // the list is blind (only the other entries can tell), needs the whole answer.
        let exact = purpose == Purpose::Verify && focus.is_some() && !needs_second_read;
        if list.is_partial() && !exact {
            if let Err(e) = self.complete(list)? {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Could not read the position list ({e}); keeping every position this time"
                    )
                });
                return Ok(ListReport {
                    uncorroborated: true,
                    ..ListReport::default()
                });
            }
            needs_second_read = self.needs_corroboration(list, purpose, focus);
        }
        self.tell_list_warnings(&list.snapshot.warnings, list.is_partial());
        let policy = self.policy();
        if needs_second_read {
            self.log(Channel::Main, Level::Warn, || {
                "Exchange position list shows none of the tracked positions; reading it again before acting on it".to_owned()
            });
            match self.read_list()? {
                Ok(again) => {
                    self.tell_list_warnings(&again.snapshot.warnings, again.is_partial());
                    *list = again;
                }
                Err(e) => {
                    self.log(Channel::Main, Level::Warn, || {
                        format!("Could not read the position list again ({e}); keeping every position this time")
                    });
                    return Ok(ListReport {
                        uncorroborated: true,
                        ..ListReport::default()
                    });
                }
            }
        }
        if !list.snapshot.well_formed {
            self.log(Channel::Main, Level::Warn, || {
                "Exchange position list has malformed entries: no position is removed this time"
                    .to_owned()
            });
        }
        let cx = Context {
            snapshot: &list.snapshot,
            policy,
            timer: self.timer(),
            purpose,
            focus,
        };
        let (applied, displaced) = self.book().apply_list(&cx);
        drop(displaced);
        // A list that shows no position at all (which a failed read gives too) after one that
        // showed positions the book does not track may hide them: held like the positions it
        // untracks (the crash run's KuCoin one-way seed 48: a person's position, listed, then
        // empty answers, and the bot's open went on top without a read, the last list being
        // an empty one).
        let hidden = if purpose != Purpose::Verify
            && list.snapshot.symbols.is_empty()
            && self.config().reopen_hold_seconds > 0.0
        {
            self.book().untracked_in_last_list(policy.mode)
        } else {
            Vec::new()
        };
        // Before anything calls out (a log record, a ticker read): an open racing this list
        // must find the hold as soon as the book no longer holds the key.
        let holds_changed = self.note_for_holds(
            list,
            applied
                .iter()
                .filter_map(|change| match change {
                    Applied::Removed {
                        at,
                        flipped_to: None,
                        replaced_by: None,
                        ..
                    } => Some(&at.key),
                    Applied::CloseConfirmed { key, .. } => Some(key),
                    _ => None,
                })
                .chain(&hidden),
        );
        if holds_changed {
            // Before the removals' events: a process that dies between the two keeps the
            // hold (a hold over a key still in the journal's book changes nothing).
            self.journal_holds();
        }
        let settled: Vec<Key> = applied
            .iter()
            .filter_map(|change| match change {
                Applied::CloseConfirmed { key, .. } => Some(key.clone()),
                _ => None,
            })
            .collect();
        if !settled.is_empty() {
            self.journal_closes_settled(&settled);
        }
        if purpose != Purpose::Verify {
            self.book().note_list(list.snapshot.clone());
            if policy.mode == Mode::OneWay && list.snapshot.well_formed {
                self.report_two_legs(&list.snapshot);
            }
        }
        // Orders whose unknown outcome this list resolved (or made moot: a side flip replaced
        // the position) — a journal's rows of them go.
        let orders_over: Vec<Key> = applied
            .iter()
            .filter_map(|change| match change {
                Applied::Resolved { at, .. }
                | Applied::Removed {
                    at,
                    flipped_to: Some(_),
                    ..
                } => Some(at.key.clone()),
                Applied::OpenResolved { key, .. }
                | Applied::VerifyOpen { key, .. }
                | Applied::VerifyChange { key, .. } => Some(key.clone()),
                _ => None,
            })
            .collect();
        // Doubtful tombstones whose end a list showed real: their journal rows say so.
        let ends_shown: Vec<Key> = applied
            .iter()
            .filter_map(|change| match change {
                Applied::EndShown { key } => Some(key.clone()),
                _ => None,
            })
            .collect();
        if !ends_shown.is_empty() {
            self.journal_remembered(&ends_shown);
        }
        let mut report = ListReport::default();
        for change in applied {
            self.report_change(change, list, purpose, removal_reason, &mut report)?;
        }
        if !orders_over.is_empty() {
            self.journal_orders_settled(&orders_over);
        }
        Ok(report)
    }

    fn report_change(
        &self,
        change: Applied<H>,
        list: &ListRead,
        purpose: Purpose,
        removal_reason: &'static str,
        report: &mut ListReport,
    ) -> CoreResult<()> {
        match change {
            Applied::EndShown { key } => {
                self.log(Channel::Main, Level::Debug, || {
                    format!(
                        "Position {key} is not in a position list that shows other positions: it was closed (it was untracked on lists that could not tell)"
                    )
                });
            }
            Applied::Resized {
                at,
                previous,
                contracts,
                entry_change,
            } => self.report_resize(&at, previous, contracts, entry_change),
            Applied::Pending {
                key,
                missing,
                needed,
                replaced: true,
            } => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "The exchange lists another position under {key}: fewer contracts at an entry a reduction of the tracked one cannot leave ({missing}/{needed}); its list may lag, so the tracked one is kept until the next lists show it too"
                    )
                });
            }
            Applied::Pending {
                key,
                missing,
                needed,
                replaced: false,
            } => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Position {key} not reported by the exchange ({missing}/{needed}); keeping it until confirmed"
                    )
                });
            }
            Applied::Removed {
                at,
                missing,
                reported,
                flipped_to: None,
                replaced_by: Some(listed),
            } => self.report_replaced(&at, missing, reported, listed)?,
            Applied::Removed {
                at,
                missing,
                reported,
                flipped_to,
                replaced_by: _,
            } => match flipped_to {
                Some((side, contracts)) => {
                    let key = &at.key;
                    self.log(Channel::Main, Level::Warn, || {
                        format!(
                            "Position {key} flipped to {side} on the exchange; closing the tracked one and taking the new one"
                        )
                    });
                    let evidence = Evidence {
                        exchange_side: Some(side.as_str().to_owned()),
                        exchange_contracts: Some(contracts),
                        missing: Some(missing),
                        ..Evidence::default()
                    };
                    self.record_with(
                        key.as_str(),
                        &at.position,
                        EventKind::Removed,
                        "side_flipped",
                        None,
                        Some(evidence),
                    );
                }
                None => {
                    self.report_removal(&at, missing, reported, removal_reason, None)?;
                    report.removed.push(at.key);
                }
            },
            Applied::Restored {
                at,
                reduced,
                grown,
                own_end,
                flipped_back,
            } => {
                report.restored += 1;
                let key = &at.key;
                let needed = self.config().outcome_confirmations;
                self.log(Channel::Main, Level::Info, || {
                    if flipped_back {
                        let how = if reduced { "reduced meanwhile" } else { "unchanged" };
                        format!(
                            "Restored position {key}: {needed} position list(s) in a row show again the position a side flip replaced ({how}); the flip was undone, keeping its state"
                        )
                    } else if own_end {
                        format!(
                            "Restored position {key}: {needed} position list(s) in a row show again the position the manager's own order ended; the order did not end it after all, keeping its state"
                        )
                    } else if reduced {
                        format!(
                            "Restored position {key}: the exchange reports it again with the same side and entry, reduced while it was not tracked; keeping its state"
                        )
                    } else if grown {
                        format!(
                            "Restored position {key}: the exchange reports it again on the same side with more contracts, added to while it was not tracked (the lists that untracked it could not be told from failed reads or lagging lists); keeping its state"
                        )
                    } else {
                        format!(
                            "Restored position {key}: the exchange reports it again unchanged, keeping its state"
                        )
                    }
                });
                // A flip back's `restored` names the flip: the journal's `closed_positions()`
                // takes back the flip's `removed` of this very position by it.
                let reason = if flipped_back {
                    "side_flipped"
                } else {
                    "reported_again"
                };
                self.record(
                    key.as_str(),
                    &at.position,
                    EventKind::Restored,
                    reason,
                    None,
                );
            }
            Applied::Import { key, after } => {
                let flavour = match (purpose, after) {
                    (Purpose::Reconcile, _) => Flavour::Reconcile,
                    (_, Succession::Flip) => Flavour::Flip,
                    (_, Succession::Replacement) => Flavour::Replacement,
                    (_, Succession::Nothing) => Flavour::Sync,
                };
                match self.import_listed(&key, list, flavour)? {
                    Ok(Import::Imported) => report.imported += 1,
                    Ok(Import::Skipped) => {}
                    Err(e) => self.log(Channel::Main, Level::Warn, || {
                        format!("Could not import {key}, skipping: {}: {e}", e.kind_name())
                    }),
                }
            }
            Applied::CloseConfirmed { key, kept } => {
                self.log(Channel::Main, Level::Debug, || match kept {
                    EndKept::Restorable => format!(
                        "Close of {key} confirmed by an empty position list: remembered, and restored if the exchange lists the very same position again"
                    ),
                    EndKept::OwnEnd => format!(
                        "Close of {key} confirmed: the exchange no longer lists it; remembered, so a list that lags the close does not track it again"
                    ),
                    EndKept::Forgotten => {
                        format!("Close of {key} confirmed: the exchange no longer lists it")
                    }
                });
            }
            Applied::ListedAgain { key, lists } => {
                let needed = self.config().outcome_confirmations;
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "The exchange lists {key} again, the very position the manager's own order ended ({lists}/{needed}); its list may lag the order, so it is tracked again only if the next lists show it too"
                    )
                });
            }
            Applied::FlipBackListed { key, side, lists } => {
                let needed = self.config().outcome_confirmations;
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "The exchange lists {key} {side} again, the side a flip replaced ({lists}/{needed}); its list may lag the flip, so it is believed only if the next lists show it too"
                    )
                });
            }
            Applied::CloseUnconfirmed { at, contracts } => {
                report.restored += 1;
                let key = &at.key;
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "Close of {key} not confirmed: the exchange still lists it; tracking it again"
                    )
                });
                let evidence = Evidence {
                    exchange_contracts: contracts,
                    ..Evidence::default()
                };
                self.record_with(
                    key.as_str(),
                    &at.position,
                    EventKind::CloseUnconfirmed,
                    "still_listed",
                    None,
                    Some(evidence),
                );
            }
            Applied::Resolved {
                at,
                unknown,
                resolution,
                previous,
                kept,
            } => {
                self.report_resolution(&at, &unknown, resolution, previous, kept);
                report.resolved.push((at.key, resolution));
            }
            Applied::VerifyClose {
                key,
                order_id,
                shown,
            } => {
                // Rule 7: the client reported the close; the order says whether it filled
                // before the list that still shows the position is believed.
                let lookup = self.lookup_order(Some(&order_id), key.symbol(), None)?;
                let settled = if let Some(filled) = lookup.filled_contracts() {
                    let (policy, timer) = (self.policy(), self.timer());
                    self.book()
                        .close_filled(&key, &order_id, filled, shown, &policy, timer)
                } else {
                    self.book()
                        .unconfirm_close(&key, &order_id, shown.contracts)
                };
                if let Some(change) = settled {
                    self.report_change(change, list, purpose, removal_reason, report)?;
                }
            }
            Applied::CloseLags { key } => {
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "The exchange still lists {key} exactly as it was before its close order, which the exchange reports filled in full; its list lags the fill, so the position stays closed"
                    )
                });
            }
            Applied::StillListed { key, lists } => {
                let needed = self.config().outcome_confirmations;
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "The exchange still lists {key} though its close order filled ({lists}/{needed}); its list lags the fill, so it is tracked again only if the next lists show it too"
                    )
                });
            }
            Applied::SizeLags {
                key,
                listed,
                book,
                lists,
            } => {
                let needed = self.config().outcome_confirmations;
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "The exchange lists {key} at {}, its size before the manager's own order ({lists}/{needed}); its list may lag the fill, so the book keeps {} unless the next lists show it too",
                        py_repr_float(listed),
                        py_repr_float(book)
                    )
                });
            }
            Applied::Unseen { key, op, lists } => {
                let needed = self.config().outcome_confirmations;
                let what = op.map_or("open", Op::name);
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "The exchange does not show the {what} order for {key} whose answer was lost ({lists}/{needed}); its list may lag the fill, so nothing more is sent for it until it does or the order is confirmed not executed"
                    )
                });
                report.unseen.push(key);
            }
            Applied::VerifyOpen {
                key,
                intent,
                resting,
            } => self.verify_open(&key, &intent, resting.as_ref())?,
            Applied::VerifyChange {
                key,
                op,
                order_id,
                absent,
            } => {
                if let Some(change) = self.verify_change(&key, op, &order_id, absent)? {
                    self.report_change(change, list, purpose, removal_reason, report)?;
                }
            }
            Applied::OpenResolved { key, intent, found } => {
                if found {
                    self.track_resolved_open(&key, &intent, list)?;
                } else {
                    self.log(Channel::Main, Level::Info, || {
                        format!(
                            "Open of {key} with an unknown outcome did not go through: the exchange lists no position"
                        )
                    });
                }
            }
        }
        Ok(())
    }

    /// One-way mode on an account in hedge mode: a symbol listed with a long and a short leg is
    /// reported (a warning and a `two_legs` event, once while it lasts), never silently ignored.
    fn report_two_legs(&self, snapshot: &Snapshot) {
        let both: Vec<String> = snapshot
            .symbols_in_order()
            .into_iter()
            .filter(|(_, p)| p.long.is_some() && p.short.is_some())
            .map(|(s, _)| s.to_owned())
            .collect();
        if both.is_empty() && !self.book().has_two_legs_noted() {
            return;
        }
        for symbol in self.book().note_two_legs(both) {
            let Some(presence) = snapshot.symbols.get(&symbol) else {
                continue;
            };
            let (Some(long), Some(short)) = (&presence.long, &presence.short) else {
                continue;
            };
            let tracked = self.book().get(&symbol);
            let what = if tracked.is_some() {
                "only the tracked leg is managed; closes name its side where the client takes it"
            } else {
                "neither leg is imported"
            };
            self.log(Channel::Main, Level::Warn, || {
                format!(
                    "Position {symbol} is listed with two legs (long {}, short {}): the account is in hedge mode and this manager runs in one-way mode; {what} (use position_mode='hedge')",
                    py_repr_float(long.contracts),
                    py_repr_float(short.contracts)
                )
            });
            let position = match tracked {
                Some((position, _)) => position,
                None => crate::book::share(crate::position::PositionState::new(
                    symbol.as_str(),
                    "long",
                    long.entry_price.unwrap_or(0.0),
                    long.contracts,
                    1.0,
                    0.0,
                    None,
                    self.now(),
                )),
            };
            let evidence = Evidence {
                exchange_side: Some("both".to_owned()),
                exchange_contracts: Some(short.contracts),
                previous_amount: Some(long.contracts),
                ..Evidence::default()
            };
            self.record_with(
                &symbol,
                &position,
                EventKind::TwoLegs,
                "two_legs_in_one_way_mode",
                None,
                Some(evidence),
            );
        }
    }

    fn report_resize(
        &self,
        at: &Touched<H>,
        previous: f64,
        contracts: f64,
        entry_change: Option<(f64, f64)>,
    ) {
        let key = &at.key;
        self.log(Channel::Main, Level::Warn, || {
            let entry = entry_change.map_or_else(String::new, |(old, new)| {
                format!(
                    ", entry {} -> {}",
                    format_price(old),
                    format_price(new)
                )
            });
            format!(
                "Position {key} size changed on the exchange: {} -> {} contracts{entry}; tracking the exchange's size",
                py_repr_float(previous),
                py_repr_float(contracts)
            )
        });
        let evidence = Evidence {
            exchange_contracts: Some(contracts),
            previous_amount: Some(previous),
            previous_entry_price: entry_change.map(|(old, _)| old),
            ..Evidence::default()
        };
        self.record_with(
            key.as_str(),
            &at.position,
            EventKind::Resized,
            "size_changed_externally",
            None,
            Some(evidence),
        );
    }

    /// A position replaced on its own side ([`crate::reconcile::Action::Replace`]): its end is
    /// reported as a removal judged by the evidence (closed outside the manager, its stop or
    /// take-profit filled on the exchange, a liquidation), with what the exchange lists now.
    fn report_replaced(
        &self,
        at: &Touched<H>,
        missing: u32,
        reported: Reported,
        (contracts, entry): (f64, f64),
    ) -> CoreResult<()> {
        let key = &at.key;
        let (size, own_entry) = {
            let p = at.position.lock();
            (p.amount, p.entry_price)
        };
        self.log(Channel::Main, Level::Warn, || {
            format!(
                "Position {key} was replaced on the exchange: it lists {} contracts at entry {}, which the tracked {} at entry {} cannot leave after a reduction; closing the tracked one and taking the new one",
                py_repr_float(contracts),
                format_price(entry),
                py_repr_float(size),
                format_price(own_entry)
            )
        });
        let side = at.position.lock().side.clone();
        self.report_removal(
            at,
            missing,
            reported,
            "closed_externally",
            Some((side, contracts)),
        )
    }

    /// Records why a position vanished, judged from the evidence: the manager's last price, the
    /// exchange's last mark price and — when a liquidation price is known — a price read now.
    fn report_removal(
        &self,
        at: &Touched<H>,
        missing: u32,
        reported: Reported,
        default_reason: &'static str,
        listed_instead: Option<(String, f64)>,
    ) -> CoreResult<()> {
        let (is_long, stop, tp, own_last) = {
            let p = at.position.lock();
            (
                p.is_long(),
                p.stop_loss,
                p.take_profit,
                p.history.last().map(|pt| pt.price),
            )
        };
        let mut prices: Vec<f64> = own_last.into_iter().chain(reported.mark_price).collect();
        let mut price_at_removal = None;
        if reported.liquidation_price.is_some()
            && judge_removal(is_long, &prices, reported.liquidation_price, stop, tp)
                .is_none_or(|(r, _)| r != crate::reconcile::LIQUIDATION)
        {
            // Only the exchange's price can tell a liquidation the manager did not see coming.
            if let Ok(answer) = caught(self.exchange().get_ticker(at.key.symbol()))? {
                price_at_removal = answer.valid_price();
                prices.extend(price_at_removal);
            }
        }
        let judged = judge_removal(is_long, &prices, reported.liquidation_price, stop, tp);
        let (reason, pnl) = match judged {
            Some((reason, level)) => (reason, Some(at.position.lock().leveraged_pnl(level, true))),
            None => (default_reason, None),
        };
        let evidence = Evidence {
            last_price: own_last.or(reported.mark_price),
            liquidation_price: reported.liquidation_price,
            mark_price: reported.mark_price,
            stop_loss: Some(stop),
            take_profit: tp,
            missing: Some(missing),
            price_at_removal,
            exchange_side: listed_instead.as_ref().map(|(side, _)| side.clone()),
            exchange_contracts: listed_instead.map(|(_, contracts)| contracts),
            ..Evidence::default()
        };
        self.record_with(
            at.key.as_str(),
            &at.position,
            EventKind::Removed,
            reason,
            pnl,
            Some(evidence),
        );
        Ok(())
    }

    fn report_resolution(
        &self,
        at: &Touched<H>,
        unknown: &crate::book::Unknown,
        resolution: Resolution,
        previous: f64,
        kept: EndKept,
    ) {
        let key = &at.key;
        let order_id = unknown.client_order_id.as_deref();
        let pnl = unknown
            .price
            .map(|price| at.position.lock().leveraged_pnl(price, true));
        let op = unknown.op.name();
        let (kind, reason): (EventKind, &str) = match (unknown.op, resolution) {
            (_, Resolution::NotExecuted) => (EventKind::OutcomeResolved, "not_executed"),
            (Op::Close | Op::ScaleOut, Resolution::Closed) => (EventKind::Closed, &unknown.reason),
            (Op::ScaleIn, Resolution::Closed) => (EventKind::OutcomeResolved, "not_executed"),
            (Op::Close | Op::ScaleOut, Resolution::Executed { .. }) => {
                (EventKind::PartialClose, &unknown.reason)
            }
            (Op::ScaleIn, Resolution::Executed { .. }) => (EventKind::ScaledIn, "scale_in"),
        };
        self.log(Channel::Main, Level::Warn, || match resolution {
            Resolution::NotExecuted => format!(
                "The {op} order for {key} whose answer was lost did not go through; nothing changed"
            ),
            Resolution::Closed if kept == EndKept::Restorable => format!(
                "The {op} order for {key} whose answer was lost closed the position (an empty position list); remembered, and restored if the exchange lists the very same position again"
            ),
            Resolution::Closed => format!(
                "The {op} order for {key} whose answer was lost closed the position (the exchange no longer lists it)"
            ),
            Resolution::Executed { contracts, .. } => format!(
                "The {op} order for {key} whose answer was lost went through: {} -> {} contracts",
                py_repr_float(previous),
                py_repr_float(contracts)
            ),
        });
        let pnl = match kind {
            EventKind::Closed | EventKind::PartialClose => pnl,
            _ => None,
        };
        self.record_full(
            key.as_str(),
            &at.position,
            kind,
            reason,
            pnl,
            Some(Evidence {
                previous_amount: Some(previous),
                ..Evidence::default()
            }),
            order_id,
        );
    }

    /// One read of the list for an operation on `key` (an open's or an order's verification): a
    /// [`Purpose::Verify`] apply, corroborated like any other. The list is `None` when it could
    /// not be read, corroborated, or is malformed; it may hold only `key`'s symbol
    /// ([`Manager::read_list_for`]).
    pub(crate) fn verify_read(&self, key: &Key) -> CoreResult<(Option<ListRead>, ListReport)> {
        let mut list = match self.read_list_for(key)? {
            Ok(list) => list,
            Err(e) => {
                self.log(Channel::Main, Level::Warn, || {
                    format!("Could not read the exchange's positions to check {key}: {e}")
                });
                return Ok((None, ListReport::default()));
            }
        };
        let report = self.apply_list(&mut list, Purpose::Verify, Some(key), "closed_externally")?;
        if report.uncorroborated || !list.snapshot.well_formed {
            return Ok((None, report));
        }
        Ok((Some(list), report))
    }

    /// A ticker price for an import, or the entry's mark price, or its entry price when the
    /// ticker fails (a listed position is never left unmanaged for want of a ticker).
    pub(crate) fn import_price(
        &self,
        key: &Key,
        mark: Option<f64>,
        entry: Option<f64>,
    ) -> CoreResult<Option<(f64, bool)>> {
        let symbol = key.symbol();
        let why = match caught(self.exchange().get_ticker(symbol))? {
            Ok(answer) => match answer.valid_price() {
                Some(p) => return Ok(Some((p, false))),
                None => match answer {
                    TickerAnswer::Missing => format!("Could not get ticker for {symbol}"),
                    TickerAnswer::Ticker { last } => {
                        format!("Invalid price for {symbol}: {}", last.display())
                    }
                },
            },
            Err(e) => format!("Could not get ticker for {symbol}: {}: {e}", e.kind_name()),
        };
        match mark.or(entry) {
            Some(p) => {
                let source = if mark.is_some() { "mark" } else { "entry" };
                self.log(Channel::Main, Level::Warn, || {
                    format!(
                        "{why}; importing it at its {source} price {} until a ticker arrives",
                        format_price(p)
                    )
                });
                Ok(Some((p, true)))
            }
            None => {
                self.log(Channel::Main, Level::Warn, || format!("{why}, skipping"));
                Ok(None)
            }
        }
    }
}
