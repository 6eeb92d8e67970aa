//! The tern driver against a real 3-node tern cluster (`tern serve` processes on loopback,
//! mutual TLS): load, a short closed-loop run, an open-loop run, member status, probe
//! writes, and a crash of the leader. Needs the `tern` binary (the launcher builds it, or
//! takes the one its variable names: see perf/src/launch).

use std::sync::atomic::Ordering;
use std::time::Duration;

use tern_perf::driver::tern::KIND_NOT_FOUND;
use tern_perf::driver::Progress;
use tern_perf::launch::{launch, ClusterSpec, ElectionTiming};
use tern_perf::system::System;
use tern_perf::workload::{
    KeyDistribution, LoopKind, OpKind, OpMix, ReadConsistency, WorkloadSpec,
};

/// Hang guard: how long the cluster gets to elect a leader that commits (far above what a
/// healthy one needs, for a loaded shared machine).
const READY_WAIT_MAX: Duration = Duration::from_secs(60);
/// Per-request bound of the status and probe calls.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound of one probe while the cluster fails over.
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// Hang guard: probes tried after the leader's crash (x PROBE_TIMEOUT at most: 60 s).
const FAILOVER_PROBES_MAX: usize = 300;
/// Keys loaded before the runs.
const KEY_SPACE: u64 = 100;

fn spec(loop_kind: LoopKind) -> WorkloadSpec {
    WorkloadSpec {
        name: "tern driver test".to_string(),
        loop_kind,
        key_space: KEY_SPACE,
        value_bytes: 64,
        distribution: KeyDistribution::Uniform,
        mix: OpMix::reads_and_updates(50),
        scan_length_max: 10,
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(200),
        consistency: ReadConsistency::Linearizable,
        seed: 7,
    }
}

