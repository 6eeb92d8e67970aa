//! Each planted bug (feature `planted-bugs`, switched on per member through
//! `Config::planted_bug`) really breaks the rule it names, in a small scripted scenario where
//! the correct core keeps it. The simulator's tests show the checker catches them in random
//! runs; these show the switch does what it says.

mod common;

use bytes::Bytes;
use common::{
    config, figure_8_commits_old_entry_early, lease_read_served_after_followers_went_silent,
    recovered_with_terms, Cluster,
};
use tern_engine::raft::{Config, Entry, Message, MessageBody, Payload, PlantedBug, Raft};

fn member(terms: &[u64], current_term: u64, bug: Option<PlantedBug>) -> Raft {
    let config = Config {
        planted_bug: bug,
        check_quorum: false,
        ..config(1, 3)
    };
    Raft::new(config, recovered_with_terms(terms, current_term)).unwrap()
}

#[test]
fn vote_for_stale_log_grants_a_vote_the_up_to_date_check_refuses() {
    // Reference: Raft paper section 5.4.1 (broken by PlantedBug::VoteForStaleLog): the voter's
    // last term is 2, the candidate's is 1.
    let request = Message {
        from: 2,
        to: 1,
        term: 3,
        body: MessageBody::VoteRequest {
            pre_vote: false,
            last_log_index: 9,
            last_log_term: 1,
            leadership_transfer: false,
        },
    };
    let granted = |bug| {
        let mut raft = member(&[1, 2], 2, bug);
        raft.step(request.clone()).unwrap();
        let ready = raft.ready();
        ready
            .messages_after_persist
            .iter()
            .chain(&ready.messages)
            .any(|m| matches!(m.body, MessageBody::VoteResponse { granted: true, .. }))
    };
    assert!(!granted(None));
    assert!(granted(Some(PlantedBug::VoteForStaleLog)));
}

#[test]
fn commit_previous_term_by_count_commits_the_figure_8_entry_early() {
    // Reference: Raft paper section 5.4.2, figure 8 (broken by
    // PlantedBug::CommitPreviousTermByCount).
    let (early, observed) = figure_8_commits_old_entry_early(|_| {});
    assert!(observed && !early);
    let (early, observed) = figure_8_commits_old_entry_early(|config| {
        config.planted_bug = Some(PlantedBug::CommitPreviousTermByCount)
    });
    assert!(observed);
    assert!(
        early,
        "the bug did not commit the old-term entry by counting"
    );
}

#[test]
fn keep_conflicting_suffix_leaves_old_entries_after_the_new_ones() {
    // Reference: Raft paper section 5.3 (broken by PlantedBug::KeepConflictingSuffix): the
    // conflicting entry 3 is replaced but entry 4 of the old term stays.
    let request = Message {
        from: 2,
        to: 1,
        term: 3,
        body: MessageBody::AppendRequest {
            prev_log_index: 2,
            prev_log_term: 1,
            entries: vec![Entry {
                index: 3,
                term: 3,
                payload: Payload::Command(Bytes::from_static(b"n")),
            }],
            leader_commit: 0,
        },
    };
    let terms_after = |bug| {
        let mut raft = member(&[1, 1, 2, 2], 2, bug);
        raft.step(request.clone()).unwrap();
        (1..=raft.status().last_index)
            .map(|index| raft.entry(index).unwrap().term)
            .collect::<Vec<_>>()
    };
    assert_eq!(terms_after(None), vec![1, 1, 3]);
    assert_eq!(
        terms_after(Some(PlantedBug::KeepConflictingSuffix)),
        vec![1, 1, 3, 2]
    );
}

#[test]
fn leader_counts_self_before_persist_commits_without_its_own_write() {
    // Reference: Raft thesis section 10.2.1 (broken by PlantedBug::LeaderCountsSelfBeforePersist):
    // with follower 3 cut off and the leader's disk held back, one follower's ack commits.
    let committed_early = |bug| {
        let mut cluster = Cluster::with(3, |id| Config {
            planted_bug: bug,
            ..config(id, 3)
        });
        cluster.elect(1);
        cluster.isolate(3);
        cluster.hold_persist(1);
        let (_, last, _) = cluster.propose(1, &["x"]);
        cluster.settle();
        cluster.commit(1) >= last
    };
    assert!(!committed_early(None));
    assert!(committed_early(Some(
        PlantedBug::LeaderCountsSelfBeforePersist
    )));
}

