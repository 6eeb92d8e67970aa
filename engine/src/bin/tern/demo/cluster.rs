//! The demo's node processes: `tern serve` children on free loopback ports, each logging to a
//! file, that never outlive the demo.
//!
//! Three safeguards keep that promise: `Drop` kills whatever still runs (error paths, panics);
//! each child is in its own process group, so a Ctrl-C at the terminal reaches only the demo,
//! which then shuts them down itself; and each child asks the kernel for SIGKILL when the demo
//! dies (PR_SET_PDEATHSIG), which covers the demo being killed outright.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tern_net::NodeId;

use super::ports::free_loopback_ports;

/// One `tern serve` child.
pub struct Node {
    pub id: NodeId,
    pub peer_addr: SocketAddr,
    pub client_addr: SocketAddr,
    pub log_path: PathBuf,
    /// `None` once the process was reaped.
    child: Option<Child>,
}

/// The demo's nodes.
pub struct Cluster {
    pub nodes: Vec<Node>,
}

fn join_members(members: &[(NodeId, SocketAddr)]) -> String {
    members
        .iter()
        .map(|(id, address)| format!("{id}={address}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Cluster {
    /// Starts `count` nodes with certificates from `cert_dir`, data and logs under `dir`.
    /// Call from the thread that lives as long as the demo (the parent-death signal follows
    /// the thread that spawned the child).
    pub fn start(dir: &Path, cert_dir: &Path, count: usize) -> Result<Cluster, String> {
        let executable = std::env::current_exe()
            .map_err(|error| format!("cannot find the tern executable to start nodes: {error}"))?;
        let ports = free_loopback_ports(2 * count)?;
        let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let peers: Vec<(NodeId, SocketAddr)> = (0..count)
            .map(|index| (index as NodeId + 1, loopback(ports[2 * index])))
            .collect();
        let client_addrs: Vec<(NodeId, SocketAddr)> = (0..count)
            .map(|index| (index as NodeId + 1, loopback(ports[2 * index + 1])))
            .collect();
        let mut cluster = Cluster { nodes: Vec::new() };
        for index in 0..count {
            let (id, peer_addr) = peers[index];
            let client_addr = client_addrs[index].1;
            let log_path = dir.join(format!("node-{id}.log"));
            let log = File::create(&log_path)
                .map_err(|error| format!("cannot create {}: {error}", log_path.display()))?;
            let log_copy = log
                .try_clone()
                .map_err(|error| format!("cannot open {}: {error}", log_path.display()))?;
            let mut command = Command::new(&executable);
            command
                .arg("serve")
                .args(["--id", &id.to_string()])
                .args(["--peers", &join_members(&peers)])
                .args(["--client-addr", &client_addr.to_string()])
                .args(["--peer-client-addrs", &join_members(&client_addrs)])
                .arg("--data-dir")
                .arg(dir.join(format!("node-{id}")))
                .arg("--tls-dir")
                .arg(cert_dir)
                .stdin(Stdio::null())
                .stdout(log_copy)
                .stderr(log)
                .process_group(0);
            // SAFETY: the closure runs in the child between fork and exec and only calls
            // prctl, which is async-signal-safe; it allocates nothing and takes no lock.
            unsafe {
                command.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = command
                .spawn()
                .map_err(|error| format!("cannot start {} serve: {error}", executable.display()))?;
            // From here on, `cluster`'s Drop stops the nodes already started if a later one
            // fails.
            cluster.nodes.push(Node {
                id,
                peer_addr,
                client_addr,
                log_path,
                child: Some(child),
            });
        }
        Ok(cluster)
    }

    /// Client addresses of the nodes still running.
    pub fn live_endpoints(&self) -> Vec<SocketAddr> {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| node.client_addr)
            .collect()
    }

    /// An error if a node that should run has exited (with its status and last log lines).
    pub fn check_running(&mut self) -> Result<(), String> {
        for node in &mut self.nodes {
            let Some(child) = node.child.as_mut() else {
                continue;
            };
            if let Ok(Some(status)) = child.try_wait() {
                node.child = None;
                return Err(format!(
                    "node {} exited unexpectedly ({status}); its log {} ends with:\n{}",
                    node.id,
                    node.log_path.display(),
                    log_tail(&node.log_path)
                ));
            }
        }
        Ok(())
    }

    /// SIGKILL to node `id` (no chance to clean up: a crash), then reaps it.
    pub fn kill(&mut self, id: NodeId) -> Result<(), String> {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.id == id)
            .ok_or_else(|| format!("no node {id}"))?;
        let mut child = node
            .child
            .take()
            .ok_or_else(|| format!("node {id} is not running"))?;
        child
            .kill()
            .map_err(|error| format!("cannot kill node {id}: {error}"))?;
        let _ = child.wait();
        Ok(())
    }

    /// SIGTERM to every running node, then waits up to `grace` for all of them; a node still
    /// running then gets SIGKILL. Returns, per node, its exit status or what went wrong.
    pub fn terminate_all(&mut self, grace: Duration) -> Vec<(NodeId, Result<ExitStatus, String>)> {
        for node in &self.nodes {
            if let Some(child) = &node.child {
                signal(child, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        let mut outcomes = Vec::new();
        for node in &mut self.nodes {
            let Some(mut child) = node.child.take() else {
                continue;
            };
            let outcome = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Ok(status),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Ok(None) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Err(format!(
                            "did not exit within {} s of SIGTERM; killed (log: {})",
                            grace.as_secs(),
                            node.log_path.display()
                        ));
                    }
                    Err(error) => break Err(format!("cannot wait for it: {error}")),
                }
            };
            outcomes.push((node.id, outcome));
        }
        outcomes
    }

    /// Every node's log file.
    pub fn log_paths(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("  node {}: {}", node.id, node.log_path.display()))
            .collect::<Vec<_>>()
            .join("\n")
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
    }
}

/// Sends `signal` to this child (by its own PID: never to anything else).
fn signal(child: &Child, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with the PID of a child we have not reaped yet (so the PID cannot
        // have been reused); no memory is involved.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// The last lines of a log file (at most 2 KiB), indented, for error messages.
pub fn log_tail(path: &Path) -> String {
    const TAIL_BYTES_MAX: u64 = 2048;
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let length = file.metadata().map(|meta| meta.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(length.saturating_sub(TAIL_BYTES_MAX)));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(10);
    if lines.is_empty() {
        return "    (empty)".to_string();
    }
    lines[start..]
        .iter()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}
