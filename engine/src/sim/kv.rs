//! The simulated replicated state machine: a tiny key-value map whose commands carry
//! (client id, sequence), so a command retried after a timeout takes effect exactly once.

use super::linearizability::{apply, RegisterAnswer, RegisterOp};
use bytes::Bytes;
use std::collections::BTreeMap;

/// A client's request: which key, what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvCommand {
    pub client: u64,
    pub sequence: u64,
    pub key: u8,
    pub op: RegisterOp,
}

/// Encoded size: client (8) + sequence (8) + key (1) + tag (1) + two values (16).
const COMMAND_BYTES: usize = 34;

impl KvCommand {
    pub fn encode(&self) -> Bytes {
        let (tag, first, second) = match self.op {
            RegisterOp::Put(value) => (1u8, value, 0),
            RegisterOp::Delete => (2, 0, 0),
            RegisterOp::CompareAndSwap { expected, new } => (3, expected, new),
            RegisterOp::Get => (4, 0, 0),
        };
        let mut bytes = Vec::with_capacity(COMMAND_BYTES);
        bytes.extend_from_slice(&self.client.to_le_bytes());
        bytes.extend_from_slice(&self.sequence.to_le_bytes());
        bytes.push(self.key);
        bytes.push(tag);
        bytes.extend_from_slice(&first.to_le_bytes());
        bytes.extend_from_slice(&second.to_le_bytes());
        Bytes::from(bytes)
    }

    /// `None` for bytes this module did not encode (never panics on bad input).
    pub fn decode(bytes: &[u8]) -> Option<KvCommand> {
        if bytes.len() != COMMAND_BYTES {
            return None;
        }
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        let (first, second) = (word(18), word(26));
        let op = match bytes[17] {
            1 => RegisterOp::Put(first),
            2 => RegisterOp::Delete,
            3 => RegisterOp::CompareAndSwap {
                expected: first,
                new: second,
            },
            4 => RegisterOp::Get,
            _ => return None,
        };
        Some(KvCommand {
            client: word(0),
            sequence: word(8),
            key: bytes[16],
            op,
        })
    }
}

/// One node's applied state: the map and, per client, the last sequence applied and its answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStateMachine {
    values: BTreeMap<u8, u64>,
    sessions: BTreeMap<u64, (u64, RegisterAnswer)>,
}

impl KvStateMachine {
    /// Applies a command once: a retry of the client's latest sequence gets the first answer
    /// back; an older sequence (the client moved on, so it already has its answer) gets `None`.
    pub fn apply(&mut self, command: &KvCommand) -> Option<RegisterAnswer> {
        if let Some(&(last_sequence, answer)) = self.sessions.get(&command.client) {
            if command.sequence == last_sequence {
                return Some(answer);
            }
            if command.sequence < last_sequence {
                return None;
            }
        }
        let current = self.values.get(&command.key).copied();
        let (next, answer) = apply(command.op, current);
        match next {
            Some(value) => self.values.insert(command.key, value),
            None => self.values.remove(&command.key),
        };
        self.sessions
            .insert(command.client, (command.sequence, answer));
        Some(answer)
    }

    pub fn get(&self, key: u8) -> Option<u64> {
        self.values.get(&key).copied()
    }
}
