//! The Raft core against the claims of the Raft paper (Ongaro and Ousterhout, 2014) and the
//! Raft thesis (Ongaro, 2014): one claim per test, each naming the section it checks.

mod common;

use bytes::Bytes;
use common::{
    config, figure_8_commits_old_entry_early, lease_read_served_after_followers_went_silent,
    recovered_with_terms, Cluster,
};
use tern_engine::raft::{
    Config, Entry, HardState, Message, MessageBody, Payload, ProposeError, Raft, ReadConsistency,
    ReadError, ReadOutcome, Recovered, Role, StepError,
};

fn message(from: u64, to: u64, term: u64, body: MessageBody) -> Message {
    Message {
        from,
        to,
        term,
        body,
    }
}

fn vote_request(from: u64, term: u64, last_log_index: u64, last_log_term: u64) -> Message {
    let body = MessageBody::VoteRequest {
        pre_vote: false,
        last_log_index,
        last_log_term,
        leadership_transfer: false,
    };
    message(from, 1, term, body)
}

fn append(
    from: u64,
    term: u64,
    prev: (u64, u64),
    entries: &[(u64, u64)],
    leader_commit: u64,
) -> Message {
    let entries = entries
        .iter()
        .map(|(index, term)| Entry {
            index: *index,
            term: *term,
            payload: Payload::Command(Bytes::from_static(b"c")),
        })
        .collect();
    let body = MessageBody::AppendRequest {
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries,
        leader_commit,
    };
    message(from, 1, term, body)
}

/// Node 1 of a 3-node cluster restarted from a log of the given terms at `current_term`.
/// Check-quorum is off (tweak can turn it on): with it, a member that just started ignores
/// vote requests for an election timeout, which the vote-rule tests do not want.
fn member_with_log(terms: &[u64], current_term: u64, tweak: impl Fn(&mut Config)) -> Raft {
    let mut config = Config {
        check_quorum: false,
        ..config(1, 3)
    };
    tweak(&mut config);
    Raft::new(config, recovered_with_terms(terms, current_term)).expect("valid")
}

