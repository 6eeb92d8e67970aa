//! A fake 3-node "cluster" for the client library's tests: real transports on loopback whose
//! [`Inbound`] shares one tiny store (a `BTreeMap`), with exactly-once bookkeeping that counts
//! how many times each (client id, sequence) was applied. The test decides who leads, how
//! non-leaders hint, and which responses get lost.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use tern_kv::{Command, CommandResult};
use tern_net::message::*;
use tern_net::tls::Security;
use tern_net::transport::{ClientSession, Inbound, Limits, Transport, TransportConfig};

/// How a node that is not the leader answers a batch that needs the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hints {
    /// `NotLeader { leader_id: Some(id), leader_addr: None }`.
    IdOnly,
    /// `NotLeader { leader_id: Some(id), leader_addr: Some(addr) }`.
    IdAndAddr,
    /// `NotLeader { leader_id: None, leader_addr: None }`: the client must search.
    Nothing,
    /// Every non-leader names this node (a stale view), by id and address.
    Stale(NodeId),
}

/// One request as a node received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub node: NodeId,
    pub client_id: u64,
    pub sequence: u64,
    pub answered_through: u64,
    pub command: Vec<u8>,
}

/// The shared state of the fake cluster.
pub struct State {
    pub leader: NodeId,
    pub hints: Hints,
    /// Also answer each refused request with a per-request `ClientError::NotLeader`.
    pub per_request_not_leader: bool,
    /// Client addresses, node i at `addrs[i - 1]`.
    pub addrs: Vec<SocketAddr>,
    pub store: BTreeMap<Bytes, Bytes>,
    /// Result of every applied (client id, sequence), for retries.
    pub results: HashMap<(u64, u64), Vec<u8>>,
    /// How many times each (client id, sequence) was applied (must stay at most 1).
    pub applied: HashMap<(u64, u64), u32>,
    /// The next this many writes are answered `Unavailable` ("overloaded, retry") and not
    /// applied.
    pub unavailable_writes: usize,
    /// The next this many writes are applied but their responses are not sent.
    pub drop_write_responses: usize,
    /// Scripted leader changes: once this many writes were applied, this node leads (the
    /// node that led starts answering "not leader" within the same batch).
    pub leader_after_applied: Vec<(usize, NodeId)>,
    /// Nodes that read requests and answer nothing (a hung node).
    pub silent: Vec<NodeId>,
    /// Commands above this many encoded bytes are refused with `TooLarge`.
    pub command_bytes_max: u64,
    /// Every request received, in order.
    pub seen: Vec<Seen>,
    /// Request batches received, per node id.
    pub batches: HashMap<NodeId, usize>,
    /// The most requests seen in one batch.
    pub batch_requests_high_water: usize,
}

impl State {
    pub fn applied_count(&self, client_id: u64, sequence: u64) -> u32 {
        self.applied
            .get(&(client_id, sequence))
            .copied()
            .unwrap_or(0)
    }

    /// Every (client, sequence) applied more than once.
    pub fn applied_twice(&self) -> Vec<(u64, u64)> {
        self.applied
            .iter()
            .filter(|(_, &count)| count > 1)
            .map(|(&key, _)| key)
            .collect()
    }

    pub fn batches_at(&self, node: NodeId) -> usize {
        self.batches.get(&node).copied().unwrap_or(0)
    }

    /// The client address of `node` (none for node 0, "no leader").
    fn addr_of(&self, node: NodeId) -> Option<String> {
        let index = (node as usize).checked_sub(1)?;
        self.addrs.get(index).map(|addr| addr.to_string())
    }
}

/// The fake cluster; drop it (or call [`FakeCluster::stop`]) to close every node.
pub struct FakeCluster {
    pub transports: Vec<Transport>,
    pub state: Rc<RefCell<State>>,
}

struct FakeNode {
    id: NodeId,
    state: Rc<RefCell<State>>,
}

