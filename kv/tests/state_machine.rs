//! The state machine against a model (a `BTreeMap`), the command semantics, refusals, the
//! applied index, and reads from other threads.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use common::{b, command, proposal, small_key};
use proptest::prelude::*;
use tern_kv::{
    Applied, Command, CommandError, CommandResult, Limits, MapReader, SessionLimits, StateMachine,
};

/// The reference semantics: what `command` answers and does to `model`.
fn model_apply(model: &mut BTreeMap<Bytes, Bytes>, command: &Command) -> CommandResult {
    match command {
        Command::Put { key, value } => {
            model.insert(key.clone(), value.clone());
            CommandResult::Written
        }
        Command::Get { key } => CommandResult::Value(model.get(key).cloned()),
        Command::Delete { key } => CommandResult::Deleted {
            existed: model.remove(key).is_some(),
        },
        Command::CompareAndSwap {
            key,
            expected,
            new_value,
        } => {
            let current = model.get(key).cloned();
            if current == *expected {
                model.insert(key.clone(), new_value.clone());
                CommandResult::Compared {
                    succeeded: true,
                    current: None,
                }
            } else {
                CommandResult::Compared {
                    succeeded: false,
                    current,
                }
            }
        }
        Command::CompareAndDelete { key, expected } => {
            let current = model.get(key).cloned();
            if current.as_ref() == Some(expected) {
                model.remove(key);
                CommandResult::Compared {
                    succeeded: true,
                    current: None,
                }
            } else {
                CommandResult::Compared {
                    succeeded: false,
                    current,
                }
            }
        }
        Command::Range { start, end, limit } => {
            let all: Vec<(Bytes, Bytes)> = match end {
                Some(end) if end <= start => Vec::new(),
                _ => {
                    let upper = end
                        .as_ref()
                        .map_or(Bound::Unbounded, |end| Bound::Excluded(end.clone()));
                    model
                        .range((Bound::Included(start.clone()), upper))
                        .map(|(key, value)| (key.clone(), value.clone()))
                        .collect()
                }
            };
            let more = all.len() > *limit as usize;
            CommandResult::Range {
                pairs: all.into_iter().take(*limit as usize).collect(),
                more,
            }
        }
        Command::Batch(commands) => CommandResult::Batch(
            commands
                .iter()
                .map(|inner| model_apply(model, inner))
                .collect(),
        ),
    }
}

fn contents(reader: &MapReader) -> BTreeMap<Bytes, Bytes> {
    let (pairs, more) = reader.range(b"", None, u32::MAX);
    assert!(!more);
    pairs.into_iter().collect()
}

fn new_machine() -> StateMachine {
    StateMachine::new(Limits::default(), SessionLimits::default())
}

/// Applies `command` as client 1's `sequence` at the next index and returns its result.
fn apply(machine: &mut StateMachine, sequence: u64, command: &Command) -> CommandResult {
    let index = machine.applied_index() + 1;
    match machine.apply(index, &proposal(1, sequence, sequence - 1, command)) {
        Applied::Client {
            client_id: 1,
            sequence: applied_sequence,
            result,
            duplicate: false,
        } if applied_sequence == sequence => result,
        other => panic!("unexpected {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn state_machine_matches_the_model(
        commands in prop::collection::vec(command(small_key(), small_key()), 1..40),
        noops in prop::collection::vec(any::<bool>(), 40),
    ) {
        let mut machine = new_machine();
        let reader = machine.reader();
        let mut model = BTreeMap::new();
        for (position, command) in commands.iter().enumerate() {
            if noops[position] {
                machine.apply_noop(machine.applied_index() + 1);
            }
            let expected = model_apply(&mut model, command);
            let result = apply(&mut machine, position as u64 + 1, command);
            prop_assert_eq!(&result, &expected, "command {:?}", command);
            if command.is_read_only() {
                prop_assert_eq!(reader.read(command), expected);
            }
        }
        prop_assert_eq!(contents(&reader), model.clone());
        prop_assert_eq!(reader.len(), model.len());
    }

    #[test]
    fn apply_never_panics_on_random_payloads(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..60), 1..20)) {
        let mut machine = new_machine();
        for (position, payload) in payloads.iter().enumerate() {
            machine.apply(position as u64 + 1, payload);
        }
        prop_assert_eq!(machine.applied_index(), payloads.len() as u64);
    }
}

#[test]
fn commands_do_what_their_docs_say() {
    let mut machine = new_machine();
    let reader = machine.reader();
    let put = Command::Put {
        key: b("a"),
        value: b("1"),
    };
    assert_eq!(apply(&mut machine, 1, &put), CommandResult::Written);
    assert_eq!(reader.get(b"a"), Some(b("1")));

    // A CAS on absence fails and reports the current value.
    let cas_absent = Command::CompareAndSwap {
        key: b("a"),
        expected: None,
        new_value: b("2"),
    };
    assert_eq!(
        apply(&mut machine, 2, &cas_absent),
        CommandResult::Compared {
            succeeded: false,
            current: Some(b("1"))
        }
    );
    let cas = Command::CompareAndSwap {
        key: b("a"),
        expected: Some(b("1")),
        new_value: b("2"),
    };
    assert_eq!(
        apply(&mut machine, 3, &cas),
        CommandResult::Compared {
            succeeded: true,
            current: None
        }
    );
    assert_eq!(reader.get(b"a"), Some(b("2")));

    let cad_wrong = Command::CompareAndDelete {
        key: b("a"),
        expected: b("1"),
    };
    assert_eq!(
        apply(&mut machine, 4, &cad_wrong),
        CommandResult::Compared {
            succeeded: false,
            current: Some(b("2"))
        }
    );
    let delete = Command::Delete { key: b("a") };
    assert_eq!(
        apply(&mut machine, 5, &delete),
        CommandResult::Deleted { existed: true }
    );
    assert_eq!(
        apply(&mut machine, 6, &delete),
        CommandResult::Deleted { existed: false }
    );
    assert!(reader.is_empty());
    assert_eq!(machine.applied_index(), 6);
}

