//! The WAL's API contract, one behaviour per test: appends are readable and durable, group
//! commit shares syncs, segments rotate, truncation, compaction and restart survive reopen, the
//! hard state is durable, and bad requests are refused without changing anything.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use tern_wal::{Entry, HardState, Wal, WalError};

/// Entries appended, acknowledged and reopened read back byte for byte, across segments.
#[test]
fn appended_entries_survive_reopen_across_segments() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    run(move || async move {
        let (wal, recovered) = Wal::open(&path, small_options()).await.expect("open");
        assert_eq!(
            (
                recovered.first_index,
                recovered.last_index,
                recovered.hard_state
            ),
            (1, 0, None)
        );
        for batch in 0..20u64 {
            let durable = wal
                .append(&entries(
                    batch * 5 + 1,
                    5,
                    1 + batch / 7,
                    100 + batch as usize * 13,
                ))
                .await;
            assert_eq!(durable.expect("append"), batch * 5 + 5);
        }
        assert_eq!(wal.last_index(), 100);
        wal.close().await.expect("close");
        assert!(
            segment_files(&path).len() > 3,
            "small segments should have rotated"
        );

        let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
        assert_eq!(
            (
                recovered.first_index,
                recovered.last_index,
                recovered.torn_tail
            ),
            (1, 100, None)
        );
        for batch in 0..20u64 {
            let expected = entries(batch * 5 + 1, 5, 1 + batch / 7, 100 + batch as usize * 13);
            assert_eq!(
                wal.read_range(batch * 5 + 1..batch * 5 + 6).expect("read"),
                expected
            );
            assert_eq!(wal.term_at(batch * 5 + 1).expect("term"), 1 + batch / 7);
        }
        // Appending after a reopen continues in the recovered last segment.
        wal.append(&entries(101, 3, 3, 10))
            .await
            .expect("append after reopen");
        wal.close().await.expect("close");
        let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
        assert_eq!(recovered.last_index, 103);
        assert_eq!(
            wal.read_range(101..104).expect("read"),
            entries(101, 3, 3, 10)
        );
        wal.close().await.expect("close");
    });
}

/// Group commit: 200 appends issued together are acknowledged with far fewer than 200 syncs.
#[test]
fn concurrent_appends_share_syncs() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    let faults = Faults::new();
    let hook = faults.hook();
    run(move || async move {
        let mut options = small_options();
        options.segment_bytes = 1 << 20;
        options.fault_hook = Some(hook);
        let (wal, _) = Wal::open(&path, options).await.expect("open");
        let pending: Vec<_> = (1..=200u64)
            .map(|index| wal.append(&entries(index, 1, 1, 64)))
            .collect();
        for (position, durable) in pending.into_iter().enumerate() {
            assert_eq!(durable.await.expect("append"), position as u64 + 1);
        }
        wal.close().await.expect("close");
    });
    let syncs = faults.segment_syncs.load(Ordering::SeqCst);
    assert!(
        syncs <= 2,
        "200 appends queued together took {syncs} segment syncs"
    );
}

/// A suffix truncation removes entries at once and durably; appends after it win on reopen,
/// also when the truncation reaches back into sealed segments.
#[test]
fn truncate_suffix_is_durable_and_appends_follow() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    run(move || async move {
        let (wal, _) = Wal::open(&path, small_options()).await.expect("open");
        wal.append(&entries(1, 60, 1, 200)).await.expect("append");
        let segments_before = segment_files(&path).len();
        wal.truncate_suffix(10).await.expect("truncate");
        assert_eq!(wal.last_index(), 9);
        assert!(
            segment_files(&path).len() < segments_before,
            "later segments should be deleted"
        );
        assert!(matches!(wal.term_at(10), Err(WalError::OutOfRange { .. })));
        wal.append(&entries(10, 5, 2, 50))
            .await
            .expect("append after truncate");
        // Truncating and appending without waiting in between keeps call order.
        let truncation = wal.truncate_suffix(13);
        let append = wal.append(&entries(13, 2, 3, 70));
        truncation.await.expect("truncate");
        append.await.expect("append");
        wal.close().await.expect("close");

        let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
        assert_eq!(recovered.last_index, 14);
        assert_eq!(wal.read_range(1..10).expect("read"), entries(1, 9, 1, 200));
        assert_eq!(wal.read_range(10..13).expect("read"), entries(10, 3, 2, 50));
        assert_eq!(wal.read_range(13..15).expect("read"), entries(13, 2, 3, 70));
        // Truncating everything leaves an empty log that continues at the same index.
        wal.truncate_suffix(1).await.expect("truncate all");
        assert_eq!((wal.first_index(), wal.last_index()), (1, 0));
        wal.close().await.expect("close");
        let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
        assert_eq!((recovered.first_index, recovered.last_index), (1, 0));
        wal.append(&entries(1, 1, 4, 1)).await.expect("append");
        wal.close().await.expect("close");
    });
}

