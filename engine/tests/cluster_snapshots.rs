//! Snapshots and log compaction on real processes: with a snapshot every 100 entries, members
//! write snapshot files and drop WAL segments; a member killed while the others went on past
//! its log is caught up with the leader's snapshot (InstallSnapshot over the peer link); and
//! every member killed with -9 and restarted comes back from its snapshot plus the WAL, with
//! every acknowledged write; and a member whose newest snapshot is damaged starts from the
//! older one.

mod cluster_common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use bytes::Bytes;
use cluster_common::{block_on, join_all, scan_all, value_for, Cluster, ClusterOptions};
use tern_net::kv_client::{KvClient, KvClientConfig};

/// Applied entries between snapshots: small, so a short test takes many.
const SNAPSHOT_ENTRIES: &str = "100";
/// The smallest WAL segment, so compaction has whole segments to drop.
const WAL_SEGMENT_BYTES: &str = "65536";
/// Keys written per round, by `WRITERS` concurrent writers.
const KEYS: usize = 800;
const WRITERS: usize = 8;

fn write_keys(config: KvClientConfig, round: usize, expected: &mut BTreeMap<Bytes, Bytes>) {
    let keys: Vec<String> = (0..KEYS).map(|i| format!("s{round}/{i:04}")).collect();
    let written = keys.clone();
    block_on("writes", move || async move {
        let client = KvClient::connect(config).await.expect("connect");
        let client = &client;
        let chunks: Vec<Vec<String>> = written
            .chunks(KEYS.div_ceil(WRITERS))
            .map(|chunk| chunk.to_vec())
            .collect();
        join_all(
            chunks
                .into_iter()
                .map(|chunk| async move {
                    for key in chunk {
                        let value = value_for(&key);
                        client.put(key, value).await.expect("put");
                    }
                })
                .collect(),
        )
        .await;
        client.close();
    });
    for key in keys {
        let value = value_for(&key);
        expected.insert(Bytes::from(key), Bytes::from(value));
    }
}

fn verify(config: KvClientConfig, expected: &BTreeMap<Bytes, Bytes>, when: &str) {
    let expected = expected.clone();
    let when = when.to_string();
    block_on("verify", move || async move {
        let client = KvClient::connect(config).await.expect("connect");
        let seen = scan_all(&client, b"s").await.expect("scan");
        assert_eq!(seen.len(), expected.len(), "{when}: key count");
        assert!(seen == expected, "{when}: the store differs");
        client.close();
    });
}

fn files_with_extension(dir: &Path, extension: &str) -> usize {
    fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == extension))
            .count()
    })
}

#[test]
fn snapshots_compact_the_log_catch_up_a_member_and_survive_kill_9() {
    let mut options = ClusterOptions::new(3);
    options.extra_serve_args = vec![
        "--wal-segment-bytes".into(),
        WAL_SEGMENT_BYTES.into(),
        "--snapshot-entries".into(),
        SNAPSHOT_ENTRIES.into(),
        // A segment must hold the largest command.
        "--command-bytes-max".into(),
        "32768".into(),
    ];
    let mut cluster = Cluster::start_with(options);
    let leader = cluster.wait_for_leader();
    let mut expected = BTreeMap::new();
    write_keys(cluster.client_config(), 0, &mut expected);

    // A follower misses two rounds: the leader snapshots and compacts past its log.
    let behind = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.kill_9(behind);
    write_keys(cluster.client_config(), 1, &mut expected);
    write_keys(cluster.client_config(), 2, &mut expected);
    let leader_dir = cluster.data_dir(leader);
    let snapshot_files = files_with_extension(&leader_dir.join("snapshots"), "tsnap");
    assert_eq!(
        snapshot_files, 2,
        "the leader keeps its two newest snapshots"
    );
    let segments_kept = files_with_extension(&leader_dir.join("wal"), "seg");
    let wal_bytes: u64 = fs::read_dir(leader_dir.join("wal"))
        .unwrap()
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|metadata| metadata.len())
        .sum();
    println!("leader WAL after 2400 writes: {segments_kept} segment files, {wal_bytes} bytes");
    // 2400 writes of ~100 bytes fill several 64 KiB segments; all but the newest few go.
    assert!(
        wal_bytes < 6 * 65536,
        "the WAL was not compacted: {wal_bytes} bytes"
    );

    cluster.restart(behind);
    let leader_status = cluster.status(leader).expect("leader status");
    cluster.wait_until_applied(behind, leader_status.applied_index);
    let log = cluster.log_tail(behind, 400);
    assert!(
        log.contains("installed the leader's snapshot"),
        "member {behind} caught up without a snapshot install:\n{log}"
    );
    verify(
        cluster.node_client_config(behind),
        &expected,
        "after the catch-up",
    );
    // The transfer went through a temporary file, renamed into place on install: the
    // follower's snapshot directory holds snapshot files and no leftover piece.
    let names: Vec<String> = std::fs::read_dir(cluster.data_dir(behind).join("snapshots"))
        .expect("list the follower's snapshots")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(
        names.iter().any(|name| name.ends_with(".tsnap"))
            && !names.iter().any(|name| name.ends_with(".tmp")),
        "{names:?}"
    );

    for id in cluster.ids() {
        cluster.kill_9(id);
    }
    for id in cluster.ids() {
        cluster.restart(id);
    }
    cluster.wait_for_leader();
    verify(
        cluster.client_config(),
        &expected,
        "after kill -9 of every member",
    );
    for id in cluster.ids() {
        let log = cluster.log_tail(id, 400);
        assert!(
            log.contains("state restored from a snapshot"),
            "member {id} did not restart from a snapshot:\n{log}"
        );
    }

    // A damaged newest snapshot: the member reports it, starts from the older one plus the
    // WAL (compacted only through the older one), and still has every write.
    let damaged = cluster.ids()[0];
    cluster.kill_9(damaged);
    let snapshot_dir = cluster.data_dir(damaged).join("snapshots");
    let mut files: Vec<_> = fs::read_dir(&snapshot_dir)
        .unwrap()
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "tsnap"))
        .collect();
    files.sort();
    let newest = files.last().expect("a snapshot file").clone();
    let mut bytes = fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    fs::write(&newest, bytes).unwrap();
    cluster.restart(damaged);
    let leader = cluster.wait_for_leader();
    let applied = cluster.status(leader).expect("leader status").applied_index;
    cluster.wait_until_applied(damaged, applied);
    let log = cluster.log_tail(damaged, 400);
    assert!(
        log.contains("damaged snapshot file"),
        "member {damaged} did not report its damaged snapshot:\n{log}"
    );
    // Serializable reads: answered from that member's own map.
    let mut own_map = cluster.node_client_config(damaged);
    own_map.read_consistency = tern_net::message::ReadConsistency::Serializable;
    verify(own_map, &expected, "after a damaged snapshot (its own map)");
    cluster.assert_all_running();
}
