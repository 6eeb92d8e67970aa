//! Endpoints on loopback exchange every message type over mutual TLS (and in insecure mode).

mod common;

use std::rc::Rc;

use common::*;
use tern_net::certs::ClusterCa;
use tern_net::tls::{Identity, Security};
use tern_net::transport::{Client, ClientReply, Transport};

/// Proves two nodes deliver every Raft message type in both directions, in order, intact.
#[test]
fn two_endpoints_exchange_every_raft_message_type() {
    run(|| async {
        let ca = ClusterCa::generate("test").unwrap();
        let addrs = free_addrs(2);
        let recorders = [Recorder::default(), Recorder::default()];
        let nodes: Vec<Transport> = (1..=2)
            .map(|id| {
                let config = config(id, &addrs, secure(&ca, Identity::Node(id)), test_limits());
                Transport::start(config, Rc::new(recorders[id as usize - 1].clone())).unwrap()
            })
            .collect();
        for message in every_raft_message(1, 2) {
            nodes[0].send_wait(2, &message).await.unwrap();
        }
        for message in every_raft_message(2, 1) {
            nodes[1].send_wait(1, &message).await.unwrap();
        }
        let expected = every_raft_message(1, 2).len();
        wait_until("all messages", || {
            recorders.iter().all(|r| r.raft_count() == expected)
        })
        .await;
        assert_eq!(recorders[1].raft_from(1), every_raft_message(1, 2));
        assert_eq!(recorders[0].raft_from(2), every_raft_message(2, 1));
        assert_eq!(nodes[0].stats().bad_frames + nodes[1].stats().bad_frames, 0);
    });
}

/// Proves three nodes deliver every Raft message type between every pair, and a client gets
/// both a response batch and a "not leader" answer.
#[test]
fn three_endpoints_and_a_client_exchange_every_message_type() {
    run(|| async {
        let ca = ClusterCa::generate("test").unwrap();
        let addrs = free_addrs(3);
        let recorders = [
            Recorder::default(),
            Recorder::default(),
            Recorder::default(),
        ];
        let nodes: Vec<Transport> = (1..=3)
            .map(|id| {
                let config = config(id, &addrs, secure(&ca, Identity::Node(id)), test_limits());
                Transport::start(config, Rc::new(recorders[id as usize - 1].clone())).unwrap()
            })
            .collect();
        for from in 1..=3u64 {
            for to in (1..=3u64).filter(|&to| to != from) {
                for message in every_raft_message(from, to) {
                    nodes[from as usize - 1]
                        .send_wait(to, &message)
                        .await
                        .unwrap();
                }
            }
        }
        let per_pair = every_raft_message(1, 2).len();
        wait_until("all messages", || {
            recorders.iter().all(|r| r.raft_count() == 2 * per_pair)
        })
        .await;
        for to in 1..=3u64 {
            for from in (1..=3u64).filter(|&from| from != to) {
                assert_eq!(
                    recorders[to as usize - 1].raft_from(from),
                    every_raft_message(from, to)
                );
            }
        }

        let client_security = secure(&ca, Identity::Client);
        let mut client = Client::connect(&client_security, addrs[2], 3, &test_limits())
            .await
            .unwrap();
        client.send(&client_request_batch()).await.unwrap();
        assert_eq!(
            client.receive().await.unwrap(),
            ClientReply::Responses(client_response_batch())
        );
        let mut other = client_request_batch();
        other.client_id = 5;
        client.send(&other).await.unwrap();
        assert_eq!(
            client.receive().await.unwrap(),
            ClientReply::NotLeader(not_leader())
        );
        client
            .send(&tern_net::message::StatusRequest { request_id: 41 })
            .await
            .unwrap();
        let mut expected_status = node_status();
        expected_status.request_id = 41;
        assert_eq!(
            client.receive().await.unwrap(),
            ClientReply::Status(expected_status)
        );
        let admin = tern_net::message::AdminRequest {
            request_id: 42,
            op: tern_net::message::AdminOp::AddLearner {
                id: 4,
                peer_addr: "127.0.0.1:7010".into(),
                client_addr: "127.0.0.1:7011".into(),
            },
        };
        client.send(&admin).await.unwrap();
        assert_eq!(
            client.receive().await.unwrap(),
            ClientReply::Admin(common::admin_response(42))
        );
        let got: Vec<_> = recorders[2]
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| matches!(r, Received::Client(_)))
            .cloned()
            .collect();
        assert_eq!(
            got,
            vec![
                Received::Client(client_request_batch()),
                Received::Client(other)
            ]
        );
    });
}