/// All vote responses node 1 queued, as (to, granted).
fn vote_answers(ready: &tern_engine::raft::Ready) -> Vec<(u64, bool)> {
    ready
        .messages
        .iter()
        .chain(&ready.messages_after_persist)
        .filter_map(|message| match message.body {
            MessageBody::VoteResponse { granted, .. } => Some((message.to, granted)),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Elections (section 5.2) and terms (section 5.1)
// ---------------------------------------------------------------------------------------------

#[test]
fn election_timeout_is_drawn_within_its_range_and_varies() {
    // Reference: Raft paper section 5.2: election timeouts are chosen randomly from a fixed
    // interval, so that split votes are rare. Every draw lies in [min, max), and members with
    // different ids (or seeds) do not all draw the same value.
    let mut draws = std::collections::BTreeSet::new();
    for seed in 0..20 {
        for id in 1..=5 {
            let mut config = config(id, 5);
            config.seed = seed;
            let raft = Raft::new(config, Recovered::default()).unwrap();
            let timeout = raft.election_timeout_ticks();
            assert!(
                (10..20).contains(&timeout),
                "timeout {timeout} outside [10, 20)"
            );
            draws.insert(timeout);
        }
    }
    assert!(draws.len() > 3, "timeouts barely vary: {draws:?}");
}

#[test]
fn follower_campaigns_exactly_when_its_timeout_elapses() {
    // Reference: Raft paper section 5.2: a follower that receives no communication for its
    // election timeout becomes a candidate, increments its term and votes for itself.
    let mut raft = Raft::new(
        Config {
            pre_vote: false,
            ..config(1, 3)
        },
        Recovered::default(),
    )
    .unwrap();
    let timeout = raft.election_timeout_ticks();
    for _ in 0..timeout - 1 {
        raft.tick();
    }
    assert_eq!(raft.status().role, Role::Follower);
    raft.tick();
    let status = raft.status();
    assert_eq!(
        (status.role, status.term, status.voted_for),
        (Role::Candidate, 1, Some(1))
    );
}

#[test]
fn candidate_requests_votes_only_after_its_term_and_vote_are_durable() {
    // Reference: Raft paper figure 2 ("persistent state ... updated on stable storage before
    // responding to RPCs"): the new term and self-vote are in the Ready's hard state and the
    // RequestVotes wait in messages_after_persist.
    let mut raft = Raft::new(
        Config {
            pre_vote: false,
            ..config(1, 3)
        },
        Recovered::default(),
    )
    .unwrap();
    for _ in 0..raft.election_timeout_ticks() {
        raft.tick();
    }
    let ready = raft.ready();
    assert_eq!(
        ready.hard_state.map(|state| (state.term, state.voted_for)),
        Some((1, Some(1)))
    );
    assert!(ready.messages.is_empty());
    let requests = ready
        .messages_after_persist
        .iter()
        .filter(|message| {
            matches!(
                message.body,
                MessageBody::VoteRequest {
                    pre_vote: false,
                    ..
                }
            )
        })
        .count();
    assert_eq!(requests, 2);
}

#[test]
fn candidate_with_a_majority_becomes_leader_and_appends_a_noop() {
    // Reference: Raft paper section 5.2 (a candidate wins with votes from a majority) and
    // thesis section 6.4 (a new leader commits a blank entry of its term).
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    assert_eq!(cluster.role(1), Role::Leader);
    assert_eq!(cluster.role(2), Role::Follower);
    let noop = cluster.node(1).entry(1).cloned().expect("noop entry");
    assert_eq!((noop.index, noop.term, noop.payload), (1, 1, Payload::Noop));
    assert_eq!(cluster.commit(1), 1);
    cluster.tick_all(2); // the next heartbeat tells the followers
    assert_eq!(cluster.commit(2), 1);
}

#[test]
fn voter_grants_at_most_one_vote_per_term() {
    // Reference: Raft paper section 5.2: each server votes for at most one candidate in a
    // term, first come first served.
    let mut raft = member_with_log(&[], 0, |_| {});
    raft.step(vote_request(2, 1, 0, 0)).unwrap();
    raft.step(vote_request(3, 1, 0, 0)).unwrap();
    raft.step(vote_request(2, 1, 0, 0)).unwrap();
    let ready = raft.ready();
    assert_eq!(vote_answers(&ready), vec![(2, true), (3, false), (2, true)]);
    assert_eq!(raft.status().voted_for, Some(2));
}

#[test]
fn granted_vote_leaves_only_after_it_is_durable() {
    // Reference: Raft paper figure 2: votedFor is persisted before the vote is answered, so the
    // grant is in messages_after_persist of the Ready whose hard state records it.
    let mut raft = member_with_log(&[], 0, |_| {});
    raft.step(vote_request(2, 1, 0, 0)).unwrap();
    let ready = raft.ready();
    assert_eq!(ready.hard_state.map(|state| state.voted_for), Some(Some(2)));
    assert!(ready.messages.is_empty());
    assert!(matches!(
        ready.messages_after_persist[0].body,
        MessageBody::VoteResponse {
            pre_vote: false,
            granted: true
        }
    ));
}

#[test]
fn a_restarted_voter_remembers_its_vote_and_does_not_vote_twice() {
    // Reference: Raft paper figure 2 (votedFor is persistent state) and section 5.2: the
    // vote survives a crash, so a second candidate of the same term is refused after restart.
    let configure = |id| Config {
        check_quorum: false,
        ..config(id, 3)
    };
    let mut cluster = Cluster::with(3, configure);
    let request = |from| {
        let body = MessageBody::VoteRequest {
            pre_vote: false,
            last_log_index: 0,
            last_log_term: 0,
            leadership_transfer: false,
        };
        message(from, 1, 1, body)
    };
    cluster.node(1).step(request(2)).unwrap();
    cluster.process(1);
    cluster.restart(1, configure);
    assert_eq!(cluster.node(1).status().voted_for, Some(2));
    cluster.node(1).step(request(3)).unwrap();
    let answers = vote_answers(&cluster.node(1).ready());
    assert_eq!(answers, vec![(3, false)]);
}

#[test]
fn at_most_one_leader_is_elected_per_term() {
    // Reference: Raft paper section 5.2 (Election Safety, figure 3): through repeated
    // partitions of a 5-member cluster, no two members ever lead the same term, and the
    // randomized timeouts let some member win after each disruption.
    let mut cluster = Cluster::with(5, |id| Config {
        pre_vote: false,
        check_quorum: true,
        ..config(id, 5)
    });
    let mut leaders_by_term = std::collections::BTreeMap::new();
    for round in 0..30u64 {
        cluster.heal();
        cluster.isolate(round % 5 + 1);
        if round % 3 == 0 {
            cluster.isolate((round + 2) % 5 + 1);
        }
        for _ in 0..25 {
            cluster.tick_all(1);
            for id in 1..=5 {
                let status = cluster.node(id).status();
                if status.role == Role::Leader {
                    let first = *leaders_by_term.entry(status.term).or_insert(id);
                    assert_eq!(first, id, "two leaders in term {}", status.term);
                }
            }
        }
    }
    assert!(
        leaders_by_term.len() >= 10,
        "only {} terms had a leader",
        leaders_by_term.len()
    );
}

#[test]
fn voter_refuses_a_candidate_whose_log_is_less_up_to_date() {
    // Reference: Raft paper section 5.4.1: the voter denies its vote if its own log is more up
    // to date: a later last term wins; with equal last terms, the longer log wins.
    // Voter log: terms [1, 1, 2] (last term 2, last index 3).
    let cases = [
        // (candidate last index, last term, granted)
        (5, 1, false), // lower last term, even if longer
        (2, 2, false), // same last term, shorter
        (3, 2, true),  // same last term, same length
        (4, 2, true),  // same last term, longer
        (1, 3, true),  // higher last term, even if shorter
    ];
    for (last_index, last_term, expected) in cases {
        let mut raft = member_with_log(&[1, 1, 2], 2, |_| {});
        raft.step(vote_request(2, 3, last_index, last_term))
            .unwrap();
        let answers = vote_answers(&raft.ready());
        assert_eq!(
            answers,
            vec![(2, expected)],
            "candidate last ({last_index}, {last_term})"
        );
    }
}

#[test]
fn a_higher_term_makes_a_leader_step_down_and_adopt_it() {
    // Reference: Raft paper section 5.1: if a server's term is smaller than another's, it
    // updates its term; a leader that learns of a later term reverts to follower.
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    let heartbeat = MessageBody::Heartbeat {
        leader_commit: 0,
        read_round: 0,
    };
    cluster.node(1).step(message(2, 1, 5, heartbeat)).unwrap();
    let status = cluster.node(1).status();
    assert_eq!(
        (status.role, status.term, status.leader),
        (Role::Follower, 5, Some(2))
    );
}

#[test]
fn a_stale_term_request_is_refused_with_the_current_term() {
    // Reference: Raft paper section 5.1: a request with a stale term number is rejected; the
    // answer carries the current term so the stale sender steps down. The log is unchanged.
    let mut raft = member_with_log(&[1, 2], 3, |_| {});
    raft.step(append(2, 2, (2, 2), &[(3, 2)], 0)).unwrap();
    let ready = raft.ready();
    assert!(ready.entries.is_empty());
    assert_eq!(raft.status().last_index, 2);
    let answer = ready
        .messages
        .iter()
        .chain(&ready.messages_after_persist)
        .next()
        .expect("an answer");
    assert_eq!(answer.term, 3);
    assert!(matches!(
        answer.body,
        MessageBody::AppendResponse { success: false, .. }
    ));
}

#[test]
fn candidate_returns_to_follower_on_append_from_a_leader_of_its_term() {
    // Reference: Raft paper section 5.2: a candidate that receives AppendEntries from a leader
    // whose term is at least its own recognizes it and returns to follower.
    let mut raft = member_with_log(&[], 0, |config| config.pre_vote = false);
    for _ in 0..raft.election_timeout_ticks() {
        raft.tick();
    }
    assert_eq!(raft.status().role, Role::Candidate);
    raft.step(append(2, 1, (0, 0), &[(1, 1)], 0)).unwrap();
    let status = raft.status();
    assert_eq!(
        (status.role, status.term, status.leader),
        (Role::Follower, 1, Some(2))
    );
}

// ---------------------------------------------------------------------------------------------
// Log replication (section 5.3)
// ---------------------------------------------------------------------------------------------

#[test]
fn committed_entries_are_applied_in_the_same_order_everywhere() {
    // Reference: Raft paper section 5.3: once an entry is replicated on a majority the leader
    // commits it, followers learn the commit index, and every member applies the same entries
    // in log order.
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    let (first, last, term) = cluster.propose(1, &["a", "b", "c"]);
    assert_eq!((first, last, term), (2, 4, 1));
    cluster.settle();
    cluster.tick_all(2); // a heartbeat carries the final commit index to the followers
    for id in 1..=3 {
        assert_eq!(cluster.commit(id), 4, "node {id}");
        let applied: Vec<(u64, u64)> = cluster.applied[id as usize - 1]
            .iter()
            .map(|e| (e.index, e.term))
            .collect();
        assert_eq!(applied, vec![(1, 1), (2, 1), (3, 1), (4, 1)], "node {id}");
    }
}

#[test]
fn leader_retries_until_lost_appends_are_replicated() {
    // Reference: Raft paper section 5.3: "if network packets are lost, the leader retries
    // AppendEntries RPCs indefinitely". With a window of one request, the requests carrying a
    // new entry are lost to both followers; after the network heals (and with no further
    // proposals) the entry still commits everywhere.
    let mut cluster = Cluster::with(3, |id| Config {
        inflight_messages_max: 1,
        append_entries_max: 1,
        ..config(id, 3)
    });
    cluster.elect(1);
    cluster.tick_all(2);
    cluster.cut.insert((1, 2));
    cluster.cut.insert((1, 3));
    let (_, last, _) = cluster.propose(1, &["lost"]);
    cluster.settle();
    cluster.heal();
    cluster.tick_all(40);
    assert_eq!(cluster.role(1), Role::Leader);
    for id in 1..=3 {
        assert_eq!(cluster.commit(id), last, "node {id}");
    }
}

#[test]
fn follower_rejects_append_whose_previous_entry_it_lacks() {
    // Reference: Raft paper section 5.3 (consistency check) with the fast-backtracking hint:
    // a follower whose log is too short answers conflict_index = its last index + 1 and no term.
    let mut raft = member_with_log(&[1, 1], 1, |_| {});
    raft.step(append(2, 2, (5, 2), &[(6, 2)], 0)).unwrap();
    let ready = raft.ready();
    let answer = ready
        .messages_after_persist
        .first()
        .or(ready.messages.first())
        .expect("answer");
    assert_eq!(
        answer.body,
        MessageBody::AppendResponse {
            success: false,
            match_index: 0,
            conflict_index: 3,
            conflict_term: None
        }
    );
    assert_eq!(raft.status().last_index, 2);
}

#[test]
fn rejection_names_the_conflicting_term_and_its_first_index() {
    // Reference: Raft paper section 5.3 ("the follower can include the term of the conflicting
    // entry and the first index it stores for that term").
    let mut raft = member_with_log(&[1, 2, 2, 2], 2, |_| {});
    raft.step(append(2, 3, (4, 3), &[], 0)).unwrap();
    let ready = raft.ready();
    let answer = ready
        .messages_after_persist
        .first()
        .or(ready.messages.first())
        .expect("answer");
    assert_eq!(
        answer.body,
        MessageBody::AppendResponse {
            success: false,
            match_index: 0,
            conflict_index: 2,
            conflict_term: Some(2)
        }
    );
}

#[test]
fn conflicting_suffix_is_truncated_and_replaced_by_the_leaders_entries() {
    // Reference: Raft paper section 5.3: if an existing entry conflicts with a new one (same
    // index, different terms), delete it and all that follow, then append the new entries.
    let mut raft = member_with_log(&[1, 1, 2, 2], 2, |_| {});
    raft.step(append(2, 3, (2, 1), &[(3, 3)], 0)).unwrap();
    let ready = raft.ready();
    assert_eq!(ready.truncate_from, Some(3));
    assert_eq!(
        ready
            .entries
            .iter()
            .map(|e| (e.index, e.term))
            .collect::<Vec<_>>(),
        vec![(3, 3)]
    );
    let log: Vec<_> = (1..=raft.status().last_index)
        .map(|i| raft.entry(i).unwrap().term)
        .collect();
    assert_eq!(log, vec![1, 1, 3]);
}

#[test]
fn stale_append_whose_entries_match_does_not_truncate() {
    // Reference: Raft paper section 5.3 / figure 2 ("if an existing entry conflicts ..."): only
    // a conflict truncates. A delayed or duplicated request whose entries all match must not
    // cut off the later entries the follower already holds (and may have acknowledged).
    let mut raft = member_with_log(&[1, 1, 1, 1, 1], 1, |_| {});
    raft.step(append(2, 1, (1, 1), &[(2, 1)], 0)).unwrap();
    let ready = raft.ready();
    assert_eq!(ready.truncate_from, None);
    assert!(ready.entries.is_empty());
    assert_eq!(raft.status().last_index, 5);
    assert!(ready.messages_after_persist.iter().any(|m| matches!(
        m.body,
        MessageBody::AppendResponse {
            success: true,
            match_index: 2,
            ..
        }
    )));
}

#[test]
fn follower_acknowledges_entries_only_after_persisting_them() {
    // Reference: Raft thesis section 10.2.1 / paper figure 2: the success answer travels in
    // messages_after_persist of the very Ready that carries the entries to persist.
    let mut raft = member_with_log(&[], 1, |_| {});
    raft.step(append(2, 1, (0, 0), &[(1, 1), (2, 1)], 0))
        .unwrap();
    let ready = raft.ready();
    assert_eq!(ready.entries.len(), 2);
    assert!(!ready
        .messages
        .iter()
        .any(|m| matches!(m.body, MessageBody::AppendResponse { .. })));
    assert_eq!(
        ready.messages_after_persist[0].body,
        MessageBody::AppendResponse {
            success: true,
            match_index: 2,
            conflict_index: 0,
            conflict_term: None
        }
    );
}

#[test]
fn follower_learns_commit_only_up_to_what_matches_the_leader() {
    // Reference: Raft paper figure 2 (AppendEntries step 5): commitIndex = min(leaderCommit,
    // index of last new entry): entries beyond the request are not known to match the leader.
    let mut raft = member_with_log(&[1, 1, 1, 1, 1], 1, |_| {});
    raft.step(append(2, 2, (1, 1), &[(2, 1)], 5)).unwrap();
    assert_eq!(raft.status().commit_index, 2);
}

#[test]
fn a_leader_never_overwrites_or_deletes_its_own_entries() {
    // Reference: Raft paper figure 3 (Leader Append-Only): an AppendRequest claiming to come
    // from another leader of the same term is refused, and the leader's log is unchanged.
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    cluster.propose(1, &["a"]);
    let before = cluster.log_of(1);
    let forged = Message {
        to: 1,
        ..append(2, 1, (0, 0), &[(1, 1)], 0)
    };
    assert!(matches!(
        cluster.node(1).step(forged),
        Err(StepError::Malformed { .. })
    ));
    assert_eq!(cluster.log_of(1), before);
    assert_eq!(cluster.role(1), Role::Leader);
}

#[test]
fn a_follower_never_removes_committed_entries() {
    // Reference: Raft paper section 5.4 (State Machine Safety): an entry known committed is
    // never replaced, even by a request whose entries below the commit index disagree.
    let mut raft = member_with_log(&[1, 1, 1], 1, |_| {});
    raft.step(append(2, 1, (0, 0), &[(1, 1), (2, 1), (3, 1)], 3))
        .unwrap();
    assert_eq!(raft.status().commit_index, 3);
    raft.ready();
    raft.step(append(3, 9, (1, 1), &[(2, 9), (3, 9), (4, 9)], 3))
        .unwrap();
    let terms: Vec<u64> = (1..=raft.status().last_index)
        .map(|i| raft.entry(i).unwrap().term)
        .collect();
    assert_eq!(terms[..3], [1, 1, 1]);
    assert_eq!(raft.ready().truncate_from, None);
}

#[test]
fn leader_backtracks_over_a_whole_conflicting_term_in_one_step() {
    // Reference: Raft paper section 5.3 (optimization at the end): with the conflict hints the
    // leader skips all conflicting entries of a term at once instead of one index per round
    // trip. Follower 2 holds 20 entries of a stale term 2 after a common prefix of 1 entry.
    let mut stale_terms = vec![1];
    stale_terms.extend(std::iter::repeat_n(2, 20));
    let recovered = vec![
        recovered_with_terms(&[1, 3], 3),
        recovered_with_terms(&stale_terms, 3),
        recovered_with_terms(&[1, 3], 3),
    ];
    // Check-quorum off: restarted members would ignore the campaign for an election timeout.
    let mut cluster = Cluster::recovered(
        3,
        |id| Config {
            check_quorum: false,
            ..config(id, 3)
        },
        recovered,
    );
    cluster.isolate(3);
    cluster.elect(1);
    assert_eq!(cluster.role(1), Role::Leader);
    let rejections = cluster
        .sent
        .iter()
        .filter(|m| {
            m.from == 2 && matches!(m.body, MessageBody::AppendResponse { success: false, .. })
        })
        .count();
    assert!(
        rejections <= 2,
        "{rejections} rejections: backtracking went index by index"
    );
    assert_eq!(cluster.log_of(2), cluster.log_of(1));
}

#[test]
fn leader_counts_itself_only_once_its_own_persist_covers_the_index() {
    // Reference: Raft thesis section 10.2.1: the leader sends entries before writing them
    // itself, but its own vote for an index counts only after its write is durable. With
    // follower 3 cut off and the leader's disk held back, follower 2's ack alone is 1 of 3.
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    cluster.isolate(3);
    cluster.hold_persist(1);
    let (_, last, _) = cluster.propose(1, &["x"]);
    cluster.settle();
    assert!(
        cluster.disks[1].entries.len() as u64 >= last,
        "follower 2 persisted the entry"
    );
    assert!(
        cluster.commit(1) < last,
        "committed before the leader's own persist"
    );
    cluster.release_persist(1);
    cluster.settle();
    assert_eq!(cluster.commit(1), last);
}

#[test]
fn single_member_commits_only_after_its_persist() {
    // Reference: Raft thesis section 10.2.1 (a one-member majority is the leader itself, so
    // nothing commits until on_persisted covers the entry).
    let mut raft = Raft::new(config(1, 1), Recovered::default()).unwrap();
    for _ in 0..raft.election_timeout_ticks() {
        raft.tick();
    }
    assert_eq!(raft.status().role, Role::Leader);
    let ready = raft.ready();
    assert_eq!(ready.entries.len(), 1);
    assert_eq!(raft.status().commit_index, 0);
    raft.on_persisted(1, 1);
    assert_eq!(raft.status().commit_index, 1);
}

// ---------------------------------------------------------------------------------------------
// The commitment rule (section 5.4.2, figure 8)
// ---------------------------------------------------------------------------------------------

#[test]
fn old_term_entry_on_a_majority_is_not_committed_until_a_current_term_entry_is() {
    // Reference: Raft paper section 5.4.2 and figure 8: a leader never commits an entry of an
    // earlier term by counting replicas; it commits it only indirectly, once an entry of its
    // own term is on a majority.
    let (early, observed) = figure_8_commits_old_entry_early(|_| {});
    assert!(
        observed,
        "the scenario never put the old entry on a majority alone"
    );
    assert!(
        !early,
        "an old-term entry was committed by counting replicas"
    );
}

// ---------------------------------------------------------------------------------------------
// Proposals
// ---------------------------------------------------------------------------------------------

#[test]
fn proposals_are_refused_by_followers_and_when_too_many_wait() {
    // Reference: Raft paper section 8 (clients talk to the leader; others redirect), and the
    // uncommitted_entries_max backpressure bound.
    let mut cluster = Cluster::with(3, |id| Config {
        uncommitted_entries_max: 3,
        ..config(id, 3)
    });
    cluster.elect(1);
    let refused = cluster.node(2).propose(vec![Bytes::from_static(b"a")]);
    assert_eq!(
        refused,
        Err(ProposeError::NotLeader {
            leader_hint: Some(1)
        })
    );
    assert_eq!(cluster.node(1).propose(vec![]), Err(ProposeError::Empty));
    cluster.isolate(1);
    cluster.propose(1, &["a", "b"]);
    let refused = cluster
        .node(1)
        .propose(vec![Bytes::from_static(b"c"), Bytes::from_static(b"d")]);
    assert!(
        matches!(
            refused,
            Err(ProposeError::Backpressure {
                uncommitted: 2,
                max: 3
            })
        ),
        "{refused:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration and hostile input
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_configuration_and_inconsistent_recovered_state_are_refused() {
    // Reference: the design's "limits are explicit" rule: a member never starts from a config
    // or durable state that could break safety.
    let bad_config = Config {
        election_timeout_ticks_max: 5,
        ..config(1, 3)
    };
    assert!(Raft::new(bad_config, Recovered::default()).is_err());
    let gap = Recovered {
        hard_state: HardState {
            term: 1,
            voted_for: None,
            commit: 0,
        },
        snapshot: None,
        entries: vec![Entry {
            index: 2,
            term: 1,
            payload: Payload::Noop,
        }],
    };
    assert!(Raft::new(config(1, 3), gap).is_err());
    let commit_beyond = Recovered {
        hard_state: HardState {
            term: 1,
            voted_for: None,
            commit: 3,
        },
        snapshot: None,
        entries: vec![],
    };
    assert!(Raft::new(config(1, 3), commit_beyond).is_err());
    let term_beyond = recovered_with_terms(&[1, 5], 2);
    assert!(Raft::new(config(1, 3), term_beyond).is_err());
}

#[test]
fn malformed_messages_are_refused_without_changing_state() {
    // Reference: Raft paper figure 2 assumes well-formed RPCs; the core must not trust the
    // network: a refused message leaves term, vote and log as they were.
    let mut raft = member_with_log(&[1, 1], 1, |_| {});
    let before = raft.status();
    let wrong_to = Message {
        to: 9,
        ..append(2, 1, (2, 1), &[], 0)
    };
    assert!(matches!(
        raft.step(wrong_to),
        Err(StepError::WrongRecipient { .. })
    ));
    assert!(matches!(
        raft.step(append(0, 9, (2, 1), &[], 0)),
        Err(StepError::UnknownSender { from: 0 })
    ));
    let gap = append(2, 9, (2, 1), &[(4, 1)], 0);
    assert!(matches!(raft.step(gap), Err(StepError::Malformed { .. })));
    let decreasing = append(2, 9, (2, 1), &[(3, 5), (4, 4)], 0);
    assert!(matches!(
        raft.step(decreasing),
        Err(StepError::Malformed { .. })
    ));
    let overflow = append(2, 9, (u64::MAX, 1), &[(0, 1)], 0);
    assert!(matches!(
        raft.step(overflow),
        Err(StepError::Malformed { .. })
    ));
    assert_eq!(raft.status(), before);
}

// ---------------------------------------------------------------------------------------------
// Pre-vote (thesis section 9.6) and check-quorum (thesis section 6.2)
// ---------------------------------------------------------------------------------------------

#[test]
fn partitioned_member_with_pre_vote_does_not_raise_its_term() {
    // Reference: Raft thesis section 9.6: a member that cannot win (it is cut off) never
    // passes the pre-vote, so its term does not grow, and on rejoining it does not depose the
    // leader.
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    cluster.isolate(3);
    cluster.tick_all(100);
    assert_eq!(cluster.term(3), 1);
    cluster.heal();
    cluster.tick_all(20);
    assert_eq!(cluster.leader(), Some(1));
    assert_eq!(cluster.term(1), 1);
}

#[test]
fn rejoining_member_with_an_up_to_date_log_does_not_disrupt_a_live_leader() {
    // Reference: Raft thesis section 9.6: a pre-vote is granted only by a member that has not
    // heard from a leader within the election timeout, so a member returning from a partition
    // (here with a log as up to date as everyone's, and check-quorum off) cannot start a new
    // term while the leader is alive.
    let mut cluster = Cluster::with(3, |id| Config {
        check_quorum: false,
        ..config(id, 3)
    });
    cluster.elect(1);
    cluster.tick_all(2);
    cluster.isolate(3);
    for _ in 0..25 {
        cluster.node(3).tick(); // node 3 alone times out and keeps asking for pre-votes
        cluster.settle();
    }
    assert_eq!(cluster.role(3), Role::PreCandidate);
    cluster.heal();
    let ticks = cluster.node(3).election_timeout_ticks();
    for _ in 0..ticks {
        cluster.node(3).tick();
    }
    cluster.settle();
    assert_eq!(cluster.term(1), 1, "the leader was deposed");
    assert_eq!(cluster.leader(), Some(1));
}

#[test]
fn partitioned_member_without_pre_vote_does_raise_its_term() {
    // Reference: Raft thesis section 9.6 (the problem pre-vote solves): without it the cut-off
    // member campaigns again and again, each time in a new term. This is the contrast that
    // shows the previous test can fail.
    let mut cluster = Cluster::with(3, |id| Config {
        pre_vote: false,
        ..config(id, 3)
    });
    cluster.elect(1);
    cluster.isolate(3);
    cluster.tick_all(100);
    assert!(cluster.term(3) > 2, "term {}", cluster.term(3));
}

#[test]
fn pre_vote_is_granted_without_changing_the_voters_term_or_vote() {
    // Reference: Raft thesis section 9.6: a pre-vote asks "would you vote for me?" and the
    // answer changes no state: no term adoption, no recorded vote.
    let mut raft = member_with_log(&[1], 1, |_| {});
    let body = MessageBody::VoteRequest {
        pre_vote: true,
        last_log_index: 1,
        last_log_term: 1,
        leadership_transfer: false,
    };
    raft.step(message(2, 1, 2, body)).unwrap();
    let ready = raft.ready();
    assert_eq!(raft.status().term, 1);
    assert_eq!(raft.status().voted_for, None);
    assert_eq!(ready.hard_state, None);
    let answer = ready.messages.first().expect("answer");
    assert_eq!(
        (answer.term, &answer.body),
        (
            2,
            &MessageBody::VoteResponse {
                pre_vote: true,
                granted: true
            }
        )
    );
}

#[test]
fn isolated_leader_steps_down_after_an_election_timeout() {
    // Reference: Raft thesis section 6.2 (check-quorum): a leader that has not heard from a
    // majority within an election timeout steps down, so clients stop waiting on it.
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    cluster.isolate(1);
    for _ in 0..9 {
        cluster.node(1).tick();
    }
    assert_eq!(
        cluster.role(1),
        Role::Leader,
        "stepped down before an election timeout"
    );
    for _ in 0..11 {
        cluster.node(1).tick();
    }
    assert_eq!(cluster.role(1), Role::Follower);
}

#[test]
fn follower_that_recently_heard_from_its_leader_ignores_vote_requests() {
    // Reference: Raft thesis section 6.2 (the disruptive-server rule with check-quorum): a
    // follower within the minimum election timeout of hearing its leader ignores a vote
    // request of a later term, keeps its term, and does not vote.
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    let request = MessageBody::VoteRequest {
        pre_vote: false,
        last_log_index: 9,
        last_log_term: 1,
        leadership_transfer: false,
    };
    cluster.node(2).step(message(3, 2, 5, request)).unwrap();
    let status = cluster.node(2).status();
    assert_eq!(
        (status.term, status.voted_for, status.leader),
        (1, Some(1), Some(1))
    );
    assert!(!cluster.node(2).has_ready(), "the request was answered");
}

#[test]
fn a_just_restarted_member_ignores_vote_requests_for_an_election_timeout() {
    // Reference: Raft thesis sections 6.2 and 6.4.1: a member may have acknowledged a leader's
    // heartbeat just before it crashed, and that leader's lease counts on it not voting for an
    // election timeout; after a restart it cannot know, so it waits that long in any case.
    let mut raft = member_with_log(&[1], 1, |config| config.check_quorum = true);
    let request = MessageBody::VoteRequest {
        pre_vote: false,
        last_log_index: 1,
        last_log_term: 1,
        leadership_transfer: false,
    };
    raft.step(message(2, 1, 2, request.clone())).unwrap();
    assert_eq!((raft.status().term, raft.status().voted_for), (1, None));
    for _ in 0..10 {
        raft.tick();
    }
    // The timer may have fired meanwhile; a later candidate term still wins the vote.
    let term = raft.status().term + 1;
    raft.step(message(2, 1, term, request)).unwrap();
    assert_eq!(raft.status().voted_for, Some(2));
}

#[test]
fn vote_request_of_a_leadership_transfer_is_granted_despite_a_live_leader() {
    // Reference: Raft thesis section 3.10: a campaign started by TimeoutNow carries a flag so
    // voters that still hear their leader do not refuse it.
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    let request = MessageBody::VoteRequest {
        pre_vote: false,
        last_log_index: 9,
        last_log_term: 1,
        leadership_transfer: true,
    };
    cluster.node(2).step(message(3, 2, 5, request)).unwrap();
    let status = cluster.node(2).status();
    assert_eq!((status.term, status.voted_for), (5, Some(3)));
}

// ---------------------------------------------------------------------------------------------
// Reads (thesis section 6.4, 6.4.1)
// ---------------------------------------------------------------------------------------------

fn lease_config(id: u64) -> Config {
    Config {
        lease_reads: true,
        ..config(id, 3)
    }
}

#[test]
fn read_index_waits_until_the_leader_commits_an_entry_of_its_term() {
    // Reference: Raft thesis section 6.4 step 1: a new leader does not know the latest commit
    // index until an entry of its own term commits, so reads wait for its Noop.
    let mut cluster = Cluster::new(3);
    for _ in 0..cluster.node(1).election_timeout_ticks() {
        cluster.node(1).tick();
    }
    // Deliver one message at a time until node 1 wins; then slow the followers' disks so its
    // Noop cannot commit yet.
    while cluster.role(1) != Role::Leader {
        for id in 1..=3 {
            cluster.process(id);
        }
        assert!(cluster.deliver_one(), "the election stalled");
    }
    cluster.hold_persist(2);
    cluster.hold_persist(3);
    cluster
        .node(1)
        .request_read(7, ReadConsistency::ReadIndex)
        .unwrap();
    cluster.tick_all(4);
    assert!(
        cluster.reads[0].is_empty(),
        "answered before a current-term commit"
    );
    cluster.release_persist(2);
    cluster.release_persist(3);
    cluster.settle();
    cluster.tick_all(2);
    assert_eq!(
        cluster.reads[0],
        vec![ReadOutcome::Ready { id: 7, index: 1 }]
    );
}

#[test]
fn read_index_is_answered_only_after_a_majority_confirms_leadership() {
    // Reference: Raft thesis section 6.4 steps 2-3: the leader records its commit index and
    // answers only after a round of heartbeats is acknowledged by a majority.
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    cluster.tick_all(2);
    cluster.cut.insert((2, 1));
    cluster.cut.insert((3, 1));
    cluster
        .node(1)
        .request_read(1, ReadConsistency::ReadIndex)
        .unwrap();
    cluster.settle();
    assert!(
        cluster.reads[0].is_empty(),
        "answered without a majority's acknowledgement"
    );
    cluster.heal();
    cluster
        .node(1)
        .request_read(2, ReadConsistency::ReadIndex)
        .unwrap();
    cluster.settle();
    let answered: Vec<u64> = cluster.reads[0]
        .iter()
        .filter_map(|read| match read {
            ReadOutcome::Ready { id, index: 1 } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(answered, vec![1, 2]);
}

#[test]
fn read_index_is_answered_only_once_applied_reaches_it() {
    // Reference: Raft thesis section 6.4 step 4: the leader waits for its state machine to
    // advance at least as far as the read index.
    let mut raft = Raft::new(config(1, 1), Recovered::default()).unwrap();
    for _ in 0..raft.election_timeout_ticks() {
        raft.tick();
    }
    raft.ready();
    raft.on_persisted(1, 1);
    let committed = raft.ready().committed_entries;
    assert_eq!(committed.len(), 1);
    raft.request_read(5, ReadConsistency::ReadIndex).unwrap();
    assert!(raft.ready().reads.is_empty(), "answered before apply");
    raft.on_applied(1);
    assert_eq!(
        raft.ready().reads,
        vec![ReadOutcome::Ready { id: 5, index: 1 }]
    );
}

#[test]
fn a_non_leader_answers_reads_with_not_leader() {
    // Reference: Raft thesis section 6.4 (only the leader serves linearizable reads; others
    // redirect to it).
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    cluster
        .node(2)
        .request_read(3, ReadConsistency::ReadIndex)
        .unwrap();
    assert_eq!(
        cluster.node(2).ready().reads,
        vec![ReadOutcome::NotLeader {
            id: 3,
            leader_hint: Some(1)
        }]
    );
}

#[test]
fn lease_reads_are_refused_unless_configured() {
    // Reference: Raft thesis section 6.4.1: leases depend on bounded clock drift, so they are
    // opt-in (lease_reads, which requires check_quorum).
    let mut raft = Raft::new(config(1, 3), Recovered::default()).unwrap();
    assert_eq!(
        raft.request_read(1, ReadConsistency::Lease),
        Err(ReadError::LeaseReadsDisabled)
    );
    let no_check_quorum = Config {
        lease_reads: true,
        check_quorum: false,
        ..config(1, 3)
    };
    assert!(Raft::new(no_check_quorum, Recovered::default()).is_err());
}

#[test]
fn lease_read_is_served_without_a_heartbeat_round_while_the_lease_holds() {
    // Reference: Raft thesis section 6.4.1: within the lease the leader answers without
    // contacting the followers.
    let mut cluster = Cluster::with(3, lease_config);
    cluster.elect(1);
    cluster.tick_all(2); // one acknowledged heartbeat round starts the lease
    let sent_before = cluster.sent.len();
    cluster
        .node(1)
        .request_read(9, ReadConsistency::Lease)
        .unwrap();
    cluster.settle();
    assert_eq!(
        cluster.reads[0],
        vec![ReadOutcome::Ready { id: 9, index: 1 }]
    );
    assert_eq!(
        cluster.sent.len(),
        sent_before,
        "the lease read sent messages"
    );
}

#[test]
fn lease_read_falls_back_to_read_index_once_the_lease_expired() {
    // Reference: Raft thesis section 6.4.1: the lease lasts from the start of the last round a
    // majority acknowledged for election_timeout_min - clock_drift_margin (8 ticks here); after
    // that a lease read must confirm leadership like ReadIndex.
    let mut cluster = Cluster::with(3, lease_config);
    // Stricter than "not served": no answer at all yet, it waits for a confirmed round.
    lease_read_served_after_followers_went_silent(&mut cluster);
    assert!(
        cluster.reads[0].is_empty(),
        "answered from an expired lease"
    );
    // A later acknowledged round confirms it, as for any ReadIndex read.
    cluster.heal();
    cluster
        .node(1)
        .request_read(5, ReadConsistency::ReadIndex)
        .unwrap();
    cluster.settle();
    let expected = vec![
        ReadOutcome::Ready { id: 4, index: 1 },
        ReadOutcome::Ready { id: 5, index: 1 },
    ];
    assert_eq!(cluster.reads[0], expected);
}

#[test]
fn lease_reads_stop_once_a_transfer_has_sent_timeout_now() {
    // Reference: Raft thesis sections 3.10 and 6.4.1: voters grant a TimeoutNow campaign even
    // while they hear the leader, so once the leader has sent TimeoutNow its lease proves
    // nothing: a lease read must confirm leadership with a heartbeat round.
    let mut cluster = Cluster::with(3, lease_config);
    cluster.elect(1);
    cluster.tick_all(2);
    cluster.isolate(2);
    cluster.node(1).transfer_leadership(2).unwrap(); // node 2 is caught up: TimeoutNow (lost)
    let sent_before = cluster.sent.len();
    cluster
        .node(1)
        .request_read(8, ReadConsistency::Lease)
        .unwrap();
    cluster.settle();
    let heartbeats = cluster.sent[sent_before..]
        .iter()
        .filter(|m| m.from == 1 && matches!(m.body, MessageBody::Heartbeat { .. }))
        .count();
    assert!(heartbeats > 0, "served from the lease after TimeoutNow");
    assert_eq!(
        cluster.reads[0],
        vec![ReadOutcome::Ready { id: 8, index: 1 }]
    );
    // Still so after the transfer is abandoned: node 2 may yet campaign with TimeoutNow.
    cluster.tick_all(12);
    assert_eq!(cluster.leader(), Some(1));
    cluster
        .node(1)
        .request_read(9, ReadConsistency::Lease)
        .unwrap();
    let ready = cluster.node(1).ready();
    assert!(
        ready.reads.is_empty(),
        "served from the lease after an abandoned transfer"
    );
    assert!(ready
        .messages
        .iter()
        .any(|m| matches!(m.body, MessageBody::Heartbeat { .. })));
}

#[test]
fn stepping_down_fails_pending_reads_with_not_leader() {
    // Reference: Raft thesis section 6.4: a read can only be confirmed by the leader that
    // took it; once that leadership ends, the read is refused so the client retries elsewhere.
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    cluster.isolate(1);
    cluster
        .node(1)
        .request_read(6, ReadConsistency::ReadIndex)
        .unwrap();
    for _ in 0..12 {
        cluster.node(1).tick();
    }
    cluster.settle();
    assert_eq!(cluster.role(1), Role::Follower);
    assert_eq!(
        cluster.reads[0],
        vec![ReadOutcome::NotLeader {
            id: 6,
            leader_hint: None
        }]
    );
}

// ---------------------------------------------------------------------------------------------
// Leadership transfer (thesis section 3.10)
// ---------------------------------------------------------------------------------------------

#[test]
fn transfer_catches_the_target_up_then_it_wins_the_next_term() {
    // Reference: Raft thesis section 3.10: the leader brings the target's log up to date,
    // sends TimeoutNow, and the target campaigns at once and wins.
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    cluster.isolate(2);
    cluster.propose(1, &["a", "b"]);
    cluster.settle();
    cluster.heal();
    cluster.node(1).transfer_leadership(2).unwrap();
    cluster.settle();
    assert_eq!(cluster.leader(), Some(2));
    assert_eq!(cluster.term(2), 2);
    assert_eq!(cluster.role(1), Role::Follower);
    assert_eq!(cluster.log_of(2)[..3], cluster.log_of(1)[..3]);
}

#[test]
fn proposals_are_refused_during_a_transfer_until_it_is_abandoned() {
    // Reference: Raft thesis section 3.10: the old leader stops accepting requests during the
    // transfer, and resumes if the transfer does not complete within an election timeout.
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    cluster.isolate(2);
    cluster.node(1).transfer_leadership(2).unwrap();
    let refused = cluster.node(1).propose(vec![Bytes::from_static(b"x")]);
    assert_eq!(refused, Err(ProposeError::TransferInProgress));
    for _ in 0..10 {
        cluster.node(1).tick();
        cluster.settle();
    }
    assert_eq!(cluster.role(1), Role::Leader);
    assert!(cluster
        .node(1)
        .propose(vec![Bytes::from_static(b"x")])
        .is_ok());
}

// ---------------------------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------------------------

/// A random message: any kind, with terms and indexes drawn from small, huge and edge values.
fn random_message(rng: &mut tern_engine::raft::rng::SeededRng) -> Message {
    let number = |rng: &mut tern_engine::raft::rng::SeededRng| match rng.range(0, 4) {
        0 => rng.range(0, 4),
        1 => rng.range(0, 30),
        2 => u64::MAX - rng.range(0, 3),
        _ => rng.next_u64(),
    };
    let entries = (0..rng.range(0, 4))
        .map(|_| Entry {
            index: number(rng),
            term: number(rng),
            payload: Payload::Noop,
        })
        .collect();
    let body = match rng.range(0, 8) {
        0 => MessageBody::VoteRequest {
            pre_vote: rng.chance(1, 2),
            last_log_index: number(rng),
            last_log_term: number(rng),
            leadership_transfer: rng.chance(1, 2),
        },
        1 => MessageBody::VoteResponse {
            pre_vote: rng.chance(1, 2),
            granted: rng.chance(1, 2),
        },
        2 => MessageBody::AppendRequest {
            prev_log_index: number(rng),
            prev_log_term: number(rng),
            entries,
            leader_commit: number(rng),
        },
        3 => MessageBody::AppendResponse {
            success: rng.chance(1, 2),
            match_index: number(rng),
            conflict_index: number(rng),
            conflict_term: rng.chance(1, 2).then(|| number(rng)),
        },
        4 => MessageBody::Heartbeat {
            leader_commit: number(rng),
            read_round: number(rng),
        },
        5 => MessageBody::HeartbeatResponse {
            read_round: number(rng),
        },
        _ => MessageBody::TimeoutNow,
    };
    let from = rng.range(0, 5);
    let to = rng.range(1, 4);
    Message {
        from,
        to,
        term: number(rng),
        body,
    }
}

#[test]
fn random_garbage_messages_never_panic_nor_break_the_log() {
    // Reference: Raft paper section 5.3 (log matching) must hold whatever arrives: random
    // messages (unknown senders, absurd terms and indexes, inconsistent entries) mixed into a
    // working cluster, with odd driver calls too, never panic the core; every member's log stays
    // contiguous with terms that never decrease, and its cursors stay ordered.
    let mut refused = 0;
    for seed in 0..5 {
        let mut cluster = Cluster::new(3);
        cluster.elect(1);
        let mut rng = tern_engine::raft::rng::SeededRng::new(2024 + seed);
        for round in 0..5000 {
            let mut message = random_message(&mut rng);
            if rng.chance(1, 2) {
                message.term = rng.range(0, 5); // plausible terms reach the deeper handlers
            }
            let to = message.to;
            if cluster.node(to).step(message).is_err() {
                refused += 1;
            }
            if round % 10 == 0 {
                let id = rng.range(1, 4);
                cluster.tick_all(1);
                let _ = cluster.node(id).propose(vec![Bytes::from_static(b"p")]);
                let _ = cluster
                    .node(id)
                    .request_read(round, ReadConsistency::ReadIndex);
                if rng.chance(1, 10) {
                    let _ = cluster.node(id).transfer_leadership(rng.range(0, 5));
                }
                if rng.chance(1, 10) {
                    let (index, term) = (rng.range(0, 40), rng.range(0, 5));
                    cluster.node(id).on_persisted(index, term);
                    cluster.node(id).on_applied(rng.range(0, 40));
                }
            }
            if round % 100 == 0 {
                check_logs_and_cursors(&mut cluster);
            }
        }
        check_logs_and_cursors(&mut cluster);
    }
    assert!(
        refused > 1000,
        "only {refused} of 25000 garbage messages were refused"
    );
}

fn check_logs_and_cursors(cluster: &mut Cluster) {
    for id in 1..=3 {
        let log = cluster.log_of(id);
        for (position, pair) in log.iter().enumerate() {
            assert_eq!(pair.0, position as u64 + 1, "node {id}: log not contiguous");
        }
        assert!(
            log.windows(2).all(|pair| pair[0].1 <= pair[1].1),
            "node {id}: terms decrease"
        );
        let status = cluster.node(id).status();
        assert!(status.applied_index <= status.commit_index, "{status:?}");
        assert!(status.commit_index <= status.last_index, "{status:?}");
        assert!(status.persisted_index <= status.last_index, "{status:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Durability ordering, batching and pipelining
// ---------------------------------------------------------------------------------------------

#[test]
fn an_adopted_term_is_durable_before_any_answer_carrying_it() {
    // Reference: Raft paper figure 2 (currentTerm is persistent state, updated on stable
    // storage before responding): a follower that adopts a later term from a heartbeat hands
    // the term out as hard state and holds its answer until that is persisted.
    let mut raft = member_with_log(&[1], 1, |_| {});
    raft.step(message(
        2,
        1,
        4,
        MessageBody::Heartbeat {
            leader_commit: 0,
            read_round: 1,
        },
    ))
    .unwrap();
    let ready = raft.ready();
    assert_eq!(ready.hard_state.map(|state| state.term), Some(4));
    assert!(ready.messages.is_empty());
    assert_eq!(
        ready.messages_after_persist[0].body,
        MessageBody::HeartbeatResponse { read_round: 1 }
    );
}

#[test]
fn answers_wait_for_persist_until_an_adopted_term_is_known_durable() {
    // Reference: Raft paper figure 2 (persistent state before responding), across Readies: the
    // driver may send a later Ready's messages before an earlier Ready's write completes, so
    // until on_persisted shows the Ready with the new term is durable, every answer waits.
    let mut raft = member_with_log(&[1], 1, |_| {});
    let heartbeat = |round| {
        message(
            2,
            1,
            4,
            MessageBody::Heartbeat {
                leader_commit: 0,
                read_round: round,
            },
        )
    };
    raft.step(heartbeat(1)).unwrap();
    assert!(raft.ready().hard_state.is_some());
    raft.step(heartbeat(2)).unwrap();
    let second = raft.ready();
    assert!(
        second.messages.is_empty(),
        "answered before the new term was known durable"
    );
    assert_eq!(second.messages_after_persist.len(), 1);
    raft.step(append(2, 4, (1, 1), &[(2, 4)], 0)).unwrap();
    assert_eq!(raft.ready().entries.len(), 1);
    raft.on_persisted(2, 4);
    raft.step(heartbeat(3)).unwrap();
    let after = raft.ready();
    assert_eq!(
        after.messages.len(),
        1,
        "still waiting after the term became durable"
    );
}

#[test]
fn heartbeats_tell_a_follower_only_a_commit_index_it_is_known_to_match() {
    // Reference: Raft paper section 5.3 (a follower may apply an entry only once it knows the
    // entry is committed and its log matches the leader's up to it). Follower 3's disk is slow,
    // so the leader knows it matches only the Noop (index 1); its heartbeats carry at most 1
    // while the leader's commit index is 3.
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    cluster.tick_all(2);
    cluster.hold_persist(3);
    cluster.propose(1, &["a", "b"]);
    cluster.settle();
    let sent_before = cluster.sent.len();
    cluster.tick_all(4);
    assert_eq!(cluster.commit(1), 3);
    let commits_to_3: Vec<u64> = cluster.sent[sent_before..]
        .iter()
        .filter_map(|m| match m.body {
            MessageBody::Heartbeat { leader_commit, .. } if m.to == 3 => Some(leader_commit),
            _ => None,
        })
        .collect();
    assert!(!commits_to_3.is_empty());
    assert!(
        commits_to_3.iter().all(|commit| *commit <= 1),
        "{commits_to_3:?}"
    );
    // (Follower 3 may still learn commit 3: the heartbeat answers draw an AppendRequest whose
    // consistency check proves its log matches through 3, so the paper's rule lets it.)
}

#[test]
fn append_requests_respect_the_entry_and_byte_bounds() {
    // Reference: Raft thesis section 10.2.1 (batching), with tern's explicit bounds: at most
    // append_entries_max entries and append_bytes_max payload bytes per request, except that a
    // single larger entry still goes alone.
    let mut cluster = Cluster::with(3, |id| Config {
        append_entries_max: 2,
        append_bytes_max: 7,
        ..config(id, 3)
    });
    cluster.elect(1);
    cluster.propose(1, &["aaa", "bbb", "ccc", "dddddddddd", "e"]);
    cluster.settle();
    let mut requests = 0;
    for message in &cluster.sent {
        if let MessageBody::AppendRequest { entries, .. } = &message.body {
            requests += 1;
            let bytes: usize = entries.iter().map(Entry::payload_bytes).sum();
            assert!(entries.len() <= 2, "{} entries", entries.len());
            assert!(
                bytes <= 7 || entries.len() == 1,
                "{bytes} bytes in {} entries",
                entries.len()
            );
        }
    }
    assert!(requests >= 6, "only {requests} requests");
    assert_eq!(cluster.commit(1), 6);
}

#[test]
fn leader_keeps_at_most_the_window_of_requests_in_flight() {
    // Reference: Raft thesis section 10.2.2 (pipelining): the leader sends further requests
    // before earlier ones are answered, but no more than inflight_messages_max at a time.
    let mut cluster = Cluster::with(3, |id| Config {
        inflight_messages_max: 2,
        ..config(id, 3)
    });
    cluster.elect(1);
    cluster.tick_all(2);
    cluster.cut.insert((2, 1)); // follower 2's answers are lost
    let sent_before = cluster.sent.len();
    for command in ["a", "b", "c", "d", "e"] {
        cluster.propose(1, &[command]);
        cluster.settle();
    }
    let to_2 = cluster.sent[sent_before..]
        .iter()
        .filter(|m| m.to == 2 && matches!(&m.body, MessageBody::AppendRequest { entries, .. } if !entries.is_empty()))
        .count();
    let to_3 = cluster.sent[sent_before..]
        .iter()
        .filter(|m| m.to == 3 && matches!(&m.body, MessageBody::AppendRequest { .. }))
        .count();
    assert_eq!(to_2, 2, "requests in flight to the silent follower");
    assert_eq!(
        to_3, 5,
        "the answering follower gets one request per proposal"
    );
}
