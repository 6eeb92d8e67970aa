//! One QUIC endpoint per node: peer links to the other members, and client sessions.
//!
//! Peer links. Each pair of members shares one long-lived QUIC connection: the member with the
//! lower id dials, the higher one accepts (a fixed rule, so the two never race to build two
//! connections). Each side sends on its own unidirectional stream, so a direction's frames stay
//! in order and never wait on the other direction.
//!
//! Sending never blocks the caller: [`Transport::send`] encodes the message straight into the
//! peer's send queue and returns, or refuses with [`SendError::QueueFull`] when the queue is at
//! `send_queue_frames_max` / `send_queue_bytes_max` ([`Transport::send_wait`] waits for room
//! instead). One writer task per peer takes the whole queue as one batch and writes it while new
//! frames collect behind it: everything queued while a write is in flight goes out in the next
//! write. A dead or slow peer only fills its own queue; other peers have their own queues,
//! writers and streams.
//!
//! Receiving: each stream has a [`FrameReader`]; every frame is validated and handed to the
//! [`Inbound`] handler in place, without deserializing. A bad frame closes that connection
//! (and only it) with a WARN naming the peer and what was wrong.
//!
//! Clients: at most `client_connections_max` client connections are served at once, each with at
//! most [`CLIENT_STREAMS_PER_CONNECTION_MAX`] sessions; one more is closed after its handshake
//! with [`close_code::TOO_MANY_CLIENTS`] and a WARN. Peer links are never counted against it.
//!
//! Reconnects: the dialing side redials a lost connection with jittered exponential backoff
//! (`reconnect_backoff_ms_min` .. `reconnect_backoff_ms_max`); the accepting side waits for it.
//! A dial whose handshake has not finished after `handshake_timeout_ms` is abandoned and
//! started afresh, rather than left to QUIC's handshake retransmission backoff.
//! Frames still queued survive a reconnect; the batch being written when a connection died is
//! lost, which Raft tolerates (it retransmits).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use quinn::VarInt;

use crate::frame::{
    EncodeError, Frame, FrameBody, FrameEncoder, FrameError, FrameReader, FRAME_BYTES_MAX_DEFAULT,
    RECEIVE_BUFFER_BYTES_RETAINED_DEFAULT, RECEIVE_BUFFER_BYTES_RETAINED_MIN,
};
use crate::message::{
    AdminResponse, ArchivedAdminRequest, ArchivedClientRequestBatch, ArchivedRaftMessage,
    ArchivedStatusRequest, ClientResponseBatch, NodeId, NodeStatus, NotLeader, RaftMessage,
};
use crate::runtime::{self, GlommioRuntime};
use crate::tls::{self, Identity, Security, TlsError};

/// QUIC application close codes tern uses, so the closing reason shows on the other side.
pub mod close_code {
    /// Orderly shutdown.
    pub const SHUTDOWN: u32 = 0;
    /// The peer sent a malformed, truncated, oversized or invalid frame.
    pub const BAD_FRAME: u32 = 1;
    /// The peer's certificate names an identity this endpoint does not accept here.
    pub const REFUSED_IDENTITY: u32 = 2;
    /// A newer connection from the same peer replaced this one.
    pub const REPLACED: u32 = 3;
    /// The endpoint already serves `client_connections_max` clients; retry later or elsewhere.
    pub const TOO_MANY_CLIENTS: u32 = 4;
}

/// Every bound of the transport, with its unit.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Hard limit on one frame (header + body + padding), checked before allocating.
    pub frame_bytes_max: usize,
    /// Receive buffer a stream keeps after handling a larger frame; the excess (up to
    /// `frame_bytes_max`) is released once the stream's buffered bytes fit in this again.
    /// At least [`RECEIVE_BUFFER_BYTES_RETAINED_MIN`].
    pub receive_buffer_bytes_retained: usize,
    /// Client connections served at once; more are closed with
    /// [`close_code::TOO_MANY_CLIENTS`] right after the handshake. Each connection carries at
    /// most [`CLIENT_STREAMS_PER_CONNECTION_MAX`] sessions, so this also bounds sessions.
    /// Peer links are not counted: clients can never crowd out members.
    pub client_connections_max: usize,
    /// Frames one peer's send queue holds before sends are refused.
    pub send_queue_frames_max: usize,
    /// Bytes one peer's send queue holds before sends are refused. A single frame is always
    /// accepted into an empty queue, so a queue holds at most
    /// `max(send_queue_bytes_max, frame_bytes_max)`; the batch being written holds as much again.
    pub send_queue_bytes_max: usize,
    /// QUIC flow-control window per stream. Moderate on purpose: quinn's cost per write grows
    /// with unacknowledged data (shared/facts.md).
    pub stream_window_bytes: u64,
    /// QUIC flow-control window per connection.
    pub connection_window_bytes: u64,
    /// A connection with no traffic (keep-alives included) for this long is dead.
    pub idle_timeout_ms: u64,
    /// Keep-alive period; well under `idle_timeout_ms`.
    pub keep_alive_interval_ms: u64,
    /// First redial delay after a failure; doubles per failure up to the max. The max is
    /// also about the longest a link stays down after its peer is reachable again, so it is
    /// kept well under an election timeout.
    pub reconnect_backoff_ms_min: u64,
    pub reconnect_backoff_ms_max: u64,
    /// Longest a peer link's dial waits for its handshake before it gives up and dials afresh.
    /// A dial whose first packet was lost (the peer was not up yet, was restarting, or was cut
    /// off) otherwise waits out QUIC's handshake retransmission backoff, 1 s then 2 s then
    /// 4 s: links between members that started a moment apart came up after 1-3 s, and
    /// elections that needed them waited as long.
    pub handshake_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            receive_buffer_bytes_retained: RECEIVE_BUFFER_BYTES_RETAINED_DEFAULT,
            client_connections_max: 4_096,
            send_queue_frames_max: 16_384,
            send_queue_bytes_max: 8 << 20,
            stream_window_bytes: 1 << 20,
            connection_window_bytes: 4 << 20,
            idle_timeout_ms: 5_000,
            keep_alive_interval_ms: 1_000,
            reconnect_backoff_ms_min: 20,
            reconnect_backoff_ms_max: 200,
            handshake_timeout_ms: 250,
        }
    }
}

