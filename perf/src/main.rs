//! tern-perf: tern and etcd side by side.

mod driver;
mod launch;
mod metrics;
mod report;
mod system;
mod workload;

fn main() {}
