//! Three nodes as threads of this process on loopback, driven through the raw client protocol
//! (`tern_net::transport::Client` with hand-encoded `tern_kv::Command`s): writes are
//! acknowledged by the leader and readable linearizably there and serializably on a follower; a
//! follower answers "not leader"; invalid and oversized commands are refused while the node
//! keeps serving; a restarted node still has its data; a fully stopped and restarted cluster
//! still has every acknowledged write. Only hang guards, no timing assertions.

use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use tern_engine::node::{self, NodeConfig, NodeError, Shutdown, TlsMode};
use tern_kv::{Command, CommandResult};
use tern_net::message::{
    ClientError, ClientOutcome, ClientRequest, ClientRequestBatch, NodeStatus, ReadConsistency,
    StatusRequest,
};
use tern_net::runtime::{self, run_executor};
use tern_net::tls::{Identity, Security};
use tern_net::transport::{Client, ClientReply, Limits};
use tern_net::NodeId;

/// Hang guard for one network step (a reply, a connection).
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Hang guard for waiting until a condition holds (a leader elected, a follower caught up).
const CONDITION_POLLS_MAX: usize = 300;
const CONDITION_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The test's value bound (small so an oversized value is cheap to send).
const VALUE_BYTES_MAX: usize = 16 << 10;

/// A running node: its shutdown handle and the thread running `node::run`.
type RunningNode = (Shutdown, JoinHandle<Result<(), NodeError>>);

struct Cluster {
    configs: Vec<NodeConfig>,
    nodes: Vec<Option<RunningNode>>,
    /// How test clients authenticate (matches the nodes' TLS mode).
    security: Security,
}

impl Cluster {
    fn new(data: &Path) -> Cluster {
        Cluster::with_tls(data, TlsMode::Insecure, Security::Insecure)
    }

    fn with_tls(data: &Path, tls: TlsMode, security: Security) -> Cluster {
        let ports = free_ports(6);
        let peers: Vec<(NodeId, SocketAddr)> = (0..3).map(|i| (i as u64 + 1, ports[i])).collect();
        let clients: Vec<(NodeId, SocketAddr)> =
            (0..3).map(|i| (i as u64 + 1, ports[3 + i])).collect();
        let configs = (0..3)
            .map(|i| {
                let id = i as u64 + 1;
                let mut config = NodeConfig::new(
                    id,
                    peers.clone(),
                    clients[i].1,
                    data.join(format!("node-{id}")),
                    tls.clone(),
                );
                config.peer_client_addrs = clients.clone();
                config.wal_segment_bytes = 1 << 20;
                config.kv_limits.value_bytes_max = VALUE_BYTES_MAX;
                config.kv_limits.command_bytes_max = 64 << 10;
                config
            })
            .collect();
        let mut cluster = Cluster {
            configs,
            nodes: vec![None, None, None],
            security,
        };
        for id in 1..=3 {
            cluster.start(id);
        }
        cluster
    }

    fn start(&mut self, id: NodeId) {
        let config = self.configs[id as usize - 1].clone();
        let shutdown = Shutdown::new();
        let handle = {
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name(format!("test-node-{id}"))
                .spawn(move || node::run(config, shutdown))
                .expect("spawn node thread")
        };
        self.nodes[id as usize - 1] = Some((shutdown, handle));
    }

    /// Stops node `id` and checks it stopped cleanly.
    fn stop(&mut self, id: NodeId) {
        let (shutdown, handle) = self.nodes[id as usize - 1].take().expect("node running");
        shutdown.trigger();
        let result = handle.join().expect("node thread did not panic");
        assert!(result.is_ok(), "node {id} stopped with {result:?}");
    }

    fn client_addr(&self, id: NodeId) -> SocketAddr {
        self.configs[id as usize - 1].client_addr
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (shutdown, _) in self.nodes.iter().flatten() {
            shutdown.trigger();
        }
        for (_, handle) in self.nodes.iter_mut().filter_map(Option::take) {
            let _ = handle.join();
        }
    }
}

/// Ports the kernel just gave out and released (UDP, loopback).
fn free_ports(count: usize) -> Vec<SocketAddr> {
    let sockets: Vec<UdpSocket> = (0..count)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    sockets
        .iter()
        .map(|socket| socket.local_addr().expect("local address"))
        .collect()
}

/// Runs `future` or fails the test after `STEP_TIMEOUT`.
async fn guarded<T>(what: &str, future: impl Future<Output = T>) -> T {
    let timeout = async {
        runtime::sleep(STEP_TIMEOUT).await;
        None
    };
    match futures_lite::future::or(async { Some(future.await) }, timeout).await {
        Some(value) => value,
        None => panic!("hang guard: {what} took longer than {STEP_TIMEOUT:?}"),
    }
}

