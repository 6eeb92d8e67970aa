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
