//! How a client batch's reads are served: which path (local or through the leader's read
//! index) its consistency asks for, with `ServerDefault` resolved to the node's `read_mode`.

use tern_net::message::ArchivedReadConsistency;

use super::ReadMode;
use crate::raft::ReadConsistency;

/// The path a read takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadPath {
    /// Answered at once from this node's applied map (may be stale, never torn).
    Local,
    /// Answered from the applied map once the leader confirmed a read index (ReadIndex or
    /// lease) and the map covers it.
    Leader(ReadConsistency),
}

/// The path for a batch that asked for `consistency` on a node configured with `default`.
pub(crate) fn read_path(consistency: &ArchivedReadConsistency, default: ReadMode) -> ReadPath {
    let mode = match consistency {
        ArchivedReadConsistency::ServerDefault => default,
        ArchivedReadConsistency::Linearizable => ReadMode::Linearizable,
        ArchivedReadConsistency::Lease => ReadMode::Lease,
        ArchivedReadConsistency::Serializable => ReadMode::Serializable,
    };
    match mode {
        ReadMode::Linearizable => ReadPath::Leader(ReadConsistency::ReadIndex),
        ReadMode::Lease => ReadPath::Leader(ReadConsistency::Lease),
        ReadMode::Serializable => ReadPath::Local,
    }
}
