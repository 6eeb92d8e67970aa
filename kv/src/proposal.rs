//! The payload of one client log entry: who asked (client id, sequence), what the client has
//! already received (`answered_through`, so sessions can forget old results), and the encoded
//! command bytes, copied verbatim from the request (no re-encoding on the hot path).

use crate::command::DecodeError;

/// A decoded log payload, borrowing the command bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposal<'a> {
    pub client_id: u64,
    /// Per-client request number; a retry reuses it.
    pub sequence: u64,
    /// The client has received the answers to every sequence at or below this.
    pub answered_through: u64,
    /// The encoded [`crate::Command`].
    pub command: &'a [u8],
}

/// Appends a proposal's encoding to `out`.
pub fn encode_proposal(proposal: &Proposal<'_>, out: &mut Vec<u8>) {
    todo!()
}

/// Parses a payload written by [`encode_proposal`]; never panics on bad input.
pub fn decode_proposal(bytes: &[u8]) -> Result<Proposal<'_>, DecodeError> {
    todo!()
}
