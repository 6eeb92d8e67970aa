//! The node: drives the Raft core, the WAL and the state machine on glommio executors, and
//! serves clients. See ARCHITECTURE.md ("The node") for the executors and the write path.

//!
//! | file | concept |
//! |---|---|
//! | `config.rs` | the settings and their cross-checks |
//! | `raft_loop.rs` | the Raft executor: core, WAL, state machine, peer links, the Ready loop |
//! | `loop_watch.rs` | WARNs when the Raft loop runs late or a turn takes long (stalls) |
//! | `client_loop.rs` | a client executor: sessions, checks, proposal batching, answers |
//! | `channels.rs` | what the executors send each other, wake-ups, the node-wide stop |
//! | `reads.rs` | which path a read takes (local, ReadIndex, lease) |
//! | `status.rs` | the status the Raft executor publishes for clients and `tern status` |
//! | `convert.rs` | core <-> wire messages, core <-> WAL entries |
//! | `membership_codec.rs` | a membership as bytes (WAL entries, snapshot files) |
//! | `signals.rs` | SIGINT/SIGTERM -> graceful shutdown |

//!
//! # Decisions (why, not what)
//!
//! - Two executors: the Raft executor owns the core, the WAL (`<data_dir>/wal`), the state
//!   machine and the peer endpoint, so propose -> append -> sync -> commit -> apply crosses no
//!   lock; one client executor owns the client endpoint. `client_executors` must be 1 for now:
//!   a second executor would need its own port or SO_REUSEPORT with connection affinity.
//! - WAL writes are issued without awaiting them (group commit); a persist task awaits each
//!   Ready's writes in order, then reports `on_persisted` and sends what waited for them.
//! - The hard state is written only when the term or vote changes: a commit-only change would
//!   cost a hard-state fsync per commit advance, and the commit index is a hint.
//! - Recovery reconciles the hard state with the entries, since the WAL syncs a group's entries
//!   and its hard state concurrently (see `raft_loop::reconcile`).
//! - A follower answers writes and leader reads with `NotLeader` (per request, plus one
//!   `NotLeader` frame for the batch naming the leader's client address when known); it does
//!   not forward them. Serializable reads are answered by any node from its applied map.
//! - Proposals are tracked by log index and term; when the apply passes an index whose entry
//!   has another term, the write was lost with a leader change and is answered "unavailable,
//!   retry" (the client's retry with the same sequence is exactly-once).
//! - Queues that would otherwise block an executor refuse instead: a full proposal channel is
//!   answered "overloaded, retry", a full result channel or client session drops the answer
//!   (the client retries), a full peer queue drops the Raft message (Raft retransmits).

mod address_book;
mod admin;
mod channels;
mod client_loop;
pub mod config;
mod convert;
mod loop_watch;
mod membership_codec;
mod raft_loop;
mod reads;
mod signals;
mod snapshot_store;
mod snapshots;
mod status;

pub use config::{NodeConfig, ReadMode, TlsMode};
pub use signals::install_signal_handlers;
/// Add this directive to the log filter (`RUST_LOG` / `EnvFilter`) to hide glommio's harmless
/// "probing iopoll support ... Bad file descriptor" ERROR line on virtio disks (wal/README.md).
pub use tern_wal::GLOMMIO_IOPOLL_LOG_FILTER;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tern_net::tls::{Identity, Security};

use channels::{Stop, Wakeup};
use status::StatusBoard;

