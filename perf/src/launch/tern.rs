//! tern clusters: `tern serve` processes with mutual TLS.
//
// Contract: `TernCluster::start(spec: &ClusterSpec) -> Result<TernCluster, String>` and
// `impl Cluster for TernCluster`; `pub fn tern_binary() -> Result<PathBuf, String>`.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tern_engine::local_process::{free_loopback_ports, terminate_all, ServerProcess};

use super::members::{check_all_running, kill_member, restart_member, STOP_GRACE};
use super::ready::{wait_until_probe_succeeds, Probe};
pub use super::tern_binary::{tern_binary, TERN_BIN_ENV};
use super::ClusterSpec;
use crate::driver::tern::TernDriver;
use crate::driver::{Driver, TernEndpoints};
use crate::system::System;

/// How long one readiness write may take (milliseconds, `tern put --timeout-ms`).
const READY_PUT_TIMEOUT_MS: u64 = 1000;

/// tern's default lease margin (15 ms), or half the shortest election timeout when that is
/// shorter: tern refuses a margin that leaves no lease (`election`'s 12-25 ms range). Only
/// lease reads use it; the benchmarks' default reads are linearizable.
pub fn clock_drift_margin_ms(election_timeout_ms_min: u64) -> u64 {
    const DEFAULT_MARGIN_MS: u64 = 15;
    DEFAULT_MARGIN_MS.min(election_timeout_ms_min / 2)
}

/// A running tern cluster.
pub struct TernCluster {
    /// The `tern` executable the members run (also used for readiness probes).
    binary: PathBuf,
    /// Client addresses, member index order.
    client_addrs: Vec<SocketAddr>,
    /// What `tern certs` writes: the CA, one certificate per node, the client's.
    cert_dir: PathBuf,
    /// Member index order; member i has node id i + 1.
    members: Vec<ServerProcess>,
}

/// "1=127.0.0.1:P1,2=127.0.0.1:P2,..." for ids 1.. in order.
fn join_members(addresses: &[SocketAddr]) -> String {
    addresses
        .iter()
        .enumerate()
        .map(|(index, address)| format!("{}={address}", index + 1))
        .collect::<Vec<_>>()
        .join(",")
}

impl TernCluster {
    /// Writes certificates for `spec.nodes` nodes, then starts one `tern serve` per node on
    /// 127.0.0.1 with its own data directory and log under `spec.base_dir`. Returns once the
    /// processes are started: call [`super::Cluster::wait_ready`] before using it.
    ///
    /// Call it from a thread that lives as long as the cluster: each member gets SIGKILL when
    /// the thread that started it ends (so none outlives the suite).
    pub fn start(spec: &ClusterSpec) -> Result<TernCluster, String> {
        if spec.nodes == 0 {
            return Err("a tern cluster needs at least 1 node (--nodes)".to_string());
        }
        let binary = tern_binary()?;
        std::fs::create_dir_all(&spec.base_dir)
            .map_err(|error| format!("cannot create {}: {error}", spec.base_dir.display()))?;
        let cert_dir = spec.base_dir.join("tern-certs");
        let ids: Vec<u64> = (1..=spec.nodes as u64).collect();
        // The same files `tern certs --dir <cert_dir> --node 1,...,n` writes (it calls this).
        tern_net::certs::write_cluster_certificates(&cert_dir, &ids, true).map_err(|error| {
            format!(
                "cannot write tern certificates into {}: {error}",
                cert_dir.display()
            )
        })?;
        let ports = free_loopback_ports(2 * spec.nodes)?;
        let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let peer_addrs: Vec<SocketAddr> =
            ports[..spec.nodes].iter().map(|&p| loopback(p)).collect();
        let client_addrs: Vec<SocketAddr> =
            ports[spec.nodes..].iter().map(|&p| loopback(p)).collect();
        let timing = spec.timing;
        let mut members = Vec::with_capacity(spec.nodes);
        for (index, client_addr) in client_addrs.iter().enumerate() {
            let id = index + 1;
            let args: Vec<OsString> = vec![
                "serve".into(),
                "--id".into(),
                id.to_string().into(),
                "--peers".into(),
                join_members(&peer_addrs).into(),
                "--client-addr".into(),
                client_addr.to_string().into(),
                "--peer-client-addrs".into(),
                join_members(&client_addrs).into(),
                "--data-dir".into(),
                spec.base_dir.join(format!("tern-node-{id}")).into(),
                "--tls-dir".into(),
                cert_dir.clone().into(),
                "--election-timeout-ms-min".into(),
                timing.timeout_ms_min.to_string().into(),
                "--election-timeout-ms-max".into(),
                timing.timeout_ms_max.to_string().into(),
                "--heartbeat-interval-ms".into(),
                timing.heartbeat_ms.to_string().into(),
                "--clock-drift-margin-ms".into(),
                clock_drift_margin_ms(timing.timeout_ms_min)
                    .to_string()
                    .into(),
                "--log-level".into(),
                if spec.verbose_logs { "debug" } else { "warn" }.into(),
            ];
            let log_path = spec.base_dir.join(format!("tern-node-{id}.log"));
            // Members already started are killed by their Drop if this one fails.
            members.push(ServerProcess::start(
                format!("tern node {id}"),
                &binary,
                args,
                log_path,
            )?);
        }
        Ok(TernCluster {
            binary,
            client_addrs,
            cert_dir,
            members,
        })
    }

