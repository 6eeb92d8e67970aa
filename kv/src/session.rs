//! Client sessions: remember each client's recent write results so a retried (client id,
//! sequence) gets its first result back and is not applied twice.
//!
//! Everything here is deterministic in the log (no clocks, only ordered maps): every replica
//! that applies the same entries holds the same sessions, so a snapshot carries them and a new
//! leader answers a retry exactly as the old one would have.
//!
//! # Rules
//!
//! A session belongs to one client id. It holds the results of that client's applied sequences
//! (at most [`SessionLimits::results_per_session_max`]) and a *forgotten floor*: the sequences
//! at or below it whose results are no longer held. Clients number their requests from 1
//! (`answered_through = 0` means "nothing answered yet"); for each proposal, in log order:
//!
//! 1. Sequence 0 is refused as invalid (not applied, the session untouched).
//! 2. Unknown client id: if the proposal's `answered_through` is above 0 the client had a
//!    session that has expired, and the sequence may already have been applied: it is answered
//!    `ResultForgotten` and not applied. Otherwise a session is created (floor 0) and the
//!    proposal continues below.
//! 3. The session first drops every result with a sequence at or below the proposal's
//!    `answered_through` (the client has them) and raises its floor to it.
//! 4. A sequence whose result the session holds is a retry: that result is returned with
//!    `duplicate: true` and the map is unchanged.
//! 5. A sequence at or below the floor and not held is answered `ResultForgotten` and not
//!    applied.
//! 6. Otherwise the command is applied (whatever it is: read-only commands and refused commands
//!    that arrive through the log are recorded the same way) and its result recorded. The
//!    session's *last write index* becomes this entry's log index.
//! 7. When the session then holds more than `results_per_session_max` results, the lowest
//!    sequences are dropped and the floor raised to the highest one dropped.
//! 8. When there are then more than `sessions_max` sessions, the session with the lowest last
//!    write index is evicted (ties cannot happen: one entry records into one session).

use std::collections::{BTreeMap, BTreeSet};

use crate::command::DecodeError;
use crate::result::{self, CommandError, CommandResult};
use crate::wire::{put_bytes, put_u64, Reader};

/// Bounds on session state; every replica must use the same values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Most sessions kept (sessions, one per client id). When recording a result would exceed
    /// it, the session whose last applied write has the lowest log index is evicted; that
    /// client's next proposal carries `answered_through > 0` and is answered `ResultForgotten`
    /// (see the module docs, rule 2), so a retry after expiry is never applied twice.
    pub sessions_max: usize,
    /// Most results one session keeps (results, one per sequence; the client's pipelining
    /// window must stay below it). Results at or below the client's `answered_through` are
    /// dropped earlier; beyond this bound the lowest sequences are dropped and become
    /// `ResultForgotten`.
    pub results_per_session_max: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            sessions_max: 65_536,
            results_per_session_max: 4_096,
        }
    }
}

/// One client's session.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Session {
    /// Results of applied sequences not yet known to be received.
    results: BTreeMap<u64, CommandResult>,
    /// Sequences at or below this whose result is not in `results` are forgotten.
    forgotten_floor: u64,
    /// Log index of the last entry whose result was recorded here (the eviction order).
    last_write_index: u64,
}

/// What to do with a proposal, decided by [`Sessions::admit`].
#[derive(Debug)]
pub(crate) enum Admission {
    /// Apply the command, then [`Sessions::record`] its result.
    Apply,
    /// Answer without applying.
    Answer {
        result: CommandResult,
        duplicate: bool,
    },
}

/// Every client's session, ordered by client id (deterministic snapshots), with an index by
/// last write for eviction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sessions {
    by_client: BTreeMap<u64, Session>,
    /// (last write index, client id) for every session: the first is the eviction candidate.
    by_last_write: BTreeSet<(u64, u64)>,
}

impl Sessions {
    /// Number of sessions.
    pub(crate) fn len(&self) -> usize {
        self.by_client.len()
    }

