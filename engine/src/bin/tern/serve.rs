//! `tern serve`: runs one cluster member until SIGINT/SIGTERM.
//!
//! Settings come from three layers, later ones winning: `NodeConfig::new`'s defaults, the
//! `--config` TOML file, the command line. Every problem is reported as one line naming the
//! flag, with exit code 2, before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use tern_engine::node::{NodeConfig, NodeError, ReadMode, Shutdown, TlsMode};
use tern_net::tls::Identity;
use tern_net::NodeId;

use crate::addresses::{members_from_table, parse_address, parse_members};
use crate::config_file::{ConfigFile, FileLogLevel, FileReadMode, MemberList};
use crate::{fail, EXIT_NEGATIVE, EXIT_USAGE};

/// Run one member of a tern cluster (until SIGINT or SIGTERM).
///
/// Every member gets the same --peers list (all members, itself included) and its own --id,
/// --client-addr and --data-dir. Every flag can also be set in a TOML file given with --config:
/// the key is the flag's name with underscores (election_timeout_ms_min = 150, peers =
/// "1=HOST:PORT,..." or a [peers] table, tls_dir = "certs", insecure = true); a flag on the
/// command line overrides the file, and an unknown key is an error. Relative paths are relative
/// to the working directory.
///
/// Exactly one of --tls-dir (mutual TLS with certificates from `tern certs`) and --insecure
/// (no authentication, loopback experiments only) is required.
///
/// Exit status: 0 after a graceful shutdown (SIGINT/SIGTERM), 1 on a fatal node error
/// (printed), 2 on a bad flag or config file.
///
/// Examples:
///
///   # certificates for a 3-node cluster (once; copy the directory to every machine)
///   tern certs --dir certs --node 1,2,3
///
///   # node 1 of 3 on one machine (repeat with --id 2 / 3 and their own addresses)
///   tern serve --id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
///     --client-addr 127.0.0.1:7101 --data-dir data/1 --tls-dir certs
///
///   # the same from a file, overriding one setting on the command line
///   tern serve --config node1.toml --election-timeout-ms-min 300 --election-timeout-ms-max 600
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ServeArgs {
    /// This node's id (a whole number, at least 1).
    ///
    /// Must be one of the ids in --peers and unique in the cluster. Required (here or as `id`
    /// in the config file).
    #[arg(long, value_name = "N")]
    id: Option<NodeId>,

    /// Every member's peer (Raft) address: ID=HOST:PORT,... this node included.
    ///
    /// Identical on every member. This node listens on its own entry (UDP, QUIC). HOST may be
    /// an IP address or a name (resolved once at start). Required (here or as `peers` in the
    /// config file, as a string or a table).
    #[arg(long, value_name = "ID=HOST:PORT,...")]
    peers: Option<String>,

    /// Where this node serves clients (HOST:PORT, UDP, QUIC).
    ///
    /// The address clients put in their --endpoints. Required.
    #[arg(long, value_name = "HOST:PORT")]
    client_addr: Option<String>,

    /// Directory of this node's write-ahead log (created if missing).
    ///
    /// One directory per node; it holds everything the node must not forget. Required.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// A TOML file with settings (keys are the flag names with underscores).
    ///
    /// Flags given on the command line override the file's values.
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,

    /// Directory with certificates from `tern certs` (ca.pem, node-<id>.pem, node-<id>.key).
    ///
    /// Turns on mutual TLS: peers and clients must present certificates signed by that CA.
    /// Exactly one of --tls-dir and --insecure is required.
    #[arg(long, value_name = "DIR", conflicts_with = "insecure")]
    tls_dir: Option<PathBuf>,

    /// No authentication: for loopback experiments only.
    ///
    /// Traffic is still encrypted, but nobody's certificate is checked: anyone who can reach
    /// the ports can join as a peer or act as a client. Never use it across machines; use
    /// --tls-dir instead.
    #[arg(long)]
    insecure: bool,

    /// Other members' client addresses: ID=HOST:PORT,...
    ///
    /// Lets a follower tell a client where the leader is (by address). Optional: without it,
    /// clients find the leader by id among their own --endpoints.
    #[arg(long, value_name = "ID=HOST:PORT,...")]
    peer_client_addrs: Option<String>,

    /// Shortest election timeout, in milliseconds.
    ///
    /// A follower that hears no leader for a random time in [min, max) starts an election.
    /// Raise both bounds on slow or distant networks (they must be well above the round trip
    /// and the disk's sync time); lowering them speeds failover but risks needless elections.
    #[arg(long, value_name = "MS")]
    election_timeout_ms_min: Option<u64>,

    /// Longest election timeout, in milliseconds (exclusive).
    ///
    /// Must be above --election-timeout-ms-min; the gap spreads candidates out so split votes
    /// are rare.
    #[arg(long, value_name = "MS")]
    election_timeout_ms_max: Option<u64>,

    /// How often the leader sends heartbeats, in milliseconds.
    ///
    /// Must be well below --election-timeout-ms-min (a few heartbeats per timeout), or
    /// followers start elections against a healthy leader.
    #[arg(long, value_name = "MS")]
    heartbeat_interval_ms: Option<u64>,

    /// How reads are served when the client does not choose.
    ///
    /// linearizable: a quorum round (ReadIndex) per batch of reads, always correct. lease: no
    /// round while the leader's lease holds; correct only if clocks drift less than
    /// --clock-drift-margin-ms per election timeout. serializable: any node answers from its
    /// own state, possibly stale.
    #[arg(long, value_enum, value_name = "MODE")]
    read_mode: Option<ReadModeArg>,

    /// Assumed clock drift per election timeout, in milliseconds (lease reads only).
    ///
    /// The lease lasts --election-timeout-ms-min minus this margin. Raise it on machines whose
    /// clocks may jump or drift.
    #[arg(long, value_name = "MS")]
    clock_drift_margin_ms: Option<u64>,

    /// Most client commands in one proposal batch (commands).
    ///
    /// A client executor hands commands to the Raft executor in batches of at most this many.
    /// Larger batches raise throughput under heavy load; lower it to bound the work per step.
    #[arg(long, value_name = "N")]
    proposal_batch_commands_max: Option<usize>,

    /// Most command bytes in one proposal batch (bytes).
    ///
    /// The byte bound next to --proposal-batch-commands-max; whichever is reached first closes
    /// the batch.
    #[arg(long, value_name = "BYTES")]
    proposal_batch_bytes_max: Option<usize>,

    /// Most proposal batches queued per client executor (batches).
    ///
    /// Beyond it, client executors wait (backpressure) instead of piling work in memory.
    #[arg(long, value_name = "N")]
    proposal_queue_batches_max: Option<usize>,

    /// Most log entries in one AppendEntries message (entries).
    ///
    /// Larger messages catch up slow followers faster; smaller ones keep latency even.
    #[arg(long, value_name = "N")]
    append_entries_max: Option<usize>,

    /// Most entry payload bytes in one AppendEntries message (bytes).
    #[arg(long, value_name = "BYTES")]
    append_bytes_max: Option<usize>,

    /// Most AppendEntries messages in flight to one follower (messages).
    ///
    /// Pipelining depth of replication; raise it on links with a long round trip.
    #[arg(long, value_name = "N")]
    inflight_messages_max: Option<usize>,

    /// Most log entries beyond the commit index before new writes wait (entries).
    ///
    /// Backpressure when followers or the disk fall behind; it bounds memory and the work a
    /// new leader must redo.
    #[arg(long, value_name = "N")]
    uncommitted_entries_max: Option<u64>,

    /// Most reads waiting at the leader for their ReadIndex round (reads).
    ///
    /// Reads beyond it are refused as busy and retried by the client.
    #[arg(long, value_name = "N")]
    pending_reads_max: Option<usize>,

    /// Size of one write-ahead log segment file (bytes, a multiple of 4096).
    ///
    /// Segments are preallocated; larger ones mean fewer files and rarer preallocation,
    /// smaller ones free disk sooner after compaction.
    #[arg(long, value_name = "BYTES")]
    wal_segment_bytes: Option<usize>,

    /// Applied entries between two snapshots of the state (entries; 0 = never snapshot).
    ///
    /// After each snapshot (written to <data-dir>/snapshots, synced, the newest two kept) the
    /// write-ahead log drops its segments through it and restart replays only what follows.
    /// Lower means less disk and faster restarts, higher means fewer snapshot writes.
    #[arg(long, value_name = "ENTRIES")]
    snapshot_entries: Option<u64>,

    /// Executor threads that hold client connections (threads, at least 1).
    ///
    /// One more thread runs Raft and the WAL. Raise it on machines with more cores than
    /// nodes; keep 1 when several nodes share a small machine.
    #[arg(long, value_name = "N")]
    client_executors: Option<usize>,

    /// Join a running cluster: start outside the membership and wait for the leader to add
    /// this node.
    ///
    /// First run `tern member add ID=PEER_ADDR --client-addr ..` against the cluster;
    /// give --peers with every current member and this node. The node receives the log (or
    /// a snapshot) as a learner; `tern member promote <id>` makes it a voter. Only needed on
    /// the first start: a restarted member finds its membership in its data directory.
    #[arg(long)]
    join: bool,

    /// Pin executor threads to CPU cores (--pin-cores or --pin-cores=false).
    ///
    /// Helps when the node has the machine to itself; hurts when several nodes share it, so it
    /// is off by default.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pin_cores: Option<bool>,

    /// Longest key (bytes). Identical on every member.
    #[arg(long, value_name = "BYTES")]
    key_bytes_max: Option<usize>,

    /// Longest value (bytes). Identical on every member.
    #[arg(long, value_name = "BYTES")]
    value_bytes_max: Option<usize>,

    /// Most commands in one client batch (commands). Identical on every member.
    #[arg(long, value_name = "N")]
    batch_commands_max: Option<usize>,

    /// Largest encoded command, a batch counting as one (bytes). Identical on every member.
    #[arg(long, value_name = "BYTES")]
    command_bytes_max: Option<usize>,

    /// Largest limit a range read may ask for (pairs). Identical on every member.
    #[arg(long, value_name = "N")]
    range_limit_max: Option<u32>,

    /// Most client sessions remembered for exactly-once retries (sessions).
    ///
    /// Beyond it, the session idle longest is forgotten; raise it when more clients than this
    /// write concurrently. Identical on every member.
    #[arg(long, value_name = "N")]
    sessions_max: Option<usize>,

    /// Most results one session keeps for retries (results).
    ///
    /// Must exceed every client's pipelining window. Identical on every member.
    #[arg(long, value_name = "N")]
    results_per_session_max: Option<usize>,

    /// Log verbosity on stderr.
    ///
    /// Without it (and without log_level in the file), RUST_LOG applies if set (e.g.
    /// RUST_LOG=tern_engine=debug), else info.
    #[arg(long, value_enum, value_name = "LEVEL")]
    log_level: Option<LogLevel>,
}

