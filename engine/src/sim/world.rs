//! The simulated world: nodes, their disks, the network, the clients and one event queue
//! ordered by (time, sequence). Every random choice comes from one seeded generator and events
//! are processed in a fixed order, so a seed replays exactly.
//!
//! A node carries out each `Ready` in the documented order: messages go out at once; the
//! persist (truncation, entries, hard state) joins the node's disk queue and completes after a
//! simulated disk delay; only then are `on_persisted` called and `messages_after_persist` sent.
//! Committed entries are applied at once, reads answered after that.

use super::client::{Client, ClientReply, KeyedOp};
use super::invariants::DurableView;
use super::invariants::SafetyChecker;
use super::kv::{KvCommand, KvStateMachine};
use super::linearizability::RegisterAnswer;
use super::network::{Fate, Network};
use super::params::{bounds, SimParams, TICK_TIME};
use super::storage::{Disk, PendingPersist, SimSnapshot};
use super::trace::{describe_message, Trace};
use crate::raft::rng::SeededRng;
use crate::raft::{
    LogIndex, Membership, Message, MessageBody, NodeId, Payload, Raft, ReadId, ReadOutcome, Ready,
    Role, SnapshotMeta, Status, Term,
};
use std::collections::{BTreeMap, BTreeSet};

/// Something that happens at a simulated time.
#[derive(Debug)]
pub(super) enum Event {
    Tick {
        node: usize,
        incarnation: u64,
    },
    Deliver {
        message: Message,
    },
    PersistDone {
        node: usize,
        incarnation: u64,
    },
    ClientRequest {
        node: usize,
        client: usize,
        command: KvCommand,
    },
    ClientReply {
        client: usize,
        sequence: u64,
        reply: ClientReply,
    },
    ClientTimeout {
        client: usize,
        sequence: u64,
        attempt: u64,
    },
    ClientNext {
        client: usize,
    },
    Fault,
    Restart {
        node: usize,
        incarnation: u64,
    },
    /// The second half of the lease trap (see `faults`): cut every link out of `node`.
    CutOutbox {
        node: usize,
    },
    /// Crash `node` (if still in this incarnation) right after it granted a vote.
    CrashAfterVote {
        node: usize,
        incarnation: u64,
    },
    /// The leader `node` learns how its snapshot transfer to `to` ended (the driver's
    /// `report_snapshot`).
    SnapshotReport {
        node: usize,
        incarnation: u64,
        to: NodeId,
        delivered: bool,
    },
}

/// A read this node was asked for and will answer once the core says it may.
#[derive(Clone, Copy, Debug)]
pub(super) struct PendingRead {
    pub(super) client: usize,
    pub(super) sequence: u64,
    pub(super) key: u8,
    /// The highest index any node knew committed when the read was requested.
    pub(super) committed_at_request: LogIndex,
}

/// A write this node proposed and will answer once the entry at that index applies.
#[derive(Clone, Copy, Debug)]
pub(super) struct PendingWrite {
    pub(super) client: usize,
    pub(super) sequence: u64,
    pub(super) term: Term,
}

pub(super) struct SimNode {
    pub id: NodeId,
    /// `None` while crashed.
    pub raft: Option<Raft>,
    /// Bumped on every crash, so events meant for an earlier life are ignored.
    pub incarnation: u64,
    pub disk: Disk,
    pub kv: KvStateMachine,
    pub applied: LogIndex,
    /// The commit index the safety checks have already looked at.
    pub commit_checked: LogIndex,
    pub pending_writes: BTreeMap<LogIndex, PendingWrite>,
    pub pending_reads: BTreeMap<ReadId, PendingRead>,
    /// The newest index a snapshot of this node's own state was taken at in this incarnation
    /// (it may still be on its way to the disk).
    pub snapshot_taken_index: LogIndex,
}

/// The outcome of one run.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub seed: u64,
    pub nodes: usize,
    /// Events processed.
    pub steps: u64,
    /// The first property found broken, if any.
    pub violation: Option<String>,
    pub ops_completed: u64,
    pub committed_index: LogIndex,
    /// Empty unless tracing was asked for.
    pub trace: Vec<String>,
}

