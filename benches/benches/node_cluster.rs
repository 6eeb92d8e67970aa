//! A whole-node probe: three in-process nodes on loopback (insecure mode, WAL on the real disk),
//! one `KvClient` with 256 concurrent puts of 256-byte values, then as many linearizable gets,
//! then sequential puts; prints the rates and times so a developer can see where a change
//! moves them. It shares 2 cores between three nodes and the client, so compare runs made
//! side by side only. The cluster bench suite (perf/) is the reference for tern's claims.
//! Run: `cargo bench -p tern-benches --bench node_cluster`.

use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tern_engine::node::{self, NodeConfig, Shutdown, TlsMode};
use tern_net::runtime::run_executor;
use tern_net::tls::Security;
use tern_net::{KvClient, KvClientConfig, NodeId};

/// Puts issued concurrently in the first phase.
const CONCURRENT_PUTS: usize = 20_000;
/// Puts in flight at once in the first phase.
const CONCURRENCY: usize = 256;
/// Puts issued one after another in the second phase.
const SEQUENTIAL_PUTS: usize = 500;

fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,tern_net::tls=error,tern_engine::node::raft_loop=info")
        .try_init();
    let data = tempfile::tempdir().expect("temporary directory");
    let ports: Vec<SocketAddr> = (0..6)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .collect::<Vec<_>>()
        .iter()
        .map(|socket| socket.local_addr().expect("address"))
        .collect();
    let peers: Vec<(NodeId, SocketAddr)> = (0..3).map(|i| (i as u64 + 1, ports[i])).collect();
    let clients: Vec<(NodeId, SocketAddr)> = (0..3).map(|i| (i as u64 + 1, ports[3 + i])).collect();
    let mut nodes = Vec::new();
    for i in 0..3 {
        let mut config = NodeConfig::new(
            i as u64 + 1,
            peers.clone(),
            clients[i].1,
            data.path().join(format!("node-{i}")),
            TlsMode::Insecure,
        );
        config.peer_client_addrs = clients.clone();
        let shutdown = Shutdown::new();
        let handle = {
            let shutdown = shutdown.clone();
            std::thread::spawn(move || node::run(config, shutdown))
        };
        nodes.push((shutdown, handle));
    }
    let endpoints: Vec<SocketAddr> = clients.iter().map(|(_, addr)| *addr).collect();
    run_executor("probe-client", move || async move {
        let mut config = KvClientConfig::new(endpoints, Security::Insecure);
        config.operation_timeout = Duration::from_secs(30);
        let client = Rc::new(KvClient::connect(config).await.expect("connect"));
        // Warm up: the first put waits for a leader.
        client.put("warm", "up").await.expect("warm-up put");
        let value = vec![7u8; 256];
        let started = Instant::now();
        let (done, finished) = flume::bounded::<()>(CONCURRENCY);
        for worker in 0..CONCURRENCY {
            let client = client.clone();
            let value = value.clone();
            let done = done.clone();
            tern_net::runtime::spawn(async move {
                for i in (worker..CONCURRENT_PUTS).step_by(CONCURRENCY) {
                    client
                        .put(format!("key-{i}"), value.clone())
                        .await
                        .expect("put");
                }
                let _ = done.send(());
            });
        }
        for _ in 0..CONCURRENCY {
            finished.recv_async().await.expect("worker finished");
        }
        let elapsed = started.elapsed();
        println!(
            "{CONCURRENT_PUTS} puts, {CONCURRENCY} in flight: {elapsed:?}, {:.0} puts/s",
            CONCURRENT_PUTS as f64 / elapsed.as_secs_f64()
        );
        let started = Instant::now();
        let (done, finished) = flume::bounded::<()>(CONCURRENCY);
        for worker in 0..CONCURRENCY {
            let client = client.clone();
            let done = done.clone();
            tern_net::runtime::spawn(async move {
                for i in (worker..CONCURRENT_PUTS).step_by(CONCURRENCY) {
                    let found = client.get(format!("key-{i}")).await.expect("get");
                    assert!(found.is_some(), "key-{i} was written");
                }
                let _ = done.send(());
            });
        }
        for _ in 0..CONCURRENCY {
            finished.recv_async().await.expect("worker finished");
        }
        let elapsed = started.elapsed();
        println!(
            "{CONCURRENT_PUTS} linearizable gets, {CONCURRENCY} in flight: {elapsed:?}, {:.0} gets/s",
            CONCURRENT_PUTS as f64 / elapsed.as_secs_f64()
        );
        let started = Instant::now();
        for i in 0..SEQUENTIAL_PUTS {
            client.put(format!("seq-{i}"), value.clone()).await.expect("put");
        }
        let elapsed = started.elapsed();
        println!(
            "{SEQUENTIAL_PUTS} sequential puts: {elapsed:?}, {:?} each",
            elapsed / SEQUENTIAL_PUTS as u32
        );
        client.close();
    })
    .expect("probe executor")
    .join()
    .expect("probe passed");
    for (shutdown, _) in &nodes {
        shutdown.trigger();
    }
    for (_, handle) in nodes {
        handle
            .join()
            .expect("node thread")
            .expect("node stopped cleanly");
    }
}