impl FakeCluster {
    /// Starts `count` nodes on loopback (ports chosen by the kernel); node 1 leads.
    pub fn start(count: u64, security: impl Fn(NodeId) -> Security, limits: Limits) -> FakeCluster {
        let state = Rc::new(RefCell::new(State {
            leader: 1,
            hints: Hints::IdAndAddr,
            per_request_not_leader: false,
            addrs: Vec::new(),
            store: BTreeMap::new(),
            results: HashMap::new(),
            applied: HashMap::new(),
            drop_write_responses: 0,
            unavailable_writes: 0,
            leader_after_applied: Vec::new(),
            silent: Vec::new(),
            command_bytes_max: 1 << 20,
            seen: Vec::new(),
            batches: HashMap::new(),
            batch_requests_high_water: 0,
        }));
        let mut transports = Vec::new();
        for id in 1..=count {
            let config = TransportConfig {
                node_id: id,
                listen_addr: "127.0.0.1:0".parse().unwrap(),
                peers: Vec::new(),
                security: security(id),
                limits: limits.clone(),
            };
            let node = FakeNode {
                id,
                state: state.clone(),
            };
            let transport = Transport::start(config, Rc::new(node)).unwrap();
            state
                .borrow_mut()
                .addrs
                .push(transport.local_addr().unwrap());
            transports.push(transport);
        }
        FakeCluster { transports, state }
    }

    pub fn addr(&self, node: NodeId) -> SocketAddr {
        self.state.borrow().addrs[node as usize - 1]
    }

    pub fn set_leader(&self, node: NodeId) {
        self.state.borrow_mut().leader = node;
    }

    pub fn stop(&self) {
        for transport in &self.transports {
            transport.close();
        }
    }
}

impl FakeNode {
    fn status(&self, request_id: u64) -> NodeStatus {
        let state = self.state.borrow();
        NodeStatus {
            request_id,
            node_id: self.id,
            client_addr: state.addrs[self.id as usize - 1].to_string(),
            peer_addr: format!("127.0.0.1:{}", 9000 + self.id),
            role: if state.leader == self.id {
                "leader".into()
            } else {
                "follower".into()
            },
            term: 7,
            last_index: 100 + self.id,
            commit_index: 99,
            applied_index: 98,
            leader_id: Some(state.leader).filter(|&id| id != 0),
            leader_client_addr: state.addr_of(state.leader),
        }
    }
}

impl Inbound for FakeNode {
    fn raft(&self, _from: NodeId, _message: &ArchivedRaftMessage) {}

    fn admin_request(
        &self,
        _session: &ClientSession,
        _request: &tern_net::message::ArchivedAdminRequest,
    ) {
    }

