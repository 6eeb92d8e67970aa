//! The binary encodings of commands, results and proposals: round trips, exact layouts, and
//! decoders that refuse (never panic on) random, truncated and trailing input.

mod common;

use bytes::Bytes;
use common::{any_bytes, any_command, any_result, b};
use proptest::prelude::*;
use tern_kv::{
    decode_proposal, encode_proposal, prefix_end, Command, CommandResult, Proposal,
    PROPOSAL_HEADER_BYTES, PROPOSAL_VERSION,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn command_round_trips(command in any_command()) {
        let bytes = command.to_bytes();
        prop_assert_eq!(Command::decode(&bytes), Ok(command));
    }

    #[test]
    fn result_round_trips(result in any_result()) {
        let bytes = result.to_bytes();
        prop_assert_eq!(CommandResult::decode(&bytes), Ok(result));
    }

    #[test]
    fn proposal_round_trips(
        client_id in any::<u64>(),
        sequence in any::<u64>(),
        answered_through in any::<u64>(),
        command in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let proposal = Proposal { client_id, sequence, answered_through, command: &command };
        let mut bytes = Vec::new();
        encode_proposal(&proposal, &mut bytes);
        prop_assert_eq!(bytes.len(), PROPOSAL_HEADER_BYTES + command.len());
        prop_assert_eq!(decode_proposal(&bytes), Ok(proposal));
    }

    #[test]
    fn decoders_never_panic_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = Command::decode(&bytes);
        let _ = CommandResult::decode(&bytes);
        let _ = decode_proposal(&bytes);
    }

    #[test]
    fn truncated_commands_are_refused(command in any_command(), cut in any::<prop::sample::Index>()) {
        let bytes = command.to_bytes();
        let cut = cut.index(bytes.len());
        let error = Command::decode(&bytes[..cut]).unwrap_err();
        prop_assert_eq!(error.what, "command");
        prop_assert!(error.offset <= cut);
    }

    #[test]
    fn truncated_results_are_refused(result in any_result(), cut in any::<prop::sample::Index>()) {
        let bytes = result.to_bytes();
        let cut = cut.index(bytes.len());
        prop_assert!(CommandResult::decode(&bytes[..cut]).is_err());
    }

    #[test]
    fn trailing_bytes_are_refused(command in any_command(), result in any_result(), extra in 1u8..=255) {
        let mut bytes = command.to_bytes();
        let end = bytes.len();
        bytes.push(extra);
        let error = Command::decode(&bytes).unwrap_err();
        prop_assert_eq!(error.offset, end);
        prop_assert!(error.detail.contains("trailing"), "{}", error.detail);

        let mut bytes = result.to_bytes();
        bytes.push(extra);
        prop_assert!(CommandResult::decode(&bytes).unwrap_err().detail.contains("trailing"));
    }

    #[test]
    fn mutated_commands_never_panic(command in any_command(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = command.to_bytes();
        let at = at.index(bytes.len());
        bytes[at] = byte;
        if let Ok(decoded) = Command::decode(&bytes) {
            // Whatever decodes must re-encode to the same bytes (the encoding is canonical).
            prop_assert_eq!(decoded.to_bytes(), bytes);
        }
    }

    #[test]
    fn prefix_end_bounds_every_key_with_the_prefix(prefix in any_bytes(), suffix in any_bytes()) {
        let mut key = prefix.to_vec();
        key.extend_from_slice(&suffix);
        match prefix_end(&prefix) {
            Some(end) => {
                prop_assert!(key.as_slice() < end.as_ref());
                prop_assert!(prefix.as_ref() < end.as_ref());
            }
            None => prop_assert!(prefix.iter().all(|&byte| byte == 0xff)),
        }
    }
}

#[test]
fn put_has_the_documented_layout() {
    let bytes = Command::Put {
        key: b("k"),
        value: b("vv"),
    }
    .to_bytes();
    assert_eq!(bytes, [1, 1, 0, 0, 0, b'k', 2, 0, 0, 0, b'v', b'v']);
}

#[test]
fn range_has_the_documented_layout() {
    let bytes = Command::Range {
        start: b("a"),
        end: None,
        limit: 258,
    }
    .to_bytes();
    assert_eq!(bytes, [6, 1, 0, 0, 0, b'a', 0, 2, 1, 0, 0]);
}

