//! `Limits::check`: every bound is enforced and the error names the `Limits` field.

mod common;

use bytes::Bytes;
use common::b;
use tern_kv::{Command, Limits};

fn small() -> Limits {
    Limits {
        key_bytes_max: 4,
        value_bytes_max: 8,
        batch_commands_max: 2,
        command_bytes_max: 64,
        range_limit_max: 10,
    }
}

fn check(command: &Command) -> Result<(), tern_kv::LimitError> {
    small().check(command, command.to_bytes().len())
}

#[test]
fn commands_within_limits_pass() {
    check(&Command::Put {
        key: b("abcd"),
        value: b("12345678"),
    })
    .unwrap();
    check(&Command::Range {
        start: Bytes::new(),
        end: None,
        limit: 10,
    })
    .unwrap();
    check(&Command::Batch(vec![
        Command::Get { key: b("a") },
        Command::Delete { key: b("b") },
    ]))
    .unwrap();
}

#[test]
fn long_key_names_key_bytes_max() {
    let error = check(&Command::Get { key: b("abcde") }).unwrap_err();
    assert_eq!(error.limit_name, "key_bytes_max");
    assert_eq!((error.found, error.limit), (5, 4));
    assert!(
        error
            .to_string()
            .contains("above the limit key_bytes_max = 4"),
        "{error}"
    );
}

#[test]
fn empty_key_is_refused_and_says_so() {
    let error = check(&Command::Delete { key: Bytes::new() }).unwrap_err();
    assert_eq!(error.limit_name, "key_bytes_max");
    assert_eq!(error.found, 0);
    assert!(error.to_string().contains("may not be empty"), "{error}");
    assert!(!error.is_above_max());
}

#[test]
fn long_values_name_value_bytes_max() {
    for command in [
        Command::Put {
            key: b("k"),
            value: b("123456789"),
        },
        Command::CompareAndSwap {
            key: b("k"),
            expected: Some(b("123456789")),
            new_value: b("1"),
        },
        Command::CompareAndSwap {
            key: b("k"),
            expected: None,
            new_value: b("123456789"),
        },
        Command::CompareAndDelete {
            key: b("k"),
            expected: b("123456789"),
        },
    ] {
        let error = check(&command).unwrap_err();
        assert_eq!(error.limit_name, "value_bytes_max", "{command:?}");
        assert_eq!(error.found, 9);
        assert!(error.to_string().contains("key \"k\""), "{error}");
    }
}

#[test]
fn batch_count_names_batch_commands_max() {
    let command = Command::Batch(vec![Command::Get { key: b("a") }; 3]);
    let error = check(&command).unwrap_err();
    assert_eq!(error.limit_name, "batch_commands_max");
    assert_eq!(error.found, 3);
}

#[test]
fn bad_command_inside_a_batch_is_located() {
    let command = Command::Batch(vec![
        Command::Get { key: b("a") },
        Command::Get { key: b("toolong") },
    ]);
    let error = check(&command).unwrap_err();
    assert!(error.what.contains("batch command 1"), "{error}");
}

#[test]
fn encoded_size_names_command_bytes_max() {
    let command = Command::Get { key: b("a") };
    let error = small().check(&command, 65).unwrap_err();
    assert_eq!(error.limit_name, "command_bytes_max");
    assert_eq!((error.found, error.limit), (65, 64));
}

#[test]
fn range_limits_are_checked() {
    let error = check(&Command::Range {
        start: b("a"),
        end: None,
        limit: 11,
    })
    .unwrap_err();
    assert_eq!(error.limit_name, "range_limit_max");

    let error = check(&Command::Range {
        start: b("a"),
        end: None,
        limit: 0,
    })
    .unwrap_err();
    assert_eq!(error.limit_name, "range_limit_max");
    assert!(
        error.to_string().contains("limit must be at least 1"),
        "{error}"
    );

    let error = check(&Command::Range {
        start: b("a"),
        end: Some(b("abcde")),
        limit: 1,
    })
    .unwrap_err();
    assert_eq!(error.limit_name, "key_bytes_max");
}

#[test]
fn nested_batch_is_refused() {
    let command = Command::Batch(vec![Command::Batch(vec![])]);
    let error = small().check(&command, 10).unwrap_err();
    assert!(error.to_string().contains("may not nest"), "{error}");
}
