//! The frame decoder: every message type round-trips, and hostile bytes give errors, never a
//! panic or an allocation beyond `frame_bytes_max`.

mod common;

use common::*;
use proptest::prelude::*;
use tern_net::frame::{FrameEncoder, FrameError, FrameReader, FRAME_HEADER_BYTES};

const FRAME_BYTES_MAX: usize = 1 << 20;

fn all_frames() -> (Vec<u8>, Vec<Owned>) {
    let mut encoder = FrameEncoder::new();
    let mut out = Vec::new();
    let mut sent = Vec::new();
    for message in every_raft_message(1, 2) {
        encoder.encode(&message, &mut out, FRAME_BYTES_MAX).unwrap();
        sent.push(Owned::Raft(message));
    }
    encoder
        .encode(&client_request_batch(), &mut out, FRAME_BYTES_MAX)
        .unwrap();
    sent.push(Owned::ClientRequests(client_request_batch()));
    encoder
        .encode(&client_response_batch(), &mut out, FRAME_BYTES_MAX)
        .unwrap();
    sent.push(Owned::ClientResponses(client_response_batch()));
    encoder
        .encode(&not_leader(), &mut out, FRAME_BYTES_MAX)
        .unwrap();
    sent.push(Owned::NotLeader(not_leader()));
    (out, sent)
}

fn drain(reader: &mut FrameReader, got: &mut Vec<Owned>) -> Result<(), FrameError> {
    while let Some(frame) = reader.next_frame()? {
        got.push(to_owned(&frame));
    }
    Ok(())
}

/// Proves every message type survives encode + validate + read in place, in one buffer.
#[test]
fn every_message_type_round_trips() {
    let (bytes, sent) = all_frames();
    let mut reader = FrameReader::new("test-peer", FRAME_BYTES_MAX);
    reader.push(&bytes);
    let mut got = Vec::new();
    drain(&mut reader, &mut got).unwrap();
    assert_eq!(got, sent);
    reader.finish().unwrap();
}

/// Proves frames split at every possible point (one byte per read) decode the same.
#[test]
fn byte_at_a_time_delivery_decodes_the_same() {
    let (bytes, sent) = all_frames();
    let mut reader = FrameReader::new("test-peer", FRAME_BYTES_MAX);
    let mut got = Vec::new();
    for byte in &bytes {
        reader.push(std::slice::from_ref(byte));
        drain(&mut reader, &mut got).unwrap();
    }
    assert_eq!(got, sent);
}

/// Proves a header declaring a huge frame is refused from the header alone, before the reader
/// grows its buffer for it.
#[test]
fn oversized_length_is_refused_before_allocation() {
    let (mut bytes, _) = all_frames();
    bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut reader = FrameReader::new("peer-x", FRAME_BYTES_MAX);
    reader.push(&bytes[..FRAME_HEADER_BYTES]);
    let error = reader.next_frame().unwrap_err();
    assert!(
        matches!(error, FrameError::TooLarge { ref peer, .. } if peer == "peer-x"),
        "{error}"
    );
    assert!(
        reader.read_space().len() < FRAME_BYTES_MAX,
        "buffer grew for a refused frame"
    );
}

/// Proves each header check fires with its own error.
#[test]
fn bad_headers_are_named() {
    let (bytes, _) = all_frames();
    type Check = fn(&FrameError) -> bool;
    let cases: Vec<(usize, u8, Check)> = vec![
        (0, b'x', |e| matches!(e, FrameError::BadMagic { .. })),
        (4, 9, |e| {
            matches!(e, FrameError::UnsupportedVersion { found: 9, .. })
        }),
        (5, 200, |e| {
            matches!(e, FrameError::UnknownKind { found: 200, .. })
        }),
        (6, 1, |e| matches!(e, FrameError::ReservedNotZero { .. })),
        (13, 1, |e| matches!(e, FrameError::ReservedNotZero { .. })),
    ];
    for (offset, value, check) in cases {
        let mut bad = bytes.clone();
        bad[offset] = value;
        let mut reader = FrameReader::new("p", FRAME_BYTES_MAX);
        reader.push(&bad);
        let error = reader.next_frame().unwrap_err();
        assert!(check(&error), "offset {offset}: {error}");
        assert!(
            error.to_string().contains("from p"),
            "error names the peer: {error}"
        );
    }
}

/// Proves a well-formed header over a body that is not a valid archive is refused by
/// validation, naming the expected type and the frame length.
#[test]
fn invalid_archive_is_refused() {
    let (mut bytes, _) = all_frames();
    let body_bytes = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    for byte in &mut bytes[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + body_bytes] {
        *byte = 0xff;
    }
    let mut reader = FrameReader::new("p", FRAME_BYTES_MAX);
    reader.push(&bytes);
    let error = reader.next_frame().unwrap_err();
    match &error {
        FrameError::InvalidArchive {
            expected,
            frame_bytes,
            ..
        } => {
            assert_eq!(*expected, "RaftMessage");
            assert!(*frame_bytes > FRAME_HEADER_BYTES);
        }
        other => panic!("expected InvalidArchive, got {other}"),
    }
}

/// Proves a stream that ends inside a frame is reported as truncated.
#[test]
fn truncated_stream_is_reported() {
    let (bytes, _) = all_frames();
    let mut reader = FrameReader::new("p", FRAME_BYTES_MAX);
    reader.push(&bytes[..bytes.len() - 5]);
    let mut got = Vec::new();
    drain(&mut reader, &mut got).unwrap();
    assert!(matches!(reader.finish(), Err(FrameError::Truncated { .. })));
}

/// Proves a message too large for `frame_bytes_max` is refused at encode time and leaves the
/// output buffer untouched.
#[test]
fn encoder_refuses_oversized_messages() {
    let mut encoder = FrameEncoder::new();
    let mut out = Vec::new();
    let big = tern_net::message::ClientRequestBatch {
        client_id: 1,
        answered_through: 0,
        read_consistency: tern_net::message::ReadConsistency::ServerDefault,
        requests: vec![tern_net::message::ClientRequest {
            sequence: 1,
            command: vec![1; 4096],
        }],
    };
    assert!(encoder.encode(&big, &mut out, 1024).is_err());
    assert!(out.is_empty());
}

fn feed_all(bytes: &[u8], chunk_bytes: usize) {
    let mut reader = FrameReader::new("fuzz", 64 << 10);
    for chunk in bytes.chunks(chunk_bytes.max(1)) {
        reader.push(chunk);
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    let _ = frame.kind();
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = reader.finish();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Random bytes never panic the decoder.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096), chunk in 1usize..512) {
        feed_all(&bytes, chunk);
    }

    /// A valid header in front of random bytes (the hard case: it reaches validation) never
    /// panics, and valid frames with random bytes changed never panic either.
    #[test]
    fn valid_headers_over_random_bodies_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        kind in 1u8..5,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
    ) {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"tern");
        bytes.extend_from_slice(&[1, kind, 0, 0]);
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&body);
        bytes.resize(bytes.len().div_ceil(16) * 16, 0);
        feed_all(&bytes, 4096);
        let (mut valid, _) = all_frames();
        for (at, value) in flips {
            let index = at % valid.len();
            valid[index] = value;
        }
        feed_all(&valid, 100);
    }
}