/// `--read-mode` of `tern serve`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReadModeArg {
    /// A quorum round (ReadIndex) confirms leadership before answering.
    Linearizable,
    /// No round while the leader lease holds (needs bounded clock drift).
    Lease,
    /// Any node answers from its applied state; may be stale.
    Serializable,
}

/// `--log-level`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn directive(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl From<FileLogLevel> for LogLevel {
    fn from(level: FileLogLevel) -> LogLevel {
        match level {
            FileLogLevel::Error => LogLevel::Error,
            FileLogLevel::Warn => LogLevel::Warn,
            FileLogLevel::Info => LogLevel::Info,
            FileLogLevel::Debug => LogLevel::Debug,
            FileLogLevel::Trace => LogLevel::Trace,
        }
    }
}

fn read_mode(arg: ReadModeArg) -> ReadMode {
    match arg {
        ReadModeArg::Linearizable => ReadMode::Linearizable,
        ReadModeArg::Lease => ReadMode::Lease,
        ReadModeArg::Serializable => ReadMode::Serializable,
    }
}

fn file_read_mode(mode: FileReadMode) -> ReadMode {
    match mode {
        FileReadMode::Linearizable => ReadMode::Linearizable,
        FileReadMode::Lease => ReadMode::Lease,
        FileReadMode::Serializable => ReadMode::Serializable,
    }
}

