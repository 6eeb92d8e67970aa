//! Helpers shared by the integration tests.
#![allow(dead_code)]

use tern_net::message::*;

/// One Raft message of every body kind, from `from` to `to`.
pub fn every_raft_message(from: NodeId, to: NodeId) -> Vec<RaftMessage> {
    let bodies = vec![
        RaftBody::VoteRequest { pre_vote: true, last_log_index: 7, last_log_term: 2, leadership_transfer: false },
        RaftBody::VoteRequest { pre_vote: false, last_log_index: 9, last_log_term: 3, leadership_transfer: true },
        RaftBody::VoteResponse { pre_vote: true, granted: true },
        RaftBody::AppendRequest {
            prev_log_index: 10,
            prev_log_term: 3,
            entries: vec![
                Entry { index: 11, term: 4, payload: EntryPayload::Noop },
                Entry { index: 12, term: 4, payload: EntryPayload::Command(b"set a 1".to_vec()) },
            ],
            leader_commit: 9,
        },
        RaftBody::AppendResponse { success: false, match_index: 0, conflict_index: 5, conflict_term: Some(2) },
        RaftBody::AppendResponse { success: true, match_index: 12, conflict_index: 0, conflict_term: None },
        RaftBody::Heartbeat { leader_commit: 12, read_round: 44 },
        RaftBody::HeartbeatResponse { read_round: 44 },
        RaftBody::TimeoutNow,
        RaftBody::ReadIndexRequest { request_id: 99 },
        RaftBody::ReadIndexResponse { request_id: 99, read_index: Some(12) },
        RaftBody::ReadIndexResponse { request_id: 100, read_index: None },
    ];
    bodies.into_iter().enumerate().map(|(i, body)| RaftMessage { from, to, term: 4 + i as u64, body }).collect()
}

pub fn client_request_batch() -> ClientRequestBatch {
    ClientRequestBatch {
        client_id: 77,
        requests: vec![
            ClientRequest { sequence: 1, command: b"put k v".to_vec() },
            ClientRequest { sequence: 2, command: vec![0u8; 300] },
        ],
    }
}

pub fn client_response_batch() -> ClientResponseBatch {
    ClientResponseBatch {
        client_id: 77,
        responses: vec![
            ClientResponse { sequence: 1, outcome: ClientOutcome::Ok(b"ok".to_vec()) },
            ClientResponse {
                sequence: 2,
                outcome: ClientOutcome::Error(ClientError::TooLarge { command_bytes: 300, command_bytes_max: 200 }),
            },
            ClientResponse { sequence: 3, outcome: ClientOutcome::Error(ClientError::InvalidCommand { reason: "bad".into() }) },
            ClientResponse { sequence: 4, outcome: ClientOutcome::Error(ClientError::Unavailable { reason: "no quorum".into() }) },
            ClientResponse { sequence: 5, outcome: ClientOutcome::Error(ClientError::SessionExpired) },
        ],
    }
}

pub fn not_leader() -> NotLeader {
    NotLeader { client_id: 77, leader_id: Some(3), leader_addr: Some("127.0.0.1:7003".into()) }
}

/// Turns a received frame into owned values, for comparing with what was sent.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Owned {
    Raft(RaftMessage),
    ClientRequests(ClientRequestBatch),
    ClientResponses(ClientResponseBatch),
    NotLeader(NotLeader),
}

pub fn to_owned(frame: &tern_net::Frame<'_>) -> Owned {
    use rkyv::rancor::Error;
    match frame {
        tern_net::Frame::Raft(m) => Owned::Raft(rkyv::deserialize::<RaftMessage, Error>(*m).unwrap()),
        tern_net::Frame::ClientRequests(m) => Owned::ClientRequests(rkyv::deserialize::<_, Error>(*m).unwrap()),
        tern_net::Frame::ClientResponses(m) => Owned::ClientResponses(rkyv::deserialize::<_, Error>(*m).unwrap()),
        tern_net::Frame::NotLeader(m) => Owned::NotLeader(rkyv::deserialize::<_, Error>(*m).unwrap()),
    }
}
