//! What a client asks of the store, and its compact binary encoding.
//!
//! The encoding is tern's own (a tag byte, then length-prefixed fields, little endian), small
//! and fast to check. `decode` never panics: every length is checked against the buffer before
//! it is used, and trailing bytes are an error.

use bytes::Bytes;

/// One request to the key-value store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Set `key` to `value`.
    Put { key: Bytes, value: Bytes },
    /// Read `key`.
    Get { key: Bytes },
    /// Remove `key` (succeeds whether or not it existed; the result says which).
    Delete { key: Bytes },
    /// Set `key` to `new_value` only if its current value is `expected`
    /// (`None`: only if the key is absent).
    CompareAndSwap {
        key: Bytes,
        expected: Option<Bytes>,
        new_value: Bytes,
    },
    /// Remove `key` only if its current value is `expected`.
    CompareAndDelete { key: Bytes, expected: Bytes },
    /// Read the keys in `start..end` in key order (`end: None` means no upper bound), at most
    /// `limit` pairs. A prefix scan is `start = prefix, end = prefix_end(prefix)`.
    Range {
        start: Bytes,
        end: Option<Bytes>,
        limit: u32,
    },
    /// Several commands applied atomically, in order, in one log entry; one result each.
    /// A batch may not contain a batch. A compare that fails inside a batch does not stop the
    /// commands after it: each reports its own result.
    Batch(Vec<Command>),
}

impl Command {
    /// True when the command only reads (`Get`, `Range`, or a batch of only those): it is
    /// served through the read path (ReadIndex, lease or local) instead of the log.
    pub fn is_read_only(&self) -> bool {
        todo!()
    }

    /// Appends the command's encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        todo!()
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Parses an encoding written by [`Command::encode`]; any other input is an error that says
    /// what was wrong and at which byte offset.
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        todo!()
    }
}

/// The smallest key greater than every key that starts with `prefix`, or `None` when there is
/// none (the prefix is empty or all 0xff): the exclusive end of a prefix scan.
pub fn prefix_end(prefix: &[u8]) -> Option<Bytes> {
    todo!()
}

/// Why bytes did not decode as a command, result, proposal or snapshot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what} at byte {offset}: {detail}")]
pub struct DecodeError {
    /// What was being decoded ("command", "result", "proposal", ...).
    pub what: &'static str,
    /// Where in the input the problem was found.
    pub offset: usize,
    /// What was wrong, e.g. "unknown command tag 9" or "key length 70000 exceeds the 12 bytes left".
    pub detail: String,
}
