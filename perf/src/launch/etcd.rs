//! etcd clusters: Debian's etcd 3.4 with mutual TLS on client and peer links.
//
// Contract: `EtcdCluster::start(spec: &ClusterSpec) -> Result<EtcdCluster, String>`,
// `impl Cluster for EtcdCluster`, `pub fn etcd_binary() -> Result<PathBuf, String>` (an error
// that says to run perf/install-etcd.sh when it is missing) and `pub fn etcd_version() -> String`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tern_engine::local_process::{free_loopback_ports, terminate_all, ServerProcess};

use super::etcd_certs::{write_etcd_certs, EtcdCerts};
use super::members::{check_all_running, kill_member, restart_member, STOP_GRACE};
use super::ready::{wait_until_probe_succeeds, Probe};
use super::{ClusterSpec, ElectionTiming};
use crate::driver::etcd::EtcdDriver;
use crate::driver::{Driver, EtcdEndpoints};
use crate::system::System;

/// Environment variable naming the etcd executable to use instead of the one on PATH.
pub const ETCD_BIN_ENV: &str = "TERN_PERF_ETCD_BIN";
/// Environment variable naming the etcdctl executable to use instead of the one on PATH.
pub const ETCDCTL_BIN_ENV: &str = "TERN_PERF_ETCDCTL_BIN";
/// What to do when etcd is missing.
const INSTALL_HINT: &str =
    "run perf/install-etcd.sh (apt-get install etcd-server etcd-client protobuf-compiler)";
/// etcd's own rule: `--election-timeout` at least this many heartbeat intervals.
const ETCD_TIMEOUT_HEARTBEATS_MIN: u64 = 5;
/// etcd's own rule: `--election-timeout` at most this (milliseconds).
const ETCD_TIMEOUT_MS_MAX: u64 = 50_000;
/// How long one readiness write may take (`etcdctl --command-timeout`).
const READY_PUT_TIMEOUT: &str = "1s";

/// `name` on PATH, if there.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// An executable from `env_var` if set, else `name` on PATH.
fn find_executable(name: &str, env_var: &str) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{env_var} is set to {}, which is not a file: point it at {name} or unset it",
                path.display()
            ))
        };
    }
    find_on_path(name)
        .ok_or_else(|| format!("{name} is not installed (not on PATH): {INSTALL_HINT}"))
}

/// The etcd server executable: `$TERN_PERF_ETCD_BIN`, else `etcd` on PATH.
pub fn etcd_binary() -> Result<PathBuf, String> {
    find_executable("etcd", ETCD_BIN_ENV)
}

/// The etcdctl executable (readiness probes): `$TERN_PERF_ETCDCTL_BIN`, else on PATH.
pub fn etcdctl_binary() -> Result<PathBuf, String> {
    find_executable("etcdctl", ETCDCTL_BIN_ENV)
}

/// "3.4.23" from `etcd --version`, or a text that says why it is unknown.
pub fn etcd_version() -> String {
    let binary = match etcd_binary() {
        Ok(binary) => binary,
        Err(error) => return format!("unknown ({error})"),
    };
    match Command::new(&binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) if output.status.success() => {
            parse_version(&String::from_utf8_lossy(&output.stdout)).unwrap_or_else(|| {
                format!(
                    "unknown (`{} --version` printed no version)",
                    binary.display()
                )
            })
        }
        Ok(output) => format!(
            "unknown (`{} --version`: {})",
            binary.display(),
            output.status
        ),
        Err(error) => format!("unknown (cannot run {}: {error})", binary.display()),
    }
}

/// The version from `etcd --version`'s "etcd Version: 3.4.23" line.
fn parse_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("etcd Version:"))
        .map(|version| version.trim().to_string())
        .filter(|version| !version.is_empty())
}

/// etcd's flags for `timing`: heartbeat as given, election timeout = tern's lower bound (etcd
/// draws from T..2T). An error if etcd would refuse them.
fn etcd_timing_flags(timing: &ElectionTiming) -> Result<(u64, u64), String> {
    let heartbeat = timing.heartbeat_ms;
    let election = timing.timeout_ms_min;
    if heartbeat == 0 {
        return Err("etcd needs a heartbeat interval of at least 1 ms".to_string());
    }
    if election < ETCD_TIMEOUT_HEARTBEATS_MIN * heartbeat {
        return Err(format!(
            "etcd refuses an election timeout ({election} ms, the range's lower bound) below \
             {ETCD_TIMEOUT_HEARTBEATS_MIN} heartbeat intervals ({heartbeat} ms): lower the \
             heartbeat to at most {} ms or raise the timeout to at least {} ms",
            election / ETCD_TIMEOUT_HEARTBEATS_MIN,
            ETCD_TIMEOUT_HEARTBEATS_MIN * heartbeat
        ));
    }
    if election > ETCD_TIMEOUT_MS_MAX {
        return Err(format!(
            "etcd refuses an election timeout above {ETCD_TIMEOUT_MS_MAX} ms (got {election} ms)"
        ));
    }
    Ok((heartbeat, election))
}

