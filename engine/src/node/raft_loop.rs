//! The Raft executor: owns the core, the WAL, the state machine and the peer transport, so the
//! hot path (propose, append, sync, commit, apply) never crosses a lock.
//!
//! One loop turn: tick the core for every millisecond that passed, take the client executors'
//! proposal batches and read requests, then carry out every `Ready` in the order its contract
//! gives (raft/ready.rs):
//! 1. send `messages` at once;
//! 2. start the WAL writes (truncation, entries, hard state) without awaiting them: the WAL
//!    group-commits everything queued while a sync is in flight;
//! 3. the persist task awaits each Ready's writes in order, then reports `on_persisted` and sends
//!    `messages_after_persist` (for every Ready that has either, in order);
//! 4. apply `committed_entries` and report `on_applied`; each client write's result goes back to
//!    the client executor that proposed it;
//! 5. hand `reads` back to the client executors, which answer from the applied map.
//!
//! Peer messages are stepped into the core as they arrive (the transport calls `Inbound::raft`
//! on this executor) and the loop is woken to take the resulting Ready.
//!
//! Fatal errors (a failed WAL write or sync, a damaged log at start) stop the node: the error is
//! recorded in `Stop` and every executor winds down; the node never serves after its WAL failed.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tern_kv::{Applied, StateMachine};
use tern_net::message::{
    ArchivedClientRequestBatch, ArchivedRaftMessage, ArchivedStatusRequest, ClientOutcome,
    ClientResponse, ClientResponseBatch,
};
use tern_net::runtime;
use tern_net::tls::Security;
use tern_net::transport::{ClientSession, Inbound, Limits, Transport, TransportConfig};
use tern_net::NodeId;
use tern_wal::{Durable, Wal, WalOptions};

use super::address_book::AddressBook;
use super::admin;
use super::channels::{
    not_leader, unavailable, FromRaft, ReadAnswer, Stop, ToRaft, Wakeup, WriteOutcome,
};
use super::convert;
use super::loop_watch::{LoopWatch, StepRecord};
use super::snapshot_store::SnapshotStore;
use super::snapshots::{self, Snapshots};
use super::status::StatusBoard;
use super::{NodeConfig, NodeError};
use crate::raft::{
    self, Entry, LogIndex, MessageBody, Payload, ProposeError, Raft, SnapshotMeta, Term,
};

/// Readies whose WAL writes may be in flight at once. Beyond it the loop stops taking Readies
/// (the core keeps accumulating, within its own bounds) until the disk catches up. Generous on
/// purpose: while the loop takes no Ready it sends no heartbeats or heartbeat answers either,
/// so a bound that a slow fsync (hundreds of ms here under I/O pressure) can fill turns a slow
/// disk into a leader change. The core's own bounds (`uncommitted_entries_max`, the in-flight
/// window) limit how many Readies carry entries; each item is a few hundred bytes.
const PERSISTS_IN_FLIGHT_MAX: usize = 65_536;

/// A WARN names the state when entries wait this long without the commit index moving.
const COMMIT_STALL_WARN_AFTER: Duration = Duration::from_secs(2);

/// Readies taken per loop turn before the loop yields to the transport's tasks.
const READY_ROUNDS_PER_TURN_MAX: usize = 16;

/// Everything the Raft executor starts from (moved into its thread).
pub(crate) struct RaftSetup {
    pub(crate) config: NodeConfig,
    pub(crate) security: Security,
    pub(crate) state_machine: StateMachine,
    /// One channel per client executor, in executor order.
    pub(crate) inputs: Vec<flume::Receiver<ToRaft>>,
    pub(crate) outputs: Vec<flume::Sender<FromRaft>>,
    pub(crate) wakeup: Arc<Wakeup>,
    pub(crate) board: Arc<StatusBoard>,
    pub(crate) stop: Arc<Stop>,
    pub(crate) started: SyncSender<Result<(), NodeError>>,
}

/// A client write waiting for its entry to be applied.
struct PendingWrite {
    executor: usize,
    token: u64,
    term: Term,
}

