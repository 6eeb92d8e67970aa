//! Per-node durable storage as the simulator models it: the newest durable snapshot (metadata
//! and state machine), the WAL after it, and the disk queue of writes still in flight. A write
//! becomes durable only when its simulated disk delay has passed; a crash loses every write
//! still queued. Writes complete in order, snapshots included, like one WAL.

use super::kv::KvStateMachine;
use crate::raft::{Entry, HardState, LogIndex, Message, Recovered, SnapshotMeta};
use std::collections::VecDeque;

/// A snapshot as a node's disk holds it: the core's metadata and the state machine.
#[derive(Clone, Debug)]
pub struct SimSnapshot {
    pub meta: SnapshotMeta,
    pub kv: KvStateMachine,
}

/// What survives a crash.
#[derive(Clone, Debug, Default)]
pub struct DurableStorage {
    pub hard_state: HardState,
    pub snapshot: Option<SimSnapshot>,
    /// Contiguous from the snapshot's index + 1 (from 1 without a snapshot).
    pub log: Vec<Entry>,
}

/// The persist half of one Ready (steps 2 and 3 of its execution order), or a snapshot the
/// node took of its own applied state, waiting for the disk.
#[derive(Clone, Debug, Default)]
pub struct PendingPersist {
    /// A snapshot installed from the leader: it replaces the whole log.
    pub installed: Option<SimSnapshot>,
    pub truncate_from: Option<LogIndex>,
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
    /// Sent only once this write is durable.
    pub messages_after_persist: Vec<Message>,
    /// A snapshot of the node's own applied state: once durable, the log before it goes.
    pub compaction: Option<SimSnapshot>,
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
    /// The index the durable log starts after (the snapshot's, or 0).
    pub fn base_index(&self) -> LogIndex {
        self.snapshot
            .as_ref()
            .map_or(0, |snapshot| snapshot.meta.index)
    }

    /// The index of the last durable entry (or of the snapshot when the log after it is empty).
    pub fn last_index(&self) -> LogIndex {
        self.base_index() + self.log.len() as LogIndex
    }

    /// The term of the last durable entry (or of the snapshot), if any.
    pub fn last_term(&self) -> Option<u64> {
        match (self.log.last(), &self.snapshot) {
            (Some(entry), _) => Some(entry.term),
            (None, Some(snapshot)) => Some(snapshot.meta.term),
            (None, None) => None,
        }
    }

    /// Makes one pending write durable. Fails, changing nothing, when the entries would leave a
    /// gap (the core asked for something impossible).
    pub fn write(&mut self, persist: &PendingPersist) -> Result<(), String> {
        let (base, mut length) = match &persist.installed {
            Some(snapshot) => (snapshot.meta.index, 0),
            None => (self.base_index(), self.log.len() as LogIndex),
        };
        if let Some(from) = persist.truncate_from {
            length = length.min(from.saturating_sub(1).saturating_sub(base));
        }
        for (offset, entry) in persist.entries.iter().enumerate() {
            if entry.index != base + length + 1 + offset as LogIndex {
                return Err(format!(
                    "Ready entries are not contiguous with the durable log: entry {} follows \
                     index {}",
                    entry.index,
                    base + length + offset as LogIndex
                ));
            }
        }
        if let Some(snapshot) = &persist.installed {
            self.snapshot = Some(snapshot.clone());
            self.log.clear();
        }
        self.log.truncate(length as usize);
        self.log.extend(persist.entries.iter().cloned());
        if let Some(hard_state) = persist.hard_state {
            self.hard_state = hard_state;
        }
        if let Some(snapshot) = &persist.compaction {
            self.compact(snapshot);
        }
        Ok(())
    }

    /// The node's own snapshot is durable: it becomes the base and the log through it goes
    /// (unless a newer snapshot is already the base).
    fn compact(&mut self, snapshot: &SimSnapshot) {
        let base = self.base_index();
        if snapshot.meta.index <= base {
            return;
        }
        let drop = ((snapshot.meta.index - base) as usize).min(self.log.len());
        self.log.drain(..drop);
        self.snapshot = Some(snapshot.clone());
    }

    pub fn recovered(&self) -> Recovered {
        Recovered {
            hard_state: self.hard_state,
            snapshot: self.snapshot.as_ref().map(|snapshot| snapshot.meta.clone()),
            entries: self.log.clone(),
        }
    }
}
