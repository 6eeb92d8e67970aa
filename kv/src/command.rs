//! What a client asks of the store, and its compact binary encoding.
//!
//! The encoding is tern's own (a tag byte, then length-prefixed fields, little endian), small
//! and fast to check. `decode` never panics: every length is checked against the buffer before
//! it is used, and trailing bytes are an error.

use bytes::Bytes;

use crate::wire::{put_bytes, put_option, put_u32, Reader};

/// Tag bytes of the command variants (the first byte of an encoded command).
mod tag {
    pub const PUT: u8 = 1;
    pub const GET: u8 = 2;
    pub const DELETE: u8 = 3;
    pub const COMPARE_AND_SWAP: u8 = 4;
    pub const COMPARE_AND_DELETE: u8 = 5;
    pub const RANGE: u8 = 6;
    pub const BATCH: u8 = 7;
}

/// The fewest bytes one encoded command inside a batch takes (a `Get` of an empty key: tag and
/// length prefix); bounds the allocation for a batch's declared count.
const COMMAND_BYTES_MIN: usize = 5;

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
        match self {
            Command::Get { .. } | Command::Range { .. } => true,
            Command::Batch(commands) => commands.iter().all(Command::is_read_only),
            Command::Put { .. }
            | Command::Delete { .. }
            | Command::CompareAndSwap { .. }
            | Command::CompareAndDelete { .. } => false,
        }
    }

    /// The variant's name, for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Put { .. } => "Put",
            Command::Get { .. } => "Get",
            Command::Delete { .. } => "Delete",
            Command::CompareAndSwap { .. } => "CompareAndSwap",
            Command::CompareAndDelete { .. } => "CompareAndDelete",
            Command::Range { .. } => "Range",
            Command::Batch(_) => "Batch",
        }
    }

    /// Appends the command's encoding to `out`.
    ///
    /// Layout: a tag byte, then the fields in declaration order: byte strings as a `u32` little
    /// endian length and the bytes, options as a flag byte (0 absent, 1 present) followed by the
    /// value when present, `limit` as a `u32`, a batch as a `u32` count and the commands.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Command::Put { key, value } => {
                out.push(tag::PUT);
                put_bytes(out, key);
                put_bytes(out, value);
            }
            Command::Get { key } => {
                out.push(tag::GET);
                put_bytes(out, key);
            }
            Command::Delete { key } => {
                out.push(tag::DELETE);
                put_bytes(out, key);
            }
            Command::CompareAndSwap {
                key,
                expected,
                new_value,
            } => {
                out.push(tag::COMPARE_AND_SWAP);
                put_bytes(out, key);
                put_option(out, expected.as_deref());
                put_bytes(out, new_value);
            }
            Command::CompareAndDelete { key, expected } => {
                out.push(tag::COMPARE_AND_DELETE);
                put_bytes(out, key);
                put_bytes(out, expected);
            }
            Command::Range { start, end, limit } => {
                out.push(tag::RANGE);
                put_bytes(out, start);
                put_option(out, end.as_deref());
                put_u32(out, *limit);
            }
            Command::Batch(commands) => {
                out.push(tag::BATCH);
                put_u32(out, crate::wire::length_u32(commands.len()));
                for command in commands {
                    command.encode(out);
                }
            }
        }
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
        let mut reader = Reader::new(bytes, "command");
        let command = decode_one(&mut reader, true)?;
        reader.finish()?;
        Ok(command)
    }
}

/// The smallest key greater than every key that starts with `prefix`, or `None` when there is
/// none (the prefix is empty or all 0xff): the exclusive end of a prefix scan.
pub fn prefix_end(prefix: &[u8]) -> Option<Bytes> {
    // Drop trailing 0xff bytes (no greater byte exists at that position), then increment the
    // last remaining byte: every key starting with `prefix` sorts below the result.
    let keep = prefix.iter().rposition(|&byte| byte != 0xff)?;
    let mut end = prefix[..=keep].to_vec();
    end[keep] += 1;
    Some(Bytes::from(end))
}

/// Decodes one command at the reader's position; a batch only when `batch_allowed` (a batch
/// may not contain a batch).
fn decode_one(reader: &mut Reader<'_>, batch_allowed: bool) -> Result<Command, DecodeError> {
    let start = reader.offset();
    let tag = reader.u8("command tag")?;
    let command = match tag {
        tag::PUT => Command::Put {
            key: reader.owned("key")?,
            value: reader.owned("value")?,
        },
        tag::GET => Command::Get {
            key: reader.owned("key")?,
        },
        tag::DELETE => Command::Delete {
            key: reader.owned("key")?,
        },
        tag::COMPARE_AND_SWAP => Command::CompareAndSwap {
            key: reader.owned("key")?,
            expected: reader.option("expected value")?,
            new_value: reader.owned("new value")?,
        },
        tag::COMPARE_AND_DELETE => Command::CompareAndDelete {
            key: reader.owned("key")?,
            expected: reader.owned("expected value")?,
        },
        tag::RANGE => Command::Range {
            start: reader.owned("range start")?,
            end: reader.option("range end")?,
            limit: reader.u32("range limit")?,
        },
        tag::BATCH if batch_allowed => {
            let count = reader.count("batch command", COMMAND_BYTES_MIN)?;
            let mut commands = Vec::with_capacity(count);
            for _ in 0..count {
                commands.push(decode_one(reader, false)?);
            }
            Command::Batch(commands)
        }
        tag::BATCH => {
            return Err(reader.error_at(
                start,
                "a batch inside a batch; batches may not nest".to_string(),
            ))
        }
        other => {
            return Err(reader.error_at(start, format!("unknown command tag {other}")));
        }
    };
    Ok(command)
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
