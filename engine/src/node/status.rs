//! The status the Raft executor publishes after every loop turn, for client executors: whether
//! this node leads (writes and linearizable reads go through the core only then), whom to send
//! clients to otherwise, and the figures `tern status` shows.

use std::net::SocketAddr;
use std::sync::Mutex;

use tern_net::message::NodeStatus;

use crate::raft::{NodeId, Role, Status};

/// The latest published core status; written by the Raft executor, read by client executors.
pub(crate) struct StatusBoard {
    status: Mutex<Status>,
    /// This node's client and peer addresses, and the other members' client addresses.
    client_addr: SocketAddr,
    peer_addr: SocketAddr,
    peer_client_addrs: Vec<(NodeId, SocketAddr)>,
}

impl StatusBoard {
    pub(crate) fn new(
        initial: Status,
        client_addr: SocketAddr,
        peer_addr: SocketAddr,
        peer_client_addrs: Vec<(NodeId, SocketAddr)>,
    ) -> StatusBoard {
        StatusBoard {
            status: Mutex::new(initial),
            client_addr,
            peer_addr,
            peer_client_addrs,
        }
    }

    /// Replaces the published status.
    pub(crate) fn publish(&self, status: Status) {
        *self
            .status
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = status;
    }

    /// The latest published status.
    pub(crate) fn get(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// Where clients reach `leader`, when known.
    pub(crate) fn client_addr_of(&self, leader: NodeId, own_id: NodeId) -> Option<SocketAddr> {
        if leader == own_id {
            return Some(self.client_addr);
        }
        self.peer_client_addrs
            .iter()
            .find(|(id, _)| *id == leader)
            .map(|(_, addr)| *addr)
    }

    /// The answer to a status request.
    pub(crate) fn node_status(&self, request_id: u64) -> NodeStatus {
        let status = self.get();
        NodeStatus {
            request_id,
            node_id: status.id,
            client_addr: self.client_addr.to_string(),
            peer_addr: self.peer_addr.to_string(),
            role: role_name(status.role).to_string(),
            term: status.term,
            last_index: status.last_index,
            commit_index: status.commit_index,
            applied_index: status.applied_index,
            leader_id: status.leader,
            leader_client_addr: status
                .leader
                .and_then(|leader| self.client_addr_of(leader, status.id))
                .map(|addr| addr.to_string()),
        }
    }
}

/// The role as `tern status` prints it.
pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::PreCandidate => "pre-candidate",
    }
}
