//! The harness of the cluster tests: real `tern serve` processes on loopback.
//!
//! - Ports: free loopback UDP ports (QUIC is UDP), picked at random outside the kernel's
//!   ephemeral range (see [`free_ports`]), and reserved in a process-wide set so the tests of
//!   one binary (run in parallel) never share one.
//! - A temporary directory per cluster holds the certificates, each node's data directory and
//!   each node's log (stdout and stderr), and the output of every CLI run.
//! - Nodes are child processes. `Drop` kills every child still running (SIGKILL by PID through
//!   `Child::kill`), so nothing outlives a test, even one that panics; on a panic it also prints
//!   the tail of every node's log.
//! - Every wait has a hang guard that panics with what it last saw; nothing asserts on time.
//! - Async client code runs on a glommio executor of its own ([`block_on`]): a `KvClient` is not
//!   `Send`, and the cluster (with its children) stays on the test thread.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tern_net::certs::{load_credentials, write_cluster_certificates};
use tern_net::kv_client::{node_status, KvClient, KvClientConfig, KvError};
use tern_net::message::NodeStatus;
use tern_net::tls::{Identity, Security};

/// Hang guard: how long the nodes get to agree on one leader. Every guard here is far above
/// what a healthy run needs: on a shared machine whose disk is saturated by other work, one
/// fdatasync was seen to take over ten seconds, and votes and entries wait for it.
pub const LEADER_WAIT_MAX: Duration = Duration::from_secs(60);
/// Hang guard: how long a node gets to exit after SIGTERM (or SIGKILL).
pub const EXIT_WAIT_MAX: Duration = Duration::from_secs(60);
/// Hang guard: how long one CLI command may run (its own `--timeout-ms` is far below this).
pub const CLI_WAIT_MAX: Duration = Duration::from_secs(90);
/// Hang guard: how long a restarted node gets to catch up.
pub const CATCH_UP_WAIT_MAX: Duration = Duration::from_secs(60);
/// How long one status request may take before it counts as "no answer" in a poll.
pub const STATUS_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between two polls of a wait.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Lines of each node's log printed when a test fails.
pub const LOG_TAIL_LINES: usize = 40;
/// Bytes read from the end of a log to find those lines.
const LOG_TAIL_BYTES: u64 = 16 << 10;
/// Most pages one [`scan_all`] reads (a hang guard on a scan that never ends).
pub const SCAN_PAGES_MAX: usize = 10_000;
/// Pairs per page in [`scan_all`].
pub const SCAN_PAGE_PAIRS: u32 = 1_000;
/// Candidate ports tried to find the free ones a cluster needs.
const PORT_PICK_ATTEMPTS_MAX: usize = 10_000;
/// Lowest port the harness picks (below it: well-known and registered services).
const PORT_MIN: u16 = 10_000;
/// Fewest ports a pick range must hold to be used.
const PORT_RANGE_PORTS_MIN: u16 = 1_000;
/// Where Linux says its ephemeral ports are.
const EPHEMERAL_RANGE_PATH: &str = "/proc/sys/net/ipv4/ip_local_port_range";
/// WAL segment size given to every node. Segments are preallocated with zeros, one ahead: with
/// 64 MiB segments a 5-node cluster wrote over 600 MiB, which on a shared 2-core machine
/// stalled restarts for tens of seconds. 8 MiB still holds the largest command (4 MiB).
pub const WAL_SEGMENT_BYTES: usize = 8 << 20;
/// Set this variable to a byte count to run the nodes with another WAL segment size (e.g.
/// `TERN_TEST_WAL_SEGMENT_BYTES=67108864` for 64 MiB).
pub const WAL_SEGMENT_BYTES_VARIABLE: &str = "TERN_TEST_WAL_SEGMENT_BYTES";
/// Operation deadline of the clients the harness configures: a hang guard, far above what a
/// healthy cluster needs (see [`LEADER_WAIT_MAX`]).
pub const CLIENT_OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Set this variable to keep a failed test's directory (logs, data) instead of deleting it.
pub const KEEP_DIR_VARIABLE: &str = "TERN_TEST_KEEP_DIR";

