//! Client requests end to end: a client invokes an operation (recorded in the history), sends
//! it to the node it believes leads, and the node proposes it (writes) or asks the core for a
//! read; answers, "not leader" hints and refusals come back, and the client retries with the
//! same sequence until it has its answer. At the end each key's history is checked.

use super::client::{ClientReply, KeyedOp, Outstanding};
use super::kv::KvCommand;
use super::linearizability::{self, HistoryOp, RegisterOp};
use super::params::TICK_TIME;
use super::world::{Event, PendingRead, PendingWrite, World};
use crate::raft::{NodeId, ReadConsistency};
use std::collections::BTreeMap;

impl World {
    pub(super) fn client_next(&mut self, client: usize) {
        if !self.faulty
            || self.ops_issued >= self.params.client_ops_max
            || self.clients[client].outstanding.is_some()
        {
            return;
        }
        self.issue(client);
    }

    /// The client invokes its next operation.
    pub(super) fn issue(&mut self, client: usize) {
        let keys = self.params.keys;
        let command = self.clients[client].next_command(&mut self.rng, keys);
        self.stamp += 1;
        self.history.push(KeyedOp {
            key: command.key,
            op: HistoryOp {
                client: command.client,
                op: command.op,
                invoke_stamp: self.stamp,
                response: None,
            },
        });
        self.ops_issued += 1;
        let history_index = self.history.len() - 1;
        self.trace.record(self.now, || {
            format!(
                "c{} INVOKE seq {} key {} {:?}",
                command.client, command.sequence, command.key, command.op
            )
        });
        self.clients[client].outstanding = Some(Outstanding {
            command,
            history_index,
            attempt: 0,
        });
        self.resend(client, 0);
    }

    /// Sends the client's outstanding op (again) to its leader guess after `wait_time`.
    pub(super) fn resend(&mut self, client: usize, wait_time: u64) {
        let Some(outstanding) = self.clients[client].outstanding.as_mut() else {
            return;
        };
        outstanding.attempt += 1;
        let (command, attempt) = (outstanding.command, outstanding.attempt);
        let node = self.clients[client].leader_guess as usize - 1;
        let delay = wait_time + self.rng.range(1, self.params.client_delay_time_max);
        self.schedule(
            self.now + delay,
            Event::ClientRequest {
                node,
                client,
                command,
            },
        );
        let timeout = self.now + self.params.client_timeout_time;
        self.schedule(
            timeout,
            Event::ClientTimeout {
                client,
                sequence: command.sequence,
                attempt,
            },
        );
    }

    pub(super) fn client_request(&mut self, index: usize, client: usize, command: KvCommand) {
        if self.nodes[index].raft.is_none() {
            self.trace.record(self.now, || {
                format!("c{} request lost at crashed n{}", client + 1, index + 1)
            });
            return;
        }
        self.trace.record(self.now, || {
            format!(
                "n{} client request c{} seq {} {:?}",
                index + 1,
                client + 1,
                command.sequence,
                command.op
            )
        });
        if command.op == RegisterOp::Get {
            let id = self.next_read_id;
            self.next_read_id += 1;
            let lease =
                self.params.raft.lease_reads && self.clients[client].wants_lease(&mut self.rng);
            let consistency = if lease {
                ReadConsistency::Lease
            } else {
                ReadConsistency::ReadIndex
            };
            // Registered before the call: the answer may come in the Ready this input produces.
            let committed_at_request = self.checker.committed_index();
            let read = PendingRead {
                client,
                sequence: command.sequence,
                key: command.key,
                committed_at_request,
            };
            self.nodes[index].pending_reads.insert(id, read);
            let mut refused = false;
            self.input(index, |raft| {
                refused = raft.request_read(id, consistency).is_err()
            });
            if refused {
                self.nodes[index].pending_reads.remove(&id);
                self.reply(client, command.sequence, ClientReply::Retry);
            }
            return;
        }
        let mut result = None;
        self.input(index, |raft| {
            result = Some(raft.propose(vec![command.encode()]))
        });
        match result {
            Some(Ok((first, _, term))) => {
                let pending = PendingWrite {
                    client,
                    sequence: command.sequence,
                    term,
                };
                self.nodes[index].pending_writes.insert(first, pending);
            }
            Some(Err(crate::raft::ProposeError::NotLeader { leader_hint })) => {
                self.reply(
                    client,
                    command.sequence,
                    ClientReply::NotLeader(leader_hint),
                );
            }
            _ => self.reply(client, command.sequence, ClientReply::Retry),
        }
    }

    pub(super) fn reply(&mut self, client: usize, sequence: u64, reply: ClientReply) {
        let delay = self.rng.range(1, self.params.client_delay_time_max);
        self.schedule(
            self.now + delay,
            Event::ClientReply {
                client,
                sequence,
                reply,
            },
        );
    }

    pub(super) fn client_reply(&mut self, client: usize, sequence: u64, reply: ClientReply) {
        let Some(outstanding) = self.clients[client].outstanding.as_ref() else {
            return;
        };
        if outstanding.command.sequence != sequence {
            return;
        }
        let history_index = outstanding.history_index;
        self.trace.record(self.now, || {
            format!("c{} REPLY seq {sequence} {reply:?}", client + 1)
        });
        match reply {
            ClientReply::Done(answer) => {
                self.stamp += 1;
                self.history[history_index].op.response = Some((self.stamp, answer));
                self.clients[client].outstanding = None;
                self.ops_completed += 1;
                let think = self.rng.range(0, self.params.client_think_time_max);
                self.schedule(self.now + think, Event::ClientNext { client });
            }
            ClientReply::NotLeader(hint) => {
                let guess = match hint {
                    Some(id) if id >= 1 && id <= self.params.nodes as NodeId => id,
                    _ => self.random_node_id(),
                };
                self.clients[client].leader_guess = guess;
                self.resend(client, TICK_TIME);
            }
            ClientReply::Retry => self.resend(client, 2 * TICK_TIME),
        }
    }

    pub(super) fn check_linearizable(&mut self) {
        let mut by_key: BTreeMap<u8, Vec<HistoryOp>> = BTreeMap::new();
        for record in &self.history {
            by_key
                .entry(record.key)
                .or_default()
                .push(record.op.clone());
        }
        for (key, ops) in by_key {
            if let Err(error) = linearizability::check(&ops, None) {
                if self.trace.enabled {
                    for op in &ops {
                        self.trace
                            .record(self.now, || format!("history key {key}: {op:?}"));
                    }
                }
                self.fail(format!("linearizability: key {key}: {error}"));
                return;
            }
        }
    }
}
