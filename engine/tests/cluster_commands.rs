//! A 3-node cluster of real `tern serve` processes answers every client command, through the
//! `tern` CLI and through the client library.

mod cluster_common;

use std::time::Duration;

use bytes::Bytes;
use cluster_common::{block_on, scan_all, CliOutput, Cluster, ClusterOptions};
use tern_net::kv_client::KvClient;

/// The CLI's own deadline per command: a hang guard (the cluster is healthy).
const CLI_TIMEOUT_MS: u64 = 30_000;
/// Times `tern status` is asked until it shows one leader (elections may be under way).
const STATUS_ATTEMPTS_MAX: usize = 25;

/// The `KEY<TAB>VALUE` lines of a scan.
fn scan_lines(output: &CliOutput) -> Vec<(String, String)> {
    output
        .stdout
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

#[test]
fn cli_answers_every_command() {
    let mut cluster = Cluster::start(3);
    cluster.wait_for_leader();

    // put, get, get of a missing key.
    let put = cluster.cli(&["put", "alpha", "one"], CLI_TIMEOUT_MS);
    put.expect_code(0, "put alpha");
    assert_eq!(put.stdout.trim(), "OK", "put prints OK");
    let get = cluster.cli(&["get", "alpha"], CLI_TIMEOUT_MS);
    get.expect_code(0, "get alpha");
    assert_eq!(get.stdout.trim(), "one");
    cluster
        .cli(&["get", "missing"], CLI_TIMEOUT_MS)
        .expect_code(1, "get of a missing key");

    // del: existing, then the same key again (not found).
    cluster
        .cli(&["del", "alpha"], CLI_TIMEOUT_MS)
        .expect_code(0, "del alpha");
    cluster
        .cli(&["get", "alpha"], CLI_TIMEOUT_MS)
        .expect_code(1, "get after del");
    cluster
        .cli(&["del", "alpha"], CLI_TIMEOUT_MS)
        .expect_code(1, "del of a missing key");

    // cas --expect: a match swaps, a mismatch does not (exit 1) and changes nothing.
    cluster
        .cli(&["put", "counter", "v1"], CLI_TIMEOUT_MS)
        .expect_code(0, "put counter");
    cluster
        .cli(&["cas", "counter", "--expect", "v1", "v2"], CLI_TIMEOUT_MS)
        .expect_code(0, "cas with the right expectation");
    cluster
        .cli(&["cas", "counter", "--expect", "v1", "v3"], CLI_TIMEOUT_MS)
        .expect_code(1, "cas with a stale expectation");
    let get = cluster.cli(&["get", "counter"], CLI_TIMEOUT_MS);
    get.expect_code(0, "get counter");
    assert_eq!(get.stdout.trim(), "v2", "only the matching cas took effect");

    // cas --absent: only when the key does not exist.
    cluster
        .cli(&["cas", "fresh", "--absent", "first"], CLI_TIMEOUT_MS)
        .expect_code(0, "cas --absent on a new key");
    cluster
        .cli(&["cas", "fresh", "--absent", "second"], CLI_TIMEOUT_MS)
        .expect_code(1, "cas --absent on an existing key");
    let get = cluster.cli(&["get", "fresh"], CLI_TIMEOUT_MS);
    get.expect_code(0, "get fresh");
    assert_eq!(get.stdout.trim(), "first");

    // scan PREFIX (with and without --limit) and scan --range, in key order.
    for (key, value) in [
        ("p/1", "a"),
        ("p/2", "b"),
        ("p/3", "c"),
        ("p/4", "d"),
        ("p/5", "e"),
        ("q/1", "outside"),
    ] {
        cluster
            .cli(&["put", key, value], CLI_TIMEOUT_MS)
            .expect_code(0, "put for the scans");
    }
    let scan = cluster.cli(&["scan", "p/"], CLI_TIMEOUT_MS);
    scan.expect_code(0, "scan p/");
    assert_eq!(
        scan_lines(&scan),
        pairs(&[
            ("p/1", "a"),
            ("p/2", "b"),
            ("p/3", "c"),
            ("p/4", "d"),
            ("p/5", "e")
        ])
    );
    let scan = cluster.cli(&["scan", "p/", "--limit", "3"], CLI_TIMEOUT_MS);
    scan.expect_code(0, "scan p/ --limit 3");
    assert_eq!(
        scan_lines(&scan),
        pairs(&[("p/1", "a"), ("p/2", "b"), ("p/3", "c")])
    );
    let scan = cluster.cli(&["scan", "--range", "p/2", "p/4"], CLI_TIMEOUT_MS);
    scan.expect_code(0, "scan --range p/2 p/4");
    assert_eq!(scan_lines(&scan), pairs(&[("p/2", "b"), ("p/3", "c")]));
    let scan = cluster.cli(
        &["scan", "--range", "p/", "q/2", "--limit", "2"],
        CLI_TIMEOUT_MS,
    );
    scan.expect_code(0, "scan --range p/ q/2 --limit 2");
    assert_eq!(scan_lines(&scan), pairs(&[("p/1", "a"), ("p/2", "b")]));

    // status: a row per member, exactly one leader. Asked again (a bounded number of times)
    // while an election is under way: on a loaded machine leadership may move at any time.
    let mut status_rows = Vec::new();
    for _ in 0..STATUS_ATTEMPTS_MAX {
        let status = cluster.cli(&["status"], CLI_TIMEOUT_MS);
        status.expect_code(0, "status");
        let rows: Vec<Vec<String>> = status
            .stdout
            .lines()
            .map(|line| {
                line.split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|words| {
                words
                    .first()
                    .is_some_and(|word| word.parse::<u64>().is_ok())
            })
            .collect();
        assert_eq!(rows.len(), 3, "one row per member:\n{}", status.stdout);
        let leaders = rows
            .iter()
            .filter(|row| row.get(2).is_some_and(|role| role == "leader"))
            .count();
        status_rows = rows;
        if leaders == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let leaders: Vec<&Vec<String>> = status_rows
        .iter()
        .filter(|row| row.get(2).is_some_and(|role| role == "leader"))
        .collect();
    assert_eq!(leaders.len(), 1, "exactly one leader row: {status_rows:?}");
    let leader = cluster.wait_for_leader();
    eprintln!("status rows: {status_rows:?}; leader now {leader}");

    // A usage error is exit code 2.
    cluster
        .cli(&["cas", "counter", "v9"], CLI_TIMEOUT_MS)
        .expect_code(2, "cas without --expect or --absent");

    // `tern certs` writes a full certificate set.
    let certs = cluster.root().join("cli-certs");
    let certs_arg = certs.display().to_string();
    cluster
        .run_cli(&["certs", "--dir", certs_arg.as_str(), "--node", "1,2,3"])
        .expect_code(0, "tern certs");
    for file in [
        "ca.pem",
        "node-1.pem",
        "node-1.key",
        "node-3.pem",
        "node-3.key",
        "client.pem",
        "client.key",
    ] {
        assert!(certs.join(file).is_file(), "tern certs wrote {file}");
    }

    cluster.assert_all_running();
}

#[test]
fn client_library_answers_every_command() {
    let mut cluster = Cluster::start(3);
    cluster.wait_for_leader();
    let config = cluster.client_config();
    block_on("commands-client", move || async move {
        let client = KvClient::connect(config).await.expect("connect");

        // put / get / get missing.
        client.put("k1", "v1").await.expect("put k1");
        assert_eq!(
            client.get("k1").await.expect("get k1"),
            Some(Bytes::from("v1"))
        );
        assert_eq!(client.get("nothing").await.expect("get missing"), None);

        // overwrite.
        client.put("k1", "v1b").await.expect("overwrite k1");
        assert_eq!(
            client.get("k1").await.expect("get k1"),
            Some(Bytes::from("v1b"))
        );

        // delete: existed, then not.
        assert!(client.delete("k1").await.expect("delete k1"), "k1 existed");
        assert!(
            !client.delete("k1").await.expect("delete k1 again"),
            "k1 is gone"
        );
        assert_eq!(client.get("k1").await.expect("get deleted"), None);

        // compare-and-swap on a value, and on absence.
        client.put("cas", "old").await.expect("put cas");
        let swapped = client
            .compare_and_swap("cas", Some(Bytes::from("old")), "new")
            .await
            .expect("cas old->new");
        assert!(swapped.succeeded);
        let refused = client
            .compare_and_swap("cas", Some(Bytes::from("old")), "newer")
            .await
            .expect("stale cas");
        assert!(!refused.succeeded, "a stale expectation does not swap");
        assert_eq!(
            refused.current,
            Some(Bytes::from("new")),
            "reports the current value"
        );
        let absent = client
            .compare_and_swap("created", None, "first")
            .await
            .expect("cas absent");
        assert!(absent.succeeded);
        let present = client
            .compare_and_swap("created", None, "second")
            .await
            .expect("cas absent again");
        assert!(!present.succeeded);
        assert_eq!(present.current, Some(Bytes::from("first")));
        assert_eq!(
            client.get("created").await.unwrap(),
            Some(Bytes::from("first"))
        );

        // compare-and-delete.
        let kept = client
            .compare_and_delete("cas", "old")
            .await
            .expect("cad mismatch");
        assert!(!kept.succeeded);
        let removed = client
            .compare_and_delete("cas", "new")
            .await
            .expect("cad match");
        assert!(removed.succeeded);
        assert_eq!(client.get("cas").await.unwrap(), None);

        // ranges and prefix scans, with limits.
        for index in 0..20u32 {
            client
                .put(format!("r/{index:02}"), format!("value {index}"))
                .await
                .expect("put r/");
        }
        client.put("s/after", "outside").await.expect("put s/");
        let (page, more) = client
            .range("r/05", Some(Bytes::from("r/10")), 100)
            .await
            .expect("range");
        let keys: Vec<Bytes> = page.iter().map(|(key, _)| key.clone()).collect();
        let expected: Vec<Bytes> = (5..10).map(|i| Bytes::from(format!("r/{i:02}"))).collect();
        assert_eq!(keys, expected);
        assert!(!more);
        assert_eq!(page[0].1, Bytes::from("value 5"));
        let (page, more) = client.scan_prefix("r/", 7).await.expect("scan_prefix");
        assert_eq!(page.len(), 7);
        assert!(more, "13 more pairs exist beyond the limit");
        assert_eq!(page[6].0, Bytes::from("r/06"));
        let all = scan_all(&client, b"r/").await.expect("scan_all");
        assert_eq!(all.len(), 20);
        let (page, _) = client.range("s/", None, 100).await.expect("open range");
        assert_eq!(page, vec![(Bytes::from("s/after"), Bytes::from("outside"))]);

        assert!(client.leader().is_some(), "the client learned the leader");
        client.close();
    });
    cluster.assert_all_running();
}

/// A client whose first operations are reads can then write: reads use sequence numbers too,
/// so its first write may arrive with `answered_through > 0` at a server that has no session
/// for it yet, which must not be taken for an expired session. One fresh client per member
/// listed first (the first contact is then the leader once, a follower otherwise).
#[test]
fn fresh_client_writes_after_reading_first() {
    let mut cluster = Cluster::start(3);
    cluster.wait_for_leader();
    for first in cluster.ids() {
        let mut config = cluster.client_config();
        config
            .endpoints
            .sort_by_key(|addr| *addr != cluster.client_addr(first));
        block_on("reads-then-write", move || async move {
            let client = KvClient::connect(config).await.expect("connect");
            let key = format!("written-after-reads/{first}");
            assert_eq!(client.get(key.clone()).await.expect("get"), None);
            let (pairs, _) = client.scan_prefix("any/", 10).await.expect("scan");
            assert!(pairs.is_empty());
            assert_eq!(client.get("untouched").await.expect("get"), None);
            client
                .put(key.clone(), "yes")
                .await
                .unwrap_or_else(|error| {
                    panic!("the first write of a client that read first (first contact {first}): {error}")
                });
            assert_eq!(
                client.get(key).await.expect("get"),
                Some(Bytes::from("yes"))
            );
            client.close();
        });
    }
    cluster.assert_all_running();
}

/// Without certificates (`--insecure` on the nodes and the clients) the same commands work.
#[test]
fn insecure_cluster_answers_cli_and_client() {
    let mut options = ClusterOptions::new(3);
    options.tls = false;
    let mut cluster = Cluster::start_with(options);
    cluster.wait_for_leader();
    cluster
        .cli(&["put", "plain", "text"], CLI_TIMEOUT_MS)
        .expect_code(0, "insecure put");
    let get = cluster.cli(&["get", "plain"], CLI_TIMEOUT_MS);
    get.expect_code(0, "insecure get");
    assert_eq!(get.stdout.trim(), "text");
    let config = cluster.client_config();
    block_on("insecure-client", move || async move {
        let client = KvClient::connect(config).await.expect("connect");
        assert_eq!(
            client.get("plain").await.expect("get"),
            Some(Bytes::from("text"))
        );
        client.put("plain", "changed").await.expect("put");
        client.close();
    });
    let get = cluster.cli(&["get", "plain"], CLI_TIMEOUT_MS);
    get.expect_code(0, "insecure get after the client's put");
    assert_eq!(get.stdout.trim(), "changed");
    cluster.assert_all_running();
}
