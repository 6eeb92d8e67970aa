//! A peer link after a partition heals: node 1 dials node 2 through a UDP proxy on loopback
//! that drops every datagram while the "partition" lasts. With the production defaults
//! (`Limits::default()`), traffic must flow again soon after the heal, not after the QUIC
//! retransmission backoff or the redial backoff has grown to seconds.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use tern_net::certs::ClusterCa;
use tern_net::tls::Identity;
use tern_net::transport::{Limits, Transport};

/// How long each partition lasts: the 5 s isolation.
const PARTITION: Duration = Duration::from_secs(5);
/// Partitions healed per run.
const HEALS: usize = 2;
/// How often node 1 sends (a heartbeat's period).
const SEND_INTERVAL: Duration = Duration::from_millis(30);
/// Bound on the first delivery after a heal: above one election timeout of the defaults
/// (150-300 ms) plus a loaded CI machine's slack; the QUIC and redial backoffs this guards
/// against took seconds.
const HEAL_DELIVERY_MAX: Duration = Duration::from_millis(1_500);
/// Longest one proxy read waits, so the proxy notices its stop flag.
const PROXY_POLL: Duration = Duration::from_millis(20);
/// Largest datagram the proxy forwards (QUIC's are at most about 1.5 KB here).
const DATAGRAM_BYTES_MAX: usize = 65_536;

/// Forwards datagrams between a dialer and `target` unless `blocked`.
struct Proxy {
    front_addr: SocketAddr,
    blocked: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Proxy {
    fn start(target: SocketAddr) -> Proxy {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(target).unwrap();
        for socket in [&front, &back] {
            socket.set_read_timeout(Some(PROXY_POLL)).unwrap();
        }
        let front_addr = front.local_addr().unwrap();
        let blocked = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let dialer: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
        let (front, back) = (Arc::new(front), Arc::new(back));
        let forward = {
            let (front, back, blocked, stop, dialer) = (
                front.clone(),
                back.clone(),
                blocked.clone(),
                stop.clone(),
                dialer.clone(),
            );
            std::thread::spawn(move || {
                let mut buffer = vec![0u8; DATAGRAM_BYTES_MAX];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((length, from)) = front.recv_from(&mut buffer) {
                        *dialer.lock().unwrap() = Some(from);
                        if !blocked.load(Ordering::Relaxed) {
                            let _ = back.send(&buffer[..length]);
                        }
                    }
                }
            })
        };
        let backward = {
            let (blocked, stop) = (blocked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buffer = vec![0u8; DATAGRAM_BYTES_MAX];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(length) = back.recv(&mut buffer) {
                        let to = *dialer.lock().unwrap();
                        if let (Some(to), false) = (to, blocked.load(Ordering::Relaxed)) {
                            let _ = front.send_to(&buffer[..length], to);
                        }
                    }
                }
            })
        };
        Proxy {
            front_addr,
            blocked,
            stop,
            threads: vec![forward, backward],
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Node 1 sending one message every SEND_INTERVAL, as a leader heartbeats.
struct Sender<'a> {
    node: &'a Transport,
    message: &'a tern_net::message::RaftMessage,
    next_send: Instant,
}

impl Sender<'_> {
    async fn until(&mut self, deadline: Instant) {
        while Instant::now() < deadline {
            if Instant::now() >= self.next_send {
                // A full queue (while partitioned) drops the message, as Raft allows.
                let _ = self.node.send(2, self.message);
                self.next_send = Instant::now() + SEND_INTERVAL;
            }
            tern_net::runtime::sleep(Duration::from_millis(2)).await;
        }
    }
}

#[test]
fn a_link_carries_traffic_again_soon_after_a_partition_heals() {
    run(|| async {
        let ca = ClusterCa::generate("test").unwrap();
        let addrs = free_addrs(2);
        let proxy = Proxy::start(addrs[1]);
        let recorders = [Recorder::default(), Recorder::default()];
        // Node 1 (the dialer: the lower id dials) reaches node 2 only through the proxy.
        let mut config1 = config(1, &addrs, secure(&ca, Identity::Node(1)), Limits::default());
        config1.peers = vec![(2, proxy.front_addr)].into_iter().collect();
        let config2 = config(2, &addrs, secure(&ca, Identity::Node(2)), Limits::default());
        let node1 = Transport::start(config1, Rc::new(recorders[0].clone())).unwrap();
        let _node2 = Transport::start(config2, Rc::new(recorders[1].clone())).unwrap();
        let message = every_raft_message(1, 2).remove(0);
        let mut sender = Sender {
            node: &node1,
            message: &message,
            next_send: Instant::now(),
        };
        // Node 1 may dial before node 2's endpoint is bound: that first Initial is lost and
        // QUIC resends it after its initial timeout (about a second), so allow a few.
        sender.until(Instant::now() + Duration::from_secs(3)).await;
        assert!(
            recorders[1].raft_count() > 0,
            "nothing delivered before any partition: {:?}",
            node1.stats()
        );
        let mut worst = Duration::ZERO;
        for heal in 1..=HEALS {
            proxy.blocked.store(true, Ordering::Relaxed);
            sender.until(Instant::now() + PARTITION).await;
            let before = recorders[1].raft_count();
            proxy.blocked.store(false, Ordering::Relaxed);
            let healed = Instant::now();
            let deadline = healed + Duration::from_secs(20);
            let mut delivered = None;
            while Instant::now() < deadline {
                sender
                    .until(Instant::now() + Duration::from_millis(5))
                    .await;
                if recorders[1].raft_count() > before {
                    delivered = Some(healed.elapsed());
                    break;
                }
            }
            let delay = delivered.expect("nothing delivered within 20 s of the heal");
            println!(
                "heal {heal}: first delivery {} ms after the heal",
                delay.as_millis()
            );
            worst = worst.max(delay);
        }
        assert!(
            worst < HEAL_DELIVERY_MAX,
            "a healed link stayed silent for {worst:?} (bound {HEAL_DELIVERY_MAX:?})"
        );
    });
}