/// The state the loop, the persist task and the inbound handler share on this executor.
struct Core {
    raft: Raft,
    state_machine: StateMachine,
    /// Proposed entries by index; resolved when the apply passes their index. Bounded by the
    /// core's `uncommitted_entries_max` (plus entries of a lost leadership, resolved as the
    /// next leader's entries are applied over them).
    pending_writes: BTreeMap<LogIndex, PendingWrite>,
    /// Read requests by the id given to the core; bounded by `pending_reads_max`.
    pending_reads: HashMap<raft::ReadId, (usize, u64)>,
    next_read_id: raft::ReadId,
    /// The term and vote last handed to the WAL.
    saved_term_vote: (Term, Option<NodeId>),
    /// Results gathered for each client executor during this turn.
    outbox: Vec<FromRaft>,
    /// The longest step the persist task or the peer handler took since the loop's last turn
    /// (for the stall WARN).
    steps: StepRecord,
    /// Taking, sending and receiving snapshots.
    snapshots: Snapshots,
    /// The (index, term) the WAL's log starts after: the newest snapshot's, or (0, 0).
    log_base: (LogIndex, Term),
    /// A failure that must stop the node (a snapshot install that could not be made durable).
    fatal: Option<String>,
    /// The members' addresses the command line gave (the membership's book overlays it).
    book_base: AddressBook,
    /// The membership index whose address book the transport and status board have.
    synced_membership_index: Option<LogIndex>,
    board: Arc<StatusBoard>,
}

/// One Ready's persist half, waiting for the disk.
struct PendingPersist {
    durables: Vec<Durable>,
    /// The log's last (index, term) once these writes are durable.
    last: Option<(LogIndex, Term)>,
    messages_after_persist: Vec<raft::Message>,
}

