//! The applied map: ordered, lock-free (crossbeam-skiplist). The apply step is its only writer;
//! any thread reads it through a [`MapReader`] without locks.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;

use crate::command::Command;
use crate::result::{CommandError, CommandResult};

/// The shared map. Writes go through [`crate::StateMachine`] only.
pub(crate) type SharedMap = Arc<SkipMap<Bytes, Bytes>>;

/// Most pairs a range result preallocates room for; larger results grow as they fill.
const RANGE_PREALLOCATE_PAIRS_MAX: usize = 1024;

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
        self.map.get(key).map(|entry| entry.value().clone())
    }

    /// Pairs with keys in `start..end` (`end: None`: unbounded), at most `limit`; `more` is true
    /// when pairs were left out.
    pub fn range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: u32,
    ) -> (Vec<(Bytes, Bytes)>, bool) {
        if let Some(end) = end {
            if start >= end {
                // An empty (or inverted) interval holds nothing; the skiplist is not asked.
                return (Vec::new(), false);
            }
        }
        let end_bound = end.map_or(Bound::Unbounded, Bound::Excluded);
        let mut entries = self
            .map
            .range::<[u8], _>((Bound::Included(start), end_bound));
        // Allocate for what is there at most, not for what was asked (`limit` is a client value).
        let mut pairs = Vec::with_capacity((limit as usize).min(RANGE_PREALLOCATE_PAIRS_MAX));
        for entry in entries.by_ref().take(limit as usize) {
            pairs.push((entry.key().clone(), entry.value().clone()));
        }
        let more = entries.next().is_some();
        (pairs, more)
    }

    /// Answers a read-only command (`Get`, `Range`, or a batch of them) from the map.
    /// Anything else answers `CommandResult::Error(CommandError::Invalid)`.
    pub fn read(&self, command: &Command) -> CommandResult {
        match command {
            Command::Batch(commands) if command.is_read_only() => {
                CommandResult::Batch(commands.iter().map(|inner| self.read(inner)).collect())
            }
            Command::Get { key } => CommandResult::Value(self.get(key)),
            Command::Range { start, end, limit } => {
                let (pairs, more) = self.range(start, end.as_deref(), *limit);
                CommandResult::Range { pairs, more }
            }
            other => CommandResult::Error(CommandError::Invalid {
                reason: format!(
                    "{} is not read-only; writes go through the log, not the read path",
                    other.name()
                ),
            }),
        }
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
