//! Changing the membership of a running cluster of real processes with the `tern member` and
//! `tern leader` commands: a fourth machine joins as a learner (`tern serve --join`), catches
//! up, is promoted to voter; the leader removes itself and hands over; leadership moves on
//! request; refused changes say why; and every write stays readable throughout.

mod cluster_common;

use cluster_common::{block_on, Cluster, ClusterOptions};
use tern_net::kv_client::KvClient;

/// Keys written before and after the changes.
const KEYS: usize = 200;
/// Milliseconds a membership command may take (it waits for its change to commit).
const CHANGE_TIMEOUT_MS: u64 = 20_000;
/// Longest time without a successful write while the membership changes under the workload:
/// a leader that removes itself hands over first, so the gap is about one election, far
/// below this; generous for a loaded CI machine, and far below a stall.
const LONGEST_WRITE_GAP_MAX: std::time::Duration = std::time::Duration::from_secs(5);

fn write_keys(cluster: &Cluster, prefix: &str) {
    let config = cluster.client_config();
    let prefix = prefix.to_string();
    block_on("writes", move || async move {
        let client = KvClient::connect(config).await.expect("connect");
        for i in 0..KEYS {
            client
                .put(format!("{prefix}{i:04}"), format!("v{i}"))
                .await
                .expect("put");
        }
        client.close();
    });
}

fn assert_keys(cluster: &Cluster, prefix: &str) {
    let config = cluster.client_config();
    let prefix = prefix.to_string();
    block_on("reads", move || async move {
        let client = KvClient::connect(config).await.expect("connect");
        for i in [0, KEYS / 2, KEYS - 1] {
            let value = client.get(format!("{prefix}{i:04}")).await.expect("get");
            assert_eq!(
                value.as_deref(),
                Some(format!("v{i}").as_bytes()),
                "{prefix}{i}"
            );
        }
        client.close();
    });
}

/// The `ID ROLE ...` rows of `tern member` output, as (id, role) pairs.
fn members(stdout: &str) -> Vec<(u64, String)> {
    stdout
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cells = line.split_whitespace();
            let id = cells.next()?.parse().ok()?;
            Some((id, cells.next()?.to_string()))
        })
        .collect()
}