#[test]
fn proposal_has_the_documented_layout() {
    let mut bytes = Vec::new();
    encode_proposal(
        &Proposal {
            client_id: 1,
            sequence: 2,
            answered_through: 3,
            command: b"xyz",
        },
        &mut bytes,
    );
    let mut expected = vec![PROPOSAL_VERSION];
    expected.extend_from_slice(&1u64.to_le_bytes());
    expected.extend_from_slice(&2u64.to_le_bytes());
    expected.extend_from_slice(&3u64.to_le_bytes());
    expected.extend_from_slice(b"xyz");
    assert_eq!(bytes, expected);
}

#[test]
fn proposal_with_a_wrong_version_is_refused() {
    let mut bytes = vec![0u8; PROPOSAL_HEADER_BYTES];
    bytes[0] = PROPOSAL_VERSION.wrapping_add(1);
    let error = decode_proposal(&bytes).unwrap_err();
    assert_eq!((error.what, error.offset), ("proposal", 0));
    assert!(error.detail.contains("version"), "{error}");
}

#[test]
fn short_proposal_is_refused() {
    let bytes = [PROPOSAL_VERSION, 1, 2, 3];
    let error = decode_proposal(&bytes).unwrap_err();
    assert!(error.detail.contains("client id"), "{error}");
    assert_eq!(error.offset, 1);
}

#[test]
fn nested_batch_is_refused() {
    let inner = Command::Batch(vec![Command::Get { key: b("a") }]);
    let bytes = Command::Batch(vec![inner]).to_bytes();
    let error = Command::decode(&bytes).unwrap_err();
    assert_eq!(error.offset, 5, "{error}");
    assert!(error.detail.contains("may not nest"), "{error}");

    let inner = CommandResult::Batch(vec![CommandResult::Written]);
    let bytes = CommandResult::Batch(vec![inner]).to_bytes();
    assert!(CommandResult::decode(&bytes)
        .unwrap_err()
        .detail
        .contains("may not nest"));
}

#[test]
fn oversized_length_prefix_is_refused_with_the_numbers() {
    // A Get whose key claims 70000 bytes with only 2 present.
    let mut bytes = vec![2];
    bytes.extend_from_slice(&70_000u32.to_le_bytes());
    bytes.extend_from_slice(b"ab");
    let error = Command::decode(&bytes).unwrap_err();
    assert_eq!(error.offset, 1);
    assert!(
        error.detail.contains("70000") && error.detail.contains("2 bytes left"),
        "{error}"
    );
}

#[test]
fn huge_batch_count_is_refused_without_allocating() {
    let mut bytes = vec![7];
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    let error = Command::decode(&bytes).unwrap_err();
    assert!(error.detail.contains("cannot fit"), "{error}");
}

#[test]
fn unknown_tags_and_flags_are_refused() {
    let error = Command::decode(&[9]).unwrap_err();
    assert_eq!(error.detail, "unknown command tag 9");
    let error = CommandResult::decode(&[99]).unwrap_err();
    assert_eq!(error.detail, "unknown result tag 99");
    // Deleted with an `existed` flag of 2.
    let error = CommandResult::decode(&[3, 2]).unwrap_err();
    assert!(error.detail.contains("only 0 and 1"), "{error}");
    assert!(Command::decode(&[]).is_err());
}

#[test]
fn is_read_only_covers_batches() {
    let get = Command::Get { key: b("a") };
    let range = Command::Range {
        start: Bytes::new(),
        end: None,
        limit: 1,
    };
    let put = Command::Put {
        key: b("a"),
        value: b("1"),
    };
    assert!(get.is_read_only());
    assert!(range.is_read_only());
    assert!(!put.is_read_only());
    assert!(Command::Batch(vec![get.clone(), range]).is_read_only());
    assert!(!Command::Batch(vec![get, put]).is_read_only());
    assert!(Command::Batch(vec![]).is_read_only());
}

#[test]
fn prefix_end_examples() {
    assert_eq!(prefix_end(b"abc"), Some(b("abd")));
    assert_eq!(prefix_end(b"a\xff\xff"), Some(b("b")));
    assert_eq!(prefix_end(b"\xff\xff"), None);
    assert_eq!(prefix_end(b""), None);
    assert_eq!(prefix_end(b"\x00"), Some(Bytes::from_static(b"\x01")));
}