async fn connect(cluster: &Cluster, id: NodeId) -> Client {
    let addr = cluster.client_addr(id);
    guarded(
        "connect",
        Client::connect(&cluster.security, addr, id, &Limits::default()),
    )
    .await
    .unwrap_or_else(|error| panic!("connect to node {id} at {addr}: {error}"))
}

async fn status(client: &mut Client) -> NodeStatus {
    client
        .send(&StatusRequest { request_id: 7 })
        .await
        .expect("send status request");
    match guarded("status reply", client.receive())
        .await
        .expect("status reply")
    {
        ClientReply::Status(status) => status,
        other => panic!("expected a status, got {other:?}"),
    }
}

/// Sends one batch and collects a reply for every sequence in it (plus whether a `NotLeader`
/// frame came with it).
async fn request(
    client: &mut Client,
    client_id: u64,
    consistency: ReadConsistency,
    commands: Vec<(u64, Vec<u8>)>,
) -> (
    Vec<(u64, ClientOutcome)>,
    Option<tern_net::message::NotLeader>,
) {
    let expected = commands.len();
    let batch = ClientRequestBatch {
        client_id,
        answered_through: 0,
        read_consistency: consistency,
        requests: commands
            .into_iter()
            .map(|(sequence, command)| ClientRequest { sequence, command })
            .collect(),
    };
    client.send(&batch).await.expect("send batch");
    let mut outcomes = Vec::new();
    let mut not_leader = None;
    // A "not leader" answer also comes with a NotLeader frame; wait for both.
    let waiting_for_frame = |outcomes: &Vec<(u64, ClientOutcome)>, frame: &Option<_>| {
        frame.is_none()
            && outcomes.iter().any(|(_, outcome)| {
                matches!(outcome, ClientOutcome::Error(ClientError::NotLeader { .. }))
            })
    };
    while outcomes.len() < expected || waiting_for_frame(&outcomes, &not_leader) {
        match guarded("answers", client.receive()).await.expect("reply") {
            ClientReply::Responses(batch) => {
                assert_eq!(batch.client_id, client_id);
                outcomes.extend(batch.responses.into_iter().map(|r| (r.sequence, r.outcome)));
            }
            ClientReply::NotLeader(frame) => not_leader = Some(frame),
            ClientReply::Status(status) => panic!("unexpected status {status:?}"),
            ClientReply::Admin(admin) => panic!("unexpected admin answer {admin:?}"),
        }
    }
    outcomes.sort_by_key(|(sequence, _)| *sequence);
    (outcomes, not_leader)
}

fn put(key: &str, value: &[u8]) -> Vec<u8> {
    Command::Put {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value),
    }
    .to_bytes()
}

fn get(key: &str) -> Vec<u8> {
    Command::Get {
        key: Bytes::copy_from_slice(key.as_bytes()),
    }
    .to_bytes()
}

fn result(outcome: &ClientOutcome) -> CommandResult {
    match outcome {
        ClientOutcome::Ok(bytes) => CommandResult::decode(bytes).expect("result decodes"),
        ClientOutcome::Error(error) => panic!("request failed: {error:?}"),
    }
}

fn value(index: usize) -> Vec<u8> {
    format!("value-{index}").into_bytes()
}

/// Polls every node's status until all of `running` name the same leader.
async fn wait_for_leader(cluster: &Cluster, running: &[NodeId]) -> NodeId {
    for _ in 0..CONDITION_POLLS_MAX {
        let mut named = Vec::new();
        for &id in running {
            let mut client = connect(cluster, id).await;
            named.push(status(&mut client).await.leader_id);
            client.close();
        }
        if let Some(leader) = named[0] {
            if named.iter().all(|other| *other == Some(leader)) {
                return leader;
            }
        }
        runtime::sleep(CONDITION_POLL_INTERVAL).await;
    }
    panic!("hang guard: no leader agreed on after {CONDITION_POLLS_MAX} polls");
}

/// Polls a serializable read of `key` on node `id` until it returns `expected`.
async fn wait_for_value(cluster: &Cluster, id: NodeId, key: &str, expected: &[u8]) {
    let mut client = connect(cluster, id).await;
    let mut last = None;
    for _ in 0..CONDITION_POLLS_MAX {
        let (outcomes, _) = request(
            &mut client,
            900,
            ReadConsistency::Serializable,
            vec![(1, get(key))],
        )
        .await;
        let found = result(&outcomes[0].1);
        if found == CommandResult::Value(Some(Bytes::copy_from_slice(expected))) {
            client.close();
            return;
        }
        last = Some(found);
        runtime::sleep(CONDITION_POLL_INTERVAL).await;
    }
    panic!("hang guard: node {id} never served {key} = {expected:?}; last answer {last:?}");
}

