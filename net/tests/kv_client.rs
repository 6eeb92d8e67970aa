//! The client library against a fake 3-node cluster (see `kv_fake`): leader discovery and
//! caching, redirects, exactly-once retries, pipelining, timeouts, local refusals, status.

mod common;
mod kv_fake;

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use common::{guarded, run, secure, test_limits, wait_until};
use kv_fake::{FakeCluster, Hints};
use tern_kv::Command;
use tern_net::certs::ClusterCa;
use tern_net::kv_client::{node_status, Compared, KvClient, KvClientConfig, KvError};
use tern_net::message::{NodeId, ReadConsistency};
use tern_net::tls::{Identity, Security};
use tern_net::transport::{Client, Limits};

fn insecure(_: NodeId) -> Security {
    Security::Insecure
}

fn config(endpoints: Vec<std::net::SocketAddr>) -> KvClientConfig {
    KvClientConfig {
        attempt_timeout: Duration::from_millis(300),
        operation_timeout: Duration::from_secs(20),
        limits: test_limits(),
        ..KvClientConfig::new(endpoints, Security::Insecure)
    }
}

async fn connect(config: KvClientConfig) -> KvClient {
    guarded("client connect", KvClient::connect(config))
        .await
        .unwrap()
}

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

#[test]
fn a_follower_endpoint_redirects_by_address_and_every_operation_works() {
    run(|| async {
        let cluster = FakeCluster::start(3, insecure, test_limits());
        {
            let mut state = cluster.state.borrow_mut();
            state.hints = Hints::IdAndAddr;
            // As the node does: a per-request "not leader" (id only) before the frame.
            state.per_request_not_leader = true;
        }
        // Only node 2 is configured: node 1 (the leader) can only be found through the hint's
        // address.
        let client = connect(config(vec![cluster.addr(2)])).await;
        let ops = async {
            client.put("a/1", "one").await.unwrap();
            assert_eq!(client.leader(), Some(1));
            client.put("a/2", "two").await.unwrap();
            client.put("b/1", "other").await.unwrap();
            assert_eq!(client.get("a/1").await.unwrap(), Some(b("one")));
            assert_eq!(client.get("missing").await.unwrap(), None);
            assert!(client.delete("a/2").await.unwrap());
            assert!(!client.delete("a/2").await.unwrap());
            let swapped = client.compare_and_swap("a/3", None, "three").await.unwrap();
            assert!(swapped.succeeded);
            let refused = client
                .compare_and_swap("a/3", Some(b("wrong")), "x")
                .await
                .unwrap();
            assert_eq!(
                refused,
                Compared {
                    succeeded: false,
                    current: Some(b("three"))
                }
            );
            let refused = client.compare_and_delete("a/3", "wrong").await.unwrap();
            assert!(!refused.succeeded);
            assert_eq!(refused.current, Some(b("three")));
            assert!(
                client
                    .compare_and_delete("a/3", "three")
                    .await
                    .unwrap()
                    .succeeded
            );
            client.put("a/4", "four").await.unwrap();
            let (pairs, more) = client.scan_prefix("a/", 10).await.unwrap();
            assert_eq!(pairs, vec![(b("a/1"), b("one")), (b("a/4"), b("four"))]);
            assert!(!more);
            let (pairs, more) = client.range("a/", None, 2).await.unwrap();
            assert_eq!(pairs, vec![(b("a/1"), b("one")), (b("a/4"), b("four"))]);
            assert!(more, "b/1 lies beyond the limit");
            let (pairs, _) = client.range("a/2", Some(b("b/2")), 10).await.unwrap();
            assert_eq!(pairs, vec![(b("a/4"), b("four")), (b("b/1"), b("other"))]);
        };
        guarded("operations", ops).await;
        let state = cluster.state.borrow();
        assert!(state.batches_at(2) >= 1, "the first request went to node 2");
        assert_eq!(state.batches_at(3), 0, "node 3 was never needed");
        assert!(state.applied_twice().is_empty());
    });
}

