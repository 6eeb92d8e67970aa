//! Applies committed proposals to the map in log order, with exactly-once sessions.

use std::sync::Arc;

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;

use crate::command::Command;
use crate::limits::Limits;
use crate::map::{put, MapReader, SharedMap, ValueCell};
use crate::proposal::decode_proposal;
use crate::result::{CommandError, CommandResult};
use crate::session::{Admission, SessionLimits, Sessions};
use crate::snapshot::{self, SnapshotError};

/// What applying one log entry produced, for the node to route the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A client write: applied now (`duplicate: false`) or a retry answered from the session
    /// (`duplicate: true`, the map unchanged). A proposal refused without applying (its result
    /// forgotten, sequence 0) has `duplicate: false` and a `CommandResult::Error`.
    Client {
        client_id: u64,
        sequence: u64,
        result: CommandResult,
        duplicate: bool,
    },
    /// The payload did not decode as a proposal: nothing changed, nobody to answer. Every
    /// replica reaches the same conclusion.
    Undecodable { reason: String },
}

/// The replicated state machine of one node.
pub struct StateMachine {
    map: SharedMap,
    applied_index: u64,
    limits: Limits,
    session_limits: SessionLimits,
    /// Per-client results of applied sequences (see [`crate::session`]).
    sessions: Sessions,
}

impl StateMachine {
    /// An empty store.
    pub fn new(limits: Limits, session_limits: SessionLimits) -> StateMachine {
        StateMachine {
            map: Arc::new(SkipMap::new()),
            applied_index: 0,
            limits,
            session_limits,
            sessions: Sessions::default(),
        }
    }

    /// A reader of the applied map for other threads.
    pub fn reader(&self) -> MapReader {
        MapReader {
            map: self.map.clone(),
        }
    }

    /// Applies the entry at `index` whose payload is an encoded [`crate::Proposal`].
    /// `index` must be `applied_index() + 1` (the node applies in order; a gap is a bug and
    /// panics). Never panics on payload contents.
    ///
    /// The payload is decoded as a proposal (failure: [`Applied::Undecodable`]), passed through
    /// the client's session (duplicates and forgotten sequences are answered without applying,
    /// see [`crate::session`]), then its command is decoded and checked against the limits
    /// (failure: `CommandResult::Error`, the map unchanged) and applied. The result is
    /// recorded in the session either way, so a retry gets the same answer.
    ///
    /// # Panics
    ///
    /// When `index` is not `applied_index() + 1`: the driver skipped or repeated an entry,
    /// and going on would make this replica diverge from the others.
    pub fn apply(&mut self, index: u64, payload: &[u8]) -> Applied {
        self.advance(index);
        let proposal = match decode_proposal(payload) {
            Ok(proposal) => proposal,
            Err(error) => {
                return Applied::Undecodable {
                    reason: error.to_string(),
                }
            }
        };
        let (client_id, sequence) = (proposal.client_id, proposal.sequence);
        let (result, duplicate) =
            match self
                .sessions
                .admit(client_id, sequence, proposal.answered_through)
            {
                Admission::Answer { result, duplicate } => (result, duplicate),
                Admission::Apply => {
                    let result = self.execute(proposal.command);
                    self.sessions.record(
                        &self.session_limits,
                        client_id,
                        sequence,
                        index,
                        result.clone(),
                    );
                    (result, false)
                }
            };
        Applied::Client {
            client_id,
            sequence,
            result,
            duplicate,
        }
    }

    /// Marks `index` applied without a client payload (a leader's no-op entry).
    ///
    /// # Panics
    ///
    /// Like [`StateMachine::apply`], when `index` is not `applied_index() + 1`.
    pub fn apply_noop(&mut self, index: u64) {
        self.advance(index);
    }

    /// Number of client sessions held.
    pub fn sessions_len(&self) -> usize {
        self.sessions.len()
    }

    /// Moves the applied index to `index`, which must be the next one.
    fn advance(&mut self, index: u64) {
        assert_eq!(
            Some(index),
            self.applied_index.checked_add(1),
            "log entries must be applied in order without gaps: applied index is {}, got entry {index}",
            self.applied_index
        );
        self.applied_index = index;
    }

    /// Decodes, checks and applies encoded command bytes.
    fn execute(&mut self, command_bytes: &[u8]) -> CommandResult {
        let command = match Command::decode(command_bytes) {
            Ok(command) => command,
            Err(error) => {
                return CommandResult::Error(CommandError::Invalid {
                    reason: error.to_string(),
                })
            }
        };
        if let Err(error) = self.limits.check(&command, command_bytes.len()) {
            return CommandResult::Error(CommandError::TooLarge(error.to_string()));
        }
        match command {
            Command::Batch(commands) => CommandResult::Batch(
                commands
                    .into_iter()
                    .map(|inner| self.execute_one(inner))
                    .collect(),
            ),
            other => self.execute_one(other),
        }
    }

