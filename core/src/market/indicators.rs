//! The latest row of the original's `Indicators.calculate_all` as `get_latest_indicators` reads it
//! (spec §3.1), computed for the last row(s) only, in O(n) passes without building the frame.
//! Rolling statistics replay pandas' online kernels over the series (the `Kernel`s below), which
//! is as cheap as summing the last window and reproduces pandas to the last bit.
//!
//! Definitions (all on closes unless stated; pandas semantics):
//! - `sma_20`, `sma_50`: rolling means; `bb_mid` = `sma_20`, `bb_high/low = mid ± std·2` with the
//!   sample standard deviation (ddof 1) of the last 20 closes, `bb_width = (high − low) / mid`
//!   (mid 0 or ±inf → NaN → 0.03);
//! - `ema_12`, `ema_26`, `macd` and its 9-span signal: `ewm(span, adjust=False)`;
//! - `rsi`: simple (Cutler) RSI over 14 close-to-close changes; NaN → 50. **Deliberate
//!   deviation** (DESIGN §6.16): a window with gains and no losses gives 100, where the original
//!   gives 50;
//! - `stoch_k/d`: `ta`'s `StochasticOscillator(14, 3)`, NaN → 50; `atr`: `ta`'s
//!   `AverageTrueRange(14)` (mean of the first 14 true ranges, then Wilder's recursion);
//! - `volume_ratio = volume / mean(last 20 volumes)` (mean 0 → 1.0); `momentum` =
//!   `pct_change(10)`, `roc = 100·momentum`; `vwap` = Σ(typical·volume) / Σ volume over the last
//!   50 candles (0/0 → NaN, kept).

use super::{np_sum, Candle};

/// Fewer candles than this give no indicators (the original returns an empty frame).
pub const MIN_CANDLES: usize = 50;

/// The 21 values of `get_latest_indicators`; NaN where the original yields NaN.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatestIndicators {
    /// Close of the last candle (not the live ticker price).
    pub close: f64,
    /// Mean of the last 20 closes.
    pub sma_20: f64,
    /// Mean of the last 50 closes.
    pub sma_50: f64,
    /// 12-span EMA of closes.
    pub ema_12: f64,
    /// 26-span EMA of closes.
    pub ema_26: f64,
    /// `ema_12 − ema_26`.
    pub macd: f64,
    /// 9-span EMA of `macd`.
    pub macd_signal: f64,
    /// `macd − macd_signal`.
    pub macd_diff: f64,
    /// RSI of the last candle (0..100).
    pub rsi: f64,
    /// RSI of the second-to-last candle.
    pub rsi_prev: f64,
    /// Stochastic %K (14).
    pub stoch_k: f64,
    /// Stochastic %D (3-mean of %K).
    pub stoch_d: f64,
    /// Upper Bollinger band (mid + 2 std).
    pub bb_high: f64,
    /// Middle Bollinger band (20-mean).
    pub bb_mid: f64,
    /// Lower Bollinger band (mid − 2 std).
    pub bb_low: f64,
    /// `(bb_high − bb_low) / bb_mid`; the manager's "volatility".
    pub bb_width: f64,
    /// Average true range (14).
    pub atr: f64,
    /// Last volume over the 20-mean of volumes.
    pub volume_ratio: f64,
    /// `close / close 10 candles earlier − 1`.
    pub momentum: f64,
    /// `100 · momentum`.
    pub roc: f64,
    /// Volume-weighted typical price over the last 50 candles.
    pub vwap: f64,
}

impl LatestIndicators {
    /// The keys of the original's dict, in its order.
    pub const KEYS: [&'static str; 21] = [
        "close",
        "sma_20",
        "sma_50",
        "ema_12",
        "ema_26",
        "macd",
        "macd_signal",
        "macd_diff",
        "rsi",
        "rsi_prev",
        "stoch_k",
        "stoch_d",
        "bb_high",
        "bb_mid",
        "bb_low",
        "bb_width",
        "atr",
        "volume_ratio",
        "momentum",
        "roc",
        "vwap",
    ];

