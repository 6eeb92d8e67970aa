//! A client executor: holds client connections on `client_addr`, checks and batches their
//! requests into the Raft executor, serves reads from the applied map, and routes results back
//! to the session that asked.
//!
//! Per client batch: every command is decoded and checked against the size limits first (a bad
//! one is answered at once and nothing is proposed). Then, when this node is not the leader,
//! writes and leader reads are answered `NotLeader` (with a `NotLeader` frame saying where the
//! leader is); serializable reads are answered at once from the map; writes become proposals
//! (client id, sequence, answered-through and the command bytes verbatim), coalesced with other
//! sessions' writes into proposal batches of at most `proposal_batch_commands_max` commands and
//! `proposal_batch_bytes_max` bytes; the batch's leader reads become one read-index request.
//! A full channel to the Raft executor is answered "overloaded, retry": this executor never
//! blocks its connections.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tern_kv::{encode_proposal, Command, MapReader, Proposal};
use tern_net::message::{
    ArchivedClientRequestBatch, ArchivedStatusRequest, ClientError, ClientOutcome, ClientResponse,
    ClientResponseBatch, NotLeader,
};
use tern_net::runtime;
use tern_net::tls::Security;
use tern_net::transport::{ClientSession, Inbound, Limits, Transport, TransportConfig};
use tern_net::NodeId;

use super::channels::{unavailable, FromRaft, ReadAnswer, Stop, ToRaft, Wakeup, WriteOutcome};
use super::reads::{read_path, ReadPath};
use super::status::StatusBoard;
use super::{NodeConfig, NodeError, ReadMode};
use crate::raft::{ReadConsistency, Role};

/// Requests (writes plus read groups) one client executor holds waiting for the Raft executor;
/// more are answered "overloaded, retry".
const PENDING_REQUESTS_MAX: usize = 1 << 20;

/// How often an idle client executor checks whether the node is stopping.
const STOP_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How long a stopping client executor lets its sessions send their last answers before it
/// closes the connections.
const SHUTDOWN_FLUSH_DELAY: Duration = Duration::from_millis(50);

/// Everything a client executor starts from (moved into its thread).
pub(crate) struct ClientSetup {
    pub(crate) index: usize,
    pub(crate) config: NodeConfig,
    pub(crate) security: Security,
    pub(crate) to_raft: flume::Sender<ToRaft>,
    pub(crate) from_raft: flume::Receiver<FromRaft>,
    pub(crate) raft_wakeup: Arc<Wakeup>,
    pub(crate) reader: MapReader,
    pub(crate) board: Arc<StatusBoard>,
    pub(crate) stop: Arc<Stop>,
    pub(crate) started: SyncSender<Result<(), NodeError>>,
}

/// Runs one client executor until the node stops.
pub(crate) async fn run(setup: ClientSetup) {
    let ClientSetup {
        index,
        config,
        security,
        to_raft,
        from_raft,
        raft_wakeup,
        reader,
        board,
        stop,
        started,
    } = setup;
    let server = Rc::new_cyclic(|me| ClientServer {
        me: me.clone(),
        id: config.id,
        read_mode: config.read_mode,
        limits: config.kv_limits.clone(),
        batch_commands_max: config.proposal_batch_commands_max,
        batch_bytes_max: config.proposal_batch_bytes_max,
        to_raft,
        raft_wakeup,
        reader,
        board,
        stopping: Cell::new(false),
        state: RefCell::new(ClientState::default()),
    });
    let client_addr = config.client_addr;
    let transport = match Transport::start(
        TransportConfig {
            node_id: config.id,
            listen_addr: client_addr,
            peers: Vec::new(),
            security,
            limits: Limits::default(),
        },
        server.clone(),
    ) {
        Ok(transport) => transport,
        Err(error) => {
            let _ = started.send(Err(NodeError::Transport(format!(
                "client address {client_addr}: {error}"
            ))));
            return;
        }
    };
    tracing::info!(node = config.id, executor = index, %client_addr, "serving clients");
    let _ = started.send(Ok(()));
    while !stop.is_requested() {
        let received =
            futures_lite::future::or(async { Some(from_raft.recv_async().await) }, async {
                runtime::sleep(STOP_POLL_INTERVAL).await;
                None
            })
            .await;
        match received {
            Some(Ok(results)) => server.deliver(results),
            // The Raft executor is gone: the node is stopping.
            Some(Err(_)) => break,
            None => {}
        }
    }
    server.shut_down();
    runtime::sleep(SHUTDOWN_FLUSH_DELAY).await;
    transport.close();
    drop(transport);
    super::wait_until_port_released(client_addr).await;
    tracing::info!(
        node = config.id,
        executor = index,
        "client executor stopped"
    );
}

