//! Shared proptest strategies and helpers for the tern-kv tests.
#![allow(dead_code)]

use bytes::Bytes;
use proptest::prelude::*;
use tern_kv::{encode_proposal, Command, CommandError, CommandResult, Proposal};

/// Keys from a small alphabet so commands collide on the same keys often.
pub fn small_key() -> impl Strategy<Value = Bytes> + Clone {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c']), 1..3).prop_map(Bytes::from)
}

/// Arbitrary byte strings (may be empty).
pub fn any_bytes() -> impl Strategy<Value = Bytes> + Clone {
    prop::collection::vec(any::<u8>(), 0..12).prop_map(Bytes::from)
}

/// A non-batch command over `key` keys and `value` values.
pub fn single_command(
    key: impl Strategy<Value = Bytes> + Clone + 'static,
    value: impl Strategy<Value = Bytes> + Clone + 'static,
) -> BoxedStrategy<Command> {
    prop_oneof![
        (key.clone(), value.clone()).prop_map(|(key, value)| Command::Put { key, value }),
        key.clone().prop_map(|key| Command::Get { key }),
        key.clone().prop_map(|key| Command::Delete { key }),
        (key.clone(), prop::option::of(value.clone()), value.clone()).prop_map(
            |(key, expected, new_value)| Command::CompareAndSwap {
                key,
                expected,
                new_value
            }
        ),
        (key.clone(), value.clone())
            .prop_map(|(key, expected)| Command::CompareAndDelete { key, expected }),
        (key.clone(), prop::option::of(key), 1u32..5)
            .prop_map(|(start, end, limit)| Command::Range { start, end, limit }),
    ]
    .boxed()
}

/// Any command, batches (of non-batches) included.
pub fn command(
    key: impl Strategy<Value = Bytes> + Clone + 'static,
    value: impl Strategy<Value = Bytes> + Clone + 'static,
) -> BoxedStrategy<Command> {
    let single = single_command(key, value);
    prop_oneof![
        3 => single.clone(),
        1 => prop::collection::vec(single, 0..5).prop_map(Command::Batch),
    ]
    .boxed()
}

/// Any command with arbitrary byte keys and values.
pub fn any_command() -> BoxedStrategy<Command> {
    command(any_bytes(), any_bytes())
}

/// A non-batch result.
fn single_result() -> BoxedStrategy<CommandResult> {
    prop_oneof![
        Just(CommandResult::Written),
        prop::option::of(any_bytes()).prop_map(CommandResult::Value),
        any::<bool>().prop_map(|existed| CommandResult::Deleted { existed }),
        (any::<bool>(), prop::option::of(any_bytes()))
            .prop_map(|(succeeded, current)| CommandResult::Compared { succeeded, current }),
        (
            prop::collection::vec((any_bytes(), any_bytes()), 0..4),
            any::<bool>()
        )
            .prop_map(|(pairs, more)| CommandResult::Range { pairs, more }),
        ".{0,20}".prop_map(|reason| CommandResult::Error(CommandError::Invalid { reason })),
        ".{0,20}".prop_map(|message| CommandResult::Error(CommandError::TooLarge(message))),
        (any::<u64>(), any::<u64>()).prop_map(|(client_id, sequence)| CommandResult::Error(
            CommandError::ResultForgotten {
                client_id,
                sequence
            }
        )),
    ]
    .boxed()
}

/// Any result, batches (of non-batches) included.
pub fn any_result() -> BoxedStrategy<CommandResult> {
    prop_oneof![
        3 => single_result(),
        1 => prop::collection::vec(single_result(), 0..5).prop_map(CommandResult::Batch),
    ]
    .boxed()
}

/// The encoded proposal of `command` from `client_id`.
pub fn proposal(
    client_id: u64,
    sequence: u64,
    answered_through: u64,
    command: &Command,
) -> Vec<u8> {
    let command = command.to_bytes();
    let mut out = Vec::new();
    encode_proposal(
        &Proposal {
            client_id,
            sequence,
            answered_through,
            command: &command,
        },
        &mut out,
    );
    out
}

/// `Bytes` from a string.
pub fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}
