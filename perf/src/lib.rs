//! tern-perf: tern and etcd side by side on one machine, in one run, with one workload.
//! See perf/README.md for what is measured and why it is fair.

pub mod commands;
pub mod driver;
pub mod launch;
pub mod metrics;
pub mod report;
pub mod system;
pub mod workload;