#[test]
fn tern_driver_loads_runs_reports_status_and_probes() {
    let base_dir = tempfile::tempdir().expect("a temporary directory");
    let mut cluster = launch(
        System::Tern,
        &ClusterSpec {
            nodes: 3,
            timing: ElectionTiming::DEFAULT,
            base_dir: base_dir.path().to_path_buf(),
            verbose_logs: false,
        },
    )
    .unwrap_or_else(|problem| panic!("launch: {problem}"));
    cluster
        .wait_ready(READY_WAIT_MAX)
        .unwrap_or_else(|problem| panic!("wait_ready: {problem}"));
    let mut driver = cluster
        .connect()
        .unwrap_or_else(|problem| panic!("connect: {problem}"));

    // Load: every key written once, each counted in the progress.
    let closed = spec(LoopKind::Closed { clients: 4 });
    let load_progress = Progress::default();
    driver
        .load(&closed, &load_progress)
        .unwrap_or_else(|problem| panic!("load: {problem}"));
    assert_eq!(load_progress.ops_done.load(Ordering::Relaxed), KEY_SPACE);

    // Closed loop, half reads: a read of a loaded key that finds nothing would be an error
    // (NotFound), so zero errors means every read found its value.
    let run_progress = Progress::default();
    let stats = driver
        .run(&closed, &run_progress)
        .unwrap_or_else(|problem| panic!("closed-loop run: {problem}"));
    assert_eq!(stats.errors_total(), 0, "errors: {:?}", stats.errors);
    assert!(stats.ops_ok() > 0);
    let reads = stats.latency_us.get(&OpKind::Read).map_or(0, |h| h.len());
    let updates = stats.latency_us.get(&OpKind::Update).map_or(0, |h| h.len());
    assert!(reads > 0 && updates > 0, "reads {reads}, updates {updates}");
    assert_eq!(stats.elapsed, closed.duration);
    // Progress counts warm-up operations too, so at least the measured ones.
    assert!(run_progress.ops_done.load(Ordering::Relaxed) >= stats.ops_ok());
    assert_eq!(run_progress.errors.load(Ordering::Relaxed), 0);

    // Open loop, lease reads, at a rate far below what the closed loop managed.
    let open = WorkloadSpec {
        consistency: ReadConsistency::Lease,
        ..spec(LoopKind::Open {
            rate_ops_per_s: 200,
            inflight_max: 64,
        })
    };
    let stats = driver
        .run(&open, &Progress::default())
        .unwrap_or_else(|problem| panic!("open-loop run: {problem}"));
    assert_eq!(stats.errors_total(), 0, "errors: {:?}", stats.errors);
    assert!(stats.ops_ok() > 0);

    // A run that expects twice the keys the load wrote: its reads of the unwritten half must
    // count as NotFound errors (what makes "zero errors" above mean "every read found").
    let unloaded = WorkloadSpec {
        key_space: 2 * KEY_SPACE,
        mix: OpMix::reads_and_updates(100),
        warmup: Duration::ZERO,
        duration: Duration::from_millis(500),
        ..spec(LoopKind::Closed { clients: 2 })
    };
    let stats = driver
        .run(&unloaded, &Progress::default())
        .unwrap_or_else(|problem| panic!("run over unloaded keys: {problem}"));
    let (missing, message) = stats
        .errors
        .get(KIND_NOT_FOUND)
        .unwrap_or_else(|| panic!("no NotFound among {:?}", stats.errors));
    assert!(*missing > 0 && message.contains("absent"), "{message}");

    // Every member names the same leader in the same term.
    let statuses: Vec<_> = (0..3)
        .map(|member| {
            driver
                .member_status(member, REQUEST_TIMEOUT)
                .unwrap_or_else(|problem| panic!("member_status({member}): {problem}"))
        })
        .collect();
    let leader = statuses[0].leader_index.expect("member 0 knows a leader");
    assert!(leader < 3);
    assert!(
        statuses.iter().all(|status| *status == statuses[0]),
        "{statuses:?}"
    );
    assert!(statuses[0].term >= 1);

    // Probes through every member, through the followers only, and again (cached client).
    let followers: Vec<usize> = (0..3).filter(|&member| member != leader).collect();
    for members in [vec![0, 1, 2], followers.clone(), followers] {
        driver
            .probe_write(&members, b"perf/probe", REQUEST_TIMEOUT)
            .unwrap_or_else(|problem| panic!("probe_write({members:?}): {problem}"));
    }
    assert!(driver
        .probe_write(&[3], b"perf/probe", REQUEST_TIMEOUT)
        .is_err());
    assert!(driver.member_status(3, REQUEST_TIMEOUT).is_err());

    // The leader crashes: the dead member does not answer, probes through the survivors
    // succeed once they elect a new leader, and they agree on it in a later term.
    cluster
        .kill(leader)
        .unwrap_or_else(|problem| panic!("kill({leader}): {problem}"));
    assert!(driver.member_status(leader, PROBE_TIMEOUT).is_err());
    let survivors: Vec<usize> = (0..3).filter(|&member| member != leader).collect();
    let mut last_problem = String::new();
    let recovered = (0..FAILOVER_PROBES_MAX).any(|_| {
        match driver.probe_write(&survivors, b"perf/probe", PROBE_TIMEOUT) {
            Ok(()) => true,
            Err(problem) => {
                last_problem = problem;
                false
            }
        }
    });
    assert!(
        recovered,
        "no probe succeeded after the leader's crash: {last_problem}"
    );
    let after: Vec<_> = survivors
        .iter()
        .map(|&member| {
            driver
                .member_status(member, REQUEST_TIMEOUT)
                .unwrap_or_else(|problem| panic!("member_status({member}): {problem}"))
        })
        .collect();
    assert!(after.iter().all(|status| *status == after[0]), "{after:?}");
    let new_leader = after[0].leader_index.expect("the survivors know a leader");
    assert!(survivors.contains(&new_leader), "{after:?}");
    assert!(
        after[0].term > statuses[0].term,
        "{after:?} after {statuses:?}"
    );

    drop(driver);
    cluster.stop();
}
