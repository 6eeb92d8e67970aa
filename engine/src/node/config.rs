//! Everything a node needs to start, with defaults, and the check that refuses a bad
//! combination with a message saying what to change. The `tern serve` flags and the TOML file
//! map one to one onto these fields (flag `--election-timeout-ms-min` = key
//! `election_timeout_ms_min`).

use std::net::SocketAddr;
use std::path::PathBuf;

use tern_net::NodeId;

/// How reads are served when the client leaves it to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// Linearizable: the leader confirms with a quorum round (ReadIndex) before answering.
    Linearizable,
    /// Linearizable within the leader lease (no round while the lease holds; needs clocks
    /// that drift less than `clock_drift_margin_ms` per election timeout).
    Lease,
    /// Serializable: any node answers from its applied map; may be stale.
    Serializable,
}

/// How the node authenticates peers and clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Mutual TLS with certificates from `tern certs` in this directory (ca.pem,
    /// node-<id>.pem/.key).
    Directory(PathBuf),
    /// No authentication (loud warning at start). Loopback development only.
    Insecure,
}

/// A node's settings. Times in milliseconds (the core ticks once per millisecond).
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id (1 or more); must appear in `peers`.
    pub id: NodeId,
    /// Every member's peer address, this node's included (it listens on its own).
    pub peers: Vec<(NodeId, SocketAddr)>,
    /// Where this node serves clients.
    pub client_addr: SocketAddr,
    /// Other members' client addresses, so "not leader" answers can say where to go. Optional:
    /// without it the client library finds the leader by id among its endpoints.
    pub peer_client_addrs: Vec<(NodeId, SocketAddr)>,
    /// Where the WAL lives (created if missing).
    pub data_dir: PathBuf,
    pub tls: TlsMode,
    /// A follower that hears no leader for a random time in [min, max) starts an election.
    pub election_timeout_ms_min: u64,
    pub election_timeout_ms_max: u64,
    /// How often the leader sends heartbeats; well below `election_timeout_ms_min`.
    pub heartbeat_interval_ms: u64,
    /// Read mode for requests that do not choose one.
    pub read_mode: ReadMode,
    /// Assumed bound on clock drift per election timeout; the lease lasts
    /// `election_timeout_ms_min - clock_drift_margin_ms`.
    pub clock_drift_margin_ms: u64,
    /// Most commands in one proposal batch handed from a client executor to the Raft executor.
    pub proposal_batch_commands_max: usize,
    /// Most command bytes in one proposal batch.
    pub proposal_batch_bytes_max: usize,
    /// Most batches waiting in each client-executor-to-Raft channel (backpressure beyond it).
    pub proposal_queue_batches_max: usize,
    /// Most entries in one AppendEntries message.
    pub append_entries_max: usize,
    /// Most payload bytes in one AppendEntries message.
    pub append_bytes_max: usize,
    /// Most AppendEntries in flight to one follower.
    pub inflight_messages_max: usize,
    /// Most entries beyond the commit index before proposals are refused (backpressure).
    pub uncommitted_entries_max: u64,
    /// Most reads waiting at the leader.
    pub pending_reads_max: usize,
    /// WAL segment size in bytes (preallocated with zeros; a multiple of 4096).
    pub wal_segment_bytes: usize,
    /// Executors holding client connections (besides the Raft executor). At least 1.
    pub client_executors: usize,
    /// Pin executors to cores (off by default: several nodes often share a machine).
    pub pin_cores: bool,
    /// Key, value and batch size bounds (identical on every member).
    pub kv_limits: tern_kv::Limits,
    /// Session bounds (identical on every member).
    pub session_limits: tern_kv::SessionLimits,
}

impl NodeConfig {
    /// A config with every default filled in.
    pub fn new(
        id: NodeId,
        peers: Vec<(NodeId, SocketAddr)>,
        client_addr: SocketAddr,
        data_dir: PathBuf,
        tls: TlsMode,
    ) -> NodeConfig {
        NodeConfig {
            id,
            peers,
            client_addr,
            peer_client_addrs: Vec::new(),
            data_dir,
            tls,
            election_timeout_ms_min: 150,
            election_timeout_ms_max: 300,
            heartbeat_interval_ms: 30,
            read_mode: ReadMode::Linearizable,
            clock_drift_margin_ms: 15,
            proposal_batch_commands_max: 4096,
            proposal_batch_bytes_max: 4 << 20,
            proposal_queue_batches_max: 64,
            append_entries_max: 4096,
            append_bytes_max: 4 << 20,
            inflight_messages_max: 64,
            uncommitted_entries_max: 65_536,
            pending_reads_max: 65_536,
            wal_segment_bytes: 64 << 20,
            client_executors: 1,
            pin_cores: false,
            kv_limits: tern_kv::Limits::default(),
            session_limits: tern_kv::SessionLimits::default(),
        }
    }

    /// Checks the settings together; the error names the setting and what to do.
    pub fn validate(&self) -> Result<(), String> {
        todo!("node helper")
    }
}
