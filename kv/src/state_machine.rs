//! Applies committed proposals to the map in log order, with exactly-once sessions.

use bytes::Bytes;

use crate::limits::Limits;
use crate::map::{MapReader, SharedMap};
use crate::result::CommandResult;
use crate::session::SessionLimits;
use crate::snapshot::SnapshotError;

/// What applying one log entry produced, for the node to route the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A client write: applied now (`duplicate: false`) or a retry answered from the session
    /// (`duplicate: true`, the map unchanged).
    Client {
        client_id: u64,
        sequence: u64,
        result: CommandResult,
        duplicate: bool,
    },
    /// The payload did not decode as a proposal: nothing changed, nobody to answer. Every
    /// replica reaches the same conclusion.
    Undecodable { reason: String },
}

/// The replicated state machine of one node.
pub struct StateMachine {
    map: SharedMap,
    applied_index: u64,
    limits: Limits,
    session_limits: SessionLimits,
    // sessions: private state chosen by the implementation
}

impl StateMachine {
    /// An empty store.
    pub fn new(limits: Limits, session_limits: SessionLimits) -> StateMachine {
        todo!()
    }

    /// A reader of the applied map for other threads.
    pub fn reader(&self) -> MapReader {
        MapReader {
            map: self.map.clone(),
        }
    }

    /// Applies the entry at `index` whose payload is an encoded [`crate::Proposal`].
    /// `index` must be `applied_index() + 1` (the node applies in order; a gap is a bug and
    /// panics). Never panics on payload contents.
    pub fn apply(&mut self, index: u64, payload: &[u8]) -> Applied {
        todo!()
    }

    /// Marks `index` applied without a client payload (a leader's no-op entry).
    pub fn apply_noop(&mut self, index: u64) {
        todo!()
    }

    /// The last applied log index (0 when nothing was applied).
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Encodes the whole state (map, sessions, applied index) with a checksum.
    pub fn snapshot(&self) -> Vec<u8> {
        todo!()
    }

    /// Rebuilds a state machine from [`StateMachine::snapshot`] output.
    pub fn restore(
        bytes: &[u8],
        limits: Limits,
        session_limits: SessionLimits,
    ) -> Result<StateMachine, SnapshotError> {
        todo!()
    }

    /// The limits commands are checked against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    #[allow(dead_code)]
    fn unused(&self) -> (&SessionLimits, Option<Bytes>) {
        (&self.session_limits, None)
    }
}
