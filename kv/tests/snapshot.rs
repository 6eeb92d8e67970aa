//! Snapshots: restore gives back the same map, sessions and applied index; any damage is
//! refused with an error, never a panic.

mod common;

use bytes::Bytes;
use common::{b, command, proposal, small_key};
use proptest::prelude::*;
use tern_kv::{
    Applied, Command, Limits, SessionLimits, SnapshotError, StateMachine, SNAPSHOT_HEADER_BYTES,
};

fn new_machine() -> StateMachine {
    StateMachine::new(Limits::default(), SessionLimits::default())
}

fn all_pairs(machine: &StateMachine) -> Vec<(Bytes, Bytes)> {
    machine.reader().range(b"", None, u32::MAX).0
}

/// A machine with a few keys, two sessions and a no-op.
fn populated() -> (StateMachine, Vec<Vec<u8>>) {
    let mut machine = new_machine();
    let payloads = vec![
        proposal(
            1,
            1,
            0,
            &Command::Put {
                key: b("a"),
                value: b("1"),
            },
        ),
        proposal(
            2,
            1,
            0,
            &Command::Put {
                key: b("b"),
                value: b("2"),
            },
        ),
        proposal(
            1,
            2,
            1,
            &Command::CompareAndSwap {
                key: b("a"),
                expected: Some(b("1")),
                new_value: b("3"),
            },
        ),
    ];
    for payload in &payloads {
        let index = machine.applied_index() + 1;
        machine.apply(index, payload);
    }
    machine.apply_noop(4);
    (machine, payloads)
}