#[test]
fn a_member_joins_is_promoted_the_leader_leaves_and_leadership_moves() {
    let mut options = ClusterOptions::new(3);
    options.spares = 1;
    let mut cluster = Cluster::start_with(options);
    let first_leader = cluster.wait_for_leader();
    write_keys(&cluster, "before/");

    let listed = cluster.cli(&["member", "list"], CHANGE_TIMEOUT_MS);
    listed.expect_code(0, "member list");
    let voters = |out: &str| -> Vec<u64> {
        members(out)
            .into_iter()
            .filter(|(_, role)| role == "voter")
            .map(|(id, _)| id)
            .collect()
    };
    assert_eq!(voters(&listed.stdout), vec![1, 2, 3], "{}", listed.stdout);

    // Refusals: usage errors exit 2, refused changes exit 3 with the reason.
    let bad = cluster.cli(
        &[
            "member",
            "add",
            "4",
            "--peer-addr",
            "nowhere",
            "--client-addr",
            "x",
        ],
        CHANGE_TIMEOUT_MS,
    );
    bad.expect_code(2, "member add with a bad address");
    assert!(bad.stderr.contains("\"nowhere\""), "{}", bad.stderr);
    let unknown = cluster.cli(&["member", "promote", "9"], CHANGE_TIMEOUT_MS);
    unknown.expect_code(3, "promote an unknown node");
    assert!(
        unknown.stderr.contains("not a member"),
        "{}",
        unknown.stderr
    );

    // Node 4 joins as a learner and catches up.
    let (peer4, client4) = (
        cluster.peer_addr(4).to_string(),
        cluster.client_addr(4).to_string(),
    );
    let member4 = format!("4={peer4}");
    let added = cluster.cli(
        &["member", "add", &member4, "--client-addr", &client4],
        CHANGE_TIMEOUT_MS,
    );
    added.expect_code(0, "member add");
    assert!(
        members(&added.stdout).contains(&(4, "learner".into())),
        "{}",
        added.stdout
    );
    let json = cluster.cli(&["member", "list", "-w", "json"], CHANGE_TIMEOUT_MS);
    json.expect_code(0, "member list -w json");
    let listed: serde_json::Value = serde_json::from_str(&json.stdout)
        .unwrap_or_else(|error| panic!("member list -w json: {error}: {}", json.stdout));
    let roles: Vec<(u64, String)> = listed["members"]
        .as_array()
        .expect("a members array")
        .iter()
        .map(|member| {
            (
                member["id"].as_u64().expect("an id"),
                member["role"].as_str().expect("a role").to_string(),
            )
        })
        .collect();
    assert!(
        roles.contains(&(4, "learner".to_string())),
        "{}",
        json.stdout
    );
    assert_eq!(
        listed["committed"],
        serde_json::Value::Bool(true),
        "{}",
        json.stdout
    );
    let again = cluster.cli(
        &[
            "member",
            "add",
            "4",
            "--peer-addr",
            &peer4,
            "--client-addr",
            &client4,
        ],
        CHANGE_TIMEOUT_MS,
    );
    again.expect_code(3, "adding a member twice");
    assert!(
        again.stderr.contains("already a member"),
        "{}",
        again.stderr
    );
    cluster.start_joining(4);
    let applied = cluster
        .status(first_leader)
        .expect("leader status")
        .applied_index;
    cluster.wait_until_applied(4, applied);

    let promoted = cluster.cli(&["member", "promote", "4"], CHANGE_TIMEOUT_MS);
    promoted.expect_code(0, "member promote");
    assert_eq!(
        voters(&promoted.stdout),
        vec![1, 2, 3, 4],
        "{}",
        promoted.stdout
    );
    assert!(
        promoted.stdout.contains(": committed"),
        "{}",
        promoted.stdout
    );

    // The leader removes itself: it hands over, and the other three go on.
    let removed = cluster.cli(
        &["member", "remove", &first_leader.to_string()],
        CHANGE_TIMEOUT_MS,
    );
    removed.expect_code(0, "member remove (the leader)");
    let remaining: Vec<u64> = (1..=4).filter(|id| *id != first_leader).collect();
    assert_eq!(voters(&removed.stdout), remaining, "{}", removed.stdout);
    cluster.terminate(first_leader);
    let leader = cluster.wait_for_leader();
    assert_ne!(leader, first_leader);
    write_keys(&cluster, "after/");
    assert_keys(&cluster, "before/");
    assert_keys(&cluster, "after/");

    // Leadership moves on request, to the joined node if it does not lead already.
    let target = if leader == 4 { remaining[0] } else { 4 };
    let moved = cluster.cli(
        &["leader", "transfer", &target.to_string()],
        CHANGE_TIMEOUT_MS,
    );
    moved.expect_code(0, "leader transfer");
    assert_eq!(cluster.wait_for_leader(), target);
    let to_removed = cluster.cli(
        &["leader", "transfer", &first_leader.to_string()],
        CHANGE_TIMEOUT_MS,
    );
    to_removed.expect_code(3, "transfer to a removed member");
    assert_keys(&cluster, "after/");
}

