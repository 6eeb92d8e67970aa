//! Per-node durable storage as the simulator models it: what a node's WAL holds, and the disk
//! queue of writes still in flight. A write becomes durable only when its simulated disk delay
//! has passed; a crash loses every write still queued.

use crate::raft::{Entry, HardState, LogIndex, Message, Recovered};
use std::collections::VecDeque;

/// What survives a crash.
#[derive(Clone, Debug, Default)]
pub struct DurableStorage {
    pub hard_state: HardState,
    /// Contiguous from index 1.
    pub log: Vec<Entry>,
}

/// The persist half of one Ready (steps 2 and 3 of its execution order), waiting for the disk.
#[derive(Clone, Debug)]
pub struct PendingPersist {
    pub truncate_from: Option<LogIndex>,
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
    /// Sent only once this write is durable.
    pub messages_after_persist: Vec<Message>,
}

/// The disk of one node: writes complete in order (one queue, like a WAL).
#[derive(Debug, Default)]
pub struct Disk {
    pub durable: DurableStorage,
    pub queue: VecDeque<PendingPersist>,
    /// When the last queued write completes; later writes complete after it.
    pub busy_until_time: u64,
}

impl DurableStorage {
    /// Makes one pending write durable. Fails, changing nothing, when the entries would leave a
    /// gap (the core asked for something impossible).
    pub fn write(&mut self, persist: &PendingPersist) -> Result<(), String> {
        let mut length = self.log.len() as LogIndex;
        if let Some(from) = persist.truncate_from {
            length = length.min(from.saturating_sub(1));
        }
        for (offset, entry) in persist.entries.iter().enumerate() {
            if entry.index != length + 1 + offset as LogIndex {
                return Err(format!(
                    "Ready entries are not contiguous with the durable log: entry {} follows \
                     index {}",
                    entry.index,
                    length + offset as LogIndex
                ));
            }
        }
        self.log.truncate(length as usize);
        self.log.extend(persist.entries.iter().cloned());
        if let Some(hard_state) = persist.hard_state {
            self.hard_state = hard_state;
        }
        Ok(())
    }

    pub fn recovered(&self) -> Recovered {
        Recovered {
            hard_state: self.hard_state,
            entries: self.log.clone(),
        }
    }
}