#[test]
fn restore_gives_back_map_sessions_and_index() {
    let (machine, payloads) = populated();
    let bytes = machine.snapshot();
    let mut restored =
        StateMachine::restore(&bytes, Limits::default(), SessionLimits::default()).unwrap();
    assert_eq!(restored.applied_index(), 4);
    assert_eq!(all_pairs(&restored), all_pairs(&machine));
    assert_eq!(restored.sessions_len(), 2);
    assert_eq!(
        restored.snapshot(),
        bytes,
        "the re-encoded state is identical"
    );

    // A retry of client 1's CAS after the restore is answered from the restored session.
    match restored.apply(5, &payloads[2]) {
        Applied::Client {
            duplicate: true,
            result,
            ..
        } => assert_eq!(
            result,
            tern_kv::CommandResult::Compared {
                succeeded: true,
                current: None
            }
        ),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(restored.reader().get(b"a"), Some(b("3")));
}

#[test]
fn empty_machine_round_trips() {
    let machine = new_machine();
    let restored = StateMachine::restore(
        &machine.snapshot(),
        Limits::default(),
        SessionLimits::default(),
    )
    .unwrap();
    assert_eq!(restored.applied_index(), 0);
    assert!(restored.reader().is_empty());
    assert_eq!(restored.sessions_len(), 0);
}

#[test]
fn damage_is_named() {
    let (machine, _) = populated();
    let bytes = machine.snapshot();
    let restore = |bytes: &[u8]| {
        StateMachine::restore(bytes, Limits::default(), SessionLimits::default()).err()
    };
    assert_eq!(
        restore(&bytes[..5]),
        Some(SnapshotError::TooShort {
            found: 5,
            needed: SNAPSHOT_HEADER_BYTES
        })
    );
    let mut bad_magic = bytes.clone();
    bad_magic[0] ^= 1;
    assert!(matches!(
        restore(&bad_magic),
        Some(SnapshotError::BadMagic { .. })
    ));
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x10;
    assert!(matches!(
        restore(&flipped),
        Some(SnapshotError::Checksum { .. })
    ));
    let mut truncated = bytes.clone();
    truncated.truncate(bytes.len() - 3);
    assert!(matches!(
        restore(&truncated),
        Some(SnapshotError::Checksum { .. })
    ));
}

#[test]
fn a_malformed_body_with_a_valid_checksum_is_refused() {
    // A body that claims a billion pairs, with its checksum recomputed: only the parser can
    // catch it, and it must not try to allocate for it.
    let (machine, _) = populated();
    let mut bytes = machine.snapshot();
    let count_at = SNAPSHOT_HEADER_BYTES + 8;
    bytes[count_at..count_at + 8].copy_from_slice(&1_000_000_000u64.to_le_bytes());
    let crc = crc32fast::hash(&bytes[SNAPSHOT_HEADER_BYTES..]);
    bytes[8..SNAPSHOT_HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
    match StateMachine::restore(&bytes, Limits::default(), SessionLimits::default()) {
        Err(SnapshotError::Malformed { offset, detail }) => {
            assert_eq!(offset, count_at);
            assert!(detail.contains("cannot fit"), "{detail}");
        }
        other => panic!("unexpected {:?}", other.err()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_histories_round_trip(commands in prop::collection::vec(command(small_key(), small_key()), 0..30)) {
        let mut machine = StateMachine::new(Limits::default(), SessionLimits { sessions_max: 3, results_per_session_max: 4 });
        for (position, command) in commands.iter().enumerate() {
            let client_id = position as u64 % 4;
            let sequence = position as u64 / 4 + 1;
            machine.apply(position as u64 + 1, &proposal(client_id, sequence, sequence.saturating_sub(3), command));
        }
        let bytes = machine.snapshot();
        let restored = StateMachine::restore(&bytes, Limits::default(), SessionLimits { sessions_max: 3, results_per_session_max: 4 }).unwrap();
        prop_assert_eq!(restored.applied_index(), machine.applied_index());
        prop_assert_eq!(all_pairs(&restored), all_pairs(&machine));
        prop_assert_eq!(restored.sessions_len(), machine.sessions_len());
        prop_assert_eq!(restored.snapshot(), bytes);
    }

    #[test]
    fn restore_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        prop_assert!(StateMachine::restore(&bytes, Limits::default(), SessionLimits::default()).is_err());
    }

    #[test]
    fn every_single_byte_flip_is_refused(at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let (machine, _) = populated();
        let mut bytes = machine.snapshot();
        let at = at.index(bytes.len());
        bytes[at] ^= flip;
        prop_assert!(StateMachine::restore(&bytes, Limits::default(), SessionLimits::default()).is_err());
    }

    #[test]
    fn random_bodies_with_valid_checksums_never_panic(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = tern_kv::SNAPSHOT_MAGIC.to_le_bytes().to_vec();
        bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        let _ = StateMachine::restore(&bytes, Limits::default(), SessionLimits::default());
    }
}

#[test]
fn install_replaces_the_state_in_place_for_existing_readers() {
    let (source, _) = populated();
    let bytes = source.snapshot();
    // The target holds a key the snapshot lacks ("z"), one it shares with another value ("a"),
    // and misses one ("b"); its reader was handed out before the install.
    let mut target = new_machine();
    let reader = target.reader();
    for (index, (key, value)) in [("a", "old"), ("z", "gone")].into_iter().enumerate() {
        let payload = proposal(
            9,
            index as u64 + 1,
            0,
            &Command::Put {
                key: b(key),
                value: b(value),
            },
        );
        target.apply(index as u64 + 1, &payload);
    }
    target.install(&bytes).unwrap();
    assert_eq!(target.applied_index(), 4);
    assert_eq!(all_pairs(&target), all_pairs(&source));
    assert_eq!(
        reader.get(b"a"),
        Some(b("3")),
        "the old reader sees the new state"
    );
    assert_eq!(reader.get(b"z"), None);
    assert_eq!(target.sessions_len(), 2);
    assert_eq!(
        target.snapshot(),
        bytes,
        "identical to the source, sessions included"
    );

    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(target.install(&flipped).is_err());
    assert_eq!(
        all_pairs(&target),
        all_pairs(&source),
        "a bad snapshot changes nothing"
    );
}

#[test]
fn a_capture_keeps_the_state_of_its_index_while_the_machine_goes_on() {
    let (mut machine, _) = populated();
    let at_capture = machine.snapshot();
    let capture = machine.capture();
    assert_eq!(capture.applied_index(), machine.applied_index());
    // Overwrite one key, delete another, add a third, from a new session.
    let later = [
        Command::Put {
            key: b("a"),
            value: b("changed"),
        },
        Command::Delete { key: b("b") },
        Command::Put {
            key: b("c"),
            value: b("new"),
        },
    ];
    for (sequence, later_command) in later.iter().enumerate() {
        let index = machine.applied_index() + 1;
        machine.apply(index, &proposal(9, sequence as u64 + 1, 0, later_command));
    }
    assert_ne!(
        machine.snapshot(),
        at_capture,
        "the later applies changed nothing"
    );
    let encoded = capture.encode();
    assert_eq!(encoded, at_capture);
    let restored = StateMachine::restore(&encoded, Limits::default(), SessionLimits::default())
        .expect("restore the capture");
    assert_eq!(
        all_pairs(&restored),
        vec![(b("a"), b("3")), (b("b"), b("2"))]
    );
}
