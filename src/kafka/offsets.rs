//! Which offsets of each partition are safe to commit.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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
    /// commit, when it moved. An offset that is not pending, because its partition was
    /// revoked and forgotten meanwhile, changes nothing.
    pub fn processed(&mut self, partition: i32, offset: i64) -> Option<i64> {
        let state = self.partitions.get_mut(&partition)?;
        if !state.pending.remove(&offset) {
            return None;
        }
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

    /// Offsets handed on and not yet processed in the given partitions.
    pub fn pending_in(&self, partitions: &[i32]) -> usize {
        partitions.iter().filter_map(|p| self.partitions.get(p)).map(|p| p.pending.len()).sum()
    }

    /// Drop what is known of revoked partitions, so that their next assignment starts
    /// from the committed position and a late acknowledgement stores nothing.
    pub fn forget(&mut self, partitions: &[i32]) {
        for partition in partitions {
            self.partitions.remove(partition);
        }
    }
}

/// The offset tracker of one consumer, shared by the consume loop, the workers that
/// acknowledge messages, and the rebalance callback, which waits for the messages of
/// revoked partitions before their offsets are committed.
#[derive(Debug, Default)]
pub struct InFlight {
    tracker: Mutex<OffsetTracker>,
    finished: Condvar,
}

impl InFlight {
    /// Record an offset handed on and return the offsets pending.
    pub fn dispatched(&self, partition: i32, offset: i64) -> usize {
        let mut tracker = self.lock();
        tracker.dispatched(partition, offset);
        tracker.pending()
    }

    /// Mark an offset processed and pass the offset that may now be committed, if it
    /// moved, to `store`, before a waiting rebalance is woken. Returns the offsets still
    /// pending.
    pub fn finished(&self, partition: i32, offset: i64, store: impl FnOnce(i64)) -> usize {
        let mut tracker = self.lock();
        if let Some(committable) = tracker.processed(partition, offset) {
            store(committable);
        }
        let pending = tracker.pending();
        drop(tracker);
        self.finished.notify_all();
        pending
    }

    /// Block until no offset of `partitions` is pending or `timeout` has passed, then
    /// forget those partitions. Returns the offsets still pending, which the partitions'
    /// next owner consumes again.
    pub fn drain(&self, partitions: &[i32], timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut tracker = self.lock();
        loop {
            let pending = tracker.pending_in(partitions);
            let left = deadline.saturating_duration_since(Instant::now());
            if pending == 0 || left.is_zero() {
                tracker.forget(partitions);
                return pending;
            }
            tracker = match self.finished.wait_timeout(tracker, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    #[cfg(test)]
    fn pending(&self) -> usize {
        self.lock().pending()
    }

    /// Lock the tracker. A panic while the lock was held cannot leave it half-updated,
    /// because each change is a single collection operation, so a poisoned lock is used.
    fn lock(&self) -> MutexGuard<'_, OffsetTracker> {
        self.tracker.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
    fn forgotten_partition_ignores_late_ack() {
        let mut tracker = OffsetTracker::default();
        tracker.dispatched(0, 5);
        tracker.dispatched(1, 9);
        tracker.forget(&[0]);
        assert_eq!(tracker.processed(0, 5), None);
        assert_eq!(tracker.pending_in(&[0]), 0);
        assert_eq!(tracker.pending_in(&[1]), 1);
    }

    #[test]
    fn drain_waits_for_revoked_partition() {
        let in_flight = std::sync::Arc::new(InFlight::default());
        in_flight.dispatched(0, 4);
        in_flight.dispatched(1, 8);

        let acknowledger = in_flight.clone();
        let stored = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let mut stored = None;
            acknowledger.finished(0, 4, |offset| stored = Some(offset));
            stored
        });

        assert_eq!(in_flight.drain(&[0], Duration::from_secs(10)), 0);
        assert_eq!(stored.join().unwrap(), Some(4));
        assert_eq!(in_flight.pending(), 1, "the partition still assigned keeps its offset");
    }

    #[test]
    fn drain_gives_up_after_timeout() {
        let in_flight = InFlight::default();
        in_flight.dispatched(2, 0);
        in_flight.dispatched(2, 1);

        assert_eq!(in_flight.drain(&[2], Duration::from_millis(20)), 2);
        assert_eq!(in_flight.pending(), 0, "a drained partition is forgotten");
        let mut stored = None;
        in_flight.finished(2, 0, |offset| stored = Some(offset));
        assert_eq!(stored, None, "a late ack of a revoked partition stores nothing");
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