    /// Applies one checked, non-batch command to the map.
    fn execute_one(&mut self, command: Command) -> CommandResult {
        match command {
            Command::Put { key, value } => {
                put(&self.map, key, value);
                CommandResult::Written
            }
            Command::Delete { key } => CommandResult::Deleted {
                existed: self.map.remove(&key).is_some(),
            },
            Command::CompareAndSwap {
                key,
                expected,
                new_value,
            } => {
                let current = self.reader().get(&key);
                if current == expected {
                    put(&self.map, key, new_value);
                    CommandResult::Compared {
                        succeeded: true,
                        current: None,
                    }
                } else {
                    CommandResult::Compared {
                        succeeded: false,
                        current,
                    }
                }
            }
            Command::CompareAndDelete { key, expected } => {
                let current = self.reader().get(&key);
                if current.as_ref() == Some(&expected) {
                    self.map.remove(&key);
                    CommandResult::Compared {
                        succeeded: true,
                        current: None,
                    }
                } else {
                    CommandResult::Compared {
                        succeeded: false,
                        current,
                    }
                }
            }
            read @ (Command::Get { .. } | Command::Range { .. }) => self.reader().read(&read),
            Command::Batch(_) => CommandResult::Error(CommandError::Invalid {
                reason: "a batch inside a batch; batches may not nest".to_string(),
            }),
        }
    }

    /// The last applied log index (0 when nothing was applied).
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Encodes the whole state (map, sessions, applied index) with a checksum.
    ///
    /// The encoding is deterministic: replicas at the same applied index produce the same
    /// bytes. Layout: see [`crate::snapshot`].
    pub fn snapshot(&self) -> Vec<u8> {
        self.capture().encode()
    }

    /// The whole state at the applied index, by reference: each key and value shares its
    /// bytes with the map, so taking it costs a reference count per key and no byte copies.
    /// Later applies do not change it; [`SnapshotCapture::encode`] (the byte copies and the
    /// checksum) can then run on another thread while this state machine goes on.
    pub fn capture(&self) -> SnapshotCapture {
        SnapshotCapture {
            applied_index: self.applied_index,
            pairs: self
                .map
                .iter()
                .map(|entry| (entry.key().clone(), entry.value().load()))
                .collect(),
            sessions: self.sessions.clone(),
        }
    }

    /// Rebuilds a state machine from [`StateMachine::snapshot`] output.
    pub fn restore(
        bytes: &[u8],
        limits: Limits,
        session_limits: SessionLimits,
    ) -> Result<StateMachine, SnapshotError> {
        let content = snapshot::decode(bytes)?;
        let map = SkipMap::new();
        for (key, value) in content.pairs {
            map.insert(key, ValueCell::new(value));
        }
        Ok(StateMachine {
            map: Arc::new(map),
            applied_index: content.applied_index,
            limits,
            session_limits,
            sessions: content.sessions,
        })
    }

    /// Replaces the whole state with a [`StateMachine::snapshot`]'s (a follower installing
    /// the leader's snapshot), in the same shared map, so every [`MapReader`] handed out keeps
    /// working. Nothing changes when the snapshot does not decode.
    ///
    /// Readers running meanwhile may see part of the change (as during a batch): the node
    /// answers linearizable reads only from the leader, which never installs a snapshot.
    pub fn install(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let content = snapshot::decode(bytes)?;
        let mut incoming = content.pairs.into_iter().peekable();
        // Both sides are in key order: one merge pass removes the keys the snapshot lacks.
        let stale: Vec<Bytes> = self
            .map
            .iter()
            .filter_map(|entry| {
                while incoming
                    .peek()
                    .is_some_and(|(key, _)| key.as_ref() < entry.key().as_ref())
                {
                    let (key, value) = incoming.next()?;
                    put(&self.map, key, value);
                }
                match incoming.peek() {
                    Some((key, _)) if key == entry.key() => {
                        let (key, value) = incoming.next()?;
                        put(&self.map, key, value);
                        None
                    }
                    _ => Some(entry.key().clone()),
                }
            })
            .collect();
        for (key, value) in incoming {
            put(&self.map, key, value);
        }
        for key in stale {
            self.map.remove(&key);
        }
        self.applied_index = content.applied_index;
        self.sessions = content.sessions;
        Ok(())
    }

    /// The limits commands are checked against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The session bounds.
    pub fn session_limits(&self) -> &SessionLimits {
        &self.session_limits
    }
}

/// A state machine's state at one applied index ([`StateMachine::capture`]); `Send`, to be
/// encoded off the apply thread.
pub struct SnapshotCapture {
    applied_index: u64,
    /// In key order, as the map iterates.
    pairs: Vec<(Bytes, Bytes)>,
    sessions: Sessions,
}

impl SnapshotCapture {
    /// The applied index the state is at.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The same bytes [`StateMachine::snapshot`] gives at that index.
    pub fn encode(&self) -> Vec<u8> {
        snapshot::encode(
            self.applied_index,
            self.pairs.iter().cloned(),
            &self.sessions,
        )
    }
}
