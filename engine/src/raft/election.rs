//! Elections (section 5.2, 5.4.1) with pre-vote (thesis 9.6) and the role changes they cause.

use super::quorum::{self, VoteResult};
use super::types::{Entry, Message, MessageBody, NodeId, Payload, Role, Term};
use super::{Bug, Raft, ReadOutcome};

impl Raft {
    /// A follower or candidate that hears from no leader for its randomized timeout campaigns,
    /// if it is a voter: learners, removed members and members still waiting to learn their
    /// cluster never do (thesis 4.2.1, 4.2.3).
    pub(super) fn tick_election(&mut self) {
        self.election_elapsed_ticks += 1;
        if self.election_elapsed_ticks >= self.election_timeout_ticks {
            if !self.may_campaign() {
                // It does not campaign, but it stops believing in a leader it no longer hears:
                // otherwise it would ignore vote requests for ever, and a member promoted
                // while cut off, whose vote a joint quorum needs, would block every election.
                self.become_follower(self.term, None);
                return;
            }
            if self.config.pre_vote {
                self.become_pre_candidate();
            } else {
                self.become_candidate(false);
            }
        }
    }

    /// Thesis 6.2: a follower that heard from a leader within the minimum election timeout (or a
    /// leader, which checks its own quorum) believes a leader is alive and ignores vote requests.
    ///
    /// A member restarted (with a durable term) less than a minimum election timeout ago counts
    /// as having heard from a leader: it may have acknowledged a heartbeat just before it
    /// crashed, and a leader serving lease reads relies on that (thesis 6.4.1). A member that
    /// never had a term never acknowledged a leader (acknowledgements carrying a just-adopted
    /// term leave after it is durable).
    pub(super) fn in_leader_lease(&self) -> bool {
        if !self.config.check_quorum {
            return false;
        }
        let timeout_min = self.config.election_timeout_ticks_min;
        match self.role {
            Role::Leader => true,
            _ => {
                let just_restarted = self.restarted && self.now_ticks < timeout_min;
                let may_follow_a_live_leader = self.leader.is_some() || just_restarted;
                may_follow_a_live_leader && self.election_elapsed_ticks < timeout_min
            }
        }
    }

    /// A leader (for itself) or a follower that heard from its leader within the minimum
    /// election timeout.
    pub(super) fn heard_from_leader_recently(&self) -> bool {
        self.role == Role::Leader
            || (self.leader.is_some()
                && self.election_elapsed_ticks < self.config.election_timeout_ticks_min)
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed_ticks = 0;
        self.election_timeout_ticks = self.rng.range(
            self.config.election_timeout_ticks_min,
            self.config.election_timeout_ticks_max,
        );
    }

    /// Becomes a follower in `term` (adopting it when newer: 5.1), following `leader` if known.
    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if self.role == Role::Leader {
            self.fail_pending_reads(leader);
        }
        if term > self.term {
            self.term = term;
            self.voted_for = None;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.transfer = None;
        self.reset_election_timer();
    }

    /// Thesis 9.6: ask whether an election could be won before disturbing anyone with a new term.
    fn become_pre_candidate(&mut self) {
        let Some(campaign_term) = self.term.checked_add(1) else {
            self.reset_election_timer();
            return;
        };
        self.role = Role::PreCandidate;
        self.leader = None;
        self.reset_election_timer();
        self.start_tally();
        if self.tally() == VoteResult::Won {
            self.become_candidate(false);
            return;
        }
        self.request_votes(campaign_term, true, false);
    }