/// A client batch with answers still outstanding.
struct PendingBatch {
    session: ClientSession,
    client_id: u64,
    /// Writes plus read groups not answered yet.
    outstanding: usize,
}

/// The reads of one client batch, answered together once their read index is applied.
struct PendingReads {
    batch: u64,
    requests: Vec<(u64, Command)>,
}

#[derive(Default)]
struct ClientState {
    next_token: u64,
    next_batch: u64,
    batches: HashMap<u64, PendingBatch>,
    /// Token -> (batch, sequence).
    writes: HashMap<u64, (u64, u64)>,
    reads: HashMap<u64, PendingReads>,
    /// Admin requests waiting for the Raft executor's answer, by token.
    admin: HashMap<u64, ClientSession>,
    /// The proposal batch being filled, and its command bytes.
    outgoing: Vec<(u64, Bytes)>,
    outgoing_bytes: usize,
    flush_scheduled: bool,
}

/// The client side of the node on one executor (the transport's inbound handler).
struct ClientServer {
    me: Weak<ClientServer>,
    id: NodeId,
    read_mode: ReadMode,
    limits: tern_kv::Limits,
    batch_commands_max: usize,
    batch_bytes_max: usize,
    to_raft: flume::Sender<ToRaft>,
    raft_wakeup: Arc<Wakeup>,
    reader: MapReader,
    board: Arc<StatusBoard>,
    stopping: Cell<bool>,
    state: RefCell<ClientState>,
}

/// Answers to send, grouped by client batch.
#[derive(Default)]
struct Answers {
    by_batch: HashMap<u64, Vec<ClientResponse>>,
    /// Batches that also get a `NotLeader` frame, with the leader hint.
    not_leader: HashMap<u64, Option<NodeId>>,
}

impl Answers {
    fn push(&mut self, batch: u64, sequence: u64, outcome: ClientOutcome) {
        if let ClientOutcome::Error(ClientError::NotLeader { leader_id }) = &outcome {
            self.not_leader.insert(batch, *leader_id);
        }
        self.by_batch
            .entry(batch)
            .or_default()
            .push(ClientResponse { sequence, outcome });
    }
}

impl Inbound for ClientServer {
    fn raft(&self, from: NodeId, _message: &tern_net::message::ArchivedRaftMessage) {
        // The client endpoint has no peers, so the transport refuses members; never reached.
        tracing::debug!(from, "ignored a Raft message on the client address");
    }

    fn client_requests(&self, session: &ClientSession, batch: &ArchivedClientRequestBatch) {
        self.take_batch(session, batch);
    }

    fn status_request(&self, session: &ClientSession, request: &ArchivedStatusRequest) {
        let status = self.board.node_status(request.request_id.to_native());
        if let Err(error) = session.send_status(&status) {
            tracing::debug!(%error, "status answer dropped");
        }
    }

    fn admin_request(
        &self,
        session: &ClientSession,
        request: &tern_net::message::ArchivedAdminRequest,
    ) {
        let request_id = request.request_id.to_native();
        let Ok(op) =
            rkyv::deserialize::<tern_net::message::AdminOp, rkyv::rancor::Error>(&request.op)
        else {
            return;
        };
        let mut state = self.state.borrow_mut();
        if state.admin.len() >= ADMIN_REQUESTS_PENDING_MAX || self.stopping.get() {
            drop(state);
            let mut refusal = self.board.admin_refusal(request_id);
            refusal.error = Some("this node is busy or shutting down; retry".into());
            let _ = session.send_admin(&refusal);
            return;
        }
        let token = state.next_token;
        state.next_token += 1;
        match self.to_raft.try_send(ToRaft::Admin {
            token,
            request_id,
            op,
        }) {
            Ok(()) => {
                state.admin.insert(token, session.clone());
                self.raft_wakeup.notify();
            }
            Err(_) => {
                drop(state);
                let mut refusal = self.board.admin_refusal(request_id);
                refusal.error = Some("this node is overloaded; retry".into());
                let _ = session.send_admin(&refusal);
            }
        }
    }
}