    fn client_requests(&self, session: &ClientSession, batch: &ArchivedClientRequestBatch) {
        let batch = rkyv::deserialize::<ClientRequestBatch, rkyv::rancor::Error>(batch).unwrap();
        let mut state = self.state.borrow_mut();
        *state.batches.entry(self.id).or_default() += 1;
        state.batch_requests_high_water = state.batch_requests_high_water.max(batch.requests.len());
        for request in &batch.requests {
            state.seen.push(Seen {
                node: self.id,
                client_id: batch.client_id,
                sequence: request.sequence,
                answered_through: batch.answered_through,
                command: request.command.clone(),
            });
        }
        if state.silent.contains(&self.id) {
            return;
        }
        // Results at or below answered_through will never be asked for again.
        let client_id = batch.client_id;
        let through = batch.answered_through;
        state
            .results
            .retain(|&(client, sequence), _| client != client_id || sequence > through);
        let serializable = batch.read_consistency == ReadConsistency::Serializable;
        let mut responses = Vec::new();
        let mut refused = Vec::new();
        for request in &batch.requests {
            let outcome = match Command::decode(&request.command) {
                Err(error) => Some(ClientOutcome::Error(ClientError::InvalidCommand {
                    reason: error.to_string(),
                })),
                Ok(_) if request.command.len() as u64 > state.command_bytes_max => {
                    Some(ClientOutcome::Error(ClientError::TooLarge {
                        command_bytes: request.command.len() as u64,
                        command_bytes_max: state.command_bytes_max,
                    }))
                }
                Ok(command)
                    if command.is_read_only() && (state.leader == self.id || serializable) =>
                {
                    Some(ClientOutcome::Ok(
                        apply(&mut state.store, &command).to_bytes(),
                    ))
                }
                Ok(_) if state.leader != self.id => {
                    refused.push(request.sequence);
                    None
                }
                Ok(_) if state.unavailable_writes > 0 => {
                    state.unavailable_writes -= 1;
                    Some(ClientOutcome::Error(ClientError::Unavailable {
                        reason: "overloaded, retry".into(),
                    }))
                }
                Ok(command) => {
                    let key = (client_id, request.sequence);
                    let result = match state.results.get(&key) {
                        Some(result) => result.clone(),
                        None => {
                            let result = apply(&mut state.store, &command).to_bytes();
                            *state.applied.entry(key).or_default() += 1;
                            state.results.insert(key, result.clone());
                            let applied = state.applied.len();
                            if let Some(&(_, next)) = state
                                .leader_after_applied
                                .iter()
                                .find(|&&(at, _)| at == applied)
                            {
                                state.leader = next;
                            }
                            result
                        }
                    };
                    if state.drop_write_responses > 0 {
                        state.drop_write_responses -= 1;
                        None
                    } else {
                        Some(ClientOutcome::Ok(result))
                    }
                }
            };
            if let Some(outcome) = outcome {
                responses.push(ClientResponse {
                    sequence: request.sequence,
                    outcome,
                });
            }
        }
        // Like the node: per-request answers first, then the batch's NotLeader frame (which
        // alone carries the leader's address).
        let mut not_leader = None;
        if !refused.is_empty() {
            let (leader_id, leader_addr) = match state.hints {
                Hints::IdOnly => (Some(state.leader), None),
                Hints::IdAndAddr => (Some(state.leader), state.addr_of(state.leader)),
                Hints::Nothing => (None, None),
                Hints::Stale(node) => (Some(node), state.addr_of(node)),
            };
            if state.per_request_not_leader {
                for sequence in refused {
                    responses.push(ClientResponse {
                        sequence,
                        outcome: ClientOutcome::Error(ClientError::NotLeader { leader_id }),
                    });
                }
            }
            not_leader = Some(NotLeader {
                client_id,
                leader_id,
                leader_addr,
            });
        }
        if !responses.is_empty() {
            session
                .send_responses(&ClientResponseBatch {
                    client_id,
                    responses,
                })
                .unwrap();
        }
        if let Some(not_leader) = not_leader {
            session.send_not_leader(&not_leader).unwrap();
        }
    }

    fn status_request(&self, session: &ClientSession, request: &ArchivedStatusRequest) {
        let status = self.status(request.request_id.to_native());
        session.send_status(&status).unwrap();
    }
}

/// The store's semantics, small: enough to check the client's typed helpers.
fn apply(store: &mut BTreeMap<Bytes, Bytes>, command: &Command) -> CommandResult {
    match command {
        Command::Put { key, value } => {
            store.insert(key.clone(), value.clone());
            CommandResult::Written
        }
        Command::Get { key } => CommandResult::Value(store.get(key).cloned()),
        Command::Delete { key } => CommandResult::Deleted {
            existed: store.remove(key).is_some(),
        },
        Command::CompareAndSwap {
            key,
            expected,
            new_value,
        } => {
            let current = store.get(key).cloned();
            if current == *expected {
                store.insert(key.clone(), new_value.clone());
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
            let current = store.get(key).cloned();
            if current.as_ref() == Some(expected) {
                store.remove(key);
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
        Command::Range { start, end, limit } => {
            let mut pairs = Vec::new();
            let mut more = false;
            for (key, value) in store.range(start.clone()..) {
                if end.as_ref().is_some_and(|end| key >= end) {
                    break;
                }
                if pairs.len() == *limit as usize {
                    more = true;
                    break;
                }
                pairs.push((key.clone(), value.clone()));
            }
            CommandResult::Range { pairs, more }
        }
        Command::Batch(commands) => {
            CommandResult::Batch(commands.iter().map(|c| apply(store, c)).collect())
        }
    }
}
