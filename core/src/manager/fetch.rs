//! The update cycle's reads: the prices (batched, or per symbol with the original's retries)
//! and the candles.
//!
//! A read either runs where the position is examined (the sequential cycle, the original's
//! order) or ahead of it on a worker thread ([`super::concurrent`]); in both cases it is the
//! same calls in the same order for one position. What a read on a worker would have logged
//! (the failed ticker attempts) is kept as [`Attempt`]s and logged when the position is
//! examined, so the log reads as the sequential cycle's.
//!
//! Batched prices: a client with `get_tickers(symbols)` is asked once per cycle for every price
//! ([`read_batch`] decides what of its answer is usable); a symbol without a usable price in
//! the answer is asked per symbol, with the retries, as before.

use std::collections::HashMap;

use crate::error::{CoreError, CoreResult};
use crate::exchange::{BatchTicker, Exchange, Field, Ohlcv, TickerAnswer};

/// A failed ticker attempt, as the original logs it.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Attempt {
    /// A falsy answer: "API returned None".
    Missing,
    /// A ticker without a usable `last`: "Invalid price in ticker: ...".
    InvalidPrice(String),
    /// The call raised: "API error: `<type name>`".
    ApiError(String),
}

impl Attempt {
    /// The original's DEBUG line for attempt number `n` (from 1).
    pub(super) fn message(&self, n: usize) -> String {
        match self {
            Attempt::Missing => format!("  Attempt {n}: API returned None"),
            Attempt::InvalidPrice(last) => {
                format!("  Attempt {n}: Invalid price in ticker: {last}")
            }
            Attempt::ApiError(kind) => format!("  Attempt {n}: API error: {kind}"),
        }
    }
}

/// How the ticker attempts ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum TickerEnd {
    /// A valid price.
    Price(f64),
    /// Every attempt failed.
    NoPrice,
    /// A pause between attempts was cut short (the reads were cancelled); the attempts so far
    /// are noted, the next one is still to be made.
    CutShort,
}

/// `get_ticker(symbol)` with the original's retries: one more attempt than `delays`, pausing
/// `delays[i]` after failed attempt `i`, starting after `done` attempts already made (and
/// failed). `note` hears of each failed attempt as it happens; `pause(seconds)` waits and says
/// whether it waited the whole time. Only an interruption is an error.
pub(super) fn ticker_with_retries(
    exchange: &dyn Exchange,
    delays: &[f64],
    symbol: &str,
    done: usize,
    note: &mut dyn FnMut(Attempt),
    pause: &mut dyn FnMut(f64) -> CoreResult<bool>,
) -> CoreResult<TickerEnd> {
    for attempt in done..=delays.len() {
        let delay = attempt.checked_sub(1).and_then(|i| delays.get(i));
        if let Some(delay) = delay.filter(|d| **d > 0.0) {
            if !pause(*delay)? {
                return Ok(TickerEnd::CutShort);
            }
        }
        match super::caught(exchange.get_ticker(symbol))? {
            Ok(answer) => {
                if let Some(p) = answer.valid_price() {
                    return Ok(TickerEnd::Price(p));
                }
                note(match answer {
                    TickerAnswer::Missing => Attempt::Missing,
                    TickerAnswer::Ticker { last } => Attempt::InvalidPrice(last.display()),
                });
            }
            Err(e) => note(Attempt::ApiError(e.kind_name().to_owned())),
        }
    }
    Ok(TickerEnd::NoPrice)
}

/// How one position's reads ended.
#[derive(Debug)]
pub(super) enum FetchEnd {
    /// No valid price: the position is skipped this cycle (no candles were asked for).
    NoPrice,
    /// A price, and what `get_ohlcv` gave (an error other than an interruption is the
    /// original's "OHLCV API error" path).
    Priced {
        /// The price.
        price: f64,
        /// The candles call's result.
        ohlcv: CoreResult<Ohlcv>,
    },
    /// A ticker call (or a pause between attempts) raised an interruption.
    Interrupted(CoreError),
    /// The reads were cancelled in a pause between ticker attempts: they go on from there
    /// (the next attempt after the pause) when read again, or where the position is examined.
    CutShort,
}

/// One position's reads made ahead of its examination (on a worker thread).
#[derive(Debug)]
pub(super) struct Fetched {
    /// The failed ticker attempts, in order.
    pub(super) attempts: Vec<Attempt>,
    /// The `get_ticker` calls made (the failed attempts and the one that answered or raised,
    /// if any; none for a batched price).
    pub(super) ticker_calls: usize,
    /// How the reads ended.
    pub(super) end: FetchEnd,
}

impl Fetched {
    /// The interruption these reads met, if any (in a ticker call, a pause or the candles).
    pub(super) fn interruption(&self) -> Option<&CoreError> {
        match &self.end {
            FetchEnd::Interrupted(e) => Some(e),
            FetchEnd::Priced { ohlcv: Err(e), .. } if e.is_interrupt() => Some(e),
            _ => None,
        }
    }

