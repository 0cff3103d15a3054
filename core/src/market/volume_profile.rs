//! The original's `VolumeProfile` (spec §3.4) and `Position.adjust_take_profit_with_volume_profile`
//! (spec §1.11).

use super::{argmax, linspace, np_sum, Candle};
use crate::position::PositionState;

/// The original's default number of price bins.
pub const DEFAULT_NUM_BINS: usize = 50;

/// Fewer rows than this give no profile.
const MIN_ROWS: usize = 20;

/// A high-volume node: an inner bin that is a strict local maximum above 1.5 × the mean bin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VolumeNode {
    /// Centre price of the bin.
    pub price: f64,
    /// Volume in the bin.
    pub volume: f64,
    /// Volume relative to the POC bin (0..1).
    pub strength: f64,
}

/// A volume profile: the original's full dict (`poc, vah, val, volume_nodes, total_volume`).
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeProfile {
    /// Point of control: centre of the first fullest bin.
    pub poc: f64,
    /// Value-area high: centre of the top bin of the 70 % value area.
    pub vah: f64,
    /// Value-area low: centre of the bottom bin of the value area.
    pub val: f64,
    /// High-volume nodes in bin order.
    pub volume_nodes: Vec<VolumeNode>,
    /// Sum of all bin volumes.
    pub total_volume: f64,
}

/// `calculate_volume_profile(df, num_bins)` on `candles` (oldest first).
///
/// `None` is the original's no-profile shape (`poc`/`vah`/`val` None, no nodes, no
/// `total_volume`): fewer than 20 candles, a flat series (max high <= min low) or no bins.
/// Each candle's volume goes to the bins from `searchsorted(edges, low, 'right') − 1` to
/// `searchsorted(edges, high, 'left')` (clamped), split evenly.
pub fn volume_profile(candles: &[Candle], num_bins: usize) -> Option<VolumeProfile> {
    if candles.len() < MIN_ROWS || num_bins == 0 {
        return None;
    }
    let price_min = candles.iter().map(|c| c.low).fold(f64::INFINITY, f64::min);
    let price_max = candles
        .iter()
        .map(|c| c.high)
        .fold(f64::NEG_INFINITY, f64::max);
    if price_max <= price_min || price_max.is_nan() || price_min.is_nan() {
        return None;
    }
    let edges = linspace(price_min, price_max, num_bins + 1);
    let centers: Vec<f64> = edges.windows(2).map(|e| (e[0] + e[1]) / 2.0).collect();

    let last = num_bins as i64 - 1;
    let mut vap = vec![0.0; num_bins];
    for c in candles {
        let right = edges.partition_point(|e| *e <= c.low) as i64 - 1;
        let left = edges.partition_point(|e| *e < c.high) as i64;
        let (lo, hi) = (right.clamp(0, last), left.clamp(0, last));
        if lo == hi {
            vap[lo as usize] += c.volume;
        } else if hi > lo {
            let share = c.volume / (hi - lo + 1) as f64;
            for bin in &mut vap[lo as usize..=hi as usize] {
                *bin += share;
            }
        }
    }

    let poc_idx = argmax(&vap);
    let total_volume = np_sum(&vap);
    let target = total_volume * 0.70;

    // Grow the value area from the POC towards the fuller neighbour (ties go up).
    let mut va = vap[poc_idx];
    let (mut lower, mut upper) = (poc_idx, poc_idx);
    while va < target && (lower > 0 || upper < num_bins - 1) {
        let lv = if lower > 0 { vap[lower - 1] } else { 0.0 };
        let uv = if upper < num_bins - 1 {
            vap[upper + 1]
        } else {
            0.0
        };
        if lv > uv && lower > 0 {
            lower -= 1;
            va += lv;
        } else if upper < num_bins - 1 {
            upper += 1;
            va += uv;
        } else {
            break;
        }
    }

    let avg = np_sum(&vap) / num_bins as f64;
    let volume_nodes = (1..num_bins.saturating_sub(1))
        .filter(|&i| vap[i] > vap[i - 1] && vap[i] > vap[i + 1] && vap[i] > avg * 1.5)
        .map(|i| VolumeNode {
            price: centers[i],
            volume: vap[i],
            strength: vap[i] / vap[poc_idx],
        })
        .collect();

    Some(VolumeProfile {
        poc: centers[poc_idx],
        vah: centers[upper],
        val: centers[lower],
        volume_nodes,
        total_volume,
    })
}