/// One member's addresses and files.
struct MemberPlan {
    name: String,
    client_url: String,
    peer_url: String,
    data_dir: PathBuf,
}

/// A running etcd cluster.
pub struct EtcdCluster {
    etcdctl: PathBuf,
    certs: EtcdCerts,
    /// Member index order.
    plans: Vec<MemberPlan>,
    /// Member index order.
    members: Vec<ServerProcess>,
    /// The `--initial-cluster` value, "n1=https://...,n2=...".
    initial_cluster: String,
    heartbeat_ms: u64,
    election_ms: u64,
    /// "info" for `ClusterSpec::verbose_logs`, else "warn".
    log_level: &'static str,
    etcd: PathBuf,
    /// Member 0's first command (restarts use other flags).
    first_command_line: String,
}

impl EtcdCluster {
    /// Writes certificates, then starts `spec.nodes` etcd members on 127.0.0.1 (fsync on,
    /// mutual TLS on client and peer links), each with its data directory and log under
    /// `spec.base_dir`. Returns once the processes are started: call
    /// [`super::Cluster::wait_ready`] before using it.
    ///
    /// Call it from a thread that lives as long as the cluster: each member gets SIGKILL when
    /// the thread that started it ends (so none outlives the suite).
    pub fn start(spec: &ClusterSpec) -> Result<EtcdCluster, String> {
        if spec.nodes == 0 {
            return Err("an etcd cluster needs at least 1 member (--nodes)".to_string());
        }
        let (heartbeat_ms, election_ms) = etcd_timing_flags(&spec.timing)?;
        let etcd = etcd_binary()?;
        let etcdctl = etcdctl_binary()?;
        std::fs::create_dir_all(&spec.base_dir)
            .map_err(|error| format!("cannot create {}: {error}", spec.base_dir.display()))?;
        let names: Vec<String> = (1..=spec.nodes).map(|id| format!("n{id}")).collect();
        let certs = write_etcd_certs(&spec.base_dir.join("etcd-certs"), &names)?;
        let ports = free_loopback_ports(2 * spec.nodes)?;
        let plans: Vec<MemberPlan> = names
            .iter()
            .enumerate()
            .map(|(index, name)| MemberPlan {
                name: name.clone(),
                client_url: format!("https://127.0.0.1:{}", ports[2 * index]),
                peer_url: format!("https://127.0.0.1:{}", ports[2 * index + 1]),
                data_dir: spec.base_dir.join(format!("etcd-{name}")),
            })
            .collect();
        let initial_cluster = plans
            .iter()
            .map(|plan| format!("{}={}", plan.name, plan.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            etcdctl,
            certs,
            plans,
            members: Vec::with_capacity(spec.nodes),
            initial_cluster,
            heartbeat_ms,
            election_ms,
            log_level: if spec.verbose_logs { "info" } else { "warn" },
            etcd,
            first_command_line: String::new(),
        };
        for index in 0..spec.nodes {
            let args = cluster.member_args(index, "new");
            let plan = &cluster.plans[index];
            let log_path = spec.base_dir.join(format!("etcd-{}.log", plan.name));
            // Members already started are killed by their Drop if this one fails.
            let process = ServerProcess::start(
                format!("etcd member {}", plan.name),
                &cluster.etcd,
                args,
                log_path,
            )?;
            if index == 0 {
                cluster.first_command_line = process.command_line();
            }
            cluster.members.push(process);
        }
        Ok(cluster)
    }

    /// The command-line arguments of member `index`; `cluster_state` is "new" for the first
    /// start and "existing" for a restart.
    fn member_args(&self, index: usize, cluster_state: &str) -> Vec<OsString> {
        let plan = &self.plans[index];
        let pair = &self.certs.members[index];
        let path = |path: &Path| OsString::from(path);
        vec![
            "--name".into(),
            plan.name.clone().into(),
            "--data-dir".into(),
            path(&plan.data_dir),
            "--listen-client-urls".into(),
            plan.client_url.clone().into(),
            "--advertise-client-urls".into(),
            plan.client_url.clone().into(),
            "--listen-peer-urls".into(),
            plan.peer_url.clone().into(),
            "--initial-advertise-peer-urls".into(),
            plan.peer_url.clone().into(),
            "--initial-cluster".into(),
            self.initial_cluster.clone().into(),
            "--initial-cluster-state".into(),
            cluster_state.into(),
            "--initial-cluster-token".into(),
            "tern-perf".into(),
            "--heartbeat-interval".into(),
            self.heartbeat_ms.to_string().into(),
            "--election-timeout".into(),
            self.election_ms.to_string().into(),
            "--cert-file".into(),
            path(&pair.cert),
            "--key-file".into(),
            path(&pair.key),
            "--trusted-ca-file".into(),
            path(&self.certs.ca),
            "--client-cert-auth".into(),
            "--peer-cert-file".into(),
            path(&pair.cert),
            "--peer-key-file".into(),
            path(&pair.key),
            "--peer-trusted-ca-file".into(),
            path(&self.certs.ca),
            "--peer-client-cert-auth".into(),
            "--logger".into(),
            "zap".into(),
            "--log-level".into(),
            self.log_level.into(),
        ]
    }

    fn client_urls(&self) -> Vec<String> {
        self.plans
            .iter()
            .map(|plan| plan.client_url.clone())
            .collect()
    }
}

impl super::Cluster for EtcdCluster {
    fn system(&self) -> System {
        System::Etcd
    }

