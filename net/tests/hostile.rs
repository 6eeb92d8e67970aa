//! Hostile bytes from an authenticated peer or client close only that connection; the node and
//! its other links keep working.

mod common;

use std::rc::Rc;

use common::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use quinn::{ConnectionError, VarInt};
use tern_net::certs::ClusterCa;
use tern_net::frame::encode_frame;
use tern_net::tls::{Identity, Security};
use tern_net::transport::{close_code, dial, Transport};

fn hostile_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let valid = encode_frame(&every_raft_message(2, 5)[3], 1 << 20).unwrap();
    let mut oversized = valid.clone();
    oversized[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut invalid_archive = valid.clone();
    for byte in &mut invalid_archive[16..] {
        *byte = 0xa5;
    }
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let random = proptest::collection::vec(any::<u8>(), 1..4096)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    vec![
        ("random bytes", random),
        ("truncated frame", valid[..valid.len() / 2].to_vec()),
        ("oversized length", oversized),
        ("invalid archive", invalid_archive),
        (
            "message claiming another sender",
            encode_frame(&every_raft_message(1, 5)[0], 1 << 20).unwrap(),
        ),
        (
            "client frame on a peer stream",
            encode_frame(&client_request_batch(), 1 << 20).unwrap(),
        ),
    ]
}

/// Proves each hostile input, sent by a correctly authenticated member (node 2) to node 5,
/// closes that connection with BAD_FRAME, while node 1's link to node 5 keeps delivering.
#[test]
fn hostile_peer_bytes_close_only_that_connection() {
    run(|| async {
        let ca = ClusterCa::generate("test").unwrap();
        let addrs = free_addrs(5);
        let recorder1 = Recorder::default();
        let recorder5 = Recorder::default();
        let limits = test_limits();
        // Node 5 knows members 1 and 2; node 2 is the attacker, speaking raw QUIC.
        let mut config5 = config(5, &addrs, secure(&ca, Identity::Node(5)), limits.clone());
        config5.peers.retain(|(id, _)| *id <= 2);
        let node5 = Transport::start(config5, Rc::new(recorder5.clone())).unwrap();
        let mut config1 = config(1, &addrs, secure(&ca, Identity::Node(1)), limits.clone());
        config1.peers.retain(|(id, _)| *id == 5);
        let node1 = Transport::start(config1, Rc::new(recorder1)).unwrap();
        let attacker = secure(&ca, Identity::Node(2));

        for (index, (what, bytes)) in hostile_inputs().into_iter().enumerate() {
            let (_endpoint, connection) = dial(
                &attacker,
                Identity::Node(2),
                addrs[4],
                Identity::Node(5),
                &limits,
            )
            .await
            .unwrap();
            let mut stream = connection.open_uni().await.unwrap();
            let _ = stream.write_all(&bytes).await;
            let _ = stream.finish();
            match guarded("the server to close the connection", connection.closed()).await {
                ConnectionError::ApplicationClosed(close) => {
                    assert_eq!(
                        close.error_code,
                        VarInt::from_u32(close_code::BAD_FRAME),
                        "{what}"
                    )
                }
                other => panic!("{what}: expected BAD_FRAME, got {other}"),
            }
            // The healthy link still delivers.
            node1
                .send_wait(5, &every_raft_message(1, 5)[index % 12])
                .await
                .unwrap();
            let healthy_sent = index + 1;
            wait_until("healthy delivery", || {
                recorder5.raft_from(1).len() == healthy_sent
            })
            .await;
        }
        assert_eq!(node5.stats().bad_frames, hostile_inputs().len() as u64);
        assert!(
            recorder5.raft_from(2).is_empty(),
            "nothing from the attacker was delivered"
        );
    });
}

/// Proves a client that sends garbage or a Raft frame is cut off, and another client on the
/// same node is still served.
#[test]
fn hostile_client_bytes_close_only_that_client() {
    run(|| async {
        let ca = ClusterCa::generate("test").unwrap();
        let addrs = free_addrs(1);
        let recorder = Recorder::default();
        let node = Transport::start(
            config(1, &addrs, secure(&ca, Identity::Node(1)), test_limits()),
            Rc::new(recorder),
        )
        .unwrap();
        let client_security: Security = secure(&ca, Identity::Client);
        let mut good =
            tern_net::transport::Client::connect(&client_security, addrs[0], 1, &test_limits())
                .await
                .unwrap();
        for (what, bytes) in [
            ("garbage", vec![0x42u8; 100]),
            (
                "raft frame from a client",
                encode_frame(&every_raft_message(2, 1)[0], 1 << 20).unwrap(),
            ),
        ] {
            let (_endpoint, connection) = dial(
                &client_security,
                Identity::Client,
                addrs[0],
                Identity::Node(1),
                &test_limits(),
            )
            .await
            .unwrap();
            let (mut send, _receive) = connection.open_bi().await.unwrap();
            send.write_all(&bytes).await.unwrap();
            let _ = send.finish();
            match guarded("the server to close the connection", connection.closed()).await {
                ConnectionError::ApplicationClosed(close) => {
                    assert_eq!(
                        close.error_code,
                        VarInt::from_u32(close_code::BAD_FRAME),
                        "{what}"
                    )
                }
                other => panic!("{what}: expected BAD_FRAME, got {other}"),
            }
            good.send(&client_request_batch()).await.unwrap();
            assert!(matches!(
                good.receive().await.unwrap(),
                tern_net::transport::ClientReply::Responses(_)
            ));
        }
        assert_eq!(node.stats().bad_frames, 2);
    });
}
