//! Which offsets of each partition are safe to commit.

use std::collections::{BTreeSet, HashMap};

/// Offsets handed on and not yet processed, per partition.
///
/// Messages finish out of order, because fetches and batches take different times, but
/// Kafka commits one position per partition. The position may only pass offsets whose
/// effect is durable, so it stops below the lowest offset still pending.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<i32, PartitionState>,
}

#[derive(Debug, Default)]
struct PartitionState {
    pending: BTreeSet<i64>,
    /// The first offset handed on; anything below it was committed before we started.
    first_dispatched: Option<i64>,
    highest_done: Option<i64>,
    stored: Option<i64>,
}

impl OffsetTracker {
    pub fn dispatched(&mut self, partition: i32, offset: i64) {
        let state = self.partitions.entry(partition).or_default();
        state.pending.insert(offset);
        state.first_dispatched = Some(state.first_dispatched.map_or(offset, |first| first.min(offset)));
    }

    /// Mark an offset processed; returns the highest offset that may now be stored for
    /// commit, when it moved.
    pub fn processed(&mut self, partition: i32, offset: i64) -> Option<i64> {
        let state = self.partitions.entry(partition).or_default();
        state.pending.remove(&offset);
        state.highest_done = state.highest_done.max(Some(offset));

        let committable = match state.pending.first() {
            Some(&lowest_pending) => Some(lowest_pending - 1).filter(|o| Some(*o) >= state.first_dispatched),
            None => state.highest_done,
        }?;
        if state.stored.is_some_and(|stored| stored >= committable) {
            return None;
        }
        state.stored = Some(committable);
        Some(committable)
    }

    /// Offsets handed on and not yet processed, over all partitions.
    pub fn pending(&self) -> usize {
        self.partitions.values().map(|p| p.pending.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_waits_for_lowest_pending() {
        let mut tracker = OffsetTracker::default();
        for offset in 10..13 {
            tracker.dispatched(0, offset);
        }
        assert_eq!(tracker.processed(0, 12), None);
        assert_eq!(tracker.processed(0, 11), None);
        assert_eq!(tracker.processed(0, 10), Some(12));
        assert_eq!(tracker.pending(), 0);
    }

    #[test]
    fn in_order_processing_moves_each_time() {
        let mut tracker = OffsetTracker::default();
        tracker.dispatched(3, 0);
        tracker.dispatched(3, 1);
        assert_eq!(tracker.processed(3, 0), Some(0));
        assert_eq!(tracker.processed(3, 1), Some(1));
    }

    #[test]
    fn partitions_are_independent() {
        let mut tracker = OffsetTracker::default();
        tracker.dispatched(0, 5);
        tracker.dispatched(1, 7);
        assert_eq!(tracker.processed(1, 7), Some(7));
        assert_eq!(tracker.pending(), 1);
    }

    #[test]
    fn partial_progress_stops_below_gap() {
        let mut tracker = OffsetTracker::default();
        for offset in 0..4 {
            tracker.dispatched(0, offset);
        }
        assert_eq!(tracker.processed(0, 0), Some(0));
        assert_eq!(tracker.processed(0, 2), None);
        assert_eq!(tracker.processed(0, 1), Some(2));
    }
}
