//! Injected I/O failures: a failing write or fsync must reach every caller whose request it
//! covered as an error, must never be reported durable, and must poison the log so that no later
//! request is reported durable either (after a failed fsync the page cache state is unknown).
//! Reopening recovers at least every acknowledged entry.

mod common;

use std::sync::{atomic::Ordering, Arc};

use common::*;
use tern_wal::{Entry, FileKind, FileOp, HardState, Wal, WalError, WalOptions};

fn options_with(faults: &Arc<Faults>) -> WalOptions {
    WalOptions {
        fault_hook: Some(faults.hook()),
        ..small_options()
    }
}

/// Runs: 30 acknowledged entries, then arms the fault, then 10 concurrent appends that must all
/// fail, then checks poisoning and what a reopen recovers.
fn failing_appends_are_never_durable(
    arm: impl Fn(&Faults) + Send + 'static,
    operation: &'static str,
) {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    let faults = Faults::new();
    let options = options_with(&faults);
    let attempted = run(move || async move {
        let (wal, _) = Wal::open(&path, options).await.expect("open");
        for index in 1..=30 {
            wal.append(&entries(index, 1, 1, 100))
                .await
                .expect("append before the fault");
        }
        arm(&faults);
        let pending: Vec<_> = (31..=40)
            .map(|index| wal.append(&entries(index, 1, 1, 100)))
            .collect();
        for durable in pending {
            match durable.await {
                Ok(index) => {
                    panic!("entry {index} reported durable although its {operation} failed")
                }
                Err(WalError::Io {
                    operation: failed, ..
                }) => assert_eq!(failed, operation),
                Err(WalError::Poisoned { .. }) => {}
                Err(other) => panic!("unexpected error {other}"),
            }
        }
        let later = wal.append(&entries(41, 1, 1, 100)).await;
        assert!(
            matches!(later, Err(WalError::Poisoned { .. })),
            "append after the failure: {later:?}"
        );
        let hard_state = wal
            .save_hard_state(HardState {
                term: 2,
                voted_for: None,
                commit: 0,
            })
            .await;
        assert!(
            matches!(hard_state, Err(WalError::Poisoned { .. })),
            "hard state after the failure: {hard_state:?}"
        );
        let message = wal
            .close()
            .await
            .expect_err("close reports the poisoning")
            .to_string();
        assert!(
            message.contains("injected fault") && message.contains(".seg"),
            "message names the cause and file: {message}"
        );
        entries(1, 40, 1, 100)
    });
    let path = directory.path().to_path_buf();
    run(move || async move {
        let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
        assert!(
            recovered.last_index >= 30,
            "acknowledged entries lost: last index {}",
            recovered.last_index
        );
        let log = wal.read_range(1..recovered.last_index + 1).expect("read");
        assert_eq!(
            log,
            attempted[..log.len()],
            "the recovered log must be a prefix of what was appended"
        );
        wal.close().await.expect("close");
    });
}

/// A failing segment write fails the appends it covered and poisons the log.
#[test]
fn failed_write_is_reported_and_poisons() {
    failing_appends_are_never_durable(
        |faults| {
            faults.fail_writes_after.store(
                faults.segment_writes.load(Ordering::SeqCst),
                Ordering::SeqCst,
            )
        },
        "write",
    );
}

/// A failing fdatasync fails the appends it covered and poisons the log, although the write
/// itself succeeded (the data may well be in the page cache: it must still not count).
#[test]
fn failed_sync_is_reported_and_poisons() {
    failing_appends_are_never_durable(
        |faults| {
            faults.fail_syncs_after.store(
                faults.segment_syncs.load(Ordering::SeqCst),
                Ordering::SeqCst,
            )
        },
        "fdatasync",
    );
}

/// A failing hard-state sync fails the save, and appends after it.
#[test]
fn failed_hard_state_sync_is_reported() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    let faults = Faults::new();
    let options = options_with(&faults);
    run(move || async move {
        let (wal, _) = Wal::open(&path, options).await.expect("open");
        wal.save_hard_state(HardState {
            term: 1,
            voted_for: Some(1),
            commit: 0,
        })
        .await
        .expect("save");
        faults.fail_hard_state_syncs.store(1, Ordering::SeqCst);
        let failed = wal
            .save_hard_state(HardState {
                term: 2,
                voted_for: Some(3),
                commit: 0,
            })
            .await;
        assert!(
            matches!(
                failed,
                Err(WalError::Io {
                    operation: "fdatasync",
                    ..
                })
            ),
            "{failed:?}"
        );
        let later = wal.append(&entries(1, 1, 2, 10)).await;
        assert!(matches!(later, Err(WalError::Poisoned { .. })), "{later:?}");
        assert!(wal.close().await.is_err());
        let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
        // The failed save may or may not have reached the disk; the old value or the new one.
        let term = recovered.hard_state.expect("a hard state").term;
        assert!(term == 1 || term == 2, "hard state term {term}");
        wal.close().await.expect("close");
    });
}

/// A failure while preallocating the next segment fails the append that needs that segment.
#[test]
fn failed_preallocation_fails_the_append_that_needs_it() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    let hook: tern_wal::FaultHook = Arc::new(|operation: &FileOp<'_>| match operation {
        FileOp::Write {
            kind: FileKind::Preallocation,
            ..
        } => Err(std::io::Error::other("injected ENOSPC")),
        _ => Ok(()),
    });
    run(move || async move {
        let options = WalOptions {
            fault_hook: Some(hook),
            ..small_options()
        };
        let (wal, _) = Wal::open(&path, options).await.expect("open");
        let failed = wal
            .append(&[Entry {
                index: 1,
                term: 1,
                payload: vec![1; 10],
            }])
            .await;
        match failed {
            Err(error @ WalError::Io { .. }) => {
                assert!(error.to_string().contains("injected ENOSPC"), "{error}")
            }
            other => panic!("expected the preallocation failure, got {other:?}"),
        }
        assert!(wal.close().await.is_err());
    });
}

/// On a poisoned log, `restart_at` returns the poisoning error and changes nothing, and a
/// restart whose own writes fail is never reported durable; a reopen finds the old log.
#[test]
fn restart_at_on_a_poisoned_log_fails() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    let faults = Faults::new();
    let options = options_with(&faults);
    run(move || async move {
        let (wal, _) = Wal::open(&path, options).await.expect("open");
        wal.append(&entries(1, 10, 1, 100)).await.expect("append");
        faults.fail_syncs_after.store(
            faults.segment_syncs.load(Ordering::SeqCst),
            Ordering::SeqCst,
        );
        // The restart's new segment cannot be synced: its own failure, not durable.
        let failed = wal.restart_at(50).await;
        assert!(
            matches!(
                failed,
                Err(WalError::Io {
                    operation: "fdatasync",
                    ..
                })
            ),
            "{failed:?}"
        );
        let (first, last) = (wal.first_index(), wal.last_index());
        let later = wal.restart_at(80).await;
        assert!(matches!(later, Err(WalError::Poisoned { .. })), "{later:?}");
        assert_eq!(
            (wal.first_index(), wal.last_index()),
            (first, last),
            "a refused restart changes nothing"
        );
        assert!(wal.close().await.is_err());
        let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
        assert_eq!((recovered.first_index, recovered.last_index), (1, 10));
        assert_eq!(wal.read_range(1..11).expect("read"), entries(1, 10, 1, 100));
        wal.close().await.expect("close");
    });
}