    /// Client addresses of the members that run.
    fn live_client_addrs(&self) -> Vec<SocketAddr> {
        self.members
            .iter()
            .zip(&self.client_addrs)
            .filter(|(member, _)| member.is_started())
            .map(|(_, address)| *address)
            .collect()
    }
}

impl super::Cluster for TernCluster {
    fn system(&self) -> System {
        System::Tern
    }

    fn nodes(&self) -> usize {
        self.members.len()
    }

    fn server_pids(&self) -> Vec<Option<u32>> {
        self.members.iter().map(ServerProcess::pid).collect()
    }

    fn connect(&self) -> Result<Box<dyn Driver>, String> {
        let driver = TernDriver::connect(TernEndpoints {
            client_addrs: self.client_addrs.clone(),
            cert_dir: self.cert_dir.clone(),
        })?;
        Ok(Box::new(driver))
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let endpoints = self
            .live_client_addrs()
            .iter()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let probe = Probe {
            program: self.binary.clone(),
            args: vec![
                "put".into(),
                "--endpoints".into(),
                endpoints.into(),
                "--tls-dir".into(),
                self.cert_dir.clone().into(),
                "--timeout-ms".into(),
                READY_PUT_TIMEOUT_MS.to_string().into(),
                "perf/ready".into(),
                "1".into(),
            ],
            env: Vec::new(),
        };
        wait_until_probe_succeeds(System::Tern, &mut self.members, &probe, timeout)
    }

    fn kill(&mut self, member_index: usize) -> Result<(), String> {
        kill_member(&mut self.members, member_index)
    }

    fn restart(&mut self, member_index: usize) -> Result<(), String> {
        restart_member(&mut self.members, member_index)
    }

    fn check_running(&mut self) -> Result<(), String> {
        check_all_running(&mut self.members)
    }

    fn command_line(&self) -> String {
        self.members
            .first()
            .map(ServerProcess::command_line)
            .unwrap_or_default()
    }

    fn stop(&mut self) {
        for (name, outcome) in terminate_all(&mut self.members, STOP_GRACE) {
            if let Err(why) = outcome {
                eprintln!("tern-perf: {name} {why}");
            }
        }
    }
}

impl Drop for TernCluster {
    fn drop(&mut self) {
        super::Cluster::stop(self);
    }
}

#[cfg(test)]
mod margin_tests {
    use super::clock_drift_margin_ms;

    #[test]
    fn the_lease_margin_leaves_a_lease_at_every_timing() {
        assert_eq!(clock_drift_margin_ms(150), 15);
        assert_eq!(clock_drift_margin_ms(30), 15);
        assert_eq!(clock_drift_margin_ms(12), 6);
        for min in 2..400 {
            assert!(
                clock_drift_margin_ms(min) < min,
                "no lease left at {min} ms"
            );
        }
    }
}
