//! Bad client input against a 3-node cluster: an oversized value, an oversized key, command
//! bytes that are garbage, an empty key. Each gets an error that says what was wrong, nothing
//! is written, no member exits, and the cluster goes on serving.

mod cluster_common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use cluster_common::{block_on, Cluster};
use tern_kv::Command;
use tern_net::kv_client::{KvClient, KvError};
use tern_net::message::{
    ClientError, ClientOutcome, ClientRequest, ClientRequestBatch, ReadConsistency,
};
use tern_net::transport::{Client, ClientReply, Limits};

/// Above the default `value_bytes_max` (1 MiB), below the frame limit (16 MiB).
const OVERSIZED_VALUE_BYTES: usize = 2 << 20;
/// Above the default `key_bytes_max` (4 KiB), below the argument length limit of exec (128 KiB).
const OVERSIZED_KEY_BYTES: usize = 5_000;
/// Hang guard on the raw client's wait for its answers.
const RAW_REPLY_WAIT_MAX: Duration = Duration::from_secs(10);
/// Most reply frames the raw client reads (a bound on the loop).
const RAW_REPLIES_MAX: usize = 16;
const CLI_TIMEOUT_MS: u64 = 30_000;

/// True when an error text names a size limit.
fn mentions_limit(text: &str) -> bool {
    let text = text.to_lowercase();
    ["limit", "_max", "too large"]
        .iter()
        .any(|word| text.contains(word))
}

#[test]
fn oversized_and_malformed_requests_get_errors_and_the_cluster_goes_on() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();

    // Through the client library: an oversized value and an empty key are refused.
    let config = cluster.client_config();
    block_on("oversized", move || async move {
        let client = KvClient::connect(config).await.expect("connect");
        let big = Bytes::from(vec![b'v'; OVERSIZED_VALUE_BYTES]);
        match client.put("big", big).await {
            Err(KvError::Refused(reason)) => {
                assert!(
                    mentions_limit(&reason),
                    "the refusal names the limit: {reason}"
                );
                eprintln!("oversized value refused: {reason}");
            }
            other => {
                panic!("a {OVERSIZED_VALUE_BYTES}-byte value: expected Refused, got {other:?}")
            }
        }
        match client.put(Bytes::new(), "v").await {
            Err(KvError::Refused(reason)) => eprintln!("empty key refused: {reason}"),
            other => panic!("an empty key: expected Refused, got {other:?}"),
        }
        assert_eq!(
            client.get("big").await.expect("get big"),
            None,
            "nothing was written"
        );
        client.close();
    });

    // Through the CLI: an oversized key is refused with exit code 3 and names the limit.
    let long_key = "k".repeat(OVERSIZED_KEY_BYTES);
    let output = cluster.cli(&["put", long_key.as_str(), "v"], CLI_TIMEOUT_MS);
    output.expect_code(3, "put of an oversized key");
    assert!(
        mentions_limit(&output.stderr),
        "the CLI error names the limit: {}",
        output.stderr
    );

    // A raw client sends garbage command bytes and a put with an empty key to the leader.
    let security = cluster.security();
    let leader_addr = cluster.client_addr(leader);
    let answers: HashMap<u64, ClientOutcome> = block_on("raw", move || async move {
        let mut client = Client::connect(&security, leader_addr, leader, &Limits::default())
            .await
            .expect("raw connect");
        let empty_key = Command::Put {
            key: Bytes::new(),
            value: Bytes::from_static(b"value"),
        };
        let batch = ClientRequestBatch {
            client_id: 0x5eed_0bad_0000_0001,
            answered_through: 0,
            read_consistency: ReadConsistency::ServerDefault,
            requests: vec![
                ClientRequest {
                    sequence: 1,
                    command: vec![0xff, 0x13, 0x37, 0x00, 0x42, 0x99],
                },
                ClientRequest {
                    sequence: 2,
                    command: empty_key.to_bytes(),
                },
                ClientRequest {
                    sequence: 3,
                    command: Vec::new(),
                },
            ],
        };
        client.send(&batch).await.expect("send the batch");
        let mut answers = HashMap::new();
        for _ in 0..RAW_REPLIES_MAX {
            if answers.len() == batch.requests.len() {
                break;
            }
            let reply = futures_lite::future::or(async { Some(client.receive().await) }, async {
                tern_net::runtime::sleep(RAW_REPLY_WAIT_MAX).await;
                None
            })
            .await;
            match reply {
                None => panic!("no full answer within {RAW_REPLY_WAIT_MAX:?}: {answers:?}"),
                Some(Ok(ClientReply::Responses(responses))) => {
                    for response in responses.responses {
                        answers.insert(response.sequence, response.outcome);
                    }
                }
                Some(Ok(other)) => panic!("unexpected reply from the leader: {other:?}"),
                Some(Err(error)) => panic!("the leader dropped the raw client: {error}"),
            }
        }
        client.close();
        answers
    });
    for sequence in [1, 3] {
        match answers.get(&sequence) {
            Some(ClientOutcome::Error(ClientError::InvalidCommand { reason })) => {
                eprintln!("request {sequence} (garbage command bytes): {reason}");
            }
            other => panic!("request {sequence} (garbage): expected InvalidCommand, got {other:?}"),
        }
    }
    // An empty key breaks no size limit: it is an invalid command, not a too-large one.
    match answers.get(&2) {
        Some(ClientOutcome::Error(ClientError::InvalidCommand { reason })) => {
            eprintln!("request 2 (empty key): {reason}");
        }
        other => panic!("request 2 (empty key): expected InvalidCommand, got {other:?}"),
    }

    // The cluster goes on: no member exited, writes and reads work, through both paths.
    cluster.assert_all_running();
    let output = cluster.cli(&["put", "after", "fine"], CLI_TIMEOUT_MS);
    output.expect_code(0, "put after the bad input");
    let config = cluster.client_config();
    block_on("after", move || async move {
        let client = KvClient::connect(config).await.expect("connect");
        assert_eq!(
            client.get("after").await.expect("get"),
            Some(Bytes::from("fine"))
        );
        client.put("after-2", "also fine").await.expect("put");
        assert_eq!(
            client.get("after-2").await.expect("get"),
            Some(Bytes::from("also fine"))
        );
        client.close();
    });
    cluster.wait_for_leader();
    cluster.assert_all_running();
}