impl Limits {
    /// Checks that the bounds make sense together; [`Transport::start`] refuses them otherwise.
    pub fn validate(&self) -> Result<(), String> {
        let header_bytes = crate::frame::FRAME_HEADER_BYTES;
        if self.frame_bytes_max <= header_bytes || self.frame_bytes_max > u32::MAX as usize {
            return Err(format!(
                "frame_bytes_max {} must be in {}..=u32::MAX",
                self.frame_bytes_max,
                header_bytes + 1
            ));
        }
        if self.receive_buffer_bytes_retained < RECEIVE_BUFFER_BYTES_RETAINED_MIN {
            return Err(format!(
                "receive_buffer_bytes_retained {} must be at least {RECEIVE_BUFFER_BYTES_RETAINED_MIN}",
                self.receive_buffer_bytes_retained
            ));
        }
        if self.client_connections_max == 0 {
            return Err("client_connections_max must be at least 1".into());
        }
        if self.send_queue_frames_max == 0 || self.send_queue_bytes_max == 0 {
            return Err("send_queue_frames_max and send_queue_bytes_max must be at least 1".into());
        }
        if self.stream_window_bytes == 0 || self.connection_window_bytes < self.stream_window_bytes
        {
            return Err("need 0 < stream_window_bytes <= connection_window_bytes".into());
        }
        if self.keep_alive_interval_ms == 0 || self.keep_alive_interval_ms >= self.idle_timeout_ms {
            return Err("need 0 < keep_alive_interval_ms < idle_timeout_ms".into());
        }
        if self.reconnect_backoff_ms_min == 0
            || self.reconnect_backoff_ms_min > self.reconnect_backoff_ms_max
        {
            return Err("need 0 < reconnect_backoff_ms_min <= reconnect_backoff_ms_max".into());
        }
        if self.handshake_timeout_ms == 0 || self.handshake_timeout_ms > self.idle_timeout_ms {
            return Err("need 0 < handshake_timeout_ms <= idle_timeout_ms".into());
        }
        Ok(())
    }
}

/// What a node's transport needs to start.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    pub node_id: NodeId,
    /// Where this node listens (QUIC over UDP), for peers and clients alike.
    pub listen_addr: SocketAddr,
    /// The other members and their addresses. Connections from members not listed are refused.
    pub peers: Vec<(NodeId, SocketAddr)>,
    pub security: Security,
    pub limits: Limits,
}

/// Receives what arrives, in place. Called on the transport's executor; must not block it.
pub trait Inbound {
    /// A Raft message from member `from`; the transport has checked that the message's `from`
    /// is the certificate's id and its `to` is this node.
    fn raft(&self, from: NodeId, message: &ArchivedRaftMessage);
    /// A batch from a client; answer through `session` (now or later: it can be cloned).
    fn client_requests(&self, session: &ClientSession, batch: &ArchivedClientRequestBatch);
    /// A client asks for this node's status; answer with [`ClientSession::send_status`].
    fn status_request(&self, session: &ClientSession, request: &ArchivedStatusRequest);
    /// An operator's membership or leadership request; answer with
    /// [`ClientSession::send_admin`].
    fn admin_request(&self, session: &ClientSession, request: &ArchivedAdminRequest);
}

/// Why a transport could not start or a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid limits: {0}")]
    Limits(String),
    #[error("node {node_id} cannot list itself or node 0 as a peer")]
    BadPeer { node_id: NodeId },
    #[error("connecting to {addr}: {detail}")]
    Connect { addr: SocketAddr, detail: String },
    /// The TLS handshake failed on a certificate: the two sides do not trust each other.
    #[error(
        "connecting to {addr}: the TLS handshake was refused ({detail}); the two sides' \
         certificates do not come from the same CA: every member and client needs certificates \
         from one `tern certs` run (check --tls-dir)"
    )]
    HandshakeRefused { addr: SocketAddr, detail: String },
    #[error("{addr} answered as {found}, but we dialed {expected}")]
    IdentityMismatch {
        addr: SocketAddr,
        expected: Identity,
        found: Identity,
    },
    #[error("connection to {addr}: {detail}")]
    Connection { addr: SocketAddr, detail: String },
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("encoding: {0}")]
    Encode(#[from] EncodeError),
}

/// Why a message was not queued.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("node {0} is not a configured peer")]
    UnknownPeer(NodeId),
    /// Backpressure: the peer's queue is full. Retry later, or use [`Transport::send_wait`].
    #[error("send queue to node {peer} is full ({frames} frames, {bytes} bytes)")]
    QueueFull {
        peer: NodeId,
        frames: usize,
        bytes: usize,
    },
    #[error("{0}")]
    Encode(#[from] EncodeError),
    #[error("the transport or session is closed")]
    Closed,
}

/// Counters for one transport, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Incoming handshakes refused by TLS (unknown CA, bad certificate, wrong protocol); a
    /// dialer that gave up mid-handshake (its `handshake_timeout_ms`) is not counted.
    pub handshakes_refused: u64,
    /// Verified connections closed because their certificate's identity is not accepted here.
    pub identities_refused: u64,
    /// Connections closed because a peer sent a bad frame.
    pub bad_frames: u64,
    /// Raft frames delivered to [`Inbound::raft`].
    pub raft_frames_received: u64,
    /// Peer connections established (dialed or accepted), reconnects included.
    pub peer_connections: u64,
    /// Client connections accepted and served.
    pub client_connections_accepted: u64,
    /// Client connections closed because `client_connections_max` were already served.
    pub client_connections_refused: u64,
}

/// Queue occupancy of one peer link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueStats {
    pub frames: usize,
    pub bytes: usize,
    /// The most frames / bytes the queue ever held.
    pub frames_high_water: usize,
    pub bytes_high_water: usize,
}

/// Wakes every task waiting on it. Generation-counted, so a waiter created before a check
/// cannot miss a notification that happens after the check.
#[derive(Default)]
pub(crate) struct Notify {
    generation: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

impl Notify {
    pub(crate) fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        for waker in self.wakers.take() {
            waker.wake();
        }
    }

    pub(crate) fn listen(&self) -> Listen<'_> {
        Listen {
            notify: self,
            generation: self.generation.get(),
        }
    }
}

pub(crate) struct Listen<'a> {
    notify: &'a Notify,
    generation: u64,
}