#[test]
fn not_leader_by_id_goes_to_the_known_node_and_no_hint_searches_the_endpoints() {
    run(|| async {
        let cluster = FakeCluster::start(3, insecure, test_limits());
        cluster.state.borrow_mut().hints = Hints::IdOnly;
        let client = connect(config(vec![
            cluster.addr(2),
            cluster.addr(3),
            cluster.addr(1),
        ]))
        .await;
        // Node 1's address is unknown by id at first: the client tries the endpoints in turn.
        guarded("first put", client.put("k", "1")).await.unwrap();
        assert_eq!(client.leader(), Some(1));
        let node3_batches = cluster.state.borrow().batches_at(3);

        // Node 2 leads now; node 1 names it by id only, and the client knows node 2's address.
        cluster.set_leader(2);
        guarded("put after the change", client.put("k", "2"))
            .await
            .unwrap();
        assert_eq!(client.leader(), Some(2));
        assert_eq!(
            cluster.state.borrow().batches_at(3),
            node3_batches,
            "the hint by id led straight to node 2"
        );

        // Node 3 leads and nobody says so: the client searches.
        cluster.state.borrow_mut().hints = Hints::Nothing;
        cluster.set_leader(3);
        guarded("put with no hint", client.put("k", "3"))
            .await
            .unwrap();
        assert_eq!(client.leader(), Some(3));
        let state = cluster.state.borrow();
        assert_eq!(state.store.get(&b("k")), Some(&b("3")));
        assert!(state.applied_twice().is_empty());
    });
}

#[test]
fn a_write_waits_out_an_election_with_stale_hints() {
    run(|| async {
        let cluster = FakeCluster::start(3, insecure, test_limits());
        let client = connect(config(vec![
            cluster.addr(1),
            cluster.addr(2),
            cluster.addr(3),
        ]))
        .await;
        // Nobody leads, and the followers name node 1, which denies it: the client keeps
        // going round (with pauses) until node 3 wins.
        {
            let mut state = cluster.state.borrow_mut();
            state.leader = 0;
            state.hints = Hints::Stale(1);
        }
        let client = Rc::new(client);
        let put = {
            let client = client.clone();
            glommio::spawn_local(async move { client.put("k", "v").await })
        };
        let state = cluster.state.clone();
        wait_until("redirects", || state.borrow().seen.len() >= 20).await;
        assert!(state.borrow().applied.is_empty());
        {
            let mut state = state.borrow_mut();
            state.leader = 3;
            state.hints = Hints::IdAndAddr;
        }
        guarded("put", put).await.unwrap();
        assert_eq!(client.leader(), Some(3));
        let state = state.borrow();
        assert_eq!(state.store.get(&b("k")), Some(&b("v")));
        assert!(state.applied_twice().is_empty());
        let sequences: std::collections::BTreeSet<u64> =
            state.seen.iter().map(|s| s.sequence).collect();
        assert_eq!(
            sequences.len(),
            1,
            "every attempt carried the same sequence"
        );
    });
}