/// Runs the Raft executor until the node stops.
pub(crate) async fn run(setup: RaftSetup) {
    let RaftSetup {
        config,
        security,
        state_machine,
        inputs,
        outputs,
        wakeup,
        board,
        stop,
        started,
    } = setup;
    let wal_dir = config.data_dir.join("wal");
    let snapshot_dir = config.data_dir.join("snapshots");
    let mut state_machine = state_machine;
    let (store, snapshot) = match load_snapshot(&snapshot_dir, &mut state_machine) {
        Ok(loaded) => loaded,
        Err(error) => {
            let _ = started.send(Err(error));
            return;
        }
    };
    let log_base = snapshot
        .as_ref()
        .map_or((0, 0), |meta| (meta.index, meta.term));
    let (wal, recovered) = match open_wal(&config, &wal_dir, snapshot).await {
        Ok(opened) => opened,
        Err(error) => {
            let _ = started.send(Err(error));
            return;
        }
    };
    let mut raft_config = config.raft_config();
    raft_config.seed = seed(config.id);
    let raft = match Raft::new(raft_config, recovered) {
        Ok(raft) => raft,
        Err(error) => {
            let _ = started.send(Err(wal_error(
                &wal_dir,
                format!("the recovered log cannot start the Raft core: {error}"),
            )));
            let _ = wal.close().await;
            return;
        }
    };
    let status = raft.status();
    let core = Rc::new(RefCell::new(Core {
        saved_term_vote: (status.term, status.voted_for),
        raft,
        state_machine,
        pending_writes: BTreeMap::new(),
        pending_reads: HashMap::new(),
        next_read_id: 1,
        outbox: (0..outputs.len()).map(|_| FromRaft::default()).collect(),
        steps: StepRecord::default(),
        snapshots: Snapshots::new(store, config.snapshot_entries, log_base.0),
        log_base,
        fatal: None,
        book_base: AddressBook::from_flags(
            &config.peers,
            &config.peer_client_addrs,
            (config.id, config.client_addr),
        ),
        synced_membership_index: None,
        board: board.clone(),
    }));
    let inbound = Rc::new(PeerInbound {
        core: core.clone(),
        wakeup: wakeup.clone(),
        board: board.clone(),
    });
    let peer_addr = config.own_peer_addr().unwrap_or(config.client_addr);
    let transport = match Transport::start(
        TransportConfig {
            node_id: config.id,
            listen_addr: peer_addr,
            peers: config.other_peers(),
            security,
            limits: Limits::default(),
        },
        inbound,
    ) {
        Ok(transport) => Rc::new(transport),
        Err(error) => {
            let _ = started.send(Err(NodeError::Transport(format!(
                "peer address {peer_addr}: {error}"
            ))));
            let _ = wal.close().await;
            return;
        }
    };
    tracing::info!(node = config.id, %peer_addr, status = ?core.borrow().raft.status(), "Raft executor started");
    let _ = started.send(Ok(()));

    let (persist_sender, persist_receiver) = flume::bounded(PERSISTS_IN_FLIGHT_MAX);
    let (persist_done_sender, persist_done) = flume::bounded::<()>(1);
    runtime::spawn(persist_task(
        persist_receiver,
        core.clone(),
        transport.clone(),
        wakeup.clone(),
        stop.clone(),
        wal_dir.clone(),
        persist_done_sender,
    ));

    let start = Instant::now();
    let mut ticks_done: u64 = 0;
    let mut last_seen = (0, raft::Role::Follower, None);
    let mut stall_watch = (0, Instant::now());
    let batches_per_turn = config.proposal_queue_batches_max;
    let mut watch = LoopWatch::new(config.id);
    loop {
        if stop.is_requested() {
            break;
        }
        let due = start.elapsed().as_millis() as u64;
        watch.turn_starts(&core.borrow().steps, due.saturating_sub(ticks_done));
        let transfers;
        let more = {
            let mut core = core.borrow_mut();
            let core = &mut *core;
            // Every elapsed millisecond is a tick, none skipped: a leader whose ticks lagged
            // real time would hold its lease too long.
            while ticks_done < due {
                core.raft.tick();
                ticks_done += 1;
            }
            watch.phase_done("ticks");
            for (executor, input) in inputs.iter().enumerate() {
                for _ in 0..batches_per_turn {
                    match input.try_recv() {
                        Ok(message) => core.take_input(executor, message),
                        Err(_) => break,
                    }
                }
            }
            watch.phase_done("client inputs");
            let mut rounds = 0;
            while rounds < READY_ROUNDS_PER_TURN_MAX
                && !persist_sender.is_full()
                && core.raft.has_ready()
            {
                let ready = core.raft.ready();
                core.carry_out(ready, &transport, &wal, &persist_sender);
                rounds += 1;
            }
            watch.phase_done("readies");
            if let Some((index, previous)) = core.snapshots.take_finished() {
                core.compact_through(index, previous, &wal);
            }
            transfers = core.snapshots.transfers_to_start();
            core.sync_addresses(&transport);
            if let Some(detail) = core.fatal.take() {
                stop.fail(wal_error(&snapshot_dir, detail));
            }
            for (executor, batch) in core.outbox.iter_mut().enumerate() {
                if batch.is_empty() {
                    continue;
                }
                let batch = std::mem::take(batch);
                if let Err(flume::TrySendError::Full(_)) = outputs[executor].try_send(batch) {
                    tracing::warn!(
                        executor,
                        "client executor's result queue is full; dropping results (clients retry)"
                    );
                }
            }
            let status = core.raft.status();
            if (status.term, status.role, status.leader) != last_seen {
                last_seen = (status.term, status.role, status.leader);
                tracing::info!(
                    node = status.id,
                    term = status.term,
                    role = super::status::role_name(status.role),
                    leader = ?status.leader,
                    last_index = status.last_index,
                    commit = status.commit_index,
                    "role or leader changed"
                );
            }
            if status.commit_index != stall_watch.0 || status.last_index == status.commit_index {
                stall_watch = (status.commit_index, Instant::now());
            } else if stall_watch.1.elapsed() > COMMIT_STALL_WARN_AFTER {
                stall_watch.1 = Instant::now();
                let peers: Vec<(NodeId, bool)> = config
                    .other_peers()
                    .iter()
                    .map(|(peer, _)| (*peer, transport.is_connected(*peer)))
                    .collect();
                tracing::warn!(
                    node = status.id,
                    ?status,
                    persists_in_flight = persist_sender.len(),
                    pending_writes = core.pending_writes.len(),
                    peers_connected = ?peers,
                    "entries wait for commit and the commit index has not moved for {COMMIT_STALL_WARN_AFTER:?}"
                );
            }
            board.publish(status);
            watch.phase_done("results and status");
            core.raft.has_ready() && !persist_sender.is_full()
        };
        for message in transfers {
            spawn_transfer(&core, &transport, &wakeup, message);
        }
        if more {
            watch.turn_ends(Instant::now(), "yielded to other tasks");
            runtime::yield_now().await;
            continue;
        }
        let next_tick = start + Duration::from_millis(ticks_done + 1);
        watch.turn_ends(next_tick, "waited for the next tick or a wake-up");
        let wait = next_tick.saturating_duration_since(Instant::now());
        futures_lite::future::or(runtime::sleep(wait), wakeup.wait()).await;
    }

    // Shutdown: let the persist task finish what is queued, close the WAL (which flushes it),
    // then the peer links.
    drop(persist_sender);
    let stats = wal.stats();
    tracing::info!(
        node = config.id,
        groups = stats.groups,
        segment_syncs = stats.segment_syncs,
        bytes = stats.segment_bytes_written,
        busy = ?stats.flush_busy,
        "WAL work since start"
    );
    let closed = wal.close().await;
    let _ = persist_done.recv_async().await;
    transport.close();
    drop(transport);
    super::wait_until_port_released(peer_addr).await;
    if let Err(error) = closed {
        stop.fail(wal_error(&wal_dir, error.to_string()));
    }
    tracing::info!(node = config.id, "Raft executor stopped");
}

