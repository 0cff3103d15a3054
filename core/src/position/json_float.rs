//! JSON for every `f64` a position can hold.
//!
//! A `Position`'s attributes are not range-checked when assigned (as in the original), so a
//! running manager can hold a NaN or infinite stop (a pandas ATR still warming up gives one).
//! JSON has no such numbers: `serde_json` writes them as `null`, which does not read back as an
//! `f64`, so a state file or journal row carrying one could not be restored and the position was
//! lost at the restart. These fields are written as JSON numbers when finite and as the strings
//! `"NaN"`, `"Infinity"` and `"-Infinity"` otherwise, and read back from either; a `null` reads
//! as NaN (what earlier versions wrote for NaN and infinities alike). Hand-written because the
//! mapping is three strings both ways; `serde_with` would add a dependency for it.

use serde::{Deserialize, Deserializer, Serializer};

const NAN: &str = "NaN";
const INFINITY: &str = "Infinity";
const NEG_INFINITY: &str = "-Infinity";

/// How a number reads from JSON: a number, one of the three strings, or `null`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Number(f64),
    Text(String),
}

fn text_of(v: f64) -> &'static str {
    if v.is_nan() {
        NAN
    } else if v > 0.0 {
        INFINITY
    } else {
        NEG_INFINITY
    }
}

fn from_raw<E: serde::de::Error>(raw: Option<Raw>) -> Result<f64, E> {
    match raw {
        None => Ok(f64::NAN),
        Some(Raw::Number(v)) => Ok(v),
        Some(Raw::Text(t)) => match t.as_str() {
            NAN => Ok(f64::NAN),
            INFINITY => Ok(f64::INFINITY),
            NEG_INFINITY => Ok(f64::NEG_INFINITY),
            _ => Err(E::custom(format!(
                "expected a number, \"NaN\", \"Infinity\" or \"-Infinity\", got {t:?}"
            ))),
        },
    }
}

/// Writes `v` as a JSON number, or as `"NaN"` / `"Infinity"` / `"-Infinity"`.
pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_str(text_of(*v))
    }
}

/// Reads what [`serialize`] writes; `null` reads as NaN.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    from_raw(Option::<Raw>::deserialize(d)?)
}

/// The same for an optional number: `None` is `null` both ways.
pub mod option {
    use super::{from_raw, text_of, Raw};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `None` as `null`, a number as [`super::serialize`] does.
    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(x) if x.is_finite() => s.serialize_f64(*x),
            Some(x) => s.serialize_str(text_of(*x)),
        }
    }

    /// Reads what [`serialize`] writes (`null` is `None`).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            raw => from_raw(raw).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug)]
    struct Both {
        #[serde(with = "super")]
        x: f64,
        #[serde(with = "super::option")]
        y: Option<f64>,
    }

    fn round_trip(x: f64, y: Option<f64>) -> (String, Both) {
        let text = serde_json::to_string(&Both { x, y }).unwrap();
        let back: Both = serde_json::from_str(&text).unwrap();
        (text, back)
    }

    #[test]
    fn finite_numbers_stay_json_numbers() {
        let (text, back) = round_trip(-0.5, Some(1e300));
        assert_eq!(text, r#"{"x":-0.5,"y":1e+300}"#);
        assert_eq!((back.x, back.y), (-0.5, Some(1e300)));
        let (text, back) = round_trip(0.0, None);
        assert_eq!(text, r#"{"x":0.0,"y":null}"#);
        assert_eq!(back.y, None);
    }

    #[test]
    fn non_finite_numbers_round_trip_as_text() {
        let (text, back) = round_trip(f64::NAN, Some(f64::NEG_INFINITY));
        assert_eq!(text, r#"{"x":"NaN","y":"-Infinity"}"#);
        assert!(back.x.is_nan());
        assert_eq!(back.y, Some(f64::NEG_INFINITY));
        let (_, back) = round_trip(f64::INFINITY, Some(f64::NAN));
        assert_eq!(back.x, f64::INFINITY);
        assert!(back.y.is_some_and(f64::is_nan));
    }

    #[test]
    fn null_reads_as_nan_and_integers_as_numbers() {
        let back: Both = serde_json::from_str(r#"{"x":null,"y":7}"#).unwrap();
        assert!(back.x.is_nan());
        assert_eq!(back.y, Some(7.0));
    }

    #[test]
    fn other_text_is_an_error_naming_it() {
        let e = serde_json::from_str::<Both>(r#"{"x":"1.5","y":null}"#).unwrap_err();
        assert!(e.to_string().contains("\"1.5\""), "{e}");
    }
}
