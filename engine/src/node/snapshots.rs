//! The node's side of snapshots (the core handles only their metadata, raft/snapshot.rs):
//! - taking one every `snapshot_entries` applied entries: the Raft executor captures the state
//!   at exactly one applied index by reference (`StateMachine::capture`: a reference count per
//!   key, no byte copies); a helper thread encodes it, writes the file and syncs it, so the
//!   loop neither copies the state nor waits for the disk; once it is durable the core's log
//!   and the WAL are compacted through it;
//! - sending the newest file to a follower the core asks to (`InstallSnapshot`): read from the
//!   file in `SNAPSHOT_CHUNK_BYTES` pieces (one piece in memory at a time) and sent over the
//!   peer link, waiting for room in its bounded send queue, then the `InstallSnapshot` message
//!   itself on the same ordered link;
//! - receiving one: the pieces are appended per sender to a temporary file (bounded by
//!   `SNAPSHOT_FILE_BYTES_MAX`), which is mapped and checked whole (CRC) before the core is
//!   shown the `InstallSnapshot`, so the core never adopts a snapshot the node does not hold;
//!   installing renames that file into place.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use tern_net::message::{RaftBody, RaftMessage};
use tern_net::transport::Transport;
use tern_net::NodeId;

use super::convert;
use super::snapshot_store::{self, SnapshotFile, SnapshotStore, SNAPSHOT_FILE_BYTES_MAX};
use crate::raft::{self, LogIndex, Raft, SnapshotMeta, Term};

/// Bytes of one snapshot piece: well below the peer frame limit (16 MiB), large enough that
/// a transfer of a few hundred MiB is a few hundred frames.
pub(crate) const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// Whole received snapshots kept while the core has not taken them (one per recent
/// InstallSnapshot); older ones are dropped first.
const RECEIVED_SNAPSHOTS_MAX: usize = 2;

