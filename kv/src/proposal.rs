//! The payload of one client log entry: who asked (client id, sequence), what the client has
//! already received (`answered_through`, so sessions can forget old results), and the encoded
//! command bytes, copied verbatim from the request (no re-encoding on the hot path).

use crate::command::DecodeError;
use crate::wire::{put_u64, Reader};

/// The first byte of every proposal: identifies the format and its version, so a payload from
/// another format (or a future version) is refused instead of misread.
pub const PROPOSAL_VERSION: u8 = 0xA1;

/// Bytes before the command: version, client id, sequence, answered-through.
pub const PROPOSAL_HEADER_BYTES: usize = 1 + 8 + 8 + 8;

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
///
/// Layout: [`PROPOSAL_VERSION`], `client_id`, `sequence`, `answered_through` (each `u64` little
/// endian), then the command bytes verbatim to the end of the payload (no length prefix).
pub fn encode_proposal(proposal: &Proposal<'_>, out: &mut Vec<u8>) {
    out.reserve(PROPOSAL_HEADER_BYTES + proposal.command.len());
    out.push(PROPOSAL_VERSION);
    put_u64(out, proposal.client_id);
    put_u64(out, proposal.sequence);
    put_u64(out, proposal.answered_through);
    out.extend_from_slice(proposal.command);
}

/// Parses a payload written by [`encode_proposal`]; never panics on bad input.
/// The command bytes are not decoded here (the state machine does that, so a bad command is
/// answered to its client rather than dropped).
pub fn decode_proposal(bytes: &[u8]) -> Result<Proposal<'_>, DecodeError> {
    let mut reader = Reader::new(bytes, "proposal");
    let version = reader.u8("version byte")?;
    if version != PROPOSAL_VERSION {
        return Err(reader.error_at(
            0,
            format!(
                "version byte is {version:#04x}, expected {PROPOSAL_VERSION:#04x}: not a tern proposal of this version"
            ),
        ));
    }
    let client_id = reader.u64("client id")?;
    let sequence = reader.u64("sequence")?;
    let answered_through = reader.u64("answered_through")?;
    let command = reader.take(reader.remaining(), "command")?;
    Ok(Proposal {
        client_id,
        sequence,
        answered_through,
        command,
    })
}