    fn nodes(&self) -> usize {
        self.members.len()
    }

    fn server_pids(&self) -> Vec<Option<u32>> {
        self.members.iter().map(ServerProcess::pid).collect()
    }

    fn connect(&self) -> Result<Box<dyn Driver>, String> {
        let driver = EtcdDriver::connect(EtcdEndpoints {
            client_urls: self.client_urls(),
            names: self.plans.iter().map(|plan| plan.name.clone()).collect(),
            ca_pem: self.certs.ca.clone(),
            client_cert_pem: self.certs.client.cert.clone(),
            client_key_pem: self.certs.client.key.clone(),
        })?;
        Ok(Box::new(driver))
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let endpoints = self
            .members
            .iter()
            .zip(self.client_urls())
            .filter(|(member, _)| member.is_started())
            .map(|(_, url)| url)
            .collect::<Vec<_>>()
            .join(",");
        let path = |path: &Path| OsString::from(path);
        let probe = Probe {
            program: self.etcdctl.clone(),
            args: vec![
                "--endpoints".into(),
                endpoints.into(),
                "--cacert".into(),
                path(&self.certs.ca),
                "--cert".into(),
                path(&self.certs.client.cert),
                "--key".into(),
                path(&self.certs.client.key),
                "--dial-timeout".into(),
                READY_PUT_TIMEOUT.into(),
                "--command-timeout".into(),
                READY_PUT_TIMEOUT.into(),
                "put".into(),
                "perf/ready".into(),
                "1".into(),
            ],
            env: vec![("ETCDCTL_API".into(), "3".into())],
        };
        wait_until_probe_succeeds(System::Etcd, &mut self.members, &probe, timeout)
    }

    fn kill(&mut self, member_index: usize) -> Result<(), String> {
        kill_member(&mut self.members, member_index)
    }

    fn restart(&mut self, member_index: usize) -> Result<(), String> {
        if member_index >= self.members.len() {
            return restart_member(&mut self.members, member_index);
        }
        // A member with a data directory restarts from it and ignores the --initial-* flags;
        // "existing" says what this is, and also covers a member killed before it wrote its
        // first WAL record (it then joins the running cluster instead of bootstrapping a new
        // one).
        let args = self.member_args(member_index, "existing");
        self.members[member_index].set_args(args);
        restart_member(&mut self.members, member_index)
    }

    fn check_running(&mut self) -> Result<(), String> {
        check_all_running(&mut self.members)
    }

    fn command_line(&self) -> String {
        self.first_command_line.clone()
    }

    fn stop(&mut self) {
        for (name, outcome) in terminate_all(&mut self.members, STOP_GRACE) {
            if let Err(why) = outcome {
                eprintln!("tern-perf: {name} {why}");
            }
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        super::Cluster::stop(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_etcds_banner() {
        let banner = "etcd Version: 3.4.23\nGit SHA: Not provided\nGo Version: go1.19.8\n";
        assert_eq!(parse_version(banner), Some("3.4.23".to_string()));
        assert_eq!(parse_version("something else"), None);
    }

    #[test]
    fn timings_etcd_would_refuse_are_refused_before_starting() {
        let timing = |min, heartbeat| ElectionTiming {
            timeout_ms_min: min,
            timeout_ms_max: 2 * min,
            heartbeat_ms: heartbeat,
        };
        assert_eq!(etcd_timing_flags(&ElectionTiming::DEFAULT), Ok((30, 150)));
        assert_eq!(etcd_timing_flags(&timing(12, 2)), Ok((2, 12)));
        let error = etcd_timing_flags(&timing(100, 30)).unwrap_err();
        assert!(error.contains("at least 150 ms"), "{error}");
        assert!(etcd_timing_flags(&timing(100, 0)).is_err());
        assert!(etcd_timing_flags(&timing(60_000, 100)).is_err());
    }
}
