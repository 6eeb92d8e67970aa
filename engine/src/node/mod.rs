//! The node: drives the Raft core, the WAL and the state machine on glommio executors, and
//! serves clients. See ARCHITECTURE.md ("The node") for the executors and the write path.

pub mod config;

pub use config::{NodeConfig, ReadMode, TlsMode};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Asks a running node to stop: it finishes in-flight WAL writes, answers or fails pending
/// requests with "unavailable", closes connections and returns from [`run`].
#[derive(Clone, Default)]
pub struct Shutdown {
    requested: Arc<AtomicBool>,
}

impl Shutdown {
    /// A fresh, untriggered handle.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Requests shutdown (idempotent; callable from any thread or a signal handler thread).
    pub fn trigger(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown was requested.
    pub fn is_triggered(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

/// Why a node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("WAL in {dir}: {detail}")]
    Wal { dir: String, detail: String },
    #[error("transport: {0}")]
    Transport(String),
    #[error("executor: {0}")]
    Executor(String),
}

/// Runs a node until `shutdown` is triggered (or a fatal error, e.g. the WAL's disk fails).
/// Blocks the calling thread; starts its own executor threads.
pub fn run(config: NodeConfig, shutdown: Shutdown) -> Result<(), NodeError> {
    let _ = (config, shutdown);
    todo!("node helper")
}
