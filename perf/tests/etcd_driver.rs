//! The etcd driver against a real 3-member etcd cluster (mutual TLS, launched by the suite's
//! own launcher): load, a short closed-loop run, member status and probe writes.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tern_perf::driver::Progress;
use tern_perf::launch::{launch, Cluster, ClusterSpec, ElectionTiming};
use tern_perf::system::System;
use tern_perf::workload::{
    KeyDistribution, LoopKind, OpKind, OpMix, ReadConsistency, WorkloadSpec,
};

/// Generous hang guard for the cluster to commit a write (not a performance bound).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one status or probe request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on one probe write during the election (the election experiment's order).
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// Pause between probes.
const PROBE_PAUSE: Duration = Duration::from_millis(5);
/// Keys loaded.
const KEYS: u64 = 100;

fn spec(loop_kind: LoopKind, consistency: ReadConsistency) -> WorkloadSpec {
    WorkloadSpec {
        name: "etcd driver test".to_string(),
        loop_kind,
        key_space: KEYS,
        value_bytes: 100,
        distribution: KeyDistribution::Uniform,
        mix: OpMix::reads_and_updates(50),
        scan_length_max: 10,
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(200),
        consistency,
        seed: 7,
    }
}

fn start_cluster(dir: &tempfile::TempDir) -> Box<dyn Cluster> {
    let mut cluster = launch(
        System::Etcd,
        &ClusterSpec {
            nodes: 3,
            timing: ElectionTiming::DEFAULT,
            base_dir: dir.path().to_path_buf(),
            verbose_logs: false,
        },
    )
    .unwrap();
    cluster.wait_ready(READY_TIMEOUT).unwrap();
    cluster
}

#[test]
fn loads_runs_and_reads_member_status_on_a_real_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start_cluster(&dir);
    let mut driver = cluster.connect().unwrap();

    let progress = Progress::default();
    let closed = spec(
        LoopKind::Closed { clients: 4 },
        ReadConsistency::Linearizable,
    );
    driver.load(&closed, &progress).unwrap();
    assert_eq!(progress.ops_done.load(Ordering::Relaxed), KEYS);
    assert_eq!(progress.errors.load(Ordering::Relaxed), 0);

    let progress = Progress::default();
    let stats = driver.run(&closed, &progress).unwrap();
    eprintln!("closed loop: {} ok in {:?}", stats.ops_ok(), stats.elapsed);
    assert_eq!(stats.errors_total(), 0, "{:?}", stats.errors);
    assert!(stats.ops_ok() > 0);
    assert!(
        stats.latency_us.contains_key(&OpKind::Read),
        "{:?}",
        stats.latency_us.keys()
    );
    assert!(
        stats.latency_us.contains_key(&OpKind::Update),
        "{:?}",
        stats.latency_us.keys()
    );
    assert_eq!(stats.elapsed, closed.duration);
    assert_eq!(stats.late, 0);
    // Progress also counts the warm-up's operations.
    assert!(progress.ops_done.load(Ordering::Relaxed) >= stats.ops_ok());

    // Scans and read-modify-writes with serializable reads, open loop.
    let mut open = spec(
        LoopKind::Open {
            rate_ops_per_s: 200,
            inflight_max: 16,
        },
        ReadConsistency::Serializable,
    );
    open.mix = OpMix {
        read_percent: 0,
        update_percent: 0,
        insert_percent: 20,
        scan_percent: 40,
        read_modify_write_percent: 40,
    };
    let stats = driver.run(&open, &Progress::default()).unwrap();
    eprintln!("open loop: {} ok, {} late", stats.ops_ok(), stats.late);
    assert_eq!(stats.errors_total(), 0, "{:?}", stats.errors);
    assert!(
        stats.latency_us.contains_key(&OpKind::Scan),
        "{:?}",
        stats.latency_us.keys()
    );
    assert!(
        stats.latency_us.contains_key(&OpKind::ReadModifyWrite),
        "{:?}",
        stats.latency_us.keys()
    );

    let lease = spec(LoopKind::Closed { clients: 1 }, ReadConsistency::Lease);
    let error = driver.run(&lease, &Progress::default()).unwrap_err();
    assert!(error.contains("no lease reads"), "{error}");

    let statuses: Vec<_> = (0..3)
        .map(|member| driver.member_status(member, REQUEST_TIMEOUT).unwrap())
        .collect();
    let leader = statuses[0].leader_index.expect("a leader is known");
    assert!(leader < 3);
    for status in &statuses {
        assert_eq!(*status, statuses[0], "{statuses:?}");
        assert!(status.term >= 1);
    }
    assert!(driver.member_status(3, REQUEST_TIMEOUT).is_err());

    // Through every member alone (followers forward), twice (the cached client), and all.
    for member in 0..3 {
        for _ in 0..2 {
            driver
                .probe_write(&[member], b"probe/driver-test", REQUEST_TIMEOUT)
                .unwrap();
        }
    }
    driver
        .probe_write(&[2, 0, 1], b"probe/driver-test", REQUEST_TIMEOUT)
        .unwrap();
    assert!(driver
        .probe_write(&[], b"probe/x", REQUEST_TIMEOUT)
        .is_err());

    // The leader killed: its status fails, the survivors elect another and take probe writes
    // (probed every few milliseconds, as the election experiment does); restarted, it answers
    // again through the same cached client.
    cluster.kill(leader).unwrap();
    assert!(driver.member_status(leader, REQUEST_TIMEOUT).is_err());
    let survivors: Vec<usize> = (0..3).filter(|&member| member != leader).collect();
    let killed_at = Instant::now();
    let mut attempts = 0;
    while driver
        .probe_write(&survivors, b"probe/driver-test", PROBE_TIMEOUT)
        .is_err()
    {
        attempts += 1;
        assert!(
            killed_at.elapsed() < READY_TIMEOUT,
            "no write after the leader's kill"
        );
        std::thread::sleep(PROBE_PAUSE);
    }
    eprintln!(
        "write after the kill: {:?}, {attempts} failed probes",
        killed_at.elapsed()
    );
    let after: Vec<_> = survivors
        .iter()
        .map(|&member| driver.member_status(member, REQUEST_TIMEOUT).unwrap())
        .collect();
    assert_eq!(after[0], after[1], "{after:?}");
    assert!(after[0].term > statuses[0].term, "{after:?} {statuses:?}");
    assert!(
        matches!(after[0].leader_index, Some(new) if new != leader),
        "{after:?}"
    );
    cluster.restart(leader).unwrap();
    let restarted_at = Instant::now();
    loop {
        match driver.member_status(leader, REQUEST_TIMEOUT) {
            Ok(status) if status.leader_index.is_some() => break,
            other => {
                assert!(
                    restarted_at.elapsed() < READY_TIMEOUT,
                    "no status after restart: {other:?}"
                );
                std::thread::sleep(PROBE_PAUSE);
            }
        }
    }
    cluster.stop();
}
