//! The number of client connections a transport serves is bounded by `client_connections_max`.

mod common;

use std::rc::Rc;

use common::*;
use tern_net::certs::ClusterCa;
use tern_net::tls::{Identity, Security};
use tern_net::transport::{Client, ClientReply, Transport, TransportError};

/// A request/response round trip; `Ok` only when the server answered.
async fn round_trip(client: &mut Client) -> Result<ClientReply, TransportError> {
    client.send(&client_request_batch()).await?;
    client.receive().await
}

/// Proves a client past `client_connections_max` is refused with the reason while the clients
/// already connected keep working, and that closing one makes room for a new one.
#[test]
fn clients_past_the_limit_are_refused_and_room_is_given_back() {
    run(|| async {
        let ca = ClusterCa::generate("test").unwrap();
        let addrs = free_addrs(1);
        let mut limits = test_limits();
        limits.client_connections_max = 2;
        let node = Transport::start(
            config(1, &addrs, secure(&ca, Identity::Node(1)), limits.clone()),
            Rc::new(Recorder::default()),
        )
        .unwrap();
        let security: Security = secure(&ca, Identity::Client);
        let connect = || Client::connect(&security, addrs[0], 1, &limits);

        let mut first = connect().await.unwrap();
        let mut second = connect().await.unwrap();
        for client in [&mut first, &mut second] {
            let reply = guarded("a served client's reply", round_trip(client)).await;
            assert_eq!(
                reply.unwrap(),
                ClientReply::Responses(client_response_batch())
            );
        }
        assert_eq!(node.client_connections(), 2);

        // The handshake succeeds (the server must see the certificate to know it is a
        // client); the server then closes the connection with the reason.
        let refused = match connect().await {
            Ok(mut extra) => guarded("the refused client's error", round_trip(&mut extra)).await,
            Err(error) => Err(error),
        };
        let error = refused.expect_err("a client past client_connections_max was served");
        assert!(
            error.to_string().contains("too many client connections"),
            "{error}"
        );
        let stats = node.stats();
        assert_eq!(stats.client_connections_refused, 1);
        assert_eq!(stats.client_connections_accepted, 2);
        assert_eq!(node.client_connections(), 2);

        // The clients already connected are unaffected.
        for client in [&mut first, &mut second] {
            let reply = guarded("a served client's reply", round_trip(client)).await;
            assert_eq!(
                reply.unwrap(),
                ClientReply::Responses(client_response_batch())
            );
        }

        // Closing one gives its place back.
        first.close();
        drop(first);
        wait_until("the closed client's place is freed", || {
            node.client_connections() == 1
        })
        .await;
        let mut replacement = connect().await.unwrap();
        let reply = guarded("the new client's reply", round_trip(&mut replacement)).await;
        assert_eq!(
            reply.unwrap(),
            ClientReply::Responses(client_response_batch())
        );
        let reply = guarded("a served client's reply", round_trip(&mut second)).await;
        assert_eq!(
            reply.unwrap(),
            ClientReply::Responses(client_response_batch())
        );
        assert_eq!(node.client_connections(), 2);
        assert_eq!(node.stats().client_connections_refused, 1);
        assert_eq!(node.stats().client_connections_accepted, 3);
    });
}
