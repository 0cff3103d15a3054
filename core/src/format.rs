//! The original's number formatting (spec §1.2–§1.3) and Python-style number text for log lines.
//!
//! Rust's `{:.N}` formatting rounds the exact binary value correctly with ties-to-even, exactly as
//! Python's `f"{x:.Nf}"` does; only the spelling of non-finite values differs, so every function
//! here goes through [`py_fixed`], which special-cases them.

/// `format_price(price)`: decimals chosen by magnitude *before* rounding (spec §1.2).
///
/// `0.0` and `-0.0` give `"0.00"`; NaN takes the 6-decimal branch and prints `"nan"`.
pub fn format_price(price: f64) -> String {
    if price == 0.0 {
        // `price == 0` is also true for -0.0, which would otherwise print "-0.00".
        return "0.00".to_string();
    }
    let a = price.abs();
    // The original has three identical 2-decimal branches (>= 1000, >= 1, >= 0.1); NaN fails
    // every comparison and ends in the last branch.
    let decimals = if a >= 0.1 {
        2
    } else if a >= 0.01 {
        4
    } else if a >= 0.001 {
        5
    } else {
        6
    };
    py_fixed(price, decimals)
}

/// `format_pnl_usd(pnl_usd)`: `"$" + sign + format_price(abs(pnl_usd))` (spec §1.3).
///
/// The sign is `'+'` when `pnl_usd >= 0` (so `-0.0` gives `"$+0.00"` and NaN gives `"$-nan"`).
pub fn format_pnl_usd(pnl_usd: f64) -> String {
    let sign = if pnl_usd >= 0.0 { '+' } else { '-' };
    format!("${sign}{}", format_price(pnl_usd.abs()))
}

/// Python's `f"{x:.{decimals}f}"`.
///
/// Correctly rounded (ties-to-even on exact binary ties), `"-0.00"` for negative zero, and
/// `"nan"` (whatever the NaN's sign bit), `"inf"`, `"-inf"` for non-finite values.
pub fn py_fixed(x: f64, decimals: usize) -> String {
    if x.is_nan() {
        // Python ignores the sign of a NaN when formatting.
        "nan".to_string()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{x:.decimals$}")
    }
}

/// Python's `f"{x:.{decimals}%}"` (or `f"{x:+.{decimals}%}"` when `signed`).
///
/// Python multiplies by 100 as one float multiplication, formats fixed-point and appends `%`.
/// With `signed`, non-negative values (and NaN, whose sign Python ignores) get a leading `+`;
/// negative zero keeps its `-`.
pub fn py_percent(x: f64, decimals: usize, signed: bool) -> String {
    let body = py_fixed(x * 100.0, decimals);
    if signed && !body.starts_with('-') {
        format!("+{body}%")
    } else {
        format!("{body}%")
    }
}

