//! Same seed, same run: two runs of one seed give the identical event trace, and a different
//! seed gives a different one (so the comparison can fail).

use tern_engine::sim::{run, run_many, RunOptions};

fn traced(seed: u64, nodes: usize) -> Vec<String> {
    let mut options = RunOptions::new(seed, nodes);
    options.trace = true;
    run(&options).expect("valid options").trace
}

#[test]
fn same_seed_gives_identical_trace() {
    for (seed, nodes) in [(7, 3), (8, 5), (9, 7)] {
        let first = traced(seed, nodes);
        let second = traced(seed, nodes);
        assert!(
            first.len() > 100,
            "seed {seed}: only {} trace lines",
            first.len()
        );
        assert_eq!(
            first, second,
            "seed {seed} nodes {nodes} replayed differently"
        );
        assert_ne!(
            first,
            traced(seed + 1000, nodes),
            "different seeds gave the same run"
        );
    }
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let summary = |threads| {
        run_many(&[3, 5], 0..6, threads, RunOptions::new, |_| {})
            .into_iter()
            .map(|report| report.map(|r| (r.seed, r.nodes, r.steps, r.violation)))
            .collect::<Vec<_>>()
    };
    assert_eq!(summary(1), summary(2));
}

#[test]
fn bad_cluster_size_is_an_error_not_a_panic() {
    assert!(run(&RunOptions::new(1, 2)).is_err());
    assert!(run(&RunOptions::new(1, 12)).is_err());
}
