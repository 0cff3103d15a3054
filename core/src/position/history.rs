//! A bounded record of what the update cycle saw for a position: time, price, stop and take
//! profit at each update. It is for inspection (tables, plots), never for decisions, so it is
//! not part of the position's serialised state or of the events.

use std::collections::VecDeque;

use crate::clock::Timestamp;

/// Points kept per position (about 8 hours of one-minute cycles).
pub const DEFAULT_HISTORY_POINTS: usize = 500;

/// One update of a position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PricePoint {
    /// When.
    pub time: Timestamp,
    /// The price used.
    pub price: f64,
    /// The stop loss after the update.
    pub stop_loss: f64,
    /// The take profit after the update.
    pub take_profit: Option<f64>,
}

/// The last [`DEFAULT_HISTORY_POINTS`] points, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PriceHistory {
    points: VecDeque<PricePoint>,
}

impl PriceHistory {
    /// Appends a point, dropping the oldest beyond the bound.
    pub fn push(&mut self, point: PricePoint) {
        if self.points.len() >= DEFAULT_HISTORY_POINTS {
            self.points.pop_front();
        }
        self.points.push_back(point);
    }

    /// The points, oldest first.
    pub fn points(&self) -> impl ExactSizeIterator<Item = &PricePoint> {
        self.points.iter()
    }

    /// The most recent point.
    pub fn last(&self) -> Option<&PricePoint> {
        self.points.back()
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recent_points() {
        let mut h = PriceHistory::default();
        for i in 0..(DEFAULT_HISTORY_POINTS + 3) {
            h.push(PricePoint {
                time: Timestamp(i as i64),
                price: i as f64,
                stop_loss: 0.0,
                take_profit: None,
            });
        }
        assert_eq!(h.len(), DEFAULT_HISTORY_POINTS);
        assert_eq!(h.points().next().unwrap().price, 3.0);
        assert_eq!(h.last().unwrap().price, (DEFAULT_HISTORY_POINTS + 2) as f64);
    }
}
