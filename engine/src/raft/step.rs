//! Receiving a message: check it is well formed (nothing from the network may panic the core or
//! change its state when refused), apply the term rules of figure 2, then hand it to the role's
//! handler.

use super::types::{Entry, LogIndex, Message, MessageBody, Role, Term};
use super::{Raft, StepError};

impl Raft {
    pub(super) fn step_message(&mut self, message: Message) -> Result<(), StepError> {
        self.validate_message(&message)?;
        if message.term > self.term {
            if !self.on_higher_term(&message) {
                return Ok(());
            }
        } else if message.term < self.term {
            self.on_lower_term(&message);
            return Ok(());
        }
        let from = message.from;
        self.dispatch(message)?;
        if self.role == Role::Leader {
            let now_ticks = self.now_ticks;
            if let Some(progress) = self.progress.get_mut(&from) {
                progress.last_heard_tick = now_ticks;
            }
        }
        Ok(())
    }

    /// Refuses what no correct peer sends, before anything changes.
    fn validate_message(&self, message: &Message) -> Result<(), StepError> {
        let from = message.from;
        if message.to != self.id {
            return Err(StepError::WrongRecipient {
                from,
                to: message.to,
                me: self.id,
            });
        }
        if from == self.id {
            return Err(malformed(from, "a message from this node to itself".into()));
        }
        if from == 0 {
            return Err(StepError::UnknownSender { from });
        }
        // A sender this node does not know is not refused: its membership may predate the
        // sender's addition (a lagging follower must still accept the new leader). Answers
        // from non-members change nothing (no progress, no vote counted).
        match &message.body {
            MessageBody::AppendRequest {
                prev_log_index,
                prev_log_term,
                entries,
                ..
            } => validate_entries(message.term, *prev_log_index, *prev_log_term, entries)
                .map_err(|reason| malformed(from, reason)),
            MessageBody::VoteRequest { last_log_term, .. } if *last_log_term > message.term => {
                Err(malformed(
                    from,
                    format!("last_log_term {last_log_term} beyond term {}", message.term),
                ))
            }
            MessageBody::InstallSnapshot { snapshot } => {
                validate_snapshot(message.term, snapshot).map_err(|reason| malformed(from, reason))
            }
            _ => Ok(()),
        }
    }

    /// A message from a later term. Returns whether to go on handling it.
    fn on_higher_term(&mut self, message: &Message) -> bool {
        match message.body {
            MessageBody::VoteRequest {
                pre_vote,
                leadership_transfer,
                last_log_index,
                last_log_term,
            } => {
                // Thesis 4.2.3: a voter removed by a membership it never learned keeps
                // campaigning; adopting its terms would depose every leader of the new
                // membership. A voter not in this member's latest membership gets no hearing.
                // A lagging receiver may not know a newly added candidate yet; it is ignored
                // too, which is safe and costs no liveness: a majority of any membership in
                // effect knows its own voters.
                let membership = self.membership();
                if !membership.voters.is_empty() && !membership.is_voter(message.from) {
                    return false;
                }
                // Thesis 6.2/9.6: while a leader is known to be alive, a vote request is a
                // disruption by a partitioned node; ignore it unless the leader itself asked
                // (TimeoutNow). Pre-votes get this rule even without check-quorum: refusing
                // one only delays an election, never affects safety.
                let leader_alive =
                    self.in_leader_lease() || (pre_vote && self.heard_from_leader_recently());
                if leader_alive && !leadership_transfer {
                    return false;
                }
                if pre_vote {
                    // A pre-vote never changes our term (thesis 9.6).
                    self.handle_vote_request(message);
                    return false;
                }
                // Figure 2: only hearing the leader or granting a vote restarts the election
                // timer. A candidate whose log is behind gets no vote, so it keeps the timer
                // running: restarting it on each of the stale candidate's terms could keep an
                // up-to-date member from ever campaigning (a livelock with two voters).
                let stale_candidate = !self.log.is_up_to_date(last_log_index, last_log_term);
                let timer = (self.election_elapsed_ticks, self.election_timeout_ticks);
                let was_leader = self.role == Role::Leader;
                self.become_follower(message.term, None);
                if stale_candidate && !was_leader {
                    (self.election_elapsed_ticks, self.election_timeout_ticks) = timer;
                }
                true
            }
            // Granted pre-votes carry the term we would campaign in, not the voter's term.
            MessageBody::VoteResponse {
                pre_vote: true,
                granted: true,
            } => {
                self.handle_vote_response(message);
                false
            }
            MessageBody::AppendRequest { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                self.become_follower(message.term, Some(message.from));
                true
            }
            // A response (or TimeoutNow) of a later term names no leader of it. A follower that
            // may count toward a leader's lease drops it: adopting the term would forget that
            // leader and let it vote at once (thesis 6.4.1). Dropping equals losing it.
            _ if self.role == Role::Follower && self.in_leader_lease() => false,
            _ => {
                self.become_follower(message.term, None);
                true
            }
        }
    }

