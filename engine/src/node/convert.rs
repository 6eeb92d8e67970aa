//! Conversions at the node's edges: the core's `Message`/`Entry` to and from the wire's
//! `RaftMessage` (tern-net cannot see the engine's types), and log entries to and from the
//! WAL's opaque payloads.
//!
//! WAL payload encoding: one tag byte, then the command bytes for a command entry.
//! `ENTRY_TAG_NOOP` alone is a leader's no-op; `ENTRY_TAG_COMMAND` is followed by the command;
//! `ENTRY_TAG_MEMBERSHIP` by the membership (`membership_codec`).
//! Decoding never panics: an unknown tag or a no-op with trailing bytes is an error naming the
//! entry (the WAL's CRC already passed, so such a payload means a bug or a foreign file).

use bytes::Bytes;
use tern_net::message::{
    ArchivedEntryPayload, ArchivedMembership, ArchivedRaftBody, ArchivedRaftMessage,
    Entry as WireEntry, EntryPayload, Membership as WireMembership, RaftBody, RaftMessage,
    SnapshotMeta as WireSnapshotMeta,
};

use super::membership_codec::{decode_membership, encode_membership};
use crate::raft::{Entry, HardState, Membership, Message, MessageBody, Payload, SnapshotMeta};

/// WAL payload tag of a no-op entry.
const ENTRY_TAG_NOOP: u8 = 0;
/// WAL payload tag of a command entry.
const ENTRY_TAG_COMMAND: u8 = 1;
/// WAL payload tag of a membership entry.
const ENTRY_TAG_MEMBERSHIP: u8 = 2;

/// The core's message as the wire's.
pub(crate) fn message_to_wire(message: &Message) -> RaftMessage {
    let body = match &message.body {
        MessageBody::VoteRequest {
            pre_vote,
            last_log_index,
            last_log_term,
            leadership_transfer,
        } => RaftBody::VoteRequest {
            pre_vote: *pre_vote,
            last_log_index: *last_log_index,
            last_log_term: *last_log_term,
            leadership_transfer: *leadership_transfer,
        },
        MessageBody::VoteResponse { pre_vote, granted } => RaftBody::VoteResponse {
            pre_vote: *pre_vote,
            granted: *granted,
        },
        MessageBody::AppendRequest {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        } => RaftBody::AppendRequest {
            prev_log_index: *prev_log_index,
            prev_log_term: *prev_log_term,
            entries: entries.iter().map(entry_to_wire).collect(),
            leader_commit: *leader_commit,
        },
        MessageBody::AppendResponse {
            success,
            match_index,
            conflict_index,
            conflict_term,
        } => RaftBody::AppendResponse {
            success: *success,
            match_index: *match_index,
            conflict_index: *conflict_index,
            conflict_term: *conflict_term,
        },
        MessageBody::Heartbeat {
            leader_commit,
            read_round,
        } => RaftBody::Heartbeat {
            leader_commit: *leader_commit,
            read_round: *read_round,
        },
        MessageBody::HeartbeatResponse { read_round } => RaftBody::HeartbeatResponse {
            read_round: *read_round,
        },
        MessageBody::TimeoutNow => RaftBody::TimeoutNow,
        MessageBody::InstallSnapshot { snapshot } => RaftBody::InstallSnapshot {
            snapshot: snapshot_meta_to_wire(snapshot),
        },
    };
    RaftMessage {
        from: message.from,
        to: message.to,
        term: message.term,
        body,
    }
}

fn entry_to_wire(entry: &Entry) -> WireEntry {
    WireEntry {
        index: entry.index,
        term: entry.term,
        payload: match &entry.payload {
            Payload::Noop => EntryPayload::Noop,
            Payload::Command(bytes) => EntryPayload::Command(bytes.to_vec()),
            Payload::Membership(membership) => {
                EntryPayload::Membership(membership_to_wire(membership))
            }
        },
    }
}

fn membership_to_wire(membership: &Membership) -> WireMembership {
    WireMembership {
        voters: membership.voters.clone(),
        voters_outgoing: membership.voters_outgoing.clone(),
        learners: membership.learners.clone(),
        context: membership.context.to_vec(),
    }
}

