//! An independent review of the Raft core: each test pins one claim of the Raft paper
//! (Ongaro and Ousterhout, 2014) or the Raft thesis (Ongaro, 2014) that an earlier version of
//! the core broke, and names the section it checks.

mod common;

use common::config;
use tern_engine::raft::{Message, MessageBody, Raft, Ready, Recovered, Role};

fn message(from: u64, to: u64, term: u64, body: MessageBody) -> Message {
    Message {
        from,
        to,
        term,
        body,
    }
}

/// Every vote (or pre-vote) node `to` was granted in this Ready.
fn granted_votes_to(ready: &Ready, to: u64) -> usize {
    ready
        .messages
        .iter()
        .chain(&ready.messages_after_persist)
        .filter(|m| m.to == to && matches!(m.body, MessageBody::VoteResponse { granted: true, .. }))
        .count()
}

#[test]
fn follower_counted_in_a_lease_refuses_votes_after_a_stale_higher_term_response() {
    // Reference: Raft thesis section 6.4.1 (leases) with section 4.2.3 / 9.6 (a server within
    // the minimum election timeout of hearing from a leader neither updates its term nor
    // grants its vote). A lease holder counts on every follower that acknowledged its
    // heartbeat not to vote for anyone for that long. A late answer to this follower's own
    // earlier pre-vote, from a node that meanwhile moved to a later term, must not lift that
    // promise: otherwise node 3 wins a later term with node 2's vote while node 1 still serves
    // lease reads.
    let mut node = Raft::new(config(2, 3), Recovered::default()).unwrap();
    for _ in 0..node.election_timeout_ticks() {
        node.tick();
    }
    assert_eq!(node.status().role, Role::PreCandidate);
    // Its pre-votes for term 1 go to nodes 1 and 3.
    let _ = node.ready();
    // Node 1 won term 1; node 2 follows it and acknowledges its heartbeat.
    let heartbeat = MessageBody::Heartbeat {
        leader_commit: 0,
        read_round: 1,
    };
    node.step(message(1, 2, 1, heartbeat)).unwrap();
    assert_eq!(node.status().leader, Some(1));
    let ready = node.ready();
    assert!(ready
        .messages
        .iter()
        .chain(&ready.messages_after_persist)
        .any(|m| matches!(m.body, MessageBody::HeartbeatResponse { .. })));
    // Node 3, cut off from node 1, reached term 2; its rejection of node 2's old pre-vote
    // arrives now, and then node 3 campaigns for term 3. No tick passes meanwhile.
    let rejection = MessageBody::VoteResponse {
        pre_vote: true,
        granted: false,
    };
    let _ = node.step(message(3, 2, 2, rejection));
    for pre_vote in [true, false] {
        let request = MessageBody::VoteRequest {
            pre_vote,
            last_log_index: 0,
            last_log_term: 0,
            leadership_transfer: false,
        };
        let _ = node.step(message(3, 2, 3, request));
    }
    let ready = node.ready();
    assert_eq!(
        granted_votes_to(&ready, 3),
        0,
        "voted within the minimum election timeout of acknowledging its leader"
    );
    assert_ne!(node.status().voted_for, Some(3));
}

#[test]
fn a_request_reaching_below_the_commit_index_cannot_make_log_terms_decrease() {
    // Reference: Raft paper section 5.3 and figure 2 (AppendEntries receiver): entries continue
    // the log at prev_log_index with terms that never decrease; the core refuses any message
    // that would break this, whatever arrives (its garbage test asserts it). A follower skips
    // the part of a request below its commit index (5.4.3) and continues from its own committed
    // entry, so what remains must not carry a term below that entry's. Only a faulty leader
    // sends such a request; it must be refused, not appended.
    let mut recovered = common::recovered_with_terms(&[1, 1, 2], 2);
    recovered.hard_state.commit = 3;
    let mut node = Raft::new(
        tern_engine::raft::Config {
            check_quorum: false,
            ..config(1, 3)
        },
        recovered,
    )
    .unwrap();
    let entry = |index, term| tern_engine::raft::Entry {
        index,
        term,
        payload: tern_engine::raft::Payload::Noop,
    };
    let request = MessageBody::AppendRequest {
        prev_log_index: 2,
        prev_log_term: 1,
        entries: vec![entry(3, 1), entry(4, 1)],
        leader_commit: 0,
    };
    let _ = node.step(message(2, 1, 3, request));
    let terms: Vec<u64> = (1..=node.status().last_index)
        .map(|index| node.entry(index).unwrap().term)
        .collect();
    assert!(
        terms.windows(2).all(|pair| pair[0] <= pair[1]),
        "log terms decrease: {terms:?}"
    );
}