impl Core {
    /// Takes one message from client executor `executor`.
    fn take_input(&mut self, executor: usize, input: ToRaft) {
        match input {
            ToRaft::Proposals(proposals) => {
                let (tokens, commands): (Vec<u64>, Vec<Bytes>) = proposals.into_iter().unzip();
                let failure = match self.raft.propose(commands) {
                    Ok((first, _, term)) => {
                        for (offset, token) in tokens.into_iter().enumerate() {
                            let pending = PendingWrite {
                                executor,
                                token,
                                term,
                            };
                            let index = first + offset as LogIndex;
                            if let Some(old) = self.pending_writes.insert(index, pending) {
                                self.outbox[old.executor].writes.push((
                                    old.token,
                                    WriteOutcome::Failed(unavailable(
                                        "the leader changed before the write committed; retry",
                                    )),
                                ));
                            }
                        }
                        return;
                    }
                    Err(ProposeError::NotLeader { leader_hint }) => not_leader(leader_hint),
                    Err(ProposeError::Backpressure { .. }) => unavailable("overloaded, retry"),
                    Err(ProposeError::TransferInProgress) => {
                        unavailable("leadership transfer in progress, retry")
                    }
                    Err(ProposeError::Empty) => return,
                };
                let outbox = &mut self.outbox[executor].writes;
                for token in tokens {
                    outbox.push((token, WriteOutcome::Failed(failure.clone())));
                }
            }
            ToRaft::Admin {
                token,
                request_id,
                op,
            } => {
                let response =
                    admin::handle(&mut self.raft, &self.book_base, &self.board, request_id, op);
                self.outbox[executor].admin.push((token, response));
            }
            ToRaft::Read { token, consistency } => {
                let id = self.next_read_id;
                self.next_read_id += 1;
                match self.raft.request_read(id, consistency) {
                    Ok(()) => {
                        self.pending_reads.insert(id, (executor, token));
                    }
                    Err(error) => self.outbox[executor]
                        .reads
                        .push((token, ReadAnswer::Failed(unavailable(&format!("{error}"))))),
                }
            }
        }
    }

    /// Carries out one Ready in its contract's order (see the module documentation).
    fn carry_out(
        &mut self,
        ready: raft::Ready,
        transport: &Transport,
        wal: &Wal,
        persist: &flume::Sender<PendingPersist>,
    ) {
        for message in &ready.messages {
            if matches!(message.body, MessageBody::InstallSnapshot { .. }) {
                self.snapshots.queue_send(message.clone());
            } else {
                send_message(transport, message);
            }
        }
        let mut durables = Vec::new();
        if let Some(meta) = &ready.snapshot {
            match self.install_snapshot(meta, wal) {
                Ok(durable) => durables.push(durable),
                Err(detail) => {
                    self.fatal = Some(detail);
                    return;
                }
            }
        }
        if let Some(from) = ready.truncate_from {
            durables.push(wal.truncate_suffix(from));
        }
        if !ready.entries.is_empty() {
            let entries: Vec<tern_wal::Entry> =
                ready.entries.iter().map(convert::entry_to_wal).collect();
            durables.push(wal.append(&entries));
        }
        if let Some(hard_state) = &ready.hard_state {
            // Only a term or vote change must be durable before what depends on it is sent.
            // A change of the commit index alone is a hint (Raft's figure 2 does not persist
            // it): writing it would cost a hard-state fsync per commit advance, so it is saved
            // only along with the next term or vote change. A restarted node learns the commit
            // index again from the leader.
            let term_vote = (hard_state.term, hard_state.voted_for);
            if term_vote != self.saved_term_vote {
                self.saved_term_vote = term_vote;
                durables.push(wal.save_hard_state(convert::hard_state_to_wal(hard_state)));
            }
        }
        if !durables.is_empty() || !ready.messages_after_persist.is_empty() {
            // The WAL's in-memory log already reflects this Ready's writes: once they are
            // durable (Readies complete in order), its last entry is the durable log's last.
            let last_index = wal.last_index();
            let last = if last_index >= wal.first_index() && last_index > 0 {
                wal.term_at(last_index).ok().map(|term| (last_index, term))
            } else if last_index > 0 && last_index == self.log_base.0 {
                // The log is empty after a snapshot: its end is the snapshot's.
                Some(self.log_base)
            } else {
                None
            };
            // Never full here: the loop checks for room before taking a Ready. Disconnected
            // means the persist task ended after a WAL failure; the loop is stopping.
            let _ = persist.try_send(PendingPersist {
                durables,
                last,
                messages_after_persist: ready.messages_after_persist,
            });
        }
        if let Some(last) = ready.committed_entries.last().map(|entry| entry.index) {
            for entry in &ready.committed_entries {
                self.apply(entry);
            }
            self.raft.on_applied(last);
            self.snapshots.maybe_take(&self.raft, &self.state_machine);
        }
        for outcome in ready.reads {
            let (id, answer) = match outcome {
                raft::ReadOutcome::Ready { id, .. } => (id, ReadAnswer::Ready),
                raft::ReadOutcome::NotLeader { id, leader_hint } => {
                    (id, ReadAnswer::Failed(not_leader(leader_hint)))
                }
            };
            if let Some((executor, token)) = self.pending_reads.remove(&id) {
                self.outbox[executor].reads.push((token, answer));
            }
        }
    }