    /// Section 5.2: a new term, a vote for ourselves (durable before the requests leave: they go
    /// out after persist), then RequestVote to every other voter.
    pub(super) fn become_candidate(&mut self, leadership_transfer: bool) {
        let Some(campaign_term) = self.term.checked_add(1) else {
            self.reset_election_timer();
            return;
        };
        self.term = campaign_term;
        self.voted_for = Some(self.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.reset_election_timer();
        self.start_tally();
        if self.tally() == VoteResult::Won {
            self.become_leader();
            return;
        }
        self.request_votes(campaign_term, false, leadership_transfer);
    }

    fn request_votes(&mut self, campaign_term: Term, pre_vote: bool, leadership_transfer: bool) {
        let last_log_index = self.log.last_index();
        let last_log_term = self.log.last_term();
        for to in self.membership().all_voters() {
            if to == self.id {
                continue;
            }
            let body = MessageBody::VoteRequest {
                pre_vote,
                last_log_index,
                last_log_term,
                leadership_transfer,
            };
            self.send_with_term(to, campaign_term, body);
        }
    }

    fn start_tally(&mut self) {
        self.votes.clear();
        self.votes.insert(self.id, true);
    }

    /// The campaign's outcome so far, under the membership in effect (joint: both majorities).
    fn tally(&self) -> VoteResult {
        quorum::vote_result(self.membership(), |voter| self.votes.get(&voter).copied())
    }

    /// Section 5.2 and 5.4.1: one vote per term, first come first served, and only for a log at
    /// least as up to date as ours. A pre-vote is granted to any later term with such a log and
    /// records nothing.
    pub(super) fn handle_vote_request(&mut self, message: &Message) {
        let MessageBody::VoteRequest {
            pre_vote,
            last_log_index,
            last_log_term,
            ..
        } = message.body
        else {
            return;
        };
        let from = message.from;
        let can_vote = self.voted_for == Some(from)
            || (self.voted_for.is_none() && self.leader.is_none())
            || (pre_vote && message.term > self.term);
        let up_to_date =
            self.log.is_up_to_date(last_log_index, last_log_term) || self.bug(Bug::VoteForStaleLog);
        if !(can_vote && up_to_date) {
            self.send(
                from,
                MessageBody::VoteResponse {
                    pre_vote,
                    granted: false,
                },
            );
            return;
        }
        if !pre_vote {
            self.voted_for = Some(from);
            self.election_elapsed_ticks = 0;
        }
        self.send_with_term(
            from,
            message.term,
            MessageBody::VoteResponse {
                pre_vote,
                granted: true,
            },
        );
    }

    /// Counts a vote of the current (pre-)campaign; a majority wins, a majority against ends it.
    pub(super) fn handle_vote_response(&mut self, message: &Message) {
        let MessageBody::VoteResponse { pre_vote, granted } = message.body else {
            return;
        };
        let expected_term = match (self.role, pre_vote, granted) {
            (Role::PreCandidate, true, true) => self.term.checked_add(1),
            (Role::PreCandidate, true, false) | (Role::Candidate, false, _) => Some(self.term),
            _ => None,
        };
        if expected_term != Some(message.term) {
            return;
        }
        if !self.membership().is_voter(message.from) {
            return;
        }
        self.votes.entry(message.from).or_insert(granted);
        match self.tally() {
            VoteResult::Won if pre_vote => self.become_candidate(false),
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    /// Section 5.2/5.3: the winner leads; it appends a Noop of its term so that earlier entries
    /// can commit (5.4.2) and ReadIndex can serve (thesis 6.4).
    pub(super) fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.transfer = None;
        self.timeout_now_sent = false;
        self.heartbeat_elapsed_ticks = 0;
        self.check_quorum_elapsed_ticks = 0;
        let next_index = self.log.last_index() + 1;
        self.progress.clear();
        self.sync_progress();
        self.reads.reset_rounds();
        let entry = Entry {
            index: next_index,
            term: self.term,
            payload: Payload::Noop,
        };
        self.log.append(entry);
        self.after_leader_append();
    }

    /// Fails every waiting read: leadership is lost, so none can be confirmed here.
    pub(super) fn fail_pending_reads(&mut self, leader_hint: Option<NodeId>) {
        for id in self.reads.drain_all() {
            self.out
                .reads
                .push(ReadOutcome::NotLeader { id, leader_hint });
        }
    }
}
