//! A bounded record of what the update cycle saw for a position: time, price, stop and take
//! profit at each update. It is for inspection (tables, plots), never for decisions — only its
//! last point is read, for the price behind a removal's reason — so it is not part of the
//! position's serialised state or of the events.
//!
//! A point is 40 bytes; the default keeps 32 of them (1.25 KiB per position, whatever the number
//! of cycles). The manager's `history_points` option keeps more.

use std::collections::VecDeque;

use crate::clock::Timestamp;

/// Points kept per position by default: the last 32 updates (half an hour of one-minute cycles),
/// 1 280 bytes.
pub const DEFAULT_HISTORY_POINTS: usize = 32;

/// A history limited to this many points or fewer is allocated whole at its first point.
pub const ALLOCATED_AT_ONCE: usize = 64;

/// The most points a history may be asked to keep.
pub const MAX_HISTORY_POINTS: usize = 1_000_000;

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

/// The last `limit` points, oldest first (two histories are equal when their points are).
#[derive(Clone, Debug)]
pub struct PriceHistory {
    points: VecDeque<PricePoint>,
    limit: usize,
}

impl Default for PriceHistory {
    fn default() -> Self {
        PriceHistory {
            points: VecDeque::new(),
            limit: DEFAULT_HISTORY_POINTS,
        }
    }
}

impl PartialEq for PriceHistory {
    fn eq(&self, other: &Self) -> bool {
        self.points == other.points
    }
}

impl PriceHistory {
    /// Appends a point, dropping the oldest beyond the limit. A history of up to
    /// [`ALLOCATED_AT_ONCE`] points (the default 32: 1.25 KiB) takes its whole room at its
    /// first point; a longer one grows with the points kept. Never beyond the limit's worth.
    pub fn push(&mut self, point: PricePoint) {
        if self.points.len() >= self.limit {
            self.points.pop_front();
        }
        let len = self.points.len();
        if len == self.points.capacity() {
            // One allocation for a small history: growing it by doubling would leave the
            // smaller blocks it outgrew as holes in the allocator (at 10 000 positions that
            // nearly doubled the memory a bot's process took for the default history). A long
            // one grows by doubling, never past the limit (here len < limit).
            let wanted = if self.limit <= ALLOCATED_AT_ONCE {
                self.limit
            } else {
                (len * 2).max(4).min(self.limit).max(len + 1)
            };
            self.points.reserve_exact(wanted - len);
        }
        self.points.push_back(point);
    }

    /// Keeps at most `limit` points from now on (at least 1: the last point is always kept);
    /// older points beyond it are dropped now.
    pub fn set_limit(&mut self, limit: usize) {
        let limit = limit.clamp(1, MAX_HISTORY_POINTS);
        if limit == self.limit {
            return;
        }
        self.limit = limit;
        let excess = self.points.len().saturating_sub(limit);
        if excess > 0 {
            self.points.drain(..excess);
        }
        if self.points.capacity() > limit {
            self.points.shrink_to(limit);
        }
    }

    /// The most points kept.
    pub fn limit(&self) -> usize {
        self.limit
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

    /// Bytes the points take on the heap (what the history adds to a position).
    pub fn heap_bytes(&self) -> usize {
        self.points.capacity() * std::mem::size_of::<PricePoint>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(i: usize) -> PricePoint {
        PricePoint {
            time: Timestamp(i as i64),
            price: i as f64,
            stop_loss: 0.0,
            take_profit: None,
        }
    }

    #[test]
    fn keeps_the_most_recent_points() {
        let mut h = PriceHistory::default();
        for i in 0..(DEFAULT_HISTORY_POINTS + 3) {
            h.push(point(i));
        }
        assert_eq!(h.len(), DEFAULT_HISTORY_POINTS);
        assert_eq!(h.points().next().unwrap().price, 3.0);
        assert_eq!(h.last().unwrap().price, (DEFAULT_HISTORY_POINTS + 2) as f64);
    }

    #[test]
    fn memory_stays_within_the_limit_after_many_updates() {
        for limit in [1, 5, DEFAULT_HISTORY_POINTS, 500] {
            let mut h = PriceHistory::default();
            h.set_limit(limit);
            for i in 0..2_000 {
                h.push(point(i));
                assert!(h.heap_bytes() <= limit * 40, "{limit}: {}", h.heap_bytes());
            }
            assert_eq!(h.len(), limit);
            assert_eq!(h.last().unwrap().price, 1_999.0);
        }
        // The default: at most 2 KiB per position, however many cycles.
        let mut h = PriceHistory::default();
        for i in 0..500 {
            h.push(point(i));
        }
        assert!(h.heap_bytes() <= 2048, "{}", h.heap_bytes());
    }

    #[test]
    fn a_small_history_is_allocated_once_and_a_long_one_grows() {
        let mut h = PriceHistory::default();
        h.push(point(0));
        let first = h.heap_bytes();
        assert_eq!(
            first,
            DEFAULT_HISTORY_POINTS * std::mem::size_of::<PricePoint>()
        );
        for i in 1..500 {
            h.push(point(i));
            assert_eq!(h.heap_bytes(), first, "reallocated at point {i}");
        }
        let mut long = PriceHistory::default();
        long.set_limit(1_000);
        long.push(point(0));
        assert!(long.heap_bytes() <= 4 * std::mem::size_of::<PricePoint>());
    }

    #[test]
    fn a_lower_limit_drops_the_oldest_points_and_keeps_the_last() {
        let mut h = PriceHistory::default();
        h.set_limit(100);
        for i in 0..50 {
            h.push(point(i));
        }
        h.set_limit(10);
        assert_eq!(h.len(), 10);
        assert_eq!(h.points().next().unwrap().price, 40.0);
        h.set_limit(0);
        assert_eq!((h.limit(), h.len()), (1, 1));
        assert_eq!(h.last().unwrap().price, 49.0);
    }

    #[test]
    fn equal_when_the_points_are() {
        let mut a = PriceHistory::default();
        let mut b = PriceHistory::default();
        b.set_limit(500);
        assert_eq!(a, b);
        a.push(point(1));
        assert_ne!(a, b);
        b.push(point(1));
        assert_eq!(a, b);
    }
}