/// Compaction deletes whole segments below the index, never the last one, and survives reopen.
#[test]
fn compact_through_deletes_whole_segments() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    run(move || async move {
        let (wal, _) = Wal::open(&path, small_options()).await.expect("open");
        wal.append(&entries(1, 100, 1, 300)).await.expect("append");
        let before = segment_files(&path).len();
        wal.compact_through(50).await.expect("compact");
        let first = wal.first_index();
        assert!(
            first > 1 && first <= 51,
            "first index {first} after compacting through 50"
        );
        assert!(segment_files(&path).len() < before);
        assert!(matches!(
            wal.read_range(1..2),
            Err(WalError::OutOfRange { .. })
        ));
        wal.compact_through(1000)
            .await
            .expect("compact past the end");
        assert!(wal.first_index() <= 100, "the last segment must stay");
        assert_eq!(wal.last_index(), 100);
        let first = wal.first_index();
        wal.close().await.expect("close");
        let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
        assert_eq!((recovered.first_index, recovered.last_index), (first, 100));
        assert_eq!(
            wal.read_range(first..101).expect("read"),
            entries(first, 101 - first, 1, 300)
        );
        wal.close().await.expect("close");
    });
}

/// `restart_at(n)` below the first index (after a compaction), within the log, at its end and
/// beyond it: every old entry is gone, the log is empty at `n`, only an append at `n` is
/// accepted, the hard state is kept, one segment file remains, and a reopen returns exactly the
/// new log (first index `n`, the entries appended after the restart).
#[test]
fn restart_at_discards_the_log_wherever_the_new_start_lies() {
    let hard_state = HardState {
        term: 7,
        voted_for: Some(3),
        commit: 40,
    };
    // (where the restart puts the next index, described) for a log of 1..=80 compacted so that
    // its first index is above 20.
    for (next_index, place) in [
        (5, "below"),
        (40, "within"),
        (81, "at the end"),
        (500, "above"),
    ] {
        let directory = tempdir();
        let path = directory.path().to_path_buf();
        run(move || async move {
            let (wal, _) = Wal::open(&path, small_options()).await.expect("open");
            wal.append(&entries(1, 80, 1, 300)).await.expect("append");
            wal.save_hard_state(hard_state).await.expect("save");
            wal.compact_through(30).await.expect("compact");
            assert!(
                wal.first_index() > 20,
                "compaction left first index {}",
                wal.first_index()
            );
            assert!(segment_files(&path).len() >= 3);

            let durable = wal.restart_at(next_index);
            assert_eq!(
                (wal.first_index(), wal.last_index()),
                (next_index, next_index - 1),
                "{place}: effective in memory at once"
            );
            assert_eq!(durable.await.expect("restart"), next_index - 1, "{place}");
            assert_eq!(
                segment_files(&path).len(),
                1,
                "{place}: old segments removed"
            );
            assert_eq!(wal.hard_state(), hard_state, "{place}");
            for old in [next_index - 1, 30, 80] {
                assert!(
                    matches!(wal.term_at(old), Err(WalError::OutOfRange { .. })),
                    "{place}: entry {old} must be gone"
                );
            }
            for wrong in [next_index + 1, 81, 1] {
                if wrong == next_index {
                    continue;
                }
                let refused = wal.append(&entries(wrong, 1, 2, 10)).await;
                assert!(
                    matches!(refused, Err(WalError::Invalid { .. })),
                    "{place}: append at {wrong} after restart_at({next_index}): {refused:?}"
                );
            }
            // Any term is fine after a restart: the log has no previous entry to compare with.
            assert_eq!(
                wal.append(&entries(next_index, 30, 1, 250))
                    .await
                    .expect("append at the new start"),
                next_index + 29
            );
            wal.close().await.expect("close");

            let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
            assert_eq!(
                (
                    recovered.first_index,
                    recovered.last_index,
                    recovered.torn_tail
                ),
                (next_index, next_index + 29, None),
                "{place}"
            );
            assert_eq!(recovered.hard_state, Some(hard_state), "{place}");
            assert_eq!(
                wal.read_range(next_index..next_index + 30).expect("read"),
                entries(next_index, 30, 1, 250),
                "{place}"
            );
            wal.close().await.expect("close");
        });
    }
}

/// A restart with nothing appended after it reopens as an empty log at the new index, and
/// restarting twice keeps only the second; `restart_at(0)` is refused without effect.
#[test]
fn restarted_empty_log_reopens_at_its_new_first_index() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    run(move || async move {
        let (wal, _) = Wal::open(&path, small_options()).await.expect("open");
        let refused = wal.restart_at(0).await;
        assert!(
            matches!(refused, Err(WalError::Invalid { .. })),
            "{refused:?}"
        );
        assert_eq!((wal.first_index(), wal.last_index()), (1, 0));
        wal.restart_at(1000).await.expect("restart an empty log");
        wal.close().await.expect("close");
        let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
        assert_eq!((recovered.first_index, recovered.last_index), (1000, 999));
        assert_eq!((wal.first_index(), wal.last_index()), (1000, 999));
        // Two restarts without waiting: only the second counts.
        let first = wal.restart_at(2000);
        let second = wal.restart_at(30);
        first.await.expect("first restart");
        second.await.expect("second restart");
        assert_eq!(segment_files(&path).len(), 1);
        wal.close().await.expect("close");
        let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
        assert_eq!((recovered.first_index, recovered.last_index), (30, 29));
        wal.append(&entries(30, 2, 1, 10)).await.expect("append");
        wal.close().await.expect("close");
    });
}

