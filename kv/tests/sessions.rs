//! Client sessions: exactly-once retries, the forgotten floor, the per-session window and
//! session eviction, each rule of `tern_kv::session` checked through `StateMachine::apply`.

mod common;

use bytes::Bytes;
use common::{b, proposal};
use tern_kv::{Applied, Command, CommandError, CommandResult, Limits, SessionLimits, StateMachine};

fn machine(sessions_max: usize, results_per_session_max: usize) -> StateMachine {
    StateMachine::new(
        Limits::default(),
        SessionLimits {
            sessions_max,
            results_per_session_max,
        },
    )
}

/// Applies a proposal at the next index; returns (result, duplicate).
fn apply(
    machine: &mut StateMachine,
    client_id: u64,
    sequence: u64,
    answered_through: u64,
    command: &Command,
) -> (CommandResult, bool) {
    let index = machine.applied_index() + 1;
    match machine.apply(
        index,
        &proposal(client_id, sequence, answered_through, command),
    ) {
        Applied::Client {
            client_id: answered_client,
            sequence: answered_sequence,
            result,
            duplicate,
        } => {
            assert_eq!((answered_client, answered_sequence), (client_id, sequence));
            (result, duplicate)
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn incr(key: &str, value: &str) -> Command {
    Command::Put {
        key: b(key),
        value: b(value),
    }
}

fn forgotten(client_id: u64, sequence: u64) -> (CommandResult, bool) {
    (
        CommandResult::Error(CommandError::ResultForgotten {
            client_id,
            sequence,
        }),
        false,
    )
}

#[test]
fn a_retried_proposal_is_applied_exactly_once() {
    let mut machine = machine(16, 16);
    // A CAS that succeeds the first time would fail if applied again: the retry must return the
    // first result, not a second evaluation.
    let cas = Command::CompareAndSwap {
        key: b("k"),
        expected: None,
        new_value: b("v"),
    };
    let payload = proposal(5, 1, 0, &cas);
    let first = machine.apply(1, &payload);
    let second = machine.apply(2, &payload);
    let expected_result = CommandResult::Compared {
        succeeded: true,
        current: None,
    };
    assert_eq!(
        first,
        Applied::Client {
            client_id: 5,
            sequence: 1,
            result: expected_result.clone(),
            duplicate: false
        }
    );
    assert_eq!(
        second,
        Applied::Client {
            client_id: 5,
            sequence: 1,
            result: expected_result,
            duplicate: true
        }
    );
    assert_eq!(machine.reader().get(b"k"), Some(b("v")));
    assert_eq!(machine.reader().len(), 1);
    assert_eq!(machine.applied_index(), 2);
}

#[test]
fn a_retried_batch_with_reads_is_deduplicated_too() {
    let mut machine = machine(16, 16);
    let batch = Command::Batch(vec![incr("a", "1"), Command::Get { key: b("a") }]);
    let (first, _) = apply(&mut machine, 1, 1, 0, &batch);
    // Sequence 2 is pipelined: the client has not received 1 yet (answered_through 0).
    apply(&mut machine, 1, 2, 0, &incr("a", "2"));
    // The retry of sequence 1 answers what it answered then, not the current value.
    let (again, duplicate) = apply(&mut machine, 1, 1, 0, &batch);
    assert!(duplicate);
    assert_eq!(again, first);
    assert_eq!(machine.reader().get(b"a"), Some(b("2")));
}

#[test]
fn answered_through_forgets_results_and_later_retries_are_refused() {
    let mut machine = machine(16, 16);
    apply(&mut machine, 1, 1, 0, &incr("a", "1"));
    apply(&mut machine, 1, 2, 0, &incr("a", "2"));
    // The client says it received 1 and 2.
    apply(&mut machine, 1, 3, 2, &incr("a", "3"));
    assert_eq!(
        apply(&mut machine, 1, 2, 2, &incr("a", "2")),
        forgotten(1, 2)
    );
    assert_eq!(
        machine.reader().get(b"a"),
        Some(b("3")),
        "the stale retry was not applied"
    );
    // 3 is still held.
    let (_, duplicate) = apply(&mut machine, 1, 3, 2, &incr("a", "3"));
    assert!(duplicate);
}

#[test]
fn the_window_drops_the_lowest_results() {
    let mut machine = machine(16, 2);
    for sequence in 1..=3 {
        apply(
            &mut machine,
            1,
            sequence,
            0,
            &incr("a", &sequence.to_string()),
        );
    }
    // Only 2 and 3 are held; 1 fell out of the window and is forgotten, not re-applied.
    assert_eq!(
        apply(&mut machine, 1, 1, 0, &incr("a", "1")),
        forgotten(1, 1)
    );
    assert!(apply(&mut machine, 1, 2, 0, &incr("a", "2")).1);
    assert!(apply(&mut machine, 1, 3, 0, &incr("a", "3")).1);
    assert_eq!(machine.reader().get(b"a"), Some(b("3")));
}

#[test]
fn the_least_recently_written_session_is_evicted() {
    let mut machine = machine(2, 16);
    apply(&mut machine, 1, 1, 0, &incr("a", "1"));
    apply(&mut machine, 2, 1, 0, &incr("b", "1"));
    // Client 1 writes again, so client 2 has the oldest last write.
    apply(&mut machine, 1, 2, 1, &incr("a", "2"));
    apply(&mut machine, 3, 1, 0, &incr("c", "1"));
    assert_eq!(machine.sessions_len(), 2);
    // Client 1 is still known.
    assert!(apply(&mut machine, 1, 2, 1, &incr("a", "2")).1);
    // Client 2's session expired: a proposal with answered_through > 0 is refused.
    assert_eq!(
        apply(&mut machine, 2, 2, 1, &incr("b", "2")),
        forgotten(2, 2)
    );
    assert_eq!(machine.reader().get(b"b"), Some(b("1")));
}

#[test]
fn unknown_client_with_answered_through_is_refused() {
    let mut machine = machine(16, 16);
    assert_eq!(
        apply(&mut machine, 9, 5, 4, &incr("a", "1")),
        forgotten(9, 5)
    );
    assert!(machine.reader().is_empty());
    assert_eq!(
        machine.sessions_len(),
        0,
        "no session is created for a refused proposal"
    );
}

#[test]
fn sequence_zero_is_invalid() {
    let mut machine = machine(16, 16);
    let (result, duplicate) = apply(&mut machine, 1, 0, 0, &incr("a", "1"));
    assert!(!duplicate);
    assert!(
        matches!(&result, CommandResult::Error(CommandError::Invalid { reason }) if reason.contains("sequence 0")),
        "{result:?}"
    );
    assert!(machine.reader().is_empty());
}

#[test]
fn refused_commands_are_remembered_like_any_result() {
    let mut machine = StateMachine::new(
        Limits {
            value_bytes_max: 1,
            ..Limits::default()
        },
        SessionLimits::default(),
    );
    let (first, duplicate) = apply(&mut machine, 1, 1, 0, &incr("a", "toolong"));
    assert!(!duplicate);
    assert!(matches!(
        first,
        CommandResult::Error(CommandError::TooLarge(_))
    ));
    assert_eq!(
        apply(&mut machine, 1, 1, 0, &incr("a", "toolong")),
        (first, true)
    );
}

#[test]
fn sessions_are_deterministic_across_replicas() {
    // Two replicas fed the same log hold byte-identical snapshots (sessions included).
    let mut one = machine(3, 2);
    let mut two = machine(3, 2);
    let mut payloads = Vec::new();
    for step in 0u64..200 {
        let client_id = step * 7 % 5;
        let sequence = step / 5 + 1 + step % 3;
        let answered_through = (step / 5).saturating_sub(1);
        let key = Bytes::from(format!("k{}", step % 4));
        payloads.push(proposal(
            client_id,
            sequence,
            answered_through,
            &Command::Put {
                key,
                value: Bytes::from(step.to_string()),
            },
        ));
    }
    for (position, payload) in payloads.iter().enumerate() {
        let index = position as u64 + 1;
        assert_eq!(one.apply(index, payload), two.apply(index, payload));
    }
    assert_eq!(one.snapshot(), two.snapshot());
}