impl Future for Listen<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.generation.get() != self.generation {
            return Poll::Ready(());
        }
        let mut wakers = self.notify.wakers.borrow_mut();
        if !wakers.iter().any(|waker| waker.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// A bounded queue of encoded frames and the writer that drains it into one stream at a time.
struct OutQueue {
    label: String,
    pending: RefCell<Vec<u8>>,
    encoder: RefCell<FrameEncoder>,
    frames: Cell<usize>,
    frames_high_water: Cell<usize>,
    bytes_high_water: Cell<usize>,
    frames_max: usize,
    bytes_max: usize,
    frame_bytes_max: usize,
    /// Notified when frames are queued.
    filled: Notify,
    /// Notified when the writer takes a batch (room for more).
    drained: Notify,
    closed: Cell<bool>,
}

enum Full {
    Frames,
    Bytes,
}

impl OutQueue {
    fn new(label: String, limits: &Limits) -> OutQueue {
        OutQueue {
            label,
            pending: RefCell::new(Vec::new()),
            encoder: RefCell::new(FrameEncoder::new()),
            frames: Cell::new(0),
            frames_high_water: Cell::new(0),
            bytes_high_water: Cell::new(0),
            frames_max: limits.send_queue_frames_max.max(1),
            bytes_max: limits.send_queue_bytes_max,
            frame_bytes_max: limits.frame_bytes_max,
            filled: Notify::default(),
            drained: Notify::default(),
            closed: Cell::new(false),
        }
    }

    fn push<T: FrameBody>(&self, message: &T) -> Result<Result<(), Full>, EncodeError> {
        if self.frames.get() >= self.frames_max {
            return Ok(Err(Full::Frames));
        }
        let mut pending = self.pending.borrow_mut();
        let before_bytes = pending.len();
        self.encoder
            .borrow_mut()
            .encode(message, &mut pending, self.frame_bytes_max)?;
        if before_bytes > 0 && pending.len() > self.bytes_max {
            pending.truncate(before_bytes);
            return Ok(Err(Full::Bytes));
        }
        self.frames.set(self.frames.get() + 1);
        self.frames_high_water
            .set(self.frames_high_water.get().max(self.frames.get()));
        self.bytes_high_water
            .set(self.bytes_high_water.get().max(pending.len()));
        drop(pending);
        self.filled.notify();
        Ok(Ok(()))
    }

    fn stats(&self) -> QueueStats {
        QueueStats {
            frames: self.frames.get(),
            bytes: self.pending.borrow().len(),
            frames_high_water: self.frames_high_water.get(),
            bytes_high_water: self.bytes_high_water.get(),
        }
    }

    /// Swaps the queued frames into `batch` (which must be empty) and makes room.
    fn take(&self, batch: &mut Vec<u8>) {
        debug_assert!(batch.is_empty());
        std::mem::swap(&mut *self.pending.borrow_mut(), batch);
        self.frames.set(0);
        self.drained.notify();
    }

    fn close(&self) {
        self.closed.set(true);
        self.filled.notify();
        self.drained.notify();
    }

    /// Writes batches into `stream` until the queue is closed, the connection dies or a write
    /// fails. Returns whether the queue was closed.
    async fn drain_into(
        &self,
        stream: &mut quinn::SendStream,
        connection: &quinn::Connection,
    ) -> bool {
        let mut batch = Vec::new();
        loop {
            let filled = self.filled.listen();
            if self.closed.get() {
                return true;
            }
            if self.frames.get() == 0 {
                let lost = async {
                    connection.closed().await;
                    false
                };
                if !futures_lite::future::or(
                    async {
                        filled.await;
                        true
                    },
                    lost,
                )
                .await
                {
                    return false;
                }
                continue;
            }
            self.take(&mut batch);
            if let Err(error) = stream.write_all(&batch).await {
                tracing::debug!(peer = %self.label, %error, "write failed; waiting for a new connection");
                return false;
            }
            batch.clear();
        }
    }
}

/// One peer: its queue and its current connection.
struct PeerLink {
    peer: NodeId,
    addr: SocketAddr,
    queue: OutQueue,
    /// The live connection and its generation (bumped per new connection).
    connection: RefCell<Option<(quinn::Connection, u64)>>,
    generation: Cell<u64>,
    connected: Notify,
}

struct Shared {
    node_id: NodeId,
    endpoint: quinn::Endpoint,
    client_config: quinn::ClientConfig,
    limits: Limits,
    /// Grows when the membership adds a member (`Transport::add_peer`); never held across
    /// an await.
    links: RefCell<HashMap<NodeId, Rc<PeerLink>>>,
    inbound: Rc<dyn Inbound>,
    closed: Cell<bool>,
    stats: Cell<TransportStats>,
    /// Client connections being served now; at most `limits.client_connections_max`.
    client_connections: Cell<usize>,
    /// When an accepted handshake's refusal was last logged as a warning (the rest go to
    /// debug: a misconfigured peer redials many times a second).
    last_accept_refusal_warning: Cell<Option<std::time::Instant>>,
}

/// True at most once per `DIAL_REFUSAL_WARN_INTERVAL` for one `last` (when it last said
/// true): whether to warn now, for warnings a misconfigured peer would repeat many times a
/// second.
fn refusal_warning_due(last: &Cell<Option<std::time::Instant>>) -> bool {
    let due = last
        .get()
        .is_none_or(|at| at.elapsed() >= DIAL_REFUSAL_WARN_INTERVAL);
    if due {
        last.set(Some(std::time::Instant::now()));
    }
    due
}

impl Shared {
    fn count(&self, update: impl FnOnce(&mut TransportStats)) {
        let mut stats = self.stats.get();
        update(&mut stats);
        self.stats.set(stats);
    }
}

/// A node's QUIC endpoint: peer links and client sessions. Lives on one executor (not `Send`).
pub struct Transport {
    shared: Rc<Shared>,
}

/// Client sessions (bidirectional streams) one connection may have open at once; with
/// `client_connections_max` this bounds the sessions a transport serves.
pub const CLIENT_STREAMS_PER_CONNECTION_MAX: u32 = 16;

fn transport_config(limits: &Limits) -> Arc<quinn::TransportConfig> {
    let mut config = quinn::TransportConfig::default();
    let window = |bytes: u64| VarInt::from_u64(bytes).unwrap_or(VarInt::MAX);
    config.stream_receive_window(window(limits.stream_window_bytes));
    config.receive_window(window(limits.connection_window_bytes));
    config.send_window(limits.connection_window_bytes);
    let idle = Duration::from_millis(limits.idle_timeout_ms);
    config.max_idle_timeout(quinn::IdleTimeout::try_from(idle).ok());
    config.keep_alive_interval(Some(Duration::from_millis(limits.keep_alive_interval_ms)));
    // Peers use one stream per direction; a few spare for replaced streams. Clients use one
    // bidirectional stream per session.
    config.max_concurrent_uni_streams(VarInt::from_u32(4));
    config.max_concurrent_bidi_streams(VarInt::from_u32(CLIENT_STREAMS_PER_CONNECTION_MAX));
    Arc::new(config)
}

/// Binds a QUIC endpoint on the current executor that accepts connections (with `identity`'s
/// certificate) and dials out.
fn make_endpoint(
    listen_addr: SocketAddr,
    security: &Security,
    identity: Identity,
    limits: &Limits,
    accept: bool,
    server_names: tls::ServerNames,
) -> Result<(quinn::Endpoint, quinn::ClientConfig), TransportError> {
    let transport = transport_config(limits);
    let server_config = if accept {
        let mut config = quinn::ServerConfig::with_crypto(tls::server_crypto(security, identity)?);
        config.transport_config(transport.clone());
        Some(config)
    } else {
        None
    };
    let mut client_config =
        quinn::ClientConfig::new(tls::client_crypto(security, identity, server_names)?);
    client_config.transport_config(transport);
    let socket = runtime::bind_udp(listen_addr).map_err(|source| TransportError::Bind {
        addr: listen_addr,
        source,
    })?;
    // Keys that survive a restart, so a peer learns of the restart at once (see the type).
    let keys = tls::restart_stable_keys(security, identity);
    let mut endpoint_config = quinn::EndpointConfig::new(keys.reset_key);
    let connection_id_key = keys.connection_id_key;
    endpoint_config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(
            connection_id_key,
        ))
    });
    let endpoint = quinn::Endpoint::new(
        endpoint_config,
        server_config,
        socket,
        Arc::new(GlommioRuntime),
    )
    .map_err(|source| TransportError::Bind {
        addr: listen_addr,
        source,
    })?;
    Ok((endpoint, client_config))
}

