//! A scripted fake exchange and helpers for the manager's tests.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::in_flight::SentOrder;
use super::{HandleFactory, Manager, ManagerConfig};
use crate::book::SharedPosition;
use crate::clock::{Clock, ManualClock, Timestamp};
use crate::error::{CoreError, CoreResult};
use crate::events::Event;
use crate::exchange::{
    BatchTicker, Exchange, Field, LimitOrder, MarketLimits, MarketOrder, Ohlcv, OrderAnswer,
    OrderId, OrderLookup, OrderReport, RawEntry, RawPosition, StatusWait, SymbolEntries,
    TickerAnswer, WholeList,
};
use crate::format::py_repr_float;
use crate::key::Key;

/// Handles are plain numbers in core tests.
#[derive(Default)]
pub struct Counter(Mutex<u32>);

impl HandleFactory<u32> for Counter {
    fn make(&self, _position: &SharedPosition) -> CoreResult<u32> {
        let mut n = self.0.lock();
        *n += 1;
        Ok(1000 + *n)
    }
}

/// What the fake answers; scripted answers for `get_open_positions` are used first.
#[derive(Default)]
pub struct FakeState {
    pub positions: Vec<RawEntry>,
    pub scripted: VecDeque<CoreResult<Vec<RawEntry>>>,
    pub price: Option<f64>,
    pub close_ok: bool,
    pub calls: Vec<String>,
    /// Runs inside `get_open_positions` (to simulate other threads acting meanwhile).
    pub during_fetch: Option<Box<dyn FnMut() + Send>>,
    /// Runs inside `close_position`, before it answers (to simulate another thread acting while
    /// the exchange close is in flight).
    pub during_close: Option<Box<dyn FnMut() + Send>>,
    /// Runs inside `create_market_order`, before it answers.
    pub during_order: Option<Box<dyn FnMut() + Send>>,
    /// Runs inside the next `get_ticker` (once), before it answers.
    pub during_ticker: Option<Box<dyn FnMut() + Send>>,
    /// Scripted answers of `create_market_order`; then a full fill at `price`.
    pub market_answers: VecDeque<CoreResult<OrderAnswer>>,
    /// Scripted answers of `create_limit_order`; then an open order with an id.
    pub limit_answers: VecDeque<CoreResult<OrderAnswer>>,
    /// Scripted answers of `wait_for_order_fill`; then `{'status': 'closed'}`.
    pub fill_answers: VecDeque<CoreResult<OrderAnswer>>,
    /// Scripted answers of `cancel_order`; then `True`.
    pub cancel_answers: VecDeque<CoreResult<bool>>,
    /// What `get_market_limits` answers.
    pub limits: Option<MarketLimits>,
    /// What `get_ohlcv` answers per symbol (no candles for a symbol not listed).
    pub ohlcv: std::collections::HashMap<String, Ohlcv>,
    /// Declares `position_legs` (orders name their leg).
    pub legs: bool,
    /// Declares `sized_closes` (closes name the manager's size: `contracts=` in the call).
    pub sized_closes: bool,
    /// Per-symbol prices (over `price`).
    pub prices: HashMap<String, f64>,
    /// Scripted `get_ticker` answers per symbol, used before the price.
    pub ticker_script: HashMap<String, VecDeque<CoreResult<TickerAnswer>>>,
    /// Scripted `get_ohlcv` answers per symbol, used before `ohlcv`.
    pub ohlcv_script: HashMap<String, VecDeque<CoreResult<Ohlcv>>>,
    /// Declares `get_tickers` when set: how it answers.
    pub batch: Option<BatchScript>,
    /// What `check_interrupt` raises next (once).
    pub pending_interrupt: Option<CoreError>,
    /// How long every `get_ticker`, `get_tickers` and `get_ohlcv` call takes (no lock held).
    pub read_delay: Duration,
    /// Reads in progress, and the most there ever were at once.
    pub in_flight: (usize, usize),
    /// `get_ohlcv` of this symbol panics once (a bug in a client binding).
    pub panic_once: Option<String>,
    /// `get_open_positions_for` answers as the binding does: only the symbol's entries (and
    /// entries without a usable symbol), the whole answer on demand (a `whole` call).
    pub partial_reads: bool,
    /// Declares `client_order_ids` (orders carry client ids; the venue can be asked by them).
    pub client_ids: bool,
    /// Scripted answers of `get_order_by_client_id`; then "not found".
    pub lookup_answers: VecDeque<CoreResult<OrderLookup>>,
    /// Declares `watch_symbols` when set: its scripted answers (then `Ok`). Lists then show the
    /// positions of `scoped` symbols only once told of them (a venue whose default list holds
    /// one kind of market).
    pub watch: Option<VecDeque<CoreResult<()>>>,
    /// Symbols whose positions are listed only once `watch_symbols` named them.
    pub scoped: std::collections::HashSet<String>,
    /// Symbols `watch_symbols` named so far.
    pub told: std::collections::HashSet<String>,
    /// Runs inside `watch_symbols` (no lock held), before the symbols count as told.
    pub during_watch: Option<Box<dyn FnMut() + Send>>,
}

