//! The adaptive per-position step against the scripted fake exchange: candles drive the trailing
//! stop and take profit; malformed or short candle lists take the simple path; and the fixes of
//! the advanced and smart exits (§6.6–6.11, 6.13), each in a scenario the original gets wrong.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::book::{share, SharedPosition};
use crate::clock::Timestamp;
use crate::error::CoreError;
use crate::events::EventKind;
use crate::exchange::{Field, Ohlcv, OrderAnswer, OrderReport, RawEntry, RawPosition};
use crate::exits::{should_exit_early, SmartExitInputs};
use crate::manager::exit_rules::{
    AdvancedExitRequest, AdvancedExitRule, OriginalExitSignal, SmartExitAnswer, SmartExitRule,
};
use crate::manager::testing::{events_of, manager, Fake};
use crate::manager::{Manager, ManagerConfig};
use crate::market::{validate_candles, MarketInputs};
use crate::position::{PositionState, TakeProfitInputs};

/// The manual clock's time in `testing::manager`.
const T0: Timestamp = Timestamp(1_735_689_600_000_000);

/// Hourly candles through `closes` (open = previous close, high/low = the wider of the two),
/// with `volume(i)` traded in candle `i`.
fn candles(closes: &[f64], volume: impl Fn(usize) -> f64) -> Ohlcv {
    let rows = closes
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let open = if i == 0 { c } else { closes[i - 1] };
            [
                1.7e12 + 3.6e6 * i as f64,
                open,
                open.max(c),
                open.min(c),
                c,
                volume(i),
            ]
        })
        .collect();
    Ohlcv {
        rows,
        problem: None,
        skipped: 0,
    }
}

/// 100 closes rising 0.5 % per candle from 100.
fn uptrend() -> Vec<f64> {
    (0..100).map(|i| 100.0 * 1.005_f64.powi(i)).collect()
}

/// Flat at 100, four strong gains to 120, then ten small losses to 117: momentum −2.5 % over
/// 10 candles, RSI about 87 (the 14 changes hold 20 of gains and 3 of losses).
fn spike_then_sag() -> Vec<f64> {
    let mut closes = vec![100.0; 86];
    closes.extend((1..=4).map(|i| 100.0 + 5.0 * i as f64));
    closes.extend((1..=10).map(|i| 120.0 - 0.3 * i as f64));
    closes
}

fn inputs_of(ohlcv: &Ohlcv) -> MarketInputs {
    let c = validate_candles(&ohlcv.rows).unwrap();
    MarketInputs::from_candles(&c).unwrap()
}

fn position(symbol: &str, side: &str, entry: f64, amount: f64, leverage: f64) -> SharedPosition {
    let stop = if side == "long" {
        entry * 0.9
    } else {
        entry * 1.1
    };
    share(PositionState::new(
        symbol, side, entry, amount, leverage, stop, None, T0,
    ))
}

/// A manager over a fake that lists `symbols` (longs), quotes `price` and closes on request.
fn setup(symbols: &[&str], price: f64) -> (Fake, Manager<u32>) {
    let fake = Fake::default();
    {
        let mut s = fake.0.lock();
        s.positions = symbols
            .iter()
            // Presence only (no size or side), like the original tests' entries, so the sizes
            // and sides the tests give their positions are not reconciled to the exchange's.
            .map(|sym| RawEntry::Position(Box::new(RawPosition::with_symbol(sym))))
            .collect();
        s.price = Some(price);
        s.close_ok = true;
    }
    let m = manager(&fake, ManagerConfig::default());
    (fake, m)
}

fn set_candles(fake: &Fake, symbol: &str, ohlcv: Ohlcv) {
    fake.0.lock().ohlcv.insert(symbol.to_owned(), ohlcv);
}

fn orders(fake: &Fake) -> Vec<String> {
    fake.calls()
        .into_iter()
        .filter(|c| c.starts_with("create_market_order"))
        .collect()
}

