//! The QUIC peer link against a plain TCP baseline, side by side, in one run.
//!
//! Measures, on loopback, with 256-byte frames (header included in both cases):
//! - one way: frames/s and MB/s from one sender to one receiver (each on its own thread);
//! - round trip: a small request frame (a Heartbeat's size) and its response, one at a time,
//!   p50 and p99.
//!
//! tern: two `tern_net::transport::Transport`s (quinn on glommio, mutual TLS, rkyv frames
//! validated and read in place by the receiver). The sender queues messages with `send` and,
//! when the queue pushes back, waits with `send_wait`; the round trip is a Heartbeat answered by
//! a HeartbeatResponse from inside the receiver's `Inbound` handler.
//! TCP baseline: std threads, a 4-byte length prefix + body, 256 KiB buffered writes for one
//! way, TCP_NODELAY and a flush per frame for the round trip. No encryption, no validation.
//!
//! Run: `cargo bench -p tern-benches --bench net_link`

use std::cell::{Cell, RefCell};
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tern_net::certs::ClusterCa;
use tern_net::frame::encode_frame;
use tern_net::message::{
    ArchivedClientRequestBatch, ArchivedRaftBody, ArchivedRaftMessage, Entry, EntryPayload, NodeId,
    RaftBody, RaftMessage,
};
use tern_net::runtime::{run_executor, sleep};
use tern_net::tls::{Identity, Security};
use tern_net::transport::{ClientSession, Inbound, Limits, SendError, Transport, TransportConfig};

/// Every frame in the one-way runs is exactly this long on the wire (header included).
const FRAME_BYTES: usize = 256;
/// Frames sent before measuring, to get connections and windows up to speed.
const WARMUP_FRAMES: u64 = 200_000;
/// Frames measured one way.
const MEASURED_FRAMES: u64 = 2_000_000;
const WARMUP_ROUND_TRIPS: u64 = 2_000;
const MEASURED_ROUND_TRIPS: u64 = 20_000;

struct Row {
    name: &'static str,
    frames_per_second: f64,
    round_trip_us: Histogram<u64>,
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is parsed.
    let quic = quic_link();
    let tcp = tcp_baseline();
    println!();
    println!("net_link: one-way {FRAME_BYTES}-byte frames ({MEASURED_FRAMES} measured after {WARMUP_FRAMES} warm-up); round trip: one {}-byte request frame + one response frame at a time ({MEASURED_ROUND_TRIPS} measured); loopback", heartbeat_frame_bytes());
    println!("| transport | one-way frames/s | one-way MB/s | round trip p50 (us) | round trip p99 (us) |");
    println!("|---|---:|---:|---:|---:|");
    for row in [quic, tcp] {
        println!(
            "| {} | {:.0} | {:.1} | {} | {} |",
            row.name,
            row.frames_per_second,
            row.frames_per_second * FRAME_BYTES as f64 / 1e6,
            row.round_trip_us.value_at_quantile(0.5),
            row.round_trip_us.value_at_quantile(0.99),
        );
    }
}

fn heartbeat(round: u64) -> RaftMessage {
    RaftMessage {
        from: 1,
        to: 2,
        term: 1,
        body: RaftBody::Heartbeat {
            leader_commit: 1,
            read_round: round,
        },
    }
}

/// The size of a round-trip request frame; the TCP baseline uses the same size.
fn heartbeat_frame_bytes() -> usize {
    encode_frame(&heartbeat(1), 1 << 20).expect("encodes").len()
}

/// An AppendRequest whose frame is exactly `frame_bytes` long.
fn message_of_frame_bytes(frame_bytes: usize) -> RaftMessage {
    for payload_bytes in 0..frame_bytes {
        let message = RaftMessage {
            from: 1,
            to: 2,
            term: 1,
            body: RaftBody::AppendRequest {
                prev_log_index: 1,
                prev_log_term: 1,
                entries: vec![Entry {
                    index: 2,
                    term: 1,
                    payload: EntryPayload::Command(vec![7; payload_bytes]),
                }],
                leader_commit: 1,
            },
        };
        if encode_frame(&message, 1 << 20).expect("encodes").len() == frame_bytes {
            return message;
        }
    }
    panic!("no payload size gives a {frame_bytes}-byte frame");
}