/// How the fake's `get_tickers` answers: scripted failures first, then per symbol the
/// override, else a ticker at the symbol's price, else nothing.
#[derive(Default)]
pub struct BatchScript {
    /// Errors the next calls raise.
    pub failures: VecDeque<CoreError>,
    /// Entries that replace a symbol's ticker.
    pub overrides: HashMap<String, BatchTicker>,
}

/// A fake exchange.
#[derive(Default, Clone)]
pub struct Fake(pub Arc<Mutex<FakeState>>);

impl Fake {
    pub fn calls(&self) -> Vec<String> {
        self.0.lock().calls.clone()
    }

    /// Waits the read delay, if any (no lock held), counting the reads in progress.
    fn delay(&self) {
        let delay = {
            let mut s = self.0.lock();
            s.in_flight.0 += 1;
            s.in_flight.1 = s.in_flight.1.max(s.in_flight.0);
            s.read_delay
        };
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        self.0.lock().in_flight.0 -= 1;
    }
}

impl FakeState {
    /// The price `get_ticker` answers for `symbol`.
    fn price_of(&self, symbol: &str) -> Option<f64> {
        self.prices.get(symbol).copied().or(self.price)
    }
}

/// A fake that prices every symbol at `price` and answers closes `True`.
pub fn priced(price: f64) -> Fake {
    let fake = Fake::default();
    {
        let mut s = fake.0.lock();
        s.price = Some(price);
        s.close_ok = true;
    }
    fake
}

/// `open_position(symbol, signal, 1, 10, 0.05)` with a market order.
pub fn open_request<'a>(symbol: &'a str, signal: &'a str) -> super::OpenRequest<'a> {
    super::OpenRequest {
        symbol,
        signal,
        amount: (1.0, "1"),
        leverage: (10.0, "10"),
        stop_loss_percentage: (0.05, "0.05"),
        use_limit: false,
        limit_offset: 0.001,
    }
}

/// An interruption as the binding reports a `KeyboardInterrupt`.
pub fn interrupt() -> CoreError {
    CoreError::Interrupted(crate::error::Interrupt::new(
        Arc::new("KeyboardInterrupt"),
        "KeyboardInterrupt",
    ))
}

pub fn listed(symbol: &str, side: &str, contracts: f64, entry: f64) -> RawEntry {
    let mut raw = RawPosition::with_symbol(symbol);
    raw.side = Field::Text(side.into());
    raw.contracts = Field::Number(contracts);
    raw.entry_price = Field::Number(entry);
    raw.leverage = Field::Number(10.0);
    RawEntry::Position(Box::new(raw))
}

