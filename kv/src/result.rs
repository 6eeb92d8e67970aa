//! What a command answers, and its encoding (same conventions as [`crate::command`]).

use bytes::Bytes;

use crate::command::DecodeError;

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
    pub fn encode(&self, out: &mut Vec<u8>) {
        todo!()
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Parses an encoding written by [`CommandResult::encode`].
    pub fn decode(bytes: &[u8]) -> Result<CommandResult, DecodeError> {
        todo!()
    }
}