/// The core's snapshot metadata as the wire's.
pub(crate) fn snapshot_meta_to_wire(snapshot: &SnapshotMeta) -> WireSnapshotMeta {
    WireSnapshotMeta {
        index: snapshot.index,
        term: snapshot.term,
        membership: membership_to_wire(&snapshot.membership),
    }
}

/// An archived wire membership as the core's (its shape is checked by the core's `step`).
fn membership_from_wire(membership: &ArchivedMembership) -> Membership {
    Membership {
        voters: membership.voters.iter().map(|id| id.to_native()).collect(),
        voters_outgoing: membership
            .voters_outgoing
            .iter()
            .map(|id| id.to_native())
            .collect(),
        learners: membership
            .learners
            .iter()
            .map(|id| id.to_native())
            .collect(),
        context: Bytes::copy_from_slice(membership.context.as_slice()),
    }
}

/// A validated archived wire message as the core's, or `None` for the bodies the core does
/// not handle (follower-forwarded read-index requests are not used by this node).
pub(crate) fn message_from_wire(message: &ArchivedRaftMessage) -> Option<Message> {
    let body = match &message.body {
        ArchivedRaftBody::VoteRequest {
            pre_vote,
            last_log_index,
            last_log_term,
            leadership_transfer,
        } => MessageBody::VoteRequest {
            pre_vote: *pre_vote,
            last_log_index: last_log_index.to_native(),
            last_log_term: last_log_term.to_native(),
            leadership_transfer: *leadership_transfer,
        },
        ArchivedRaftBody::VoteResponse { pre_vote, granted } => MessageBody::VoteResponse {
            pre_vote: *pre_vote,
            granted: *granted,
        },
        ArchivedRaftBody::AppendRequest {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        } => MessageBody::AppendRequest {
            prev_log_index: prev_log_index.to_native(),
            prev_log_term: prev_log_term.to_native(),
            entries: entries
                .iter()
                .map(|entry| Entry {
                    index: entry.index.to_native(),
                    term: entry.term.to_native(),
                    payload: match &entry.payload {
                        ArchivedEntryPayload::Noop => Payload::Noop,
                        ArchivedEntryPayload::Command(bytes) => {
                            Payload::Command(Bytes::copy_from_slice(bytes.as_slice()))
                        }
                        ArchivedEntryPayload::Membership(membership) => {
                            Payload::Membership(membership_from_wire(membership))
                        }
                    },
                })
                .collect(),
            leader_commit: leader_commit.to_native(),
        },
        ArchivedRaftBody::AppendResponse {
            success,
            match_index,
            conflict_index,
            conflict_term,
        } => MessageBody::AppendResponse {
            success: *success,
            match_index: match_index.to_native(),
            conflict_index: conflict_index.to_native(),
            conflict_term: conflict_term.as_ref().map(|term| term.to_native()),
        },
        ArchivedRaftBody::Heartbeat {
            leader_commit,
            read_round,
        } => MessageBody::Heartbeat {
            leader_commit: leader_commit.to_native(),
            read_round: read_round.to_native(),
        },
        ArchivedRaftBody::HeartbeatResponse { read_round } => MessageBody::HeartbeatResponse {
            read_round: read_round.to_native(),
        },
        ArchivedRaftBody::TimeoutNow => MessageBody::TimeoutNow,
        ArchivedRaftBody::InstallSnapshot { snapshot } => MessageBody::InstallSnapshot {
            snapshot: SnapshotMeta {
                index: snapshot.index.to_native(),
                term: snapshot.term.to_native(),
                membership: membership_from_wire(&snapshot.membership),
            },
        },
        // Snapshot chunks are the node's business (it assembles the state before the core
        // sees the InstallSnapshot); forwarded reads are not used by this node.
        ArchivedRaftBody::ReadIndexRequest { .. }
        | ArchivedRaftBody::ReadIndexResponse { .. }
        | ArchivedRaftBody::SnapshotChunk { .. } => return None,
    };
    Some(Message {
        from: message.from.to_native(),
        to: message.to.to_native(),
        term: message.term.to_native(),
        body,
    })
}