/// Admin requests one client executor keeps waiting for the Raft executor at once; more are
/// refused as busy (operators send them one at a time).
const ADMIN_REQUESTS_PENDING_MAX: usize = 64;

impl ClientServer {
    fn take_batch(&self, session: &ClientSession, batch: &ArchivedClientRequestBatch) {
        let client_id = batch.client_id.to_native();
        let answered_through = batch.answered_through.to_native();
        let path = read_path(&batch.read_consistency, self.read_mode);
        let status = self.board.get();
        let leading = status.role == Role::Leader;
        let mut immediate = Vec::new();
        let mut needs_not_leader = false;
        let mut writes: Vec<(u64, Bytes)> = Vec::new();
        let mut reads: Vec<(u64, Command)> = Vec::new();
        for request in batch.requests.iter() {
            let sequence = request.sequence.to_native();
            let answer = |outcome| ClientResponse { sequence, outcome };
            if self.stopping.get() {
                immediate.push(answer(ClientOutcome::Error(unavailable("shutting down"))));
                continue;
            }
            let bytes = request.command.as_slice();
            let command = match self.check(bytes) {
                Ok(command) => command,
                Err(error) => {
                    immediate.push(answer(ClientOutcome::Error(error)));
                    continue;
                }
            };
            let needs_leader = !command.is_read_only() || path != ReadPath::Local;
            if needs_leader && !leading {
                needs_not_leader = true;
                immediate.push(answer(ClientOutcome::Error(ClientError::NotLeader {
                    leader_id: status.leader,
                })));
            } else if command.is_read_only() {
                if path == ReadPath::Local {
                    let result = self.reader.read(&command);
                    immediate.push(answer(ClientOutcome::Ok(result.to_bytes())));
                } else {
                    reads.push((sequence, command));
                }
            } else {
                let mut proposal = Vec::with_capacity(bytes.len() + 32);
                encode_proposal(
                    &Proposal {
                        client_id,
                        sequence,
                        answered_through,
                        command: bytes,
                    },
                    &mut proposal,
                );
                writes.push((sequence, Bytes::from(proposal)));
            }
        }
        if !immediate.is_empty() {
            send_responses(session, client_id, immediate);
        }
        if needs_not_leader {
            self.send_not_leader(session, client_id, status.leader);
        }
        if writes.is_empty() && reads.is_empty() {
            return;
        }
        let mut answers = Answers::default();
        let batch_key = self.register(session, client_id, &mut writes, &mut reads, &mut answers);
        if let (Some(batch_key), ReadPath::Leader(consistency)) = (batch_key, path) {
            if !reads.is_empty() {
                self.request_read(batch_key, reads, consistency, &mut answers);
            }
        }
        self.send_answers(answers);
    }

    /// Decodes and checks one command; the error is what the client gets.
    fn check(&self, bytes: &[u8]) -> Result<Command, ClientError> {
        if bytes.len() > self.limits.command_bytes_max {
            return Err(ClientError::TooLarge {
                command_bytes: bytes.len() as u64,
                command_bytes_max: self.limits.command_bytes_max as u64,
            });
        }
        let command = Command::decode(bytes).map_err(|error| ClientError::InvalidCommand {
            reason: error.to_string(),
        })?;
        self.limits.check(&command, bytes.len()).map_err(|error| {
            // A size above a byte bound is "too large"; anything else (an empty key, too many
            // commands in a batch, a range limit) is an invalid command.
            if error.limit_name.ends_with("bytes_max") && error.found > error.limit {
                ClientError::TooLarge {
                    command_bytes: error.found,
                    command_bytes_max: error.limit,
                }
            } else {
                ClientError::InvalidCommand {
                    reason: error.to_string(),
                }
            }
        })?;
        Ok(command)
    }