    /// `(key, value)` pairs in the original dict's order (for building that dict).
    pub fn to_pairs(&self) -> [(&'static str, f64); 21] {
        let v = [
            self.close,
            self.sma_20,
            self.sma_50,
            self.ema_12,
            self.ema_26,
            self.macd,
            self.macd_signal,
            self.macd_diff,
            self.rsi,
            self.rsi_prev,
            self.stoch_k,
            self.stoch_d,
            self.bb_high,
            self.bb_mid,
            self.bb_low,
            self.bb_width,
            self.atr,
            self.volume_ratio,
            self.momentum,
            self.roc,
            self.vwap,
        ];
        std::array::from_fn(|i| (Self::KEYS[i], v[i]))
    }
}

/// The indicators the update cycle reads (spec §2.6 step 7), a subset of [`LatestIndicators`]
/// computed by the same code, so the values are identical to those of [`latest_indicators`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CycleIndicators {
    /// Close of the last candle.
    pub close: f64,
    /// Mean of the last 20 closes.
    pub sma_20: f64,
    /// Mean of the last 50 closes.
    pub sma_50: f64,
    /// RSI of the last candle.
    pub rsi: f64,
    /// Bollinger width (the manager's "volatility").
    pub bb_width: f64,
    /// Last volume over the 20-mean of volumes.
    pub volume_ratio: f64,
    /// `close / close 10 candles earlier − 1`.
    pub momentum: f64,
}

/// Bollinger bands from the rolling 20-sum and 20-variance of closes: `(bb_mid, bb_high,
/// bb_low, bb_width)` (bb_mid is sma_20).
fn bollinger_from(sum20: &SumKernel, var20: &VarKernel) -> (f64, f64, f64, f64) {
    let bb_mid = sum20.mean(20);
    let bb_std = zsqrt(var20.var(20.0));
    let bb_high = bb_mid + bb_std * 2.0;
    let bb_low = bb_mid - bb_std * 2.0;
    let width = if bb_mid == 0.0 {
        f64::NAN
    } else {
        (bb_high - bb_low) / bb_mid
    };
    let bb_width = if width.is_finite() { width } else { 0.03 };
    (bb_mid, bb_high, bb_low, bb_width)
}

/// `volume / volume_sma` at the last candle from the rolling 20-sum of volumes (sma 0 or NaN
/// → 1.0).
fn volume_ratio_from(last_volume: f64, volume20: &SumKernel) -> f64 {
    let volume_sma = volume20.mean(1);
    if volume_sma == 0.0 {
        1.0
    } else {
        nan_to(last_volume / volume_sma, 1.0)
    }
}

/// `pct_change(10)` at the last candle.
fn momentum(candles: &[Candle]) -> f64 {
    let last = candles.len() - 1;
    candles[last].close / candles[last - 10].close - 1.0
}

/// The indicators the update cycle reads; `None` below [`MIN_CANDLES`] candles.
///
/// One pass over the candles feeds the six rolling kernels it needs side by side (each sees
/// exactly the adds and removes [`latest_indicators`] gives it, so the values are identical),
/// which lets the CPU overlap their dependency chains; no EMAs, stochastic, ATR or VWAP.
pub fn cycle_indicators(candles: &[Candle]) -> Option<CycleIndicators> {
    let n = candles.len();
    if n < MIN_CANDLES {
        return None;
    }
    let close = |i: usize| candles[i].close;
    let volume = |i: usize| candles[i].volume;
    let gain = |i: usize| rsi_gain(candles, i);
    let loss = |i: usize| rsi_loss(candles, i);
    let mut sum20 = SumKernel::start(close(0));
    let mut var20 = VarKernel::start(close(0));
    let mut sum50 = SumKernel::start(close(0));
    let mut gain14 = SumKernel::start(gain(0));
    let mut loss14 = SumKernel::start(loss(0));
    let mut volume20 = SumKernel::start(volume(0));
    for i in 0..n {
        if i >= 14 {
            gain14.remove(gain(i - 14));
            loss14.remove(loss(i - 14));
        }
        if i >= 20 {
            sum20.remove(close(i - 20));
            var20.remove(close(i - 20));
            volume20.remove(volume(i - 20));
        }
        if i >= 50 {
            sum50.remove(close(i - 50));
        }
        gain14.add(gain(i));
        loss14.add(loss(i));
        sum20.add(close(i));
        var20.add(close(i));
        volume20.add(volume(i));
        sum50.add(close(i));
    }
    let (sma_20, _, _, bb_width) = bollinger_from(&sum20, &var20);
    Some(CycleIndicators {
        close: close(n - 1),
        sma_20,
        sma_50: sum50.mean(50),
        rsi: rsi_from(&gain14, &loss14),
        bb_width,
        volume_ratio: volume_ratio_from(volume(n - 1), &volume20),
        momentum: momentum(candles),
    })
}

