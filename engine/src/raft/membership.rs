//! The membership as the log defines it (Raft thesis 4.1): a member always uses the latest
//! membership in its log, committed or not. This keeps the membership entries above the
//! snapshot, so a truncation falls back to the one before, and a compaction (or a snapshot sent
//! to a follower) knows the membership in effect at its index.
//!
//! Proposing changes (one at a time, through a joint membership for voters) is the leader's
//! business, in `membership_change.rs`.

use super::types::{LogIndex, Membership};

/// The membership entries of the log above its base.
#[derive(Debug)]
pub(crate) struct MembershipLog {
    /// The membership in effect at `base_index`: the snapshot's, or the bootstrap membership
    /// (the configuration's voters) at index 0.
    base: Membership,
    base_index: LogIndex,
    /// Membership entries above `base_index`, in index order.
    changes: Vec<(LogIndex, Membership)>,
    /// Bumped whenever the latest membership may have changed, so the leader knows to resync
    /// its per-member progress.
    version: u64,
}

impl MembershipLog {
    pub(crate) fn new(base: Membership, base_index: LogIndex) -> Self {
        Self {
            base,
            base_index,
            changes: Vec::new(),
            version: 0,
        }
    }

    /// The membership in effect now: the latest in the log.
    pub(crate) fn latest(&self) -> &Membership {
        self.changes
            .last()
            .map_or(&self.base, |(_, membership)| membership)
    }

    /// The index of the entry that set the latest membership (the base index when no entry
    /// above the base did).
    pub(crate) fn latest_index(&self) -> LogIndex {
        self.changes
            .last()
            .map_or(self.base_index, |(index, _)| *index)
    }

    /// The membership in effect at `index` (for `index` at or above the base).
    pub(crate) fn at(&self, index: LogIndex) -> &Membership {
        let count = self.changes.partition_point(|(at, _)| *at <= index);
        match count.checked_sub(1) {
            Some(last) => &self.changes[last].1,
            None => &self.base,
        }
    }

    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// A membership entry was appended at `index` (above every one held).
    pub(crate) fn appended(&mut self, index: LogIndex, membership: Membership) {
        debug_assert!(index > self.latest_index());
        self.changes.push((index, membership));
        self.version += 1;
    }

    /// The log lost every entry at or after `from`: so did its membership entries.
    pub(crate) fn truncated(&mut self, from: LogIndex) {
        let keep = self.changes.partition_point(|(at, _)| *at < from);
        if keep < self.changes.len() {
            self.changes.truncate(keep);
            self.version += 1;
        }
    }

    /// The log's prefix through `index` was compacted: the membership at `index` becomes the
    /// base.
    pub(crate) fn compacted(&mut self, index: LogIndex) {
        if index <= self.base_index {
            return;
        }
        self.base = self.at(index).clone();
        self.base_index = index;
        let dropped = self.changes.partition_point(|(at, _)| *at <= index);
        self.changes.drain(..dropped);
    }

    /// The whole log was replaced by a snapshot at `index` with `membership`.
    pub(crate) fn reset(&mut self, index: LogIndex, membership: Membership) {
        self.base = membership;
        self.base_index = index;
        self.changes.clear();
        self.version += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(voters: &[u64]) -> Membership {
        Membership::with_voters(voters)
    }

    #[test]
    fn latest_at_truncate_and_compact_follow_the_entries() {
        let mut log = MembershipLog::new(of(&[1, 2, 3]), 0);
        log.appended(5, of(&[1, 2, 3, 4]));
        log.appended(9, of(&[2, 3, 4]));
        assert_eq!(log.latest(), &of(&[2, 3, 4]));
        assert_eq!(log.latest_index(), 9);
        assert_eq!(log.at(4), &of(&[1, 2, 3]));
        assert_eq!(log.at(5), &of(&[1, 2, 3, 4]));
        assert_eq!(log.at(8), &of(&[1, 2, 3, 4]));
        let version = log.version();
        log.truncated(9);
        assert!(log.version() > version);
        assert_eq!(log.latest(), &of(&[1, 2, 3, 4]));
        log.compacted(7);
        assert_eq!(log.latest(), &of(&[1, 2, 3, 4]));
        assert_eq!(log.latest_index(), 7);
        log.truncated(8);
        assert_eq!(
            log.latest(),
            &of(&[1, 2, 3, 4]),
            "the base survives truncation"
        );
        log.reset(20, of(&[7]));
        assert_eq!(log.latest(), &of(&[7]));
        assert_eq!(log.at(20), &of(&[7]));
    }
}
