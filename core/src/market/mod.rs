//! Market analysis from candles: the original's `Indicators`, `calculate_support_resistance` and
//! `VolumeProfile` (spec §3.1, §3.4), reproduced exactly as pure functions.
//!
//! Input is a slice of validated [`Candle`]s. Raw rows (as ccxt's `fetch_ohlcv` returns them:
//! `[timestamp_ms, open, high, low, close, volume]`) go through [`validate_candles`] first; a row
//! the analysis cannot use is an error naming the row, and the manager then falls back to its
//! default market inputs instead of computing on garbage.
//!
//! - [`indicators`]: the latest row of `Indicators.calculate_all` ([`latest_indicators`]);
//! - [`levels`]: `calculate_support_resistance` ([`support_resistance`]);
//! - [`inputs`]: what the update cycle reads from a position's candles ([`MarketInputs`]);
//! - [`mod@volume_profile`]: `VolumeProfile` ([`volume_profile()`]) and
//!   `Position.adjust_take_profit_with_volume_profile`.
//!
//! Numerics follow pandas/numpy operation by operation, so results agree with the original bit
//! for bit (the golden fixtures match exactly, not just within their tolerances): numpy's
//! pairwise summation for array sums, pandas' online rolling kernels (compensated add/remove
//! sums, Welford variance, the "window of identical values" rule that makes a flat window give
//! exactly its value and a variance of exactly 0), `ewm` weights, `numpy.linspace` bin edges and
//! `searchsorted` semantics.

pub mod indicators;
pub mod inputs;
pub mod levels;
pub mod volume_profile;

use std::fmt;

pub use indicators::{
    cycle_indicators, latest_indicators, CycleIndicators, LatestIndicators, MIN_CANDLES,
};
pub use inputs::{trend_strength, MarketInputs};
pub use levels::{support_resistance, DEFAULT_LOOKBACK};
pub use volume_profile::{
    adjust_take_profit_with_volume_profile, support_resistance_from_volume, volume_profile,
    LevelKind, VolumeLevel, VolumeLevels, VolumeNode, VolumeProfile, DEFAULT_NUM_BINS,
};

/// One OHLCV candle (ccxt's `[timestamp_ms, open, high, low, close, volume]`), validated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candle {
    /// Opening time in milliseconds since the Unix epoch (no output depends on it).
    pub ts_ms: i64,
    /// Open price (> 0).
    pub open: f64,
    /// High price (> 0, >= `low`).
    pub high: f64,
    /// Low price (> 0).
    pub low: f64,
    /// Close price (> 0).
    pub close: f64,
    /// Traded volume (>= 0).
    pub volume: f64,
}

/// Why a raw candle row was rejected by [`validate_candles`].
#[derive(Clone, Debug, PartialEq)]
pub struct CandleError {
    /// Zero-based index of the offending row.
    pub row: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for CandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid candle at row {}: {}", self.row, self.reason)
    }
}

impl std::error::Error for CandleError {}

/// Names of the six values of a raw row, for error messages.
const FIELDS: [&str; 6] = ["timestamp", "open", "high", "low", "close", "volume"];

/// Validates raw OHLCV rows (`[timestamp_ms, open, high, low, close, volume]`) into candles.
///
/// `rows` is anything that views as `&[f64]` per row: `&[[f64; 6]]`, `&[Vec<f64>]`, ... A row is
/// rejected, with its index and the reason, when it does not have exactly 6 values, when a value
/// is not finite, when a price is zero or negative, when `high < low`, or when the volume is
/// negative. The timestamp is truncated to whole milliseconds. Candles whose open or close lie
/// outside `[low, high]` are accepted, as the original accepts them.
pub fn validate_candles<R: AsRef<[f64]>>(rows: &[R]) -> Result<Vec<Candle>, CandleError> {
    // One allocation of the right size (collecting into a `Result` cannot know the length); the
    // callers hold `rows` already and cap them (the binding: `MAX_CANDLES`, `MAX_CANDLE_ROWS`).
    let mut out = Vec::with_capacity(rows.len());
    for (row, values) in rows.iter().enumerate() {
        out.push(validate_row(row, values.as_ref())?);
    }
    Ok(out)
}