    /// Registers a batch's writes (queued into the outgoing proposal batch) and its reads'
    /// batch entry. Returns the batch key, or `None` when everything was refused.
    fn register(
        &self,
        session: &ClientSession,
        client_id: u64,
        writes: &mut Vec<(u64, Bytes)>,
        reads: &mut Vec<(u64, Command)>,
        answers: &mut Answers,
    ) -> Option<u64> {
        let mut state = self.state.borrow_mut();
        let batch_key = state.next_batch;
        state.next_batch += 1;
        let pending = state.writes.len() + state.reads.len();
        if pending + writes.len() + 1 > PENDING_REQUESTS_MAX {
            drop(state);
            let overloaded = || ClientOutcome::Error(unavailable("overloaded, retry"));
            let mut responses: Vec<ClientResponse> = writes
                .drain(..)
                .map(|(sequence, _)| ClientResponse {
                    sequence,
                    outcome: overloaded(),
                })
                .collect();
            responses.extend(reads.drain(..).map(|(sequence, _)| ClientResponse {
                sequence,
                outcome: overloaded(),
            }));
            send_responses(session, client_id, responses);
            return None;
        }
        let outstanding = writes.len() + usize::from(!reads.is_empty());
        state.batches.insert(
            batch_key,
            PendingBatch {
                session: session.clone(),
                client_id,
                outstanding,
            },
        );
        for (sequence, proposal) in writes.drain(..) {
            let token = state.next_token;
            state.next_token += 1;
            state.writes.insert(token, (batch_key, sequence));
            let full = !state.outgoing.is_empty()
                && (state.outgoing.len() >= self.batch_commands_max
                    || state.outgoing_bytes + proposal.len() > self.batch_bytes_max);
            if full {
                let batch = std::mem::take(&mut state.outgoing);
                state.outgoing_bytes = 0;
                self.send_proposals(&mut state, batch, answers);
            }
            state.outgoing_bytes += proposal.len();
            state.outgoing.push((token, proposal));
        }
        if !state.outgoing.is_empty() && !state.flush_scheduled {
            // Flush after the other ready tasks (other sessions' frames) had their turn, so
            // their writes join this proposal batch.
            state.flush_scheduled = true;
            let me = self.me.clone();
            runtime::spawn(async move {
                runtime::yield_now().await;
                if let Some(server) = me.upgrade() {
                    server.flush();
                }
            });
        }
        Some(batch_key)
    }

    /// Sends the outgoing proposal batch to the Raft executor.
    fn flush(&self) {
        let mut answers = Answers::default();
        {
            let mut state = self.state.borrow_mut();
            state.flush_scheduled = false;
            let batch = std::mem::take(&mut state.outgoing);
            state.outgoing_bytes = 0;
            if !batch.is_empty() {
                self.send_proposals(&mut state, batch, &mut answers);
            }
        }
        self.send_answers(answers);
    }

    fn send_proposals(
        &self,
        state: &mut ClientState,
        batch: Vec<(u64, Bytes)>,
        answers: &mut Answers,
    ) {
        let refused = match self.to_raft.try_send(ToRaft::Proposals(batch)) {
            Ok(()) => {
                self.raft_wakeup.notify();
                return;
            }
            Err(flume::TrySendError::Full(ToRaft::Proposals(batch))) => {
                (batch, unavailable("overloaded, retry"))
            }
            Err(flume::TrySendError::Disconnected(ToRaft::Proposals(batch))) => {
                (batch, unavailable("shutting down"))
            }
            Err(_) => return,
        };
        let (batch, error) = refused;
        for (token, _) in batch {
            if let Some((batch_key, sequence)) = state.writes.remove(&token) {
                answers.push(batch_key, sequence, ClientOutcome::Error(error.clone()));
                finish_one(state, batch_key);
            }
        }
    }

    /// Asks the Raft executor for one read index covering a batch's reads.
    fn request_read(
        &self,
        batch_key: u64,
        reads: Vec<(u64, Command)>,
        consistency: ReadConsistency,
        answers: &mut Answers,
    ) {
        let mut state = self.state.borrow_mut();
        let token = state.next_token;
        state.next_token += 1;
        let error = match self.to_raft.try_send(ToRaft::Read { token, consistency }) {
            Ok(()) => {
                self.raft_wakeup.notify();
                state.reads.insert(
                    token,
                    PendingReads {
                        batch: batch_key,
                        requests: reads,
                    },
                );
                return;
            }
            Err(flume::TrySendError::Full(_)) => unavailable("overloaded, retry"),
            Err(flume::TrySendError::Disconnected(_)) => unavailable("shutting down"),
        };
        for (sequence, _) in reads {
            answers.push(batch_key, sequence, ClientOutcome::Error(error.clone()));
        }
        finish_one(&mut state, batch_key);
    }

