//! The core's lifecycle features in scripted scenarios (the simulator covers them under
//! faults): growing and shrinking the membership through learners and joint consensus (Raft
//! thesis chapter 4), and log compaction with InstallSnapshot for a follower that fell behind
//! the compacted prefix (paper section 7).

mod common;

use bytes::Bytes;
use common::{config, Cluster};
use tern_engine::raft::{MembershipChange, MembershipError, MessageBody, Role};

/// A cluster of `count` nodes where only 1..=3 are the bootstrap voters: the others start
/// outside the membership, as a freshly started joiner does.
fn cluster_with_spares(count: u64) -> Cluster {
    let mut cluster = Cluster::with(count, |id| {
        let mut config = config(id, 3);
        if id > 3 {
            config.voters.clear();
        }
        config
    });
    cluster.elect(1);
    assert_eq!(cluster.role(1), Role::Leader);
    cluster.propose(1, &["first"]);
    cluster.settle();
    cluster
}

fn change(cluster: &mut Cluster, change: MembershipChange) -> u64 {
    let index = cluster
        .node(1)
        .propose_membership(change, Bytes::new())
        .expect("change accepted");
    cluster.settle();
    index
}

#[test]
fn a_learner_receives_the_log_then_is_promoted_through_joint_consensus() {
    let mut cluster = cluster_with_spares(4);
    change(&mut cluster, MembershipChange::AddLearner(4));
    assert!(cluster.node(1).membership().is_learner(4));
    assert_eq!(
        cluster.log_of(4),
        cluster.log_of(1),
        "the learner holds the log"
    );
    // A learner never votes, so its timer firing starts no campaign.
    cluster.tick_all(40);
    assert_eq!(cluster.role(1), Role::Leader);
    assert_ne!(cluster.role(4), Role::Candidate);

    change(&mut cluster, MembershipChange::Promote(4));
    cluster.tick_all(3);
    let membership = cluster.node(1).membership().clone();
    assert_eq!(membership.voters, vec![1, 2, 3, 4]);
    assert!(
        !membership.is_joint(),
        "the leader leaves the joint membership by itself"
    );
    for id in 1..=4 {
        assert_eq!(cluster.node(id).membership(), &membership, "node {id}");
    }
}

#[test]
fn only_one_change_at_a_time_and_every_refusal_says_why() {
    let mut cluster = cluster_with_spares(4);
    let error = |cluster: &mut Cluster, change| {
        cluster
            .node(1)
            .propose_membership(change, Bytes::new())
            .unwrap_err()
    };
    assert_eq!(
        error(&mut cluster, MembershipChange::Promote(4)),
        MembershipError::NotAMember(4)
    );
    assert_eq!(
        error(&mut cluster, MembershipChange::AddLearner(2)),
        MembershipError::AlreadyMember(2)
    );
    assert!(matches!(
        cluster
            .node(2)
            .propose_membership(MembershipChange::AddLearner(4), Bytes::new()),
        Err(MembershipError::NotLeader {
            leader_hint: Some(1)
        })
    ));
    let index = cluster
        .node(1)
        .propose_membership(MembershipChange::AddLearner(4), Bytes::new())
        .unwrap();
    assert_eq!(
        error(&mut cluster, MembershipChange::Remove(3)),
        MembershipError::ChangeInProgress { index }
    );
}

#[test]
fn a_leader_that_removes_itself_hands_over_and_the_rest_go_on() {
    let mut cluster = cluster_with_spares(3);
    change(&mut cluster, MembershipChange::Remove(1));
    cluster.tick_all(60);
    let leaders: Vec<u64> = (1..=3)
        .filter(|id| cluster.role(*id) == Role::Leader)
        .collect();
    assert_eq!(leaders.len(), 1, "one leader: {leaders:?}");
    let leader = leaders[0];
    assert_ne!(leader, 1, "the removed leader stepped down");
    assert_eq!(cluster.node(leader).membership().voters, vec![2, 3]);
    let (index, _, _) = cluster.propose(leader, &["after"]);
    cluster.settle();
    cluster.tick_all(3);
    assert!(cluster.node(2).status().commit_index >= index);
    assert!(cluster.node(3).status().commit_index >= index);
}

#[test]
fn a_follower_behind_the_compacted_log_is_sent_the_snapshot() {
    let mut cluster = Cluster::new(3);
    cluster.elect(1);
    cluster.isolate(3);
    for round in 0..10 {
        cluster.propose(1, &[&format!("w{round}")]);
        cluster.settle();
    }
    let applied = cluster.node(1).status().applied_index;
    assert!(applied >= 10);
    assert!(cluster.node(1).compact(applied + 1).is_err(), "unapplied");
    cluster.node(1).compact(applied).unwrap();
    assert_eq!(cluster.node(1).status().first_index, applied + 1);
    assert_eq!(cluster.node(1).log_snapshot().index, applied);

    cluster.heal();
    cluster.tick_all(5);
    let snapshot_sent = cluster
        .sent
        .iter()
        .any(|m| m.to == 3 && matches!(m.body, MessageBody::InstallSnapshot { .. }));
    assert!(
        snapshot_sent,
        "node 3 needs compacted entries: it gets the snapshot"
    );
    let status = cluster.node(3).status();
    assert_eq!(
        status.first_index,
        applied + 1,
        "its log restarts after the snapshot"
    );
    assert!(status.commit_index >= applied);
    let (index, _, _) = cluster.propose(1, &["after"]);
    cluster.settle();
    cluster.tick_all(3);
    assert!(
        cluster.node(3).status().commit_index >= index,
        "it replicates again"
    );
}
