//! The demo's node processes: `tern serve` children on free loopback ports, each logging to a
//! file, that never outlive the demo.
//!
//! [`ServerProcess`] keeps that promise (Drop kills, own process group, parent-death signal);
//! this file knows the nodes' addresses and flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use tern_engine::local_process::{free_loopback_ports, terminate_all, ServerProcess};
use tern_net::NodeId;

/// One `tern serve` child.
pub struct Node {
    pub id: NodeId,
    pub peer_addr: SocketAddr,
    pub client_addr: SocketAddr,
    /// Killed (and reaped) on kill, terminate_all and Drop.
    process: ServerProcess,
}

impl Node {
    /// Its log file.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }
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
            let log_path: PathBuf = dir.join(format!("node-{id}.log"));
            let args = vec![
                "serve".into(),
                "--id".into(),
                id.to_string().into(),
                "--peers".into(),
                join_members(&peers).into(),
                "--client-addr".into(),
                client_addr.to_string().into(),
                "--peer-client-addrs".into(),
                join_members(&client_addrs).into(),
                "--data-dir".into(),
                dir.join(format!("node-{id}")).into(),
                "--tls-dir".into(),
                cert_dir.into(),
            ];
            let process = ServerProcess::start(format!("node {id}"), &executable, args, log_path)?;
            // From here on, `cluster`'s Drop (each process's) stops the nodes already started
            // if a later one fails.
            cluster.nodes.push(Node {
                id,
                peer_addr,
                client_addr,
                process,
            });
        }
        Ok(cluster)
    }

    /// Client addresses of the nodes still running.
    pub fn live_endpoints(&self) -> Vec<SocketAddr> {
        self.nodes
            .iter()
            .filter(|node| node.process.is_started())
            .map(|node| node.client_addr)
            .collect()
    }

    /// An error if a node that should run has exited (with its status and last log lines).
    pub fn check_running(&mut self) -> Result<(), String> {
        self.nodes
            .iter_mut()
            .try_for_each(|node| node.process.check_running())
    }

    /// SIGKILL to node `id` (no chance to clean up: a crash), then reaps it.
    pub fn kill(&mut self, id: NodeId) -> Result<(), String> {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.id == id)
            .ok_or_else(|| format!("no node {id}"))?;
        node.process.kill()
    }

    /// SIGTERM to every running node, then waits up to `grace` for all of them; a node still
    /// running then gets SIGKILL. Returns, per node, its exit status or what went wrong.
    pub fn terminate_all(&mut self, grace: Duration) -> Vec<(NodeId, Result<ExitStatus, String>)> {
        let running: Vec<NodeId> = (self.nodes.iter())
            .filter(|node| node.process.is_started())
            .map(|node| node.id)
            .collect();
        let outcomes = terminate_all(self.nodes.iter_mut().map(|node| &mut node.process), grace);
        running
            .into_iter()
            .zip(outcomes)
            .map(|(id, (_, outcome))| (id, outcome))
            .collect()
    }

    /// Every node's log file.
    pub fn log_paths(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("  node {}: {}", node.id, node.log_path().display()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
