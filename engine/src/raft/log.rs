//! The in-memory view of the replicated log, with the cursors that say how much of it the driver
//! has been handed to persist, has made durable, is known committed, and has applied.
//!
//! The log starts after a snapshot (paper section 7): entries through `snapshot.index` were
//! compacted away; only the snapshot's index and term are kept (the consistency check needs
//! them) and its membership (in `membership`). Without a snapshot the base is index 0, term 0.
//!
//! Invariants (under correct operation): `snapshot.index <= applied <= handed_to_apply <=
//! committed <= last`, `persisted <= handed_to_persist <= last`, entry `i` sits at position
//! `i - snapshot.index - 1`, and terms never decrease along the log (which is what lets term
//! lookups use binary search). `persisted` may lie below the snapshot index right after a
//! snapshot was installed and before the driver reported it durable.

use super::membership::MembershipLog;
use super::types::{Entry, LogIndex, Membership, Payload, SnapshotMeta, Term};

/// The log above the snapshot, its cursors, and its membership entries.
#[derive(Debug)]
pub(crate) struct RaftLog {
    /// The snapshot the log starts after (index 0, term 0 before any).
    snapshot_index: LogIndex,
    snapshot_term: Term,
    entries: Vec<Entry>,
    pub(crate) membership: MembershipLog,
    /// Highest index known committed.
    pub(crate) committed: LogIndex,
    /// Highest index the driver reported applied.
    pub(crate) applied: LogIndex,
    /// Highest index the driver reported durable (and still in our log with that term).
    pub(crate) persisted: LogIndex,
    /// Entries through here were handed to the driver to persist in some `Ready`.
    handed_to_persist: LogIndex,
    /// Committed entries through here were handed to the driver to apply.
    handed_to_apply: LogIndex,
    /// A truncation not yet handed to the driver: delete from here before appending.
    truncate_from: Option<LogIndex>,
    /// A snapshot installed from the leader, not yet handed to the driver.
    snapshot_to_install: Option<SnapshotMeta>,
}

impl RaftLog {
    /// A log recovered from durable storage (a snapshot, or the bootstrap membership, then
    /// entries): everything in it is already persisted, the snapshot already applied.
    pub(crate) fn recovered(
        snapshot: Option<SnapshotMeta>,
        bootstrap: Membership,
        entries: Vec<Entry>,
        committed: LogIndex,
    ) -> Self {
        let (snapshot_index, snapshot_term, base) = match snapshot {
            Some(meta) => (meta.index, meta.term, meta.membership),
            None => (0, 0, bootstrap),
        };
        let mut membership = MembershipLog::new(base, snapshot_index);
        for entry in &entries {
            if let Payload::Membership(change) = &entry.payload {
                membership.appended(entry.index, change.clone());
            }
        }
        let last = snapshot_index + entries.len() as LogIndex;
        Self {
            snapshot_index,
            snapshot_term,
            entries,
            membership,
            committed: committed.max(snapshot_index).min(last),
            applied: snapshot_index,
            persisted: last,
            handed_to_persist: last,
            handed_to_apply: snapshot_index,
            truncate_from: None,
            snapshot_to_install: None,
        }
    }

    /// Position of `index` in `entries`, if it can be one.
    fn position(&self, index: LogIndex) -> Option<usize> {
        usize::try_from(index.checked_sub(self.snapshot_index + 1)?).ok()
    }

    /// The index of the snapshot the log starts after (0 when none).
    pub(crate) fn snapshot_index(&self) -> LogIndex {
        self.snapshot_index
    }

    /// The snapshot the log starts after: its index, term and membership.
    pub(crate) fn snapshot_meta(&self) -> SnapshotMeta {
        SnapshotMeta {
            index: self.snapshot_index,
            term: self.snapshot_term,
            membership: self.membership.at(self.snapshot_index).clone(),
        }
    }

    /// The first index whose entry the log holds (one past the snapshot).
    pub(crate) fn first_index(&self) -> LogIndex {
        self.snapshot_index + 1
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        self.snapshot_index + self.entries.len() as LogIndex
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries
            .last()
            .map_or(self.snapshot_term, |entry| entry.term)
    }

