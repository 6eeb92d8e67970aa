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
//! A `KvClient` lives on one glommio executor (it is not `Send`), like the transport.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tern_kv::{Command, CommandResult};

use crate::message::{NodeId, NodeStatus, ReadConsistency};
use crate::tls::Security;
use crate::transport::Limits;

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
    /// leader as then known.
    pub attempt_timeout: Duration,
    /// The whole operation's deadline, retries included; then [`KvError::Timeout`].
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

/// A connection to a tern cluster. See the module documentation.
pub struct KvClient {
    // Private state chosen by the implementation.
    _private: (),
}

impl KvClient {
    /// Connects to the first reachable endpoint (and learns node ids as it goes).
    pub async fn connect(config: KvClientConfig) -> Result<KvClient, KvError> {
        let _ = config;
        todo!("client helper")
    }

    /// Runs any command and returns its result (writes exactly once; reads per
    /// `read_consistency`).
    pub async fn execute(&self, command: Command) -> Result<CommandResult, KvError> {
        let _ = command;
        todo!("client helper")
    }

    /// Sets `key` to `value`.
    pub async fn put(&self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<(), KvError> {
        let _ = (key.into(), value.into());
        todo!("client helper")
    }

    /// The value of `key`.
    pub async fn get(&self, key: impl Into<Bytes>) -> Result<Option<Bytes>, KvError> {
        let _ = key.into();
        todo!("client helper")
    }

    /// Removes `key`; true when it existed.
    pub async fn delete(&self, key: impl Into<Bytes>) -> Result<bool, KvError> {
        let _ = key.into();
        todo!("client helper")
    }

    /// Sets `key` to `new_value` if its value is `expected` (`None`: if absent).
    pub async fn compare_and_swap(
        &self,
        key: impl Into<Bytes>,
        expected: Option<Bytes>,
        new_value: impl Into<Bytes>,
    ) -> Result<Compared, KvError> {
        let _ = (key.into(), expected, new_value.into());
        todo!("client helper")
    }

    /// Removes `key` if its value is `expected`.
    pub async fn compare_and_delete(
        &self,
        key: impl Into<Bytes>,
        expected: impl Into<Bytes>,
    ) -> Result<Compared, KvError> {
        let _ = (key.into(), expected.into());
        todo!("client helper")
    }

    /// Pairs with keys in `start..end` (`None`: unbounded), at most `limit`; the bool is true
    /// when more pairs exist beyond the limit.
    pub async fn range(
        &self,
        start: impl Into<Bytes>,
        end: Option<Bytes>,
        limit: u32,
    ) -> Result<(Vec<(Bytes, Bytes)>, bool), KvError> {
        let _ = (start.into(), end, limit);
        todo!("client helper")
    }

    /// Pairs whose key starts with `prefix`, at most `limit`.
    pub async fn scan_prefix(
        &self,
        prefix: impl Into<Bytes>,
        limit: u32,
    ) -> Result<(Vec<(Bytes, Bytes)>, bool), KvError> {
        let _ = (prefix.into(), limit);
        todo!("client helper")
    }

    /// The leader as this client last learned it.
    pub fn leader(&self) -> Option<NodeId> {
        todo!("client helper")
    }

    /// Closes every connection; pending calls fail with [`KvError::Closed`].
    pub fn close(&self) {
        todo!("client helper")
    }
}

/// Asks the node at `endpoint` for its status (one connection, one request), within `timeout`.
pub async fn node_status(
    endpoint: SocketAddr,
    security: &Security,
    timeout: Duration,
) -> Result<NodeStatus, KvError> {
    let _ = (endpoint, security, timeout);
    todo!("client helper")
}
