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
    /// Mutual TLS with certificates from `tern certs` in this directory (`ca.pem`,
    /// `node-<id>.pem`/`.key`).
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
    /// Applied entries between two snapshots of the state machine (0: never); each snapshot
    /// lets the WAL drop its segments through it.
    pub snapshot_entries: u64,
    /// Start outside the membership (no voters of its own), waiting for the cluster's leader
    /// to add this node (`tern member add`); for a node joining a running cluster.
    pub join: bool,
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
            // 16 MiB: each WAL open writes a segment and a spare of zeros, so 2 x 64 MiB per
            // node made starts slow on a shared disk; 16 MiB still holds the largest command
            // (kv_limits.command_bytes_max, 4 MiB by default) with room to spare.
            wal_segment_bytes: 16 << 20,
            // About a minute of heavy load between snapshots here; a snapshot of a few MiB of
            // state costs milliseconds to encode.
            snapshot_entries: 100_000,
            join: false,
            client_executors: 1,
            pin_cores: false,
            kv_limits: tern_kv::Limits::default(),
            session_limits: tern_kv::SessionLimits::default(),
        }
    }

    /// Checks the settings together; the error names the setting and what to do.
    pub fn validate(&self) -> Result<(), String> {
        if self.id == 0 {
            return Err("id must not be 0: node ids start at 1".into());
        }
        let mut ids: Vec<NodeId> = self.peers.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(format!(
                "peers lists a node id twice ({ids:?}): list each member once"
            ));
        }
        let Some(own_peer_addr) = self.own_peer_addr() else {
            return Err(format!(
                "id {} is not in peers ({ids:?}): list every member, this node included",
                self.id
            ));
        };
        if own_peer_addr == self.client_addr {
            return Err(format!(
                "client_addr {} is this node's peer address too: give clients their own port",
                self.client_addr
            ));
        }
        if self.client_executors != 1 {
            // One client endpoint per client address: a second executor would need its own
            // port or SO_REUSEPORT with connection affinity, which the transport does not do yet.
            return Err(format!(
                "client_executors is {}: this version serves clients from exactly 1 executor; \
                 set client_executors = 1",
                self.client_executors
            ));
        }
        let positive = [
            (
                "proposal_batch_commands_max",
                self.proposal_batch_commands_max,
            ),
            ("proposal_batch_bytes_max", self.proposal_batch_bytes_max),
            (
                "proposal_queue_batches_max",
                self.proposal_queue_batches_max,
            ),
            ("append_entries_max", self.append_entries_max),
            ("append_bytes_max", self.append_bytes_max),
            ("inflight_messages_max", self.inflight_messages_max),
            ("pending_reads_max", self.pending_reads_max),
            ("kv_limits.key_bytes_max", self.kv_limits.key_bytes_max),
            (
                "kv_limits.command_bytes_max",
                self.kv_limits.command_bytes_max,
            ),
            (
                "kv_limits.batch_commands_max",
                self.kv_limits.batch_commands_max,
            ),
            (
                "session_limits.sessions_max",
                self.session_limits.sessions_max,
            ),
            (
                "session_limits.results_per_session_max",
                self.session_limits.results_per_session_max,
            ),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(format!("{name} must be at least 1"));
        }
        if self.wal_segment_bytes % 4096 != 0
            || self.wal_segment_bytes < 8192
            || self.wal_segment_bytes > WAL_SEGMENT_BYTES_MAX
        {
            return Err(format!(
                "wal_segment_bytes is {}: use a multiple of 4096 from 8192 to \
                 {WAL_SEGMENT_BYTES_MAX}",
                self.wal_segment_bytes
            ));
        }
        // A log entry holds one command plus its proposal header (client id, sequence,
        // answered-through) and the WAL's record and segment headers.
        let entry_bytes_max = self.kv_limits.command_bytes_max + ENTRY_OVERHEAD_BYTES;
        if entry_bytes_max > self.wal_segment_bytes {
            return Err(format!(
                "wal_segment_bytes ({}) cannot hold the largest command (kv_limits.\
                 command_bytes_max {} plus {ENTRY_OVERHEAD_BYTES} bytes of headers): raise \
                 wal_segment_bytes or lower command_bytes_max",
                self.wal_segment_bytes, self.kv_limits.command_bytes_max
            ));
        }
        // One AppendEntries message carries up to append_bytes_max payload bytes plus one
        // entry that crossed the bound, with a per-entry overhead; it must fit in one frame.
        let append_frame_bytes = self.append_bytes_max
            + entry_bytes_max
            + self.append_entries_max * ARCHIVED_ENTRY_OVERHEAD_BYTES;
        if append_frame_bytes > tern_net::FRAME_BYTES_MAX_DEFAULT {
            return Err(format!(
                "append_bytes_max ({}) + command_bytes_max ({}) + append_entries_max ({}) x \
                 {ARCHIVED_ENTRY_OVERHEAD_BYTES} bytes exceeds the {} bytes of one frame: lower them",
                self.append_bytes_max,
                self.kv_limits.command_bytes_max,
                self.append_entries_max,
                tern_net::FRAME_BYTES_MAX_DEFAULT
            ));
        }
        self.raft_config().validate().map_err(|error| match error {
            crate::raft::ConfigError::Invalid(text) => text.replace("_ticks", "_ms"),
        })
    }

    /// This node's own peer address (where it listens for other members).
    pub(crate) fn own_peer_addr(&self) -> Option<SocketAddr> {
        self.peers
            .iter()
            .find(|(id, _)| *id == self.id)
            .map(|(_, addr)| *addr)
    }

    /// The other members and their peer addresses.
    pub(crate) fn other_peers(&self) -> Vec<(NodeId, SocketAddr)> {
        self.peers
            .iter()
            .filter(|(id, _)| *id != self.id)
            .copied()
            .collect()
    }

    /// The core's configuration: one tick is one millisecond. Pre-vote and check-quorum are
    /// always on, and lease reads too (clients may ask for them per request; the safety margin
    /// is `clock_drift_margin_ms`).
    pub(crate) fn raft_config(&self) -> crate::raft::Config {
        // A joining node knows no membership until the leader's log reaches it; a member that
        // already joined finds its membership in its snapshot or log (which wins over this).
        let mut voters: Vec<NodeId> = if self.join {
            Vec::new()
        } else {
            self.peers.iter().map(|(id, _)| *id).collect()
        };
        voters.sort_unstable();
        let mut config = crate::raft::Config::new(self.id, voters);
        config.election_timeout_ticks_min = self.election_timeout_ms_min;
        config.election_timeout_ticks_max = self.election_timeout_ms_max;
        config.heartbeat_interval_ticks = self.heartbeat_interval_ms;
        config.pre_vote = true;
        config.check_quorum = true;
        config.lease_reads = true;
        config.clock_drift_margin_ticks = self.clock_drift_margin_ms;
        config.append_entries_max = self.append_entries_max;
        config.append_bytes_max = self.append_bytes_max;
        config.inflight_messages_max = self.inflight_messages_max;
        config.uncommitted_entries_max = self.uncommitted_entries_max;
        config.pending_reads_max = self.pending_reads_max;
        config
    }
}

/// The largest segment the WAL accepts (it keeps record offsets as u32), rounded down to a
/// multiple of 4096; checked here so the error names the setting before the WAL opens.
const WAL_SEGMENT_BYTES_MAX: usize = (u32::MAX as usize) - 4095;

/// Bytes a log entry adds around its command: the proposal header (three u64 and a length),
/// the payload tag, the WAL record header (24), the segment header (32) and a commit marker,
/// rounded up generously.
const ENTRY_OVERHEAD_BYTES: usize = 4096;

/// Bytes one entry adds to an archived AppendEntries message besides its payload (index,
/// term, enum tag, vector header, alignment), rounded up.
const ARCHIVED_ENTRY_OVERHEAD_BYTES: usize = 64;
