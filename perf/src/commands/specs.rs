//! Builds the workload of a point from the command line's shared flags.

use std::time::Duration;

use super::args::{CommonArgs, DistributionArg};
use crate::workload::{KeyDistribution, LoopKind, OpMix, WorkloadSpec};

/// YCSB's skew.
pub const ZIPFIAN_THETA: f64 = 0.99;
/// Longest scan when a mix has scans but no YCSB definition of its own.
pub const SCAN_LENGTH_MAX_DEFAULT: usize = 100;

/// The workload `name` with `mix` and `clients` (closed loop, or open loop at --rate with
/// `clients` as the bound on requests in flight).
pub fn spec(common: &CommonArgs, name: &str, mix: OpMix, clients: usize) -> WorkloadSpec {
    let loop_kind = match common.rate {
        Some(rate_ops_per_s) => LoopKind::Open {
            rate_ops_per_s,
            inflight_max: clients,
        },
        None => LoopKind::Closed { clients },
    };
    WorkloadSpec {
        name: name.to_string(),
        loop_kind,
        key_space: common.key_space,
        value_bytes: common.value_bytes as usize,
        distribution: match common.distribution {
            DistributionArg::Uniform => KeyDistribution::Uniform,
            DistributionArg::Zipfian => KeyDistribution::Zipfian {
                theta: ZIPFIAN_THETA,
            },
        },
        mix,
        scan_length_max: SCAN_LENGTH_MAX_DEFAULT,
        duration: Duration::from_secs_f64(common.duration_secs),
        warmup: Duration::from_secs_f64(common.warmup_secs),
        consistency: common.consistency.into(),
        seed: common.seed,
    }
}

/// Puts only.
pub fn puts() -> OpMix {
    OpMix::reads_and_updates(0)
}

/// Gets only.
pub fn gets() -> OpMix {
    OpMix::reads_and_updates(100)
}