    /// Installs the leader's snapshot the core adopted: the file is made durable first (so a
    /// crash after the log restart finds it), then the map takes its state, and the WAL
    /// restarts empty after it (the returned write). An error stops the node.
    fn install_snapshot(&mut self, meta: &SnapshotMeta, wal: &Wal) -> Result<Durable, String> {
        let received = self.snapshots.take_received(meta).ok_or_else(|| {
            format!("the core installs snapshot {meta:?}, which this node never received whole")
        })?;
        self.snapshots
            .store
            .adopt(&received.path, meta.index, meta.term)?;
        self.state_machine
            .install(received.file.state())
            .map_err(|error| format!("the received snapshot's state is invalid: {error}"))?;
        if self.state_machine.applied_index() != meta.index {
            return Err(format!(
                "the received snapshot's state is at index {}, its metadata says {}",
                self.state_machine.applied_index(),
                meta.index
            ));
        }
        // Writes this node proposed as an earlier leader and that the snapshot covers cannot
        // be matched to their results any more: their clients retry.
        while let Some(first) = self.pending_writes.first_entry() {
            if *first.key() > meta.index {
                break;
            }
            let pending = first.remove();
            self.outbox[pending.executor].writes.push((
                pending.token,
                WriteOutcome::Failed(unavailable(
                    "the leader changed before the write committed; retry",
                )),
            ));
        }
        self.log_base = (meta.index, meta.term);
        self.snapshots.newest_index = meta.index;
        tracing::info!(
            index = meta.index,
            term = meta.term,
            "installed the leader's snapshot"
        );
        Ok(wal.restart_at(meta.index + 1))
    }

    /// Gives the transport a link to every member of the membership in effect, and the status
    /// board their client addresses, whenever the membership changed.
    fn sync_addresses(&mut self, transport: &Transport) {
        let index = self.raft.membership_index();
        if self.synced_membership_index == Some(index) {
            return;
        }
        self.synced_membership_index = Some(index);
        let book = admin::current_book(&self.raft, &self.book_base);
        let own = self.raft.status().id;
        let mut client_addrs = Vec::new();
        for (id, addresses) in &book.members {
            if *id != own && transport.add_peer(*id, addresses.peer) {
                tracing::info!(peer = id, addr = %addresses.peer, "link to a new member");
            }
            if let Some(client) = addresses.client {
                client_addrs.push((*id, client));
            }
        }
        self.board.set_peer_client_addrs(client_addrs);
    }

    /// A snapshot through `index` is durable: the core's log drops what it covers, the WAL
    /// what the `previous` snapshot covers (the fallback if the newest file is damaged).
    fn compact_through(&mut self, index: LogIndex, previous: LogIndex, wal: &Wal) {
        if let Err(error) = self.raft.compact(index) {
            tracing::warn!(%error, "the core refused to compact after a snapshot");
            return;
        }
        let base = self.raft.log_snapshot();
        self.log_base = (base.index, base.term);
        if previous == 0 {
            return;
        }
        let removal = wal.compact_through(previous);
        runtime::spawn(async move {
            if let Err(error) = removal.await {
                tracing::warn!(%error, "removing WAL segments after a snapshot failed");
            }
        });
    }