/// Ports handed out in this process, so parallel tests never pick the same one.
static PORTS_TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// `count` distinct free loopback UDP ports, picked at random outside the kernel's ephemeral
/// range. Ports that the kernel hands out for port 0 would collide: a node's port is free
/// between the pick and the node's bind, and again between a kill and the restart, and every
/// client socket (of this test or any other process) takes an ephemeral port. Each candidate
/// is bound to check it is free, and all are held until the pick ends, so none repeats.
pub fn free_ports(count: usize) -> Vec<u16> {
    let mut taken = PORTS_TAKEN
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let taken = taken.get_or_insert_with(HashSet::new);
    let (low, high) = pick_range();
    let mut random = random_seed();
    let mut held = Vec::with_capacity(count);
    let mut ports = Vec::with_capacity(count);
    for _ in 0..PORT_PICK_ATTEMPTS_MAX {
        if ports.len() == count {
            break;
        }
        // xorshift64: any spread will do, nothing depends on the sequence.
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let port = low + (random % u64::from(high - low + 1)) as u16;
        if taken.contains(&port) {
            continue;
        }
        if let Ok(socket) = UdpSocket::bind(("127.0.0.1", port)) {
            taken.insert(port);
            ports.push(port);
            held.push(socket);
        }
    }
    assert_eq!(
        ports.len(),
        count,
        "could not find {count} free ports in {low}..={high}"
    );
    ports
}

/// The range ports are picked from: below the ephemeral range when it leaves enough room,
/// else above it.
fn pick_range() -> (u16, u16) {
    let (ephemeral_low, ephemeral_high) = fs::read_to_string(EPHEMERAL_RANGE_PATH)
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(|word| word.parse::<u16>());
            match (bounds.next(), bounds.next()) {
                (Some(Ok(low)), Some(Ok(high))) if low <= high => Some((low, high)),
                _ => None,
            }
        })
        .unwrap_or((32_768, 60_999));
    if ephemeral_low.saturating_sub(PORT_MIN) >= PORT_RANGE_PORTS_MIN {
        (PORT_MIN, ephemeral_low - 1)
    } else if u16::MAX - ephemeral_high >= PORT_RANGE_PORTS_MIN {
        (ephemeral_high + 1, u16::MAX)
    } else {
        panic!("no room outside the ephemeral port range {ephemeral_low}..={ephemeral_high}");
    }
}

/// A seed that differs between processes and calls (time, process id, a counter).
fn random_seed() -> u64 {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed =
        nanos ^ (u64::from(std::process::id()) << 32) ^ call.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // xorshift must not start at 0.
    seed | 1
}

/// Runs `make()`'s future on a new glommio executor and returns its output; a panic inside
/// is re-raised here.
pub fn block_on<F, Fut, T>(name: &str, make: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let handle = tern_net::runtime::run_executor(name, make).expect("start a glommio executor");
    match handle.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// How a cluster is started.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Members, with ids 1..=nodes.
    pub nodes: usize,
    /// Mutual TLS with certificates in the cluster directory (true), or `--insecure`.
    pub tls: bool,
    /// More `tern serve` flags, given to every node.
    pub extra_serve_args: Vec<String>,
    /// Machines for members that join later (ids after `nodes`): certificates and ports
    /// exist, but nothing starts until `start_joining`.
    pub spares: usize,
}

impl ClusterOptions {
    /// `nodes` members with mutual TLS (the real setup) and default timeouts.
    pub fn new(nodes: usize) -> ClusterOptions {
        ClusterOptions {
            nodes,
            tls: true,
            extra_serve_args: vec![
                "--wal-segment-bytes".to_string(),
                std::env::var(WAL_SEGMENT_BYTES_VARIABLE)
                    .unwrap_or_else(|_| WAL_SEGMENT_BYTES.to_string()),
            ],
            spares: 0,
        }
    }
}