impl Exchange for Fake {
    fn get_open_positions(&self) -> CoreResult<Vec<RawEntry>> {
        let hook = {
            let mut s = self.0.lock();
            s.calls.push("get_open_positions".into());
            s.during_fetch.take()
        };
        if let Some(mut f) = hook {
            f();
        }
        let mut s = self.0.lock();
        let answer = match s.scripted.pop_front() {
            Some(answer) => answer,
            None => Ok(s.positions.clone()),
        };
        let hidden = |e: &RawEntry| match e {
            RawEntry::Position(raw) => raw
                .symbol()
                .is_some_and(|sym| s.scoped.contains(sym) && !s.told.contains(sym)),
            RawEntry::NotAMapping(_) => false,
        };
        answer.map(|entries| entries.into_iter().filter(|e| !hidden(e)).collect())
    }

    fn watches_symbols(&self) -> bool {
        self.0.lock().watch.is_some()
    }

    fn watch_symbols(&self, symbols: &[&str]) -> CoreResult<()> {
        let hook = self.0.lock().during_watch.take();
        if let Some(mut f) = hook {
            f();
        }
        let mut s = self.0.lock();
        s.calls.push(format!("watch_symbols {}", symbols.join(",")));
        let answer = s
            .watch
            .as_mut()
            .and_then(VecDeque::pop_front)
            .unwrap_or(Ok(()));
        if answer.is_ok() {
            s.told.extend(symbols.iter().map(|sym| (*sym).to_owned()));
        }
        answer
    }

    fn get_open_positions_for(&self, symbol: &str) -> CoreResult<SymbolEntries> {
        let all = self.get_open_positions()?;
        if !self.0.lock().partial_reads {
            return Ok(SymbolEntries::whole(all));
        }
        let entries = all
            .iter()
            .enumerate()
            .filter(|(_, e)| match e {
                RawEntry::Position(raw) => raw.symbol().is_none_or(|s| s == symbol),
                RawEntry::NotAMapping(_) => true,
            })
            .map(|(i, e)| (i, e.clone()))
            .collect();
        let state = self.0.clone();
        Ok(SymbolEntries {
            entries,
            total: all.len(),
            whole: Some(WholeList::new(move || {
                state.lock().calls.push("whole".into());
                Ok(all)
            })),
        })
    }

    fn get_ticker(&self, symbol: &str) -> CoreResult<TickerAnswer> {
        self.delay();
        let hook = self.0.lock().during_ticker.take();
        if let Some(mut f) = hook {
            f();
        }
        let mut s = self.0.lock();
        s.calls.push(format!("get_ticker {symbol}"));
        if let Some(answer) = s
            .ticker_script
            .get_mut(symbol)
            .and_then(VecDeque::pop_front)
        {
            return answer;
        }
        Ok(match s.price_of(symbol) {
            Some(p) => TickerAnswer::Ticker {
                last: Field::Number(p),
            },
            None => TickerAnswer::Missing,
        })
    }

    fn get_ohlcv(&self, symbol: &str, _timeframe: &str, _limit: u32) -> CoreResult<Ohlcv> {
        self.delay();
        let mut s = self.0.lock();
        s.calls.push(format!("get_ohlcv {symbol}"));
        if s.panic_once.as_deref() == Some(symbol) {
            s.panic_once = None;
            drop(s);
            panic!("get_ohlcv {symbol} panicked");
        }
        if let Some(answer) = s.ohlcv_script.get_mut(symbol).and_then(VecDeque::pop_front) {
            return answer;
        }
        Ok(s.ohlcv.get(symbol).cloned().unwrap_or_default())
    }

    fn get_tickers(&self, symbols: &[&str]) -> Option<CoreResult<Vec<BatchTicker>>> {
        self.0.lock().batch.as_ref()?;
        self.delay();
        let mut s = self.0.lock();
        s.calls.push(format!("get_tickers {}", symbols.join(",")));
        let prices: Vec<Option<f64>> = symbols.iter().map(|sym| s.price_of(sym)).collect();
        let batch = s.batch.as_mut()?;
        if let Some(e) = batch.failures.pop_front() {
            return Some(Err(e));
        }
        Some(Ok(symbols
            .iter()
            .zip(prices)
            .map(|(sym, price)| match (batch.overrides.get(*sym), price) {
                (Some(entry), _) => entry.clone(),
                (None, Some(p)) => BatchTicker::Ticker {
                    symbol: Field::Text((*sym).to_owned()),
                    last: Field::Number(p),
                },
                (None, None) => BatchTicker::Missing,
            })
            .collect()))
    }

