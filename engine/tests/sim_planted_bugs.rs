//! Proof that the simulator's checks can fail: for each classic Raft bug planted in the core
//! (switchable only with the `planted-bugs` feature, on in tests), the simulator finds a
//! violation within a bounded number of seeds. Prints which seed found each bug.

use tern_engine::raft::PlantedBug;
use tern_engine::sim::{run_many, RunOptions};

/// Seeds tried per bug before the test gives up (each seed runs on 3 and 5 nodes).
const SEEDS_MAX: u64 = 150;

fn first_violation(bug: PlantedBug) -> Option<(u64, usize, String)> {
    // Search in chunks so a bug found early costs little.
    let chunk = 30;
    for start in (0..SEEDS_MAX).step_by(chunk as usize) {
        let make = |seed, nodes| {
            let mut options = RunOptions::new(seed, nodes);
            options.planted_bug = Some(bug);
            options
        };
        let reports = run_many(
            &[3, 5],
            start..(start + chunk).min(SEEDS_MAX),
            2,
            make,
            |_| {},
        );
        let found = reports
            .into_iter()
            .flatten()
            .filter_map(|report| report.violation.map(|v| (report.seed, report.nodes, v)))
            .min_by_key(|(seed, nodes, _)| (*seed, *nodes));
        if found.is_some() {
            return found;
        }
    }
    None
}

fn assert_found(bug: PlantedBug) {
    match first_violation(bug) {
        Some((seed, nodes, violation)) => {
            println!("{bug:?}: found by seed {seed} on {nodes} nodes: {violation}");
        }
        None => panic!("{bug:?}: no violation within {SEEDS_MAX} seeds on 3 and 5 nodes"),
    }
}

#[test]
fn finds_vote_for_stale_log() {
    assert_found(PlantedBug::VoteForStaleLog);
}

#[test]
fn finds_commit_previous_term_by_count() {
    assert_found(PlantedBug::CommitPreviousTermByCount);
}

#[test]
fn finds_keep_conflicting_suffix() {
    assert_found(PlantedBug::KeepConflictingSuffix);
}

#[test]
fn finds_leader_counts_self_before_persist() {
    assert_found(PlantedBug::LeaderCountsSelfBeforePersist);
}

/// The figure-8 bug's real damage, not just its broken rule: with the direct commitment-rule
/// check off, the simulator still finds a committed entry that a later leader lacks.
#[test]
fn finds_commit_previous_term_by_count_by_its_consequence() {
    // Rarer than the broken rule itself (it needs a later leader to overwrite the entry), so
    // more seeds, searched in chunks so an early find costs little.
    const CONSEQUENCE_SEEDS_MAX: u64 = 4000;
    const CHUNK_SEEDS: u64 = 250;
    let make = |seed, nodes| {
        let mut options = RunOptions::new(seed, nodes);
        options.planted_bug = Some(PlantedBug::CommitPreviousTermByCount);
        options.check_commitment_rule = false;
        options
    };
    let mut found = None;
    for start in (0..CONSEQUENCE_SEEDS_MAX).step_by(CHUNK_SEEDS as usize) {
        let reports = run_many(&[3], start..start + CHUNK_SEEDS, 2, make, |_| {});
        found = reports
            .into_iter()
            .flatten()
            .find_map(|report| report.violation.map(|v| (report.seed, v)));
        if found.is_some() {
            break;
        }
    }
    match found {
        Some((seed, violation)) => {
            println!(
                "CommitPreviousTermByCount (rule check off): seed {seed} on 3 nodes: {violation}"
            );
            assert!(
                violation.starts_with("leader completeness")
                    || violation.starts_with("state machine safety"),
                "expected a lost committed entry, got: {violation}"
            );
        }
        None => panic!("no lost commit within {CONSEQUENCE_SEEDS_MAX} seeds on 3 nodes"),
    }
}