/// Dials `addr` expecting `expected` there; returns the connection once the handshake and the
/// identity check passed.
async fn connect(
    endpoint: &quinn::Endpoint,
    client_config: &quinn::ClientConfig,
    addr: SocketAddr,
    expected: Identity,
) -> Result<quinn::Connection, TransportError> {
    let connect_error = |detail: String| TransportError::Connect { addr, detail };
    let connecting = endpoint
        .connect_with(client_config.clone(), addr, &expected.dns_name())
        .map_err(|error| connect_error(error.to_string()))?;
    let connection = connecting
        .await
        .map_err(|error| handshake_error(addr, &error))?;
    // In secure mode webpki already matched the name; this also covers insecure mode.
    let found = tls::peer_identity(&connection)?;
    if found != expected {
        connection.close(
            VarInt::from_u32(close_code::REFUSED_IDENTITY),
            b"not who we dialed",
        );
        return Err(TransportError::IdentityMismatch {
            addr,
            expected,
            found,
        });
    }
    Ok(connection)
}

/// Dials a tern endpoint as `identity` and returns the raw QUIC connection and the endpoint
/// that owns it. For tools and tests that speak the wire directly; nodes use [`Transport`].
pub async fn dial(
    security: &Security,
    identity: Identity,
    addr: SocketAddr,
    expected: Identity,
    limits: &Limits,
) -> Result<(quinn::Endpoint, quinn::Connection), TransportError> {
    let local = local_addr_for(addr);
    let (endpoint, client_config) = make_endpoint(
        local,
        security,
        identity,
        limits,
        false,
        tls::ServerNames::Requested,
    )?;
    let connection = connect(&endpoint, &client_config, addr, expected).await?;
    Ok((endpoint, connection))
}

/// The local address a dialer binds to reach `remote`: loopback for a loopback server (so tests
/// never touch another interface), else the unspecified address of the same family, so the
/// kernel picks the interface that routes to `remote` (a loopback socket cannot reach another
/// machine).
fn local_addr_for(remote: SocketAddr) -> SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip = match (remote.ip().is_loopback(), remote.is_ipv6()) {
        (true, false) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        (true, true) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        (false, false) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (false, true) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

/// Dials `addr` as a client, accepting any cluster member there (its certificate must verify
/// against the cluster CA in secure mode); returns the connection and the member's id.
async fn dial_any_node(
    security: &Security,
    addr: SocketAddr,
    limits: &Limits,
) -> Result<(quinn::Endpoint, quinn::Connection, NodeId), TransportError> {
    let (endpoint, client_config) = make_endpoint(
        local_addr_for(addr),
        security,
        Identity::Client,
        limits,
        false,
        tls::ServerNames::AnyNode,
    )?;
    let connect_error = |detail: String| TransportError::Connect { addr, detail };
    // The verifier ignores the requested name (it checks the one the certificate carries); this
    // one only has to be a valid DNS name for SNI.
    let connecting = endpoint
        .connect_with(client_config, addr, "tern")
        .map_err(|error| connect_error(error.to_string()))?;
    let connection = connecting
        .await
        .map_err(|error| handshake_error(addr, &error))?;
    // Secure mode already refused non-members in the handshake; this also covers insecure mode.
    match tls::peer_identity(&connection)? {
        Identity::Node(node) if node != 0 => Ok((endpoint, connection, node)),
        found => {
            connection.close(
                VarInt::from_u32(close_code::REFUSED_IDENTITY),
                b"not a cluster node",
            );
            Err(connect_error(format!(
                "the server's certificate names {found}, not a cluster node"
            )))
        }
    }
}

impl Transport {
    /// Binds the endpoint and starts the link tasks. Call from inside a glommio executor
    /// (see [`runtime::run_executor`]).
    pub fn start(
        config: TransportConfig,
        inbound: Rc<dyn Inbound>,
    ) -> Result<Transport, TransportError> {
        config.limits.validate().map_err(TransportError::Limits)?;
        let node_id = config.node_id;
        let identity = Identity::Node(node_id);
        let (endpoint, client_config) = make_endpoint(
            config.listen_addr,
            &config.security,
            identity,
            &config.limits,
            true,
            tls::ServerNames::Requested,
        )?;
        for &(peer, _) in &config.peers {
            if peer == node_id || peer == 0 {
                return Err(TransportError::BadPeer { node_id });
            }
        }
        let shared = Rc::new(Shared {
            node_id,
            endpoint,
            client_config,
            limits: config.limits,
            links: RefCell::new(HashMap::new()),
            inbound,
            closed: Cell::new(false),
            stats: Cell::new(TransportStats::default()),
            client_connections: Cell::new(0),
            last_accept_refusal_warning: Cell::new(None),
        });
        let transport = Transport { shared };
        for &(peer, addr) in &config.peers {
            transport.add_peer(peer, addr);
        }
        runtime::spawn(accept_connections(transport.shared.clone()));
        Ok(transport)
    }

    /// Starts a link to `peer` at `addr` (a member the membership added), unless one exists
    /// or `peer` is this node or 0. Links are never removed while the node runs: a removed
    /// member's link only idles.
    pub fn add_peer(&self, peer: NodeId, addr: SocketAddr) -> bool {
        let shared = &self.shared;
        if peer == shared.node_id || peer == 0 || shared.links.borrow().contains_key(&peer) {
            return false;
        }
        let label = format!("node {peer} ({addr})");
        let link = Rc::new(PeerLink {
            peer,
            addr,
            queue: OutQueue::new(label, &shared.limits),
            connection: RefCell::new(None),
            generation: Cell::new(0),
            connected: Notify::default(),
        });
        shared.links.borrow_mut().insert(peer, link.clone());
        runtime::spawn(write_link(shared.clone(), link.clone()));
        if shared.node_id < peer {
            runtime::spawn(dial_link(shared.clone(), link));
        }
        true
    }

    /// The peers this node has links to.
    pub fn peers(&self) -> Vec<NodeId> {
        self.shared.links.borrow().keys().copied().collect()
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.shared.node_id
    }

    /// The address the endpoint is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.shared.endpoint.local_addr()
    }

    /// Queues `message` for `to` without waiting; [`SendError::QueueFull`] is backpressure.
    pub fn send(&self, to: NodeId, message: &RaftMessage) -> Result<(), SendError> {
        let link = self.link(to).ok_or(SendError::UnknownPeer(to))?;
        if self.shared.closed.get() {
            return Err(SendError::Closed);
        }
        match link.queue.push(message)? {
            Ok(()) => Ok(()),
            Err(_) => {
                let stats = link.queue.stats();
                Err(SendError::QueueFull {
                    peer: to,
                    frames: stats.frames,
                    bytes: stats.bytes,
                })
            }
        }
    }

    /// Queues `message` for `to`, waiting while the queue is full.
    pub async fn send_wait(&self, to: NodeId, message: &RaftMessage) -> Result<(), SendError> {
        let link = self.link(to).ok_or(SendError::UnknownPeer(to))?;
        loop {
            let drained = link.queue.drained.listen();
            match self.send(to, message) {
                Err(SendError::QueueFull { .. }) => drained.await,
                other => return other,
            }
        }
    }

    fn link(&self, peer: NodeId) -> Option<Rc<PeerLink>> {
        self.shared.links.borrow().get(&peer).cloned()
    }

    /// The send queue of the link to `peer`.
    pub fn queue_stats(&self, peer: NodeId) -> Option<QueueStats> {
        self.link(peer).map(|link| link.queue.stats())
    }

    /// Whether the link to `peer` has a live connection now.
    pub fn is_connected(&self, peer: NodeId) -> bool {
        self.link(peer).is_some_and(|link| {
            link.connection
                .borrow()
                .as_ref()
                .is_some_and(|(c, _)| c.close_reason().is_none())
        })
    }

    /// Client connections being served now (at most `client_connections_max`).
    pub fn client_connections(&self) -> usize {
        self.shared.client_connections.get()
    }

    /// Counters since start.
    pub fn stats(&self) -> TransportStats {
        self.shared.stats.get()
    }

    /// Closes every connection and stops every task of this transport.
    pub fn close(&self) {
        self.shared.closed.set(true);
        for link in self.shared.links.borrow().values() {
            link.queue.close();
            link.connected.notify();
        }
        self.shared
            .endpoint
            .close(VarInt::from_u32(close_code::SHUTDOWN), b"shutdown");
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        // The tasks hold the shared state; without this they would keep the endpoint alive.
        self.close();
    }
}

