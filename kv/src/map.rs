//! The applied map: ordered, lock-free (crossbeam-skiplist). The apply step is its only writer;
//! any thread reads it through a [`MapReader`] without locks.

use std::sync::Arc;

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;

use crate::command::Command;
use crate::result::CommandResult;

/// The shared map. Writes go through [`crate::StateMachine`] only.
pub(crate) type SharedMap = Arc<SkipMap<Bytes, Bytes>>;

/// A read-only handle on the applied map: cheap to clone, `Send + Sync`.
///
/// A reader sees each applied command's effect whole (one key's value is replaced atomically),
/// but a read running while a batch is being applied may see part of the batch: linearizable
/// reads wait until the applied index covers their read index and are served between applies
/// on the same node only in that sense (see ARCHITECTURE.md, "Reads").
#[derive(Clone)]
pub struct MapReader {
    pub(crate) map: SharedMap,
}

impl MapReader {
    /// The value of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        todo!()
    }

    /// Pairs with keys in `start..end` (`end: None`: unbounded), at most `limit`; `more` is true
    /// when pairs were left out.
    pub fn range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: u32,
    ) -> (Vec<(Bytes, Bytes)>, bool) {
        todo!()
    }

    /// Answers a read-only command (`Get`, `Range`, or a batch of them) from the map.
    /// Anything else answers `CommandResult::Error(CommandError::Invalid)`.
    pub fn read(&self, command: &Command) -> CommandResult {
        todo!()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when the map holds no key.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