#[test]
fn three_nodes_serve_writes_and_reads_and_survive_restarts() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info,tern_net::tls=error")
        .try_init();
    let data = tempfile::tempdir().expect("temporary directory");
    let cluster = Cluster::new(data.path());
    let cluster_thread = run_executor("test-client", move || async move {
        let mut cluster = cluster;
        let leader = wait_for_leader(&cluster, &[1, 2, 3]).await;
        let follower = if leader == 1 { 2 } else { 1 };

        // Writes at the leader are acknowledged, one result per command.
        let mut client = connect(&cluster, leader).await;
        let writes: Vec<(u64, Vec<u8>)> = (1..=20)
            .map(|i| (i as u64, put(&format!("key-{i}"), &value(i))))
            .collect();
        let (outcomes, not_leader) =
            request(&mut client, 1, ReadConsistency::ServerDefault, writes).await;
        assert!(not_leader.is_none());
        assert_eq!(outcomes.len(), 20);
        for (sequence, outcome) in &outcomes {
            assert_eq!(
                result(outcome),
                CommandResult::Written,
                "sequence {sequence}"
            );
        }

        // Linearizable and lease reads at the leader see them.
        for consistency in [ReadConsistency::Linearizable, ReadConsistency::Lease] {
            let (outcomes, _) = request(
                &mut client,
                2,
                consistency,
                vec![(1, get("key-5")), (2, get("nope"))],
            )
            .await;
            assert_eq!(
                result(&outcomes[0].1),
                CommandResult::Value(Some(Bytes::from(value(5))))
            );
            assert_eq!(result(&outcomes[1].1), CommandResult::Value(None));
        }

        // A retried write (same client id and sequence) gets its first result, applied once.
        let (outcomes, _) = request(
            &mut client,
            1,
            ReadConsistency::ServerDefault,
            vec![(3, put("key-3", b"overwritten?"))],
        )
        .await;
        assert_eq!(result(&outcomes[0].1), CommandResult::Written);
        let (outcomes, _) = request(
            &mut client,
            2,
            ReadConsistency::Linearizable,
            vec![(3, get("key-3"))],
        )
        .await;
        assert_eq!(
            result(&outcomes[0].1),
            CommandResult::Value(Some(Bytes::from(value(3)))),
            "a retry must not be applied again"
        );

        // Bad input is refused, and the node keeps serving.
        let oversized = put("big", &vec![7u8; VALUE_BYTES_MAX + 1]);
        let (outcomes, _) = request(
            &mut client,
            3,
            ReadConsistency::ServerDefault,
            vec![
                (1, vec![0xff, 0x00, 0x13]),
                (2, oversized),
                (3, put("after", b"bad")),
            ],
        )
        .await;
        assert!(
            matches!(
                &outcomes[0].1,
                ClientOutcome::Error(ClientError::InvalidCommand { .. })
            ),
            "{:?}",
            outcomes[0]
        );
        assert!(
            matches!(
                &outcomes[1].1,
                ClientOutcome::Error(ClientError::TooLarge { .. })
            ),
            "{:?}",
            outcomes[1]
        );
        assert_eq!(result(&outcomes[2].1), CommandResult::Written);
        client.close();

        // A follower refuses writes and linearizable reads with "not leader", naming the leader.
        let mut at_follower = connect(&cluster, follower).await;
        let (outcomes, not_leader) = request(
            &mut at_follower,
            4,
            ReadConsistency::Linearizable,
            vec![(1, put("x", b"y")), (2, get("key-1"))],
        )
        .await;
        for (_, outcome) in &outcomes {
            assert_eq!(
                outcome,
                &ClientOutcome::Error(ClientError::NotLeader {
                    leader_id: Some(leader)
                })
            );
        }
        let not_leader = not_leader.expect("a NotLeader frame");
        assert_eq!(not_leader.leader_id, Some(leader));
        assert_eq!(
            not_leader.leader_addr,
            Some(cluster.client_addr(leader).to_string())
        );
        at_follower.close();
        // ... and eventually serves serializable reads of the leader's writes.
        wait_for_value(&cluster, follower, "key-20", &value(20)).await;

        // A restarted follower still has the data.
        cluster.stop(follower);
        cluster.start(follower);
        wait_for_value(&cluster, follower, "key-7", &value(7)).await;
        wait_for_value(&cluster, follower, "after", b"bad").await;

        // Every node stopped and started again: every acknowledged write is there.
        for id in 1..=3 {
            cluster.stop(id);
        }
        for id in 1..=3 {
            cluster.start(id);
        }
        let leader = wait_for_leader(&cluster, &[1, 2, 3]).await;
        let mut client = connect(&cluster, leader).await;
        let reads: Vec<(u64, Vec<u8>)> = (1..=20)
            .map(|i| (i as u64, get(&format!("key-{i}"))))
            .collect();
        let (outcomes, _) = request(&mut client, 5, ReadConsistency::Linearizable, reads).await;
        for (sequence, outcome) in &outcomes {
            assert_eq!(
                result(outcome),
                CommandResult::Value(Some(Bytes::from(value(*sequence as usize)))),
                "key-{sequence} after a full restart"
            );
        }
        // And it still takes writes.
        let (outcomes, _) = request(
            &mut client,
            6,
            ReadConsistency::ServerDefault,
            vec![(1, put("later", b"ok"))],
        )
        .await;
        assert_eq!(result(&outcomes[0].1), CommandResult::Written);
        client.close();
        drop(cluster);
    })
    .expect("start the test executor");
    cluster_thread.join().expect("test body passed");
}

