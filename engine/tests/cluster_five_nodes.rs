//! A 5-node cluster serves writes and linearizable reads with 2 members down; with 3 down it
//! refuses writes (an error or a timeout, never a success); with them back it serves again, and
//! each write that had failed is either wholly present or absent.

mod cluster_common;

use std::time::Duration;

use bytes::Bytes;
use cluster_common::{block_on, join_all, value_for, Cluster};
use tern_net::kv_client::{KvClient, KvClientConfig, KvError};

/// Writes (and reads) per phase.
const OPERATIONS: usize = 40;
/// Writes tried without a quorum.
const WRITES_WITHOUT_QUORUM: usize = 4;
/// Operation deadline without a quorum: short, so the failures come quickly.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

/// Puts `OPERATIONS` keys under `prefix` and reads each back linearizably.
fn serve_writes_and_reads(config: KvClientConfig, prefix: &'static str) {
    block_on("serve", move || async move {
        let client = KvClient::connect(config).await.expect("connect");
        for index in 0..OPERATIONS {
            let key = format!("{prefix}{index:03}");
            client
                .put(key.clone(), value_for(&key))
                .await
                .unwrap_or_else(|error| panic!("put {key}: {error}"));
        }
        for index in 0..OPERATIONS {
            let key = format!("{prefix}{index:03}");
            let value = client
                .get(key.clone())
                .await
                .unwrap_or_else(|error| panic!("get {key}: {error}"));
            assert_eq!(value, Some(Bytes::from(value_for(&key))), "get {key}");
        }
        client.close();
    });
}

#[test]
fn five_members_serve_with_two_down_and_refuse_with_three_down() {
    let started = std::time::Instant::now();
    let phase = |name: &str| eprintln!("[{:>6} ms] {name}", started.elapsed().as_millis());
    let mut cluster = Cluster::start(5);
    let leader = cluster.wait_for_leader();
    phase("leader elected");
    serve_writes_and_reads(cluster.client_config(), "all-up/");
    phase("served with all up");

    // Two followers down: a quorum (3 of 5) remains.
    let followers: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect();
    cluster.kill_9(followers[0]);
    cluster.kill_9(followers[1]);
    let leader = cluster.wait_for_leader();
    phase("leader with two down");
    serve_writes_and_reads(cluster.client_config(), "two-down/");
    phase("served with two down");

    // A third member down (a follower, so the leader still holds the writes it is given in its
    // log): no quorum. Every write must fail within the operation timeout; none may succeed.
    let third = cluster
        .running_ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a running follower");
    cluster.kill_9(third);
    let mut config = cluster.client_config();
    config.operation_timeout = OPERATION_TIMEOUT;
    config.attempt_timeout = ATTEMPT_TIMEOUT;
    let failed: Vec<(String, KvError)> = block_on("no-quorum", move || async move {
        let client = KvClient::connect(config)
            .await
            .expect("connect to a survivor");
        // All at once: each waits out the operation timeout.
        let client = &client;
        let writes = (0..WRITES_WITHOUT_QUORUM).map(|index| async move {
            let key = format!("no-quorum/{index:03}");
            match client.put(key.clone(), value_for(&key)).await {
                Ok(()) => panic!("put {key} succeeded with 3 of 5 members down"),
                Err(error) => (key, error),
            }
        });
        let read = async {
            match client.get("all-up/000").await {
                Ok(value) => panic!("a linearizable read succeeded without a quorum: {value:?}"),
                Err(error) => eprintln!("linearizable read without a quorum: {error}"),
            }
        };
        let (failed, ()) = futures_lite::future::zip(join_all(writes.collect()), read).await;
        client.close();
        failed
    });
    for (key, error) in &failed {
        eprintln!("without a quorum, put {key}: {error}");
    }
    phase("refused without a quorum");
    // The CLI says the same with exit code 3.
    let output = cluster.cli(&["put", "no-quorum/cli", "x"], 2_000);
    output.expect_code(3, "put without a quorum");

    // Everyone back: the cluster serves again, the failed writes are all-or-nothing.
    for id in [followers[0], followers[1], third] {
        cluster.restart(id);
    }
    phase("restarted");
    cluster.wait_for_leader();
    phase("leader with all back");
    serve_writes_and_reads(cluster.client_config(), "back-up/");
    phase("served with all back");
    let config = cluster.client_config();
    block_on("after-recovery", move || async move {
        let client = KvClient::connect(config).await.expect("connect");
        for (key, _) in &failed {
            match client.get(key.clone()).await.expect("get a failed write") {
                None => eprintln!("{key}: absent"),
                Some(value) => {
                    assert_eq!(
                        value,
                        Bytes::from(value_for(key)),
                        "{key} has a wrong value"
                    );
                    eprintln!("{key}: present");
                }
            }
        }
        match client.get("no-quorum/cli").await.expect("get") {
            None => {}
            Some(value) => assert_eq!(value, Bytes::from("x")),
        }
        // The earlier phases' writes survived it all.
        for prefix in ["all-up/", "two-down/"] {
            let (pairs, _) = client.scan_prefix(prefix, 1_000).await.expect("scan");
            assert_eq!(pairs.len(), OPERATIONS, "every {prefix} write is there");
        }
        client.close();
    });
    cluster.assert_all_running();
}
