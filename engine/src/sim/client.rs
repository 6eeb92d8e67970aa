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

pub struct Client {
    pub id: u64,
    pub next_sequence: u64,
    pub leader_guess: NodeId,
    pub outstanding: Option<Outstanding>,
}

/// One history record and the key it touched.
#[derive(Clone, Debug)]
pub struct KeyedOp {
    pub key: u8,
    pub op: HistoryOp,
}

impl Client {
    pub fn new(id: u64, leader_guess: NodeId) -> Self {
        Self {
            id,
            next_sequence: 1,
            leader_guess,
            outstanding: None,
        }
    }

    /// Draws the next operation: mostly writes and reads on a few keys, values small so
    /// compare-and-swap often succeeds.
    pub fn next_command(&mut self, rng: &mut SeededRng, keys: u8) -> KvCommand {
        let key = rng.range(0, u64::from(keys)) as u8;
        let value = rng.range(1, 6);
        let op = match rng.range(0, 10) {
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