/// Which volume level a support or resistance is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LevelKind {
    /// The point of control (strength 1.0).
    Poc,
    /// The value-area high (strength 0.8).
    Vah,
    /// The value-area low (strength 0.8).
    Val,
    /// A high-volume node (its own strength).
    Node,
}

impl LevelKind {
    /// The original's type string: `"POC"`, `"VAH"`, `"VAL"` or `"NODE"`.
    pub fn as_str(self) -> &'static str {
        match self {
            LevelKind::Poc => "POC",
            LevelKind::Vah => "VAH",
            LevelKind::Val => "VAL",
            LevelKind::Node => "NODE",
        }
    }
}

/// One volume-derived level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VolumeLevel {
    /// Price of the level.
    pub price: f64,
    /// What kind of level it is.
    pub kind: LevelKind,
    /// Its strength (1.0 POC, 0.8 VAH/VAL, node strength).
    pub strength: f64,
}

/// Result of [`support_resistance_from_volume`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum VolumeLevels {
    /// No profile: the original's `{'support': None, 'resistance': None, 'strength': 0.0}`.
    NoProfile,
    /// Levels around the price from a profile (the original's seven-key dict).
    Profile {
        /// Highest level strictly below the price (`support`, `support_type`,
        /// `support_strength`; strength 0.0 when `None`).
        support: Option<VolumeLevel>,
        /// Lowest level strictly above the price.
        resistance: Option<VolumeLevel>,
        /// `val <= price <= vah` (False when VAL or VAH is 0).
        in_value_area: bool,
    },
}

impl VolumeLevels {
    /// The support level, if any.
    pub fn support(&self) -> Option<VolumeLevel> {
        match self {
            VolumeLevels::NoProfile => None,
            VolumeLevels::Profile { support, .. } => *support,
        }
    }

    /// The resistance level, if any.
    pub fn resistance(&self) -> Option<VolumeLevel> {
        match self {
            VolumeLevels::NoProfile => None,
            VolumeLevels::Profile { resistance, .. } => *resistance,
        }
    }
}

/// `get_support_resistance_from_volume(current_price, profile)`.
///
/// Candidates are POC, VAH, VAL and the nodes, in that order; the support is the highest-priced
/// one strictly below `current_price` and the resistance the lowest-priced one strictly above
/// it, the first of equal-priced candidates winning (Python's `max`/`min`).
pub fn support_resistance_from_volume(
    current_price: f64,
    vp: Option<&VolumeProfile>,
) -> VolumeLevels {
    let Some(vp) = vp else {
        return VolumeLevels::NoProfile;
    };
    let fixed = [
        (vp.poc, LevelKind::Poc, 1.0),
        (vp.vah, LevelKind::Vah, 0.8),
        (vp.val, LevelKind::Val, 0.8),
    ];
    let levels = fixed
        .into_iter()
        .chain(
            vp.volume_nodes
                .iter()
                .map(|n| (n.price, LevelKind::Node, n.strength)),
        )
        .map(|(price, kind, strength)| VolumeLevel {
            price,
            kind,
            strength,
        });
    let (mut support, mut resistance): (Option<VolumeLevel>, Option<VolumeLevel>) = (None, None);
    for level in levels {
        // Strict comparisons keep the first of equal prices.
        if level.price < current_price && support.is_none_or(|s| level.price > s.price) {
            support = Some(level);
        }
        if level.price > current_price && resistance.is_none_or(|r| level.price < r.price) {
            resistance = Some(level);
        }
    }
    let in_value_area = if vp.val != 0.0 && vp.vah != 0.0 {
        vp.val <= current_price && current_price <= vp.vah
    } else {
        false
    };
    VolumeLevels::Profile {
        support,
        resistance,
        in_value_area,
    }
}