pub(super) struct World {
    pub params: SimParams,
    pub rng: SeededRng,
    pub now: u64,
    pub(super) sequence: u64,
    queue: BTreeMap<(u64, u64), Event>,
    pub nodes: Vec<SimNode>,
    pub network: Network,
    pub clients: Vec<Client>,
    pub history: Vec<KeyedOp>,
    /// The history clock: one unique stamp per invocation and per response.
    pub(super) stamp: u64,
    pub checker: SafetyChecker,
    pub trace: Trace,
    pub(super) steps: u64,
    pub(super) ops_issued: u64,
    pub(super) ops_completed: u64,
    /// True while faults strike and clients start new operations.
    pub faulty: bool,
    pub(super) next_read_id: ReadId,
    pub check_commitment_rule: bool,
    pub check_vote_durability: bool,
    /// No fault strikes before this time: a multi-step fault is playing out.
    pub(super) fault_hold_until_time: u64,
    /// Members ever proposed for removal: their ids are never added again.
    pub(super) removed: BTreeSet<NodeId>,
    #[cfg(feature = "planted-bugs")]
    planted_bug: Option<crate::raft::PlantedBug>,
}

impl World {
    pub fn new(seed: u64, params: SimParams, trace: bool) -> Self {
        let network = Network::new(params.network.clone());
        let mut world = World {
            rng: SeededRng::new(seed),
            now: 0,
            sequence: 0,
            queue: BTreeMap::new(),
            nodes: Vec::new(),
            network,
            clients: Vec::new(),
            history: Vec::new(),
            stamp: 0,
            checker: SafetyChecker::new(Membership::with_voters(&params.raft.voters)),
            trace: Trace {
                enabled: trace,
                lines: Vec::new(),
            },
            steps: 0,
            ops_issued: 0,
            ops_completed: 0,
            faulty: true,
            next_read_id: 1,
            check_commitment_rule: true,
            check_vote_durability: true,
            fault_hold_until_time: 0,
            removed: BTreeSet::new(),
            #[cfg(feature = "planted-bugs")]
            planted_bug: None,
            params,
        };
        let params = &world.params;
        world.trace.record(0, || {
            format!(
                "times in simulated units, {TICK_TIME} per nominal tick; config: nodes={} pre_vote={} check_quorum={} lease_reads={} election={}..{} \
                 heartbeat={} append_entries_max={} append_bytes_max={} inflight={} \
                 uncommitted_max={} net={:?} clients={} keys={} ops_max={} initial_voters={:?} \
                 snapshot_entries={}",
                params.nodes,
                params.raft.pre_vote,
                params.raft.check_quorum,
                params.raft.lease_reads,
                params.raft.election_timeout_ticks_min,
                params.raft.election_timeout_ticks_max,
                params.raft.heartbeat_interval_ticks,
                params.raft.append_entries_max,
                params.raft.append_bytes_max,
                params.raft.inflight_messages_max,
                params.raft.uncommitted_entries_max,
                params.network,
                params.clients,
                params.keys,
                params.client_ops_max,
                params.raft.voters,
                params.snapshot_entries
            )
        });
        world
    }

    #[cfg(feature = "planted-bugs")]
    pub fn plant_bug(&mut self, bug: Option<crate::raft::PlantedBug>) {
        self.planted_bug = bug;
    }

    pub fn schedule(&mut self, at_time: u64, event: Event) {
        self.sequence += 1;
        self.queue.insert((at_time, self.sequence), event);
    }

    pub(super) fn fail(&mut self, text: String) {
        if self.checker.violation.is_none() {
            self.trace.record(self.now, || format!("VIOLATION {text}"));
            self.checker.violation = Some(text);
        }
    }