/// Least time between two warnings of refused handshakes on one peer link.
const DIAL_REFUSAL_WARN_INTERVAL: Duration = Duration::from_secs(10);

fn jittered(backoff_ms: u64) -> Duration {
    // Full range 50%-100% of the backoff, so peers that lost each other at once spread out.
    Duration::from_millis(backoff_ms / 2 + fastrand::u64(0..=backoff_ms / 2))
}

/// The dialing side of a link: keeps one connection up, redialing with jittered backoff.
async fn dial_link(shared: Rc<Shared>, link: Rc<PeerLink>) {
    let limits = &shared.limits;
    let mut backoff_ms = limits.reconnect_backoff_ms_min.max(1);
    let last_refusal_warning = Cell::new(None);
    let handshake_timeout = Duration::from_millis(limits.handshake_timeout_ms);
    while !shared.closed.get() {
        let dial = connect(
            &shared.endpoint,
            &shared.client_config,
            link.addr,
            Identity::Node(link.peer),
        );
        // Dropping an unfinished dial abandons that handshake; the next one starts afresh.
        let timed_out = async {
            runtime::sleep(handshake_timeout).await;
            Err(TransportError::Connect {
                addr: link.addr,
                detail: format!(
                    "no handshake within handshake_timeout_ms = {}",
                    limits.handshake_timeout_ms
                ),
            })
        };
        match futures_lite::future::or(dial, timed_out).await {
            Ok(connection) => {
                backoff_ms = limits.reconnect_backoff_ms_min.max(1);
                tracing::debug!(
                    node = shared.node_id,
                    peer = link.peer,
                    "link connected (dialed)"
                );
                install_connection(&shared, &link, connection.clone());
                let reason = connection.closed().await;
                tracing::info!(node = shared.node_id, peer = link.peer, %reason, "link lost; redialing");
            }
            Err(error @ TransportError::HandshakeRefused { .. }) => {
                // A misconfiguration, not a passing fault: say it where operators look, but
                // not on every redial.
                if refusal_warning_due(&last_refusal_warning) {
                    tracing::warn!(node = shared.node_id, peer = link.peer, %error, "cannot link to a peer");
                }
            }
            Err(error) => {
                tracing::debug!(node = shared.node_id, peer = link.peer, %error, backoff_ms, "dial failed");
            }
        }
        if shared.closed.get() {
            break;
        }
        runtime::sleep(jittered(backoff_ms)).await;
        backoff_ms = (backoff_ms * 2).min(limits.reconnect_backoff_ms_max.max(1));
    }
}

/// Makes `connection` the link's current one and starts reading from it.
fn install_connection(shared: &Rc<Shared>, link: &Rc<PeerLink>, connection: quinn::Connection) {
    let generation = link.generation.get() + 1;
    link.generation.set(generation);
    let previous = link
        .connection
        .replace(Some((connection.clone(), generation)));
    if let Some((old, _)) = previous {
        old.close(
            VarInt::from_u32(close_code::REPLACED),
            b"replaced by a newer connection",
        );
    }
    shared.count(|stats| stats.peer_connections += 1);
    link.connected.notify();
    runtime::spawn(read_link(shared.clone(), link.clone(), connection));
}

/// The sending side of a link: for each connection, one stream fed from the queue.
async fn write_link(shared: Rc<Shared>, link: Rc<PeerLink>) {
    let mut generation_done = 0;
    loop {
        let connected = link.connected.listen();
        if shared.closed.get() {
            return;
        }
        let current = link.connection.borrow().clone();
        let Some((connection, generation)) =
            current.filter(|(_, generation)| *generation > generation_done)
        else {
            connected.await;
            continue;
        };
        generation_done = generation;
        let mut stream = match connection.open_uni().await {
            Ok(stream) => stream,
            Err(_) => continue,
        };
        if link.queue.drain_into(&mut stream, &connection).await {
            let _ = stream.finish();
            return;
        }
    }
}