    /// The interruption these reads met, if any, taken out of them.
    pub(super) fn into_interruption(self) -> Option<CoreError> {
        match self.end {
            FetchEnd::Interrupted(e) => Some(e),
            FetchEnd::Priced { ohlcv: Err(e), .. } if e.is_interrupt() => Some(e),
            _ => None,
        }
    }

    /// Whether these reads are complete (not cut short in a pause).
    pub(super) fn is_complete(&self) -> bool {
        !matches!(self.end, FetchEnd::CutShort)
    }
}

/// The reads for one position, in the sequential cycle's order: the price (`batch` when the
/// batched answer had it, else `get_ticker` with retries, after the failed `attempts` an
/// earlier read made), then, with a price, the candles. `pause` waits between attempts (see
/// [`ticker_with_retries`]).
pub(super) fn prefetch(
    exchange: &dyn Exchange,
    delays: &[f64],
    symbol: &str,
    batch: Option<f64>,
    mut attempts: Vec<Attempt>,
    pause: &mut dyn FnMut(f64) -> CoreResult<bool>,
) -> Fetched {
    let price = match batch {
        Some(p) => Ok(TickerEnd::Price(p)),
        None => {
            let done = attempts.len();
            ticker_with_retries(
                exchange,
                delays,
                symbol,
                done,
                &mut |a| attempts.push(a),
                pause,
            )
        }
    };
    // The failed attempts, plus the call that answered a price or raised.
    let answered = batch.is_none() && matches!(price, Ok(TickerEnd::Price(_)) | Err(_));
    let ticker_calls = attempts.len() + usize::from(answered);
    let end = match price {
        Err(e) => FetchEnd::Interrupted(e),
        Ok(TickerEnd::NoPrice) => FetchEnd::NoPrice,
        Ok(TickerEnd::CutShort) => FetchEnd::CutShort,
        Ok(TickerEnd::Price(price)) => FetchEnd::Priced {
            price,
            ohlcv: exchange.get_ohlcv(symbol, CANDLE_TIMEFRAME, CANDLE_LIMIT),
        },
    };
    Fetched {
        attempts,
        ticker_calls,
        end,
    }
}

/// The candles the cycle asks for: `get_ohlcv(symbol, timeframe='1h', limit=100)`.
pub(super) const CANDLE_TIMEFRAME: &str = "1h";
/// See [`CANDLE_TIMEFRAME`].
pub(super) const CANDLE_LIMIT: u32 = 100;

/// What a batched `get_tickers` answer gave, per requested symbol.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchPrices {
    /// Usable prices (finite, > 0), by symbol.
    pub prices: HashMap<String, f64>,
    /// Entries that could not be used, with why (these are warned about).
    pub unusable: Vec<(String, String)>,
    /// Symbols the answer had no entry for (or a falsy one).
    pub missing: Vec<String>,
}

/// Reads a `get_tickers` answer: `answer[i]` is what it held for `requested[i]`. A price is
/// used only when it is what a single ticker's would have to be (a finite number > 0, not a
/// bool) and the entry does not name another symbol; every requested symbol ends up in exactly
/// one of the three lists. An answer of the wrong length (a binding fault) uses nothing.
pub fn read_batch(requested: &[&str], answer: &[BatchTicker]) -> BatchPrices {
    let mut out = BatchPrices::default();
    if requested.len() != answer.len() {
        out.unusable = requested
            .iter()
            .map(|s| {
                (
                    (*s).to_owned(),
                    format!(
                        "the answer had {} entries for {} symbols",
                        answer.len(),
                        requested.len()
                    ),
                )
            })
            .collect();
        return out;
    }
    for (symbol, entry) in requested.iter().zip(answer) {
        let symbol = (*symbol).to_owned();
        match entry {
            BatchTicker::Missing => out.missing.push(symbol),
            BatchTicker::NotAMapping(kind) => {
                out.unusable
                    .push((symbol, format!("a {kind}, not a ticker dict")));
            }
            BatchTicker::Ticker {
                symbol: named,
                last,
            } => {
                let names_other = match named {
                    Field::Absent | Field::Null => None,
                    Field::Text(s) if *s == symbol => None,
                    other => Some(other.display()),
                };
                if let Some(other) = names_other {
                    out.unusable.push((symbol, format!("a ticker for {other}")));
                    continue;
                }
                match (TickerAnswer::Ticker { last: last.clone() }).valid_price() {
                    Some(p) => {
                        out.prices.insert(symbol, p);
                    }
                    None => {
                        out.unusable
                            .push((symbol, format!("'last' is {}", last.display())));
                    }
                }
            }
        }
    }
    out
}

/// At most this many unusable entries are named in the warning (the rest are counted).
const NAMED_IN_WARNING: usize = 10;

