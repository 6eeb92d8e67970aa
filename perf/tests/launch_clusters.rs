//! The launchers against real processes: tern and etcd clusters start, commit a write, survive
//! a member's kill and restart, and leave nothing running; the throttle really stops a process
//! and lets it go when dropped.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tern_perf::launch::etcd::{etcd_binary, etcd_version, EtcdCluster};
use tern_perf::launch::tern::TernCluster;
use tern_perf::launch::throttle::Throttle;
use tern_perf::launch::{Cluster, ClusterSpec, ElectionTiming};

/// Generous hang guard for a cluster to commit a write (not a performance bound).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Hang guard for one write through a driver.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Hang guard for a throttled process to be seen stopped.
const STATE_WAIT: Duration = Duration::from_secs(10);

fn spec(dir: &Path) -> ClusterSpec {
    ClusterSpec {
        nodes: 3,
        timing: ElectionTiming::DEFAULT,
        base_dir: dir.to_path_buf(),
        verbose_logs: false,
    }
}

/// The state letter of /proc/PID/stat ('R', 'S', 'T', ...), None if there is no such process.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (COMM) STATE ...": COMM may hold spaces and parentheses, so cut at the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.trim_start().chars().next()
}

/// Start, ready, 3 distinct PIDs, kill and restart member 0, stop: nothing left running.
fn exercise(cluster: &mut dyn Cluster, program_name: &str) {
    assert_eq!(cluster.nodes(), 3);
    cluster.wait_ready(READY_TIMEOUT).unwrap();
    let pids: Vec<u32> = cluster
        .server_pids()
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let mut distinct = pids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{pids:?}");
    for &pid in &pids {
        assert!(process_state(pid).is_some(), "member {pid} is not running");
    }
    // The driver connects with the launcher's certificates and commits through any member.
    let mut driver = cluster.connect().unwrap();
    driver
        .probe_write(&[0, 1, 2], b"launch/probe", PROBE_TIMEOUT)
        .unwrap();
    drop(driver);
    let command = cluster.command_line();
    assert!(command.contains(program_name), "{command}");
    cluster.check_running().unwrap();

    cluster.kill(0).unwrap();
    assert_eq!(cluster.server_pids()[0], None);
    assert_eq!(
        process_state(pids[0]),
        None,
        "the killed member was not reaped"
    );
    assert!(cluster.kill(0).is_err(), "killing a dead member must fail");
    assert!(cluster.kill(7).is_err(), "there is no member 7");
    // Two of three still make a majority.
    cluster.wait_ready(READY_TIMEOUT).unwrap();
    cluster.restart(0).unwrap();
    let restarted = cluster.server_pids()[0].expect("member 0 runs again");
    assert_ne!(restarted, pids[0]);
    cluster.wait_ready(READY_TIMEOUT).unwrap();
    cluster.check_running().unwrap();
    assert_eq!(
        cluster.command_line(),
        command,
        "the command that started member 0 changed"
    );

    let all: Vec<u32> = cluster.server_pids().into_iter().flatten().collect();
    assert_eq!(all.len(), 3);
    cluster.stop();
    assert_eq!(cluster.server_pids(), vec![None, None, None]);
    for pid in all {
        assert_eq!(
            process_state(pid),
            None,
            "member {pid} still exists after stop"
        );
    }
}

#[test]
fn a_tern_cluster_starts_survives_a_restart_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = TernCluster::start(&spec(dir.path())).unwrap();
    exercise(&mut cluster, "serve");
}

#[test]
fn a_tern_member_that_refuses_its_flags_is_reported_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path());
    // tern wants the election timeout above two heartbeats.
    spec.timing = ElectionTiming {
        timeout_ms_min: 40,
        timeout_ms_max: 80,
        heartbeat_ms: 30,
    };
    let mut cluster = TernCluster::start(&spec).unwrap();
    let error = cluster.wait_ready(READY_TIMEOUT).unwrap_err();
    assert!(error.contains("exited unexpectedly"), "{error}");
    assert!(
        error.contains("heartbeat"),
        "the log tail is missing: {error}"
    );
}

#[test]
fn an_etcd_cluster_starts_survives_a_restart_and_stops() {
    if let Err(why) = etcd_binary() {
        println!("skipped: {why}");
        return;
    }
    let version = etcd_version();
    assert!(version.starts_with("3."), "{version}");
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = EtcdCluster::start(&spec(dir.path())).unwrap();
    exercise(&mut cluster, "--initial-cluster-state new");
}

#[test]
fn etcd_timing_it_would_refuse_is_an_error_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path());
    spec.timing = ElectionTiming {
        timeout_ms_min: 100,
        timeout_ms_max: 200,
        heartbeat_ms: 30,
    };
    let error = match EtcdCluster::start(&spec) {
        Ok(_) => panic!("etcd started with a timeout below 5 heartbeats"),
        Err(error) => error,
    };
    assert!(error.contains("5 heartbeat"), "{error}");
    assert!(
        !dir.path().join("etcd-certs").exists(),
        "it wrote files before refusing"
    );
}

#[test]
fn the_throttle_stops_a_process_and_lets_it_run_when_dropped() {
    let mut child = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(Throttle::start(vec![pid], 0, Duration::from_millis(100)).is_err());
    assert!(Throttle::start(vec![pid], 101, Duration::from_millis(100)).is_err());
    assert!(Throttle::start(vec![pid], 50, Duration::ZERO).is_err());

    // Runs 10 ms of every 200: mostly stopped.
    let throttle = Throttle::start(vec![pid], 5, Duration::from_millis(200)).unwrap();
    let deadline = Instant::now() + STATE_WAIT;
    while process_state(pid) != Some('T') {
        assert!(
            Instant::now() < deadline,
            "never seen stopped: {:?}",
            process_state(pid)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(throttle);
    // Dropped: continued at once and never stopped again.
    for _ in 0..10 {
        let state = process_state(pid);
        assert!(
            matches!(state, Some('S' | 'R')),
            "state {state:?} after the drop"
        );
        std::thread::sleep(Duration::from_millis(30));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
