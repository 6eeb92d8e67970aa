//! kill -9 the leader of a 3-node cluster under write load: a new leader takes over, writes
//! continue, no acknowledged write is missing or wrong, and the killed member, restarted,
//! catches up and serves the data from its own map.

mod cluster_common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster_common::{block_on, scan_all, value_for, Cluster, ClusterOptions};
use tern_net::kv_client::{KvClient, KvError};
use tern_net::message::ReadConsistency;

/// Concurrent writer tasks on the one client.
const WRITERS: usize = 32;
/// Most writes one writer makes (a bound on the load even if nobody stops it).
const WRITES_PER_WRITER_MAX: usize = 2_000;
/// Acknowledged writes wanted before the kill, and again after the new leader is known.
const ACKS_BEFORE_KILL: u64 = 300;
const ACKS_AFTER_KILL: u64 = 300;
/// Hang guard on the load as a whole (the writers stop by themselves after it).
const LOAD_TIME_MAX: Duration = Duration::from_secs(120);
/// Hang guard on each wait for acknowledgements.
const ACK_WAIT_MAX: Duration = Duration::from_secs(60);
/// Key prefix of the load.
const PREFIX: &str = "load/";

/// What the load saw: which writes were acknowledged, which have an unknown outcome.
#[derive(Default, Debug)]
struct LoadReport {
    acknowledged: Vec<String>,
    /// Timed out: may or may not have been applied.
    unknown: Vec<(String, String)>,
    /// Refused: must have changed nothing.
    refused: Vec<(String, String)>,
}

