//! Support and resistance levels, as the original passes them around (`{'support': [{'price',
//! 'strength'}], 'resistance': [...], 'poc': ...}`).

use serde::{Deserialize, Serialize};

/// One price level with its relative strength (share of volume, 0..1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Level {
    /// Price of the level.
    pub price: f64,
    /// Strength of the level (volume share); 0.0 when the caller gave none.
    #[serde(default)]
    pub strength: f64,
}

/// Support and resistance levels plus the point of control.
///
/// Lists keep the order they were given in (strongest first when computed by the core).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SupportResistance {
    /// Levels below the reference price.
    #[serde(default)]
    pub support: Vec<Level>,
    /// Levels at or above the reference price.
    #[serde(default)]
    pub resistance: Vec<Level>,
    /// Point of control (price of the highest-volume bin), if any.
    #[serde(default)]
    pub poc: Option<f64>,
}