/// How often `run` checks for a shutdown request or a stopped executor.
const SUPERVISE_INTERVAL: Duration = Duration::from_millis(10);

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
    config.validate().map_err(NodeError::Config)?;
    std::fs::create_dir_all(&config.data_dir).map_err(|error| NodeError::Wal {
        dir: config.data_dir.display().to_string(),
        detail: format!("cannot create the data directory: {error}"),
    })?;
    let security = security(&config)?;
    let peer_addr = config
        .own_peer_addr()
        .ok_or_else(|| NodeError::Config("this node's id is not in peers".into()))?;
    let stop = Arc::new(Stop::default());
    let wakeup = Arc::new(Wakeup::default());
    let board = Arc::new(StatusBoard::new(
        initial_status(config.id),
        config.client_addr,
        peer_addr,
        config.peer_client_addrs.clone(),
    ));
    let state_machine =
        tern_kv::StateMachine::new(config.kv_limits.clone(), config.session_limits.clone());
    let reader = state_machine.reader();
    let executors = config.client_executors;
    let (started_sender, started) = std::sync::mpsc::sync_channel(executors + 1);
    let mut to_raft = Vec::new();
    let mut from_raft = Vec::new();
    let mut client_setups = Vec::new();
    for index in 0..executors {
        let (proposals, proposals_receiver) = flume::bounded(config.proposal_queue_batches_max);
        let (results_sender, results) = flume::bounded(channels::RESULT_QUEUE_BATCHES_MAX);
        to_raft.push(proposals_receiver);
        from_raft.push(results_sender);
        client_setups.push(client_loop::ClientSetup {
            index,
            config: config.clone(),
            security: security.clone(),
            to_raft: proposals,
            from_raft: results,
            raft_wakeup: wakeup.clone(),
            reader: reader.clone(),
            board: board.clone(),
            stop: stop.clone(),
            started: started_sender.clone(),
        });
    }
    let raft_setup = raft_loop::RaftSetup {
        config: config.clone(),
        security,
        state_machine,
        inputs: to_raft,
        outputs: from_raft,
        wakeup: wakeup.clone(),
        board,
        stop: stop.clone(),
        started: started_sender,
    };
    let cpus = std::thread::available_parallelism().map_or(1, |count| count.get());
    let spawn_error = |error: std::io::Error| NodeError::Executor(error.to_string());
    let raft_name = format!("tern-{}-raft", config.id);
    let raft_thread = if config.pin_cores {
        tern_net::runtime::run_executor_pinned(&raft_name, 0, move || raft_loop::run(raft_setup))
    } else {
        tern_net::runtime::run_executor(&raft_name, move || raft_loop::run(raft_setup))
    }
    .map_err(spawn_error)?;
    let mut threads = vec![("Raft executor".to_string(), raft_thread)];
    for setup in client_setups {
        let name = format!("tern-{}-client-{}", config.id, setup.index);
        let cpu = (1 + setup.index) % cpus;
        let spawned = if config.pin_cores {
            tern_net::runtime::run_executor_pinned(&name, cpu, move || client_loop::run(setup))
        } else {
            tern_net::runtime::run_executor(&name, move || client_loop::run(setup))
        };
        match spawned {
            Ok(thread) => threads.push((name, thread)),
            Err(error) => {
                stop.fail(spawn_error(error));
                break;
            }
        }
    }

    // Supervise: until shutdown is asked, an executor fails, or one ends unexpectedly.
    let mut reported = 0;
    loop {
        while let Ok(result) = started.try_recv() {
            reported += 1;
            match result {
                Err(error) => stop.fail(error),
                Ok(()) if reported == threads.len() => {
                    tracing::info!(node = config.id, "node started")
                }
                Ok(()) => {}
            }
        }
        if shutdown.is_triggered() || stop.is_requested() {
            break;
        }
        if let Some((name, _)) = threads.iter().find(|(_, thread)| thread.is_finished()) {
            stop.fail(NodeError::Executor(format!(
                "the {name} ended unexpectedly"
            )));
            break;
        }
        std::thread::sleep(SUPERVISE_INTERVAL);
    }
    tracing::info!(node = config.id, "node stopping");
    stop.request();
    wakeup.notify();
    // Client executors first (they answer what is pending), the Raft executor last (it closes
    // the WAL); the threads see the stop on their own.
    threads.rotate_left(1);
    for (name, thread) in threads {
        if thread.join().is_err() {
            stop.fail(NodeError::Executor(format!("the {name} panicked")));
        }
    }
    match stop.take_fatal() {
        Some(error) => Err(error),
        None => {
            tracing::info!(node = config.id, "node stopped");
            Ok(())
        }
    }
}

/// Longest a stopping executor waits for its closed endpoint's UDP port to be released.
const PORT_RELEASE_WAIT: Duration = Duration::from_secs(3);
const PORT_RELEASE_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Keeps the executor running until the closed endpoint on `addr` let go of its socket (quinn's
/// driver tasks end a little after `close`), so a node restarted in the same process can bind
/// the same address at once. Bounded by `PORT_RELEASE_WAIT`.
pub(crate) async fn wait_until_port_released(addr: std::net::SocketAddr) {
    let polls = PORT_RELEASE_WAIT.as_millis() / PORT_RELEASE_POLL_INTERVAL.as_millis();
    for _ in 0..polls {
        if std::net::UdpSocket::bind(addr).is_ok() {
            return;
        }
        tern_net::runtime::sleep(PORT_RELEASE_POLL_INTERVAL).await;
    }
    tracing::warn!(%addr, "the closed endpoint still holds its port");
}

/// The transport security for this node's endpoints.
fn security(config: &NodeConfig) -> Result<Security, NodeError> {
    match &config.tls {
        TlsMode::Directory(directory) => {
            tern_net::certs::load_credentials(directory, Identity::Node(config.id))
                .map(Security::MutualTls)
                .map_err(|error| {
                    NodeError::Transport(format!(
                        "loading this node's certificates from {}: {error} (create them with \
                         `tern certs`)",
                        directory.display()
                    ))
                })
        }
        TlsMode::Insecure => {
            // The node-level insecure warning: says where and what to do instead (tern-net adds
            // one generic line per process).
            tracing::warn!(
                node = config.id,
                "INSECURE MODE (--insecure): certificates are NOT checked. Peers and clients \
                 are NOT authenticated (traffic is encrypted with throwaway keys, which stops \
                 no one): anyone who can reach {} (peers) or \
                 {} (clients) can join the cluster and read or change every key. For loopback \
                 development only; otherwise create certificates with `tern certs` and pass \
                 --tls-dir",
                config
                    .own_peer_addr()
                    .map_or_else(|| "?".to_string(), |addr| addr.to_string()),
                config.client_addr
            );
            Ok(Security::Insecure)
        }
    }
}

/// What the status board says before the Raft executor publishes its first status.
fn initial_status(id: crate::raft::NodeId) -> crate::raft::Status {
    crate::raft::Status {
        id,
        role: crate::raft::Role::Follower,
        term: 0,
        voted_for: None,
        leader: None,
        first_index: 1,
        last_index: 0,
        commit_index: 0,
        applied_index: 0,
        persisted_index: 0,
    }
}
