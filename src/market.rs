//! `VolumeProfile`: the original's volume-profile analyzer over the core's market module, and the
//! candle input conversion (a pandas DataFrame or a list of `[ts, open, high, low, close, volume]`).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use position_manager_core::market::volume_profile::{
    support_resistance_from_volume, volume_profile, VolumeLevel, VolumeLevels, VolumeNode,
    VolumeProfile as CoreProfile,
};
use position_manager_core::market::{validate_candles, Candle};

use crate::convert::{describe, get_key, number, unless_passing};

/// The most price bins a volume profile may have (the original's default is 50).
const MAX_BINS: i64 = 100_000;

const COLUMNS: [&str; 6] = ["timestamp", "open", "high", "low", "close", "volume"];

/// The most candles a `df` argument may have: 1 000 000 (ten years of 5-minute candles; the
/// manager's own computations use 100). More is a `ValueError` naming `df`, raised as soon as
/// the row after the limit is read, so an endless iterable (or a frame whose `tolist()` never
/// ends) is refused instead of exhausting memory.
pub const MAX_CANDLE_ROWS: usize = 1_000_000;

/// Why [`candles_arg`] gave no candles other than unusable data.
pub enum CandlesArgError {
    /// The argument itself is refused (more than [`MAX_CANDLE_ROWS`] rows): a `ValueError`
    /// naming `df`, raised even by a method that answers "no result" for unusable data.
    TooMany(PyErr),
    /// Reading the argument raised (an interruption among them, which passes through).
    Read(PyErr),
}

impl From<PyErr> for CandlesArgError {
    fn from(e: PyErr) -> Self {
        Self::Read(e)
    }
}

impl From<CandlesArgError> for PyErr {
    fn from(e: CandlesArgError) -> Self {
        match e {
            CandlesArgError::TooMany(e) | CandlesArgError::Read(e) => e,
        }
    }
}

/// The error for a `df` with more than [`MAX_CANDLE_ROWS`] rows.
fn too_many_candles(data: &Bound<'_, PyAny>) -> CandlesArgError {
    CandlesArgError::TooMany(PyValueError::new_err(format!(
        "df must have at most {MAX_CANDLE_ROWS} candles, got more: {}",
        describe(data)
    )))
}

/// One row of a sequence of rows: exactly six numbers, `None` otherwise. The row's length is
/// checked before its values are read (a row claiming a huge length is never allocated for);
/// an interruption raised while it is read passes through (DESIGN rule 8).
fn candle_row(row: &Bound<'_, PyAny>) -> PyResult<Option<[f64; 6]>> {
    let py = row.py();
    if unless_passing(py, row.len())? != Some(6) {
        return Ok(None);
    }
    let values: Option<Vec<f64>> = unless_passing(py, row.extract())?;
    Ok(values.and_then(|v| <[f64; 6]>::try_from(v).ok()))
}

/// Candles from a pandas DataFrame (columns timestamp, open, high, low, close, volume) or from
/// a sequence of rows. `Ok(None)` when the data cannot be used (non-numeric or insane values),
/// which the original's methods answer with their "no result" value; a `ValueError` for more
/// than [`MAX_CANDLE_ROWS`] rows (or values in a column), told apart from other errors by
/// [`CandlesArgError`].
pub fn candles_arg(data: &Bound<'_, PyAny>) -> Result<Option<Vec<Candle>>, CandlesArgError> {
    let rows: Vec<[f64; 6]> = if data.hasattr("columns")? {
        let mut columns: Vec<Vec<f64>> = Vec::with_capacity(6);
        for (i, name) in COLUMNS.iter().enumerate() {
            let values = data.get_item(*name)?.call_method0("tolist")?;
            let mut out = Vec::new();
            for v in values.try_iter()? {
                if out.len() == MAX_CANDLE_ROWS {
                    return Err(too_many_candles(data));
                }
                let v = v?;
                // Timestamps are not used by any computation; datetime values are fine.
                let x = unless_passing(data.py(), v.extract::<f64>())?;
                out.push(match x {
                    Some(x) => x,
                    None if i == 0 => 0.0,
                    None => return Ok(None),
                });
            }
            columns.push(out);
        }
        // Columns of different lengths (a duck-typed frame) are unusable data.
        let n = columns.first().map_or(0, Vec::len);
        if columns.iter().any(|c| c.len() != n) {
            return Ok(None);
        }
        (0..n)
            .map(|r| {
                std::array::from_fn(|c| {
                    columns
                        .get(c)
                        .and_then(|column| column.get(r))
                        .copied()
                        .unwrap_or(f64::NAN)
                })
            })
            .collect()
    } else {
        let mut rows = Vec::new();
        for row in data.try_iter().map_err(|_| {
            CandlesArgError::Read(PyTypeError::new_err(format!(
                "expected a DataFrame or a list of candles, got {}",
                describe(data)
            )))
        })? {
            if rows.len() == MAX_CANDLE_ROWS {
                return Err(too_many_candles(data));
            }
            let row = row?;
            match candle_row(&row)? {
                Some(r) => rows.push(r),
                None => return Ok(None),
            }
        }
        rows
    };
    Ok(validate_candles(&rows).ok())
}