    /// Rules 1 to 5 of the module docs: whether to apply, or the answer.
    pub(crate) fn admit(
        &mut self,
        client_id: u64,
        sequence: u64,
        answered_through: u64,
    ) -> Admission {
        let forgotten = Admission::Answer {
            result: CommandResult::Error(CommandError::ResultForgotten {
                client_id,
                sequence,
            }),
            duplicate: false,
        };
        if sequence == 0 {
            return Admission::Answer {
                result: CommandResult::Error(CommandError::Invalid {
                    reason: format!("client {client_id} sent sequence 0; sequences start at 1"),
                }),
                duplicate: false,
            };
        }
        let Some(session) = self.by_client.get_mut(&client_id) else {
            return if answered_through > 0 {
                forgotten
            } else {
                Admission::Apply
            };
        };
        if answered_through > session.forgotten_floor {
            // Keep only sequences above `answered_through` (popping is cheaper than `split_off`
            // for the usual one or two results dropped per proposal).
            while let Some(entry) = session.results.first_entry() {
                if *entry.key() > answered_through {
                    break;
                }
                entry.remove();
            }
            session.forgotten_floor = answered_through;
        }
        if let Some(result) = session.results.get(&sequence) {
            return Admission::Answer {
                result: result.clone(),
                duplicate: true,
            };
        }
        if sequence <= session.forgotten_floor {
            return forgotten;
        }
        Admission::Apply
    }

    /// Rules 6 to 8: records the result of an applied sequence at log `index`.
    pub(crate) fn record(
        &mut self,
        limits: &SessionLimits,
        client_id: u64,
        sequence: u64,
        index: u64,
        result: CommandResult,
    ) {
        let session = self.by_client.entry(client_id).or_insert_with(|| Session {
            results: BTreeMap::new(),
            forgotten_floor: 0,
            last_write_index: 0,
        });
        self.by_last_write
            .remove(&(session.last_write_index, client_id));
        session.last_write_index = index;
        self.by_last_write.insert((index, client_id));
        session.results.insert(sequence, result);
        while session.results.len() > limits.results_per_session_max {
            if let Some((dropped, _)) = session.results.pop_first() {
                session.forgotten_floor = session.forgotten_floor.max(dropped);
            }
        }
        while self.by_client.len() > limits.sessions_max {
            let Some((_, evicted)) = self.by_last_write.pop_first() else {
                break;
            };
            self.by_client.remove(&evicted);
        }
    }

    /// Appends the sessions' encoding (for the snapshot): a `u64` count, then per session in
    /// client id order: client id, forgotten floor, last write index, a `u64` result count and
    /// per result its sequence and its length-prefixed [`CommandResult`] encoding.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.by_client.len() as u64);
        let mut scratch = Vec::new();
        for (client_id, session) in &self.by_client {
            put_u64(out, *client_id);
            put_u64(out, session.forgotten_floor);
            put_u64(out, session.last_write_index);
            put_u64(out, session.results.len() as u64);
            for (sequence, result) in &session.results {
                put_u64(out, *sequence);
                scratch.clear();
                result.encode(&mut scratch);
                put_bytes(out, &scratch);
            }
        }
    }

    /// Parses what [`Sessions::encode`] wrote; refuses duplicate client ids or sequences.
    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Sessions, DecodeError> {
        /// Fewest bytes of one encoded session: four `u64` fields.
        const SESSION_BYTES_MIN: usize = 32;
        /// Fewest bytes of one encoded result entry: sequence, length, a one-byte result.
        const RESULT_ENTRY_BYTES_MIN: usize = 13;
        let mut sessions = Sessions::default();
        let count = reader.count_u64("session", SESSION_BYTES_MIN)?;
        for _ in 0..count {
            let start = reader.offset();
            let client_id = reader.u64("client id")?;
            let forgotten_floor = reader.u64("forgotten floor")?;
            let last_write_index = reader.u64("last write index")?;
            let result_count = reader.count_u64("session result", RESULT_ENTRY_BYTES_MIN)?;
            let mut results = BTreeMap::new();
            for _ in 0..result_count {
                let entry_start = reader.offset();
                let sequence = reader.u64("sequence")?;
                let encoded = reader.bytes("session result")?;
                let mut inner = Reader::new(encoded, "session result");
                let result = result::decode_one(&mut inner, true)
                    .and_then(|result| inner.finish().map(|()| result))
                    .map_err(|error| {
                        reader.error_at(
                            entry_start,
                            format!("result of sequence {sequence}: {error}"),
                        )
                    })?;
                if results.insert(sequence, result).is_some() {
                    return Err(reader.error_at(
                        entry_start,
                        format!("client {client_id} has sequence {sequence} twice"),
                    ));
                }
            }
            let session = Session {
                results,
                forgotten_floor,
                last_write_index,
            };
            if sessions.by_client.insert(client_id, session).is_some() {
                return Err(reader.error_at(start, format!("client {client_id} has two sessions")));
            }
            sessions.by_last_write.insert((last_write_index, client_id));
        }
        Ok(sessions)
    }
}