/// The warning about unusable entries of a batched answer (`None` when there are none).
pub(super) fn unusable_warning(unusable: &[(String, String)]) -> Option<String> {
    if unusable.is_empty() {
        return None;
    }
    let mut named: Vec<String> = unusable
        .iter()
        .take(NAMED_IN_WARNING)
        .map(|(s, why)| format!("{s} ({why})"))
        .collect();
    if unusable.len() > NAMED_IN_WARNING {
        named.push(format!("and {} more", unusable.len() - NAMED_IN_WARNING));
    }
    Some(format!(
        "Batched prices: no usable price for {} symbol(s), asking get_ticker for them: {}",
        unusable.len(),
        named.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ticker(symbol: Field, last: Field) -> BatchTicker {
        BatchTicker::Ticker { symbol, last }
    }

    #[test]
    fn usable_missing_and_unusable_entries() {
        let requested = ["A", "B", "C", "D", "E", "F", "G"];
        let answer = [
            ticker(Field::Text("A".into()), Field::Number(1.5)),
            BatchTicker::Missing,
            BatchTicker::NotAMapping("list".into()),
            ticker(Field::Text("X".into()), Field::Number(2.0)),
            ticker(Field::Absent, Field::Number(f64::NAN)),
            ticker(Field::Null, Field::Int(7)),
            ticker(Field::Absent, Field::Bool(true)),
        ];
        let got = read_batch(&requested, &answer);
        assert_eq!(got.prices.len(), 2);
        assert_eq!(got.prices["A"], 1.5);
        assert_eq!(got.prices["F"], 7.0);
        assert_eq!(got.missing, vec!["B".to_owned()]);
        assert_eq!(
            got.unusable,
            vec![
                ("C".to_owned(), "a list, not a ticker dict".to_owned()),
                ("D".to_owned(), "a ticker for X".to_owned()),
                ("E".to_owned(), "'last' is nan".to_owned()),
                ("G".to_owned(), "'last' is True".to_owned()),
            ]
        );
        let warning = unusable_warning(&got.unusable).unwrap();
        assert!(warning.starts_with("Batched prices: no usable price for 4 symbol(s)"));
        assert!(warning.contains("D (a ticker for X)"), "{warning}");
    }

    #[test]
    fn an_answer_of_the_wrong_length_uses_nothing() {
        let got = read_batch(&["A", "B"], &[BatchTicker::Missing]);
        assert!(got.prices.is_empty() && got.missing.is_empty());
        assert_eq!(got.unusable.len(), 2);
    }

    #[test]
    fn a_long_warning_names_ten_and_counts_the_rest() {
        let unusable: Vec<(String, String)> =
            (0..13).map(|i| (format!("S{i}"), "x".to_owned())).collect();
        let warning = unusable_warning(&unusable).unwrap();
        assert!(warning.ends_with("S9 (x), and 3 more"), "{warning}");
        assert_eq!(unusable_warning(&[]), None);
    }

    fn field() -> impl Strategy<Value = Field> {
        prop_oneof![
            Just(Field::Absent),
            Just(Field::Null),
            any::<bool>().prop_map(Field::Bool),
            any::<i64>().prop_map(Field::Int),
            any::<f64>().prop_map(Field::Number),
            prop_oneof![
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(-0.0),
                Just(1e-300)
            ]
            .prop_map(Field::Number),
            "[A-C]".prop_map(Field::Text),
        ]
    }

    fn entry() -> impl Strategy<Value = BatchTicker> {
        prop_oneof![
            Just(BatchTicker::Missing),
            "[a-z]{1,5}".prop_map(BatchTicker::NotAMapping),
            (field(), field()).prop_map(|(symbol, last)| BatchTicker::Ticker { symbol, last }),
        ]
    }

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(512, 0x5EED_0014))]

        /// Every requested symbol lands in exactly one list; every price is one a single
        /// ticker's `last` could be and belongs to a requested symbol the entry does not
        /// contradict.
        #[test]
        fn every_symbol_is_priced_missing_or_warned_once(
            entries in proptest::collection::vec(entry(), 0..6)
        ) {
            let names = ["A", "B", "C", "D", "E", "F"];
            let requested: Vec<&str> = names.iter().take(entries.len()).copied().collect();
            let got = read_batch(&requested, &entries);
            let total = got.prices.len() + got.missing.len() + got.unusable.len();
            prop_assert_eq!(total, requested.len());
            for (symbol, price) in &got.prices {
                prop_assert!(price.is_finite() && *price > 0.0);
                let i = requested.iter().position(|s| s == symbol).unwrap();
                match &entries[i] {
                    BatchTicker::Ticker { symbol: named, last } => {
                        prop_assert!(matches!(named, Field::Absent | Field::Null)
                            || named == &Field::Text(symbol.clone()));
                        prop_assert_eq!(last.as_number(), Some(*price));
                        prop_assert!(!matches!(last, Field::Bool(_)));
                    }
                    other => prop_assert!(false, "priced from {:?}", other),
                }
            }
        }
    }
}