/// Python's `repr(x)` for a float: the shortest digits that round-trip.
///
/// Fixed notation with at least one decimal when the decimal exponent is in Python's window
/// (`1e-4 <= |x| < 1e16`, and zero), otherwise scientific with a signed, at least two-digit
/// exponent (`"1e-05"`, `"1.5e+16"`); `"nan"`, `"inf"`, `"-inf"` for non-finite values.
pub fn py_repr_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as Python's repr; only the layout
    // differs, so take the digits and the exponent from it and lay them out the Python way.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("LowerExp output always has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // Python's `decpt`: the value is 0.DIGITS × 10^decpt.
    let decpt = exp + 1;
    if decpt <= -4 || decpt > 16 {
        let (first, rest) = digits.split_at(1);
        let dot_rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!(
            "{sign}{first}{dot_rest}e{exp_sign}{:02}",
            exp.unsigned_abs()
        )
    } else if decpt <= 0 {
        let zeros = "0".repeat(decpt.unsigned_abs() as usize);
        format!("{sign}0.{zeros}{digits}")
    } else {
        let decpt = decpt as usize;
        if decpt >= digits.len() {
            let zeros = "0".repeat(decpt - digits.len());
            format!("{sign}{digits}{zeros}.0")
        } else {
            let (int_part, frac_part) = digits.split_at(decpt);
            format!("{sign}{int_part}.{frac_part}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::load_fixture;

    /// Replays one list of `[input, expected]` pairs; inputs are numbers or `float()` strings.
    fn replay(cases: &serde_json::Value, f: fn(f64) -> String) -> usize {
        let cases = cases.as_array().expect("a list of cases");
        for case in cases {
            let input = match &case[0] {
                serde_json::Value::String(s) => match s.as_str() {
                    "nan" => f64::NAN,
                    "inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    other => panic!("unexpected special input {other}"),
                },
                v => v.as_f64().expect("a float input"),
            };
            let expected = case[1].as_str().expect("an expected string");
            assert_eq!(f(input), expected, "input {} ({:?})", case[0], input);
        }
        cases.len()
    }

    #[test]
    fn formatting_fixture_replays_exactly() {
        let fx = load_fixture("formatting.json");
        assert_eq!(replay(&fx["format_price"], format_price), 426);
        assert_eq!(replay(&fx["format_pnl_usd"], format_pnl_usd), 426);
        assert_eq!(replay(&fx["format_price_special"], format_price), 3);
        assert_eq!(replay(&fx["format_pnl_usd_special"], format_pnl_usd), 3);
    }

    #[test]
    fn spec_examples() {
        assert_eq!(format_price(1234.567), "1234.57");
        assert_eq!(format_price(5.335), "5.33");
        assert_eq!(format_price(0.09999), "0.1000");
        assert_eq!(format_price(0.009999), "0.01000");
        assert_eq!(format_price(-0.00001), "-0.000010");
        assert_eq!(format_price(-0.0), "0.00");
        assert_eq!(format_price(f64::INFINITY), "inf");
        assert_eq!(format_pnl_usd(-0.0), "$+0.00");
        assert_eq!(format_pnl_usd(-0.0045), "$-0.00450");
        assert_eq!(format_pnl_usd(-1e-9), "$-0.000000");
        assert_eq!(format_pnl_usd(f64::NAN), "$-nan");
    }

    #[test]
    fn py_fixed_matches_python() {
        assert_eq!(py_fixed(0.125, 2), "0.12");
        assert_eq!(py_fixed(0.375, 2), "0.38");
        assert_eq!(py_fixed(2.675, 2), "2.67");
        assert_eq!(py_fixed(0.5, 0), "0");
        assert_eq!(py_fixed(1.5, 0), "2");
        assert_eq!(py_fixed(2.5, 0), "2");
        assert_eq!(py_fixed(1440.5, 0), "1440");
        assert_eq!(py_fixed(-0.0, 2), "-0.00");
        assert_eq!(py_fixed(-0.001, 2), "-0.00");
        assert_eq!(py_fixed(1e20, 1), "100000000000000000000.0");
        assert_eq!(py_fixed(f64::NAN, 2), "nan");
        assert_eq!(py_fixed(-f64::NAN, 2), "nan");
        assert_eq!(py_fixed(f64::INFINITY, 3), "inf");
        assert_eq!(py_fixed(f64::NEG_INFINITY, 3), "-inf");
    }

    #[test]
    fn py_percent_matches_python() {
        assert_eq!(py_percent(0.0123456, 2, true), "+1.23%");
        assert_eq!(py_percent(0.0123456, 2, false), "1.23%");
        assert_eq!(py_percent(-0.05, 2, true), "-5.00%");
        assert_eq!(py_percent(0.0, 2, true), "+0.00%");
        assert_eq!(py_percent(-0.0, 2, true), "-0.00%");
        // 0.00125 * 100 == 0.125 exactly in binary: a tie, rounded to even.
        assert_eq!(py_percent(0.00125, 1, false), "0.1%");
        assert_eq!(py_percent(f64::NAN, 2, false), "nan%");
        assert_eq!(py_percent(f64::NAN, 2, true), "+nan%");
        assert_eq!(py_percent(f64::INFINITY, 2, true), "+inf%");
        assert_eq!(py_percent(f64::NEG_INFINITY, 2, true), "-inf%");
    }

    #[test]
    fn py_repr_float_matches_python() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (123.456, "123.456"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1e-05, "1e-05"),
            (-1.5e-07, "-1.5e-07"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (123456789012345.6, "123456789012345.6"),
            (1e22, "1e+22"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.30000000000000004, "0.30000000000000004"),
            (100.0, "100.0"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for &(x, expected) in cases {
            assert_eq!(py_repr_float(x), expected, "repr of {x:e}");
        }
    }
}
