//! `Indicators.calculate_support_resistance` (spec §3.1): support and resistance levels from a
//! 19-bin volume-at-price histogram of the last `lookback` candles.

use super::{argmax, linspace, np_sum, Candle};
use crate::levels::{Level, SupportResistance};

/// The original's default lookback (and the manager's).
pub const DEFAULT_LOOKBACK: usize = 50;

/// Number of bin edges (`numpy.linspace(min low, max high, 20)`), hence 19 bins.
const EDGES: usize = 20;

/// Support/resistance levels of `candles` (oldest first), as `calculate_support_resistance(df,
/// lookback)`.
///
/// Fewer than `lookback` candles (or none) give the empty shape: no levels and no POC. Otherwise
/// the last `lookback` candles spread their volume over 19 equal price bins between their lowest
/// low and highest high, proportionally to the overlap of each candle's range with a bin (bounds
/// inclusive; a candle with `high == low` adds its full volume to every bin it touches). The POC is
/// the centre of the first fullest bin. Inner bins that are strict local maxima become levels
/// (centre price, strength = bin volume / total volume): support below the last close of all
/// `candles`, resistance at or above it, each sorted by strength (descending, stable) and cut to 3.
///
/// The manager's candles come through `Indicators.calculate_all`, which yields nothing below 50
/// candles; callers that mirror that pass at least 50. A `lookback` of 0 gives the empty shape
/// (the original would report a NaN POC).
pub fn support_resistance(candles: &[Candle], lookback: usize) -> SupportResistance {
    let n = candles.len();
    if n == 0 || n < lookback || lookback == 0 {
        return SupportResistance::default();
    }
    let recent = &candles[n - lookback..];
    let price_min = recent.iter().map(|c| c.low).fold(f64::INFINITY, f64::min);
    let price_max = recent
        .iter()
        .map(|c| c.high)
        .fold(f64::NEG_INFINITY, f64::max);
    let edges = linspace(price_min, price_max, EDGES);

    let profile = bin_volumes(recent, &edges);

    let poc_idx = argmax(&profile);
    let poc = (edges[poc_idx] + edges[poc_idx + 1]) / 2.0;
    let current_price = candles[n - 1].close;
    let total = np_sum(&profile);

    let mut support = Vec::new();
    let mut resistance = Vec::new();
    for i in 1..profile.len() - 1 {
        if profile[i] > profile[i - 1] && profile[i] > profile[i + 1] {
            let level = Level {
                price: (edges[i] + edges[i + 1]) / 2.0,
                strength: profile[i] / total,
            };
            if level.price < current_price {
                support.push(level);
            } else {
                resistance.push(level);
            }
        }
    }
    for list in [&mut support, &mut resistance] {
        // Python's `sort(reverse=True)`: descending and stable (sort_by is stable).
        list.sort_by(|a, b| {
            b.strength
                .partial_cmp(&a.strength)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        list.truncate(3);
    }
    SupportResistance {
        support,
        resistance,
        poc: Some(poc),
    }
}

/// Volume per bin between consecutive `edges`: each candle spreads its volume over the bins its
/// range touches (bounds inclusive), proportionally to the overlap, or adds its full volume to
/// each when `high == low`.
///
/// With non-decreasing edges (always, unless rounding in a range a few ulps wide breaks it) the
/// bins a candle touches are one contiguous run, found by binary search; the same bins get the
/// same additions in the same order as a scan of every bin, so the sums are identical.
fn bin_volumes(recent: &[Candle], edges: &[f64]) -> [f64; EDGES - 1] {
    let sorted = edges.windows(2).all(|w| w[0] <= w[1]);
    let mut profile = [0.0; EDGES - 1];
    for c in recent {
        let (first, end) = if sorted {
            (
                edges[1..].partition_point(|&upper| upper < c.low),
                edges[..EDGES - 1].partition_point(|&lower| lower <= c.high),
            )
        } else {
            (0, EDGES - 1)
        };
        for i in first..end.max(first) {
            let (bin_low, bin_high) = (edges[i], edges[i + 1]);
            if c.high >= bin_low && c.low <= bin_high {
                let ratio = if c.high > c.low {
                    (c.high.min(bin_high) - c.low.max(bin_low)) / (c.high - c.low)
                } else {
                    1.0
                };
                profile[i] += c.volume * ratio;
            }
        }
    }
    profile
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::test_util::{assert_rel, fixture_candles};
    use crate::test_support::load_fixture;
    use serde_json::Value;

    fn assert_levels(got: &[Level], want: &Value, ctx: &str) {
        let want = want.as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{ctx}: number of levels");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert_rel(g.price, &w["price"], &format!("{ctx}[{i}].price"));
            assert_rel(g.strength, &w["strength"], &format!("{ctx}[{i}].strength"));
        }
    }

    #[test]
    fn replays_indicators_fixture_support_resistance() {
        let fx = load_fixture("indicators.json");
        let cases = fx["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 44);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let candles = fixture_candles(&case["ohlcv"]);
            // The original runs this on the `calculate_all` frame, empty below 50 candles.
            let got = if candles.len() < crate::market::MIN_CANDLES {
                support_resistance(&[], DEFAULT_LOOKBACK)
            } else {
                support_resistance(&candles, DEFAULT_LOOKBACK)
            };
            let want = &case["support_resistance"];
            assert_levels(&got.support, &want["support"], &format!("{name} support"));
            assert_levels(
                &got.resistance,
                &want["resistance"],
                &format!("{name} resistance"),
            );
            match got.poc {
                None => assert!(want["poc"].is_null(), "{name}: poc"),
                Some(p) => assert_rel(p, &want["poc"], &format!("{name} poc")),
            }
        }
    }

    #[test]
    fn short_input_and_flat_series() {
        let c = Candle {
            ts_ms: 0,
            open: 2.0,
            high: 2.0,
            low: 2.0,
            close: 2.0,
            volume: 1.0,
        };
        assert_eq!(
            support_resistance(&[c; 49], 50),
            SupportResistance::default()
        );
        assert_eq!(
            support_resistance(&[c; 60], 0),
            SupportResistance::default()
        );
        let flat = support_resistance(&[c; 60], 50);
        assert!(flat.support.is_empty() && flat.resistance.is_empty());
        assert_eq!(flat.poc, Some(2.0));
    }

    /// The bin volumes by the plain scan of every candle over every bin.
    fn bins_by_full_scan(recent: &[Candle], edges: &[f64]) -> [f64; EDGES - 1] {
        let mut profile = [0.0; EDGES - 1];
        for c in recent {
            for (i, bin) in profile.iter_mut().enumerate() {
                if c.high >= edges[i] && c.low <= edges[i + 1] {
                    let ratio = if c.high > c.low {
                        (c.high.min(edges[i + 1]) - c.low.max(edges[i])) / (c.high - c.low)
                    } else {
                        1.0
                    };
                    *bin += c.volume * ratio;
                }
            }
        }
        profile
    }

    #[test]
    fn binary_searched_bins_equal_the_full_scan_bit_for_bit() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 1_000_000) as f64 / 1_000_000.0
        };
        for case in 0..400 {
            // Wide, narrow, a few ulps wide and flat ranges; flat candles; candles at the ends.
            let scale = [1.0, 1e-3, 1e-14, 0.0][case % 4];
            let candles: Vec<Candle> = (0..50)
                .map(|i| {
                    let mid = 100.0 * (1.0 + scale * (next() - 0.5));
                    let spread = 100.0 * scale * next() * 0.2;
                    let flat = i % 7 == 0;
                    Candle {
                        ts_ms: i,
                        open: mid,
                        high: if flat { mid } else { mid + spread },
                        low: if flat { mid } else { mid - spread },
                        close: mid,
                        volume: (next() * 1000.0).floor(),
                    }
                })
                .collect();
            let lo = candles.iter().map(|c| c.low).fold(f64::INFINITY, f64::min);
            let hi = candles
                .iter()
                .map(|c| c.high)
                .fold(f64::NEG_INFINITY, f64::max);
            let edges = linspace(lo, hi, EDGES);
            let got = bin_volumes(&candles, &edges);
            let want = bins_by_full_scan(&candles, &edges);
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "case {case}: {got:?} != {want:?}"
            );
        }
        // Unsorted edges (cannot come from linspace over a real range) take the full scan.
        let c = Candle {
            ts_ms: 0,
            open: 1.0,
            high: 2.0,
            low: 1.0,
            close: 1.5,
            volume: 3.0,
        };
        let mut edges = linspace(1.0, 2.0, EDGES);
        edges.swap(3, 4);
        assert_eq!(bin_volumes(&[c], &edges), bins_by_full_scan(&[c], &edges));
    }
}
