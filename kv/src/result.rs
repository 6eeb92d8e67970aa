//! What a command answers, and its encoding (same conventions as [`crate::command`]).

use bytes::Bytes;

use crate::command::DecodeError;
use crate::wire::{length_u32, put_bytes, put_option, put_u32, put_u64, Reader};

/// Tag bytes of the result variants (the first byte of an encoded result).
mod tag {
    pub const WRITTEN: u8 = 1;
    pub const VALUE: u8 = 2;
    pub const DELETED: u8 = 3;
    pub const COMPARED: u8 = 4;
    pub const RANGE: u8 = 5;
    pub const BATCH: u8 = 6;
    pub const ERROR: u8 = 7;
}

/// Tag bytes of the [`CommandError`] variants (after the `ERROR` result tag).
mod error_tag {
    pub const INVALID: u8 = 1;
    pub const TOO_LARGE: u8 = 2;
    pub const RESULT_FORGOTTEN: u8 = 3;
}

/// The fewest bytes one encoded range pair takes (two empty length-prefixed strings).
const PAIR_BYTES_MIN: usize = 8;
/// The fewest bytes one encoded result inside a batch takes (`Written`: the tag alone).
const RESULT_BYTES_MIN: usize = 1;

/// The result of one [`crate::Command`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandResult {
    /// A `Put` was applied.
    Written,
    /// A `Get`: the value, or `None` when the key is absent.
    Value(Option<Bytes>),
    /// A `Delete`: whether the key existed.
    Deleted { existed: bool },
    /// A `CompareAndSwap` or `CompareAndDelete`: whether it took effect, and when it did not,
    /// the current value (`None`: absent) so the caller can retry without another read.
    Compared {
        succeeded: bool,
        current: Option<Bytes>,
    },
    /// A `Range`: pairs in key order; `more` is true when the limit cut the range short.
    Range {
        pairs: Vec<(Bytes, Bytes)>,
        more: bool,
    },
    /// A `Batch`: one result per command, in order.
    Batch(Vec<CommandResult>),
    /// The command was refused by the state machine; nothing was changed.
    Error(CommandError),
}

/// Why the state machine refused a command. The store is unchanged by a refused command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The command bytes in the log did not decode (a client sent garbage that slipped past the
    /// edge check, or a newer client's command): refused on every replica alike.
    #[error("invalid command: {reason}")]
    Invalid { reason: String },
    /// The command breaks a size limit (see [`crate::Limits`]).
    #[error("{0}")]
    TooLarge(String),
    /// A retry of a sequence whose result the session no longer holds (older than the session's
    /// retained window, or the session expired). It was applied once; its result is gone.
    #[error("client {client_id} sequence {sequence}: result no longer retained (session window or expiry); the write was applied at most once")]
    ResultForgotten { client_id: u64, sequence: u64 },
}