/// Grows 3 members to 5 (learners, then promoted) and removes two of the originals, the
/// leader last, while a writer keeps putting: no acknowledged write is lost and the writes go
/// on. Prints the longest gap between two successful writes.
#[test]
fn grow_to_five_and_remove_two_originals_under_a_running_workload() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let mut options = ClusterOptions::new(3);
    options.spares = 2;
    let mut cluster = Cluster::start_with(options);
    let leader = cluster.wait_for_leader();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, config) = (stop.clone(), cluster.client_config());
        std::thread::spawn(move || {
            block_on("writer", move || async move {
                let client = KvClient::connect(config).await.expect("connect");
                let mut acknowledged = Vec::new();
                let mut last_success = Instant::now();
                let mut longest_gap = Duration::ZERO;
                let mut number = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("load/{number:06}");
                    number += 1;
                    if client.put(key.clone(), key.clone()).await.is_ok() {
                        longest_gap = longest_gap.max(last_success.elapsed());
                        last_success = Instant::now();
                        acknowledged.push(key);
                    }
                }
                client.close();
                (acknowledged, longest_gap)
            })
        })
    };

    for id in [4u64, 5] {
        let (peer, client) = (
            cluster.peer_addr(id).to_string(),
            cluster.client_addr(id).to_string(),
        );
        let id_text = id.to_string();
        let added = cluster.cli(
            &[
                "member",
                "add",
                &id_text,
                "--peer-addr",
                &peer,
                "--client-addr",
                &client,
            ],
            CHANGE_TIMEOUT_MS,
        );
        added.expect_code(0, "member add");
        cluster.start_joining(id);
    }
    for id in [4u64, 5] {
        let applied = cluster.status(leader).expect("leader status").applied_index;
        cluster.wait_until_applied(id, applied);
        cluster
            .cli(&["member", "promote", &id.to_string()], CHANGE_TIMEOUT_MS)
            .expect_code(0, "member promote");
    }
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    for removed in [follower, leader] {
        let out = cluster.cli(
            &["member", "remove", &removed.to_string()],
            CHANGE_TIMEOUT_MS,
        );
        out.expect_code(0, "member remove");
        assert!(
            !members(&out.stdout).iter().any(|(id, _)| *id == removed),
            "{}",
            out.stdout
        );
        cluster.terminate(removed);
    }
    let new_leader = cluster.wait_for_leader();
    assert!(new_leader != leader && new_leader != follower);
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, longest_gap) = writer.join().expect("writer thread");
    println!(
        "{} writes acknowledged; longest gap between successful writes {:?}",
        acknowledged.len(),
        longest_gap
    );
    assert!(
        acknowledged.len() > 100,
        "the workload stalled: {}",
        acknowledged.len()
    );
    assert!(
        longest_gap < LONGEST_WRITE_GAP_MAX,
        "writes stalled for {longest_gap:?} during the changes (bound {LONGEST_WRITE_GAP_MAX:?})"
    );

    let config = cluster.client_config();
    let missing = block_on("verify", move || async move {
        let client = KvClient::connect(config).await.expect("connect");
        let mut missing = Vec::new();
        for key in acknowledged {
            if client.get(key.clone()).await.expect("get").as_deref() != Some(key.as_bytes()) {
                missing.push(key);
            }
        }
        client.close();
        missing
    });
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
}

#[test]
fn a_joiner_with_certificates_from_another_ca_is_refused_and_nothing_changes() {
    use std::time::{Duration, Instant};

    let mut options = ClusterOptions::new(3);
    options.spares = 1;
    let mut cluster = Cluster::start_with(options);
    let leader = cluster.wait_for_leader();
    write_keys(&cluster, "before/");
    let member4 = format!("4={}", cluster.peer_addr(4));
    let client4 = cluster.client_addr(4).to_string();
    cluster
        .cli(
            &["member", "add", &member4, "--client-addr", &client4],
            CHANGE_TIMEOUT_MS,
        )
        .expect_code(0, "member add");
    let listed_before = cluster.cli(&["member", "list"], CHANGE_TIMEOUT_MS);
    listed_before.expect_code(0, "member list");

    // Node 4 starts with certificates of its own CA: a second `tern certs` run.
    let foreign = cluster.root().join("foreign-certs");
    tern_net::certs::write_cluster_certificates(&foreign, &[1, 2, 3, 4], false)
        .expect("write the other CA's certificates");
    cluster.use_tls_dir(4, &foreign);
    cluster.start_joining(4);

    // Both sides say why, in their logs: the members' dials to node 4 are refused, and
    // node 4 refuses their certificates.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (log4, leader_log) = (cluster.log_tail(4, 400), cluster.log_tail(leader, 400));
        if log4.contains("refused connection: TLS handshake failed")
            && leader_log.contains("TLS handshake was refused")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the refused handshakes were not named in the logs:\nnode 4:\n{log4}\nleader:\n{leader_log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nothing reached node 4, and the cluster is as it was and keeps serving.
    let log4 = cluster.log_tail(4, 400);
    assert!(!log4.contains("installed the leader's snapshot"), "{log4}");
    assert!(
        cluster.status(4).is_err(),
        "node 4 answered a client of the cluster's CA"
    );
    let listed_after = cluster.cli(&["member", "list"], CHANGE_TIMEOUT_MS);
    listed_after.expect_code(0, "member list");
    assert_eq!(listed_before.stdout, listed_after.stdout);
    write_keys(&cluster, "after/");
    assert_keys(&cluster, "before/");
    assert_keys(&cluster, "after/");
}
