//! Cluster launchers: real server processes on loopback, one data directory each, fsync on,
//! the same election timing for both systems where the two are comparable.

pub mod etcd;
mod etcd_certs;
mod members;
mod ready;
pub mod tern;
mod tern_binary;
pub mod throttle;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::driver::Driver;
use crate::system::System;

/// Election timing, in the units both systems take.
///
/// tern draws each election timeout uniformly from `timeout_ms_min ..= timeout_ms_max`;
/// etcd takes one `--election-timeout` T and draws from `T .. 2T`, so etcd gets
/// `timeout_ms_min` (its range then starts at the same value; see perf/README.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionTiming {
    pub timeout_ms_min: u64,
    pub timeout_ms_max: u64,
    pub heartbeat_ms: u64,
}

impl ElectionTiming {
    /// tern's defaults (150-300 ms, heartbeat 30 ms).
    pub const DEFAULT: ElectionTiming = ElectionTiming {
        timeout_ms_min: 150,
        timeout_ms_max: 300,
        heartbeat_ms: 30,
    };

    /// "150-300 ms".
    pub fn label(&self) -> String {
        format!("{}-{} ms", self.timeout_ms_min, self.timeout_ms_max)
    }
}

/// What to launch.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// 3, 5, 7, 9 or 11 (any count from 1 is accepted).
    pub nodes: usize,
    pub timing: ElectionTiming,
    /// Data directories, certificates and logs go under here (the caller removes it).
    pub base_dir: PathBuf,
    /// Servers log at debug (tern) or info (etcd) instead of warn: for finding out why a
    /// trial was slow, with the logs kept (`election --keep-logs`).
    pub verbose_logs: bool,
}

/// A running cluster of either system.
pub trait Cluster: Send {
    fn system(&self) -> System;

    fn nodes(&self) -> usize;

    /// The server process ids, member index order; `None` for a member not running.
    fn server_pids(&self) -> Vec<Option<u32>>;

    /// A driver connected to this cluster's running members.
    fn connect(&self) -> Result<Box<dyn Driver>, String>;

    /// Waits until the cluster has a leader that commits a write, or fails after `timeout`
    /// with the members' log tails.
    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String>;

    /// SIGKILL to member `member_index` (a crash: no cleanup), then reaps it.
    fn kill(&mut self, member_index: usize) -> Result<(), String>;

    /// Starts a killed member again on its old data directory and addresses.
    fn restart(&mut self, member_index: usize) -> Result<(), String>;

    /// An error naming the member (and its log's tail) if one that should run has exited.
    fn check_running(&mut self) -> Result<(), String>;

    /// The command line that started member 0, for the results file.
    fn command_line(&self) -> String;

    /// SIGTERM to all, then SIGKILL after a grace period. Drop does the same.
    fn stop(&mut self);
}

/// Starts a cluster of `system` (an error that says what to do if etcd is not installed).
pub fn launch(system: System, spec: &ClusterSpec) -> Result<Box<dyn Cluster>, String> {
    match system {
        System::Tern => Ok(Box::new(tern::TernCluster::start(spec)?)),
        System::Etcd => Ok(Box::new(etcd::EtcdCluster::start(spec)?)),
    }
}