/// The latest indicators of `candles` (oldest first); `None` below [`MIN_CANDLES`] candles.
pub fn latest_indicators(candles: &[Candle]) -> Option<LatestIndicators> {
    let n = candles.len();
    if n < MIN_CANDLES {
        return None;
    }
    let close = |i: usize| candles[i].close;
    let volume = |i: usize| candles[i].volume;
    let last = n - 1;

    let (ema_12, ema_26, macd, macd_signal) = ema_and_macd(candles);
    let (bb_mid, bb_high, bb_low, bb_width) = bollinger_from(
        &roll::<SumKernel>(n, 20, close).1,
        &roll::<VarKernel>(n, 20, close).1,
    );
    let (rsi_prev, rsi) = rsi_last_two(candles);
    let (stoch_k, stoch_d) = stochastic(candles);
    let volume_ratio = volume_ratio_from(volume(last), &roll::<SumKernel>(n, 20, volume).1);
    let momentum = momentum(candles);

    // Typical price as pandas evaluates it: ((high + low) + close) / 3, times the volume.
    let tp_volume = |i: usize| {
        let c = &candles[i];
        (c.high + c.low + c.close) / 3.0 * c.volume
    };
    let vwap =
        roll::<SumKernel>(n, 50, tp_volume).1.sum(1) / roll::<SumKernel>(n, 50, volume).1.sum(1);

    Some(LatestIndicators {
        close: close(last),
        sma_20: bb_mid,
        sma_50: roll::<SumKernel>(n, 50, close).1.mean(50),
        ema_12,
        ema_26,
        macd,
        macd_signal,
        macd_diff: macd - macd_signal,
        rsi,
        rsi_prev,
        stoch_k,
        stoch_d,
        bb_high,
        bb_mid,
        bb_low,
        bb_width,
        atr: average_true_range(candles),
        volume_ratio,
        momentum,
        roc: momentum * 100.0,
        vwap,
    })
}

/// pandas' `zsqrt`: the square root, 0 for a (rounding-)negative variance.
fn zsqrt(x: f64) -> f64 {
    if x < 0.0 {
        0.0
    } else {
        x.sqrt()
    }
}

fn nan_to(x: f64, fill: f64) -> f64 {
    if x.is_nan() {
        fill
    } else {
        x
    }
}

/// A pandas rolling-window kernel (pandas/_libs/window/aggregations.pyx), fed value by value.
trait Kernel: Copy {
    /// The kernel after pandas' set-up for a series starting with `first`.
    fn start(first: f64) -> Self;
    /// A value enters the window (NaN is skipped).
    fn add(&mut self, val: f64);
    /// A value leaves the window (NaN is skipped).
    fn remove(&mut self, val: f64);
}

/// Runs `K` over rows `0..n` of `value(i)` with a fixed `window` as pandas does (per row: remove
/// the value leaving the window, then add the new one) and returns the kernel states after the
/// second-to-last and the last row. Emulating the online algorithm, rather than summing each
/// window afresh, reproduces pandas' results bit for bit.
fn roll<K: Kernel>(n: usize, window: usize, value: impl Fn(usize) -> f64) -> (K, K) {
    let mut k = K::start(value(0));
    let mut before_last = k;
    for i in 0..n {
        if i >= window {
            k.remove(value(i - window));
        }
        k.add(value(i));
        if i + 2 == n {
            before_last = k;
        }
    }
    (before_last, k)
}

/// `roll_sum` / `roll_mean`: Kahan-compensated running sum (separate compensations for adds and
/// removes), sign count, and the run of identical values that makes a flat window exact.
#[derive(Clone, Copy)]
struct SumKernel {
    nobs: i64,
    sum: f64,
    comp_add: f64,
    comp_remove: f64,
    neg_ct: i64,
    same: i64,
    prev: f64,
}

impl Kernel for SumKernel {
    fn start(first: f64) -> Self {
        SumKernel {
            nobs: 0,
            sum: 0.0,
            comp_add: 0.0,
            comp_remove: 0.0,
            neg_ct: 0,
            same: 0,
            prev: first,
        }
    }