/// Proves the insecure development mode still carries messages and still checks that the
/// dialed node is the one that answered.
#[test]
fn insecure_mode_works_and_still_checks_identity() {
    run(|| async {
        let addrs = free_addrs(3);
        let recorders = [
            Recorder::default(),
            Recorder::default(),
            Recorder::default(),
        ];
        let nodes: Vec<Transport> = (1..=2)
            .map(|id| {
                let config = config(id, &addrs[..2], Security::Insecure, test_limits());
                Transport::start(config, Rc::new(recorders[id as usize - 1].clone())).unwrap()
            })
            .collect();
        let message = every_raft_message(1, 2).remove(0);
        nodes[0].send_wait(2, &message).await.unwrap();
        wait_until("delivery", || recorders[1].raft_count() == 1).await;
        assert_eq!(recorders[1].raft_from(1), vec![message]);
        // Node 2 answers at addrs[1]; dialing it as node 1 expecting node 3 must fail.
        let result = tern_net::transport::dial(
            &Security::Insecure,
            Identity::Node(1),
            addrs[1],
            Identity::Node(3),
            &test_limits(),
        )
        .await;
        assert!(
            matches!(
                result,
                Err(tern_net::transport::TransportError::IdentityMismatch { .. })
            ),
            "{:?}",
            result.err()
        );
    });
}

/// Proves a dead peer does not block the others: node 3 never starts, node 1's queue to it
/// fills and pushes back, and node 1 -> node 2 traffic is delivered all the while.
#[test]
fn dead_peer_does_not_block_the_others() {
    run(|| async {
        let ca = ClusterCa::generate("test").unwrap();
        let addrs = free_addrs(3);
        let recorder2 = Recorder::default();
        let mut limits = test_limits();
        limits.send_queue_frames_max = 32;
        let node1 = Transport::start(
            config(1, &addrs, secure(&ca, Identity::Node(1)), limits.clone()),
            Rc::new(Recorder::default()),
        )
        .unwrap();
        let mut config2 = config(2, &addrs, secure(&ca, Identity::Node(2)), limits);
        config2.peers.retain(|(id, _)| *id == 1);
        let _node2 = Transport::start(config2, Rc::new(recorder2.clone())).unwrap();
        let to_dead = every_raft_message(1, 3).remove(0);
        let mut queued = 0;
        while node1.send(3, &to_dead).is_ok() {
            queued += 1;
            assert!(queued <= 32, "queue to the dead peer went past its bound");
        }
        for (index, message) in every_raft_message(1, 2).into_iter().enumerate() {
            node1.send_wait(2, &message).await.unwrap();
            wait_until("delivery to the live peer", || {
                recorder2.raft_count() == index + 1
            })
            .await;
        }
        assert_eq!(recorder2.raft_from(1), every_raft_message(1, 2));
        assert!(!node1.is_connected(3));
        assert_eq!(node1.queue_stats(3).unwrap().frames, 32);
    });
}

/// Proves a node certificate issued later from the CA files in a certificate directory
/// (`tern certs --add`) is trusted by members holding the original certificates.
#[test]
fn a_node_certificate_added_later_is_trusted_by_the_original_members() {
    use tern_net::certs::{add_node_certificates, load_credentials, write_cluster_certificates};
    let directory = tempfile::tempdir().unwrap();
    write_cluster_certificates(directory.path(), &[1], false).unwrap();
    let ca_before = std::fs::read(directory.path().join("ca.pem")).unwrap();
    add_node_certificates(directory.path(), &[2], false).unwrap();
    assert_eq!(
        std::fs::read(directory.path().join("ca.pem")).unwrap(),
        ca_before,
        "adding a node must not replace the CA"
    );
    // A second add of the same id is refused; a CA-less directory says what it needs.
    assert!(add_node_certificates(directory.path(), &[2], false).is_err());
    let empty = tempfile::tempdir().unwrap();
    let missing = add_node_certificates(empty.path(), &[2], false).unwrap_err();
    assert!(missing.to_string().contains("ca.pem"), "{missing}");
    let dir = directory.path().to_path_buf();
    run(move || async move {
        let addrs = free_addrs(2);
        let recorders = [Recorder::default(), Recorder::default()];
        let nodes: Vec<Transport> = (1..=2)
            .map(|id| {
                let credentials = load_credentials(&dir, Identity::Node(id)).unwrap();
                let config = config(id, &addrs, Security::MutualTls(credentials), test_limits());
                Transport::start(config, Rc::new(recorders[id as usize - 1].clone())).unwrap()
            })
            .collect();
        for message in every_raft_message(1, 2) {
            nodes[0].send_wait(2, &message).await.unwrap();
        }
        let expected = every_raft_message(1, 2).len();
        wait_until("node 2 hears node 1", || {
            recorders[1].raft_count() == expected
        })
        .await;
        assert_eq!(
            nodes[0].stats().handshakes_refused + nodes[1].stats().handshakes_refused,
            0
        );
    });
}