#[test]
fn candles_drive_the_trailing_stop_and_the_take_profit() {
    let (fake, m) = setup(&["BTC"], 101.0);
    let ohlcv = candles(&uptrend(), |_| 1000.0);
    let market = inputs_of(&ohlcv);
    assert!(market.momentum > 0.03, "{market:?}");
    set_candles(&fake, "BTC", ohlcv);
    let p = share(PositionState::new(
        "BTC",
        "long",
        100.0,
        1.0,
        1.0,
        95.0,
        Some(104.0),
        T0,
    ));
    let mut expected = p.lock().clone();
    m.book().insert("BTC", p.clone(), 1);

    assert!(m.update_all().unwrap().is_empty());

    expected
        .update_trailing_stop(101.0, 0.02, market.volatility, market.momentum)
        .unwrap();
    expected
        .update_take_profit(
            T0,
            101.0,
            &TakeProfitInputs {
                momentum: market.momentum,
                trend_strength: market.trend_strength,
                volatility: market.volatility,
                rsi: market.rsi,
                support_resistance: market.support_resistance.as_ref(),
            },
        )
        .unwrap();
    expected.should_close(101.0);
    let got = p.lock().clone();
    let key = |s: &PositionState| {
        (
            s.stop_loss,
            s.take_profit,
            s.highest_price,
            s.trailing_stop_activated,
            s.max_favorable_excursion,
            s.profit_velocity,
            s.last_pnl_time,
        )
    };
    assert_eq!(key(&got), key(&expected));
    // The simple path (default volatility and momentum) would have trailed differently.
    let mut simple = PositionState::new("BTC", "long", 100.0, 1.0, 1.0, 95.0, Some(104.0), T0);
    simple.update_trailing_stop(101.0, 0.02, 0.03, 0.0).unwrap();
    assert_ne!(got.stop_loss, simple.stop_loss);
    assert_ne!(
        got.take_profit,
        Some(104.0),
        "strong momentum extends the target"
    );
}

#[test]
fn malformed_or_short_candle_lists_take_the_simple_path() {
    let good = candles(&uptrend(), |_| 1000.0);
    let mut nan = good.clone();
    nan.rows[40][2] = f64::NAN;
    let mut inverted = good.clone();
    inverted.rows[7][2] = inverted.rows[7][3] * 0.5;
    let mut negative = good.clone();
    negative.rows[99][4] = -1.0;
    let short = Ohlcv {
        rows: good.rows[..49].to_vec(),
        problem: None,
        skipped: 0,
    };
    let unreadable = Ohlcv {
        rows: Vec::new(),
        problem: Some("candle #3 is not numbers".into()),
        skipped: 0,
    };
    for ohlcv in [nan, inverted, negative, short, unreadable] {
        let (fake, m) = setup(&["BTC"], 101.0);
        set_candles(&fake, "BTC", ohlcv);
        let p = position("BTC", "long", 100.0, 1.0, 1.0);
        m.book().insert("BTC", p.clone(), 1);
        assert!(m.update_all().unwrap().is_empty());
        let mut simple = position("BTC", "long", 100.0, 1.0, 1.0).lock().clone();
        simple.update_trailing_stop(101.0, 0.02, 0.03, 0.0).unwrap();
        assert_eq!(p.lock().stop_loss, simple.stop_loss);
        assert!(m.book().contains("BTC"));
    }
}

/// §6.6: the original reset the stop to entry × 1.005 every cycle once u ≥ 1.5 %, undoing a
/// tighter trailing stop.
#[test]
fn a_breakeven_stop_never_loosens_a_tighter_trailing_stop() {
    let (_fake, m) = setup(&["BTC"], 103.0);
    let p = position("BTC", "long", 100.0, 1.0, 10.0);
    m.book().insert("BTC", p.clone(), 1);
    assert!(m.update_all().unwrap().is_empty());
    let trailed = 103.0 * (1.0 - 0.02 * 0.8);
    assert_eq!(p.lock().stop_loss, trailed);
    assert!(trailed > 100.5, "the breakeven stop would loosen it");

    // Where it is tighter it applies (a short this time: entry × 0.995).
    let (_fake, m) = setup(&["ETH"], 98.0);
    let s = position("ETH", "short", 100.0, 1.0, 10.0);
    s.lock().lowest_price = Some(90.0); // no new low: the trailing stop stays at 110
    m.book().insert("ETH", s.clone(), 1);
    assert!(m.update_all().unwrap().is_empty());
    assert_eq!(s.lock().stop_loss, 100.0 * 0.995);
}