    fn add(&mut self, val: f64) {
        if val.is_nan() {
            return;
        }
        self.nobs += 1;
        let y = val - self.comp_add;
        let t = self.sum + y;
        self.comp_add = t - self.sum - y;
        self.sum = t;
        if val.is_sign_negative() {
            self.neg_ct += 1;
        }
        self.same = if val == self.prev { self.same + 1 } else { 1 };
        self.prev = val;
    }

    fn remove(&mut self, val: f64) {
        if val.is_nan() {
            return;
        }
        self.nobs -= 1;
        let y = -val - self.comp_remove;
        let t = self.sum + y;
        self.comp_remove = t - self.sum - y;
        self.sum = t;
        if val.is_sign_negative() {
            self.neg_ct -= 1;
        }
    }
}

impl SumKernel {
    /// `calc_mean`: a flat window gives exactly its value; a mean that rounding pushed across
    /// zero is clamped to 0.
    fn mean(&self, min_periods: i64) -> f64 {
        if self.nobs < min_periods || self.nobs == 0 {
            return f64::NAN;
        }
        let mean = self.sum / self.nobs as f64;
        if self.same >= self.nobs {
            self.prev
        } else if (self.neg_ct == 0 && mean < 0.0) || (self.neg_ct == self.nobs && mean > 0.0) {
            0.0
        } else {
            mean
        }
    }

    /// `calc_sum`: a flat window gives exactly `value × count`.
    fn sum(&self, min_periods: i64) -> f64 {
        if self.nobs == 0 && min_periods == 0 {
            0.0
        } else if self.nobs >= min_periods {
            if self.same >= self.nobs {
                self.prev * self.nobs as f64
            } else {
                self.sum
            }
        } else {
            f64::NAN
        }
    }
}

/// `roll_var`: Welford's online variance with Kahan-compensated mean updates.
#[derive(Clone, Copy)]
struct VarKernel {
    nobs: f64,
    mean: f64,
    ssqdm: f64,
    comp_add: f64,
    comp_remove: f64,
    same: i64,
    prev: f64,
}

impl Kernel for VarKernel {
    fn start(first: f64) -> Self {
        VarKernel {
            nobs: 0.0,
            mean: 0.0,
            ssqdm: 0.0,
            comp_add: 0.0,
            comp_remove: 0.0,
            same: 0,
            prev: first,
        }
    }

    fn add(&mut self, val: f64) {
        if val.is_nan() {
            return;
        }
        self.nobs += 1.0;
        self.same = if val == self.prev { self.same + 1 } else { 1 };
        self.prev = val;
        let prev_mean = self.mean - self.comp_add;
        let y = val - self.comp_add;
        let t = y - self.mean;
        self.comp_add = t + self.mean - y;
        self.mean = if self.nobs != 0.0 {
            self.mean + t / self.nobs
        } else {
            0.0
        };
        self.ssqdm += (val - prev_mean) * (val - self.mean);
    }

    fn remove(&mut self, val: f64) {
        if val.is_nan() {
            return;
        }
        self.nobs -= 1.0;
        if self.nobs != 0.0 {
            let prev_mean = self.mean - self.comp_remove;
            let y = val - self.comp_remove;
            let t = y - self.mean;
            self.comp_remove = t + self.mean - y;
            self.mean -= t / self.nobs;
            self.ssqdm -= (val - prev_mean) * (val - self.mean);
        } else {
            self.mean = 0.0;
            self.ssqdm = 0.0;
        }
    }
}

impl VarKernel {
    /// `calc_var` with ddof 1: exactly 0 for a flat window.
    fn var(&self, min_periods: f64) -> f64 {
        if self.nobs >= min_periods && self.nobs > 1.0 {
            if self.same as f64 >= self.nobs {
                0.0
            } else {
                self.ssqdm / (self.nobs - 1.0)
            }
        } else {
            f64::NAN
        }
    }
}

/// `ewm(span, adjust=False)` weights as pandas derives them: `alpha = 1 / (1 + (span − 1) / 2)`.
fn ewm_alpha(span: f64) -> f64 {
    1.0 / (1.0 + (span - 1.0) / 2.0)
}

/// One step of pandas' `ewm(adjust=False)` recursion, in pandas' own operation order.
fn ewm_step(prev: f64, x: f64, alpha: f64) -> f64 {
    if prev == x {
        return prev;
    }
    let old_wt = 1.0 - alpha;
    (old_wt * prev + alpha * x) / (old_wt + alpha)
}

