//! Criterion benchmarks of the adaptive engine (`cargo bench -p position-manager-core`):
//!
//! - `indicators/latest_100`: the latest indicator set of 100 hourly candles;
//! - `indicators/market_inputs_100`: validation, indicators, support/resistance and trend
//!   strength, i.e. everything the update cycle derives from one position's candles;
//! - `decision/one_position`: one position's full adaptive decision on its state (market
//!   inputs, adaptive trailing stop, dynamic take profit, advanced exit, smart exit,
//!   `should_close`);
//! - `cycle/positions/N`: a whole update cycle of the manager over an in-memory exchange (no
//!   Python), per cycle for N positions.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use position_manager_core::book::{share, SharedPosition};
use position_manager_core::clock::{ManualClock, Timestamp};
use position_manager_core::error::CoreResult;
use position_manager_core::exchange::{
    Exchange, Field, LimitOrder, MarketLimits, MarketOrder, Ohlcv, OrderAnswer, OrderId, RawEntry,
    RawPosition, StatusWait, TickerAnswer,
};
use position_manager_core::exits::{
    comprehensive_exit_signal, should_exit_early_for_side, PositionData,
};
use position_manager_core::manager::{HandleFactory, Manager, ManagerConfig};
use position_manager_core::market::{latest_indicators, validate_candles, MarketInputs};
use position_manager_core::position::{PositionState, TakeProfitInputs};

const T0: Timestamp = Timestamp(1_735_689_600_000_000);

/// 100 hourly candles of a deterministic wavy random-looking walk around 100.
fn rows() -> Vec<[f64; 6]> {
    let mut close: f64 = 100.0;
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    (0..100)
        .map(|i| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let step = (seed % 2001) as f64 / 1000.0 - 1.0; // -1 .. 1
            let open = close;
            close = (close * (1.0 + step * 0.01)).max(1.0);
            let high = open.max(close) * 1.002;
            let low = open.min(close) * 0.998;
            let volume = 1000.0 + (seed % 500) as f64;
            [1.7e12 + 3.6e6 * i as f64, open, high, low, close, volume]
        })
        .collect()
}

fn position() -> PositionState {
    PositionState::new(
        "BTC/USDT:USDT",
        "long",
        100.0,
        1.0,
        10.0,
        95.0,
        Some(115.0),
        T0,
    )
}

fn bench_indicators(c: &mut Criterion) {
    let rows = rows();
    let candles = validate_candles(&rows).unwrap();
    let mut g = c.benchmark_group("indicators");
    g.bench_function("latest_100", |b| {
        b.iter(|| latest_indicators(black_box(&candles)))
    });
    g.bench_function("market_inputs_100", |b| {
        b.iter(|| {
            let candles = validate_candles(black_box(&rows)).unwrap();
            MarketInputs::from_candles(&candles)
        })
    });
    g.finish();
}

/// One position's adaptive decision, as the update cycle makes it (without exchange calls).
fn decide(state: &mut PositionState, rows: &[[f64; 6]], price: f64, now: Timestamp) -> bool {
    let candles = validate_candles(rows).unwrap();
    let market = MarketInputs::from_candles(&candles).unwrap();
    state
        .update_trailing_stop(price, 0.02, market.volatility, market.momentum)
        .unwrap();
    let tp = TakeProfitInputs {
        momentum: market.momentum,
        trend_strength: market.trend_strength,
        volatility: market.volatility,
        rsi: market.rsi,
        support_resistance: market.support_resistance.as_ref(),
    };
    state.update_take_profit(now, price, &tp).unwrap();
    let data = PositionData {
        side_is_long: state.is_long(),
        entry_price: state.entry_price,
        current_price: price,
        current_pnl_pct: state.leveraged_pnl(price, false),
        peak_pnl_pct: state.max_favorable_excursion,
        leverage: state.leverage,
        entry_age_seconds: now.seconds_since(state.entry_time),
        stop_loss: state.stop_loss,
        take_profit: state.take_profit,
        ..PositionData::default()
    };
    let decision = comprehensive_exit_signal(&data, &market.market_data()).unwrap();
    let smart = should_exit_early_for_side(
        &market.smart_exit_inputs(data.current_pnl_pct, 60.0, &state.side),
        state.is_long(),
    );
    let check = state.should_close(price);
    black_box((decision, smart));
    check.close
}

