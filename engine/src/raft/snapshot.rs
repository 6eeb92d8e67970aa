//! Snapshots (paper section 7): compacting the log once the driver holds a durable snapshot of
//! its applied state, sending a snapshot to a follower that needs compacted entries, and
//! installing one from the leader.
//!
//! The core only handles a snapshot's metadata (index, term, membership). The state itself is
//! the driver's: it writes it, ships it to the follower beside the `InstallSnapshot` message
//! (in chunks, over its own transport), and tells the leader how the transfer ended with
//! `report_snapshot`. The follower's driver restores it when a `Ready` carries `snapshot`.

use super::progress::ProgressState;
use super::types::{LogIndex, MessageBody, NodeId, Role, SnapshotMeta};
use super::{Bug, Raft};

/// Why `compact` refused (nothing changed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// Only applied entries can be covered by the driver's snapshot.
    #[error("cannot compact through {index}: only entries through {applied} are applied")]
    NotApplied { index: LogIndex, applied: LogIndex },
}

impl Raft {
    /// The driver holds a durable snapshot of its state machine at `index` (applied): the log
    /// drops every entry through it. Compacting at or below the current snapshot does nothing.
    pub fn compact(&mut self, index: LogIndex) -> Result<(), CompactError> {
        if self.log.compact(index) {
            Ok(())
        } else {
            Err(CompactError::NotApplied {
                index,
                applied: self.log.applied,
            })
        }
    }

    /// The metadata a snapshot of the state machine at `index` must carry (the term of that
    /// entry and the membership in effect there), for `index` between the log's snapshot and
    /// the applied index; `None` outside.
    pub fn snapshot_meta(&self, index: LogIndex) -> Option<SnapshotMeta> {
        if index < self.log.snapshot_index() || index > self.log.applied {
            return None;
        }
        Some(SnapshotMeta {
            index,
            term: self.log.term(index)?,
            membership: self.log.membership.at(index).clone(),
        })
    }

    /// The metadata of the snapshot the log starts after (index 0 before any compaction).
    pub fn log_snapshot(&self) -> SnapshotMeta {
        self.log.snapshot_meta()
    }

    /// The driver's transfer of the snapshot to `to` ended: `delivered` when the follower
    /// received all of it, false when the transfer failed (the next try starts from the
    /// follower's match point, so a newer snapshot is sent if the log was compacted again).
    /// Ignored unless `to` is waiting for a snapshot.
    pub fn report_snapshot(&mut self, to: NodeId, delivered: bool) {
        if self.role != Role::Leader {
            return;
        }
        let Some(progress) = self.progress.get_mut(&to) else {
            return;
        };
        let ProgressState::Snapshot { index } = progress.state else {
            return;
        };
        let next_index = if delivered {
            index + 1
        } else {
            progress.match_index + 1
        };
        progress.become_probe(next_index);
        // Wait for the follower's answer (delivered), or for its next heartbeat answer
        // (failed), so a failing transfer is retried at the heartbeat pace, not in a loop.
        progress.probe_sent = true;
    }

    /// Follower `to` needs entries the log no longer holds: send it the log's snapshot. Its
    /// progress waits in `Snapshot` until the follower answers or the driver reports.
    pub(super) fn send_snapshot(&mut self, to: NodeId) {
        let snapshot = self.log.snapshot_meta();
        let Some(progress) = self.progress.get_mut(&to) else {
            return;
        };
        progress.become_snapshot(snapshot.index);
        self.send(to, MessageBody::InstallSnapshot { snapshot });
    }

    /// The leader sent its snapshot (the driver has its state, or will deliver it). A snapshot
    /// at or below our commit index holds nothing new: it is only acknowledged. One whose last
    /// entry we hold with its term is committed by it and our log is kept (paper section 7);
    /// otherwise the whole log is replaced by it. The acknowledgement leaves after persist.
    pub(super) fn handle_install_snapshot(&mut self, from: NodeId, snapshot: SnapshotMeta) {
        let committed = self.log.committed;
        let below_commit = snapshot.index <= committed;
        let match_index = if below_commit && !self.bug(Bug::InstallSnapshotBelowCommit) {
            committed
        } else if !below_commit && self.log.term(snapshot.index) == Some(snapshot.term) {
            self.log.commit_to(snapshot.index);
            snapshot.index
        } else {
            let index = snapshot.index;
            self.log.install_snapshot(snapshot);
            index
        };
        let body = MessageBody::AppendResponse {
            success: true,
            match_index,
            conflict_index: 0,
            conflict_term: None,
        };
        self.send(from, body);
    }
}
