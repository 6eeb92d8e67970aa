//! Operators' requests about the cluster itself, carried out on the Raft executor: listing the
//! membership, adding a learner, promoting it, removing a member (raft/membership_change.rs),
//! and handing leadership to another voter. A change answers as soon as the leader has it in
//! its log; the `tern member` command then waits until it is committed and out of joint
//! consensus (`membership_committed && !joint`).

use std::net::SocketAddr;

use bytes::Bytes;
use tern_net::message::{AdminOp, AdminResponse, MemberInfo};

use super::address_book::{AddressBook, Addresses};
use super::status::StatusBoard;
use crate::raft::{MembershipChange, Raft};

/// The members' addresses now: the command line's, overlaid by the book in the membership in
/// effect (a damaged book, which no correct member writes, is reported and ignored).
pub(crate) fn current_book(raft: &Raft, base: &AddressBook) -> AddressBook {
    match AddressBook::decode(&raft.membership().context) {
        Ok(book) => base.overlaid(&book),
        Err(error) => {
            tracing::warn!(%error, "the membership's address book is damaged; using the command line's");
            base.clone()
        }
    }
}

/// Carries out one request and says how it went.
pub(crate) fn handle(
    raft: &mut Raft,
    base: &AddressBook,
    board: &StatusBoard,
    request_id: u64,
    op: AdminOp,
) -> AdminResponse {
    let error = match op {
        AdminOp::ListMembers => None,
        AdminOp::AddLearner {
            id,
            peer_addr,
            client_addr,
        } => match (parse(&peer_addr, "peer"), parse(&client_addr, "client")) {
            (Ok(peer), Ok(client)) => {
                let mut book = current_book(raft, base);
                book.members.insert(
                    id,
                    Addresses {
                        peer,
                        client: Some(client),
                    },
                );
                change(raft, MembershipChange::AddLearner(id), &book)
            }
            (Err(error), _) | (_, Err(error)) => Some(error),
        },
        AdminOp::Promote { id } => {
            let book = current_book(raft, base);
            change(raft, MembershipChange::Promote(id), &book)
        }
        AdminOp::Remove { id } => {
            let mut book = current_book(raft, base);
            book.members.remove(&id);
            change(raft, MembershipChange::Remove(id), &book)
        }
        AdminOp::TransferLeader { to } => raft
            .transfer_leadership(to)
            .err()
            .map(|error| error.to_string()),
    };
    let mut response = view(raft, base, board, request_id);
    response.error = error;
    response
}

fn parse(text: &str, which: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("the {which} address {text:?} is not an address like 10.0.0.4:7000 or [::1]:7000")
    })
}

fn change(raft: &mut Raft, change: MembershipChange, book: &AddressBook) -> Option<String> {
    raft.propose_membership(change, Bytes::from(book.encode()))
        .err()
        .map(|error| error.to_string())
}

/// The membership as this node knows it, with the leader to go to.
pub(crate) fn view(
    raft: &Raft,
    base: &AddressBook,
    board: &StatusBoard,
    request_id: u64,
) -> AdminResponse {
    let membership = raft.membership();
    let book = current_book(raft, base);
    let status = raft.status();
    let members = membership
        .members()
        .into_iter()
        .map(|id| {
            let role = if membership.voters.contains(&id) {
                "voter"
            } else if membership.is_voter(id) {
                "leaving voter"
            } else {
                "learner"
            };
            let addresses = book.members.get(&id);
            MemberInfo {
                id,
                role: role.to_string(),
                peer_addr: addresses.map(|a| a.peer.to_string()).unwrap_or_default(),
                client_addr: addresses
                    .and_then(|a| a.client)
                    .map(|addr| addr.to_string())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let mut response = board.admin_refusal(request_id);
    response.members = members;
    response.membership_index = raft.membership_index();
    response.membership_committed = raft.membership_index() <= status.commit_index;
    response.joint = membership.is_joint();
    response.error = None;
    response
}
