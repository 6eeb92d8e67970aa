//! Command-line arguments shared by the subcommands.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::launch::ElectionTiming;
use crate::system::System;
use crate::workload::ReadConsistency;

/// Systems a suite can add beside tern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Other {
    /// Debian's etcd 3.4 (perf/install-etcd.sh installs it).
    Etcd,
}

/// Key choice on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DistributionArg {
    Uniform,
    /// Zipfian, theta 0.99 (YCSB's skew), hot keys scattered.
    Zipfian,
}

/// Read consistency on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConsistencyArg {
    /// Quorum-confirmed reads (tern ReadIndex; etcd's default).
    Linearizable,
    /// tern only: leader lease, no quorum round trip (etcd runs are skipped).
    Lease,
    /// Any member answers from its own state (may be stale).
    Serializable,
}

impl From<ConsistencyArg> for ReadConsistency {
    fn from(value: ConsistencyArg) -> ReadConsistency {
        match value {
            ConsistencyArg::Linearizable => ReadConsistency::Linearizable,
            ConsistencyArg::Lease => ReadConsistency::Lease,
            ConsistencyArg::Serializable => ReadConsistency::Serializable,
        }
    }
}

/// Flags every subcommand takes.
#[derive(Args, Clone, Debug)]
pub struct CommonArgs {
    /// Also run this system, side by side with tern, interleaved run by run.
    ///
    /// Without it only tern runs. etcd must be installed: perf/install-etcd.sh.
    #[arg(long, value_enum, value_name = "SYSTEM")]
    pub with: Option<Other>,

    /// Measured seconds per run (after the warm-up).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub duration_secs: f64,

    /// Unmeasured warm-up seconds before each run.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub warmup_secs: f64,

    /// Runs of every point per system. The table shows the median and the min-max spread;
    /// systems alternate which goes first from one repeat to the next.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=50))]
    pub repeats: u32,

    /// Keys loaded before the runs (perf/000000000000 ...).
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub key_space: u64,

    /// Bytes per written value.
    #[arg(long, value_name = "BYTES", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub value_bytes: u64,

    /// How keys are chosen (YCSB workloads use their own).
    #[arg(long, value_enum, default_value_t = DistributionArg::Uniform)]
    pub distribution: DistributionArg,

    /// How reads are served.
    #[arg(long, value_enum, default_value_t = ConsistencyArg::Linearizable)]
    pub consistency: ConsistencyArg,

    /// Open loop: start requests at this fixed total rate (ops/s) instead of the closed loop's
    /// one request per client; the client count then bounds requests in flight.
    #[arg(long, value_name = "OPS_PER_S")]
    pub rate: Option<u64>,

    /// Shortest election timeout (ms) of both systems (etcd takes it as --election-timeout,
    /// and draws from [T, 2T)).
    #[arg(long, value_name = "MS", default_value_t = ElectionTiming::DEFAULT.timeout_ms_min)]
    pub election_timeout_ms_min: u64,

    /// Longest election timeout (ms) of tern.
    #[arg(long, value_name = "MS", default_value_t = ElectionTiming::DEFAULT.timeout_ms_max)]
    pub election_timeout_ms_max: u64,

    /// Heartbeat interval (ms) of both systems.
    #[arg(long, value_name = "MS", default_value_t = ElectionTiming::DEFAULT.heartbeat_ms)]
    pub heartbeat_ms: u64,

    /// Where results go: <OUT>/<subcommand>/ gets results.json, summary.txt and the plots.
    /// Default: perf/results in the source tree.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Seed of the workload generators (runs are repeatable for a seed).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl CommonArgs {
    /// tern first, then the other system if asked for.
    pub fn systems(&self) -> Vec<System> {
        let mut systems = vec![System::Tern];
        if self.with == Some(Other::Etcd) {
            systems.push(System::Etcd);
        }
        systems
    }

    pub fn timing(&self) -> ElectionTiming {
        ElectionTiming {
            timeout_ms_min: self.election_timeout_ms_min,
            timeout_ms_max: self.election_timeout_ms_max,
            heartbeat_ms: self.heartbeat_ms,
        }
    }

    /// The results directory of `suite`.
    pub fn out_dir(&self, suite: &str) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/results")))
            .join(suite)
    }

    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.duration_secs > 0.0 && self.duration_secs <= 3600.0) {
            return Err(format!(
                "--duration-secs {} is out of range: use more than 0 and at most 3600",
                self.duration_secs
            ));
        }
        if !(self.warmup_secs >= 0.0 && self.warmup_secs <= 600.0) {
            return Err(format!(
                "--warmup-secs {} is out of range: use 0 to 600",
                self.warmup_secs
            ));
        }
        if self.election_timeout_ms_max <= self.election_timeout_ms_min {
            return Err(format!(
                "--election-timeout-ms-max ({}) must be above --election-timeout-ms-min ({})",
                self.election_timeout_ms_max, self.election_timeout_ms_min
            ));
        }
        if self.heartbeat_ms == 0 || self.heartbeat_ms * 5 > self.election_timeout_ms_min {
            return Err(format!(
                "--heartbeat-ms {} must be from 1 to a fifth of --election-timeout-ms-min ({}): \
                 etcd refuses anything closer, and tern would see needless elections",
                self.heartbeat_ms, self.election_timeout_ms_min
            ));
        }
        if self.rate == Some(0) {
            return Err("--rate must be at least 1 op/s".to_string());
        }
        Ok(())
    }
}