/// A transfer being written, piece by piece, to a temporary file.
struct Incoming {
    index: LogIndex,
    term: Term,
    path: PathBuf,
    file: File,
    written: u64,
    complete: bool,
    /// Its file now belongs to a `Received` (or was checked and removed).
    handed_over: bool,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // A transfer dropped before the core saw it (out of order, replaced by a newer one,
        // never followed by its InstallSnapshot) leaves nothing behind.
        if !self.handed_over {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A whole snapshot from the leader, checked, waiting for the core to install it.
pub(crate) struct Received {
    pub(crate) file: SnapshotFile,
    /// The temporary file it was received into (mapped by `file`); installing renames it.
    pub(crate) path: PathBuf,
}

impl Drop for Received {
    fn drop(&mut self) {
        // Once installed the file has moved to its snapshot name and this path is gone; a
        // received snapshot the core never took is removed (its mapping stays valid).
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the node knows about snapshots.
pub(crate) struct Snapshots {
    pub(crate) store: Arc<SnapshotStore>,
    entries_between: u64,
    /// The index of the newest durable snapshot (taken or installed); 0 for none.
    pub(crate) newest_index: LogIndex,
    /// The applied index of the last snapshot attempt (in flight, done or failed): the next
    /// one waits for `entries_between` entries after it, so a failing disk is not hammered.
    attempted_index: LogIndex,
    writing: bool,
    done_sender: flume::Sender<Result<LogIndex, String>>,
    done: flume::Receiver<Result<LogIndex, String>>,
    incoming: HashMap<NodeId, Incoming>,
    received: Vec<Received>,
    /// Followers a transfer is running to (one at a time each).
    sending: HashSet<NodeId>,
    /// `InstallSnapshot` messages the core produced, waiting to be started as transfers.
    to_send: Vec<raft::Message>,
    /// Numbers the temporary files of incoming transfers.
    incoming_count: u64,
}

impl Snapshots {
    pub(crate) fn new(store: SnapshotStore, entries_between: u64, newest_index: LogIndex) -> Self {
        let (done_sender, done) = flume::bounded(1);
        Snapshots {
            store: Arc::new(store),
            entries_between,
            newest_index,
            attempted_index: newest_index,
            writing: false,
            done_sender,
            done,
            incoming: HashMap::new(),
            received: Vec::new(),
            sending: HashSet::new(),
            to_send: Vec::new(),
            incoming_count: 0,
        }
    }

    /// After applying: starts a snapshot at the applied index when enough entries passed.
    pub(crate) fn maybe_take(&mut self, raft: &Raft, state_machine: &tern_kv::StateMachine) {
        let applied = state_machine.applied_index();
        if self.entries_between == 0
            || self.writing
            || applied < self.attempted_index.saturating_add(self.entries_between)
        {
            return;
        }
        let Some(meta) = raft.snapshot_meta(applied) else {
            return;
        };
        self.attempted_index = applied;
        self.writing = true;
        let captured_at = std::time::Instant::now();
        let capture = state_machine.capture();
        tracing::debug!(
            index = meta.index,
            capture_us = captured_at.elapsed().as_micros() as u64,
            "captured the state for a snapshot"
        );
        let store = self.store.clone();
        let done = self.done_sender.clone();
        let spawned = std::thread::Builder::new()
            .name("tern-snapshot-writer".into())
            .spawn(move || {
                let result = store
                    .save_state(&meta, &capture.encode())
                    .map(|_| meta.index);
                let _ = done.send(result);
            });
        if let Err(error) = spawned {
            self.writing = false;
            tracing::warn!(%error, "cannot start the snapshot writer thread; will retry later");
        }
    }

    /// A snapshot the writer finished, once it is durable: `(index, previous)`, the new
    /// snapshot's index and the one before it (0 for none). The core compacts through the new
    /// one; the WAL only through the previous one, so that if the newest file is ever found
    /// damaged, the older kept file plus the WAL still hold everything.
    pub(crate) fn take_finished(&mut self) -> Option<(LogIndex, LogIndex)> {
        let result = self.done.try_recv().ok()?;
        self.writing = false;
        match result {
            Ok(index) => {
                tracing::info!(index, "snapshot written");
                let previous = self.newest_index;
                self.newest_index = self.newest_index.max(index);
                Some((index, previous))
            }
            Err(error) => {
                tracing::warn!(%error, "writing a snapshot failed; the log is kept and the next snapshot is tried later");
                None
            }
        }
    }

    /// One piece of a transfer from `from`, appended to its temporary file; out-of-order or
    /// oversized transfers, and ones the disk refuses, are dropped (the leader sends again
    /// when the follower still needs it).
    pub(crate) fn on_chunk(
        &mut self,
        from: NodeId,
        (index, term): (LogIndex, Term),
        offset: u64,
        data: &[u8],
        last: bool,
    ) {
        if offset == 0 {
            self.incoming.remove(&from);
            self.incoming_count += 1;
            let path = self.store.incoming_path(self.incoming_count);
            match File::create(&path) {
                Ok(file) => {
                    self.incoming.insert(
                        from,
                        Incoming {
                            index,
                            term,
                            path,
                            file,
                            written: 0,
                            complete: false,
                            handed_over: false,
                        },
                    );
                }
                Err(error) => {
                    tracing::warn!(from, index, path = %path.display(), %error, "cannot create a file for an incoming snapshot; dropped");
                    return;
                }
            }
        }
        let Some(transfer) = self.incoming.get_mut(&from) else {
            return;
        };
        let in_order = transfer.index == index
            && transfer.term == term
            && !transfer.complete
            && transfer.written == offset;
        let size = offset.saturating_add(data.len() as u64);
        if !in_order || size > SNAPSHOT_FILE_BYTES_MAX {
            tracing::warn!(
                from,
                index,
                offset,
                size,
                "dropped a snapshot transfer (a piece out of order, or over the {SNAPSHOT_FILE_BYTES_MAX}-byte limit)"
            );
            self.incoming.remove(&from);
            return;
        }
        // One piece (SNAPSHOT_CHUNK_BYTES) into the page cache; the sync comes once, when the
        // snapshot is installed.
        if let Err(error) = transfer.file.write_all(data) {
            tracing::warn!(from, index, %error, "cannot write an incoming snapshot; dropped");
            self.incoming.remove(&from);
            return;
        }
        transfer.written = size;
        transfer.complete = last;
    }

    /// The leader's `InstallSnapshot` arrived: true when the whole file came before it and
    /// checks out (then the core may see the message); false drops the message.
    pub(crate) fn accept_install(&mut self, from: NodeId, meta: &SnapshotMeta) -> bool {
        let Some(mut transfer) = self.incoming.remove(&from) else {
            tracing::debug!(
                from,
                index = meta.index,
                "InstallSnapshot without its file; dropped"
            );
            return false;
        };
        if !transfer.complete || transfer.index != meta.index || transfer.term != meta.term {
            tracing::warn!(
                from,
                index = meta.index,
                "InstallSnapshot whose file is incomplete or another snapshot's; dropped"
            );
            return false;
        }
        let path = transfer.path.clone();
        transfer.handed_over = true;
        drop(transfer);
        let checked = snapshot_store::map_file(&path);
        let received = |file: SnapshotFile| Received {
            file,
            path: path.clone(),
        };
        match checked {
            Ok(file) if file.meta == *meta => {
                if self.received.len() >= RECEIVED_SNAPSHOTS_MAX {
                    self.received.remove(0);
                }
                self.received.push(received(file));
                true
            }
            Ok(file) => {
                tracing::warn!(from, sent = ?meta, found = ?file.meta, "snapshot file does not match its InstallSnapshot; dropped");
                drop(received(file));
                false
            }
            Err(error) => {
                tracing::warn!(from, index = meta.index, %error, "received snapshot file is damaged; dropped");
                let _ = std::fs::remove_file(&path);
                false
            }
        }
    }

    /// The received snapshot the core decided to install.
    pub(crate) fn take_received(&mut self, meta: &SnapshotMeta) -> Option<Received> {
        let position = self
            .received
            .iter()
            .position(|received| received.file.meta == *meta)?;
        let received = self.received.swap_remove(position);
        self.received.clear();
        Some(received)
    }

    /// Keeps an `InstallSnapshot` the core wants sent, for `transfers_to_start`.
    pub(crate) fn queue_send(&mut self, message: raft::Message) {
        self.to_send.push(message);
    }

    /// The queued `InstallSnapshot`s whose follower has no transfer running (each is marked
    /// running until `transfer_ended`).
    pub(crate) fn transfers_to_start(&mut self) -> Vec<raft::Message> {
        let queued = std::mem::take(&mut self.to_send);
        queued
            .into_iter()
            .filter(|message| self.sending.insert(message.to))
            .collect()
    }

    pub(crate) fn transfer_ended(&mut self, to: NodeId) {
        self.sending.remove(&to);
    }
}

/// Sends the snapshot file `message` names, piece by piece as read from disk, then the
/// message; true when all of it was queued.
pub(crate) async fn transfer(
    store: &SnapshotStore,
    transport: &Transport,
    message: &raft::Message,
) -> bool {
    let raft::MessageBody::InstallSnapshot { snapshot } = &message.body else {
        return false;
    };
    let opened = store
        .path_at(snapshot.index)
        .ok_or_else(|| "no snapshot file at that index".to_string())
        .and_then(|path| {
            let file = File::open(&path).map_err(|error| format!("{}: {error}", path.display()))?;
            let size = file
                .metadata()
                .map_err(|error| format!("{}: {error}", path.display()))?
                .len();
            Ok((file, size))
        });
    let (file, size) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            tracing::warn!(
                to = message.to,
                index = snapshot.index,
                %error,
                "cannot read the snapshot for the follower's InstallSnapshot; retried at the next heartbeat"
            );
            return false;
        }
    };
    tracing::info!(
        to = message.to,
        index = snapshot.index,
        bytes = size,
        "sending a snapshot"
    );
    let mut offset = 0u64;
    loop {
        let length = (size - offset).min(SNAPSHOT_CHUNK_BYTES as u64) as usize;
        // Read straight into the frame's buffer. A positioned read of one piece: the file was
        // written moments ago and is usually in the page cache; a cold one costs one disk
        // read per piece on this executor.
        let mut piece = vec![0u8; length];
        if let Err(error) = file.read_exact_at(&mut piece, offset) {
            tracing::warn!(to = message.to, %error, "reading the snapshot file failed; transfer stopped");
            return false;
        }
        let last = offset + length as u64 >= size;
        let chunk = RaftMessage {
            from: message.from,
            to: message.to,
            term: message.term,
            body: RaftBody::SnapshotChunk {
                index: snapshot.index,
                term: snapshot.term,
                offset,
                data: piece,
                last,
            },
        };
        if let Err(error) = transport.send_wait(message.to, &chunk).await {
            tracing::warn!(to = message.to, %error, "snapshot transfer stopped");
            return false;
        }
        offset += length as u64;
        if last {
            break;
        }
    }
    let install = convert::message_to_wire(message);
    transport.send_wait(message.to, &install).await.is_ok()
}