/// Final `(ema_12, ema_26, macd, macd_signal)` in one pass.
fn ema_and_macd(candles: &[Candle]) -> (f64, f64, f64, f64) {
    let (a12, a26, a9) = (ewm_alpha(12.0), ewm_alpha(26.0), ewm_alpha(9.0));
    let (mut e12, mut e26) = (candles[0].close, candles[0].close);
    let mut signal = e12 - e26;
    for c in &candles[1..] {
        e12 = ewm_step(e12, c.close, a12);
        e26 = ewm_step(e26, c.close, a26);
        signal = ewm_step(signal, e12 - e26, a9);
    }
    (e12, e26, e12 - e26, signal)
}

/// The change of close `i` (NaN for the first candle).
fn delta(candles: &[Candle], i: usize) -> f64 {
    if i == 0 {
        f64::NAN
    } else {
        candles[i].close - candles[i - 1].close
    }
}

/// The RSI gain of change `i`: the change where positive, else 0 (the leading NaN becomes 0).
fn rsi_gain(candles: &[Candle], i: usize) -> f64 {
    let d = delta(candles, i);
    if d > 0.0 {
        d
    } else {
        0.0
    }
}

/// The RSI loss of change `i`: `-(change where negative, else 0)`, so -0.0 for no loss (as
/// pandas' `-(delta.where(delta < 0, 0))`; the sign matters to the rolling kernel).
fn rsi_loss(candles: &[Candle], i: usize) -> f64 {
    let d = delta(candles, i);
    -(if d < 0.0 { d } else { 0.0 })
}

/// RSI from the rolling 14-sums of gains and losses.
fn rsi_from(gain: &SumKernel, loss: &SumKernel) -> f64 {
    rsi_value(gain.mean(14), loss.mean(14))
}

/// RSI of the second-to-last and the last candle: rolling 14-means of gains and losses.
fn rsi_last_two(candles: &[Candle]) -> (f64, f64) {
    let n = candles.len();
    let (gain_prev, gain_last) = roll::<SumKernel>(n, 14, |i| rsi_gain(candles, i));
    let (loss_prev, loss_last) = roll::<SumKernel>(n, 14, |i| rsi_loss(candles, i));
    (
        rsi_from(&gain_prev, &loss_prev),
        rsi_from(&gain_last, &loss_last),
    )
}

/// `100 − 100 / (1 + gain / loss)`, NaN → 50.
fn rsi_value(gain: f64, loss: f64) -> f64 {
    if loss == 0.0 {
        // 0/0 (no change at all) stays the original's neutral 50; gains without a single loss
        // are RSI 100 (DESIGN §6.16; the original reports 50 here).
        return if gain > 0.0 { 100.0 } else { 50.0 };
    }
    nan_to(100.0 - 100.0 / (1.0 + gain / loss), 50.0)
}

/// `ta.momentum.StochasticOscillator(high, low, close)` (window 14, smooth 3) at the last row:
/// `(stoch_k, stoch_d)`, NaN → 50.
fn stochastic(candles: &[Candle]) -> (f64, f64) {
    const W: usize = 14;
    let n = candles.len();
    // %K needs a full 14-candle window (min_periods = 14).
    let raw_k = |t: usize| {
        if t + 1 < W {
            return f64::NAN;
        }
        let w = &candles[t + 1 - W..=t];
        let lo = w.iter().map(|c| c.low).fold(f64::INFINITY, f64::min);
        let hi = w.iter().map(|c| c.high).fold(f64::NEG_INFINITY, f64::max);
        100.0 * (candles[t].close - lo) / (hi - lo)
    };
    let d = roll::<SumKernel>(n, 3, raw_k).1.mean(3);
    (nan_to(raw_k(n - 1), 50.0), nan_to(d, 50.0))
}