/// `Position.adjust_take_profit_with_volume_profile(current_price, df)` (spec §1.11): pulls the
/// take profit in front of a strong volume level. Returns whether the take profit changed.
///
/// `candles` are the frame's rows as given (no 50-candle minimum: fewer than 20 → false). A long
/// looks at the resistance, a short at the support (any other side does nothing); the level
/// must lie beyond both price and entry, promise more than 2 % from entry and have a strength
/// above 0.6. Then the TP becomes level × 0.98 (long; × 1.02 short) when the TP is more than
/// 15 % beyond the level and the new TP is still ahead of the price; otherwise, with more than
/// 3 % unleveraged profit and the level within 2 % of the price, level × 0.99 (× 1.01). This is
/// the only TP rule that can move the TP towards the price. A division by zero (entry 0) →
/// false, as the original catches `ZeroDivisionError`.
pub fn adjust_take_profit_with_volume_profile(
    position: &mut PositionState,
    current_price: f64,
    candles: &[Candle],
) -> bool {
    let Some(take_profit) = position.take_profit.filter(|tp| *tp != 0.0) else {
        return false;
    };
    if candles.len() < MIN_ROWS {
        return false;
    }
    let Some(vp) = volume_profile(candles, DEFAULT_NUM_BINS) else {
        return false;
    };
    let sr = support_resistance_from_volume(current_price, Some(&vp));
    let pnl = position.pnl(current_price, false);
    let entry = position.entry_price;

    let long = match position.side.as_str() {
        "long" => true,
        "short" => false,
        _ => return false,
    };
    // "Beyond" is above for a long (resistance side) and below for a short (support side).
    let beyond = |a: f64, b: f64| if long { a > b } else { a < b };
    let level = if long { sr.resistance() } else { sr.support() };
    let Some(level) = level.filter(|l| l.price != 0.0) else {
        return false;
    };
    let x = level.price;
    if !(beyond(x, current_price) && beyond(x, entry)) || entry == 0.0 {
        return false;
    }
    let potential = if long {
        (x - entry) / entry
    } else {
        (entry - x) / entry
    };
    if !(potential > 0.02 && level.strength > 0.6) {
        return false;
    }
    let (pull, far, lock) = if long {
        (0.98, 1.15, 0.99)
    } else {
        (1.02, 0.85, 1.01)
    };
    let pulled = x * pull;
    if beyond(take_profit, x * far) && beyond(pulled, current_price) {
        position.take_profit = Some(pulled);
        return true;
    }
    // pnl > 0.03 implies a positive price, so the distance division is safe.
    if pnl > 0.03 {
        let distance = if long {
            (x - current_price) / current_price
        } else {
            (current_price - x) / current_price
        };
        let locked = x * lock;
        if distance < 0.02 && beyond(locked, current_price) {
            position.take_profit = Some(locked);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::market::test_util::{assert_rel, fixture_candles};
    use crate::market::MIN_CANDLES;
    use crate::test_support::load_fixture;
    use serde_json::Value;

    fn assert_profile(got: Option<&VolumeProfile>, want: &Value, ctx: &str) {
        let keys: Vec<&String> = want.as_object().unwrap().keys().collect();
        let Some(vp) = got else {
            assert_eq!(keys.len(), 4, "{ctx}: no-profile shape has no total_volume");
            for k in ["poc", "vah", "val"] {
                assert!(want[k].is_null(), "{ctx}: {k} should be a number");
            }
            assert_eq!(want["volume_nodes"], Value::Array(vec![]), "{ctx}");
            return;
        };
        assert_eq!(keys.len(), 5, "{ctx}: full shape");
        assert_rel(vp.poc, &want["poc"], &format!("{ctx}.poc"));
        assert_rel(vp.vah, &want["vah"], &format!("{ctx}.vah"));
        assert_rel(vp.val, &want["val"], &format!("{ctx}.val"));
        assert_rel(
            vp.total_volume,
            &want["total_volume"],
            &format!("{ctx}.total_volume"),
        );
        let nodes = want["volume_nodes"].as_array().unwrap();
        assert_eq!(vp.volume_nodes.len(), nodes.len(), "{ctx}: number of nodes");
        for (i, (g, w)) in vp.volume_nodes.iter().zip(nodes).enumerate() {
            assert_rel(g.price, &w["price"], &format!("{ctx}.nodes[{i}].price"));
            assert_rel(g.volume, &w["volume"], &format!("{ctx}.nodes[{i}].volume"));
            assert_rel(
                g.strength,
                &w["strength"],
                &format!("{ctx}.nodes[{i}].strength"),
            );
        }
    }

    fn assert_side(level: Option<VolumeLevel>, want: &Value, side: &str, ctx: &str) {
        match level {
            None => {
                assert!(want[side].is_null(), "{ctx}: {side}");
                assert!(want[format!("{side}_type")].is_null(), "{ctx}: {side}_type");
                assert_eq!(want[format!("{side}_strength")], 0.0, "{ctx}");
            }
            Some(l) => {
                assert_rel(l.price, &want[side], &format!("{ctx}.{side}"));
                assert_eq!(
                    want[format!("{side}_type")],
                    l.kind.as_str(),
                    "{ctx}: {side}_type"
                );
                assert_rel(l.strength, &want[format!("{side}_strength")], ctx);
            }
        }
    }

    fn assert_levels(got: &VolumeLevels, want: &Value, ctx: &str) {
        match got {
            VolumeLevels::NoProfile => {
                let expected =
                    serde_json::json!({"support": null, "resistance": null, "strength": 0.0});
                assert_eq!(want, &expected, "{ctx}");
            }
            VolumeLevels::Profile {
                support,
                resistance,
                in_value_area,
            } => {
                assert_eq!(want.as_object().unwrap().len(), 7, "{ctx}: full shape");
                assert_side(*support, want, "support", ctx);
                assert_side(*resistance, want, "resistance", ctx);
                assert_eq!(
                    want["in_value_area"], *in_value_area,
                    "{ctx}: in_value_area"
                );
            }
        }
    }

    #[test]
    fn replays_indicators_fixture_volume_profile() {
        let fx = load_fixture("indicators.json");
        let mut raw_cases = 0;
        for case in fx["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let candles = fixture_candles(&case["ohlcv"]);
            // The original profiles the `calculate_all` frame: empty below 50 candles.
            let frame: &[Candle] = if candles.len() < MIN_CANDLES {
                &[]
            } else {
                &candles
            };
            let vp = volume_profile(frame, DEFAULT_NUM_BINS);
            assert_profile(vp.as_ref(), &case["volume_profile"], name);

            let last_close = candles.last().unwrap().close;
            let sr = support_resistance_from_volume(last_close, vp.as_ref());
            assert_levels(
                &sr,
                &case["volume_sr_at_last_close"],
                &format!("{name} at last close"),
            );
            for (i, probe) in case["volume_sr_probes"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
            {
                let price = probe[0].as_f64().unwrap();
                let sr = support_resistance_from_volume(price, vp.as_ref());
                assert_levels(&sr, &probe[1], &format!("{name} probe {i} at {price}"));
            }
            if let Some(raw) = case.get("volume_profile_raw") {
                let vp = volume_profile(&candles, DEFAULT_NUM_BINS);
                assert_profile(vp.as_ref(), raw, &format!("{name} raw"));
                raw_cases += 1;
            }
        }
        assert_eq!(raw_cases, 1);
    }

    #[test]
    fn replays_position_traces_adjust_take_profit() {
        let fx = load_fixture("position_traces.json");
        let cases = fx["adjust_take_profit_with_volume_profile"]
            .as_array()
            .unwrap();
        assert_eq!(cases.len(), 50);
        let mut adjusted = 0;
        for (i, case) in cases.iter().enumerate() {
            let f = |k: &str| case[k].as_f64().unwrap();
            let mut p = PositionState::new(
                "X/USDT:USDT",
                case["side"].as_str().unwrap(),
                f("entry_price"),
                f("amount"),
                f("leverage"),
                f("stop_loss"),
                case["take_profit"].as_f64(),
                Timestamp(0),
            );
            let candles = fixture_candles(&case["ohlcv"]);
            let result =
                adjust_take_profit_with_volume_profile(&mut p, f("current_price"), &candles);
            assert_eq!(
                result,
                case["result"].as_bool().unwrap(),
                "case {i}: result"
            );
            assert_eq!(
                p.take_profit,
                case["take_profit_after"].as_f64(),
                "case {i}: take_profit"
            );
            adjusted += usize::from(result);
        }
        assert_eq!(adjusted, 4);
    }

    #[test]
    fn value_area_and_level_ties() {
        let c = |low: f64, high: f64, volume: f64| Candle {
            ts_ms: 0,
            open: low,
            high,
            low,
            close: high,
            volume,
        };
        let mut candles = vec![c(1.0, 2.0, 1.0); 19];
        assert!(volume_profile(&candles, 10).is_none());
        candles.push(c(1.9, 2.0, 100.0));
        let vp = volume_profile(&candles, 10).unwrap();
        assert_eq!(vp.poc, vp.vah); // the top bin holds the spike
        assert!(volume_profile(&candles, 0).is_none());
        // POC == VAH: the POC, listed first, wins the tie for the resistance.
        let sr = support_resistance_from_volume(1.5, Some(&vp));
        assert_eq!(sr.resistance().unwrap().kind, LevelKind::Poc);
        assert_eq!(
            support_resistance_from_volume(1.5, None),
            VolumeLevels::NoProfile
        );
    }
}