    /// A message from an earlier term: answer so a stale leader or candidate learns our term and
    /// steps down (needed with pre-vote and check-quorum, which otherwise hide it); drop the rest.
    fn on_lower_term(&mut self, message: &Message) {
        match message.body {
            MessageBody::AppendRequest { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                let body = MessageBody::AppendResponse {
                    success: false,
                    match_index: 0,
                    conflict_index: 0,
                    conflict_term: None,
                };
                self.send(message.from, body);
            }
            MessageBody::VoteRequest { pre_vote, .. } => {
                self.send(
                    message.from,
                    MessageBody::VoteResponse {
                        pre_vote,
                        granted: false,
                    },
                );
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, message: Message) -> Result<(), StepError> {
        let from = message.from;
        match message.body {
            MessageBody::VoteRequest { .. } => self.handle_vote_request(&message),
            MessageBody::VoteResponse { .. } => self.handle_vote_response(&message),
            MessageBody::AppendRequest {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => {
                self.accept_leader(from)?;
                self.handle_append_request(
                    from,
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                )?;
            }
            MessageBody::Heartbeat {
                leader_commit,
                read_round,
            } => {
                self.accept_leader(from)?;
                self.handle_heartbeat(from, leader_commit, read_round);
            }
            MessageBody::AppendResponse {
                success,
                match_index,
                conflict_index,
                conflict_term,
            } => {
                if self.role == Role::Leader {
                    self.handle_append_response(
                        from,
                        success,
                        match_index,
                        conflict_index,
                        conflict_term,
                    )?;
                }
            }
            MessageBody::HeartbeatResponse { read_round } => {
                if self.role == Role::Leader {
                    self.handle_heartbeat_response(from, read_round);
                }
            }
            MessageBody::TimeoutNow => {
                if self.role == Role::Follower && self.leader == Some(from) && self.may_campaign() {
                    self.become_candidate(true);
                }
            }
            MessageBody::InstallSnapshot { snapshot } => {
                self.accept_leader(from)?;
                self.handle_install_snapshot(from, snapshot);
            }
        }
        Ok(())
    }

    /// An AppendRequest or Heartbeat in our term comes from that term's only leader: follow it.
    /// Two leaders in one term is impossible, so such a message is refused.
    fn accept_leader(&mut self, from: super::NodeId) -> Result<(), StepError> {
        if self.role == Role::Leader || self.leader.is_some_and(|leader| leader != from) {
            return Err(malformed(
                from,
                format!("a second leader in term {}", self.term),
            ));
        }
        if self.role != Role::Follower || self.leader.is_none() {
            self.become_follower(self.term, Some(from));
        }
        self.election_elapsed_ticks = 0;
        Ok(())
    }
}

fn malformed(from: super::NodeId, reason: String) -> StepError {
    StepError::Malformed { from, reason }
}

/// A snapshot's term may not exceed the sender's, it covers at least one entry, and its
/// membership is well formed.
fn validate_snapshot(term: Term, snapshot: &super::SnapshotMeta) -> Result<(), String> {
    if snapshot.term > term || snapshot.term == 0 || snapshot.index == 0 {
        return Err(format!(
            "snapshot at index {} with term {} (sender's term {term})",
            snapshot.index, snapshot.term
        ));
    }
    snapshot
        .membership
        .validate()
        .map_err(|reason| format!("snapshot membership: {reason}"))
}

/// Entries must continue `prev_log_index` one by one, with terms that never decrease, start at
/// or after `prev_log_term` and never exceed the sender's term.
fn validate_entries(
    term: Term,
    prev_log_index: LogIndex,
    prev_log_term: Term,
    entries: &[Entry],
) -> Result<(), String> {
    if prev_log_term > term {
        return Err(format!("prev_log_term {prev_log_term} beyond term {term}"));
    }
    if prev_log_index == 0 && prev_log_term != 0 {
        return Err(format!(
            "prev_log_index 0 with prev_log_term {prev_log_term}"
        ));
    }
    if prev_log_index.checked_add(entries.len() as u64).is_none() {
        return Err("entries run past the largest index".into());
    }
    let mut previous_term = prev_log_term;
    for (offset, entry) in entries.iter().enumerate() {
        let expected = prev_log_index + 1 + offset as u64;
        if entry.index != expected {
            return Err(format!(
                "entry index {} where {expected} was expected",
                entry.index
            ));
        }
        if entry.term < previous_term || entry.term > term || entry.term == 0 {
            return Err(format!(
                "entry {} has term {} out of order (term {term})",
                entry.index, entry.term
            ));
        }
        previous_term = entry.term;
    }
    Ok(())
}