    /// Applies one committed entry and resolves the writes waiting at or below its index.
    fn apply(&mut self, entry: &Entry) {
        let applied = match &entry.payload {
            // A membership entry changes nothing in the map (the core already uses it).
            Payload::Noop | Payload::Membership(_) => {
                self.state_machine.apply_noop(entry.index);
                None
            }
            Payload::Command(bytes) => Some(self.state_machine.apply(entry.index, bytes)),
        };
        let mut applied = applied;
        while let Some(first) = self.pending_writes.first_entry() {
            if *first.key() > entry.index {
                break;
            }
            let index = *first.key();
            let pending = first.remove();
            let outcome = if index == entry.index && pending.term == entry.term {
                match applied.take() {
                    Some(Applied::Client { result, .. }) => WriteOutcome::Applied(result),
                    Some(Applied::Undecodable { reason }) => {
                        WriteOutcome::Failed(tern_net::message::ClientError::InvalidCommand {
                            reason,
                        })
                    }
                    None => WriteOutcome::Failed(unavailable(
                        "the leader changed before the write committed; retry",
                    )),
                }
            } else {
                WriteOutcome::Failed(unavailable(
                    "the leader changed before the write committed; retry",
                ))
            };
            self.outbox[pending.executor]
                .writes
                .push((pending.token, outcome));
        }
    }
}

/// Awaits each Ready's writes in order; then reports them persisted and sends what waited.
async fn persist_task(
    queue: flume::Receiver<PendingPersist>,
    core: Rc<RefCell<Core>>,
    transport: Rc<Transport>,
    wakeup: Arc<Wakeup>,
    stop: Arc<Stop>,
    wal_dir: PathBuf,
    _done: flume::Sender<()>,
) {
    while let Ok(pending) = queue.recv_async().await {
        for durable in pending.durables {
            if let Err(error) = durable.await {
                // Nothing after a failed write or sync may be reported durable: stop the node.
                stop.fail(wal_error(&wal_dir, error.to_string()));
                wakeup.notify();
                return;
            }
        }
        let started = Instant::now();
        if let Some((index, term)) = pending.last {
            core.borrow_mut().raft.on_persisted(index, term);
        }
        for message in &pending.messages_after_persist {
            send_message(&transport, message);
        }
        core.borrow()
            .steps
            .record("persist task: on_persisted and sends", started.elapsed());
        wakeup.notify();
    }
}

/// Queues a message for its peer. A full queue drops it: Raft retransmits what matters.
fn send_message(transport: &Transport, message: &raft::Message) {
    let wire = convert::message_to_wire(message);
    if let Err(error) = transport.send(message.to, &wire) {
        tracing::debug!(to = message.to, %error, "peer message dropped");
    }
}

/// Opens the WAL and reads the whole log back for the core.
async fn open_wal(
    config: &NodeConfig,
    wal_dir: &std::path::Path,
    snapshot: Option<SnapshotMeta>,
) -> Result<(Wal, raft::Recovered), NodeError> {
    let options = WalOptions {
        segment_bytes: config.wal_segment_bytes,
        ..WalOptions::default()
    };
    let (wal, recovered) = Wal::open(wal_dir, options)
        .await
        .map_err(|error| wal_error(wal_dir, error.to_string()))?;
    if let Some((path, offset)) = &recovered.torn_tail {
        tracing::warn!(file = %path.display(), offset, "the WAL ended in a torn write that was never acknowledged; it was cut off");
    }
    let (base_index, base_term) = snapshot
        .as_ref()
        .map_or((0, 0), |meta| (meta.index, meta.term));
    let (first, mut last) = (recovered.first_index, recovered.last_index);
    if first > base_index + 1 {
        return Err(wal_error(
            wal_dir,
            format!(
                "the log starts at index {first}, but the newest snapshot ends at {base_index}: \
                 entries {}..{} are missing (was the snapshots directory removed or damaged?)",
                base_index + 1,
                first - 1
            ),
        ));
    }
    // The log must continue the snapshot: it holds the snapshot's last entry with its term
    // (or starts right after it). Otherwise (a crash while installing a leader's snapshot,
    // after the file was durable) the old log is discarded, as the install would have done.
    let continues = base_index == 0
        || (last >= base_index
            && (first == base_index + 1 || wal.term_at(base_index).ok() == Some(base_term)));
    if !continues {
        tracing::warn!(
            snapshot_index = base_index,
            first,
            last,
            "the WAL does not continue the newest snapshot (an interrupted install); restarting it after the snapshot"
        );
        wal.restart_at(base_index + 1)
            .await
            .map_err(|error| wal_error(wal_dir, error.to_string()))?;
        last = base_index;
    }
    let mut entries = Vec::new();
    if last > base_index {
        let stored = wal
            .read_range(base_index + 1..last + 1)
            .map_err(|error| wal_error(wal_dir, error.to_string()))?;
        entries.reserve(stored.len());
        for entry in stored {
            entries
                .push(convert::entry_from_wal(entry).map_err(|detail| wal_error(wal_dir, detail))?);
        }
    }
    let hard_state = reconcile(
        recovered
            .hard_state
            .as_ref()
            .map(convert::hard_state_from_wal)
            .unwrap_or_default(),
        (base_index, base_term),
        &entries,
    );
    tracing::info!(dir = %wal_dir.display(), snapshot_index = base_index, entries = entries.len(), ?hard_state, "WAL recovered");
    Ok((
        wal,
        raft::Recovered {
            hard_state,
            snapshot,
            entries,
        },
    ))
}