/// One member.
struct Node {
    id: u64,
    peer_addr: SocketAddr,
    client_addr: SocketAddr,
    data_dir: PathBuf,
    log_path: PathBuf,
    /// The running process; `None` once it was stopped (or before it first started).
    child: Option<Child>,
    /// A spare: started with `--join` and every member in `--peers`.
    joiner: bool,
    started_once: bool,
    /// Certificates other than the cluster's (a test's misconfigured member), if set.
    tls_dir: Option<PathBuf>,
}

/// What a CLI run printed and how it exited.
#[derive(Clone, Debug)]
pub struct CliOutput {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// Panics (showing everything printed) unless the exit code is `code`.
    pub fn expect_code(&self, code: i32, what: &str) -> &CliOutput {
        assert_eq!(
            self.code,
            Some(code),
            "{what}: expected exit code {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A running test cluster. See the module documentation.
pub struct Cluster {
    /// Deleted on drop (unless the test failed and [`KEEP_DIR_VARIABLE`] is set).
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    certs_dir: PathBuf,
    tls: bool,
    extra_serve_args: Vec<String>,
    nodes: Vec<Node>,
    cli_runs: u32,
}

impl Cluster {
    /// Starts `nodes` members with mutual TLS and default options.
    pub fn start(nodes: usize) -> Cluster {
        Cluster::start_with(ClusterOptions::new(nodes))
    }

    /// Writes certificates, picks ports and starts every member.
    pub fn start_with(options: ClusterOptions) -> Cluster {
        assert!(options.nodes >= 1, "a cluster needs a member");
        let dir = tempfile::Builder::new()
            .prefix("tern-cluster-")
            .tempdir()
            .expect("create a temporary directory");
        let root = dir.path().to_path_buf();
        let certs_dir = root.join("certs");
        let total = options.nodes + options.spares;
        let ids: Vec<u64> = (1..=total as u64).collect();
        if options.tls {
            write_cluster_certificates(&certs_dir, &ids, false).expect("write certificates");
        }
        let ports = free_ports(total * 2);
        let nodes = ids
            .iter()
            .map(|&id| {
                let slot = (id - 1) as usize;
                let data_dir = root.join(format!("node-{id}"));
                fs::create_dir_all(&data_dir).expect("create a data directory");
                Node {
                    id,
                    peer_addr: SocketAddr::from(([127, 0, 0, 1], ports[slot * 2])),
                    client_addr: SocketAddr::from(([127, 0, 0, 1], ports[slot * 2 + 1])),
                    data_dir,
                    log_path: root.join(format!("node-{id}.log")),
                    child: None,
                    joiner: id > options.nodes as u64,
                    started_once: false,
                    tls_dir: None,
                }
            })
            .collect();
        let mut cluster = Cluster {
            dir: Some(dir),
            root,
            certs_dir,
            tls: options.tls,
            extra_serve_args: options.extra_serve_args,
            nodes,
            cli_runs: 0,
        };
        for id in ids.into_iter().take(options.nodes) {
            cluster.spawn(id);
        }
        cluster
    }

    /// Starts spare `id` with `--join` (add it with `tern member add` first).
    pub fn start_joining(&mut self, id: u64) {
        assert!(self.node(id).joiner, "member {id} is not a spare");
        self.spawn(id);
    }

    /// Starts member `id` (from its next start on) with the certificates in `dir` instead of
    /// the cluster's.
    pub fn use_tls_dir(&mut self, id: u64, dir: &Path) {
        self.node_mut(id).tls_dir = Some(dir.to_path_buf());
    }

    /// Member `id`'s peer address.
    pub fn peer_addr(&self, id: u64) -> SocketAddr {
        self.node(id).peer_addr
    }

    /// Member ids, 1..=n.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|node| node.id).collect()
    }

    /// Ids of the members whose process this harness has running (started and not stopped).
    pub fn running_ids(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| node.id)
            .collect()
    }

    /// The temporary directory of this cluster.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The certificate directory (`--tls-dir`).
    pub fn certs_dir(&self) -> &Path {
        &self.certs_dir
    }

    /// Where member `id` serves clients.
    pub fn client_addr(&self, id: u64) -> SocketAddr {
        self.node(id).client_addr
    }

    /// Every member's client address.
    pub fn endpoints(&self) -> Vec<SocketAddr> {
        self.nodes
            .iter()
            .filter(|node| !node.joiner || node.started_once)
            .map(|node| node.client_addr)
            .collect()
    }

    /// The `--endpoints` value naming every member.
    pub fn endpoints_arg(&self) -> String {
        join_addrs(self.endpoints().iter())
    }

    /// The client's security: the client certificate, or insecure.
    pub fn security(&self) -> Security {
        if self.tls {
            let credentials =
                load_credentials(&self.certs_dir, Identity::Client).expect("client credentials");
            Security::MutualTls(credentials)
        } else {
            Security::Insecure
        }
    }

    /// A client configuration naming every member.
    pub fn client_config(&self) -> KvClientConfig {
        let mut config = KvClientConfig::new(self.endpoints(), self.security());
        config.operation_timeout = CLIENT_OPERATION_TIMEOUT;
        config
    }

    /// A client configuration naming only member `id`.
    pub fn node_client_config(&self, id: u64) -> KvClientConfig {
        let mut config = KvClientConfig::new(vec![self.client_addr(id)], self.security());
        config.operation_timeout = CLIENT_OPERATION_TIMEOUT;
        config
    }

    /// Member `id`'s data directory.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.node(id).data_dir.clone()
    }