/// §6.7: a breakeven stop price of at most 1 was read as a fraction and sold.
#[test]
fn a_breakeven_stop_below_one_moves_the_stop_and_sells_nothing() {
    let (fake, m) = setup(&["DOGE"], 0.51);
    let p = position("DOGE", "long", 0.5, 1000.0, 10.0);
    m.book().insert("DOGE", p.clone(), 1);
    assert!(m.update_all().unwrap().is_empty());
    assert!(orders(&fake).is_empty(), "{:?}", fake.calls());
    assert_eq!(p.lock().amount, 1000.0);
    assert_eq!(p.lock().stop_loss, 0.5 * 1.005);
}

/// §6.8, §6.9: the original sold 25 % of the remainder every cycle while 2 % ≤ ROI (and u <
/// 1.5 %), and reported none of it.
#[test]
fn each_profit_target_is_taken_once_and_recorded_as_a_partial_close() {
    let (fake, m) = setup(&["BTC"], 100.3);
    let p = position("BTC", "long", 100.0, 4.0, 10.0);
    m.book().insert("BTC", p.clone(), 1);

    assert!(
        m.update_all().unwrap().is_empty(),
        "a partial exit is not handed over"
    );
    assert_eq!(
        orders(&fake),
        vec!["create_market_order BTC sell 1.0 10.0 reduce_only"]
    );
    assert_eq!(p.lock().amount, 3.0);
    assert_eq!(p.lock().partial_exits_taken, 0b001);
    let partials = events_of(&m, EventKind::PartialClose);
    assert_eq!(partials.len(), 1);
    assert_eq!(partials[0].reason, "First target reached (3.00%)");
    assert_eq!(partials[0].position.partial_exits_taken, 0b001);

    assert!(m.update_all().unwrap().is_empty());
    assert_eq!(
        orders(&fake).len(),
        1,
        "the first target is not taken again"
    );

    fake.0.lock().price = Some(100.45);
    assert!(m.update_all().unwrap().is_empty());
    assert_eq!(
        orders(&fake)[1],
        "create_market_order BTC sell 0.75 10.0 reduce_only"
    );
    assert_eq!(p.lock().partial_exits_taken, 0b011);
    assert!(m.book().contains("BTC"));
}

#[test]
fn a_failed_partial_exit_leaves_its_target_free() {
    let (fake, m) = setup(&["BTC"], 100.3);
    // A definitive refusal: final, nothing filled.
    let mut rejected = OrderReport::with_id("r1");
    rejected.status = Field::Text("rejected".into());
    rejected.filled = Field::Number(0.0);
    fake.0
        .lock()
        .market_answers
        .push_back(Ok(OrderAnswer::Report(rejected)));
    let p = position("BTC", "long", 100.0, 4.0, 10.0);
    m.book().insert("BTC", p.clone(), 1);
    assert!(m.update_all().unwrap().is_empty());
    assert_eq!(p.lock().partial_exits_taken, 0);
    assert_eq!(p.lock().amount, 4.0);
    // The next cycle tries again.
    assert!(m.update_all().unwrap().is_empty());
    assert_eq!(orders(&fake).len(), 2);
    assert_eq!(p.lock().partial_exits_taken, 1);
}

/// §6.10: the original's generator frame kept the previous position's indicators, so a
/// position without candles was judged on another symbol's momentum and RSI.
#[test]
fn indicators_do_not_leak_to_the_next_position() {
    let (fake, m) = setup(&["AAA", "BBB"], 117.0);
    let ohlcv = candles(&spike_then_sag(), |_| 1000.0);
    let market = inputs_of(&ohlcv);
    assert!(market.momentum < -0.02 && market.rsi > 70.0, "{market:?}");
    set_candles(&fake, "AAA", ohlcv);
    m.book()
        .insert("AAA", position("AAA", "long", 117.0, 1.0, 1.0), 1);
    m.book()
        .insert("BBB", position("BBB", "long", 117.0, 1.0, 1.0), 2);

    let closed = m.update_all().unwrap();
    let symbols: Vec<_> = closed.iter().map(|c| c.symbol.as_str()).collect();
    assert_eq!(symbols, vec!["AAA"], "momentum reversal closes AAA only");
    let close = m
        .events()
        .all()
        .into_iter()
        .find(|e| e.kind == EventKind::Closed)
        .unwrap();
    assert!(
        close.reason.starts_with("Momentum reversal (RSI: "),
        "{close:?}"
    );
    assert!(m.book().contains("BBB"));
}

