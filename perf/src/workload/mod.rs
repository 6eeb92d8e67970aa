//! What the clients do: the workload's shape ([`spec`]), the YCSB core workloads ([`ycsb`]),
//! key choice ([`keys`]), a seedable generator ([`rng`]) and the per-client operation stream
//! ([`generator`]).

pub mod generator;
pub mod keys;
pub mod rng;
pub mod spec;
pub mod ycsb;

pub use generator::{key_name, value_bytes, InsertCounter, Op, OpGenerator, OpKind};
pub use spec::{KeyDistribution, LoopKind, OpMix, ReadConsistency, WorkloadSpec};
