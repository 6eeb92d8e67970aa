//! Stop every member of a 3-node cluster and start them again on the same data directories:
//! every acknowledged write is there. Once with SIGTERM or SIGINT (graceful, exit status 0) and
//! once with kill -9 (the WAL syncs before acknowledging, so a process kill loses nothing
//! acknowledged).

mod cluster_common;

use std::collections::BTreeMap;

use bytes::Bytes;
use cluster_common::{block_on, join_all, scan_all, value_for, Cluster};
use tern_net::kv_client::{KvClient, KvClientConfig};

/// Keys written per round.
const KEYS: usize = 300;
/// Writer tasks per round.
const WRITERS: usize = 16;

/// Writes round `round`'s keys (puts, then overwrites and deletes of part of the earlier
/// rounds' keys) and returns the whole expected store afterwards.
fn write_round(
    config: KvClientConfig,
    round: usize,
    mut expected: BTreeMap<Bytes, Bytes>,
) -> BTreeMap<Bytes, Bytes> {
    block_on("writes", move || async move {
        let client = KvClient::connect(config).await.expect("connect");
        let keys: Vec<String> = (0..KEYS).map(|i| format!("r{round}/{i:04}")).collect();
        let chunks: Vec<Vec<String>> = keys
            .chunks(KEYS.div_ceil(WRITERS))
            .map(|chunk| chunk.to_vec())
            .collect();
        let client_ref = &client;
        join_all(
            chunks
                .into_iter()
                .map(|chunk| async move {
                    for key in chunk {
                        let value = value_for(&key);
                        client_ref.put(key.clone(), value).await.expect("put");
                    }
                })
                .collect(),
        )
        .await;
        for key in keys {
            let value = value_for(&key);
            expected.insert(Bytes::from(key), Bytes::from(value));
        }
        // Change what earlier rounds wrote: delete every 10th key, overwrite every 7th.
        let earlier: Vec<Bytes> = expected
            .keys()
            .filter(|key| !key.starts_with(format!("r{round}/").as_bytes()))
            .cloned()
            .collect();
        for (position, key) in earlier.iter().enumerate() {
            if position % 10 == 0 {
                assert!(client.delete(key.clone()).await.expect("delete"));
                expected.remove(key);
            } else if position % 7 == 0 {
                let value = Bytes::from(format!("overwritten in round {round}"));
                client
                    .put(key.clone(), value.clone())
                    .await
                    .expect("overwrite");
                expected.insert(key.clone(), value);
            }
        }
        client.close();
        expected
    })
}

/// Reads the whole store (linearizably) and compares it with `expected`.
fn verify(config: KvClientConfig, expected: &BTreeMap<Bytes, Bytes>, when: &str) {
    let expected = expected.clone();
    let when = when.to_string();
    block_on("verify", move || async move {
        let client = KvClient::connect(config).await.expect("connect");
        let seen = scan_all(&client, b"r").await.expect("scan");
        if seen != expected {
            let missing: Vec<_> = expected.keys().filter(|k| !seen.contains_key(*k)).collect();
            let extra: Vec<_> = seen.keys().filter(|k| !expected.contains_key(*k)).collect();
            let wrong: Vec<_> = expected
                .iter()
                .filter(|(k, v)| seen.get(*k).is_some_and(|s| s != *v))
                .map(|(k, _)| k)
                .collect();
            panic!(
                "{when}: the store differs: {} missing (e.g. {:?}), {} unexpected (e.g. {:?}), \
                 {} with a wrong value (e.g. {:?})",
                missing.len(),
                missing.first(),
                extra.len(),
                extra.first(),
                wrong.len(),
                wrong.first()
            );
        }
        // A point read of the first and last keys as well.
        for key in [expected.keys().next(), expected.keys().last()]
            .into_iter()
            .flatten()
        {
            assert_eq!(
                client.get(key.clone()).await.expect("get").as_ref(),
                expected.get(key),
                "{when}: get {key:?}"
            );
        }
        client.close();
    });
}

/// Writes, stops every member with `stop`, starts them all again, checks; twice.
fn stop_all_and_restart(stop: fn(&mut Cluster, u64), how: &str) {
    let mut cluster = Cluster::start(3);
    cluster.wait_for_leader();
    let mut expected = BTreeMap::new();
    for round in 0..2 {
        expected = write_round(cluster.client_config(), round, expected);
        verify(cluster.client_config(), &expected, "before the stop");
        for id in cluster.ids() {
            stop(&mut cluster, id);
        }
        assert!(cluster.running_ids().is_empty());
        for id in cluster.ids() {
            cluster.restart(id);
        }
        cluster.wait_for_leader();
        verify(
            cluster.client_config(),
            &expected,
            &format!("after {how} of every member (round {round})"),
        );
    }
    cluster.assert_all_running();
}

/// SIGTERM to odd ids, SIGINT to even ones: both must stop a node gracefully (exit 0).
fn terminate_or_interrupt(cluster: &mut Cluster, id: u64) {
    if id % 2 == 1 {
        cluster.terminate(id);
    } else {
        cluster.interrupt(id);
    }
}

#[test]
fn sigterm_or_sigint_every_member_then_restart_keeps_every_write() {
    stop_all_and_restart(terminate_or_interrupt, "SIGTERM/SIGINT");
}

#[test]
fn kill_9_every_member_then_restart_keeps_every_write() {
    stop_all_and_restart(Cluster::kill_9, "kill -9");
}
