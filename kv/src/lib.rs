//! tern's replicated state machine.
//!
//! - [`command`]: what a client asks ([`Command`]) and its compact binary encoding.
//! - [`result`]: what a command answers ([`CommandResult`]) and its encoding.
//! - [`limits`]: the named size bounds every request is checked against at the edge.
//! - [`proposal`]: the log entry payload: (client id, sequence, answered-through, command).
//! - [`map`]: the lock-free ordered applied map and [`MapReader`], usable from any thread.
//! - [`session`]: client sessions that make retried writes exactly-once.
//! - [`state_machine`]: applies committed proposals in log order; snapshot and restore.
//!
//! Nothing here does I/O or depends on another tern crate: the engine feeds committed entries in,
//! the wire crate carries encoded commands and results.

pub mod command;
pub mod limits;
pub mod map;
pub mod proposal;
pub mod result;
pub mod session;
pub mod snapshot;
pub mod state_machine;
mod wire;

pub use command::{prefix_end, Command, DecodeError};
pub use limits::{LimitError, Limits};
pub use map::MapReader;
pub use proposal::{
    decode_proposal, encode_proposal, Proposal, PROPOSAL_HEADER_BYTES, PROPOSAL_VERSION,
};
pub use result::{CommandError, CommandResult};
pub use session::SessionLimits;
pub use snapshot::{SnapshotError, SNAPSHOT_HEADER_BYTES, SNAPSHOT_MAGIC};
pub use state_machine::{Applied, SnapshotCapture, StateMachine};