/// The settings that map one to one onto a `NodeConfig` field: (flag id, the default shown in
/// `--help`). Used for help and to name flags in validation errors.
fn defaults() -> Vec<(&'static str, String)> {
    let d = NodeConfig::new(
        1,
        Vec::new(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        PathBuf::new(),
        TlsMode::Insecure,
    );
    let read_mode = match d.read_mode {
        ReadMode::Linearizable => "linearizable",
        ReadMode::Lease => "lease",
        ReadMode::Serializable => "serializable",
    };
    vec![
        (
            "election_timeout_ms_min",
            d.election_timeout_ms_min.to_string(),
        ),
        (
            "election_timeout_ms_max",
            d.election_timeout_ms_max.to_string(),
        ),
        ("heartbeat_interval_ms", d.heartbeat_interval_ms.to_string()),
        ("read_mode", read_mode.to_string()),
        ("clock_drift_margin_ms", d.clock_drift_margin_ms.to_string()),
        (
            "proposal_batch_commands_max",
            d.proposal_batch_commands_max.to_string(),
        ),
        (
            "proposal_batch_bytes_max",
            d.proposal_batch_bytes_max.to_string(),
        ),
        (
            "proposal_queue_batches_max",
            d.proposal_queue_batches_max.to_string(),
        ),
        ("append_entries_max", d.append_entries_max.to_string()),
        ("append_bytes_max", d.append_bytes_max.to_string()),
        ("inflight_messages_max", d.inflight_messages_max.to_string()),
        (
            "uncommitted_entries_max",
            d.uncommitted_entries_max.to_string(),
        ),
        ("pending_reads_max", d.pending_reads_max.to_string()),
        ("wal_segment_bytes", d.wal_segment_bytes.to_string()),
        ("snapshot_entries", d.snapshot_entries.to_string()),
        ("client_executors", d.client_executors.to_string()),
        ("pin_cores", d.pin_cores.to_string()),
        ("key_bytes_max", d.kv_limits.key_bytes_max.to_string()),
        ("value_bytes_max", d.kv_limits.value_bytes_max.to_string()),
        (
            "batch_commands_max",
            d.kv_limits.batch_commands_max.to_string(),
        ),
        (
            "command_bytes_max",
            d.kv_limits.command_bytes_max.to_string(),
        ),
        ("range_limit_max", d.kv_limits.range_limit_max.to_string()),
        ("sessions_max", d.session_limits.sessions_max.to_string()),
        (
            "results_per_session_max",
            d.session_limits.results_per_session_max.to_string(),
        ),
    ]
}

/// Adds `[default: X]` (taken from `NodeConfig::new`) to the help of `serve`'s flags.
pub fn show_defaults(command: clap::Command) -> clap::Command {
    command.mut_subcommand("serve", |serve| {
        defaults().into_iter().fold(serve, |serve, (id, value)| {
            serve.mut_arg(id, |arg| {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                let long_help = arg.get_long_help().map(ToString::to_string);
                let arg = arg.help(format!("{help} [default: {value}]"));
                match long_help {
                    Some(long_help) => arg.long_help(format!("{long_help}\n\n[default: {value}]")),
                    None => arg,
                }
            })
        })
    })
}

/// Appends the flags named in a validation message (`election_timeout_ms_min` is
/// `--election-timeout-ms-min`), so the user knows what to change.
fn name_flags(message: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut flags: Vec<String> = Vec::new();
    let names = defaults().into_iter().map(|(name, _)| name).chain([
        "id",
        "peers",
        "client_addr",
        "peer_client_addrs",
        "data_dir",
        "tls_dir",
    ]);
    for name in names {
        let found = message.match_indices(name).any(|(start, _)| {
            let before = message[..start].chars().next_back();
            let after = message[start + name.len()..].chars().next();
            !before.is_some_and(is_word) && !after.is_some_and(is_word)
        });
        if found {
            flags.push(format!("--{}", name.replace('_', "-")));
        }
    }
    if flags.is_empty() {
        message.to_string()
    } else {
        format!("{message} (flags: {})", flags.join(", "))
    }
}

/// The node's settings and the log level, or a one-line error naming the flag.
pub fn build(args: &ServeArgs) -> Result<(NodeConfig, Option<LogLevel>), String> {
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let id = args
        .id
        .or(file.id)
        .ok_or("missing --id N: this node's id, one of the ids in --peers")?;
    if id == 0 {
        return Err("--id 0: node ids start at 1".to_string());
    }
    let peers = match (&args.peers, &file.peers) {
        (Some(text), _) => parse_members("--peers", text)?,
        (None, Some(MemberList::Text(text))) => parse_members("--peers (peers in --config)", text)?,
        (None, Some(MemberList::Table(table))) => {
            members_from_table("--peers (peers in --config)", table)?
        }
        (None, None) => {
            return Err("missing --peers ID=HOST:PORT,...: every member's peer address, \
                        this node included (e.g. 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003)"
                .to_string())
        }
    };
    if !peers.iter().any(|(peer, _)| *peer == id) {
        let ids: Vec<String> = peers.iter().map(|(peer, _)| peer.to_string()).collect();
        return Err(format!(
            "--id {id} is not among the --peers ids ({}): list every member, this node included",
            ids.join(", ")
        ));
    }
    let client_addr = match args.client_addr.as_ref().or(file.client_addr.as_ref()) {
        Some(text) => parse_address(text).map_err(|problem| format!("--client-addr: {problem}"))?,
        None => {
            return Err(
                "missing --client-addr HOST:PORT: where this node serves clients".to_string(),
            )
        }
    };
    let data_dir = args
        .data_dir
        .clone()
        .or(file.data_dir.clone())
        .ok_or("missing --data-dir DIR: where this node keeps its write-ahead log")?;
    let tls = tls_mode(args, &file, id)?;

    let mut config = NodeConfig::new(id, peers, client_addr, data_dir, tls);
    config.peer_client_addrs = match (&args.peer_client_addrs, &file.peer_client_addrs) {
        (Some(text), _) => parse_members("--peer-client-addrs", text)?,
        (None, Some(MemberList::Text(text))) => {
            parse_members("--peer-client-addrs (peer_client_addrs in --config)", text)?
        }
        (None, Some(MemberList::Table(table))) => {
            members_from_table("--peer-client-addrs (peer_client_addrs in --config)", table)?
        }
        (None, None) => Vec::new(),
    };

    // The command line wins over the file; what neither sets keeps NodeConfig::new's default.
    macro_rules! set {
        ($($field:ident).+ = $name:ident) => {
            if let Some(value) = args.$name.or(file.$name) {
                config.$($field).+ = value;
            }
        };
    }
    set!(election_timeout_ms_min = election_timeout_ms_min);
    set!(election_timeout_ms_max = election_timeout_ms_max);
    set!(heartbeat_interval_ms = heartbeat_interval_ms);
    set!(clock_drift_margin_ms = clock_drift_margin_ms);
    set!(proposal_batch_commands_max = proposal_batch_commands_max);
    set!(proposal_batch_bytes_max = proposal_batch_bytes_max);
    set!(proposal_queue_batches_max = proposal_queue_batches_max);
    set!(append_entries_max = append_entries_max);
    set!(append_bytes_max = append_bytes_max);
    set!(inflight_messages_max = inflight_messages_max);
    set!(uncommitted_entries_max = uncommitted_entries_max);
    set!(pending_reads_max = pending_reads_max);
    set!(wal_segment_bytes = wal_segment_bytes);
    set!(snapshot_entries = snapshot_entries);
    set!(client_executors = client_executors);
    set!(pin_cores = pin_cores);
    config.join = args.join || file.join.unwrap_or(false);
    set!(kv_limits.key_bytes_max = key_bytes_max);
    set!(kv_limits.value_bytes_max = value_bytes_max);
    set!(kv_limits.batch_commands_max = batch_commands_max);
    set!(kv_limits.command_bytes_max = command_bytes_max);
    set!(kv_limits.range_limit_max = range_limit_max);
    set!(session_limits.sessions_max = sessions_max);
    set!(session_limits.results_per_session_max = results_per_session_max);
    if let Some(mode) = args.read_mode {
        config.read_mode = read_mode(mode);
    } else if let Some(mode) = file.read_mode {
        config.read_mode = file_read_mode(mode);
    }
    config.validate().map_err(|message| name_flags(&message))?;
    let log_level = args.log_level.or(file.log_level.map(LogLevel::from));
    Ok((config, log_level))
}

/// `--tls-dir` or `--insecure`, from the command line, else from the file; exactly one.
fn tls_mode(args: &ServeArgs, file: &ConfigFile, id: NodeId) -> Result<TlsMode, String> {
    let insecure_in_file = file.insecure.unwrap_or(false);
    let mode = if args.insecure {
        TlsMode::Insecure
    } else if let Some(dir) = &args.tls_dir {
        TlsMode::Directory(dir.clone())
    } else if file.tls_dir.is_some() && insecure_in_file {
        return Err(
            "--config sets both tls_dir and insecure = true: keep one (or override with \
             --tls-dir or --insecure)"
                .to_string(),
        );
    } else if let Some(dir) = &file.tls_dir {
        TlsMode::Directory(dir.clone())
    } else if insecure_in_file {
        TlsMode::Insecure
    } else {
        return Err(
            "choose how nodes authenticate: run `tern certs --dir certs --node 1,2,3` and pass \
             --tls-dir certs, or pass --insecure for loopback experiments"
                .to_string(),
        );
    };
    // Check the certificates now, so a missing file is a clear usage error instead of a
    // transport failure after start.
    if let TlsMode::Directory(dir) = &mode {
        tern_net::certs::load_credentials(dir, Identity::Node(id)).map_err(|error| {
            format!(
                "--tls-dir {}: {error} (make them with `tern certs --dir {} --node <every id>`)",
                dir.display(),
                dir.display()
            )
        })?;
    }
    Ok(mode)
}

/// Logs to stderr at `level`, else per RUST_LOG, else info.
fn init_logging(level: Option<LogLevel>) {
    use tracing_subscriber::EnvFilter;
    let mut filter = match level {
        Some(level) => EnvFilter::new(level.directive()),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    // glommio logs an ERROR when probing a device for polled I/O fails, which is normal on
    // virtual disks (the poll ring just stays off); it is the only message of that module.
    if !std::env::var("RUST_LOG").is_ok_and(|value| value.contains("glommio")) {
        if let Ok(directive) = "glommio::reactor=off".parse() {
            filter = filter.add_directive(directive);
        }
    }
    // A second initialisation (never in this binary) would only be refused: ignore it.
    // Colours only on a terminal: log files (e.g. the demo's) stay plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs `tern serve`.
pub fn run(args: ServeArgs) -> ExitCode {
    let (config, log_level) = match build(&args) {
        Ok(built) => built,
        Err(message) => return fail("serve", EXIT_USAGE, message),
    };
    init_logging(log_level);
    let shutdown = Shutdown::new();
    // Logging is up first: a handler that cannot be installed is reported through it.
    tern_engine::node::install_signal_handlers(&shutdown);
    let peer_addr = config
        .peers
        .iter()
        .find(|(peer, _)| *peer == config.id)
        .map(|(_, address)| address.to_string())
        .unwrap_or_default();
    let security = match &config.tls {
        TlsMode::Directory(dir) => format!("mutual TLS from {}", dir.display()),
        TlsMode::Insecure => "INSECURE (no authentication)".to_string(),
    };
    tracing::info!(
        "tern node {}: peers on {}, clients on {}, data in {}; {} members, {}",
        config.id,
        peer_addr,
        config.client_addr,
        config.data_dir.display(),
        config.peers.len(),
        security
    );
    let id = config.id;
    match tern_engine::node::run(config, shutdown) {
        Ok(()) => {
            tracing::info!("tern node {id}: shut down cleanly");
            ExitCode::SUCCESS
        }
        Err(NodeError::Config(message)) => fail("serve", EXIT_USAGE, name_flags(&message)),
        Err(error) => fail(
            "serve",
            EXIT_NEGATIVE,
            format!("node {id} stopped: {error}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_named_whole_words_only() {
        let named = name_flags("heartbeat_interval_ms must be below election_timeout_ms_min");
        assert!(named.ends_with("(flags: --election-timeout-ms-min, --heartbeat-interval-ms)"));
        // `batch_commands_max` inside `proposal_batch_commands_max` is not a second flag.
        let named = name_flags("proposal_batch_commands_max is 0");
        assert!(
            named.ends_with("(flags: --proposal-batch-commands-max)"),
            "{named}"
        );
        assert_eq!(name_flags("nothing known"), "nothing known");
    }
}

#[cfg(test)]
mod layering_tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::{Cli, Command};

    fn serve_args(arguments: &[&str]) -> ServeArgs {
        let mut full = vec!["tern", "serve"];
        full.extend_from_slice(arguments);
        match Cli::try_parse_from(full).expect("arguments parse").command {
            Command::Serve(args) => *args,
            _ => unreachable!("parsed a serve command line"),
        }
    }

    const REQUIRED: &[&str] = &[
        "--id",
        "1",
        "--peers",
        "1=127.0.0.1:7001",
        "--client-addr",
        "127.0.0.1:7101",
        "--data-dir",
        "d",
        "--insecure",
    ];

    #[test]
    fn command_line_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "election_timeout_ms_min = 300\nelection_timeout_ms_max = 600\nread_mode = \"lease\"\n\
             pin_cores = true\nvalue_bytes_max = 1000\n",
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let default = NodeConfig::new(
            1,
            Vec::new(),
            SocketAddr::from(([127, 0, 0, 1], 1)),
            PathBuf::new(),
            TlsMode::Insecure,
        );

        let (config, _) = build(&serve_args(REQUIRED)).unwrap();
        assert_eq!(
            config.election_timeout_ms_min,
            default.election_timeout_ms_min
        );
        assert_eq!(config.read_mode, default.read_mode);

        let mut arguments = REQUIRED.to_vec();
        arguments.extend_from_slice(&["--config", path]);
        let (config, _) = build(&serve_args(&arguments)).unwrap();
        assert_eq!(config.election_timeout_ms_min, 300);
        assert_eq!(config.read_mode, ReadMode::Lease);
        assert!(config.pin_cores);
        assert_eq!(config.kv_limits.value_bytes_max, 1000);

        arguments.extend_from_slice(&[
            "--election-timeout-ms-min",
            "400",
            "--read-mode",
            "serializable",
            "--pin-cores=false",
        ]);
        let (config, _) = build(&serve_args(&arguments)).unwrap();
        assert_eq!(config.election_timeout_ms_min, 400);
        assert_eq!(config.election_timeout_ms_max, 600);
        assert_eq!(config.read_mode, ReadMode::Serializable);
        assert!(!config.pin_cores);
    }

    #[test]
    fn every_flag_is_a_config_key_and_back() {
        let flags: Vec<String> = Cli::command()
            .find_subcommand("serve")
            .expect("serve exists")
            .get_arguments()
            .map(|arg| arg.get_id().to_string())
            .filter(|id| id != "config" && id != "help")
            .collect();
        // The parser lists every key it knows when it meets an unknown one.
        let error = crate::config_file::ConfigFile::parse("no_such_key = 1").unwrap_err();
        let keys: Vec<String> = error
            .split('`')
            .skip(3)
            .step_by(2)
            .map(ToString::to_string)
            .collect();
        let mut sorted_flags = flags.clone();
        sorted_flags.sort();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort();
        assert_eq!(sorted_flags, sorted_keys, "flags {flags:?}\nkeys {keys:?}");
    }
}
