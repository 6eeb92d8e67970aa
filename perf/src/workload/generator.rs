//! The operation stream of one client: deterministic for a seed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::spec::WorkloadSpec;

/// The kinds of operation, for per-kind latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    Read,
    Update,
    Insert,
    Scan,
    ReadModifyWrite,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Update => "update",
            OpKind::Insert => "insert",
            OpKind::Scan => "scan",
            OpKind::ReadModifyWrite => "read_modify_write",
        }
    }
}

/// One operation, with its key (and value for writes) already made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Read { key: Vec<u8> },
    Update { key: Vec<u8>, value: Vec<u8> },
    Insert { key: Vec<u8>, value: Vec<u8> },
    /// Up to `count` keys from `start` (inclusive), in key order.
    Scan { start: Vec<u8>, count: usize },
    ReadModifyWrite { key: Vec<u8>, value: Vec<u8> },
}

impl Op {
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Read { .. } => OpKind::Read,
            Op::Update { .. } => OpKind::Update,
            Op::Insert { .. } => OpKind::Insert,
            Op::Scan { .. } => OpKind::Scan,
            Op::ReadModifyWrite { .. } => OpKind::ReadModifyWrite,
        }
    }
}

/// The name of key `index`: fixed width so that key order is index order (scans).
pub fn key_name(index: u64) -> Vec<u8> {
    format!("perf/{index:012}").into_bytes()
}

/// A value of exactly `bytes` bytes, varying with `stamp` (not all zeros, not compressible to
/// nothing; neither system compresses, but a real value is not constant either).
pub fn value_bytes(stamp: u64, bytes: usize) -> Vec<u8> {
    todo!("value_bytes {stamp} {bytes}")
}

/// The next key index to insert, shared by all clients of a run (inserts extend the key space;
/// the `Latest` distribution follows it).
#[derive(Clone, Debug)]
pub struct InsertCounter(Arc<AtomicU64>);

impl InsertCounter {
    /// Starts after the loaded key space.
    pub fn new(key_space: u64) -> InsertCounter {
        InsertCounter(Arc::new(AtomicU64::new(key_space)))
    }

    /// Takes the next index to insert.
    pub fn take(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }

    /// Keys that exist (or are being inserted) now: 0 .. this.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One client's generator.
pub struct OpGenerator {
    // implementation-defined fields
}

impl OpGenerator {
    /// Client `client_index`'s stream for `spec` (seeded with `spec.seed + client_index`).
    pub fn new(spec: &WorkloadSpec, client_index: usize, inserts: InsertCounter) -> OpGenerator {
        todo!("OpGenerator::new {spec:?} {client_index} {inserts:?}")
    }

    pub fn next_op(&mut self) -> Op {
        todo!()
    }
}