/// The receiving side of a link: reads every stream the peer opens on `connection`.
async fn read_link(shared: Rc<Shared>, link: Rc<PeerLink>, connection: quinn::Connection) {
    while let Ok(stream) = connection.accept_uni().await {
        runtime::spawn(read_peer_stream(
            shared.clone(),
            link.clone(),
            connection.clone(),
            stream,
        ));
    }
}

async fn read_peer_stream(
    shared: Rc<Shared>,
    link: Rc<PeerLink>,
    connection: quinn::Connection,
    mut stream: quinn::RecvStream,
) {
    let label = format!("node {} ({})", link.peer, connection.remote_address());
    let mut reader = FrameReader::with_retained(
        label.clone(),
        shared.limits.frame_bytes_max,
        shared.limits.receive_buffer_bytes_retained,
    );
    loop {
        let read = stream.read(reader.read_space()).await;
        let result = match read {
            Ok(Some(bytes)) => {
                reader.filled(bytes);
                deliver_raft_frames(&shared, link.peer, &label, &mut reader)
            }
            Ok(None) => reader.finish(),
            // The connection or stream ended; the dialer notices and reconnects.
            Err(_) => return,
        };
        if let Err(error) = result {
            refuse_bad_frame(&shared, &connection, &error);
            return;
        }
        if matches!(read, Ok(None)) {
            return;
        }
    }
}

fn deliver_raft_frames(
    shared: &Shared,
    peer: NodeId,
    label: &str,
    reader: &mut FrameReader,
) -> Result<(), FrameError> {
    let mut delivered = 0;
    let result = loop {
        match reader.next_frame() {
            Ok(None) => break Ok(()),
            Ok(Some(Frame::Raft(message))) => {
                // The certificate proved who the peer is; its messages must say the same.
                if message.from.to_native() != peer || message.to.to_native() != shared.node_id {
                    break Err(FrameError::InvalidArchive {
                        peer: label.to_string(),
                        expected: "RaftMessage from the certificate's node to this node",
                        frame_bytes: 0,
                        detail: format!(
                            "message says from {} to {}",
                            message.from.to_native(),
                            message.to.to_native()
                        ),
                    });
                }
                delivered += 1;
                shared.inbound.raft(peer, message);
            }
            Ok(Some(other)) => {
                break Err(FrameError::UnexpectedKind {
                    peer: label.to_string(),
                    kind: other.kind(),
                })
            }
            Err(error) => break Err(error),
        }
    };
    shared.count(|stats| stats.raft_frames_received += delivered);
    result
}

fn refuse_bad_frame(shared: &Shared, connection: &quinn::Connection, error: &FrameError) {
    tracing::warn!(node = shared.node_id, remote = %connection.remote_address(), %error, "closing connection: bad frame");
    shared.count(|stats| stats.bad_frames += 1);
    connection.close(VarInt::from_u32(close_code::BAD_FRAME), b"bad frame");
}

/// Accepts connections until the endpoint closes; each is verified in its own task.
async fn accept_connections(shared: Rc<Shared>) {
    while let Some(incoming) = shared.endpoint.accept().await {
        runtime::spawn(accept_one(shared.clone(), incoming));
    }
}

async fn accept_one(shared: Rc<Shared>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(error) => {
            // This is where a certificate from another CA ends: nothing was read from it.
            if is_refusal(&error) && refusal_warning_due(&shared.last_accept_refusal_warning) {
                tracing::warn!(node = shared.node_id, %remote, %error, "refused connection: TLS handshake failed (the peer's certificate is not from this cluster's CA; further refusals for 10 s are logged at debug)");
            } else if is_refusal(&error) {
                tracing::debug!(node = shared.node_id, %remote, %error, "refused connection: TLS handshake failed");
            } else {
                // Not a refusal: the dialer gave up (its handshake timeout) or went away.
                tracing::debug!(node = shared.node_id, %remote, %error, "connection closed during the handshake");
            }
            if is_refusal(&error) {
                shared.count(|stats| stats.handshakes_refused += 1);
            }
            return;
        }
    };
    let identity = match tls::peer_identity(&connection) {
        Ok(identity) => identity,
        Err(error) => {
            refuse_identity(&shared, &connection, &error.to_string());
            return;
        }
    };
    match identity {
        Identity::Client => {
            let Some(_slot) = ClientSlot::take(&shared) else {
                refuse_client(&shared, &connection);
                return;
            };
            serve_client(shared.clone(), connection).await;
        }
        Identity::Node(peer) => {
            let link = shared.links.borrow().get(&peer).cloned();
            let Some(link) = link else {
                refuse_identity(
                    &shared,
                    &connection,
                    &format!("node {peer} is not a configured peer"),
                );
                return;
            };
            if peer > shared.node_id {
                let reason = format!(
                    "node {peer} dialed, but the lower id ({}) dials",
                    shared.node_id
                );
                refuse_identity(&shared, &connection, &reason);
                return;
            }
            tracing::debug!(node = shared.node_id, peer, "link connected (accepted)");
            install_connection(&shared, &link, connection);
        }
    }
}

/// Whether a failed incoming handshake is a security refusal worth a warning: a TLS alert
/// (unknown CA, bad certificate) raised here or sent by the peer, or a protocol mismatch. A
/// peer that just closed or went away mid-handshake (a client that quit, `tern status`
/// closing early) is not.
/// A failed handshake as an error: a certificate refusal (either side's) says so.
fn handshake_error(addr: SocketAddr, error: &quinn::ConnectionError) -> TransportError {
    let detail = error.to_string();
    if is_refusal(error) {
        TransportError::HandshakeRefused { addr, detail }
    } else {
        TransportError::Connect { addr, detail }
    }
}

fn is_refusal(error: &quinn::ConnectionError) -> bool {
    use quinn::ConnectionError;
    match error {
        ConnectionError::TransportError(_) | ConnectionError::VersionMismatch => true,
        ConnectionError::ConnectionClosed(close) => {
            // quinn_proto keeps crypto (TLS alert) codes at 0x100..0x200.
            (0x100..0x200).contains(&u64::from(close.error_code))
        }
        ConnectionError::ApplicationClosed(_)
        | ConnectionError::Reset
        | ConnectionError::TimedOut
        | ConnectionError::LocallyClosed
        | ConnectionError::CidsExhausted => false,
    }
}