/// Shared between the receiver's handler and the measuring code on other threads.
#[derive(Default)]
struct Progress {
    frames_received: AtomicU64,
    measured_started: Mutex<Option<Instant>>,
    measured_ended: Mutex<Option<Instant>>,
}

/// The receiving node: counts frames and answers heartbeats.
struct Receiver {
    progress: Arc<Progress>,
    transport: Rc<RefCell<Option<Rc<Transport>>>>,
}

impl Inbound for Receiver {
    fn raft(&self, from: NodeId, message: &ArchivedRaftMessage) {
        if let ArchivedRaftBody::Heartbeat { read_round, .. } = &message.body {
            let response = RaftMessage {
                from: message.to.to_native(),
                to: from,
                term: message.term.to_native(),
                body: RaftBody::HeartbeatResponse {
                    read_round: read_round.to_native(),
                },
            };
            if let Some(transport) = self.transport.borrow().as_ref() {
                let _ = transport.send(from, &response);
            }
            return;
        }
        let count = self
            .progress
            .frames_received
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        if count == WARMUP_FRAMES {
            *self.progress.measured_started.lock().unwrap() = Some(Instant::now());
        } else if count == WARMUP_FRAMES + MEASURED_FRAMES {
            *self.progress.measured_ended.lock().unwrap() = Some(Instant::now());
        }
    }
    fn client_requests(&self, _: &ClientSession, _: &ArchivedClientRequestBatch) {}
    fn status_request(&self, _: &ClientSession, _: &tern_net::message::ArchivedStatusRequest) {}
    fn admin_request(&self, _: &ClientSession, _: &tern_net::message::ArchivedAdminRequest) {}
}

/// The sending node: notes heartbeat responses and wakes the round-trip loop.
#[derive(Default, Clone)]
struct Sender {
    last_round: Rc<Cell<u64>>,
    waiter: Rc<RefCell<Option<Waker>>>,
}

impl Inbound for Sender {
    fn raft(&self, _: NodeId, message: &ArchivedRaftMessage) {
        if let ArchivedRaftBody::HeartbeatResponse { read_round } = &message.body {
            self.last_round.set(read_round.to_native());
            if let Some(waker) = self.waiter.borrow_mut().take() {
                waker.wake();
            }
        }
    }
    fn client_requests(&self, _: &ClientSession, _: &ArchivedClientRequestBatch) {}
    fn status_request(&self, _: &ClientSession, _: &tern_net::message::ArchivedStatusRequest) {}
    fn admin_request(&self, _: &ClientSession, _: &tern_net::message::ArchivedAdminRequest) {}
}

fn quic_config(id: NodeId, addrs: &[SocketAddr], ca: &ClusterCa) -> TransportConfig {
    let peer = 3 - id;
    TransportConfig {
        node_id: id,
        listen_addr: addrs[id as usize - 1],
        peers: vec![(peer, addrs[peer as usize - 1])],
        security: Security::MutualTls(ca.issue(Identity::Node(id)).expect("issue").credentials),
        limits: Limits::default(),
    }
}

fn quic_link() -> Row {
    let ca = ClusterCa::generate("bench").expect("CA");
    let sockets: Vec<_> = (0..2)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let addrs: Vec<SocketAddr> = sockets
        .iter()
        .map(|s| s.local_addr().expect("addr"))
        .collect();
    drop(sockets);
    let progress = Arc::new(Progress::default());
    let stop = Arc::new(AtomicBool::new(false));

    let receiver_config = quic_config(2, &addrs, &ca);
    let receiver = {
        let (progress, stop) = (progress.clone(), stop.clone());
        run_executor("bench-receiver", move || async move {
            let slot = Rc::new(RefCell::new(None));
            let inbound = Rc::new(Receiver {
                progress,
                transport: slot.clone(),
            });
            let transport =
                Rc::new(Transport::start(receiver_config, inbound).expect("receiver starts"));
            *slot.borrow_mut() = Some(transport.clone());
            while !stop.load(Ordering::Relaxed) {
                sleep(Duration::from_millis(10)).await;
            }
            slot.borrow_mut().take();
            transport.close();
        })
        .expect("receiver thread")
    };

    let sender_config = quic_config(1, &addrs, &ca);
    let sender = {
        let progress = progress.clone();
        run_executor("bench-sender", move || async move {
            let state = Sender::default();
            let transport =
                Transport::start(sender_config, Rc::new(state.clone())).expect("sender starts");
            let message = message_of_frame_bytes(FRAME_BYTES);
            for _ in 0..WARMUP_FRAMES + MEASURED_FRAMES {
                match transport.send(2, &message) {
                    Ok(()) => {}
                    Err(SendError::QueueFull { .. }) => {
                        transport.send_wait(2, &message).await.expect("send")
                    }
                    Err(error) => panic!("send: {error}"),
                }
            }
            while progress.measured_ended.lock().unwrap().is_none() {
                sleep(Duration::from_millis(1)).await;
            }
            let round_trip_us = round_trips(&transport, &state).await;
            transport.close();
            round_trip_us
        })
        .expect("sender thread")
    };
    let round_trip_us = sender.join().expect("sender");
    stop.store(true, Ordering::Relaxed);
    receiver.join().expect("receiver");
    let started = progress.measured_started.lock().unwrap().expect("started");
    let ended = progress.measured_ended.lock().unwrap().expect("ended");
    Row {
        name: "tern QUIC link (mTLS, rkyv)",
        frames_per_second: MEASURED_FRAMES as f64 / (ended - started).as_secs_f64(),
        round_trip_us,
    }
}

