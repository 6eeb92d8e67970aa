//! The follower's side of log replication (section 5.3): the consistency check on
//! `prev_log_index`, conflict resolution that truncates only a conflicting suffix, the fast
//! backtracking hints, and learning the commit index.

use super::types::{Entry, LogIndex, MessageBody, NodeId, Term};
use super::{Bug, Raft, StepError};

impl Raft {
    pub(super) fn handle_append_request(
        &mut self,
        from: NodeId,
        prev_log_index: LogIndex,
        prev_log_term: Term,
        mut entries: Vec<Entry>,
        leader_commit: LogIndex,
    ) -> Result<(), StepError> {
        let request_last = prev_log_index + entries.len() as LogIndex;
        let committed = self.log.committed;
        let (prev_log_index, prev_log_term) = if prev_log_index < committed {
            // Our committed prefix matches every later leader's log (5.4.3): skip that part.
            let skip = (committed - prev_log_index).min(entries.len() as LogIndex) as usize;
            entries.drain(..skip);
            let committed_term = self.log.term(committed).unwrap_or(0);
            // What remains continues our committed entry, so its terms may not be lower.
            if entries
                .first()
                .is_some_and(|entry| entry.term < committed_term)
            {
                let reason =
                    format!("entries below the term {committed_term} of commit {committed}");
                return Err(StepError::Malformed { from, reason });
            }
            (committed, committed_term)
        } else {
            (prev_log_index, prev_log_term)
        };
        if let Some(rejection) = self.check_consistency(prev_log_index, prev_log_term) {
            self.send(from, rejection);
            return Ok(());
        }
        self.merge_entries(from, entries)?;
        let match_index = request_last.max(committed);
        // Only what is known to match the leader may be learned committed.
        self.log.commit_to(leader_commit.min(match_index));
        let body = MessageBody::AppendResponse {
            success: true,
            match_index,
            conflict_index: 0,
            conflict_term: None,
        };
        self.send(from, body);
        Ok(())
    }

    /// Section 5.3's check: we must hold `prev_log_index` with `prev_log_term`. On failure,
    /// the rejection carries where the leader should retry from.
    fn check_consistency(
        &self,
        prev_log_index: LogIndex,
        prev_log_term: Term,
    ) -> Option<MessageBody> {
        let (conflict_index, conflict_term) = match self.log.term(prev_log_index) {
            None => (self.log.last_index() + 1, None),
            Some(term) if term != prev_log_term => {
                let first = self
                    .log
                    .first_index_of_term(term)
                    .max(self.log.committed + 1);
                (first.min(prev_log_index), Some(term))
            }
            Some(_) => return None,
        };
        Some(MessageBody::AppendResponse {
            success: false,
            match_index: 0,
            conflict_index,
            conflict_term,
        })
    }

    /// Appends what we lack; truncates our log only from the first entry whose term differs
    /// (a stale or duplicate request whose entries all match changes nothing).
    fn merge_entries(&mut self, from: NodeId, entries: Vec<Entry>) -> Result<(), StepError> {
        let mut first_new = entries.len();
        let mut conflict = None;
        for (offset, entry) in entries.iter().enumerate() {
            match self.log.term(entry.index) {
                Some(term) if term == entry.term => continue,
                Some(_) => conflict = Some(entry.index),
                None => {}
            }
            first_new = offset;
            break;
        }
        if let Some(index) = conflict {
            if index <= self.log.committed {
                let reason = format!("entry {index} conflicts with the committed prefix");
                return Err(StepError::Malformed { from, reason });
            }
            let kept_suffix = self.conflicting_suffix_to_keep(&entries);
            self.log.truncate(index);
            entries
                .into_iter()
                .skip(first_new)
                .for_each(|entry| self.log.append(entry));
            kept_suffix
                .into_iter()
                .for_each(|entry| self.log.append(entry));
            return Ok(());
        }
        entries
            .into_iter()
            .skip(first_new)
            .for_each(|entry| self.log.append(entry));
        Ok(())
    }

    /// Planted bug `KeepConflictingSuffix`: our entries beyond the request's last survive the
    /// truncation and are re-appended after the new entries. Empty in a correct build.
    fn conflicting_suffix_to_keep(&self, entries: &[Entry]) -> Vec<Entry> {
        if !self.bug(Bug::KeepConflictingSuffix) {
            return Vec::new();
        }
        let Some(request_last) = entries.last().map(|entry| entry.index) else {
            return Vec::new();
        };
        (request_last + 1..=self.log.last_index())
            .filter_map(|index| self.log.entry(index).cloned())
            .collect()
    }

    /// A heartbeat from our leader: learn its commit index (already capped by the leader at
    /// what it knows we match) and echo the read round.
    pub(super) fn handle_heartbeat(
        &mut self,
        from: NodeId,
        leader_commit: LogIndex,
        read_round: u64,
    ) {
        self.log.commit_to(leader_commit.min(self.log.last_index()));
        self.send(from, MessageBody::HeartbeatResponse { read_round });
    }
}