/// Oscillating closes (100/106) ending on a slightly lower high with a thin last candle: wide
/// Bollinger bands, momentum just below 0, RSI near 50, volume ratio about 0.1.
fn choppy_thin_volume() -> Ohlcv {
    let mut closes: Vec<f64> = (0..100)
        .map(|i| if i % 2 == 1 { 106.0 } else { 100.0 })
        .collect();
    closes[99] = 105.5;
    candles(&closes, |i| if i == 99 { 100.0 } else { 1000.0 })
}

/// §6.11: the original always passed volume_ratio 1.0, so `low_volume` never scored. Here a
/// long at +8 % scores protect_large_profit + exceptional_profit + volatility_spike +
/// low_volume = 85 and exits; with the ratio at 1.0 it would score 70 (confidence 0.70, no exit).
#[test]
fn the_smart_exit_sees_the_real_volume_ratio() {
    let ohlcv = choppy_thin_volume();
    let market = inputs_of(&ohlcv);
    assert!(market.volume_ratio < 0.6, "{market:?}");
    assert!(market.volatility > 0.08 && market.momentum < 0.0 && market.momentum > -0.01);
    let entry = 105.5 / 1.08;
    let original = should_exit_early(&SmartExitInputs {
        volume_ratio: 1.0,
        ..market.smart_exit_inputs(0.08, 1.0, "long")
    });
    assert_eq!(original.score, 70.0);

    let (fake, m) = setup(&["BTC"], 105.5);
    set_candles(&fake, "BTC", ohlcv);
    m.book()
        .insert("BTC", position("BTC", "long", entry, 1.0, 1.0), 1);
    let closed = m.update_all().unwrap();
    assert_eq!(closed.len(), 1);
    let close = m
        .events()
        .all()
        .into_iter()
        .find(|e| e.kind == EventKind::Closed)
        .unwrap();
    assert_eq!(
        close.reason,
        "Smart exit: protect_large_profit, exceptional_profit, volatility_spike, low_volume (confidence: 0.85)"
    );
}

/// §6.13: the original scored a profitable short in a falling, overbought market as a
/// momentum reversal (score 110) and closed it.
#[test]
fn the_smart_exit_mirrors_its_conditions_for_a_short() {
    let ohlcv = candles(&spike_then_sag(), |_| 1000.0);
    let market = inputs_of(&ohlcv);
    let original = should_exit_early(&market.smart_exit_inputs(10.0 / 127.0, 1.0, "short"));
    assert!(
        original.should_exit && original.confidence > 0.7,
        "{original:?}"
    );

    let (fake, m) = setup(&["ETH"], 117.0);
    set_candles(&fake, "ETH", ohlcv);
    let s = position("ETH", "short", 127.0, 1.0, 1.0);
    m.book().insert("ETH", s.clone(), 1);
    assert!(m.update_all().unwrap().is_empty());
    assert!(m.book().contains("ETH"));
    assert!(s.lock().stop_loss < 127.0, "the short's stop trailed down");
}

struct Scripted {
    answer: Result<OriginalExitSignal, CoreError>,
    seen: Mutex<Vec<String>>,
}

impl AdvancedExitRule for Scripted {
    fn comprehensive_exit_signal(
        &self,
        r: &AdvancedExitRequest<'_>,
    ) -> Result<OriginalExitSignal, CoreError> {
        self.seen.lock().push(format!(
            "{} {} {} {}",
            r.symbol, r.side, r.position.current_pnl_pct, r.market.rsi
        ));
        self.answer.clone()
    }
}

struct Watcher {
    seen: Mutex<Vec<SmartExitInputs>>,
    answer: Result<SmartExitAnswer, CoreError>,
}

impl SmartExitRule for Watcher {
    fn should_exit_early(
        &self,
        _symbol: &str,
        inputs: &SmartExitInputs,
    ) -> Result<SmartExitAnswer, CoreError> {
        self.seen.lock().push(*inputs);
        self.answer.clone()
    }
}

fn hold_answer() -> SmartExitAnswer {
    SmartExitAnswer {
        should_exit: false,
        confidence: 0.0,
        score: 0.0,
        score_text: Some("0".into()),
        reason_text: "".into(),
    }
}

