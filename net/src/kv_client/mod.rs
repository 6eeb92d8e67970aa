//! The Rust client library: talks to a tern cluster through any of its endpoints.
//!
//! - Finds the leader and caches it; follows "not leader" hints (by node id among the
//!   endpoints it knows, or by the hinted address).
//! - Pipelines: many requests in flight on one connection; concurrent calls on one
//!   `KvClient` share it (calls take `&self`).
//! - Exactly once: every write carries (client id, sequence); on a timeout or a leader change
//!   the same sequence is sent again, and the server's session answers a retry with the first
//!   result instead of applying it twice.
//! - Typed errors ([`KvError`]) that say what to do.
//!
//! Retries: an attempt that times out (`attempt_timeout`), a lost connection, "not leader" and
//! `Unavailable` are retried with the same sequence until `operation_timeout`, then
//! [`KvError::Timeout`] with the last problem seen. Refusals (bad command, too large, expired
//! session) are final: [`KvError::Refused`]. A TLS refusal by (or of) every endpoint is final
//! too: [`KvError::Security`]. A command whose request frame would exceed
//! `limits.frame_bytes_max` is refused locally and never sent. Reads take sequences from the
//! same counter (one counter matches every answer) and are retried freely; a
//! [`ReadConsistency::Serializable`] read goes to whichever node the client already talks to.
//!
//! A `KvClient` lives on one glommio executor (it is not `Send`), like the transport.
//!
//! Files: `connection.rs` (one pipelined connection: batching writer, reader completing
//! calls), `leader.rs` (endpoints, known ids, leader cache and discovery), `pending.rs` (reply
//! slots and the sequence bookkeeping behind `answered_through`), `security.rs` (telling a TLS
//! refusal from a transient failure).

mod connection;
mod leader;
mod pending;
mod security;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tern_kv::{Command, CommandResult};

use crate::frame::encode_frame;
use crate::message::{
    ClientError, ClientOutcome, ClientRequest, ClientRequestBatch, NodeId, NodeStatus,
    ReadConsistency, StatusRequest,
};
use crate::runtime;
use crate::tls::Security;
use crate::transport::{Client, ClientReply, Limits};

use connection::{AttemptEnd, Connection, ConnectionSettings};
use leader::{RouteError, Router};
use pending::{SequenceGuard, Sequences};
use security::security_problem;

/// Settings of a [`KvClient`].
#[derive(Clone, Debug)]
pub struct KvClientConfig {
    /// Client addresses of cluster members (any subset; one reachable member is enough).
    pub endpoints: Vec<SocketAddr>,
    /// Client certificate (from `tern certs`) or insecure.
    pub security: Security,
    /// How reads are served (default: the server's `--read-mode`).
    pub read_consistency: ReadConsistency,
    /// One attempt's deadline: after it the request is sent again (same sequence), to the
    /// leader as then known. Also the longest wait for one connection's handshake.
    pub attempt_timeout: Duration,
    /// The whole operation's deadline, retries and the wait for an in-flight slot included;
    /// then [`KvError::Timeout`].
    pub operation_timeout: Duration,
    /// Most requests in flight at once; more calls wait for a slot. Must stay below the
    /// server's `results_per_session_max`.
    pub inflight_requests_max: usize,
    /// Most requests sent in one batch frame.
    pub batch_requests_max: usize,
    /// Transport limits (frame size etc.).
    pub limits: Limits,
}

impl KvClientConfig {
    /// Defaults for `endpoints` and `security`: server read mode, 1 s attempts, 10 s
    /// operations, 1024 in flight, batches of up to 256.
    pub fn new(endpoints: Vec<SocketAddr>, security: Security) -> KvClientConfig {
        KvClientConfig {
            endpoints,
            security,
            read_consistency: ReadConsistency::ServerDefault,
            attempt_timeout: Duration::from_secs(1),
            operation_timeout: Duration::from_secs(10),
            inflight_requests_max: 1024,
            batch_requests_max: 256,
            limits: Limits::default(),
        }
    }
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// No endpoint answered, or none knew a leader, within the operation timeout. For a write
    /// the outcome is unknown: it may or may not have been applied (at most once).
    #[error("timed out after {elapsed_ms} ms: {last_problem}")]
    Timeout {
        elapsed_ms: u64,
        last_problem: String,
    },
    /// The cluster refused the request (bad command, too large, session expired); it changed
    /// nothing. The text says what was wrong.
    #[error("refused: {0}")]
    Refused(String),
    /// Every endpoint failed the TLS handshake with this client (insecure against a mutual-TLS
    /// cluster, or certificates of another CA): retrying cannot help, so it fails at once.
    /// The text says what to do.
    #[error("security mismatch: {0}")]
    Security(String),
    /// The configuration is unusable (no endpoints, bad limits).
    #[error("client configuration: {0}")]
    Config(String),
    /// The client was closed.
    #[error("client closed")]
    Closed,
    /// A server answered something that does not decode: a version mismatch or a bug.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Outcome of a compare-and-swap or compare-and-delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compared {
    pub succeeded: bool,
    /// When it failed: the current value (`None`: absent).
    pub current: Option<Bytes>,
}

