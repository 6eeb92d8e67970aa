//! The in-memory view of the replicated log, with the cursors that say how much of it the driver
//! has been handed to persist, has made durable, is known committed, and has applied.
//!
//! Invariants (under correct operation): `applied <= handed_to_apply <= committed <= last`,
//! `persisted <= handed_to_persist <= last`, entry `i` sits at position `i - 1`, and terms never
//! decrease along the log (which is what lets term lookups use binary search).

use super::types::{Entry, LogIndex, Term};

/// The whole log (compaction comes later) and its cursors.
#[derive(Debug)]
pub(crate) struct RaftLog {
    entries: Vec<Entry>,
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
}

/// Position of `index` in the entry vector, if it can be one.
fn position(index: LogIndex) -> Option<usize> {
    usize::try_from(index.checked_sub(1)?).ok()
}

impl RaftLog {
    /// A log recovered from durable storage: everything in it is already persisted.
    pub(crate) fn recovered(entries: Vec<Entry>, committed: LogIndex) -> Self {
        let last = entries.len() as LogIndex;
        Self {
            entries,
            committed,
            applied: 0,
            persisted: last,
            handed_to_persist: last,
            handed_to_apply: 0,
            truncate_from: None,
        }
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        self.entries.len() as LogIndex
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries.last().map_or(0, |entry| entry.term)
    }

    /// The term of the entry at `index`; index 0 (before the log) has term 0.
    pub(crate) fn term(&self, index: LogIndex) -> Option<Term> {
        if index == 0 {
            return Some(0);
        }
        self.entry(index).map(|entry| entry.term)
    }

    pub(crate) fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.entries.get(position(index)?)
    }

    /// Section 5.4.1: a candidate's log is at least as up to date as ours when its last term is
    /// higher, or equal with a last index at least ours.
    pub(crate) fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        let own_term = self.last_term();
        last_term > own_term || (last_term == own_term && last_index >= self.last_index())
    }

    /// The first index holding `term` (binary search: terms never decrease along the log).
    pub(crate) fn first_index_of_term(&self, term: Term) -> LogIndex {
        self.entries.partition_point(|entry| entry.term < term) as LogIndex + 1
    }

    /// The last index holding `term`, if any entry has it.
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
        let Some(start) = position(first).filter(|start| *start < self.entries.len()) else {
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
        self.entries.push(entry);
    }

    /// Deletes every entry at or after `index`, and records the truncation for the driver when
    /// any deleted entry had already been handed to it.
    pub(crate) fn truncate(&mut self, index: LogIndex) {
        let Some(keep) = position(index) else { return };
        if keep >= self.entries.len() {
            return;
        }
        self.entries.truncate(keep);
        let kept_last = keep as LogIndex;
        if index <= self.handed_to_persist {
            self.truncate_from = Some(self.truncate_from.map_or(index, |from| from.min(index)));
            self.handed_to_persist = kept_last;
        }
        self.persisted = self.persisted.min(kept_last);
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

    /// True when a `Ready` would carry entries or a truncation to persist.
    pub(crate) fn has_unstable(&self) -> bool {
        self.truncate_from.is_some() || self.handed_to_persist < self.last_index()
    }

    /// True when a `Ready` would carry committed entries to apply.
    pub(crate) fn has_committed_to_apply(&self) -> bool {
        self.handed_to_apply < self.committed
    }

    /// Hands the pending truncation and the entries not yet handed out to the driver.
    pub(crate) fn take_unstable(&mut self) -> (Option<LogIndex>, Vec<Entry>) {
        let start = self.handed_to_persist as usize;
        let entries = self.entries[start..].to_vec();
        self.handed_to_persist = self.last_index();
        (self.truncate_from.take(), entries)
    }

    /// Hands the committed entries not yet handed out to the driver to apply.
    pub(crate) fn take_committed(&mut self) -> Vec<Entry> {
        let start = self.handed_to_apply as usize;
        let end = self.committed.min(self.last_index()) as usize;
        if end <= start {
            return Vec::new();
        }
        self.handed_to_apply = end as LogIndex;
        self.entries[start..end].to_vec()
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
        RaftLog::recovered(entries, 0)
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
        let (truncate_from, entries) = log.take_unstable();
        assert_eq!(truncate_from, Some(2));
        assert!(entries.is_empty());
    }
}