#[test]
fn batch_applies_in_order_and_a_failed_compare_does_not_stop_it() {
    let mut machine = new_machine();
    let batch = Command::Batch(vec![
        Command::Put {
            key: b("x"),
            value: b("1"),
        },
        Command::CompareAndSwap {
            key: b("x"),
            expected: Some(b("wrong")),
            new_value: b("2"),
        },
        Command::Put {
            key: b("y"),
            value: b("3"),
        },
        Command::Get { key: b("x") },
    ]);
    assert_eq!(
        apply(&mut machine, 1, &batch),
        CommandResult::Batch(vec![
            CommandResult::Written,
            CommandResult::Compared {
                succeeded: false,
                current: Some(b("1"))
            },
            CommandResult::Written,
            CommandResult::Value(Some(b("1"))),
        ])
    );
    assert_eq!(machine.reader().get(b"y"), Some(b("3")));
}

#[test]
fn range_reports_more_and_prefix_scans_work() {
    let mut machine = new_machine();
    for (sequence, key) in ["p/1", "p/2", "p/3", "q"].iter().enumerate() {
        apply(
            &mut machine,
            sequence as u64 + 1,
            &Command::Put {
                key: b(key),
                value: b("v"),
            },
        );
    }
    let reader = machine.reader();
    let (pairs, more) = reader.range(b"p/", tern_kv::prefix_end(b"p/").as_deref(), 2);
    assert_eq!(
        pairs.iter().map(|(key, _)| key.clone()).collect::<Vec<_>>(),
        [b("p/1"), b("p/2")]
    );
    assert!(more);
    let (pairs, more) = reader.range(b"p/", tern_kv::prefix_end(b"p/").as_deref(), 3);
    assert_eq!(pairs.len(), 3);
    assert!(!more, "q is outside the prefix");
    let (pairs, more) = reader.range(b"q", Some(b"a"), 10);
    assert!(pairs.is_empty() && !more, "an inverted range is empty");
}

#[test]
fn undecodable_proposal_changes_nothing_but_the_index() {
    let mut machine = new_machine();
    match machine.apply(1, b"garbage") {
        Applied::Undecodable { reason } => assert!(reason.contains("proposal"), "{reason}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(machine.applied_index(), 1);
    assert_eq!(machine.sessions_len(), 0);
}

#[test]
fn invalid_command_is_an_error_to_the_client() {
    let mut machine = new_machine();
    let mut payload = proposal(7, 1, 0, &Command::Get { key: b("a") });
    payload.push(0xee); // a trailing byte after the command
    match machine.apply(1, &payload) {
        Applied::Client {
            client_id: 7,
            sequence: 1,
            result: CommandResult::Error(CommandError::Invalid { reason }),
            duplicate: false,
        } => assert!(reason.contains("trailing"), "{reason}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn oversized_command_changes_nothing() {
    let limits = Limits {
        value_bytes_max: 4,
        ..Limits::default()
    };
    let mut machine = StateMachine::new(limits, SessionLimits::default());
    let batch = Command::Batch(vec![
        Command::Put {
            key: b("a"),
            value: b("ok"),
        },
        Command::Put {
            key: b("b"),
            value: b("too long"),
        },
    ]);
    match apply(&mut machine, 1, &batch) {
        CommandResult::Error(CommandError::TooLarge(message)) => {
            assert!(message.contains("value_bytes_max"), "{message}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(machine.reader().is_empty(), "the whole batch is refused");
    let empty_key = Command::Put {
        key: Bytes::new(),
        value: b("v"),
    };
    assert!(matches!(
        apply(&mut machine, 2, &empty_key),
        CommandResult::Error(CommandError::TooLarge(_))
    ));
    assert!(machine.reader().is_empty());
}

#[test]
fn read_refuses_writes() {
    let machine = new_machine();
    let result = machine.reader().read(&Command::Batch(vec![
        Command::Get { key: b("a") },
        Command::Delete { key: b("a") },
    ]));
    assert!(
        matches!(result, CommandResult::Error(CommandError::Invalid { .. })),
        "{result:?}"
    );
}

#[test]
#[should_panic(expected = "without gaps")]
fn an_index_gap_panics() {
    let mut machine = new_machine();
    machine.apply_noop(1);
    machine.apply_noop(3);
}

#[test]
fn reads_from_another_thread_while_applying() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MapReader>();

    /// Writes applied by the main thread.
    const WRITES: u64 = 2_000;
    let mut machine = new_machine();
    let reader = machine.reader();
    let observer = std::thread::spawn(move || {
        // Each key's counter only grows, and a key present once stays present.
        let mut last_seen = 0u64;
        let mut reads = 0u64;
        while last_seen < WRITES && reads < 10_000_000 {
            reads += 1;
            if let Some(value) = reader.get(b"counter") {
                let seen: u64 = std::str::from_utf8(&value).unwrap().parse().unwrap();
                assert!(
                    seen >= last_seen,
                    "counter went back from {last_seen} to {seen}"
                );
                last_seen = seen;
            }
        }
        last_seen
    });
    for sequence in 1..=WRITES {
        apply(
            &mut machine,
            sequence,
            &Command::Put {
                key: b("counter"),
                value: Bytes::from(sequence.to_string()),
            },
        );
    }
    let last_seen = observer.join().unwrap();
    assert_eq!(last_seen, WRITES, "the reader sees the final write");
}