fn validate_row(row: usize, v: &[f64]) -> Result<Candle, CandleError> {
    let err = |reason: String| Err(CandleError { row, reason });
    if v.len() != 6 {
        return err(format!(
            "expected 6 values (timestamp, open, high, low, close, volume), got {}",
            v.len()
        ));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return err(format!("{} is not finite ({})", FIELDS[i], v[i]));
    }
    if let Some(i) = (1..5).find(|&i| v[i] <= 0.0) {
        return err(format!("{} must be positive, got {}", FIELDS[i], v[i]));
    }
    if v[2] < v[3] {
        return err(format!("high {} is below low {}", v[2], v[3]));
    }
    if v[5] < 0.0 {
        return err(format!("volume must not be negative, got {}", v[5]));
    }
    Ok(Candle {
        ts_ms: v[0] as i64,
        open: v[1],
        high: v[2],
        low: v[3],
        close: v[4],
        volume: v[5],
    })
}

/// `numpy.sum` of a float64 array: numpy's pairwise summation (8 accumulators per block of up to
/// 128 values, halves above that), so sums agree with the original to the last bit.
pub(crate) fn np_sum(a: &[f64]) -> f64 {
    // The reduction starts from add's identity (-0.0 for floats; it only matters for empty input).
    -0.0 + pairwise_sum(a)
}

fn pairwise_sum(a: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = a.len();
    if n < 8 {
        a.iter().fold(-0.0, |s, x| s + x)
    } else if n <= BLOCK {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let full = n - n % 8;
        for chunk in a[8..full].chunks_exact(8) {
            for (acc, x) in r.iter_mut().zip(chunk) {
                *acc += x;
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for x in &a[full..] {
            res += x;
        }
        res
    } else {
        let mut half = n / 2;
        half -= half % 8;
        pairwise_sum(&a[..half]) + pairwise_sum(&a[half..])
    }
}

/// First index of the maximum (`numpy.argmax` for NaN-free input); 0 for an empty slice.
pub(crate) fn argmax(a: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in a.iter().enumerate() {
        if *x > a[best] {
            best = i;
        }
    }
    best
}

/// `numpy.linspace(start, stop, num)` (endpoint included, last value exactly `stop`).
pub(crate) fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![start];
    }
    let div = (num - 1) as f64;
    let delta = stop - start;
    let step = delta / div;
    let mut y: Vec<f64> = (0..num)
        .map(|i| {
            // numpy scales by `i / div * delta` instead when the step underflows to zero.
            let t = if step == 0.0 {
                i as f64 / div * delta
            } else {
                i as f64 * step
            };
            t + start
        })
        .collect();
    y[num - 1] = stop;
    y
}

/// Helpers shared by the fixture replays of the market modules.
#[cfg(test)]
pub(crate) mod test_util {
    use super::{validate_candles, Candle};
    use serde_json::Value;

    /// The candles of a fixture's `ohlcv` list (`[[ts, o, h, l, c, v], ...]`), validated.
    pub(crate) fn fixture_candles(ohlcv: &Value) -> Vec<Candle> {
        let rows: Vec<Vec<f64>> = ohlcv
            .as_array()
            .expect("ohlcv is a list")
            .iter()
            .map(|r| {
                let r = r.as_array().expect("ohlcv row is a list");
                r.iter().map(|x| x.as_f64().expect("number")).collect()
            })
            .collect();
        validate_candles(&rows).expect("fixture candles are valid")
    }