/// Makes the hard state agree with the recovered entries. The WAL syncs a group's entries and
/// its hard state concurrently (and writes them one after the other), so a crash can leave one
/// durable without the other:
/// - entries of a term above the durable term (the term was adopted in the same Ready): the
///   term is raised to theirs with no vote. Sound: nothing that depended on that Ready was
///   sent (it waits for the whole Ready to be durable), so no vote was cast in that term;
/// - a commit index beyond the durable entries: lowered to the last entry. Sound: the commit
///   index is a hint (figure 2 does not persist it); the leader teaches it again.
fn reconcile(
    mut hard_state: raft::HardState,
    (base_index, base_term): (LogIndex, Term),
    entries: &[Entry],
) -> raft::HardState {
    let last_term = entries.last().map_or(base_term, |entry| entry.term);
    if last_term > hard_state.term {
        tracing::warn!(
            durable_term = hard_state.term,
            last_term,
            "the WAL's last entries are from a later term than its hard state (a crash between \
             the two writes); adopting that term with no vote"
        );
        hard_state.term = last_term;
        hard_state.voted_for = None;
    }
    let last_index = base_index + entries.len() as LogIndex;
    // Everything in the snapshot was committed when it was taken.
    hard_state.commit = hard_state.commit.max(base_index);
    if hard_state.commit > last_index {
        tracing::warn!(
            commit = hard_state.commit,
            last_index,
            "the WAL's hard state commits beyond its last entry (a crash between the two \
             writes); lowering the commit index to the last entry"
        );
        hard_state.commit = last_index;
    }
    hard_state
}

/// Opens the snapshot directory and restores the state machine from the newest snapshot that
/// reads back whole (damaged ones are reported and skipped).
fn load_snapshot(
    dir: &std::path::Path,
    state_machine: &mut StateMachine,
) -> Result<(SnapshotStore, Option<SnapshotMeta>), NodeError> {
    let store = SnapshotStore::open(dir).map_err(|detail| wal_error(dir, detail))?;
    let (newest, warnings) = store
        .load_newest()
        .map_err(|detail| wal_error(dir, detail))?;
    for warning in warnings {
        tracing::warn!("damaged snapshot file: {warning}");
    }
    let Some(file) = newest else {
        return Ok((store, None));
    };
    state_machine.install(file.state()).map_err(|error| {
        wal_error(
            dir,
            format!(
                "the snapshot at index {} has an invalid state: {error}",
                file.meta.index
            ),
        )
    })?;
    if state_machine.applied_index() != file.meta.index {
        return Err(wal_error(
            dir,
            format!(
                "the snapshot at index {} holds the state at index {}",
                file.meta.index,
                state_machine.applied_index()
            ),
        ));
    }
    tracing::info!(
        index = file.meta.index,
        term = file.meta.term,
        "state restored from a snapshot"
    );
    Ok((store, Some(file.meta)))
}

/// Runs one snapshot transfer to a follower on this executor; the core hears how it ended.
fn spawn_transfer(
    core: &Rc<RefCell<Core>>,
    transport: &Rc<Transport>,
    wakeup: &Arc<Wakeup>,
    message: raft::Message,
) {
    let (core, transport, wakeup) = (core.clone(), transport.clone(), wakeup.clone());
    runtime::spawn(async move {
        let store = core.borrow().snapshots.store.clone();
        let delivered = snapshots::transfer(&store, &transport, &message).await;
        {
            let mut core = core.borrow_mut();
            core.snapshots.transfer_ended(message.to);
            core.raft.report_snapshot(message.to, delivered);
        }
        wakeup.notify();
    });
}

fn wal_error(dir: &std::path::Path, detail: String) -> NodeError {
    NodeError::Wal {
        dir: dir.display().to_string(),
        detail,
    }
}