/// A UDP socket that reads QUIC packets and answers none (a dead node's address), counting
/// the handshakes begun: distinct destination connection ids of Initial packets.
struct BlackHole {
    addr: std::net::SocketAddr,
    handshakes: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<Vec<u8>>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl BlackHole {
    fn start() -> BlackHole {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let handshakes: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<Vec<u8>>>> =
            Default::default();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let handshakes = handshakes.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut datagram = [0u8; 2048];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(len) = socket.recv(&mut datagram) else {
                        continue;
                    };
                    // Long header (bit 7), Initial (type bits 00): version in bytes 1..5, then
                    // the destination connection id's length and the id.
                    let packet = &datagram[..len];
                    if len < 6 || packet[0] & 0x80 == 0 || packet[0] & 0x30 != 0 {
                        continue;
                    }
                    let id_len = usize::from(packet[5]);
                    if let Some(id) = packet.get(6..6 + id_len) {
                        handshakes.lock().unwrap().insert(id.to_vec());
                    }
                }
            })
        };
        BlackHole {
            addr,
            handshakes,
            stop,
            reader: Some(reader),
        }
    }

    fn handshakes_begun(&self) -> usize {
        self.handshakes.lock().unwrap().len()
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

#[test]
fn a_dead_endpoint_is_not_dialled_again_at_every_leader_change() {
    run(|| async {
        let cluster = FakeCluster::start(3, insecure, test_limits());
        let dead = BlackHole::start();
        // Nobody hints: each leader change sends the client round the endpoints, the dead one
        // among them.
        cluster.state.borrow_mut().hints = Hints::Nothing;
        let client = connect(KvClientConfig {
            attempt_timeout: Duration::from_millis(100),
            ..config(vec![
                cluster.addr(1),
                cluster.addr(2),
                cluster.addr(3),
                dead.addr,
            ])
        })
        .await;
        const LEADER_CHANGES: u64 = 15;
        for change in 0..LEADER_CHANGES {
            cluster.set_leader(1 + change % 3);
            let value = change.to_string();
            guarded("put", client.put("k", value.clone()))
                .await
                .unwrap();
            assert_eq!(client.leader(), Some(1 + change % 3));
        }
        // Going round without passing over it, every third change dials it (5 of 15). Passed
        // over for UNREACHABLE_SKIP_MS after the first failure: once (twice if the run was
        // slow enough for the mark to expire).
        let begun = dead.handshakes_begun();
        assert!(
            (1..=2).contains(&begun),
            "{begun} handshakes begun with the dead endpoint over {LEADER_CHANGES} leader changes"
        );
        let state = cluster.state.borrow();
        assert_eq!(
            state.store.get(&b("k")),
            Some(&b(&(LEADER_CHANGES - 1).to_string()))
        );
        assert!(state.applied_twice().is_empty());
    });
}

#[test]
fn a_hint_naming_a_dead_leader_is_followed_once() {
    run(|| async {
        let cluster = FakeCluster::start(3, insecure, test_limits());
        let dead = BlackHole::start();
        // Node 4 is the dead leader: the followers still name it (by id and address), as
        // they do until their election timeout. Node 3 leads already.
        {
            let mut state = cluster.state.borrow_mut();
            state.addrs.push(dead.addr);
            state.leader = 3;
            state.hints = Hints::Stale(4);
        }
        // Each call gets little time (as the election probes of tern-perf do): the one that
        // follows the stale hint ends in the dial.
        let client = connect(KvClientConfig {
            attempt_timeout: Duration::from_millis(100),
            operation_timeout: Duration::from_millis(150),
            ..config(vec![cluster.addr(1), cluster.addr(2), cluster.addr(3)])
        })
        .await;
        let mut succeeded = 0;
        for call in 0..6 {
            let value = call.to_string();
            if client.put("k", value).await.is_ok() {
                succeeded += 1;
            }
        }
        let begun = dead.handshakes_begun();
        assert_eq!(begun, 1, "handshakes begun with the dead leader");
        assert!(
            succeeded >= 5,
            "{succeeded} of 6 calls succeeded (one may be spent on the stale hint)"
        );
        assert_eq!(client.leader(), Some(3));
    });
}

#[test]
fn writes_continue_when_the_leader_changes_mid_stream() {
    run(|| async {
        let cluster = FakeCluster::start(3, insecure, test_limits());
        {
            let mut state = cluster.state.borrow_mut();
            state.hints = Hints::IdAndAddr;
            state.per_request_not_leader = true;
        }
        // Node 2 leads after 100 writes, node 3 after 200 (node 3 is not a configured endpoint:
        // reached through the hint).
        cluster.state.borrow_mut().leader_after_applied = vec![(100, 2), (200, 3)];
        let client = Rc::new(connect(config(vec![cluster.addr(1), cluster.addr(2)])).await);
        const WORKERS: usize = 4;
        const PUTS_PER_WORKER: usize = 75;
        let mut tasks = Vec::new();
        for worker in 0..WORKERS {
            let client = client.clone();
            tasks.push(glommio::spawn_local(async move {
                for i in 0..PUTS_PER_WORKER {
                    let key = format!("w{worker}/{i:03}");
                    client.put(key.clone(), key).await?;
                }
                Ok::<(), KvError>(())
            }));
        }
        for task in tasks {
            guarded("worker", task).await.unwrap();
        }
        assert_eq!(client.leader(), Some(3));
        let state = cluster.state.borrow();
        assert!(state.applied_twice().is_empty(), "a write applied twice");
        assert_eq!(state.applied.len(), WORKERS * PUTS_PER_WORKER);
        for worker in 0..WORKERS {
            for i in 0..PUTS_PER_WORKER {
                let key = format!("w{worker}/{i:03}");
                assert_eq!(state.store.get(key.as_bytes()), Some(&b(&key)));
            }
        }
        assert!(state.batches_at(3) > 0);
    });
}

#[test]
fn a_lost_response_is_retried_with_the_same_sequence_and_applied_once() {
    run(|| async {
        let cluster = FakeCluster::start(3, insecure, test_limits());
        let client = connect(KvClientConfig {
            attempt_timeout: Duration::from_millis(100),
            ..config(vec![cluster.addr(1), cluster.addr(2)])
        })
        .await;
        cluster.state.borrow_mut().drop_write_responses = 1;
        // A compare-and-swap shows the difference: applied again, it would fail (the key is
        // no longer absent); answered from the session, it reports the first outcome.
        let swapped = guarded("cas", client.compare_and_swap("k", None, "v"))
            .await
            .unwrap();
        assert!(
            swapped.succeeded,
            "the retry got the first attempt's result"
        );
        let command = Command::CompareAndSwap {
            key: b("k"),
            expected: None,
            new_value: b("v"),
        }
        .to_bytes();
        retried_and_applied_once(&cluster, &client, &command);

        // The leader applies, loses the answer, and then loses its leadership: the retry
        // reaches the new leader with the same sequence, which answers from the (replicated)
        // session instead of applying again.
        {
            let mut state = cluster.state.borrow_mut();
            state.drop_write_responses = 1;
            let next = state.applied.len() + 1;
            state.leader_after_applied = vec![(next, 2)];
        }
        let swapped = guarded(
            "cas across a leader change",
            client.compare_and_swap("j", None, "v"),
        )
        .await
        .unwrap();
        assert!(
            swapped.succeeded,
            "the retry got the first attempt's result"
        );
        assert_eq!(client.leader(), Some(2));
        let command = Command::CompareAndSwap {
            key: b("j"),
            expected: None,
            new_value: b("v"),
        }
        .to_bytes();
        let sends = retried_and_applied_once(&cluster, &client, &command);
        assert!(sends.iter().any(|s| s.node == 1) && sends.iter().any(|s| s.node == 2));
    });
}

/// The requests that carried `command`: at least two (a retry), all with one sequence, and
/// applied once.
fn retried_and_applied_once(
    cluster: &FakeCluster,
    client: &KvClient,
    command: &[u8],
) -> Vec<kv_fake::Seen> {
    let state = cluster.state.borrow();
    let sends: Vec<_> = state
        .seen
        .iter()
        .filter(|s| s.command == command)
        .cloned()
        .collect();
    assert!(
        sends.len() >= 2,
        "sent {} times, expected a retry",
        sends.len()
    );
    assert!(
        sends.iter().all(|s| s.sequence == sends[0].sequence),
        "retries carry the same sequence: {sends:?}"
    );
    assert_eq!(
        state.applied_count(client.client_id(), sends[0].sequence),
        1
    );
    assert!(state.applied_twice().is_empty());
    sends
}

#[test]
fn answered_through_follows_the_answers() {
    run(|| async {
        let cluster = FakeCluster::start(1, insecure, test_limits());
        let client = connect(config(vec![cluster.addr(1)])).await;
        let calls = async {
            // Reads alone create no session on the server: they must not lift
            // answered_through before a write was answered (a first write with
            // answered_through > 0 would read as "my session expired").
            client.get("a").await.unwrap();
            client.get("b").await.unwrap();
            client.put("k0", "v").await.unwrap();
            client.put("k1", "v").await.unwrap();
            client.get("k1").await.unwrap();
            client.put("k2", "v").await.unwrap();
        };
        guarded("calls", calls).await;
        let state = cluster.state.borrow();
        let seen: Vec<(u64, u64)> = state
            .seen
            .iter()
            .map(|s| (s.sequence, s.answered_through))
            .collect();
        assert_eq!(seen, vec![(1, 0), (2, 0), (3, 0), (4, 3), (5, 4), (6, 4)]);
        assert!(state.seen.iter().all(|s| s.client_id == client.client_id()));
        assert_ne!(client.client_id(), 0);
    });
}

#[test]
fn concurrent_puts_share_one_connection_in_few_frames() {
    run(|| async {
        let cluster = FakeCluster::start(3, insecure, test_limits());
        let client = Rc::new(connect(config(vec![cluster.addr(1)])).await);
        const PUTS: usize = 256;
        let tasks: Vec<_> = (0..PUTS)
            .map(|i| {
                let client = client.clone();
                glommio::spawn_local(async move { client.put(format!("k{i:03}"), "v").await })
            })
            .collect();
        for task in tasks {
            guarded("put", task).await.unwrap();
        }
        let state = cluster.state.borrow();
        assert_eq!(state.applied.len(), PUTS);
        assert!(state.applied_twice().is_empty());
        let frames = state.batches_at(1);
        assert!(
            frames <= PUTS / 8,
            "{PUTS} concurrent puts took {frames} frames"
        );
        assert_eq!(client.frames_sent(), frames as u64);
        assert_eq!(cluster.transports[0].stats().client_connections_accepted, 1);
    });
}

#[test]
fn in_flight_and_batch_bounds_hold() {
    run(|| async {
        let cluster = FakeCluster::start(1, insecure, test_limits());
        let client = Rc::new(
            connect(KvClientConfig {
                inflight_requests_max: 16,
                batch_requests_max: 8,
                attempt_timeout: Duration::from_millis(500),
                ..config(vec![cluster.addr(1)])
            })
            .await,
        );
        // The node reads but does not answer: calls beyond the 16 in flight must wait.
        cluster.state.borrow_mut().silent.push(1);
        const PUTS: usize = 64;
        let tasks: Vec<_> = (0..PUTS)
            .map(|i| {
                let client = client.clone();
                glommio::spawn_local(async move { client.put(format!("k{i:03}"), "v").await })
            })
            .collect();
        let state = cluster.state.clone();
        wait_until("16 requests", || state.borrow().seen.len() >= 16).await;
        tern_net::runtime::sleep(Duration::from_millis(100)).await;
        {
            let state = state.borrow();
            let mut sequences: Vec<u64> = state.seen.iter().map(|s| s.sequence).collect();
            sequences.sort_unstable();
            sequences.dedup();
            assert_eq!(sequences.len(), 16, "only 16 requests may be in flight");
        }
        state.borrow_mut().silent.clear();
        for task in tasks {
            guarded("put", task).await.unwrap();
        }
        let state = state.borrow();
        assert_eq!(state.applied.len(), PUTS);
        assert!(state.applied_twice().is_empty());
        assert!(state.batch_requests_high_water <= 8);
    });
}

#[test]
fn no_reachable_endpoint_is_a_timeout() {
    run(|| async {
        // Addresses with nothing listening.
        let endpoints = common::free_addrs(3);
        let result = guarded(
            "connect",
            KvClient::connect(KvClientConfig {
                attempt_timeout: Duration::from_millis(200),
                operation_timeout: Duration::from_secs(1),
                ..config(endpoints)
            }),
        )
        .await;
        match result {
            Err(KvError::Timeout {
                elapsed_ms,
                last_problem,
            }) => {
                assert!(elapsed_ms >= 1_000, "gave up early: {elapsed_ms} ms");
                assert!(!last_problem.is_empty());
            }
            Err(other) => panic!("expected a timeout, got {other}"),
            Ok(_) => panic!("connected to nothing"),
        }

        // A cluster that goes away under a connected client.
        let cluster = FakeCluster::start(3, insecure, test_limits());
        let client = connect(KvClientConfig {
            attempt_timeout: Duration::from_millis(200),
            operation_timeout: Duration::from_secs(1),
            ..config(vec![cluster.addr(1), cluster.addr(2), cluster.addr(3)])
        })
        .await;
        guarded("put", client.put("k", "v")).await.unwrap();
        cluster.stop();
        drop(cluster);
        let result = guarded("put to a stopped cluster", client.put("k", "w")).await;
        assert!(
            matches!(result, Err(KvError::Timeout { elapsed_ms, .. }) if elapsed_ms >= 1_000),
            "{result:?}"
        );
    });
}

#[test]
fn unavailable_is_retried_until_the_operation_timeout() {
    run(|| async {
        let cluster = FakeCluster::start(3, insecure, test_limits());
        let client = connect(KvClientConfig {
            operation_timeout: Duration::from_secs(2),
            ..config(vec![cluster.addr(1), cluster.addr(2), cluster.addr(3)])
        })
        .await;
        cluster.state.borrow_mut().unavailable_writes = 5;
        guarded("put", client.put("k", "v")).await.unwrap();
        {
            let state = cluster.state.borrow();
            assert_eq!(state.unavailable_writes, 0, "answered unavailable 5 times");
            assert_eq!(state.applied.len(), 1);
            assert!(state.applied_twice().is_empty());
        }

        // Unavailable for good: a timeout that says why.
        cluster.state.borrow_mut().unavailable_writes = usize::MAX;
        let result = guarded("put", client.put("k", "w")).await;
        match result {
            Err(KvError::Timeout { last_problem, .. }) => {
                assert!(last_problem.contains("overloaded, retry"), "{last_problem}")
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(cluster.state.borrow().store.get(&b("k")), Some(&b("v")));
    });
}

#[test]
fn a_command_too_large_for_a_frame_is_refused_without_sending() {
    run(|| async {
        let cluster = FakeCluster::start(1, insecure, test_limits());
        let client = connect(KvClientConfig {
            limits: Limits {
                frame_bytes_max: 64 << 10,
                ..test_limits()
            },
            ..config(vec![cluster.addr(1)])
        })
        .await;
        let result = guarded("oversized put", client.put("k", vec![7u8; 100 << 10])).await;
        match result {
            Err(KvError::Refused(text)) => assert!(text.contains("frame_bytes_max"), "{text}"),
            other => panic!("expected a local refusal, got {other:?}"),
        }
        assert!(
            cluster.state.borrow().seen.is_empty(),
            "nothing was sent for it"
        );

        // The server's own limit: refused with both sizes in the message.
        cluster.state.borrow_mut().command_bytes_max = 1_000;
        let result = guarded(
            "put over the server limit",
            client.put("k", vec![7u8; 2_000]),
        )
        .await;
        match result {
            Err(KvError::Refused(text)) => {
                let command_bytes = Command::Put {
                    key: b("k"),
                    value: Bytes::from(vec![7u8; 2_000]),
                }
                .to_bytes()
                .len();
                assert!(text.contains("1000 bytes"), "{text}");
                assert!(text.contains(&format!("{command_bytes} bytes")), "{text}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // The client goes on.
        guarded("small put", client.put("k", "v")).await.unwrap();
        assert_eq!(cluster.state.borrow().store.get(&b("k")), Some(&b("v")));
    });
}

#[test]
fn a_serializable_read_is_served_by_the_follower_it_reached() {
    run(|| async {
        let cluster = FakeCluster::start(3, insecure, test_limits());
        cluster.state.borrow_mut().store.insert(b("k"), b("v"));
        let client = connect(KvClientConfig {
            read_consistency: ReadConsistency::Serializable,
            ..config(vec![cluster.addr(2)])
        })
        .await;
        assert_eq!(guarded("get", client.get("k")).await.unwrap(), Some(b("v")));
        assert_eq!(
            cluster.state.borrow().batches_at(1),
            0,
            "the leader was not asked"
        );
        // Writes still go to the leader.
        guarded("put", client.put("k", "w")).await.unwrap();
        assert_eq!(client.leader(), Some(1));
        assert_eq!(cluster.state.borrow().store.get(&b("k")), Some(&b("w")));
    });
}

#[test]
fn node_status_returns_the_node_s_status() {
    run(|| async {
        let cluster = FakeCluster::start(3, insecure, test_limits());
        let status = guarded(
            "status",
            node_status(
                cluster.addr(2),
                &Security::Insecure,
                Duration::from_secs(10),
            ),
        )
        .await
        .unwrap();
        assert_eq!(status.node_id, 2);
        assert_eq!(status.role, "follower");
        assert_eq!(status.leader_id, Some(1));
        assert_eq!(status.client_addr, cluster.addr(2).to_string());
        assert_eq!(status.last_index, 102);
        assert_eq!(status.leader_client_addr, Some(cluster.addr(1).to_string()));

        let nobody = common::free_addrs(1)[0];
        let result = guarded(
            "status of nobody",
            node_status(nobody, &Security::Insecure, Duration::from_millis(300)),
        )
        .await;
        assert!(matches!(result, Err(KvError::Timeout { .. })), "{result:?}");
    });
}

#[test]
fn mutual_tls_any_node_is_accepted_and_another_ca_is_not() {
    run(|| async {
        let ca = ClusterCa::generate("test").unwrap();
        let nodes: Vec<Security> = (1..=3).map(|id| secure(&ca, Identity::Node(id))).collect();
        let cluster =
            FakeCluster::start(3, move |id| nodes[id as usize - 1].clone(), test_limits());
        let client_security = secure(&ca, Identity::Client);

        let (raw, node) = guarded(
            "connect_any",
            Client::connect_any(&client_security, cluster.addr(3), &test_limits()),
        )
        .await
        .unwrap();
        assert_eq!(node, 3);
        raw.close();

        let client = connect(KvClientConfig {
            security: client_security.clone(),
            ..config(vec![cluster.addr(2)])
        })
        .await;
        guarded("put", client.put("k", "v")).await.unwrap();
        assert_eq!(guarded("get", client.get("k")).await.unwrap(), Some(b("v")));
        assert_eq!(client.leader(), Some(1));
        let status = guarded(
            "status",
            node_status(cluster.addr(1), &client_security, Duration::from_secs(10)),
        )
        .await
        .unwrap();
        assert_eq!(status.role, "leader");

        // A client certificate from another CA is refused in the handshake.
        let stranger = secure(&ClusterCa::generate("other").unwrap(), Identity::Client);
        let result = guarded(
            "connect_any with another CA",
            Client::connect_any(&stranger, cluster.addr(1), &test_limits()),
        )
        .await;
        assert!(result.is_err(), "another CA's client was accepted");
        let result = guarded(
            "client with another CA",
            KvClient::connect(KvClientConfig {
                security: stranger,
                attempt_timeout: Duration::from_millis(200),
                operation_timeout: Duration::from_millis(600),
                ..config(vec![cluster.addr(1)])
            }),
        )
        .await;
        assert!(
            matches!(result, Err(KvError::Security(_))),
            "another CA's client: {:?}",
            result.map(|_| ())
        );
    });
}

/// Connects and reads one key: the first error, from whichever step failed.
async fn connect_and_get(config: KvClientConfig) -> Result<(), KvError> {
    let client = KvClient::connect(config).await?;
    client.get("k").await.map(|_| ())
}

#[test]
fn a_tls_mismatch_on_every_endpoint_fails_at_once_with_what_to_do() {
    run(|| async {
        let ca = ClusterCa::generate("test").unwrap();
        let nodes: Vec<Security> = (1..=3).map(|id| secure(&ca, Identity::Node(id))).collect();
        let cluster =
            FakeCluster::start(3, move |id| nodes[id as usize - 1].clone(), test_limits());
        let endpoints: Vec<_> = (1..=3).map(|id| cluster.addr(id)).collect();
        // An operation timeout past the hang guard: retrying the refusal would trip the guard.
        let patient = |security: Security| KvClientConfig {
            security,
            operation_timeout: Duration::from_secs(120),
            ..config(endpoints.clone())
        };

        // Insecure against mutual TLS: the nodes refuse it after its side of the handshake.
        let result = guarded(
            "insecure client",
            connect_and_get(patient(Security::Insecure)),
        )
        .await;
        match result {
            Err(KvError::Security(advice)) => {
                assert!(advice.contains("--tls-dir"), "{advice}");
                assert!(advice.contains("mutual TLS"), "{advice}");
            }
            other => panic!("insecure client against mutual TLS: {other:?}"),
        }

        // Another CA's certificates: the client refuses the nodes' certificates.
        let stranger = secure(&ClusterCa::generate("other").unwrap(), Identity::Client);
        match guarded("another CA", connect_and_get(patient(stranger.clone()))).await {
            Err(KvError::Security(advice)) => {
                assert!(advice.contains("not issued by"), "{advice}");
            }
            other => panic!("client of another CA: {other:?}"),
        }
        match guarded(
            "status with another CA",
            node_status(cluster.addr(1), &stranger, Duration::from_secs(120)),
        )
        .await
        {
            Err(KvError::Security(_)) => {}
            other => panic!("status from a client of another CA: {other:?}"),
        }

        // The right certificates still work (nothing above was sticky).
        let client = connect(patient(secure(&ca, Identity::Client))).await;
        guarded("put", client.put("k", "v")).await.unwrap();
    });
}

#[test]
fn bad_configurations_are_refused() {
    run(|| async {
        let result = KvClient::connect(config(Vec::new())).await;
        assert!(matches!(result, Err(KvError::Config(_))));
        let addrs = common::free_addrs(1);
        let result = KvClient::connect(KvClientConfig {
            inflight_requests_max: 0,
            ..config(addrs)
        })
        .await;
        assert!(matches!(result, Err(KvError::Config(_))));
    });
}

#[test]
fn close_ends_pending_calls() {
    run(|| async {
        let cluster = FakeCluster::start(1, insecure, test_limits());
        let client = Rc::new(connect(config(vec![cluster.addr(1)])).await);
        cluster.state.borrow_mut().silent.push(1);
        let pending = {
            let client = client.clone();
            glommio::spawn_local(async move { client.put("k", "v").await })
        };
        let state = cluster.state.clone();
        wait_until("the request", || !state.borrow().seen.is_empty()).await;
        client.close();
        assert_eq!(guarded("pending put", pending).await, Err(KvError::Closed));
        assert_eq!(client.put("k", "v").await, Err(KvError::Closed));
    });
}