    /// `math.isclose(got, want, rel_tol=rel, abs_tol=abs)`; JSON `null` stands for NaN.
    pub(crate) fn assert_close(got: f64, want: &Value, rel: f64, abs: f64, ctx: &str) {
        match want.as_f64() {
            None => {
                assert!(
                    want.is_null(),
                    "{ctx}: expected a number or null, got {want}"
                );
                assert!(got.is_nan(), "{ctx}: got {got:?}, expected NaN (null)");
            }
            Some(w) => {
                let tol = (rel * got.abs().max(w.abs())).max(abs);
                assert!(
                    got == w || (got - w).abs() <= tol,
                    "{ctx}: got {got:?}, expected {w:?} (diff {:e})",
                    got - w
                );
            }
        }
    }

    /// [`assert_close`] with a relative tolerance of 1e-9 only.
    pub(crate) fn assert_rel(got: f64, want: &Value, ctx: &str) {
        assert_close(got, want, 1e-9, 0.0, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_good_rows() {
        let rows = [
            [1.7e12, 1.0, 2.0, 0.5, 1.5, 10.0],
            [1.7e12 + 3.6e6, 1.5, 1.5, 1.5, 1.5, 0.0],
        ];
        let c = validate_candles(&rows).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].ts_ms, 1_700_000_000_000);
        assert_eq!((c[1].high, c[1].low, c[1].volume), (1.5, 1.5, 0.0));
        let vecs: Vec<Vec<f64>> = rows.iter().map(|r| r.to_vec()).collect();
        assert_eq!(validate_candles(&vecs).unwrap(), c);
        assert!(validate_candles::<Vec<f64>>(&[]).unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_rows_with_row_and_reason() {
        let good = vec![0.0, 1.0, 2.0, 0.5, 1.5, 10.0];
        let cases: Vec<(Vec<f64>, &str)> = vec![
            (vec![0.0, 1.0, 2.0, 0.5, 1.5], "expected 6 values"),
            (vec![0.0, 1.0, 2.0, 0.5, 1.5, 1.0, 7.0], "got 7"),
            (
                vec![0.0, 1.0, f64::NAN, 0.5, 1.5, 1.0],
                "high is not finite",
            ),
            (
                vec![0.0, 1.0, 2.0, 0.5, 1.5, f64::INFINITY],
                "volume is not finite",
            ),
            (
                vec![f64::NAN, 1.0, 2.0, 0.5, 1.5, 1.0],
                "timestamp is not finite",
            ),
            (vec![0.0, 0.0, 2.0, 0.5, 1.5, 1.0], "open must be positive"),
            (vec![0.0, 1.0, 2.0, -0.5, 1.5, 1.0], "low must be positive"),
            (vec![0.0, 1.0, 2.0, 0.5, 0.0, 1.0], "close must be positive"),
            (
                vec![0.0, 1.0, 1.0, 1.5, 1.2, 1.0],
                "high 1 is below low 1.5",
            ),
            (
                vec![0.0, 1.0, 2.0, 0.5, 1.5, -1.0],
                "volume must not be negative",
            ),
        ];
        for (bad, why) in cases {
            let rows = vec![good.clone(), good.clone(), bad];
            let e = validate_candles(&rows).unwrap_err();
            assert_eq!(e.row, 2);
            assert!(e.reason.contains(why), "{e} should contain {why:?}");
            assert!(e.to_string().starts_with("invalid candle at row 2: "));
        }
    }

    #[test]
    fn numpy_helpers() {
        assert_eq!(linspace(1.0, 2.0, 3), vec![1.0, 1.5, 2.0]);
        assert_eq!(linspace(3.0, 3.0, 4), vec![3.0; 4]);
        assert_eq!(linspace(0.1, 0.7, 20)[19], 0.7);
        let xs: Vec<f64> = (0..300).map(|i| 0.1 * i as f64).collect();
        assert!((np_sum(&xs) - 4485.0).abs() < 1e-9);
        assert_eq!(np_sum(&[]), 0.0);
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
    }
}