    /// Routes the Raft executor's results to their sessions.
    fn deliver(&self, results: FromRaft) {
        let mut answers = Answers::default();
        {
            let mut state = self.state.borrow_mut();
            for (token, outcome) in results.writes {
                let Some((batch_key, sequence)) = state.writes.remove(&token) else {
                    continue;
                };
                let outcome = match outcome {
                    WriteOutcome::Applied(result) => ClientOutcome::Ok(result.to_bytes()),
                    WriteOutcome::Failed(error) => ClientOutcome::Error(error),
                };
                answers.push(batch_key, sequence, outcome);
                finish_one(&mut state, batch_key);
            }
            for (token, answer) in results.reads {
                let Some(group) = state.reads.remove(&token) else {
                    continue;
                };
                for (sequence, command) in group.requests {
                    let outcome = match &answer {
                        ReadAnswer::Ready => {
                            ClientOutcome::Ok(self.reader.read(&command).to_bytes())
                        }
                        ReadAnswer::Failed(error) => ClientOutcome::Error(error.clone()),
                    };
                    answers.push(group.batch, sequence, outcome);
                }
                finish_one(&mut state, group.batch);
            }
            for (token, response) in results.admin {
                if let Some(session) = state.admin.remove(&token) {
                    if let Err(error) = session.send_admin(&response) {
                        tracing::debug!(%error, "admin answer dropped");
                    }
                }
            }
        }
        self.send_answers(answers);
    }

    /// Fails everything pending with "shutting down" and refuses new requests.
    fn shut_down(&self) {
        self.stopping.set(true);
        let mut answers = Answers::default();
        {
            let mut state = self.state.borrow_mut();
            let writes: Vec<(u64, u64)> = state.writes.drain().map(|(_, write)| write).collect();
            for (batch_key, sequence) in writes {
                answers.push(
                    batch_key,
                    sequence,
                    ClientOutcome::Error(unavailable("shutting down")),
                );
                finish_one(&mut state, batch_key);
            }
            let reads: Vec<PendingReads> = state.reads.drain().map(|(_, reads)| reads).collect();
            for group in reads {
                for (sequence, _) in group.requests {
                    answers.push(
                        group.batch,
                        sequence,
                        ClientOutcome::Error(unavailable("shutting down")),
                    );
                }
                finish_one(&mut state, group.batch);
            }
            state.outgoing.clear();
            state.outgoing_bytes = 0;
            state.admin.clear();
        }
        self.send_answers(answers);
    }

    /// Sends each batch's answers (and its `NotLeader` frame, when one is due).
    fn send_answers(&self, answers: Answers) {
        if answers.by_batch.is_empty() {
            return;
        }
        let mut state = self.state.borrow_mut();
        for (batch_key, responses) in answers.by_batch {
            let Some(batch) = state.batches.get(&batch_key) else {
                continue;
            };
            let (session, client_id) = (batch.session.clone(), batch.client_id);
            if batch.outstanding == 0 {
                state.batches.remove(&batch_key);
            }
            send_responses(&session, client_id, responses);
            if let Some(leader) = answers.not_leader.get(&batch_key) {
                self.send_not_leader(&session, client_id, *leader);
            }
        }
    }

    fn send_not_leader(&self, session: &ClientSession, client_id: u64, leader: Option<NodeId>) {
        // Never point a client at ourselves: when we are not leading, our own id is stale.
        let leader =
            leader.filter(|leader| *leader != self.id || self.board.get().role == Role::Leader);
        let not_leader = NotLeader {
            client_id,
            leader_id: leader,
            leader_addr: leader
                .and_then(|leader| self.board.client_addr_of(leader, self.id))
                .map(|addr| addr.to_string()),
        };
        if let Err(error) = session.send_not_leader(&not_leader) {
            tracing::debug!(%error, "not-leader answer dropped");
        }
    }
}

/// One of a batch's outstanding answers is done; the batch entry is removed once all are and
/// its answers were sent (`send_answers` removes entries at zero).
fn finish_one(state: &mut ClientState, batch_key: u64) {
    if let Some(batch) = state.batches.get_mut(&batch_key) {
        batch.outstanding = batch.outstanding.saturating_sub(1);
    }
}

/// Queues answers on a session. A full or closed session drops them: the client times out and
/// retries (writes are exactly-once through the session's sequence numbers).
fn send_responses(session: &ClientSession, client_id: u64, responses: Vec<ClientResponse>) {
    if let Err(error) = session.send_responses(&ClientResponseBatch {
        client_id,
        responses,
    }) {
        tracing::debug!(%error, "client answers dropped");
    }
}
