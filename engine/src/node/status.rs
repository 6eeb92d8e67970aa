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
    /// Updated by the Raft executor when the membership's address book changes.
    peer_client_addrs: Mutex<Vec<(NodeId, SocketAddr)>>,
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
            peer_client_addrs: Mutex::new(peer_client_addrs),
        }
    }

    /// The other members' client addresses, from the membership's address book.
    pub(crate) fn set_peer_client_addrs(&self, addrs: Vec<(NodeId, SocketAddr)>) {
        *self
            .peer_client_addrs
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = addrs;
    }

    /// An admin answer that lists nothing (the caller fills in the error), with the leader
    /// hint the status gives.
    pub(crate) fn admin_refusal(&self, request_id: u64) -> tern_net::message::AdminResponse {
        let status = self.node_status(request_id);
        tern_net::message::AdminResponse {
            request_id,
            members: Vec::new(),
            membership_index: 0,
            membership_committed: false,
            joint: false,
            error: None,
            leader_id: status.leader_id,
            leader_client_addr: status.leader_client_addr,
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
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
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