#[test]
fn lease_ignores_drift_margin_serves_a_read_after_the_safe_lease_ended() {
    // Reference: Raft thesis section 6.4.1 (broken by PlantedBug::LeaseIgnoresDriftMargin): the
    // safe lease is election_timeout_min - clock_drift_margin = 8 ticks from the start of the
    // last acknowledged round; the bug keeps it for election_timeout_max = 20 ticks.
    let served_late = |bug| {
        let mut cluster = Cluster::with(3, |id| Config {
            planted_bug: bug,
            lease_reads: true,
            ..config(id, 3)
        });
        lease_read_served_after_followers_went_silent(&mut cluster)
    };
    assert!(!served_late(None));
    assert!(served_late(Some(PlantedBug::LeaseIgnoresDriftMargin)));
}

#[test]
fn vote_not_persisted_sends_the_vote_before_its_hard_state_is_durable() {
    // Reference: Raft paper figure 2, "persistent state ... updated on stable storage before
    // responding to RPCs" (broken by PlantedBug::VoteNotPersisted): the granted vote leaves
    // with the Ready's immediate messages instead of after its persist.
    let request = Message {
        from: 2,
        to: 1,
        term: 3,
        body: MessageBody::VoteRequest {
            pre_vote: false,
            last_log_index: 2,
            last_log_term: 2,
            leadership_transfer: false,
        },
    };
    let is_granted =
        |m: &Message| matches!(m.body, MessageBody::VoteResponse { granted: true, .. });
    let sent_early = |bug| {
        let mut raft = member(&[1, 2], 2, bug);
        raft.step(request.clone()).unwrap();
        let ready = raft.ready();
        assert_eq!(ready.hard_state.map(|hs| hs.voted_for), Some(Some(2)));
        let early = ready.messages.iter().any(is_granted);
        let after_persist = ready.messages_after_persist.iter().any(is_granted);
        assert!(early != after_persist, "the vote is sent exactly once");
        early
    };
    assert!(!sent_early(None));
    assert!(sent_early(Some(PlantedBug::VoteNotPersisted)));
}

#[test]
fn install_snapshot_below_commit_moves_the_applied_state_back() {
    // Reference: Raft paper section 7, "if the follower receives a snapshot that describes a
    // prefix of its log, log entries covered by the snapshot are deleted but entries following
    // it are retained" (broken by PlantedBug::InstallSnapshotBelowCommit): a follower that
    // committed and applied 4 entries is sent a snapshot at index 2.
    let leader_commit = Message {
        from: 2,
        to: 1,
        term: 1,
        body: MessageBody::AppendRequest {
            prev_log_index: 4,
            prev_log_term: 1,
            entries: Vec::new(),
            leader_commit: 4,
        },
    };
    let old_snapshot = Message {
        from: 2,
        to: 1,
        term: 1,
        body: MessageBody::InstallSnapshot {
            snapshot: tern_engine::raft::SnapshotMeta {
                index: 2,
                term: 1,
                membership: tern_engine::raft::Membership::with_voters(&[1, 2, 3]),
            },
        },
    };
    let after = |bug| {
        let mut raft = member(&[1, 1, 1, 1], 1, bug);
        raft.step(leader_commit.clone()).unwrap();
        raft.ready();
        raft.on_persisted(4, 1);
        raft.on_applied(4);
        assert_eq!(raft.status().applied_index, 4);
        raft.step(old_snapshot.clone()).unwrap();
        let status = raft.status();
        (status.last_index, status.commit_index, status.applied_index)
    };
    assert_eq!(
        after(None),
        (4, 4, 4),
        "the correct core keeps its log and cursors"
    );
    let (last, commit, applied) = after(Some(PlantedBug::InstallSnapshotBelowCommit));
    assert!(
        last < 4 && commit < 4 && applied < 4,
        "the bug should replace the applied log: last {last} commit {commit} applied {applied}"
    );
}