/// Appends, a restart and appends after it, issued without waiting in between, keep call
/// order: the appends before the restart are discarded, those after it start the new log, also
/// when they rotate into further segments and a compaction follows at once.
#[test]
fn restart_at_is_ordered_with_queued_appends() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    run(move || async move {
        let (wal, _) = Wal::open(&path, small_options()).await.expect("open");
        wal.append(&entries(1, 20, 1, 300)).await.expect("append");
        let before = wal.append(&entries(21, 20, 1, 300));
        let restart = wal.restart_at(300);
        let after = wal.append(&entries(300, 40, 2, 300));
        let compaction = wal.compact_through(310);
        let restart_twice = wal.restart_at(500);
        let last = wal.append(&entries(500, 3, 3, 20));
        before.await.expect("append before");
        assert_eq!(restart.await.expect("restart"), 299);
        assert_eq!(after.await.expect("append after"), 339);
        compaction.await.expect("compact");
        assert_eq!(restart_twice.await.expect("restart twice"), 499);
        assert_eq!(last.await.expect("last append"), 502);
        wal.close().await.expect("close");
        let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
        assert_eq!((recovered.first_index, recovered.last_index), (500, 502));
        assert_eq!(
            wal.read_range(500..503).expect("read"),
            entries(500, 3, 3, 20)
        );
        // Once more without the second restart, checking the entries after the first one.
        let again = wal.restart_at(300);
        let after = wal.append(&entries(300, 40, 2, 300));
        again.await.expect("restart");
        after.await.expect("append");
        wal.close().await.expect("close");
        let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
        assert_eq!((recovered.first_index, recovered.last_index), (300, 339));
        assert_eq!(
            wal.read_range(300..340).expect("read"),
            entries(300, 40, 2, 300)
        );
        assert!(
            segment_files(&path).len() >= 2,
            "the new log spans segments"
        );
        wal.close().await.expect("close");
    });
}

/// The hard state is durable and the newest saved value wins on reopen.
#[test]
fn hard_state_survives_reopen() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    run(move || async move {
        let (wal, _) = Wal::open(&path, small_options()).await.expect("open");
        for term in 1..=5 {
            let state = HardState {
                term,
                voted_for: if term % 2 == 0 { Some(term) } else { None },
                commit: term * 10,
            };
            wal.save_hard_state(state).await.expect("save");
        }
        wal.close().await.expect("close");
        let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
        assert_eq!(
            recovered.hard_state,
            Some(HardState {
                term: 5,
                voted_for: None,
                commit: 50
            })
        );
        assert_eq!(wal.hard_state().term, 5);
        wal.close().await.expect("close");
    });
}

/// Appends that do not continue the log, lower the term, or exceed a segment are refused and
/// change nothing.
#[test]
fn invalid_appends_are_refused_without_effect() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    run(move || async move {
        let (wal, _) = Wal::open(&path, small_options()).await.expect("open");
        wal.append(&entries(1, 3, 5, 10)).await.expect("append");
        let gap = wal.append(&entries(5, 1, 5, 10)).await;
        assert!(matches!(gap, Err(WalError::Invalid { .. })), "{gap:?}");
        let lower_term = wal.append(&entries(4, 1, 4, 10)).await;
        assert!(
            matches!(lower_term, Err(WalError::Invalid { .. })),
            "{lower_term:?}"
        );
        let huge = wal
            .append(&[Entry {
                index: 4,
                term: 5,
                payload: vec![1; 8192],
            }])
            .await;
        assert!(matches!(huge, Err(WalError::Invalid { .. })), "{huge:?}");
        assert_eq!(wal.last_index(), 3);
        assert!(matches!(
            wal.truncate_suffix(9).await,
            Err(WalError::OutOfRange { .. })
        ));
        assert!(matches!(
            wal.read_range(2..5),
            Err(WalError::OutOfRange { .. })
        ));
        wal.close().await.expect("close");
    });
}

/// Options without their units' constraints are refused with a message naming the option.
#[test]
fn bad_options_are_refused() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    run(move || async move {
        let mut options = small_options();
        options.segment_bytes = 5000;
        let error = Wal::open(&path, options).await.err().expect("must fail");
        assert!(error.to_string().contains("segment_bytes"), "{error}");
    });
}

/// A directory can be open in one Wal at a time; closing releases it.
#[test]
fn a_directory_opens_once_at_a_time() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    run(move || async move {
        let (wal, _) = Wal::open(&path, small_options()).await.expect("open");
        let second = Wal::open(&path, small_options())
            .await
            .err()
            .expect("a second open must fail");
        assert!(second.to_string().contains("another Wal"), "{second}");
        wal.close().await.expect("close");
        let (wal, _) = Wal::open(&path, small_options())
            .await
            .expect("reopen after close");
        wal.close().await.expect("close");
    });
}