async fn round_trips(transport: &Transport, state: &Sender) -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new(3).expect("histogram");
    for round in 1..=WARMUP_ROUND_TRIPS + MEASURED_ROUND_TRIPS {
        let started = Instant::now();
        transport
            .send_wait(2, &heartbeat(round))
            .await
            .expect("send");
        std::future::poll_fn(|cx| {
            if state.last_round.get() >= round {
                return Poll::Ready(());
            }
            *state.waiter.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        if round > WARMUP_ROUND_TRIPS {
            histogram
                .record(started.elapsed().as_micros() as u64)
                .expect("record");
        }
    }
    histogram
}

/// Plain TCP on loopback: length-prefixed frames, the same sizes and counts.
fn tcp_baseline() -> Row {
    let body_bytes = FRAME_BYTES - 4;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let receiver = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::with_capacity(256 << 10, stream);
        let mut body = vec![0u8; FRAME_BYTES];
        let mut started = None;
        for count in 1..=WARMUP_FRAMES + MEASURED_FRAMES {
            let mut length = [0u8; 4];
            reader.read_exact(&mut length).expect("length");
            let length = u32::from_le_bytes(length) as usize;
            assert!(length <= body.len(), "frame over the limit");
            reader.read_exact(&mut body[..length]).expect("body");
            if count == WARMUP_FRAMES {
                started = Some(Instant::now());
            }
        }
        let elapsed = started.expect("started").elapsed();
        // Round trips on a second connection (the reader above may hold read-ahead bytes).
        let (mut stream, _) = listener.accept().expect("accept");
        stream.set_nodelay(true).expect("nodelay");
        let mut frame = vec![0u8; heartbeat_frame_bytes()];
        for _ in 0..WARMUP_ROUND_TRIPS + MEASURED_ROUND_TRIPS {
            stream.read_exact(&mut frame).expect("request");
            stream.write_all(&frame).expect("response");
        }
        elapsed
    });
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut writer = BufWriter::with_capacity(256 << 10, stream);
    let mut frame = vec![7u8; FRAME_BYTES];
    frame[..4].copy_from_slice(&(body_bytes as u32).to_le_bytes());
    for _ in 0..WARMUP_FRAMES + MEASURED_FRAMES {
        writer.write_all(&frame).expect("write");
    }
    writer.flush().expect("flush");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut histogram = Histogram::<u64>::new(3).expect("histogram");
    let request = vec![7u8; heartbeat_frame_bytes()];
    let mut response = vec![0u8; request.len()];
    for round in 0..WARMUP_ROUND_TRIPS + MEASURED_ROUND_TRIPS {
        let started = Instant::now();
        stream.write_all(&request).expect("request");
        stream.read_exact(&mut response).expect("response");
        if round >= WARMUP_ROUND_TRIPS {
            histogram
                .record(started.elapsed().as_micros() as u64)
                .expect("record");
        }
    }
    let elapsed = receiver.join().expect("receiver");
    Row {
        name: "plain TCP (std, no TLS)",
        frames_per_second: MEASURED_FRAMES as f64 / elapsed.as_secs_f64(),
        round_trip_us: histogram,
    }
}
