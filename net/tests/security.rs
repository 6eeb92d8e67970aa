//! Mutual TLS refuses peers that are not cluster members or not who they claim to be, before
//! any Raft message from them is read.

mod common;

use std::rc::Rc;

use common::*;
use quinn::{ConnectionError, VarInt};
use tern_net::certs::ClusterCa;
use tern_net::tls::Identity;
use tern_net::transport::{close_code, dial, Client, Transport, TransportError};

/// Proves a node whose certificate comes from another CA is refused in the handshake, in both
/// directions (it dials us; we dial it), and none of its messages are delivered.
#[test]
fn peer_with_wrong_ca_is_refused() {
    run(|| async {
        let ca = ClusterCa::generate("good").unwrap();
        let rogue_ca = ClusterCa::generate("rogue").unwrap();
        let addrs = free_addrs(3);
        let recorders = [
            Recorder::default(),
            Recorder::default(),
            Recorder::default(),
        ];
        // Node 2 is legitimate. Node 1 (which dials 2) and node 3 (which 2 dials) hold
        // certificates for their right ids, but signed by the rogue CA.
        let security = |id| {
            if id == 2 {
                secure(&ca, Identity::Node(id))
            } else {
                secure(&rogue_ca, Identity::Node(id))
            }
        };
        let nodes: Vec<Transport> = (1..=3)
            .map(|id| {
                let config = config(id, &addrs, security(id), test_limits());
                Transport::start(config, Rc::new(recorders[id as usize - 1].clone())).unwrap()
            })
            .collect();
        nodes[0].send(2, &every_raft_message(1, 2)[0]).unwrap();
        nodes[2].send(2, &every_raft_message(3, 2)[0]).unwrap();
        // Node 2 refuses node 1's handshakes; node 3 refuses node 2's (node 2's certificate is
        // not from node 3's CA), and node 2 in turn refuses node 3's.
        wait_until("node 2 refuses handshakes", || {
            nodes[1].stats().handshakes_refused >= 1
        })
        .await;
        wait_until("node 3 refuses node 2", || {
            nodes[2].stats().handshakes_refused >= 1
        })
        .await;
        assert!(!nodes[1].is_connected(1) && !nodes[1].is_connected(3));
        assert_eq!(recorders[1].raft_count(), 0);
        assert_eq!(nodes[1].stats().raft_frames_received, 0);

        // A raw dial with a rogue certificate fails, and so does a client with one.
        let rogue = secure(&rogue_ca, Identity::Node(1));
        let result = dial(
            &rogue,
            Identity::Node(1),
            addrs[1],
            Identity::Node(2),
            &test_limits(),
        )
        .await;
        assert!(
            matches!(result, Err(TransportError::HandshakeRefused { .. })),
            "{:?}",
            result.err()
        );
        let rogue_client = secure(&rogue_ca, Identity::Client);
        assert!(Client::connect(&rogue_client, addrs[1], 2, &test_limits())
            .await
            .is_err());
    });
}

/// Proves identity checks: dialing node 2's address expecting node 3 fails (the certificate
/// does not name node 3); a valid member certificate for a node that is not configured, and a
/// member that dials against the lower-id-dials rule, are closed before any stream is read.
#[test]
fn identity_mismatch_is_refused() {
    run(|| async {
        let ca = ClusterCa::generate("good").unwrap();
        let addrs = free_addrs(2);
        let recorder = Recorder::default();
        let node2 = Transport::start(
            config(2, &addrs, secure(&ca, Identity::Node(2)), test_limits()),
            Rc::new(recorder.clone()),
        )
        .unwrap();

        let as_node1 = secure(&ca, Identity::Node(1));
        let result = dial(
            &as_node1,
            Identity::Node(1),
            addrs[1],
            Identity::Node(3),
            &test_limits(),
        )
        .await;
        assert!(
            result.is_err(),
            "dialing node 2 as if it were node 3 must fail"
        );

        for (identity, why) in [
            (Identity::Node(9), "unknown member"),
            (Identity::Node(3), "higher id dialing"),
        ] {
            let (_endpoint, connection) = dial(
                &secure(&ca, identity),
                identity,
                addrs[1],
                Identity::Node(2),
                &test_limits(),
            )
            .await
            .unwrap();
            // Whatever it sends is never read: the connection is closed on its identity.
            if let Ok(mut stream) = connection.open_uni().await {
                let _ = stream
                    .write_all(
                        &tern_net::frame::encode_frame(&every_raft_message(9, 2)[0], 1 << 20)
                            .unwrap(),
                    )
                    .await;
            }
            match guarded("the server to close the connection", connection.closed()).await {
                ConnectionError::ApplicationClosed(close) => {
                    assert_eq!(
                        close.error_code,
                        VarInt::from_u32(close_code::REFUSED_IDENTITY),
                        "{why}"
                    )
                }
                other => panic!("{why}: expected an identity refusal, got {other}"),
            }
        }
        assert_eq!(node2.stats().identities_refused, 2);
        assert_eq!(recorder.raft_count(), 0);
    });
}