fn bench_decision(c: &mut Criterion) {
    let rows = rows();
    let price = rows[99][4];
    let mut g = c.benchmark_group("decision");
    g.bench_function("one_position", |b| {
        b.iter_batched_ref(
            position,
            |state| decide(state, black_box(&rows), price, T0.plus_seconds(3600.0)),
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// An exchange answering from prebuilt values; nothing ever closes.
struct Prebuilt {
    positions: Vec<RawEntry>,
    price: f64,
    ohlcv: Ohlcv,
}

impl Exchange for Prebuilt {
    fn get_open_positions(&self) -> CoreResult<Vec<RawEntry>> {
        Ok(self.positions.clone())
    }
    fn get_ticker(&self, _symbol: &str) -> CoreResult<TickerAnswer> {
        Ok(TickerAnswer::Ticker {
            last: Field::Number(self.price),
        })
    }
    fn get_ohlcv(&self, _symbol: &str, _timeframe: &str, _limit: u32) -> CoreResult<Ohlcv> {
        Ok(self.ohlcv.clone())
    }
    fn close_position(
        &self,
        _symbol: &str,
        _client_order_id: Option<&str>,
        _side: Option<position_manager_core::key::Side>,
        _contracts: Option<f64>,
    ) -> CoreResult<bool> {
        Ok(false)
    }
    fn create_market_order(&self, _order: &MarketOrder<'_>) -> CoreResult<OrderAnswer> {
        Ok(OrderAnswer::Missing)
    }
    fn create_limit_order(&self, _order: &LimitOrder<'_>) -> CoreResult<OrderAnswer> {
        Ok(OrderAnswer::Missing)
    }
    fn wait_for_order_fill(
        &self,
        _id: &OrderId,
        _symbol: &str,
        _wait: StatusWait,
    ) -> CoreResult<OrderAnswer> {
        Ok(OrderAnswer::Missing)
    }
    fn cancel_order(&self, _id: &OrderId, _symbol: &str) -> CoreResult<bool> {
        Ok(false)
    }
    fn get_market_limits(&self, _symbol: &str) -> CoreResult<Option<MarketLimits>> {
        Ok(None)
    }
}

struct Numbers;

impl HandleFactory<u32> for Numbers {
    fn make(&self, _position: &SharedPosition) -> CoreResult<u32> {
        Ok(0)
    }
}

fn bench_cycle(c: &mut Criterion) {
    let rows = rows();
    let price = rows[99][4];
    let mut g = c.benchmark_group("cycle");
    for n in [1_usize, 10, 100] {
        let symbols: Vec<String> = (0..n).map(|i| format!("S{i}/USDT:USDT")).collect();
        let positions = symbols
            .iter()
            .map(|s| {
                let mut raw = RawPosition::with_symbol(s);
                raw.side = Field::Text("long".into());
                raw.contracts = Field::Number(1.0);
                RawEntry::Position(Box::new(raw))
            })
            .collect();
        let exchange = Prebuilt {
            positions,
            price,
            ohlcv: Ohlcv {
                rows: rows.clone(),
                problem: None,
                skipped: 0,
            },
        };
        let manager = Manager::new(
            Arc::new(exchange),
            ManagerConfig::default(),
            Arc::new(ManualClock::new(T0)),
            Arc::new(Numbers),
        )
        .unwrap();
        for (i, s) in symbols.iter().enumerate() {
            // Stop and target far away, leverage 1: nothing exits, every position is examined.
            let state = PositionState::new(
                s.as_str(),
                "long",
                price,
                1.0,
                1.0,
                price * 0.5,
                Some(price * 2.0),
                T0,
            );
            manager.book().insert(s, share(state), i as u32);
        }
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("positions", n), &manager, |b, m| {
            b.iter(|| {
                let closed = m.update_all();
                assert!(closed.expect("no interruption").is_empty());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_indicators, bench_decision, bench_cycle);
criterion_main!(benches);