/// A seed for the election-timeout randomness: differs between nodes and restarts.
fn seed(id: NodeId) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    nanos ^ id.rotate_left(32) ^ u64::from(std::process::id())
}

/// Peer traffic into the core; clients that reach the peer port are told to use the client
/// address.
struct PeerInbound {
    core: Rc<RefCell<Core>>,
    wakeup: Arc<Wakeup>,
    board: Arc<StatusBoard>,
}

impl Inbound for PeerInbound {
    fn raft(&self, from: NodeId, message: &ArchivedRaftMessage) {
        if let tern_net::message::ArchivedRaftBody::SnapshotChunk {
            index,
            term,
            offset,
            data,
            last,
        } = &message.body
        {
            if let Ok(mut core) = self.core.try_borrow_mut() {
                let id = (index.to_native(), term.to_native());
                core.snapshots
                    .on_chunk(from, id, offset.to_native(), data.as_slice(), *last);
            }
            return;
        }
        let Some(message) = convert::message_from_wire(message) else {
            tracing::debug!(
                from,
                "ignored a forwarded read-index message (not used by this node)"
            );
            return;
        };
        let Ok(mut guard) = self.core.try_borrow_mut() else {
            // Cannot happen (the loop never holds the core across an await); dropping a
            // message is always safe in Raft.
            tracing::warn!(from, "core busy; dropped a peer message");
            return;
        };
        let core = &mut *guard;
        if let MessageBody::InstallSnapshot { snapshot } = &message.body {
            if !core.snapshots.accept_install(from, snapshot) {
                return;
            }
        }
        if let Err(error) = core
            .steps
            .time("peer message step", || core.raft.step(message))
        {
            tracing::debug!(from, %error, "refused a peer message");
        }
        drop(guard);
        self.wakeup.notify();
    }

    fn client_requests(&self, session: &ClientSession, batch: &ArchivedClientRequestBatch) {
        let responses = batch
            .requests
            .iter()
            .map(|request| ClientResponse {
                sequence: request.sequence.to_native(),
                outcome: ClientOutcome::Error(unavailable(
                    "this is the peer port; send client requests to the node's client address",
                )),
            })
            .collect();
        let _ = session.send_responses(&ClientResponseBatch {
            client_id: batch.client_id.to_native(),
            responses,
        });
    }

    fn status_request(&self, session: &ClientSession, request: &ArchivedStatusRequest) {
        let _ = session.send_status(&self.board.node_status(request.request_id.to_native()));
    }

    /// Admin requests on the peer address are carried out here, on the Raft executor.
    fn admin_request(
        &self,
        session: &ClientSession,
        request: &tern_net::message::ArchivedAdminRequest,
    ) {
        let request_id = request.request_id.to_native();
        let op = rkyv::deserialize::<tern_net::message::AdminOp, rkyv::rancor::Error>(&request.op);
        let response = match (op, self.core.try_borrow_mut()) {
            (Ok(op), Ok(mut core)) => {
                let core = &mut *core;
                admin::handle(&mut core.raft, &core.book_base, &self.board, request_id, op)
            }
            _ => {
                let mut refusal = self.board.admin_refusal(request_id);
                refusal.error = Some("this node is busy; retry".into());
                refusal
            }
        };
        let _ = session.send_admin(&response);
        self.wakeup.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: LogIndex, term: Term) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Noop,
        }
    }

    #[test]
    fn reconcile_raises_the_term_to_the_entries_and_drops_the_vote() {
        let durable = raft::HardState {
            term: 2,
            voted_for: Some(3),
            commit: 1,
        };
        let reconciled = reconcile(durable, (0, 0), &[entry(1, 1), entry(2, 4)]);
        assert_eq!(
            reconciled,
            raft::HardState {
                term: 4,
                voted_for: None,
                commit: 1
            }
        );
    }

    #[test]
    fn reconcile_lowers_a_commit_beyond_the_log() {
        let durable = raft::HardState {
            term: 2,
            voted_for: Some(3),
            commit: 9,
        };
        let reconciled = reconcile(durable, (0, 0), &[entry(1, 1), entry(2, 2)]);
        assert_eq!(
            reconciled,
            raft::HardState {
                term: 2,
                voted_for: Some(3),
                commit: 2
            }
        );
        assert_eq!(reconcile(durable, (0, 0), &[entry(1, 1)]).commit, 1);
        let consistent = raft::HardState {
            commit: 2,
            ..durable
        };
        assert_eq!(
            reconcile(consistent, (0, 0), &[entry(1, 1), entry(2, 2)]),
            consistent
        );
    }
}