#[test]
fn mutual_tls_cluster_serves_writes_and_reads() {
    let data = tempfile::tempdir().expect("temporary directory");
    let certs = data.path().join("certs");
    tern_net::certs::write_cluster_certificates(&certs, &[1, 2, 3], false)
        .expect("write certificates");
    let client_credentials =
        tern_net::certs::load_credentials(&certs, Identity::Client).expect("client credentials");
    let cluster = Cluster::with_tls(
        data.path(),
        TlsMode::Directory(certs),
        Security::MutualTls(client_credentials),
    );
    run_executor("test-tls-client", move || async move {
        let leader = wait_for_leader(&cluster, &[1, 2, 3]).await;
        let mut client = connect(&cluster, leader).await;
        let (outcomes, _) = request(
            &mut client,
            1,
            ReadConsistency::ServerDefault,
            vec![(1, put("secure", b"yes"))],
        )
        .await;
        assert_eq!(result(&outcomes[0].1), CommandResult::Written);
        let (outcomes, _) = request(
            &mut client,
            2,
            ReadConsistency::Linearizable,
            vec![(1, get("secure"))],
        )
        .await;
        assert_eq!(
            result(&outcomes[0].1),
            CommandResult::Value(Some(Bytes::from_static(b"yes")))
        );
        client.close();
        drop(cluster);
    })
    .expect("start the test executor")
    .join()
    .expect("test body passed");
}

#[test]
fn validate_names_the_bad_setting() {
    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }
    let peers = vec![(1, addr(7001)), (2, addr(7002)), (3, addr(7003))];
    let config = NodeConfig::new(
        1,
        peers,
        addr(8001),
        "/tmp/unused".into(),
        TlsMode::Insecure,
    );
    assert_eq!(config.validate(), Ok(()));
    // The default segment holds the default largest command, and a smaller command bound lets
    // a smaller segment through.
    let mut small = config.clone();
    small.wal_segment_bytes = 1 << 20;
    small.kv_limits.command_bytes_max = (1 << 20) - 8192;
    assert_eq!(small.validate(), Ok(()));
    type BreakIt = Box<dyn Fn(&mut NodeConfig)>;
    let cases: Vec<(&str, BreakIt)> = vec![
        ("not in peers", Box::new(|c| c.id = 9)),
        ("client_addr", Box::new(|c| c.client_addr = addr(7001))),
        ("client_executors", Box::new(|c| c.client_executors = 2)),
        (
            "proposal_batch_commands_max",
            Box::new(|c| c.proposal_batch_commands_max = 0),
        ),
        (
            "wal_segment_bytes",
            Box::new(|c| c.wal_segment_bytes = 5000),
        ),
        (
            "wal_segment_bytes",
            Box::new(|c| c.wal_segment_bytes = 8 << 30),
        ),
        // A segment must hold the node's largest entry: the largest command plus headers.
        (
            "cannot hold the largest command",
            Box::new(|c| c.wal_segment_bytes = c.kv_limits.command_bytes_max),
        ),
        (
            "cannot hold the largest command",
            Box::new(|c| {
                c.wal_segment_bytes = 1 << 20;
                c.kv_limits.command_bytes_max = 1 << 20;
            }),
        ),
        (
            "election_timeout_ms_min",
            Box::new(|c| c.heartbeat_interval_ms = 100),
        ),
        (
            "clock_drift_margin_ms",
            Box::new(|c| c.clock_drift_margin_ms = 150),
        ),
    ];
    for (expected, break_it) in cases {
        let mut broken = config.clone();
        break_it(&mut broken);
        let error = broken.validate().expect_err(expected);
        assert!(
            error.contains(expected),
            "{error:?} should mention {expected:?}"
        );
    }
}
