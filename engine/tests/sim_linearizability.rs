//! The linearizability checker accepts known-good and rejects known-bad small histories of one
//! register. Each history is written as (client, op, invoke stamp, response stamp and answer);
//! `None` as response means the client never heard back.

use tern_engine::sim::linearizability::{check, CheckError, HistoryOp, RegisterAnswer, RegisterOp};

use RegisterAnswer::{Done, Swapped, Value};
use RegisterOp::{CompareAndSwap, Delete, Get, Put};

fn op(
    client: u64,
    op: RegisterOp,
    invoke: u64,
    response: Option<(u64, RegisterAnswer)>,
) -> HistoryOp {
    HistoryOp {
        client,
        op,
        invoke_stamp: invoke,
        response,
    }
}

fn is_linearizable(history: &[HistoryOp]) -> bool {
    match check(history, None) {
        Ok(()) => true,
        Err(CheckError::NotLinearizable { .. }) => false,
        Err(error) => panic!("checker gave up on a tiny history: {error}"),
    }
}

#[test]
fn sequential_history_with_every_op_kind_is_accepted() {
    let history = [
        op(1, Get, 1, Some((2, Value(None)))),
        op(1, Put(3), 3, Some((4, Done))),
        op(
            2,
            CompareAndSwap {
                expected: 3,
                new: 4,
            },
            5,
            Some((6, Swapped(true))),
        ),
        op(
            2,
            CompareAndSwap {
                expected: 3,
                new: 5,
            },
            7,
            Some((8, Swapped(false))),
        ),
        op(1, Get, 9, Some((10, Value(Some(4))))),
        op(1, Delete, 11, Some((12, Done))),
        op(2, Get, 13, Some((14, Value(None)))),
    ];
    assert!(is_linearizable(&history));
}

#[test]
fn stale_read_after_a_completed_write_is_rejected() {
    // The put finished (stamp 2) before the get started (stamp 3), so the get must see it.
    let history = [
        op(1, Put(1), 1, Some((2, Done))),
        op(2, Get, 3, Some((4, Value(None)))),
    ];
    assert!(!is_linearizable(&history));
}

#[test]
fn concurrent_read_may_see_either_value() {
    for seen in [None, Some(1)] {
        let history = [
            op(1, Put(1), 1, Some((4, Done))),
            op(2, Get, 2, Some((3, Value(seen)))),
        ];
        assert!(
            is_linearizable(&history),
            "a read overlapping the put may see {seen:?}"
        );
    }
}

#[test]
fn reads_that_go_back_in_time_are_rejected() {
    // Two reads overlap the put, but the later read (invoked after the first answered) sees
    // the older value: no single point for the put explains both.
    let history = [
        op(1, Put(1), 1, Some((10, Done))),
        op(2, Get, 2, Some((3, Value(Some(1))))),
        op(3, Get, 4, Some((5, Value(None)))),
    ];
    assert!(!is_linearizable(&history));
}

#[test]
fn two_successful_cas_from_the_same_value_are_rejected() {
    let history = [
        op(1, Put(1), 1, Some((2, Done))),
        op(
            2,
            CompareAndSwap {
                expected: 1,
                new: 2,
            },
            3,
            Some((6, Swapped(true))),
        ),
        op(
            3,
            CompareAndSwap {
                expected: 1,
                new: 3,
            },
            4,
            Some((7, Swapped(true))),
        ),
    ];
    assert!(!is_linearizable(&history));
}

#[test]
fn unanswered_write_may_have_taken_effect() {
    // Client 1's put timed out without an answer; a later read seeing it is fine ...
    let took_effect = [
        op(1, Put(7), 1, None),
        op(2, Get, 5, Some((6, Value(Some(7))))),
    ];
    assert!(is_linearizable(&took_effect));
    // ... and so is a read not seeing it,
    let not_yet = [
        op(1, Put(7), 1, None),
        op(2, Get, 5, Some((6, Value(None)))),
    ];
    assert!(is_linearizable(&not_yet));
    // but it cannot take effect before it was invoked,
    let too_early = [
        op(2, Get, 1, Some((2, Value(Some(7))))),
        op(1, Put(7), 3, None),
    ];
    assert!(!is_linearizable(&too_early));
    // nor take effect, be undone and come back: once seen and then overwritten, it stays gone.
    let twice = [
        op(1, Put(7), 1, None),
        op(2, Get, 2, Some((3, Value(Some(7))))),
        op(2, Put(8), 4, Some((5, Done))),
        op(2, Get, 6, Some((7, Value(Some(7))))),
    ];
    assert!(!is_linearizable(&twice));
}

#[test]
fn unanswered_read_is_ignored_and_value_never_written_is_rejected() {
    let history = [
        op(1, Get, 1, None),
        op(2, Get, 2, Some((3, Value(Some(9))))),
    ];
    assert!(!is_linearizable(&history));
    let quiet = [op(1, Get, 1, None), op(2, Put(1), 2, Some((3, Done)))];
    assert!(is_linearizable(&quiet));
}

#[test]
fn many_concurrent_clients_are_checked_quickly() {
    // Five clients each run 40 put/get pairs; each get is answered with the client's own put,
    // overlapping the others: linearizable, and the memoization keeps the search small.
    let mut history = Vec::new();
    let mut stamp = 0;
    for round in 0..40u64 {
        for client in 1..=5u64 {
            let value = round * 10 + client;
            history.push(op(
                client,
                Put(value),
                stamp + client,
                Some((stamp + 10 + client, Done)),
            ));
        }
        stamp += 20;
        for client in 1..=1u64 {
            let value = round * 10 + 5;
            history.push(op(
                client,
                Get,
                stamp,
                Some((stamp + 1, Value(Some(value)))),
            ));
        }
        stamp += 2;
    }
    assert!(is_linearizable(&history));
}