/// First pause before retrying a request the cluster answered `Unavailable`, in milliseconds.
const UNAVAILABLE_BACKOFF_MS_MIN: u64 = 10;
/// Longest such pause, in milliseconds.
const UNAVAILABLE_BACKOFF_MS_MAX: u64 = 200;
/// `Unavailable` answers in a row from one node before a call tries the other endpoints.
const UNAVAILABLE_BEFORE_MOVING_ON: u32 = 2;
/// First pause between redirects once a call has followed more redirects than the cluster has
/// nodes, in milliseconds.
const REDIRECT_BACKOFF_MS_MIN: u64 = 10;
/// Longest such pause, in milliseconds.
const REDIRECT_BACKOFF_MS_MAX: u64 = 200;
/// Commands at least this much smaller than `frame_bytes_max` certainly fit one request frame
/// (the batch's own fields and the frame header take far less), so only larger ones are
/// encoded once more to check exactly.
const FRAME_CHECK_MARGIN_BYTES: usize = 1024;

/// A connection to a tern cluster. See the module documentation.
pub struct KvClient {
    inner: Rc<Inner>,
}

struct Inner {
    client_id: u64,
    attempt_timeout: Duration,
    operation_timeout: Duration,
    read_consistency: ReadConsistency,
    frame_bytes_max: usize,
    inflight_requests_max: usize,
    /// One slot per request in flight: at most `inflight_requests_max`; callers wait in FIFO
    /// order for a slot.
    slots: glommio::sync::Semaphore,
    sequences: Rc<RefCell<Sequences>>,
    router: Router,
    closed: Cell<bool>,
}

/// A random non-zero client id: the server keys this client's session (exactly-once) on it,
/// so two clients must not pick the same one. Mixes the thread-local generator with the time
/// and the process id, so clients started at the same moment in different processes differ.
fn new_client_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or(0);
    let mixed = fastrand::u64(..) ^ nanos.rotate_left(17) ^ (u64::from(std::process::id()) << 40);
    mixed.max(1)
}

fn validate(config: &KvClientConfig) -> Result<(), KvError> {
    if config.endpoints.is_empty() {
        return Err(KvError::Config(
            "no endpoints: give at least one node's client address".into(),
        ));
    }
    config
        .limits
        .validate()
        .map_err(|problem| KvError::Config(format!("limits: {problem}")))?;
    if config.inflight_requests_max == 0 || config.batch_requests_max == 0 {
        return Err(KvError::Config(
            "inflight_requests_max and batch_requests_max must be at least 1".into(),
        ));
    }
    if config.attempt_timeout.is_zero() || config.operation_timeout.is_zero() {
        return Err(KvError::Config(
            "attempt_timeout and operation_timeout must be above zero".into(),
        ));
    }
    Ok(())
}

impl KvClient {
    /// Connects to the first reachable endpoint (and learns node ids as it goes).
    /// [`KvError::Timeout`] when none answers within `operation_timeout`.
    pub async fn connect(config: KvClientConfig) -> Result<KvClient, KvError> {
        validate(&config)?;
        let client_id = new_client_id();
        let sequences = Rc::new(RefCell::new(Sequences::new()));
        let settings = Rc::new(ConnectionSettings {
            client_id,
            read_consistency: config.read_consistency,
            batch_requests_max: config.batch_requests_max,
            frame_bytes_max: config.limits.frame_bytes_max,
            sequences: sequences.clone(),
        });
        let router = Router::new(
            config.endpoints.clone(),
            config.security.clone(),
            config.limits.clone(),
            config.attempt_timeout,
            settings,
        );
        let client = KvClient {
            inner: Rc::new(Inner {
                client_id,
                attempt_timeout: config.attempt_timeout,
                operation_timeout: config.operation_timeout,
                read_consistency: config.read_consistency,
                frame_bytes_max: config.limits.frame_bytes_max,
                inflight_requests_max: config.inflight_requests_max,
                slots: glommio::sync::Semaphore::new(config.inflight_requests_max as u64),
                sequences,
                router,
                closed: Cell::new(false),
            }),
        };
        let started = Instant::now();
        match client
            .inner
            .router
            .connection(true, started + config.operation_timeout)
            .await
        {
            Ok(_) => Ok(client),
            Err(RouteError::Closed) => Err(KvError::Closed),
            Err(RouteError::Security(problem)) => Err(KvError::Security(problem)),
            Err(RouteError::Deadline(last_problem)) => Err(KvError::Timeout {
                elapsed_ms: started.elapsed().as_millis() as u64,
                last_problem,
            }),
        }
    }