    /// The term of the entry at `index`: known for the snapshot's index and every entry after
    /// it (index 0, before the log, has term 0); `None` for compacted or missing entries.
    pub(crate) fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        self.entry(index).map(|entry| entry.term)
    }

    pub(crate) fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.entries.get(self.position(index)?)
    }

    /// Section 5.4.1: a candidate's log is at least as up to date as ours when its last term is
    /// higher, or equal with a last index at least ours.
    pub(crate) fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        let own_term = self.last_term();
        last_term > own_term || (last_term == own_term && last_index >= self.last_index())
    }

    /// The first index of the log above the snapshot holding `term` or a later one (binary
    /// search: terms never decrease along the log).
    pub(crate) fn first_index_of_term(&self, term: Term) -> LogIndex {
        self.entries.partition_point(|entry| entry.term < term) as LogIndex + self.first_index()
    }

    /// The last index holding `term`, if any entry above the snapshot has it.
    pub(crate) fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        let count = self.entries.partition_point(|entry| entry.term <= term);
        let last = self.entries.get(count.checked_sub(1)?)?;
        (last.term == term).then_some(last.index)
    }

    /// Up to `count_max` entries from `first`, stopping before `bytes_max` payload bytes would be
    /// exceeded (the first entry always goes, so one large entry is never stuck).
    pub(crate) fn entries_from(
        &self,
        first: LogIndex,
        count_max: usize,
        bytes_max: usize,
    ) -> Vec<Entry> {
        let Some(start) = self
            .position(first)
            .filter(|start| *start < self.entries.len())
        else {
            return Vec::new();
        };
        let end = start.saturating_add(count_max).min(self.entries.len());
        let mut bytes = 0usize;
        let mut taken = Vec::with_capacity(end - start);
        for entry in &self.entries[start..end] {
            bytes = bytes.saturating_add(entry.payload_bytes());
            if !taken.is_empty() && bytes > bytes_max {
                break;
            }
            taken.push(entry.clone());
        }
        taken
    }

    /// Appends one entry at `last_index() + 1` (callers guarantee the index).
    pub(crate) fn append(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        if let Payload::Membership(membership) = &entry.payload {
            self.membership.appended(entry.index, membership.clone());
        }
        self.entries.push(entry);
    }

    /// Deletes every entry at or after `index`, and records the truncation for the driver when
    /// any deleted entry had already been handed to it. Never cuts into the snapshot.
    pub(crate) fn truncate(&mut self, index: LogIndex) {
        let Some(keep) = self.position(index) else {
            return;
        };
        if keep >= self.entries.len() {
            return;
        }
        self.entries.truncate(keep);
        self.membership.truncated(index);
        let kept_last = self.last_index();
        if index <= self.handed_to_persist {
            self.truncate_from = Some(self.truncate_from.map_or(index, |from| from.min(index)));
            self.handed_to_persist = kept_last;
        }
        self.persisted = self.persisted.min(kept_last);
    }

    /// The driver holds a durable snapshot covering `index` (applied): drop the entries through
    /// it. Returns false, changing nothing, unless `index` lies in `snapshot_index..=applied`.
    pub(crate) fn compact(&mut self, index: LogIndex) -> bool {
        if index <= self.snapshot_index {
            return true;
        }
        if index > self.applied {
            return false;
        }
        let Some(term) = self.term(index) else {
            return false;
        };
        let drop_count = (index - self.snapshot_index) as usize;
        self.entries.drain(..drop_count);
        self.membership.compacted(index);
        self.snapshot_index = index;
        self.snapshot_term = term;
        true
    }

    /// Replaces the whole log by the leader's snapshot (paper section 7): every entry goes, the
    /// snapshot is committed and, once the driver installs it, applied. The driver is handed
    /// the snapshot in the next `Ready`; nothing of the old log is reported durable again.
    pub(crate) fn install_snapshot(&mut self, meta: SnapshotMeta) {
        self.entries.clear();
        self.truncate_from = None;
        self.snapshot_index = meta.index;
        self.snapshot_term = meta.term;
        self.membership.reset(meta.index, meta.membership.clone());
        self.committed = meta.index;
        self.applied = meta.index;
        self.handed_to_apply = meta.index;
        self.handed_to_persist = meta.index;
        // Not durable until the driver says so (the old durable log may hold other entries at
        // these indexes).
        self.persisted = 0;
        self.snapshot_to_install = Some(meta);
    }

    pub(crate) fn commit_to(&mut self, index: LogIndex) {
        if index > self.committed {
            self.committed = index.min(self.last_index());
        }
    }

    /// The driver made everything through `index` durable. Ignored when our entry at `index`
    /// no longer has `term` (the report predates a truncation) or was never handed out.
    pub(crate) fn persisted_to(&mut self, index: LogIndex, term: Term) {
        if index == 0 || self.term(index) != Some(term) {
            return;
        }
        if self.snapshot_to_install.is_some() {
            // The snapshot is not handed out yet: this report is about the old log.
            return;
        }
        let durable = index.min(self.handed_to_persist);
        self.persisted = self.persisted.max(durable);
    }

    pub(crate) fn applied_to(&mut self, index: LogIndex) {
        self.applied = self.applied.max(index.min(self.handed_to_apply));
    }

    /// Entries through here were handed to the driver to persist.
    pub(crate) fn handed_to_persist(&self) -> LogIndex {
        self.handed_to_persist
    }

    /// True when a `Ready` would carry a snapshot, entries or a truncation to persist.
    pub(crate) fn has_unstable(&self) -> bool {
        self.snapshot_to_install.is_some()
            || self.truncate_from.is_some()
            || self.handed_to_persist < self.last_index()
    }

    /// True when a `Ready` would carry committed entries to apply.
    pub(crate) fn has_committed_to_apply(&self) -> bool {
        self.handed_to_apply < self.committed
    }

    /// Hands the snapshot to install, the pending truncation and the entries not yet handed
    /// out to the driver.
    pub(crate) fn take_unstable(&mut self) -> (Option<SnapshotMeta>, Option<LogIndex>, Vec<Entry>) {
        let start = self
            .position(self.handed_to_persist + 1)
            .unwrap_or(0)
            .min(self.entries.len());
        let entries = self.entries[start..].to_vec();
        self.handed_to_persist = self.last_index();
        (
            self.snapshot_to_install.take(),
            self.truncate_from.take(),
            entries,
        )
    }

    /// Hands the committed entries not yet handed out to the driver to apply.
    pub(crate) fn take_committed(&mut self) -> Vec<Entry> {
        let end_index = self.committed.min(self.last_index());
        if end_index <= self.handed_to_apply {
            return Vec::new();
        }
        let (Some(start), Some(end)) = (
            self.position(self.handed_to_apply + 1),
            self.position(end_index),
        ) else {
            return Vec::new();
        };
        self.handed_to_apply = end_index;
        self.entries[start..=end].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::Payload;

    fn log_with_terms(terms: &[Term]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(position, term)| Entry {
                index: position as LogIndex + 1,
                term: *term,
                payload: Payload::Noop,
            })
            .collect();
        RaftLog::recovered(None, Membership::with_voters(&[1, 2, 3]), entries, 0)
    }

    #[test]
    fn term_searches_find_the_first_and_last_index_of_a_term() {
        let log = log_with_terms(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(log.first_index_of_term(2), 3);
        assert_eq!(log.last_index_of_term(2), Some(5));
        assert_eq!(log.last_index_of_term(3), None);
        assert_eq!(log.last_index_of_term(4), Some(6));
        assert_eq!(log.term(0), Some(0));
        assert_eq!(log.term(7), None);
        assert_eq!(log.term(u64::MAX), None);
    }

    #[test]
    fn truncating_handed_entries_is_reported_and_lowers_persisted() {
        let mut log = log_with_terms(&[1, 1, 1]);
        log.truncate(2);
        assert_eq!(log.last_index(), 1);
        assert_eq!(log.persisted, 1);
        let (snapshot, truncate_from, entries) = log.take_unstable();
        assert_eq!(snapshot, None);
        assert_eq!(truncate_from, Some(2));
        assert!(entries.is_empty());
    }

    #[test]
    fn compaction_keeps_the_term_of_its_index_and_refuses_unapplied_entries() {
        let mut log = log_with_terms(&[1, 1, 2, 2, 3]);
        log.commit_to(5);
        assert!(!log.compact(3), "nothing is applied yet");
        log.take_committed();
        log.applied_to(4);
        assert!(!log.compact(5), "entry 5 is not applied");
        assert!(log.compact(3));
        assert_eq!(log.first_index(), 4);
        assert_eq!(log.term(3), Some(2));
        assert_eq!(log.term(2), None);
        assert_eq!(log.entry(4).map(|entry| entry.term), Some(2));
        assert_eq!(log.first_index_of_term(2), 4);
        assert_eq!(log.last_index_of_term(3), Some(5));
        assert_eq!(log.entries_from(2, 10, 1 << 20), Vec::new());
        assert_eq!(log.entries_from(4, 10, 1 << 20).len(), 2);
        log.truncate(2);
        assert_eq!(
            log.last_index(),
            5,
            "a truncation never cuts into the snapshot"
        );
    }

    #[test]
    fn an_installed_snapshot_replaces_the_log_and_is_handed_out_once() {
        let mut log = log_with_terms(&[1, 1, 2]);
        let meta = SnapshotMeta {
            index: 9,
            term: 4,
            membership: Membership::with_voters(&[1, 2, 3]),
        };
        log.install_snapshot(meta.clone());
        assert_eq!((log.last_index(), log.last_term()), (9, 4));
        assert_eq!((log.committed, log.applied), (9, 9));
        log.persisted_to(3, 2);
        assert_eq!(
            log.persisted, 0,
            "old entries are not durable in the new log"
        );
        let (snapshot, truncate_from, entries) = log.take_unstable();
        assert_eq!(snapshot, Some(meta));
        assert_eq!(truncate_from, None);
        assert!(entries.is_empty());
        assert!(log.take_committed().is_empty());
        log.persisted_to(9, 4);
        assert_eq!(log.persisted, 9);
    }
}
