//! Helpers shared by the integration tests.
#![allow(dead_code)]

use tern_net::message::*;

/// One Raft message of every body kind, from `from` to `to`.
pub fn every_raft_message(from: NodeId, to: NodeId) -> Vec<RaftMessage> {
    let bodies = vec![
        RaftBody::VoteRequest {
            pre_vote: true,
            last_log_index: 7,
            last_log_term: 2,
            leadership_transfer: false,
        },
        RaftBody::VoteRequest {
            pre_vote: false,
            last_log_index: 9,
            last_log_term: 3,
            leadership_transfer: true,
        },
        RaftBody::VoteResponse {
            pre_vote: true,
            granted: true,
        },
        RaftBody::AppendRequest {
            prev_log_index: 10,
            prev_log_term: 3,
            entries: vec![
                Entry {
                    index: 11,
                    term: 4,
                    payload: EntryPayload::Noop,
                },
                Entry {
                    index: 12,
                    term: 4,
                    payload: EntryPayload::Command(b"set a 1".to_vec()),
                },
            ],
            leader_commit: 9,
        },
        RaftBody::AppendResponse {
            success: false,
            match_index: 0,
            conflict_index: 5,
            conflict_term: Some(2),
        },
        RaftBody::AppendResponse {
            success: true,
            match_index: 12,
            conflict_index: 0,
            conflict_term: None,
        },
        RaftBody::Heartbeat {
            leader_commit: 12,
            read_round: 44,
        },
        RaftBody::HeartbeatResponse { read_round: 44 },
        RaftBody::TimeoutNow,
        RaftBody::ReadIndexRequest { request_id: 99 },
        RaftBody::ReadIndexResponse {
            request_id: 99,
            read_index: Some(12),
        },
        RaftBody::ReadIndexResponse {
            request_id: 100,
            read_index: None,
        },
        RaftBody::AppendRequest {
            prev_log_index: 12,
            prev_log_term: 4,
            entries: vec![Entry {
                index: 13,
                term: 4,
                payload: EntryPayload::Membership(sample_membership()),
            }],
            leader_commit: 12,
        },
        RaftBody::InstallSnapshot {
            snapshot: SnapshotMeta {
                index: 40,
                term: 5,
                membership: sample_membership(),
            },
        },
        RaftBody::SnapshotChunk {
            index: 40,
            term: 5,
            offset: 65_536,
            data: vec![0xAB; 300],
            last: true,
        },
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| RaftMessage {
            from,
            to,
            term: 4 + i as u64,
            body,
        })
        .collect()
}

pub fn client_request_batch() -> ClientRequestBatch {
    ClientRequestBatch {
        client_id: 77,
        answered_through: 0,
        read_consistency: tern_net::message::ReadConsistency::ServerDefault,
        requests: vec![
            ClientRequest {
                sequence: 1,
                command: b"put k v".to_vec(),
            },
            ClientRequest {
                sequence: 2,
                command: vec![0u8; 300],
            },
        ],
    }
}

pub fn client_response_batch() -> ClientResponseBatch {
    ClientResponseBatch {
        client_id: 77,
        responses: vec![
            ClientResponse {
                sequence: 1,
                outcome: ClientOutcome::Ok(b"ok".to_vec()),
            },
            ClientResponse {
                sequence: 2,
                outcome: ClientOutcome::Error(ClientError::TooLarge {
                    command_bytes: 300,
                    command_bytes_max: 200,
                }),
            },
            ClientResponse {
                sequence: 3,
                outcome: ClientOutcome::Error(ClientError::InvalidCommand {
                    reason: "bad".into(),
                }),
            },
            ClientResponse {
                sequence: 4,
                outcome: ClientOutcome::Error(ClientError::Unavailable {
                    reason: "no quorum".into(),
                }),
            },
            ClientResponse {
                sequence: 5,
                outcome: ClientOutcome::Error(ClientError::SessionExpired),
            },
        ],
    }
}