    /// Starts every node and client; runs the faulty phase, heals, checks liveness, then
    /// linearizability.
    pub fn run(&mut self) -> RunReport {
        for index in 0..self.params.nodes {
            let node = SimNode {
                id: index as NodeId + 1,
                raft: None,
                incarnation: 0,
                disk: Disk::default(),
                kv: KvStateMachine::default(),
                applied: 0,
                commit_checked: 0,
                pending_writes: BTreeMap::new(),
                pending_reads: BTreeMap::new(),
                snapshot_taken_index: 0,
            };
            self.nodes.push(node);
            self.start_node(index);
        }
        for id in 0..self.params.clients {
            let guess = self.random_node_id();
            let client = Client::new(id as u64 + 1, guess, &mut self.rng);
            self.clients.push(client);
            let start = self.rng.range(0, self.params.client_think_time_max);
            self.schedule(start, Event::ClientNext { client: id });
        }
        let first_fault = self.rng.range(0, self.params.fault_interval_time);
        self.schedule(first_fault, Event::Fault);

        let faulty_end_time = self.params.sim_time_ticks * TICK_TIME;
        self.run_until(faulty_end_time, false);
        if self.checker.violation.is_none() {
            self.heal_everything();
            let liveness_end_time = self.now + bounds::LIVENESS_TICKS_MAX * TICK_TIME;
            let live = self.run_until(liveness_end_time, true);
            if !live && self.checker.violation.is_none() {
                let waiting: Vec<u64> = self
                    .clients
                    .iter()
                    .filter(|client| client.outstanding.is_some())
                    .map(|client| client.id)
                    .collect();
                let leader = self.leader_ids();
                for node in &self.nodes {
                    if let Some(raft) = node.raft.as_ref() {
                        let (status, membership) = (raft.status(), raft.membership().clone());
                        self.trace
                            .record(self.now, || format!("FINAL {status:?} {membership:?}"));
                    }
                }
                self.fail(format!(
                    "liveness: {} ticks after every fault healed, leaders {leader:?}, clients \
                     {waiting:?} still waiting",
                    bounds::LIVENESS_TICKS_MAX
                ));
            }
        }
        if self.checker.violation.is_none() {
            self.check_linearizable();
        }
        RunReport {
            seed: 0,
            nodes: self.params.nodes,
            steps: self.steps,
            violation: self.checker.violation.clone(),
            ops_completed: self.ops_completed,
            committed_index: self.checker.committed_index(),
            trace: std::mem::take(&mut self.trace.lines),
        }
    }

    /// The report of a run that panicked: what it had done and traced so far.
    pub fn report_after_panic(&mut self, text: String) -> RunReport {
        self.trace.record(self.now, || format!("PANIC {text}"));
        RunReport {
            seed: 0,
            nodes: self.params.nodes,
            steps: self.steps,
            violation: Some(format!("panic at time {}: {text}", self.now)),
            ops_completed: self.ops_completed,
            committed_index: self.checker.committed_index(),
            trace: std::mem::take(&mut self.trace.lines),
        }
    }

    /// Processes events up to `end_time`. With `until_quiet`, stops early (returning true) once
    /// a leader exists and no client waits.
    fn run_until(&mut self, end_time: u64, until_quiet: bool) -> bool {
        loop {
            if self.checker.violation.is_some() {
                return false;
            }
            if until_quiet && self.is_quiet() {
                self.trace.record(self.now, || {
                    "liveness: leader elected, every client answered".into()
                });
                return true;
            }
            let Some(entry) = self.queue.first_entry() else {
                return false;
            };
            let (time, _) = *entry.key();
            if time > end_time {
                self.now = end_time;
                return false;
            }
            let event = entry.remove();
            self.now = time;
            self.steps += 1;
            if self.steps > bounds::EVENTS_MAX {
                self.fail(format!(
                    "simulator: more than {} events in one run",
                    bounds::EVENTS_MAX
                ));
                return false;
            }
            self.handle(event);
            let durable = self.nodes.iter().map(|node| DurableView {
                node: node.id,
                base_index: node.disk.durable.base_index(),
                log: node.disk.durable.log.as_slice(),
            });
            self.checker.check_durable_majority(durable);
        }
    }

    fn is_quiet(&self) -> bool {
        self.clients
            .iter()
            .all(|client| client.outstanding.is_none())
            && !self.leader_ids().is_empty()
    }

    fn leader_ids(&self) -> Vec<NodeId> {
        let leads = |node: &&SimNode| {
            node.raft
                .as_ref()
                .is_some_and(|raft| raft.status().role == Role::Leader)
        };
        self.nodes
            .iter()
            .filter(leads)
            .map(|node| node.id)
            .collect()
    }