    /// This client's session id (what the server keys exactly-once on).
    pub fn client_id(&self) -> u64 {
        self.inner.client_id
    }

    /// Runs any command and returns its result (writes exactly once; reads per
    /// `read_consistency`). A command the state machine refused as a whole
    /// (`CommandResult::Error`) is [`KvError::Refused`]; inside a `Batch` each command keeps
    /// its own result.
    pub async fn execute(&self, command: Command) -> Result<CommandResult, KvError> {
        let inner = &self.inner;
        if inner.closed.get() {
            return Err(KvError::Closed);
        }
        let read_only = command.is_read_only();
        let encoded: Rc<[u8]> = command.to_bytes().into();
        self.check_fits_frame(&encoded)?;
        // The operation's deadline covers the wait for an in-flight slot too.
        let started = Instant::now();
        let deadline = started + inner.operation_timeout;
        let slot =
            futures_lite::future::or(async { Some(inner.slots.acquire_permit(1).await) }, async {
                runtime::sleep(inner.operation_timeout).await;
                None
            })
            .await;
        let _slot = match slot {
            Some(Ok(slot)) => slot,
            Some(Err(_)) => return Err(KvError::Closed),
            None => {
                return Err(KvError::Timeout {
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    last_problem: format!(
                        "waited for one of the inflight_requests_max = {} slots all along",
                        inner.inflight_requests_max
                    ),
                })
            }
        };
        let sequence = inner.sequences.borrow_mut().start();
        let _finish = SequenceGuard {
            sequences: inner.sequences.clone(),
            sequence,
        };
        // Only a serializable read may be served by whichever node we reach.
        let any_node = read_only && inner.read_consistency == ReadConsistency::Serializable;
        let mut unavailable_backoff_ms = UNAVAILABLE_BACKOFF_MS_MIN;
        let mut unavailable_in_a_row = 0u32;
        // Redirects this call followed; more than the cluster has nodes means no settled leader
        // (an election, or nodes naming each other from stale views): then pause between hops.
        let mut redirects = 0usize;
        let mut redirect_backoff_ms = REDIRECT_BACKOFF_MS_MIN;
        let mut last_problem = String::from("no attempt finished");
        let timeout = |last_problem: String| KvError::Timeout {
            elapsed_ms: started.elapsed().as_millis() as u64,
            last_problem,
        };
        loop {
            if inner.closed.get() {
                return Err(KvError::Closed);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(timeout(last_problem));
            }
            let connection = match inner.router.connection(any_node, deadline).await {
                Ok(connection) => connection,
                Err(RouteError::Closed) => return Err(KvError::Closed),
                Err(RouteError::Security(problem)) => return Err(KvError::Security(problem)),
                Err(RouteError::Deadline(problem)) => return Err(timeout(problem)),
            };
            let wait = inner
                .attempt_timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            if wait.is_zero() {
                return Err(timeout(last_problem));
            }
            let mut attempt = match connection.submit(sequence, encoded.clone(), !any_node) {
                Ok(attempt) => attempt,
                Err(reason) => {
                    last_problem = reason;
                    inner.router.trouble(&connection, &last_problem);
                    continue;
                }
            };
            let end = futures_lite::future::or(async { Some(attempt.end().await) }, async {
                runtime::sleep(wait).await;
                None
            })
            .await;
            drop(attempt);
            if inner.closed.get() {
                return Err(KvError::Closed);
            }
            let node = describe(&connection);
            let unavailable = matches!(
                end,
                Some(AttemptEnd::Outcome(ClientOutcome::Error(
                    ClientError::Unavailable { .. }
                )))
            );
            if !unavailable {
                unavailable_in_a_row = 0;
            }
            match end {
                None => {
                    last_problem = format!("{node} did not answer within {} ms", wait.as_millis());
                    connection.mark_unanswered();
                    inner.router.trouble(&connection, &last_problem);
                }
                Some(AttemptEnd::Lost(reason)) => {
                    last_problem = reason;
                    inner.router.trouble(&connection, &last_problem);
                }
                Some(AttemptEnd::Unsendable(reason)) => return Err(KvError::Refused(reason)),
                Some(AttemptEnd::NotLeader {
                    leader_id,
                    leader_addr,
                }) => {
                    last_problem = not_leader_problem(&node, leader_id, leader_addr.as_deref());
                    inner.router.not_leader(
                        &connection,
                        leader_id,
                        leader_addr.as_deref(),
                        &last_problem,
                    );
                    redirects += 1;
                    if redirects > inner.router.node_count() {
                        pause(&mut redirect_backoff_ms, REDIRECT_BACKOFF_MS_MAX, deadline).await;
                    }
                }
                Some(AttemptEnd::Outcome(ClientOutcome::Ok(bytes))) => {
                    // Only the leader answers a request that needs it.
                    inner.router.answered(&connection, !any_node);
                    if !read_only {
                        inner.sequences.borrow_mut().write_answered(sequence);
                    }
                    return match CommandResult::decode(&bytes) {
                        Ok(CommandResult::Error(error)) => Err(KvError::Refused(error.to_string())),
                        Ok(result) => Ok(result),
                        Err(error) => Err(KvError::Protocol(format!(
                            "{node} answered sequence {sequence} with bytes that are not a result: {error}"
                        ))),
                    };
                }
                Some(AttemptEnd::Outcome(ClientOutcome::Error(error))) => match error {
                    ClientError::NotLeader { leader_id } => {
                        last_problem = not_leader_problem(&node, leader_id, None);
                        inner
                            .router
                            .not_leader(&connection, leader_id, None, &last_problem);
                        redirects += 1;
                        if redirects > inner.router.node_count() {
                            pause(&mut redirect_backoff_ms, REDIRECT_BACKOFF_MS_MAX, deadline)
                                .await;
                        }
                    }
                    ClientError::Unavailable { reason } => {
                        // Mostly a busy leader ("overloaded, retry") or one between terms: try
                        // it again after a pause. Twice in a row, go round the endpoints (it may
                        // be shutting down, or cut off); a leader that is just busy is named
                        // again by the others.
                        last_problem = format!("{node} is unavailable: {reason}");
                        unavailable_in_a_row += 1;
                        if unavailable_in_a_row % UNAVAILABLE_BEFORE_MOVING_ON == 0 {
                            inner.router.trouble(&connection, &last_problem);
                        }
                        pause(
                            &mut unavailable_backoff_ms,
                            UNAVAILABLE_BACKOFF_MS_MAX,
                            deadline,
                        )
                        .await;
                    }
                    refused => {
                        inner.router.answered(&connection, false);
                        return Err(KvError::Refused(refusal(&refused, inner.client_id)));
                    }
                },
            }
        }
    }