    fn check_interrupt(&self) -> CoreResult<()> {
        match self.0.lock().pending_interrupt.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn close_position(
        &self,
        symbol: &str,
        _client_order_id: Option<&str>,
        side: Option<crate::key::Side>,
        contracts: Option<f64>,
    ) -> CoreResult<bool> {
        let hook = {
            let mut s = self.0.lock();
            let mut call = match side {
                Some(side) => format!("close_position {symbol} side={side}"),
                None => format!("close_position {symbol}"),
            };
            if let Some(contracts) = contracts {
                call.push_str(&format!(" contracts={}", py_repr_float(contracts)));
            }
            s.calls.push(call);
            s.during_close.take()
        };
        if let Some(mut f) = hook {
            f();
        }
        Ok(self.0.lock().close_ok)
    }

    fn create_market_order(&self, order: &MarketOrder<'_>) -> CoreResult<OrderAnswer> {
        let hook = {
            let mut s = self.0.lock();
            s.calls.push(format!(
                "create_market_order {} {} {} {}{}",
                order.symbol,
                order.side.as_str(),
                py_repr_float(order.amount),
                py_repr_float(order.leverage),
                if order.reduce_only {
                    " reduce_only"
                } else {
                    ""
                }
            ));
            if let Some(side) = order.position_side {
                if let Some(last) = s.calls.last_mut() {
                    last.push_str(&format!(" position_side={side}"));
                }
            }
            s.during_order.take()
        };
        if let Some(mut f) = hook {
            f();
        }
        let mut s = self.0.lock();
        let n = s.calls.len();
        match s.market_answers.pop_front() {
            Some(answer) => answer,
            None => Ok(report(
                Some(&format!("m{n}")),
                "closed",
                Some(order.amount),
                s.price,
            )),
        }
    }

    fn create_limit_order(&self, order: &LimitOrder<'_>) -> CoreResult<OrderAnswer> {
        let mut s = self.0.lock();
        s.calls.push(format!(
            "create_limit_order {} {} {} {} {}",
            order.symbol,
            order.side.as_str(),
            py_repr_float(order.amount),
            py_repr_float(order.price),
            py_repr_float(order.leverage)
        ));
        let n = s.calls.len();
        match s.limit_answers.pop_front() {
            Some(answer) => answer,
            None => Ok(report(Some(&format!("l{n}")), "open", Some(0.0), None)),
        }
    }

    fn wait_for_order_fill(
        &self,
        order_id: &OrderId,
        symbol: &str,
        wait: StatusWait,
    ) -> CoreResult<OrderAnswer> {
        let mut s = self.0.lock();
        // A check (after a cancel) is marked; the fill's wait keeps the plain line.
        let mark = if wait == StatusWait::Check {
            " check"
        } else {
            ""
        };
        s.calls.push(format!(
            "wait_for_order_fill {} {symbol}{mark}",
            order_id.text()
        ));
        match s.fill_answers.pop_front() {
            Some(answer) => answer,
            None => Ok(report(Some(order_id.text()), "closed", None, None)),
        }
    }

    fn cancel_order(&self, order_id: &OrderId, symbol: &str) -> CoreResult<bool> {
        let mut s = self.0.lock();
        s.calls
            .push(format!("cancel_order {} {symbol}", order_id.text()));
        s.cancel_answers.pop_front().unwrap_or(Ok(true))
    }

    fn get_market_limits(&self, symbol: &str) -> CoreResult<Option<MarketLimits>> {
        let mut s = self.0.lock();
        s.calls.push(format!("get_market_limits {symbol}"));
        Ok(s.limits.clone())
    }

    fn position_legs(&self) -> bool {
        self.0.lock().legs
    }

    fn sized_closes(&self) -> bool {
        self.0.lock().sized_closes
    }

    fn client_order_ids(&self) -> bool {
        self.0.lock().client_ids
    }

    fn get_order_by_client_id(
        &self,
        client_order_id: &str,
        symbol: &str,
    ) -> CoreResult<OrderLookup> {
        let mut s = self.0.lock();
        s.calls
            .push(format!("get_order_by_client_id {client_order_id} {symbol}"));
        s.lookup_answers
            .pop_front()
            .unwrap_or(Ok(OrderLookup::NotFound))
    }
}

/// A journal's row of an open sent for BTC (long 2 at 100, 5x, 10 % stop) under `reference`,
/// with `client_order_id`, as a killed process left it.
pub fn open_sent(reference: &str, client_order_id: Option<&str>) -> super::in_flight::SentOrder {
    super::in_flight::SentOrder {
        reference: reference.to_owned(),
        sent_at: Timestamp(1_735_689_000_000_000),
        intent: super::in_flight::SentIntent::open(&crate::book::OpenIntent {
            side: crate::key::Side::Long,
            amount: 2.0,
            leverage: 5.0,
            stop_loss_percentage: 0.1,
            price: 100.0,
            client_order_id: client_order_id.map(str::to_owned),
        }),
    }
}

/// Market orders and closes the fake was sent (opens, closes, scale orders).
/// The events of `kind` the manager has recorded so far, oldest first.
pub fn events_of(m: &Manager<u32>, kind: crate::events::EventKind) -> Vec<Event> {
    m.events()
        .all()
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

/// The kinds of `m`'s events, oldest first.
pub fn kinds(m: &Manager<u32>) -> Vec<crate::events::EventKind> {
    m.events().all().iter().map(|e| e.kind).collect()
}

/// The next `n` list reads answer `[]` (failed reads, as the bot's client reports them).
pub fn lie(fake: &Fake, n: usize) {
    let mut s = fake.0.lock();
    for _ in 0..n {
        s.scripted.push_back(Ok(vec![]));
    }
}

/// How many market orders (opens, scale-ins) `f` was sent.
pub fn market_orders(f: &Fake) -> usize {
    f.calls()
        .iter()
        .filter(|c| c.starts_with("create_market_order"))
        .count()
}

/// How many orders `f` was sent: market orders and closes.
pub fn orders_sent(f: &Fake) -> usize {
    f.calls()
        .iter()
        .filter(|c| c.starts_with("create_market_order") || c.starts_with("close_position"))
        .count()
}

/// An order report with the given fields (None = absent).
pub fn report(
    id: Option<&str>,
    status: &str,
    filled: Option<f64>,
    average: Option<f64>,
) -> OrderAnswer {
    OrderAnswer::Report(OrderReport {
        id: id.map(OrderId::from_text),
        status: Field::Text(status.into()),
        filled: filled.map_or(Field::Absent, Field::Number),
        average: average.map_or(Field::Absent, Field::Number),
    })
}

pub fn network_error() -> CoreError {
    CoreError::Exchange {
        kind: "NetworkError".into(),
        message: "timeout".into(),
    }
}

/// A fresh state file path in a directory of its own (removed first if a run left it).
pub fn temp_path(tag: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("pmrs-state-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d.join("state.json")
}

/// A manager over `fake` with no retry pauses and a manual clock at T0.
pub fn manager(fake: &Fake, config: ManagerConfig) -> Manager<u32> {
    let clock = Arc::new(ManualClock::new(Timestamp(1_735_689_600_000_000)));
    manager_with_clock(fake, config, clock)
}

/// A manager over `fake` reading time from `clock` (no retry pauses).
pub fn manager_with_clock(
    fake: &Fake,
    config: ManagerConfig,
    clock: Arc<dyn Clock>,
) -> Manager<u32> {
    let config = ManagerConfig {
        ticker_retry_delays: vec![0.0, 0.0],
        ..config
    };
    manager_as_configured(fake, config, clock)
}

/// A manager over `fake` with `config` exactly as given (retry pauses included).
pub fn manager_as_configured(
    fake: &Fake,
    config: ManagerConfig,
    clock: Arc<dyn Clock>,
) -> Manager<u32> {
    Manager::new(
        Arc::new(fake.clone()),
        config,
        clock,
        Arc::new(Counter(Mutex::new(0))),
    )
    .expect("valid config")
}

/// A clock whose two readings part as the system clock's do: its timer moves only by
/// [`WallClock::advance`]; its local time moves with it and also by [`WallClock::step`] (a DST
/// change, another `TZ`, a wall-clock step), which leaves the timer alone.
#[derive(Debug)]
pub struct WallClock {
    timer: ManualClock,
    offset_micros: std::sync::atomic::AtomicI64,
}

impl WallClock {
    /// A clock whose timer and local time both show `start`.
    pub fn new(start: Timestamp) -> Self {
        WallClock {
            timer: ManualClock::new(start),
            offset_micros: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// Real time passes: both readings move by `seconds`.
    pub fn advance(&self, seconds: f64) {
        self.timer.advance(seconds);
    }

    /// The local time alone jumps by `seconds` (+3600: a spring-forward; -3600: a fall-back).
    pub fn step(&self, seconds: f64) {
        let delta = (seconds * 1e6).round() as i64;
        self.offset_micros
            .fetch_add(delta, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for WallClock {
    fn now(&self) -> Timestamp {
        let offset = self.offset_micros.load(std::sync::atomic::Ordering::SeqCst);
        Timestamp(self.timer.now().0 + offset)
    }

    fn timer(&self) -> Timestamp {
        self.timer.now()
    }
}

/// A journal that keeps, in order, what the manager told it of orders.
#[derive(Default)]
pub struct OrdersJournal {
    /// What it was told, in order (`sent KEY KIND`, `settled KEY`).
    pub log: Mutex<Vec<String>>,
    /// The orders written, in order.
    pub sent: Mutex<Vec<(Key, SentOrder)>>,
    /// When set, every order row fails to be written (`failed KEY KIND`, `not sent KEY`).
    pub failing: std::sync::atomic::AtomicBool,
}

impl OrdersJournal {
    /// A copy of [`OrdersJournal::log`].
    pub fn log(&self) -> Vec<String> {
        self.log.lock().clone()
    }
}

impl crate::journal_hook::EventJournal for OrdersJournal {
    fn record(&self, _: &Event, _: &SharedPosition) {}
    fn checkpoint(&self) {}
    fn closes_settled(&self, _: &[Key]) {}
    fn holds_changed(&self) {}
    fn remembered(&self, _: &[Key]) {}
    fn order_sent(&self, key: &Key, order: &SentOrder) -> Result<(), String> {
        if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
            self.log
                .lock()
                .push(format!("failed {key} {}", order.intent.kind()));
            return Err("database is locked".to_owned());
        }
        self.log
            .lock()
            .push(format!("sent {key} {}", order.intent.kind()));
        self.sent.lock().push((key.clone(), order.clone()));
        Ok(())
    }
    fn order_not_sent(&self, key: &Key, _: &SentOrder) {
        self.log.lock().push(format!("not sent {key}"));
    }
    fn orders_settled(&self, keys: &[Key]) {
        for key in keys {
            self.log.lock().push(format!("settled {key}"));
        }
    }
}

/// A manager over `fake` with an [`OrdersJournal`].
pub fn journaled(fake: &Fake) -> (Manager<u32>, Arc<OrdersJournal>) {
    let m = manager(fake, ManagerConfig::default());
    let journal = Arc::new(OrdersJournal::default());
    m.set_journal(Some(journal.clone()));
    (m, journal)
}
