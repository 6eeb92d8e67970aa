//! Conversions at the node's edges: the core's `Message`/`Entry` to and from the wire's
//! `RaftMessage` (tern-net cannot see the engine's types), and log entries to and from the
//! WAL's opaque payloads.
//!
//! WAL payload encoding: one tag byte, then the command bytes for a command entry.
//! `ENTRY_TAG_NOOP` alone is a leader's no-op; `ENTRY_TAG_COMMAND` is followed by the command.
//! Decoding never panics: an unknown tag or a no-op with trailing bytes is an error naming the
//! entry (the WAL's CRC already passed, so such a payload means a bug or a foreign file).

use bytes::Bytes;
use tern_net::message::{
    ArchivedEntryPayload, ArchivedRaftBody, ArchivedRaftMessage, Entry as WireEntry, EntryPayload,
    RaftBody, RaftMessage,
};

use crate::raft::{Entry, HardState, Message, MessageBody, Payload};

/// WAL payload tag of a no-op entry.
const ENTRY_TAG_NOOP: u8 = 0;
/// WAL payload tag of a command entry.
const ENTRY_TAG_COMMAND: u8 = 1;

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
        },
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
        ArchivedRaftBody::ReadIndexRequest { .. } | ArchivedRaftBody::ReadIndexResponse { .. } => {
            return None
        }
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
        Some((tag, _)) => {
            return Err(format!(
                "entry {} has unknown payload tag {tag} (expected {ENTRY_TAG_NOOP} or \
                 {ENTRY_TAG_COMMAND})",
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