pub fn not_leader() -> NotLeader {
    NotLeader {
        client_id: 77,
        leader_id: Some(3),
        leader_addr: Some("127.0.0.1:7003".into()),
    }
}

/// Turns a received frame into owned values, for comparing with what was sent.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Owned {
    Raft(RaftMessage),
    ClientRequests(ClientRequestBatch),
    ClientResponses(ClientResponseBatch),
    NotLeader(NotLeader),
    StatusRequest(tern_net::message::StatusRequest),
    Status(tern_net::message::NodeStatus),
    AdminRequest(tern_net::message::AdminRequest),
    AdminResponse(tern_net::message::AdminResponse),
}

pub fn to_owned(frame: &tern_net::Frame<'_>) -> Owned {
    use rkyv::rancor::Error;
    match frame {
        tern_net::Frame::Raft(m) => {
            Owned::Raft(rkyv::deserialize::<RaftMessage, Error>(*m).unwrap())
        }
        tern_net::Frame::ClientRequests(m) => {
            Owned::ClientRequests(rkyv::deserialize::<_, Error>(*m).unwrap())
        }
        tern_net::Frame::ClientResponses(m) => {
            Owned::ClientResponses(rkyv::deserialize::<_, Error>(*m).unwrap())
        }
        tern_net::Frame::NotLeader(m) => {
            Owned::NotLeader(rkyv::deserialize::<_, Error>(*m).unwrap())
        }
        tern_net::Frame::StatusRequest(m) => {
            Owned::StatusRequest(rkyv::deserialize::<_, Error>(*m).unwrap())
        }
        tern_net::Frame::Status(m) => Owned::Status(rkyv::deserialize::<_, Error>(*m).unwrap()),
        tern_net::Frame::AdminRequest(m) => {
            Owned::AdminRequest(rkyv::deserialize::<_, Error>(*m).unwrap())
        }
        tern_net::Frame::AdminResponse(m) => {
            Owned::AdminResponse(rkyv::deserialize::<_, Error>(*m).unwrap())
        }
    }
}

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tern_net::certs::ClusterCa;
use tern_net::message::{ArchivedClientRequestBatch, ArchivedRaftMessage};
use tern_net::tls::{Identity, Security};
use tern_net::transport::{ClientSession, Inbound, Limits, TransportConfig};

/// Guard against hangs only; no test asserts on elapsed time.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// What a test node received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    Raft(NodeId, RaftMessage),
    Client(ClientRequestBatch),
}

/// An [`Inbound`] that records everything and answers clients: client 77 gets
/// [`client_response_batch`], any other client gets [`not_leader`].
#[derive(Clone, Default)]
pub struct Recorder {
    pub received: Arc<Mutex<Vec<Received>>>,
    /// While set, `raft` blocks its executor thread: a stalled receiver.
    pub stalled: Arc<std::sync::atomic::AtomicBool>,
}