#[test]
fn supplied_rules_get_the_inputs_and_their_answers_are_read_defensively() {
    let signal = |exit: bool, reason: &str, action: Option<f64>| {
        Ok(OriginalExitSignal {
            should_exit: exit,
            reason: reason.into(),
            action,
        })
    };
    // An error holds; the smart rule and should_close still run.
    let (fake, m) = setup(&["BTC"], 100.3);
    set_candles(&fake, "BTC", choppy_thin_volume());
    let advanced = Arc::new(Scripted {
        answer: Err(CoreError::Value("RuntimeError: boom".into())),
        seen: Mutex::new(Vec::new()),
    });
    let smart = Arc::new(Watcher {
        seen: Mutex::new(Vec::new()),
        answer: Ok(hold_answer()),
    });
    assert!(m
        .exit_rules()
        .set_advanced(Some(advanced.clone()))
        .is_none());
    assert!(m.exit_rules().set_smart(Some(smart.clone())).is_none());
    let p = position("BTC", "long", 100.0, 4.0, 10.0);
    m.book().insert("BTC", p.clone(), 1);
    assert!(m.update_all().unwrap().is_empty());
    assert_eq!(advanced.seen.lock().len(), 1);
    assert!(advanced.seen.lock()[0].starts_with("BTC long 0.0299999"));
    let seen = smart.seen.lock()[0];
    assert!(seen.volume_ratio < 0.6, "the real ratio: {seen:?}");
    assert!(orders(&fake).is_empty());

    // A breakeven answer below 1 moves the stop; a fraction sells; an exit closes.
    let (fake, m) = setup(&["BTC"], 100.3);
    let p = position("BTC", "long", 100.0, 4.0, 10.0);
    m.book().insert("BTC", p.clone(), 1);
    m.exit_rules().set_advanced(Some(Arc::new(Scripted {
        answer: signal(false, "Breakeven+ stop update", Some(99.9)),
        seen: Mutex::new(Vec::new()),
    })));
    assert!(m.update_all().unwrap().is_empty());
    assert_eq!(p.lock().stop_loss, 99.9);
    m.exit_rules().set_advanced(Some(Arc::new(Scripted {
        answer: signal(false, "Second target reached (3.00%)", Some(0.5)),
        seen: Mutex::new(Vec::new()),
    })));
    assert!(m.update_all().unwrap().is_empty());
    assert_eq!(p.lock().amount, 2.0);
    assert_eq!(p.lock().partial_exits_taken, 0b010);
    assert!(
        m.update_all().unwrap().is_empty(),
        "the second target is taken once"
    );
    assert_eq!(orders(&fake).len(), 1);
    m.exit_rules().set_advanced(Some(Arc::new(Scripted {
        answer: signal(true, "my reason", Some(1.0)),
        seen: Mutex::new(Vec::new()),
    })));
    let closed = m.update_all().unwrap();
    assert_eq!(closed.len(), 1);
    assert!(!m.book().contains("BTC"));

    // Back to the built-in rules.
    assert!(m.exit_rules().set_advanced(None).is_some());
    assert!(m.exit_rules().advanced().is_none());
}

#[test]
fn a_smart_rule_error_holds_and_a_confident_answer_closes() {
    let (_fake, m) = setup(&["BTC"], 100.1);
    m.exit_rules().set_smart(Some(Arc::new(Watcher {
        seen: Mutex::new(Vec::new()),
        answer: Err(CoreError::Value("KeyError: 'should_exit'".into())),
    })));
    m.book()
        .insert("BTC", position("BTC", "long", 100.0, 1.0, 1.0), 1);
    assert!(m.update_all().unwrap().is_empty());
    assert!(m.book().contains("BTC"));
    m.exit_rules().set_smart(Some(Arc::new(Watcher {
        seen: Mutex::new(Vec::new()),
        answer: Ok(SmartExitAnswer {
            should_exit: true,
            confidence: 0.8,
            score: 80.0,
            score_text: Some("80".into()),
            reason_text: "mine".into(),
        }),
    })));
    let closed = m.update_all().unwrap();
    assert_eq!(closed.len(), 1);
    let close = m
        .events()
        .all()
        .into_iter()
        .find(|e| e.kind == EventKind::Closed)
        .unwrap();
    assert_eq!(close.reason, "Smart exit: mine (confidence: 0.80)");
}