/// `ta.volatility.AverageTrueRange(high, low, close)` (window 14) at the last row.
fn average_true_range(candles: &[Candle]) -> f64 {
    const W: usize = 14;
    let tr = |i: usize| {
        let c = &candles[i];
        let tr1 = c.high - c.low;
        if i == 0 {
            // No previous close: pandas' row-wise max skips the NaN terms.
            return tr1;
        }
        let prev = candles[i - 1].close;
        let (tr2, tr3) = ((c.high - prev).abs(), (c.low - prev).abs());
        tr1.max(tr2).max(tr3)
    };
    let first: Vec<f64> = (0..W).map(tr).collect();
    let mut atr = np_sum(&first) / W as f64;
    for i in W..candles.len() {
        atr = (atr * (W - 1) as f64 + tr(i)) / W as f64;
    }
    atr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::test_util::{assert_close, fixture_candles};
    use crate::test_support::load_fixture;

    /// Keys compared with an absolute tolerance scaled by the price (fixtures README).
    const PRICE_KEYS: [&str; 12] = [
        "close",
        "sma_20",
        "sma_50",
        "ema_12",
        "ema_26",
        "macd",
        "macd_signal",
        "macd_diff",
        "bb_high",
        "bb_mid",
        "bb_low",
        "atr",
    ];

    #[test]
    fn replays_indicators_fixture_latest() {
        let fx = load_fixture("indicators.json");
        let cases = fx["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 44);
        let mut flagged = 0;
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let candles = fixture_candles(&case["ohlcv"]);
            let want = case["latest"].as_object().unwrap();
            let Some(got) = latest_indicators(&candles) else {
                assert!(want.is_empty(), "{name}: expected indicators");
                assert!(candles.len() < MIN_CANDLES);
                continue;
            };
            assert_eq!(want.len(), 21, "{name}");
            let flags = &case["flags"];
            for (key, value) in got.to_pairs() {
                let ctx = format!("{name}.{key}");
                // DESIGN §6.16: gains without losses are RSI 100, where the original says 50.
                let deviates = (key == "rsi" && flags["rsi_window_without_losses"] == true)
                    || (key == "rsi_prev" && flags["rsi_prev_window_without_losses"] == true);
                if deviates {
                    assert_eq!(want[key], 50.0, "{ctx}: the original's value");
                    assert_eq!(value, 100.0, "{ctx}");
                    flagged += 1;
                    continue;
                }
                let abs = if PRICE_KEYS.contains(&key) || key == "vwap" {
                    1e-9 * got.close.abs().max(1.0)
                } else {
                    1e-9
                };
                assert_close(value, &want[key], 1e-9, abs, &ctx);
            }
            let nulls: Vec<&str> = got
                .to_pairs()
                .iter()
                .filter(|(_, v)| v.is_nan())
                .map(|(k, _)| *k)
                .collect();
            let want_nulls: Vec<&str> = flags["null_keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap())
                .collect();
            assert_eq!(nulls, want_nulls, "{name}: NaN keys");
        }
        assert_eq!(
            flagged, 6,
            "three series have gains-only RSI windows, twice each"
        );
    }

    #[test]
    fn flat_series_is_exact() {
        let c = Candle {
            ts_ms: 0,
            open: 0.1,
            high: 0.1,
            low: 0.1,
            close: 0.1,
            volume: 3.0,
        };
        let got = latest_indicators(&[c; 60]).unwrap();
        assert_eq!((got.sma_20, got.sma_50, got.bb_mid), (0.1, 0.1, 0.1));
        assert_eq!((got.bb_high, got.bb_low, got.bb_width), (0.1, 0.1, 0.0));
        assert_eq!(
            (got.rsi, got.rsi_prev, got.stoch_k, got.stoch_d),
            (50.0, 50.0, 50.0, 50.0)
        );
        assert_eq!((got.volume_ratio, got.momentum, got.atr), (1.0, 0.0, 0.0));
        assert!(latest_indicators(&[c; 49]).is_none());
        let silent = Candle { volume: 0.0, ..c };
        let got = latest_indicators(&[silent; 50]).unwrap();
        assert!(got.vwap.is_nan());
        assert_eq!(got.volume_ratio, 1.0);
    }

    #[test]
    fn gains_only_window_is_rsi_100() {
        let candles: Vec<Candle> = (0..60)
            .map(|i| {
                let p = 100.0 + i as f64;
                Candle {
                    ts_ms: i,
                    open: p,
                    high: p,
                    low: p,
                    close: p,
                    volume: 1.0,
                }
            })
            .collect();
        let got = latest_indicators(&candles).unwrap();
        assert_eq!((got.rsi, got.rsi_prev), (100.0, 100.0));
    }
}