impl Recorder {
    pub fn raft_count(&self) -> usize {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| matches!(r, Received::Raft(..)))
            .count()
    }
    pub fn raft_from(&self, from: NodeId) -> Vec<RaftMessage> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| match r {
                Received::Raft(f, m) if *f == from => Some(m.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The answer the recorder gives every admin request: one member, echoing the request id.
pub fn admin_response(request_id: u64) -> tern_net::message::AdminResponse {
    tern_net::message::AdminResponse {
        request_id,
        members: vec![tern_net::message::MemberInfo {
            id: 1,
            role: "voter".into(),
            peer_addr: "127.0.0.1:7000".into(),
            client_addr: "127.0.0.1:7001".into(),
        }],
        membership_index: 3,
        membership_committed: true,
        joint: false,
        error: None,
        leader_id: Some(1),
        leader_client_addr: Some("127.0.0.1:7001".into()),
    }
}

impl Inbound for Recorder {
    fn admin_request(
        &self,
        session: &ClientSession,
        request: &tern_net::message::ArchivedAdminRequest,
    ) {
        session
            .send_admin(&admin_response(request.request_id.to_native()))
            .unwrap();
    }
    fn raft(&self, from: NodeId, message: &ArchivedRaftMessage) {
        let owned = rkyv::deserialize::<RaftMessage, rkyv::rancor::Error>(message).unwrap();
        self.received
            .lock()
            .unwrap()
            .push(Received::Raft(from, owned));
        while self.stalled.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    fn client_requests(&self, session: &ClientSession, batch: &ArchivedClientRequestBatch) {
        let owned = rkyv::deserialize::<ClientRequestBatch, rkyv::rancor::Error>(batch).unwrap();
        let client_id = owned.client_id;
        self.received.lock().unwrap().push(Received::Client(owned));
        if client_id == 77 {
            session.send_responses(&client_response_batch()).unwrap();
        } else {
            session.send_not_leader(&not_leader()).unwrap();
        }
    }
    fn status_request(
        &self,
        session: &ClientSession,
        request: &tern_net::message::ArchivedStatusRequest,
    ) {
        let mut status = node_status();
        status.request_id = request.request_id.to_native();
        session.send_status(&status).unwrap();
    }
}

/// The status the recorder answers with (its `request_id` echoes the request's).
pub fn node_status() -> tern_net::message::NodeStatus {
    tern_net::message::NodeStatus {
        request_id: 0,
        node_id: 9,
        client_addr: "127.0.0.1:1".into(),
        peer_addr: "127.0.0.1:2".into(),
        role: "follower".into(),
        term: 4,
        last_index: 10,
        commit_index: 9,
        applied_index: 8,
        leader_id: Some(1),
        leader_client_addr: None,
    }
}

/// Free loopback UDP addresses (bound then released; a tiny race other tests could lose).
pub fn free_addrs(count: usize) -> Vec<SocketAddr> {
    let sockets: Vec<_> = (0..count)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    sockets.iter().map(|s| s.local_addr().unwrap()).collect()
}

/// Limits for tests: short idle timeout and backoff so lost peers are noticed quickly.
pub fn test_limits() -> Limits {
    Limits {
        idle_timeout_ms: 1_000,
        keep_alive_interval_ms: 200,
        reconnect_backoff_ms_min: 10,
        reconnect_backoff_ms_max: 200,
        ..Limits::default()
    }
}

/// Mutual-TLS security for `identity`, issued by `ca`.
pub fn secure(ca: &ClusterCa, identity: Identity) -> Security {
    Security::MutualTls(ca.issue(identity).unwrap().credentials)
}

/// A config for node `id` of a cluster whose members listen on `addrs` (node i at addrs[i-1]).
pub fn config(
    id: NodeId,
    addrs: &[SocketAddr],
    security: Security,
    limits: Limits,
) -> TransportConfig {
    TransportConfig {
        node_id: id,
        listen_addr: addrs[id as usize - 1],
        peers: (1..=addrs.len() as u64)
            .filter(|&p| p != id)
            .map(|p| (p, addrs[p as usize - 1]))
            .collect(),
        security,
        limits,
    }
}

/// Waits (on the executor) until `condition` holds; panics after [`HANG_GUARD`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG_GUARD;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "hang guard: timed out waiting for {what}"
        );
        tern_net::runtime::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs `make()` on a fresh executor and returns its result.
pub fn run<F, Fut, T>(make: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    init_logging();
    tern_net::runtime::run_executor("test", make)
        .unwrap()
        .join()
        .unwrap()
}

pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Awaits `future`, panicking after [`HANG_GUARD`] (a guard against hangs, not a timing check).
pub async fn guarded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    let guard = async {
        tern_net::runtime::sleep(HANG_GUARD).await;
        panic!("hang guard: timed out waiting for {what}");
    };
    futures_lite::future::or(future, guard).await
}

/// A joint membership with a learner and a context, for the wire tests.
pub fn sample_membership() -> Membership {
    Membership {
        voters: vec![1, 2, 4],
        voters_outgoing: vec![1, 2, 3],
        learners: vec![5],
        context: b"1=127.0.0.1:7001".to_vec(),
    }
}