    fn node(&self, id: u64) -> &Node {
        self.nodes
            .iter()
            .find(|node| node.id == id)
            .unwrap_or_else(|| panic!("no member {id}"))
    }

    fn node_mut(&mut self, id: u64) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|node| node.id == id)
            .unwrap_or_else(|| panic!("no member {id}"))
    }

    /// The `tern serve` arguments of member `id`.
    fn serve_args(&self, id: u64) -> Vec<String> {
        let node = self.node(id);
        // Bootstrap members know each other; a joiner is told about everyone.
        let peers = self
            .nodes
            .iter()
            .filter(|other| node.joiner || !other.joiner)
            .map(|other| format!("{}={}", other.id, other.peer_addr))
            .collect::<Vec<_>>()
            .join(",");
        let peer_client_addrs = self
            .nodes
            .iter()
            .filter(|other| other.id != id && (node.joiner || !other.joiner))
            .map(|other| format!("{}={}", other.id, other.client_addr))
            .collect::<Vec<_>>()
            .join(",");
        let mut args = vec![
            "serve".to_string(),
            "--id".into(),
            id.to_string(),
            "--peers".into(),
            peers,
            "--client-addr".into(),
            node.client_addr.to_string(),
            "--data-dir".into(),
            node.data_dir.display().to_string(),
            "--log-level".into(),
            "info".into(),
        ];
        if !peer_client_addrs.is_empty() {
            args.push("--peer-client-addrs".into());
            args.push(peer_client_addrs);
        }
        match &node.tls_dir {
            Some(dir) => args.extend(["--tls-dir".to_string(), dir.display().to_string()]),
            None => args.extend(self.security_args()),
        }
        args.extend(self.extra_serve_args.iter().cloned());
        if node.joiner {
            args.push("--join".into());
        }
        args
    }

    /// `--tls-dir DIR` or `--insecure`.
    fn security_args(&self) -> Vec<String> {
        if self.tls {
            vec!["--tls-dir".into(), self.certs_dir.display().to_string()]
        } else {
            vec!["--insecure".into()]
        }
    }

    /// Starts member `id`'s process (appending to its log).
    fn spawn(&mut self, id: u64) {
        let args = self.serve_args(id);
        let node = self.node_mut(id);
        assert!(node.child.is_none(), "member {id} is already running");
        node.started_once = true;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .expect("open the node log");
        let log_err = log.try_clone().expect("clone the log handle");
        let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
        // SAFETY: the closure runs in the child between fork and exec and only calls prctl(2),
        // which is async-signal-safe. It makes the kernel SIGKILL the node when the test thread
        // that started it dies, so a test process killed without running `Drop` (a CI timeout)
        // leaves no node behind. The cluster lives and dies on that one test thread.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .unwrap_or_else(|error| panic!("start member {id}: {error}"));
        node.child = Some(child);
    }

    /// Starts member `id` again on its data directory and ports (it must be stopped).
    pub fn restart(&mut self, id: u64) {
        self.spawn(id);
    }

    /// Kills member `id` with SIGKILL (no chance to clean up) and reaps it.
    pub fn kill_9(&mut self, id: u64) {
        let node = self.node_mut(id);
        let mut child = node
            .child
            .take()
            .unwrap_or_else(|| panic!("member {id} is not running"));
        // An error here means it already exited; the wait below reaps it either way.
        let _ = child.kill();
        wait_exit(&mut child, id);
    }

    /// Sends SIGTERM to member `id`, waits for it to exit and asserts it exited with status 0.
    pub fn terminate(&mut self, id: u64) {
        let status = self.signal_and_wait(id, libc::SIGTERM);
        assert!(
            status.success(),
            "member {id} exited with {status} after SIGTERM (expected 0)\n{}",
            self.log_tail(id, LOG_TAIL_LINES)
        );
    }

    /// Sends SIGINT (Ctrl-C) to member `id`, waits for it to exit and asserts status 0.
    pub fn interrupt(&mut self, id: u64) {
        let status = self.signal_and_wait(id, libc::SIGINT);
        assert!(
            status.success(),
            "member {id} exited with {status} after SIGINT (expected 0)\n{}",
            self.log_tail(id, LOG_TAIL_LINES)
        );
    }

    /// Sends `signal` to member `id` and waits for its exit.
    pub fn signal_and_wait(&mut self, id: u64, signal: libc::c_int) -> ExitStatus {
        let node = self.node_mut(id);
        let mut child = node
            .child
            .take()
            .unwrap_or_else(|| panic!("member {id} is not running"));
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a PID of a child we have not reaped yet (so it cannot have been
        // reused by another process) and a valid signal number.
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "kill({pid}, {signal}) failed");
        wait_exit(&mut child, id)
    }

    /// Panics (with the log tail) when a member that should be running has exited.
    pub fn assert_all_running(&mut self) {
        let mut exited = Vec::new();
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut() {
                if let Some(status) = child.try_wait().expect("try_wait") {
                    exited.push((node.id, status));
                }
            }
        }
        if !exited.is_empty() {
            let tails: String = exited
                .iter()
                .map(|(id, _)| self.log_tail(*id, LOG_TAIL_LINES))
                .collect();
            panic!("members exited unexpectedly: {exited:?}\n{tails}");
        }
    }

    /// The status of every running member (each asked concurrently, within [`STATUS_TIMEOUT`]).
    pub fn statuses(&self) -> Vec<(u64, Result<NodeStatus, KvError>)> {
        let targets: Vec<(u64, SocketAddr)> = self
            .running_ids()
            .into_iter()
            .map(|id| (id, self.client_addr(id)))
            .collect();
        let security = self.security();
        block_on("status-poll", move || async move {
            let asks = targets.iter().map(|&(id, addr)| {
                let security = security.clone();
                async move { (id, node_status(addr, &security, STATUS_TIMEOUT).await) }
            });
            join_all(asks.collect()).await
        })
    }

    /// The status of member `id`.
    pub fn status(&self, id: u64) -> Result<NodeStatus, KvError> {
        let addr = self.client_addr(id);
        let security = self.security();
        block_on("status", move || async move {
            node_status(addr, &security, STATUS_TIMEOUT).await
        })
    }

    /// Waits until every running member answers, exactly one says it leads, and all name it
    /// as leader in the same term. Returns its id. Panics after [`LEADER_WAIT_MAX`].
    pub fn wait_for_leader(&mut self) -> u64 {
        let deadline = Instant::now() + LEADER_WAIT_MAX;
        loop {
            self.assert_all_running();
            let statuses = self.statuses();
            let last_seen = match agreed_leader(&statuses) {
                Ok(leader) => return leader,
                Err(problem) => format!("{problem}; statuses: {statuses:#?}"),
            };
            if Instant::now() > deadline {
                panic!(
                    "no agreed leader within {LEADER_WAIT_MAX:?}: {last_seen}\n{}",
                    self.log_tails()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits until member `id` has applied at least `index`. Panics after
    /// [`CATCH_UP_WAIT_MAX`].
    pub fn wait_until_applied(&mut self, id: u64, index: u64) -> NodeStatus {
        let deadline = Instant::now() + CATCH_UP_WAIT_MAX;
        loop {
            self.assert_all_running();
            let last_seen = match self.status(id) {
                Ok(status) if status.applied_index >= index => return status,
                Ok(status) => format!("{status:?}"),
                Err(error) => format!("error {error}"),
            };
            if Instant::now() > deadline {
                panic!(
                    "member {id} did not apply index {index} within {CATCH_UP_WAIT_MAX:?}; \
                     last: {last_seen}\n{}",
                    self.log_tails()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Runs `tern ARGS... --endpoints <all> <security> --timeout-ms <timeout_ms>`.
    pub fn cli(&mut self, args: &[&str], timeout_ms: u64) -> CliOutput {
        let mut full: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        full.push("--endpoints".into());
        full.push(self.endpoints_arg());
        full.extend(self.security_args());
        full.push("--timeout-ms".into());
        full.push(timeout_ms.to_string());
        self.run_cli(&full)
    }

    /// Runs `tern ARGS...` as given; output goes through files in the cluster directory (no pipe
    /// can fill up). Panics if it runs longer than [`CLI_WAIT_MAX`].
    pub fn run_cli<S: AsRef<std::ffi::OsStr>>(&mut self, args: &[S]) -> CliOutput {
        self.cli_runs += 1;
        let out_path = self.root.join(format!("cli-{}.out", self.cli_runs));
        let err_path = self.root.join(format!("cli-{}.err", self.cli_runs));
        let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).expect("create CLI stdout file"))
            .stderr(File::create(&err_path).expect("create CLI stderr file"))
            .spawn()
            .expect("start the tern CLI");
        let deadline = Instant::now() + CLI_WAIT_MAX;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let shown: Vec<String> = args
                    .iter()
                    .map(|arg| arg.as_ref().to_string_lossy().into_owned())
                    .collect();
                panic!("tern {shown:?} ran longer than {CLI_WAIT_MAX:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        CliOutput {
            code: status.code(),
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
        }
    }

    /// The last `lines` lines of member `id`'s log, with a heading.
    pub fn log_tail(&self, id: u64, lines: usize) -> String {
        let node = self.node(id);
        format!(
            "--- member {id} log ({}), last {lines} lines:\n{}\n",
            node.log_path.display(),
            tail(&node.log_path, lines)
        )
    }

    /// Every member's log tail.
    pub fn log_tails(&self) -> String {
        self.ids()
            .into_iter()
            .map(|id| self.log_tail(id, LOG_TAIL_LINES))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!("cluster directory: {}", self.root.display());
            eprintln!("{}", self.log_tails());
            if std::env::var_os(KEEP_DIR_VARIABLE).is_some() {
                if let Some(dir) = self.dir.take() {
                    let kept = dir.keep();
                    eprintln!("kept {} ({KEEP_DIR_VARIABLE} is set)", kept.display());
                }
            }
        }
    }
}

/// Waits for `child` to exit, up to [`EXIT_WAIT_MAX`]; then kills it and panics.
fn wait_exit(child: &mut Child, id: u64) -> ExitStatus {
    let deadline = Instant::now() + EXIT_WAIT_MAX;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("member {id} did not exit within {EXIT_WAIT_MAX:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The one leader every answer agrees on, or what is still missing.
fn agreed_leader(statuses: &[(u64, Result<NodeStatus, KvError>)]) -> Result<u64, String> {
    let mut leaders = Vec::new();
    for (id, status) in statuses {
        match status {
            Ok(status) if status.role == "leader" => leaders.push((*id, status.term)),
            Ok(_) => {}
            Err(error) => return Err(format!("member {id} did not answer: {error}")),
        }
    }
    let [(leader, term)] = leaders[..] else {
        return Err(format!("{} members say they lead", leaders.len()));
    };
    for (id, status) in statuses {
        let status = status.as_ref().expect("checked above");
        if status.node_id != *id {
            return Err(format!("member {id} reports id {}", status.node_id));
        }
        if status.leader_id != Some(leader) || status.term != term {
            return Err(format!(
                "member {id} names leader {:?} in term {} (leader {leader} is in term {term})",
                status.leader_id, status.term
            ));
        }
    }
    Ok(leader)
}

/// The last `lines` lines of a file (or why it could not be read).
fn tail(path: &Path, lines: usize) -> String {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) => return format!("(cannot open: {error})"),
    };
    let length = file.metadata().map(|meta| meta.len()).unwrap_or(0);
    let start = length.saturating_sub(LOG_TAIL_BYTES);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return "(cannot seek)".into();
    }
    let mut bytes = Vec::new();
    if let Err(error) = file.read_to_end(&mut bytes) {
        return format!("(cannot read: {error})");
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `a,b,c` of socket addresses.
pub fn join_addrs<'a>(addrs: impl Iterator<Item = &'a SocketAddr>) -> String {
    addrs
        .map(|addr| addr.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Polls every future to completion on the current executor; outputs in order.
pub async fn join_all<T, Fut: Future<Output = T>>(futures: Vec<Fut>) -> Vec<T> {
    let mut pending: Vec<std::pin::Pin<Box<Fut>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<T>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(move |context| {
        let mut done = true;
        for (slot, future) in outputs.iter_mut().zip(pending.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(context) {
                    std::task::Poll::Ready(value) => *slot = Some(value),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(
                outputs
                    .iter_mut()
                    .map(|slot| slot.take().unwrap())
                    .collect(),
            )
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// Every pair whose key starts with `prefix`, read in pages of [`SCAN_PAGE_PAIRS`] (each page
/// read per the client's read consistency).
pub async fn scan_all(client: &KvClient, prefix: &[u8]) -> Result<BTreeMap<Bytes, Bytes>, KvError> {
    let end = tern_kv::prefix_end(prefix);
    let mut start = Bytes::copy_from_slice(prefix);
    let mut pairs = BTreeMap::new();
    for _ in 0..SCAN_PAGES_MAX {
        let (page, more) = client
            .range(start.clone(), end.clone(), SCAN_PAGE_PAIRS)
            .await?;
        let last = page.last().map(|(key, _)| key.clone());
        for (key, value) in page {
            assert!(
                key.starts_with(prefix),
                "scan of prefix {:?} returned key {:?}",
                String::from_utf8_lossy(prefix),
                String::from_utf8_lossy(&key)
            );
            pairs.insert(key, value);
        }
        match (more, last) {
            (true, Some(last)) => {
                // The next page starts right after the last key: the key followed by a 0 byte.
                let mut next = last.to_vec();
                next.push(0);
                start = Bytes::from(next);
            }
            (true, None) => panic!("a range page said 'more' but returned no pair"),
            (false, _) => return Ok(pairs),
        }
    }
    panic!("scan of prefix {prefix:?} did not end within {SCAN_PAGES_MAX} pages");
}

/// The value the tests write under `key`: derived from the key, so a value under the wrong key
/// (or a torn one) is caught.
pub fn value_for(key: &str) -> String {
    format!("value-of-{key}-{}", "x".repeat(32))
}