fn refuse_identity(shared: &Shared, connection: &quinn::Connection, reason: &str) {
    tracing::warn!(node = shared.node_id, remote = %connection.remote_address(), reason, "refused connection");
    shared.count(|stats| stats.identities_refused += 1);
    connection.close(
        VarInt::from_u32(close_code::REFUSED_IDENTITY),
        b"identity refused",
    );
}

/// One of the `client_connections_max` places for a client connection; given back on drop, so
/// every way a client connection's task ends frees its place.
struct ClientSlot {
    shared: Rc<Shared>,
}

impl ClientSlot {
    fn take(shared: &Rc<Shared>) -> Option<ClientSlot> {
        let open = shared.client_connections.get();
        if open >= shared.limits.client_connections_max {
            return None;
        }
        shared.client_connections.set(open + 1);
        shared.count(|stats| stats.client_connections_accepted += 1);
        Some(ClientSlot {
            shared: shared.clone(),
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let open = &self.shared.client_connections;
        open.set(open.get().saturating_sub(1));
    }
}

fn refuse_client(shared: &Shared, connection: &quinn::Connection) {
    tracing::warn!(
        node = shared.node_id,
        remote = %connection.remote_address(),
        client_connections_max = shared.limits.client_connections_max,
        "refused client connection: too many client connections"
    );
    shared.count(|stats| stats.client_connections_refused += 1);
    connection.close(
        VarInt::from_u32(close_code::TOO_MANY_CLIENTS),
        b"too many client connections",
    );
}

/// The server side of a client session: answers go through [`ClientSession`].
#[derive(Clone)]
pub struct ClientSession {
    queue: Rc<OutQueue>,
    remote: SocketAddr,
}

impl ClientSession {
    /// Where the client connects from.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// Queues a response batch; [`SendError::QueueFull`] when the client reads too slowly.
    pub fn send_responses(&self, batch: &ClientResponseBatch) -> Result<(), SendError> {
        self.push(batch)
    }

    /// Tells the client to go to the leader.
    pub fn send_not_leader(&self, not_leader: &NotLeader) -> Result<(), SendError> {
        self.push(not_leader)
    }

    /// Answers a status request.
    pub fn send_status(&self, status: &NodeStatus) -> Result<(), SendError> {
        self.push(status)
    }

    /// Answers an admin request.
    pub fn send_admin(&self, response: &AdminResponse) -> Result<(), SendError> {
        self.push(response)
    }

    fn push<T: FrameBody>(&self, message: &T) -> Result<(), SendError> {
        if self.queue.closed.get() {
            return Err(SendError::Closed);
        }
        match self.queue.push(message)? {
            Ok(()) => Ok(()),
            Err(_) => {
                let stats = self.queue.stats();
                Err(SendError::QueueFull {
                    peer: 0,
                    frames: stats.frames,
                    bytes: stats.bytes,
                })
            }
        }
    }
}

async fn serve_client(shared: Rc<Shared>, connection: quinn::Connection) {
    while let Ok((send, receive)) = connection.accept_bi().await {
        runtime::spawn(serve_client_stream(
            shared.clone(),
            connection.clone(),
            send,
            receive,
        ));
    }
}

async fn serve_client_stream(
    shared: Rc<Shared>,
    connection: quinn::Connection,
    mut send: quinn::SendStream,
    mut receive: quinn::RecvStream,
) {
    let remote = connection.remote_address();
    let label = format!("client ({remote})");
    let session = ClientSession {
        queue: Rc::new(OutQueue::new(label.clone(), &shared.limits)),
        remote,
    };
    let writer_queue = session.queue.clone();
    let writer_connection = connection.clone();
    runtime::spawn(async move {
        writer_queue.drain_into(&mut send, &writer_connection).await;
        let _ = send.finish();
    });
    let mut reader = FrameReader::with_retained(
        label.clone(),
        shared.limits.frame_bytes_max,
        shared.limits.receive_buffer_bytes_retained,
    );
    loop {
        let read = receive.read(reader.read_space()).await;
        let result = match read {
            Ok(Some(bytes)) => {
                reader.filled(bytes);
                deliver_client_frames(&shared, &session, &label, &mut reader)
            }
            Ok(None) => reader.finish(),
            Err(_) => Ok(()),
        };
        if let Err(error) = result {
            refuse_bad_frame(&shared, &connection, &error);
            break;
        }
        if !matches!(read, Ok(Some(_))) {
            break;
        }
    }
    session.queue.close();
}

fn deliver_client_frames(
    shared: &Shared,
    session: &ClientSession,
    label: &str,
    reader: &mut FrameReader,
) -> Result<(), FrameError> {
    loop {
        match reader.next_frame()? {
            None => return Ok(()),
            Some(Frame::ClientRequests(batch)) => shared.inbound.client_requests(session, batch),
            Some(Frame::StatusRequest(request)) => shared.inbound.status_request(session, request),
            Some(Frame::AdminRequest(request)) => shared.inbound.admin_request(session, request),
            Some(other) => {
                return Err(FrameError::UnexpectedKind {
                    peer: label.to_string(),
                    kind: other.kind(),
                })
            }
        }
    }
}

/// What a server answered a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientReply {
    Responses(ClientResponseBatch),
    NotLeader(NotLeader),
    Status(NodeStatus),
    Admin(AdminResponse),
}

/// A client of one node: sends request batches and reads the replies, over one stream.
/// The client side is not a hot path, so replies are deserialized into owned values.
/// [`Client::split`] gives a sending and a receiving half, so one task can write while another
/// reads (pipelining).
pub struct Client {
    sender: ClientSender,
    receiver: ClientReceiver,
}

/// The sending half of a [`Client`].
pub struct ClientSender {
    _endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    send: quinn::SendStream,
    encoder: FrameEncoder,
    buffer: Vec<u8>,
    frame_bytes_max: usize,
}

/// The receiving half of a [`Client`].
pub struct ClientReceiver {
    // Each half keeps the endpoint (the UDP socket and its driver) alive.
    _endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    receive: quinn::RecvStream,
    reader: FrameReader,
    label: String,
}

impl Client {
    /// Connects to node `server` at `addr` with a client certificate (see [`Identity::Client`]).
    pub async fn connect(
        security: &Security,
        addr: SocketAddr,
        server: NodeId,
        limits: &Limits,
    ) -> Result<Client, TransportError> {
        limits.validate().map_err(TransportError::Limits)?;
        let (endpoint, connection) = dial(
            security,
            Identity::Client,
            addr,
            Identity::Node(server),
            limits,
        )
        .await?;
        Client::open(endpoint, connection, addr, server, limits).await
    }