fn profile_dict<'py>(py: Python<'py>, vp: Option<&CoreProfile>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let Some(vp) = vp else {
        d.set_item("poc", py.None())?;
        d.set_item("vah", py.None())?;
        d.set_item("val", py.None())?;
        d.set_item("volume_nodes", PyList::empty(py))?;
        return Ok(d);
    };
    d.set_item("poc", vp.poc)?;
    d.set_item("vah", vp.vah)?;
    d.set_item("val", vp.val)?;
    let nodes = vp
        .volume_nodes
        .iter()
        .map(|n| {
            let nd = PyDict::new(py);
            nd.set_item("price", n.price)?;
            nd.set_item("volume", n.volume)?;
            nd.set_item("strength", n.strength)?;
            Ok(nd)
        })
        .collect::<PyResult<Vec<_>>>()?;
    d.set_item("volume_nodes", PyList::new(py, nodes)?)?;
    d.set_item("total_volume", vp.total_volume)?;
    Ok(d)
}

fn profile_from_dict(value: &Bound<'_, PyAny>) -> PyResult<Option<CoreProfile>> {
    let py = value.py();
    if value.is_none() || !value.is_truthy()? {
        return Ok(None);
    }
    let get = |k: &str| get_key(value, &pyo3::types::PyString::new(py, k));
    let poc = match get("poc")? {
        Some(p) if !p.is_none() => number("volume_profile['poc']", &p)?,
        _ => return Ok(None),
    };
    let opt = |k: &str| -> PyResult<f64> {
        match get(k)? {
            Some(v) if !v.is_none() => number(k, &v),
            _ => Ok(0.0),
        }
    };
    let mut volume_nodes = Vec::new();
    if let Some(nodes) = get("volume_nodes")? {
        if !nodes.is_none() {
            for n in nodes.try_iter()? {
                let n = n?;
                let field = |k: &str| -> PyResult<f64> {
                    match get_key(&n, &pyo3::types::PyString::new(py, k))? {
                        Some(v) if !v.is_none() => number(k, &v),
                        _ => Ok(0.0),
                    }
                };
                volume_nodes.push(VolumeNode {
                    price: field("price")?,
                    volume: field("volume")?,
                    strength: field("strength")?,
                });
            }
        }
    }
    Ok(Some(CoreProfile {
        poc,
        vah: opt("vah")?,
        val: opt("val")?,
        volume_nodes,
        total_volume: opt("total_volume")?,
    }))
}

fn level_items(d: &Bound<'_, PyDict>, prefix: &str, level: Option<VolumeLevel>) -> PyResult<()> {
    d.set_item(prefix, level.map(|l| l.price))?;
    d.set_item(format!("{prefix}_type"), level.map(|l| l.kind.as_str()))?;
    d.set_item(
        format!("{prefix}_strength"),
        level.map_or(0.0, |l| l.strength),
    )?;
    Ok(())
}

/// The original's volume-profile analyzer: where volume traded, the point of control (POC), the
/// 70 % value area (VAL..VAH) and high-volume nodes, and the levels they give around a price.
#[pyclass(name = "VolumeProfile", module = "position_manager_rs", frozen)]
pub struct PyVolumeProfile;

#[pymethods]
impl PyVolumeProfile {
    #[new]
    fn new() -> Self {
        PyVolumeProfile
    }

    /// `{'poc', 'vah', 'val', 'volume_nodes': [{'price', 'volume', 'strength'}], 'total_volume'}`
    /// from a DataFrame (or list) of candles; `{'poc': None, 'vah': None, 'val': None,
    /// 'volume_nodes': []}` with fewer than 20 rows, a flat series, unusable data or
    /// `num_bins=0`. `num_bins` is an int from 0 to 100000. `df` may have at most 1 000 000
    /// candles (ValueError beyond; an endless iterable is refused so).
    #[pyo3(signature = (df, num_bins=None), text_signature = "(self, df, num_bins=50)")]
    fn calculate_volume_profile<'py>(
        &self,
        py: Python<'py>,
        df: &Bound<'py, PyAny>,
        num_bins: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let num_bins = match num_bins {
            None => 50,
            Some(n) => crate::options::int_arg("num_bins", n, 0, MAX_BINS)?,
        };
        let num_bins = usize::try_from(num_bins).unwrap_or(0);
        let profile = match candles_arg(df)? {
            Some(c) if num_bins > 0 => {
                crate::interpreter_exit::detach_or_stay(py, || volume_profile(&c, num_bins))
            }
            _ => None,
        };
        profile_dict(py, profile.as_ref())
    }

    /// The nearest volume levels below (`support`) and above (`resistance`) `current_price`,
    /// with their type ('POC', 'VAH', 'VAL', 'NODE') and strength, and whether the price is in
    /// the value area; `{'support': None, 'resistance': None, 'strength': 0.0}` without a profile.
    fn get_support_resistance_from_volume<'py>(
        &self,
        py: Python<'py>,
        current_price: &Bound<'py, PyAny>,
        volume_profile: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let price = crate::convert::finite("current_price", current_price)?;
        let vp = profile_from_dict(volume_profile)?;
        let d = PyDict::new(py);
        match support_resistance_from_volume(price, vp.as_ref()) {
            VolumeLevels::NoProfile => {
                d.set_item("support", py.None())?;
                d.set_item("resistance", py.None())?;
                d.set_item("strength", 0.0)?;
            }
            VolumeLevels::Profile {
                support,
                resistance,
                in_value_area,
            } => {
                level_items(&d, "support", support)?;
                level_items(&d, "resistance", resistance)?;
                d.set_item("in_value_area", in_value_area)?;
            }
        }
        Ok(d)
    }

    fn __repr__(&self) -> &'static str {
        "VolumeProfile()"
    }
}