    pub fn random_node_id(&mut self) -> NodeId {
        self.rng.range(1, self.params.nodes as u64 + 1)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Tick { node, incarnation } => {
                if self.nodes[node].incarnation != incarnation || self.nodes[node].raft.is_none() {
                    return;
                }
                self.input(node, |raft| raft.tick());
                let period = self.params.tick_time[node];
                self.schedule(self.now + period, Event::Tick { node, incarnation });
            }
            Event::Deliver { message } => self.deliver(message),
            Event::PersistDone { node, incarnation } => self.persist_done(node, incarnation),
            Event::ClientRequest {
                node,
                client,
                command,
            } => self.client_request(node, client, command),
            Event::ClientReply {
                client,
                sequence,
                reply,
            } => self.client_reply(client, sequence, reply),
            Event::ClientTimeout {
                client,
                sequence,
                attempt,
            } => {
                let current = self.clients[client].outstanding.as_ref();
                if current
                    .is_some_and(|out| out.command.sequence == sequence && out.attempt == attempt)
                {
                    let guess = self.random_node_id();
                    self.trace.record(self.now, || {
                        format!("c{} timeout seq {sequence}, retry at n{guess}", client + 1)
                    });
                    self.clients[client].leader_guess = guess;
                    self.resend(client, 0);
                }
            }
            Event::ClientNext { client } => self.client_next(client),
            Event::Fault => {
                if self.faulty {
                    self.fault();
                    let interval = self.params.fault_interval_time;
                    let next = self.now + self.rng.range(interval / 2, interval * 3 / 2);
                    self.schedule(next.max(self.fault_hold_until_time), Event::Fault);
                }
            }
            Event::Restart { node, incarnation } => {
                if self.nodes[node].incarnation == incarnation && self.nodes[node].raft.is_none() {
                    self.start_node(node);
                }
            }
            Event::CutOutbox { node } => self.cut_outbox(node),
            Event::CrashAfterVote { node, incarnation } => self.crash_after_vote(node, incarnation),
            Event::SnapshotReport {
                node,
                incarnation,
                to,
                delivered,
            } => {
                if self.nodes[node].incarnation == incarnation {
                    self.input(node, |raft| raft.report_snapshot(to, delivered));
                }
            }
        }
    }

    /// Builds node `index`'s core from its durable storage only, and starts its clock.
    pub fn start_node(&mut self, index: usize) {
        #[allow(unused_mut)]
        let mut config = self.params.config_for(index as NodeId + 1);
        #[cfg(feature = "planted-bugs")]
        {
            config.planted_bug = self.planted_bug;
        }
        let recovered = self.nodes[index].disk.durable.recovered();
        let (log_length, hard_state) = (recovered.entries.len(), recovered.hard_state);
        match Raft::new(config, recovered) {
            Ok(raft) => {
                let node = &mut self.nodes[index];
                node.raft = Some(raft);
                // The state machine restarts from the durable snapshot, if any.
                let (base_index, kv) = match &node.disk.durable.snapshot {
                    Some(snapshot) => (snapshot.meta.index, snapshot.kv.clone()),
                    None => (0, KvStateMachine::default()),
                };
                node.kv = kv;
                node.applied = base_index;
                node.commit_checked = base_index;
                node.snapshot_taken_index = base_index;
                let id = node.id;
                self.trace.record(self.now, || {
                    format!(
                        "n{id} START from snapshot at {base_index} and durable log of \
                         {log_length} entries, {hard_state:?}"
                    )
                });
            }
            Err(error) => {
                self.fail(format!(
                    "restart: n{} refused its own durable state: {error}",
                    index + 1
                ));
                return;
            }
        }
        let incarnation = self.nodes[index].incarnation;
        let first_tick = self.now + self.rng.range(1, self.params.tick_time[index]);
        self.schedule(
            first_tick,
            Event::Tick {
                node: index,
                incarnation,
            },
        );
        self.input(index, |_| {});
    }

    /// Feeds one input to a running node, then carries out everything it asks and checks.
    pub fn input(&mut self, index: usize, feed: impl FnOnce(&mut Raft)) {
        let Some(raft) = self.nodes[index].raft.as_mut() else {
            return;
        };
        let before = raft.status();
        feed(raft);
        self.drive(index, before);
    }

    fn drive(&mut self, index: usize, before: Status) {
        let mut changed_from: Option<LogIndex> = None;
        let mut last_index = before.last_index;
        let mut rounds = 0;
        loop {
            let Some(raft) = self.nodes[index].raft.as_mut() else {
                return;
            };
            if !raft.has_ready() {
                break;
            }
            rounds += 1;
            if rounds > bounds::READY_ROUNDS_MAX {
                self.fail(format!(
                    "n{}: still has a Ready after {} rounds without new input",
                    index + 1,
                    bounds::READY_ROUNDS_MAX
                ));
                return;
            }
            let ready = raft.ready();
            let now_status = raft.status();
            if before.role == Role::Leader
                && now_status.role == Role::Leader
                && now_status.term == before.term
            {
                self.checker.check_leader_ready(
                    before.id,
                    before.term,
                    last_index,
                    ready.truncate_from,
                    &ready.entries,
                );
            }
            let first_changed = ready
                .truncate_from
                .into_iter()
                .chain(ready.entries.first().map(|e| e.index))
                .min();
            if let Some(first) = first_changed {
                changed_from = Some(changed_from.map_or(first, |known| known.min(first)));
            }
            if let Some(from) = ready.truncate_from {
                last_index = last_index.min(from.saturating_sub(1));
            }
            if let Some(last) = ready.entries.last() {
                last_index = last.index;
            }
            self.carry_out(index, ready, now_status.term);
        }
        self.check_node(index, &before, changed_from);
    }

    /// Steps 1 to 5 of `Ready`'s execution order (the persist completes later).
    fn carry_out(&mut self, index: usize, ready: Ready, term: Term) {
        for message in ready.messages {
            self.check_term_durable(index, &message);
            self.send(message);
        }
        let installed = match ready.snapshot {
            Some(meta) => match self.install_snapshot(index, meta) {
                Some(snapshot) => Some(snapshot),
                None => return,
            },
            None => None,
        };
        let has_persist = installed.is_some()
            || ready.truncate_from.is_some()
            || !ready.entries.is_empty()
            || ready.hard_state.is_some()
            || !ready.messages_after_persist.is_empty();
        if has_persist {
            let writes = installed.is_some()
                || ready.truncate_from.is_some()
                || !ready.entries.is_empty()
                || ready.hard_state.is_some();
            let (low, high) = self.params.disk_time[index];
            let delay = if writes {
                self.rng.range(low, high + 1)
            } else {
                0
            };
            let disk = &mut self.nodes[index].disk;
            let complete_time = disk.busy_until_time.max(self.now + delay);
            disk.busy_until_time = complete_time;
            disk.queue.push_back(PendingPersist {
                installed,
                truncate_from: ready.truncate_from,
                entries: ready.entries,
                hard_state: ready.hard_state,
                messages_after_persist: ready.messages_after_persist,
                compaction: None,
            });
            let incarnation = self.nodes[index].incarnation;
            self.schedule(
                complete_time,
                Event::PersistDone {
                    node: index,
                    incarnation,
                },
            );
        }
        if !ready.committed_entries.is_empty() {
            for entry in &ready.committed_entries {
                self.apply(index, entry, term);
            }
            let applied = self.nodes[index].applied;
            if let Some(raft) = self.nodes[index].raft.as_mut() {
                raft.on_applied(applied);
            }
            self.maybe_take_snapshot(index);
        }
        for outcome in ready.reads {
            self.answer_read(index, outcome);
        }
    }

    /// Ready step 2's snapshot (the follower installs the leader's): the state machine takes
    /// the snapshot's state (what the driver shipped, looked up among the checked snapshots).
    /// Returns what the disk must make durable, or `None` after a violation.
    fn install_snapshot(&mut self, index: usize, meta: SnapshotMeta) -> Option<SimSnapshot> {
        let id = self.nodes[index].id;
        let Some(kv) = self.checker.snapshot_state(meta.index).cloned() else {
            self.fail(format!(
                "n{id} installs a snapshot at index {} that no node took",
                meta.index
            ));
            return None;
        };
        let applied = self.nodes[index].applied;
        if meta.index < applied {
            self.fail(format!(
                "state machine: n{id} installs a snapshot at index {}, below the {applied} \
                 entries it applied (applied state moves back)",
                meta.index
            ));
            return None;
        }
        self.checker.check_snapshot(id, &meta, &kv);
        self.trace.record(self.now, || {
            format!("n{id} INSTALL snapshot at ({},{})", meta.index, meta.term)
        });
        let node = &mut self.nodes[index];
        node.kv = kv.clone();
        node.applied = meta.index;
        node.snapshot_taken_index = node.snapshot_taken_index.max(meta.index);
        // Proposals this node made through the snapshot's index cannot be matched to their
        // entries any more: the clients retry (their sessions make the retry safe).
        let covered: Vec<LogIndex> = node
            .pending_writes
            .range(..=meta.index)
            .map(|(at, _)| *at)
            .collect();
        for at in covered {
            if let Some(pending) = self.nodes[index].pending_writes.remove(&at) {
                self.reply(pending.client, pending.sequence, ClientReply::Retry);
            }
        }
        Some(SimSnapshot { meta, kv })
    }

    /// Compaction at random points: once `snapshot_entries` entries were applied since the
    /// last snapshot, the node snapshots its applied state; the write joins the disk queue and
    /// the core compacts when it is durable.
    fn maybe_take_snapshot(&mut self, index: usize) {
        let every = self.params.snapshot_entries;
        let node = &self.nodes[index];
        if every == 0 || node.applied < node.snapshot_taken_index + every {
            return;
        }
        let Some(meta) = node
            .raft
            .as_ref()
            .and_then(|raft| raft.snapshot_meta(node.applied))
        else {
            let (id, applied) = (node.id, node.applied);
            self.fail(format!(
                "n{id}: no snapshot metadata for its applied index {applied}"
            ));
            return;
        };
        let (id, kv) = (node.id, node.kv.clone());
        self.checker.check_snapshot(id, &meta, &kv);
        self.trace.record(self.now, || {
            format!("n{id} SNAPSHOT at ({},{})", meta.index, meta.term)
        });
        let (low, high) = self.params.disk_time[index];
        let delay = self.rng.range(low, high + 1);
        let node = &mut self.nodes[index];
        node.snapshot_taken_index = meta.index;
        let complete_time = node.disk.busy_until_time.max(self.now + delay);
        node.disk.busy_until_time = complete_time;
        node.disk.queue.push_back(PendingPersist {
            compaction: Some(SimSnapshot { meta, kv }),
            ..PendingPersist::default()
        });
        let incarnation = node.incarnation;
        self.schedule(
            complete_time,
            Event::PersistDone {
                node: index,
                incarnation,
            },
        );
    }

    fn apply(&mut self, index: usize, entry: &crate::raft::Entry, term: Term) {
        let node = &mut self.nodes[index];
        if entry.index != node.applied + 1 {
            let (id, applied) = (node.id, node.applied);
            self.fail(format!(
                "n{id}: applies entry {} right after entry {applied}",
                entry.index
            ));
            return;
        }
        node.applied = entry.index;
        self.checker.observe_apply(node.id, entry, term);
        let node = &mut self.nodes[index];
        let (command, answer) = match &entry.payload {
            Payload::Noop | Payload::Membership(_) => (None, None),
            Payload::Command(bytes) => match KvCommand::decode(bytes) {
                Some(command) => (Some(command), node.kv.apply(&command)),
                None => {
                    let id = node.id;
                    self.fail(format!(
                        "n{id}: entry {} carries bytes no client sent",
                        entry.index
                    ));
                    return;
                }
            },
        };
        let Some(pending) = node.pending_writes.remove(&entry.index) else {
            return;
        };
        let ours = command.is_some_and(|c| {
            c.client == pending.client as u64 + 1 && c.sequence == pending.sequence
        });
        let reply = match answer {
            Some(answer) if ours && entry.term == pending.term => ClientReply::Done(answer),
            // Another entry took the slot: the proposal was lost with a leader change.
            _ => ClientReply::Retry,
        };
        self.reply(pending.client, pending.sequence, reply);
    }

    fn answer_read(&mut self, index: usize, outcome: ReadOutcome) {
        let node = &mut self.nodes[index];
        match outcome {
            ReadOutcome::Ready {
                id,
                index: read_index,
            } => {
                let Some(read) = node.pending_reads.remove(&id) else {
                    return;
                };
                let (client, sequence, key) = (read.client, read.sequence, read.key);
                if node.applied < read_index {
                    let (node_id, applied) = (node.id, node.applied);
                    self.fail(format!(
                        "n{node_id}: read {id} ready at index {read_index} but only {applied} applied"
                    ));
                    return;
                }
                // Thesis 6.4: the read index is the leader's commit index once it has committed
                // in its term, so it covers everything committed before the request arrived. A
                // lower index is a read from a deposed leader or an expired lease.
                if read_index < read.committed_at_request {
                    let node_id = node.id;
                    self.fail(format!(
                        "read index: n{node_id} answers read {id} at index {read_index}, but \
                         index {} was already committed when the read was requested",
                        read.committed_at_request
                    ));
                    return;
                }
                let node = &mut self.nodes[index];
                let value = node.kv.get(key);
                self.reply(
                    client,
                    sequence,
                    ClientReply::Done(RegisterAnswer::Value(value)),
                );
            }
            ReadOutcome::NotLeader { id, leader_hint } => {
                let Some(read) = node.pending_reads.remove(&id) else {
                    return;
                };
                self.reply(
                    read.client,
                    read.sequence,
                    ClientReply::NotLeader(leader_hint),
                );
            }
        }
    }

    /// Safety checks after a node handled one input.
    fn check_node(&mut self, index: usize, before: &Status, changed_from: Option<LogIndex>) {
        let node = &mut self.nodes[index];
        let Some(raft) = node.raft.as_ref() else {
            return;
        };
        let status = raft.status();
        if (status.role, status.term) != (before.role, before.term) {
            let (id, role, term) = (status.id, status.role, status.term);
            self.trace.record(self.now, || {
                format!(
                    "n{id} ROLE {:?} t{} -> {role:?} t{term} (last {} commit {})",
                    before.role, before.term, status.last_index, status.commit_index
                )
            });
        }
        let led_throughout = before.role == Role::Leader
            && status.role == Role::Leader
            && before.term == status.term;
        if self.check_commitment_rule && led_throughout && status.commit_index > before.commit_index
        {
            self.checker.check_leader_commit(raft, &status);
        }
        let committed_before = self.checker.committed_index();
        self.checker.observe(raft, &status, node.commit_checked);
        node.commit_checked = status.commit_index;
        if let Some(from) = changed_from {
            self.checker
                .check_log_region(raft, status.id, from, status.last_index);
        }
        if self.checker.committed_index() > committed_before {
            for other in &self.nodes {
                let Some(raft) = other.raft.as_ref() else {
                    continue;
                };
                let status = raft.status();
                if status.role == Role::Leader {
                    self.checker
                        .check_current_leader(raft, &status, committed_before + 1);
                }
            }
        }
    }

    /// A granted vote is durable before it leaves (figure 2): otherwise a crash could let the
    /// voter vote again in the same term and elect two leaders. (Other messages of a new term
    /// are not checked: forgetting a term after a crash, when no vote was cast in it, is safe.)
    fn check_term_durable(&mut self, index: usize, message: &Message) {
        let MessageBody::VoteResponse {
            pre_vote: false,
            granted: true,
        } = message.body
        else {
            return;
        };
        if !self.check_vote_durability {
            return;
        }
        let durable = self.nodes[index].disk.durable.hard_state;
        if (durable.term, durable.voted_for) != (message.term, Some(message.to)) {
            self.fail(format!(
                "vote durability: n{} grants its vote in term {} to n{} while its durable hard \
                 state is term {} vote {:?}",
                message.from, message.term, message.to, durable.term, durable.voted_for
            ));
        }
    }

    pub fn send(&mut self, message: Message) {
        let granted_vote = matches!(
            message.body,
            MessageBody::VoteResponse {
                pre_vote: false,
                granted: true
            }
        );
        if self.faulty && granted_vote && self.rng.chance(1, 4) {
            // Sometimes the voter crashes right after its vote left (before or after its disk
            // write completes, depending on when the core let the vote out).
            let node = message.from as usize - 1;
            let incarnation = self.nodes[node].incarnation;
            let crash_time = self.now + self.rng.range(1, 300);
            self.schedule(crash_time, Event::CrashAfterVote { node, incarnation });
        }
        let fate = self.network.route(&mut self.rng, message.from, message.to);
        self.trace.record(self.now, || {
            let how = match &fate {
                Fate::Dropped => " DROPPED".to_string(),
                Fate::Partitioned => " PARTITIONED".to_string(),
                Fate::Delivered(delays) if delays.len() > 1 => " (duplicated)".to_string(),
                Fate::Delivered(_) => String::new(),
            };
            format!("send {}{how}", describe_message(&message))
        });
        let is_snapshot = matches!(message.body, MessageBody::InstallSnapshot { .. });
        if let Fate::Delivered(delays) = fate {
            for delay in delays {
                self.schedule(
                    self.now + delay,
                    Event::Deliver {
                        message: message.clone(),
                    },
                );
            }
        } else if is_snapshot {
            // The transfer fails; the leader's driver notices after a while.
            let report_time = self.now + self.rng.range(TICK_TIME, 4 * TICK_TIME);
            self.report_snapshot_at(report_time, &message, false);
        }
    }

    /// Schedules the leader's `report_snapshot` for the transfer `message` started.
    fn report_snapshot_at(&mut self, time: u64, message: &Message, delivered: bool) {
        let node = message.from as usize - 1;
        let incarnation = self.nodes[node].incarnation;
        self.schedule(
            time,
            Event::SnapshotReport {
                node,
                incarnation,
                to: message.to,
                delivered,
            },
        );
    }

    fn deliver(&mut self, message: Message) {
        let index = message.to as usize - 1;
        let is_snapshot = matches!(message.body, MessageBody::InstallSnapshot { .. });
        if self.network.is_blocked(message.from, message.to)
            || self.nodes.get(index).is_none_or(|n| n.raft.is_none())
        {
            self.trace
                .record(self.now, || format!("lost {}", describe_message(&message)));
            if is_snapshot {
                let report_time = self.now + self.rng.range(TICK_TIME, 4 * TICK_TIME);
                self.report_snapshot_at(report_time, &message, false);
            }
            return;
        }
        if is_snapshot {
            // The state arrived whole; the leader hears of it one network delay later.
            let report_time = self.now + self.network.faults.delay_time_min;
            self.report_snapshot_at(report_time, &message, true);
        }
        self.trace
            .record(self.now, || format!("recv {}", describe_message(&message)));
        let mut refused = None;
        self.input(index, |raft| refused = raft.step(message).err());
        if let Some(error) = refused {
            self.trace.record(self.now, || {
                format!("n{} refused a message: {error}", index + 1)
            });
        }
    }

    fn persist_done(&mut self, index: usize, incarnation: u64) {
        let node = &mut self.nodes[index];
        if node.incarnation != incarnation || node.raft.is_none() {
            return;
        }
        let Some(persist) = node.disk.queue.pop_front() else {
            let id = node.id;
            self.fail(format!(
                "simulator: n{id} disk completion with an empty queue"
            ));
            return;
        };
        if let Err(error) = node.disk.durable.write(&persist) {
            let id = node.id;
            self.fail(format!("n{id}: {error}"));
            return;
        }
        if let Some(from) = persist.truncate_from {
            self.checker.durable_truncated(node.id, from);
        }
        if let Some(snapshot) = &persist.installed {
            self.checker
                .durable_truncated(node.id, snapshot.meta.index + 1);
        }
        let id = node.id;
        self.trace.record(self.now, || {
            let range = match (persist.entries.first(), persist.entries.last()) {
                (Some(first), Some(last)) => format!(" entries {}..{}", first.index, last.index),
                _ => String::new(),
            };
            format!(
                "n{id} PERSISTED{}{range}{}",
                persist
                    .truncate_from
                    .map(|from| format!(" truncate from {from}"))
                    .unwrap_or_default(),
                persist
                    .hard_state
                    .map(|hs| format!(" {hs:?}"))
                    .unwrap_or_default()
            )
        });
        if let Some(snapshot) = &persist.compaction {
            let through = snapshot.meta.index;
            let mut refused = None;
            self.input(index, |raft| refused = raft.compact(through).err());
            if let Some(error) = refused {
                self.fail(format!(
                    "n{id}: its durable snapshot could not compact: {error}"
                ));
                return;
            }
        }
        // Step 3 runs for every Ready, even one without entries (the core then learns that the
        // hard state it carried is durable): report the durable log's last entry.
        let durable = &self.nodes[index].disk.durable;
        if let Some(last_term) = durable.last_term() {
            let last_index = durable.last_index();
            self.input(index, |raft| raft.on_persisted(last_index, last_term));
        }
        for message in persist.messages_after_persist {
            self.check_term_durable(index, &message);
            self.send(message);
        }
    }
}