/// Runs the load on its own executor until `stop` (or its bounds); returns what it saw.
fn start_load(
    cluster: &Cluster,
    acknowledged: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<LoadReport> {
    let config = cluster.client_config();
    tern_net::runtime::run_executor("load", move || async move {
        let client = std::rc::Rc::new(KvClient::connect(config).await.expect("connect"));
        let (reports_tx, reports_rx) = flume::bounded::<LoadReport>(WRITERS);
        let started = Instant::now();
        for writer in 0..WRITERS {
            let client = client.clone();
            let acknowledged = acknowledged.clone();
            let stop = stop.clone();
            let reports_tx = reports_tx.clone();
            tern_net::runtime::spawn(async move {
                let mut report = LoadReport::default();
                for index in 0..WRITES_PER_WRITER_MAX {
                    if stop.load(Ordering::SeqCst) || started.elapsed() > LOAD_TIME_MAX {
                        break;
                    }
                    let key = format!("{PREFIX}{writer:02}/{index:05}");
                    let value = value_for(&key);
                    match client.put(key.clone(), value).await {
                        Ok(()) => {
                            report.acknowledged.push(key);
                            acknowledged.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(error @ KvError::Timeout { .. }) => {
                            report.unknown.push((key, error.to_string()))
                        }
                        Err(error) => report.refused.push((key, error.to_string())),
                    }
                }
                reports_tx.send(report).expect("the collector waits");
            });
        }
        drop(reports_tx);
        let mut total = LoadReport::default();
        for _ in 0..WRITERS {
            let report = reports_rx.recv_async().await.expect("every writer reports");
            total.acknowledged.extend(report.acknowledged);
            total.unknown.extend(report.unknown);
            total.refused.extend(report.refused);
        }
        client.close();
        total
    })
    .expect("start the load executor")
}

/// Waits until `counter` reaches `target`, or panics after [`ACK_WAIT_MAX`].
fn wait_for_acks(cluster: &mut Cluster, counter: &AtomicU64, target: u64, what: &str) {
    let deadline = Instant::now() + ACK_WAIT_MAX;
    while counter.load(Ordering::SeqCst) < target {
        if Instant::now() > deadline {
            panic!(
                "{what}: {} acknowledged writes, wanted {target}, within {ACK_WAIT_MAX:?}\n{}",
                counter.load(Ordering::SeqCst),
                cluster.log_tails()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks what a read saw against what the load saw.
fn check_against(seen: &BTreeMap<Bytes, Bytes>, report: &LoadReport, reader: &str) {
    let mut missing = Vec::new();
    for key in &report.acknowledged {
        match seen.get(key.as_bytes()) {
            Some(value) if value == value_for(key).as_bytes() => {}
            Some(value) => panic!(
                "{reader}: acknowledged key {key} has a wrong value {:?}",
                String::from_utf8_lossy(value)
            ),
            None => missing.push(key.clone()),
        }
    }
    assert!(
        missing.is_empty(),
        "{reader}: {} acknowledged writes missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    for (key, _) in &report.unknown {
        if let Some(value) = seen.get(key.as_bytes()) {
            assert_eq!(
                value,
                value_for(key).as_bytes(),
                "{reader}: timed-out key {key} is present with a wrong value"
            );
        }
    }
    for (key, error) in &report.refused {
        assert!(
            !seen.contains_key(key.as_bytes()),
            "{reader}: key {key} was refused ({error}) yet is present"
        );
    }
    let written: std::collections::HashSet<&str> = report
        .acknowledged
        .iter()
        .map(String::as_str)
        .chain(report.unknown.iter().map(|(key, _)| key.as_str()))
        .collect();
    for key in seen.keys() {
        let key = String::from_utf8_lossy(key);
        assert!(
            written.contains(key.as_ref()),
            "{reader}: key {key} was never written"
        );
    }
}

#[test]
fn leader_killed_under_load_loses_no_acknowledged_write() {
    // Small WAL segments, so the load rolls over many of them and the restarted member
    // recovers across segment boundaries (the largest command must still fit in one).
    let mut options = ClusterOptions::new(3);
    options.extra_serve_args = [
        "--wal-segment-bytes",
        "65536",
        "--command-bytes-max",
        "32768",
        "--value-bytes-max",
        "16384",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    let mut cluster = Cluster::start_with(options);
    let first_leader = cluster.wait_for_leader();
    let first_term = cluster.status(first_leader).expect("leader status").term;

    let acknowledged = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(&cluster, acknowledged.clone(), stop.clone());

    wait_for_acks(
        &mut cluster,
        &acknowledged,
        ACKS_BEFORE_KILL,
        "before the kill",
    );
    cluster.kill_9(first_leader);
    let at_kill = acknowledged.load(Ordering::SeqCst);
    let second_leader = cluster.wait_for_leader();
    assert_ne!(second_leader, first_leader, "the killed member cannot lead");
    let second_term = cluster
        .status(second_leader)
        .expect("new leader status")
        .term;
    assert!(
        second_term > first_term,
        "the new leader was elected in a later term ({second_term} after {first_term})"
    );
    wait_for_acks(
        &mut cluster,
        &acknowledged,
        at_kill + ACKS_AFTER_KILL,
        "after the kill",
    );
    stop.store(true, Ordering::SeqCst);
    let report = match load.join() {
        Ok(report) => report,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    eprintln!(
        "load: {} acknowledged ({} when the leader was killed), {} timed out, {} refused",
        report.acknowledged.len(),
        at_kill,
        report.unknown.len(),
        report.refused.len()
    );
    assert!(
        report.acknowledged.len() as u64 > at_kill,
        "writes were acknowledged after the kill"
    );
    let report = Arc::new(report);

    // Linearizable reads through the cluster see every acknowledged write, with its value.
    let config = cluster.client_config();
    let checked = report.clone();
    block_on("verify-linearizable", move || async move {
        let client = KvClient::connect(config).await.expect("connect");
        let seen = scan_all(&client, PREFIX.as_bytes()).await.expect("scan");
        check_against(&seen, &checked, "linearizable scan");
        // Point reads too (a sample), through the Get path.
        for key in checked.acknowledged.iter().step_by(17) {
            let value = client.get(key.clone()).await.expect("get");
            assert_eq!(value, Some(Bytes::from(value_for(key))), "get {key}");
        }
        client.close();
    });

    // The killed member restarts on its data and catches up with the leader's commit index.
    let leader_status = cluster.status(second_leader).expect("leader status");
    cluster.restart(first_leader);
    let caught_up = cluster.wait_until_applied(first_leader, leader_status.commit_index);
    assert_eq!(caught_up.node_id, first_leader);

    // A serializable read served by the restarted member alone sees all the data.
    let mut config = cluster.node_client_config(first_leader);
    config.read_consistency = ReadConsistency::Serializable;
    let checked = report.clone();
    block_on("verify-restarted", move || async move {
        let client = KvClient::connect(config)
            .await
            .expect("connect to the restarted member");
        let seen = scan_all(&client, PREFIX.as_bytes())
            .await
            .expect("local scan");
        check_against(&seen, &checked, "serializable scan of the restarted member");
        client.close();
    });

    cluster.wait_for_leader();
    cluster.assert_all_running();
}