    /// Connects to whichever cluster member serves `addr` (a client that knows addresses, not
    /// ids) and says which member answered. In secure mode the member's certificate must be
    /// signed by the cluster CA and name a node; a client certificate or another CA's fails the
    /// handshake.
    pub async fn connect_any(
        security: &Security,
        addr: SocketAddr,
        limits: &Limits,
    ) -> Result<(Client, NodeId), TransportError> {
        limits.validate().map_err(TransportError::Limits)?;
        let (endpoint, connection, server) = dial_any_node(security, addr, limits).await?;
        let client = Client::open(endpoint, connection, addr, server, limits).await?;
        Ok((client, server))
    }

    async fn open(
        endpoint: quinn::Endpoint,
        connection: quinn::Connection,
        addr: SocketAddr,
        server: NodeId,
        limits: &Limits,
    ) -> Result<Client, TransportError> {
        let (send, receive) =
            connection
                .open_bi()
                .await
                .map_err(|error| TransportError::Connection {
                    addr,
                    detail: error.to_string(),
                })?;
        let label = format!("node {server} ({addr})");
        Ok(Client {
            sender: ClientSender {
                _endpoint: endpoint.clone(),
                connection: connection.clone(),
                send,
                encoder: FrameEncoder::new(),
                buffer: Vec::new(),
                frame_bytes_max: limits.frame_bytes_max,
            },
            receiver: ClientReceiver {
                _endpoint: endpoint,
                connection,
                receive,
                reader: FrameReader::with_retained(
                    label.clone(),
                    limits.frame_bytes_max,
                    limits.receive_buffer_bytes_retained,
                ),
                label,
            },
        })
    }

    /// Sends one message: a [`ClientRequestBatch`](crate::message::ClientRequestBatch) or a
    /// [`StatusRequest`](crate::message::StatusRequest).
    pub async fn send<T: FrameBody>(&mut self, message: &T) -> Result<(), TransportError> {
        self.sender.send(message).await
    }

    /// Closes the connection; the server frees this client's place at once.
    pub fn close(&self) {
        self.sender.close();
    }

    /// Waits for the next reply.
    pub async fn receive(&mut self) -> Result<ClientReply, TransportError> {
        self.receiver.receive().await
    }

    /// The server's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.sender.connection.remote_address()
    }

    /// The two halves, for a writer task and a reader task.
    pub fn split(self) -> (ClientSender, ClientReceiver) {
        (self.sender, self.receiver)
    }
}

impl ClientSender {
    /// Sends one message: a [`ClientRequestBatch`](crate::message::ClientRequestBatch) or a
    /// [`StatusRequest`](crate::message::StatusRequest). An oversized message
    /// is [`TransportError::Encode`] and sends nothing.
    pub async fn send<T: FrameBody>(&mut self, message: &T) -> Result<(), TransportError> {
        self.buffer.clear();
        self.encoder
            .encode(message, &mut self.buffer, self.frame_bytes_max)?;
        let result = self.send.write_all(&self.buffer).await;
        result.map_err(|error| connection_error(&self.connection, error))
    }

    /// Closes the connection (both halves); the server frees this client's place at once.
    pub fn close(&self) {
        self.connection
            .close(VarInt::from_u32(close_code::SHUTDOWN), b"client closed");
    }

    /// A handle that closes this connection from another task (the sender itself is usually
    /// busy in a writer task).
    pub fn closer(&self) -> ClientCloser {
        ClientCloser {
            connection: self.connection.clone(),
        }
    }
}

/// Closes a [`Client`]'s connection from anywhere; see [`ClientSender::closer`].
#[derive(Clone)]
pub struct ClientCloser {
    connection: quinn::Connection,
}

impl ClientCloser {
    /// Closes the connection (both halves); the server frees this client's place at once.
    pub fn close(&self) {
        self.connection
            .close(VarInt::from_u32(close_code::SHUTDOWN), b"client closed");
    }
}

impl ClientReceiver {
    /// Waits for the next reply.
    pub async fn receive(&mut self) -> Result<ClientReply, TransportError> {
        loop {
            if let Some(frame) = self.reader.next_frame()? {
                return owned_reply(frame, &self.label);
            }
            let read = self.receive.read(self.reader.read_space()).await;
            match read {
                Ok(Some(bytes)) => self.reader.filled(bytes),
                Ok(None) => {
                    self.reader.finish()?;
                    return Err(connection_error(
                        &self.connection,
                        "server closed the stream",
                    ));
                }
                Err(error) => return Err(connection_error(&self.connection, error)),
            }
        }
    }
}

/// Why a client connection failed: the server's close reason when there is one (a stream error
/// only says "connection lost"), so a refused client learns why.
fn connection_error(
    connection: &quinn::Connection,
    error: impl std::fmt::Display,
) -> TransportError {
    let detail = match connection.close_reason() {
        Some(reason) => reason.to_string(),
        None => error.to_string(),
    };
    TransportError::Connection {
        addr: connection.remote_address(),
        detail,
    }
}

fn owned_reply(frame: Frame<'_>, peer: &str) -> Result<ClientReply, TransportError> {
    use rkyv::rancor::Error;
    let invalid = |expected: &'static str, error: Error| {
        TransportError::Frame(FrameError::InvalidArchive {
            peer: peer.to_string(),
            expected,
            frame_bytes: 0,
            detail: error.to_string(),
        })
    };
    match frame {
        Frame::ClientResponses(batch) => rkyv::deserialize::<ClientResponseBatch, Error>(batch)
            .map(ClientReply::Responses)
            .map_err(|error| invalid("ClientResponseBatch", error)),
        Frame::NotLeader(not_leader) => rkyv::deserialize::<NotLeader, Error>(not_leader)
            .map(ClientReply::NotLeader)
            .map_err(|error| invalid("NotLeader", error)),
        Frame::Status(status) => rkyv::deserialize::<NodeStatus, Error>(status)
            .map(ClientReply::Status)
            .map_err(|error| invalid("NodeStatus", error)),
        Frame::AdminResponse(response) => rkyv::deserialize::<AdminResponse, Error>(response)
            .map(ClientReply::Admin)
            .map_err(|error| invalid("AdminResponse", error)),
        other => Err(TransportError::Frame(FrameError::UnexpectedKind {
            peer: peer.to_string(),
            kind: other.kind(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::local_addr_for;

    #[test]
    fn a_dialer_binds_loopback_only_for_a_loopback_server() {
        let cases = [
            ("127.0.0.1:7001", "127.0.0.1:0"),
            ("[::1]:7001", "[::1]:0"),
            ("10.0.0.5:7001", "0.0.0.0:0"),
            ("[2001:db8::5]:7001", "[::]:0"),
        ];
        for (server, local) in cases {
            assert_eq!(
                local_addr_for(server.parse().unwrap()),
                local.parse::<std::net::SocketAddr>().unwrap(),
                "dialing {server}"
            );
        }
    }
}
