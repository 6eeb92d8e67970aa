//! Simulated client processes. Each has at most one operation outstanding, sends it to the node
//! it believes leads, follows "not leader" hints, and retries with the same sequence after a
//! timeout (possibly at another node). The history it records is what the linearizability
//! checker judges.

use super::kv::KvCommand;
use super::linearizability::{HistoryOp, RegisterAnswer, RegisterOp};
use crate::raft::rng::SeededRng;
use crate::raft::NodeId;

/// A node's answer to a client request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientReply {
    Done(RegisterAnswer),
    NotLeader(Option<NodeId>),
    /// Refused for now (backpressure, transfer in progress, proposal overtaken): try again.
    Retry,
}

/// The operation a client is waiting on.
#[derive(Clone, Debug)]
pub struct Outstanding {
    pub command: KvCommand,
    /// Index into the run's history.
    pub history_index: usize,
    /// Bumped on every resend, so a stale timeout does not trigger a second resend.
    pub attempt: u64,
}

/// How a client reads when the cluster serves lease reads (an application picks one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadPreference {
    ReadIndex,
    Lease,
    /// A coin flip per read.
    Either,
}

pub struct Client {
    pub id: u64,
    pub next_sequence: u64,
    pub leader_guess: NodeId,
    pub outstanding: Option<Outstanding>,
    /// Nine reads in ten instead of four: such a client keeps reading from the node it
    /// believes leads, which is what exposes a deposed leader serving stale reads.
    pub read_mostly: bool,
    pub read_preference: ReadPreference,
}

/// One history record and the key it touched.
#[derive(Clone, Debug)]
pub struct KeyedOp {
    pub key: u8,
    pub op: HistoryOp,
}

impl Client {
    /// A client with a profile drawn from `rng`: read-mostly or mixed, and its read preference.
    pub fn new(id: u64, leader_guess: NodeId, rng: &mut SeededRng) -> Self {
        let read_mostly = rng.chance(1, 3);
        let read_preference = match rng.range(0, 3) {
            0 => ReadPreference::ReadIndex,
            1 => ReadPreference::Lease,
            _ => ReadPreference::Either,
        };
        Self {
            id,
            next_sequence: 1,
            leader_guess,
            outstanding: None,
            read_mostly,
            read_preference,
        }
    }

    /// Whether this read uses the lease (when the cluster serves lease reads at all).
    pub fn wants_lease(&self, rng: &mut SeededRng) -> bool {
        match self.read_preference {
            ReadPreference::ReadIndex => false,
            ReadPreference::Lease => true,
            ReadPreference::Either => rng.chance(1, 2),
        }
    }

    /// Draws the next operation: mostly writes and reads on a few keys, values small so
    /// compare-and-swap often succeeds.
    pub fn next_command(&mut self, rng: &mut SeededRng, keys: u8) -> KvCommand {
        let key = rng.range(0, u64::from(keys)) as u8;
        let value = rng.range(1, 6);
        let draw = rng.range(0, 10);
        let op = match if self.read_mostly && draw > 0 {
            9
        } else {
            draw
        } {
            0..=2 => RegisterOp::Put(value),
            3 => RegisterOp::Delete,
            4..=5 => RegisterOp::CompareAndSwap {
                expected: rng.range(1, 6),
                new: value,
            },
            _ => RegisterOp::Get,
        };
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        KvCommand {
            client: self.id,
            sequence,
            key,
            op,
        }
    }
}