    /// Refuses locally a command whose request frame would exceed `frame_bytes_max`: the
    /// server would close the connection on it.
    fn check_fits_frame(&self, command: &[u8]) -> Result<(), KvError> {
        let frame_bytes_max = self.inner.frame_bytes_max;
        if command.len() + FRAME_CHECK_MARGIN_BYTES <= frame_bytes_max {
            return Ok(());
        }
        let alone = ClientRequestBatch {
            client_id: self.inner.client_id,
            answered_through: u64::MAX,
            read_consistency: self.inner.read_consistency,
            requests: vec![ClientRequest {
                sequence: u64::MAX,
                command: command.to_vec(),
            }],
        };
        match encode_frame(&alone, frame_bytes_max) {
            Ok(_) => Ok(()),
            Err(error) => Err(KvError::Refused(format!(
                "the command is {} bytes encoded and does not fit one request frame ({error}); \
                 nothing was sent: split it, or raise frame_bytes_max on the client and the servers",
                command.len()
            ))),
        }
    }

    /// Sets `key` to `value`.
    pub async fn put(&self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<(), KvError> {
        let command = Command::Put {
            key: key.into(),
            value: value.into(),
        };
        match self.execute(command).await? {
            CommandResult::Written => Ok(()),
            other => Err(unexpected("Put", "Written", &other)),
        }
    }

    /// The value of `key`.
    pub async fn get(&self, key: impl Into<Bytes>) -> Result<Option<Bytes>, KvError> {
        match self.execute(Command::Get { key: key.into() }).await? {
            CommandResult::Value(value) => Ok(value),
            other => Err(unexpected("Get", "Value", &other)),
        }
    }

    /// Removes `key`; true when it existed.
    pub async fn delete(&self, key: impl Into<Bytes>) -> Result<bool, KvError> {
        match self.execute(Command::Delete { key: key.into() }).await? {
            CommandResult::Deleted { existed } => Ok(existed),
            other => Err(unexpected("Delete", "Deleted", &other)),
        }
    }

    /// Sets `key` to `new_value` if its value is `expected` (`None`: if absent).
    pub async fn compare_and_swap(
        &self,
        key: impl Into<Bytes>,
        expected: Option<Bytes>,
        new_value: impl Into<Bytes>,
    ) -> Result<Compared, KvError> {
        let command = Command::CompareAndSwap {
            key: key.into(),
            expected,
            new_value: new_value.into(),
        };
        match self.execute(command).await? {
            CommandResult::Compared { succeeded, current } => Ok(Compared { succeeded, current }),
            other => Err(unexpected("CompareAndSwap", "Compared", &other)),
        }
    }

    /// Removes `key` if its value is `expected`.
    pub async fn compare_and_delete(
        &self,
        key: impl Into<Bytes>,
        expected: impl Into<Bytes>,
    ) -> Result<Compared, KvError> {
        let command = Command::CompareAndDelete {
            key: key.into(),
            expected: expected.into(),
        };
        match self.execute(command).await? {
            CommandResult::Compared { succeeded, current } => Ok(Compared { succeeded, current }),
            other => Err(unexpected("CompareAndDelete", "Compared", &other)),
        }
    }

    /// Pairs with keys in `start..end` (`None`: unbounded), at most `limit`; the bool is true
    /// when more pairs exist beyond the limit.
    pub async fn range(
        &self,
        start: impl Into<Bytes>,
        end: Option<Bytes>,
        limit: u32,
    ) -> Result<(Vec<(Bytes, Bytes)>, bool), KvError> {
        let command = Command::Range {
            start: start.into(),
            end,
            limit,
        };
        match self.execute(command).await? {
            CommandResult::Range { pairs, more } => Ok((pairs, more)),
            other => Err(unexpected("Range", "Range", &other)),
        }
    }

    /// Pairs whose key starts with `prefix`, at most `limit`.
    pub async fn scan_prefix(
        &self,
        prefix: impl Into<Bytes>,
        limit: u32,
    ) -> Result<(Vec<(Bytes, Bytes)>, bool), KvError> {
        let prefix = prefix.into();
        let end = tern_kv::prefix_end(&prefix);
        self.range(prefix, end, limit).await
    }

    /// The leader as this client last learned it.
    pub fn leader(&self) -> Option<NodeId> {
        self.inner.router.leader_id()
    }

    /// Request batch frames this client has written on its open connections (a diagnostic:
    /// how well concurrent calls coalesce).
    pub fn frames_sent(&self) -> u64 {
        self.inner.router.frames_sent()
    }

    /// Closes every connection; pending calls fail with [`KvError::Closed`].
    pub fn close(&self) {
        let inner = &self.inner;
        if inner.closed.replace(true) {
            return;
        }
        inner.slots.close();
        inner.router.close();
    }
}

impl Drop for KvClient {
    fn drop(&mut self) {
        // The connection tasks hold the connections; without this they would stay open.
        self.close();
    }
}

/// Sleeps `backoff_ms` (not past `deadline`) and doubles it up to `backoff_ms_max`.
async fn pause(backoff_ms: &mut u64, backoff_ms_max: u64, deadline: Instant) {
    let pause =
        Duration::from_millis(*backoff_ms).min(deadline.saturating_duration_since(Instant::now()));
    *backoff_ms = (*backoff_ms * 2).min(backoff_ms_max);
    runtime::sleep(pause).await;
}

fn describe(connection: &Connection) -> String {
    format!("node {} ({})", connection.node, connection.addr)
}

fn not_leader_problem(node: &str, leader_id: Option<NodeId>, leader_addr: Option<&str>) -> String {
    match (leader_id, leader_addr) {
        (Some(id), Some(addr)) => {
            format!("{node} is not the leader (it names node {id} at {addr})")
        }
        (Some(id), None) => format!("{node} is not the leader (it names node {id})"),
        (None, Some(addr)) => format!("{node} is not the leader (it names {addr})"),
        (None, None) => format!("{node} is not the leader and knows none (election under way?)"),
    }
}

/// The text of a refusal: what was wrong and what to do.
fn refusal(error: &ClientError, client_id: u64) -> String {
    match error {
        ClientError::InvalidCommand { reason } => {
            // The reason says what was wrong (an empty key, a range limit of 0, bytes that do not
            // decode): the server checked the command and refused it before anything changed.
            format!("the server refused the command: {reason}; nothing was applied")
        }
        ClientError::TooLarge {
            command_bytes,
            command_bytes_max,
        } => format!(
            "the command is {command_bytes} bytes, above the server's limit of {command_bytes_max} bytes; nothing was applied"
        ),
        ClientError::SessionExpired => format!(
            "the server no longer knows client session {client_id:#x} (expired or evicted); nothing was applied: connect a new client"
        ),
        ClientError::Unavailable { reason } => format!("the cluster is unavailable: {reason}"),
        ClientError::NotLeader { leader_id } => {
            not_leader_problem("the node", *leader_id, None)
        }
    }
}

fn unexpected(command: &str, expected: &str, found: &CommandResult) -> KvError {
    KvError::Protocol(format!(
        "a {command} was answered with {found:?}, expected a {expected} result"
    ))
}

/// Asks the node at `endpoint` for its status (one connection, one request), within `timeout`.
/// A node that cannot be reached is [`KvError::Timeout`] with the reason in `last_problem`; a
/// TLS refusal either way is [`KvError::Security`].
pub async fn node_status(
    endpoint: SocketAddr,
    security: &Security,
    timeout: Duration,
) -> Result<NodeStatus, KvError> {
    let started = Instant::now();
    let limits = Limits::default();
    let ask = async {
        let (mut client, node) = Client::connect_any(security, endpoint, &limits)
            .await
            .map_err(|error| format!("connecting to {endpoint}: {error}"))?;
        let request_id = fastrand::u64(1..);
        let exchange = async {
            client.send(&StatusRequest { request_id }).await?;
            loop {
                // Anything else on this fresh session is not ours to answer; skip it.
                if let ClientReply::Status(status) = client.receive().await? {
                    if status.request_id == request_id {
                        return Ok(status);
                    }
                }
            }
        };
        let result: Result<NodeStatus, crate::transport::TransportError> = exchange.await;
        client.close();
        result.map_err(|error| format!("node {node} ({endpoint}): {error}"))
    };
    let expired = async {
        runtime::sleep(timeout).await;
        Err(format!(
            "{endpoint} did not answer a status request within {} ms",
            timeout.as_millis()
        ))
    };
    futures_lite::future::or(ask, expired)
        .await
        .map_err(
            |last_problem| match security_problem(security, &last_problem) {
                Some(advice) => KvError::Security(advice),
                None => KvError::Timeout {
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    last_problem,
                },
            },
        )
}

/// Sends one admin request to the node at `endpoint` and waits up to `timeout` for its answer
/// (a refused operation is an answer, with `error` set; the caller follows `leader_id`).
pub async fn admin_request(
    endpoint: SocketAddr,
    security: &Security,
    op: crate::message::AdminOp,
    timeout: Duration,
) -> Result<crate::message::AdminResponse, KvError> {
    let started = Instant::now();
    let limits = Limits::default();
    let ask = async {
        let (mut client, node) = Client::connect_any(security, endpoint, &limits)
            .await
            .map_err(|error| format!("connecting to {endpoint}: {error}"))?;
        let request_id = fastrand::u64(1..);
        let request = crate::message::AdminRequest { request_id, op };
        let exchange = async {
            client.send(&request).await?;
            loop {
                if let ClientReply::Admin(response) = client.receive().await? {
                    if response.request_id == request_id {
                        return Ok(response);
                    }
                }
            }
        };
        let result: Result<crate::message::AdminResponse, crate::transport::TransportError> =
            exchange.await;
        client.close();
        result.map_err(|error| format!("node {node} ({endpoint}): {error}"))
    };
    let expired = async {
        runtime::sleep(timeout).await;
        Err(format!(
            "{endpoint} did not answer an admin request within {} ms",
            timeout.as_millis()
        ))
    };
    futures_lite::future::or(ask, expired)
        .await
        .map_err(
            |last_problem| match security_problem(security, &last_problem) {
                Some(advice) => KvError::Security(advice),
                None => KvError::Timeout {
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    last_problem,
                },
            },
        )
}