impl CommandResult {
    /// Appends the result's encoding to `out`.
    ///
    /// Layout: a tag byte, then the fields as in [`crate::Command::encode`]: byte strings with a
    /// `u32` length prefix, options and booleans as a flag byte, counts as `u32`, an error as
    /// its own tag byte and fields (strings length-prefixed UTF-8, ids as `u64`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            CommandResult::Written => out.push(tag::WRITTEN),
            CommandResult::Value(value) => {
                out.push(tag::VALUE);
                put_option(out, value.as_deref());
            }
            CommandResult::Deleted { existed } => {
                out.push(tag::DELETED);
                out.push(u8::from(*existed));
            }
            CommandResult::Compared { succeeded, current } => {
                out.push(tag::COMPARED);
                out.push(u8::from(*succeeded));
                put_option(out, current.as_deref());
            }
            CommandResult::Range { pairs, more } => {
                out.push(tag::RANGE);
                put_u32(out, length_u32(pairs.len()));
                for (key, value) in pairs {
                    put_bytes(out, key);
                    put_bytes(out, value);
                }
                out.push(u8::from(*more));
            }
            CommandResult::Batch(results) => {
                out.push(tag::BATCH);
                put_u32(out, length_u32(results.len()));
                for result in results {
                    result.encode(out);
                }
            }
            CommandResult::Error(error) => {
                out.push(tag::ERROR);
                match error {
                    CommandError::Invalid { reason } => {
                        out.push(error_tag::INVALID);
                        put_bytes(out, reason.as_bytes());
                    }
                    CommandError::TooLarge(message) => {
                        out.push(error_tag::TOO_LARGE);
                        put_bytes(out, message.as_bytes());
                    }
                    CommandError::ResultForgotten {
                        client_id,
                        sequence,
                    } => {
                        out.push(error_tag::RESULT_FORGOTTEN);
                        put_u64(out, *client_id);
                        put_u64(out, *sequence);
                    }
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

    /// Parses an encoding written by [`CommandResult::encode`].
    /// Any other input is an error naming what was wrong and where; never panics.
    pub fn decode(bytes: &[u8]) -> Result<CommandResult, DecodeError> {
        let mut reader = Reader::new(bytes, "result");
        let result = decode_one(&mut reader, true)?;
        reader.finish()?;
        Ok(result)
    }
}

/// Decodes one result at the reader's position; a batch only when `batch_allowed` (a batch of
/// commands never nests, so neither do its results). Used by the snapshot decoder as well.
pub(crate) fn decode_one(
    reader: &mut Reader<'_>,
    batch_allowed: bool,
) -> Result<CommandResult, DecodeError> {
    let start = reader.offset();
    let tag = reader.u8("result tag")?;
    let result = match tag {
        tag::WRITTEN => CommandResult::Written,
        tag::VALUE => CommandResult::Value(reader.option("value")?),
        tag::DELETED => CommandResult::Deleted {
            existed: reader.bool("existed")?,
        },
        tag::COMPARED => CommandResult::Compared {
            succeeded: reader.bool("succeeded")?,
            current: reader.option("current value")?,
        },
        tag::RANGE => {
            let count = reader.count("range pair", PAIR_BYTES_MIN)?;
            let mut pairs = Vec::with_capacity(count);
            for _ in 0..count {
                let key = reader.owned("range key")?;
                let value = reader.owned("range value")?;
                pairs.push((key, value));
            }
            CommandResult::Range {
                pairs,
                more: reader.bool("more")?,
            }
        }
        tag::BATCH if batch_allowed => {
            let count = reader.count("batch result", RESULT_BYTES_MIN)?;
            let mut results = Vec::with_capacity(count);
            for _ in 0..count {
                results.push(decode_one(reader, false)?);
            }
            CommandResult::Batch(results)
        }
        tag::BATCH => {
            return Err(reader.error_at(
                start,
                "a batch result inside a batch result; batches may not nest".to_string(),
            ))
        }
        tag::ERROR => CommandResult::Error(decode_error(reader)?),
        other => return Err(reader.error_at(start, format!("unknown result tag {other}"))),
    };
    Ok(result)
}

/// Decodes a [`CommandError`] after the `ERROR` result tag.
fn decode_error(reader: &mut Reader<'_>) -> Result<CommandError, DecodeError> {
    let start = reader.offset();
    let error = match reader.u8("error tag")? {
        error_tag::INVALID => CommandError::Invalid {
            reason: text(reader, "invalid-command reason")?,
        },
        error_tag::TOO_LARGE => CommandError::TooLarge(text(reader, "too-large message")?),
        error_tag::RESULT_FORGOTTEN => CommandError::ResultForgotten {
            client_id: reader.u64("client id")?,
            sequence: reader.u64("sequence")?,
        },
        other => return Err(reader.error_at(start, format!("unknown error tag {other}"))),
    };
    Ok(error)
}

/// A length-prefixed UTF-8 string.
fn text(reader: &mut Reader<'_>, field: &str) -> Result<String, DecodeError> {
    let start = reader.offset();
    let bytes = reader.bytes(field)?;
    String::from_utf8(bytes.to_vec())
        .map_err(|error| reader.error_at(start, format!("{field} is not UTF-8: {error}")))
}