/// The core's entry as the WAL stores it.
pub(crate) fn entry_to_wal(entry: &Entry) -> tern_wal::Entry {
    let payload = match &entry.payload {
        Payload::Noop => vec![ENTRY_TAG_NOOP],
        Payload::Command(bytes) => {
            let mut payload = Vec::with_capacity(1 + bytes.len());
            payload.push(ENTRY_TAG_COMMAND);
            payload.extend_from_slice(bytes);
            payload
        }
        Payload::Membership(membership) => {
            let mut payload = vec![ENTRY_TAG_MEMBERSHIP];
            encode_membership(membership, &mut payload);
            payload
        }
    };
    tern_wal::Entry {
        index: entry.index,
        term: entry.term,
        payload,
    }
}

/// A WAL entry as the core's; the error says which entry and what was wrong.
pub(crate) fn entry_from_wal(entry: tern_wal::Entry) -> Result<Entry, String> {
    let payload = match entry.payload.split_first() {
        Some((&ENTRY_TAG_NOOP, [])) => Payload::Noop,
        Some((&ENTRY_TAG_NOOP, rest)) => {
            return Err(format!(
                "entry {} is a no-op with {} unexpected trailing bytes",
                entry.index,
                rest.len()
            ))
        }
        Some((&ENTRY_TAG_COMMAND, command)) => Payload::Command(Bytes::copy_from_slice(command)),
        Some((&ENTRY_TAG_MEMBERSHIP, encoded)) => match decode_membership(encoded) {
            Ok((membership, used)) if used == encoded.len() => Payload::Membership(membership),
            Ok((_, used)) => {
                return Err(format!(
                    "entry {} is a membership with {} unexpected trailing bytes",
                    entry.index,
                    encoded.len() - used
                ))
            }
            Err(reason) => {
                return Err(format!(
                    "entry {} has a damaged membership: {reason}",
                    entry.index
                ))
            }
        },
        Some((tag, _)) => {
            return Err(format!(
                "entry {} has unknown payload tag {tag} (expected {ENTRY_TAG_NOOP}, \
                 {ENTRY_TAG_COMMAND} or {ENTRY_TAG_MEMBERSHIP})",
                entry.index
            ))
        }
        None => return Err(format!("entry {} has an empty payload", entry.index)),
    };
    Ok(Entry {
        index: entry.index,
        term: entry.term,
        payload,
    })
}

/// The core's hard state as the WAL's.
pub(crate) fn hard_state_to_wal(hard_state: &HardState) -> tern_wal::HardState {
    tern_wal::HardState {
        term: hard_state.term,
        voted_for: hard_state.voted_for,
        commit: hard_state.commit,
    }
}

/// The WAL's hard state as the core's.
pub(crate) fn hard_state_from_wal(hard_state: &tern_wal::HardState) -> HardState {
    HardState {
        term: hard_state.term,
        voted_for: hard_state.voted_for,
        commit: hard_state.commit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_payloads_round_trip() {
        for payload in [
            Payload::Noop,
            Payload::Command(Bytes::from_static(b"put a 1")),
            Payload::Membership(Membership {
                voters: vec![1, 3],
                voters_outgoing: vec![1, 2, 3],
                learners: vec![4],
                context: Bytes::from_static(b"ctx"),
            }),
        ] {
            let entry = Entry {
                index: 7,
                term: 3,
                payload,
            };
            assert_eq!(entry_from_wal(entry_to_wal(&entry)), Ok(entry));
        }
    }

    #[test]
    fn bad_wal_payloads_are_errors_not_panics() {
        for (payload, expected) in [
            (vec![], "empty payload"),
            (vec![9, 1], "unknown payload tag 9"),
            (vec![ENTRY_TAG_NOOP, 5], "trailing"),
            (vec![ENTRY_TAG_MEMBERSHIP, 1, 0], "damaged membership"),
        ] {
            let error = entry_from_wal(tern_wal::Entry {
                index: 4,
                term: 1,
                payload,
            })
            .expect_err(expected);
            assert!(
                error.contains(expected) && error.contains("entry 4"),
                "{error}"
            );
        }
    }
}
