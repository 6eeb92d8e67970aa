//! Crash-point tests. A workload of appends, suffix truncations and prefix compaction runs to
//! completion; then copies of its directory are damaged the ways a crash or a bad disk damages
//! files, and recovery must return exactly the acknowledged entries that survive (a prefix of the
//! log), or refuse with an error naming the damaged file and byte offset when the damage is not a
//! torn tail.
//! Interrupted compactions, truncations and restarts are cut short at their crash points (by
//! restoring removed files or by injected failures) and must be finished by recovery.

mod common;

use std::{
    fs,
    path::{Path, PathBuf},
};

use common::*;
use tern_wal::{
    format::{self, Parsed, SegmentHeader, SEGMENT_HEADER_BYTES},
    Entry, Wal, WalError,
};

/// Runs the workload in a fresh directory and returns it with every acknowledged entry.
fn workload() -> (tempfile::TempDir, Vec<Entry>) {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    let log = run(move || async move {
        let (wal, _) = Wal::open(&path, small_options()).await.expect("open");
        for batch in 0..12u64 {
            wal.append(&entries(batch * 6 + 1, 6, 1, 40 + batch as usize * 17))
                .await
                .expect("append");
        }
        wal.truncate_suffix(40).await.expect("truncate");
        wal.append(&entries(40, 20, 2, 90)).await.expect("append");
        wal.compact_through(20).await.expect("compact");
        wal.truncate_suffix(55)
            .await
            .expect("truncate within the last segment");
        for batch in 0..24u64 {
            wal.append(&entries(55 + batch * 4, 4, 3, 120 + batch as usize))
                .await
                .expect("append");
        }
        let log = wal
            .read_range(wal.first_index()..wal.last_index() + 1)
            .expect("read");
        wal.close().await.expect("close");
        log
    });
    assert!(
        segment_files(directory.path()).len() >= 3,
        "the workload must leave several segments"
    );
    (directory, log)
}

/// Where things are in a segment file: every record and commit marker ("item"), in order.
struct Layout {
    /// (start, end, is_marker) of every item.
    items: Vec<(usize, usize, bool)>,
    /// Where the last group commit's bytes start (what its marker says).
    last_group_start: usize,
    data_end: usize,
}

impl Layout {
    fn of(path: &Path) -> Layout {
        let bytes = fs::read(path).expect("read segment");
        let mut layout = Layout {
            items: Vec::new(),
            last_group_start: SEGMENT_HEADER_BYTES,
            data_end: SEGMENT_HEADER_BYTES,
        };
        loop {
            match format::parse_record(&bytes, layout.data_end) {
                Parsed::Record { next_offset, .. } => {
                    layout.items.push((layout.data_end, next_offset, false))
                }
                Parsed::Marker {
                    group_start,
                    next_offset,
                    ..
                } => {
                    layout.items.push((layout.data_end, next_offset, true));
                    layout.last_group_start = group_start;
                }
                _ => break,
            }
            layout.data_end = layout.items.last().expect("an item").1;
        }
        layout
    }

    /// How many records end at or before byte `at`.
    fn records_before(&self, at: usize) -> usize {
        self.items
            .iter()
            .filter(|(_, end, is_marker)| !is_marker && *end <= at)
            .count()
    }

    fn record_count(&self) -> usize {
        self.items
            .iter()
            .filter(|(_, _, is_marker)| !is_marker)
            .count()
    }

    /// The item holding byte `at`.
    fn item_at(&self, at: usize) -> (usize, usize, bool) {
        *self
            .items
            .iter()
            .find(|(start, end, _)| *start <= at && at < *end)
            .expect("an item holds the byte")
    }
}

/// What a recovery returned: the entries and the torn tail it cut, if any.
type Outcome = Result<(Vec<Entry>, Option<(PathBuf, u64)>), WalError>;

/// Opens a damaged copy and returns what it recovered (entries and torn tail) or the error.
fn recover(path: PathBuf) -> Outcome {
    run(move || async move {
        let (wal, recovered) = Wal::open(&path, small_options()).await?;
        let log = wal.read_range(recovered.first_index..recovered.last_index + 1)?;
        // The log must stay usable: append one entry and read it back after a reopen.
        let next = recovered.last_index + 1;
        let term = log.last().map_or(1, |entry| entry.term);
        wal.append(&entries(next, 1, term, 33)).await?;
        wal.close().await?;
        let (wal, again) = Wal::open(&path, small_options()).await?;
        assert_eq!(
            again.torn_tail, None,
            "the torn tail must have been repaired"
        );
        assert_eq!(again.last_index, next);
        assert_eq!(wal.read_range(next..next + 1)?, entries(next, 1, term, 33));
        wal.close().await?;
        Ok((log, recovered.torn_tail))
    })
}

/// A tiny deterministic generator, so a failure replays exactly.
struct Random(u64);
impl Random {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

/// Cutting the last segment at every record (and commit marker) boundary, the file shortened or
/// zeroed from there as when unsynced writes are lost in a preallocated file, recovers exactly
/// the records before the cut.
#[test]
fn cut_at_every_record_boundary_recovers_the_prefix() {
    let (directory, log) = workload();
    let last = segment_files(directory.path()).pop().expect("a segment");
    let layout = Layout::of(&last);
    let mut boundaries: Vec<usize> = layout.items.iter().map(|(start, _, _)| *start).collect();
    boundaries.push(layout.data_end);
    for boundary in boundaries {
        for shorten in [true, false] {
            let copy = copy_directory(directory.path());
            let segment = copy.path().join(last.file_name().expect("name"));
            cut(&segment, boundary, shorten);
            let (recovered, torn) =
                recover(copy.path().to_path_buf()).expect("recovery must succeed");
            let expected =
                &log[..log.len() - layout.record_count() + layout.records_before(boundary)];
            assert_eq!(
                recovered, expected,
                "cut at boundary {boundary} (shorten: {shorten})"
            );
            assert_eq!(torn, None, "a cut at a boundary is a clean end");
        }
    }
}

fn cut(segment: &Path, at: usize, shorten: bool) {
    if shorten {
        fs::OpenOptions::new()
            .write(true)
            .open(segment)
            .expect("open")
            .set_len(at as u64)
            .expect("set_len");
    } else {
        let mut bytes = fs::read(segment).expect("read");
        bytes[at..].fill(0);
        fs::write(segment, bytes).expect("write");
    }
}

/// Cutting the last segment at random offsets inside records cuts off exactly the torn one.
#[test]
fn cut_at_random_offsets_recovers_the_prefix() {
    let (directory, log) = workload();
    let last = segment_files(directory.path()).pop().expect("a segment");
    let layout = Layout::of(&last);
    let mut random = Random(7);
    for case in 0..40 {
        let at = SEGMENT_HEADER_BYTES + random.below(layout.data_end - SEGMENT_HEADER_BYTES);
        let shorten = case % 2 == 0;
        let copy = copy_directory(directory.path());
        let segment = copy.path().join(last.file_name().expect("name"));
        cut(&segment, at, shorten);
        let (recovered, torn) = recover(copy.path().to_path_buf()).expect("recovery must succeed");
        let expected = &log[..log.len() - layout.record_count() + layout.records_before(at)];
        assert_eq!(recovered, expected, "cut at {at} (shorten: {shorten})");
        let (item_start, _, _) = layout.item_at(at);
        if item_start != at {
            assert_eq!(
                torn,
                Some((segment.clone(), item_start as u64)),
                "cut at {at}"
            );
        }
    }
}

/// A flipped bit in the last group commit (its records or its marker), or in the zeros after
/// it, is a torn tail: the records before the damaged one are recovered, the tail is reported.
#[test]
fn bit_flips_at_the_tail_cut_only_the_tail() {
    let (directory, log) = workload();
    let last = segment_files(directory.path()).pop().expect("a segment");
    let layout = Layout::of(&last);
    let mut random = Random(11);
    for case in 0..30 {
        let in_group = case % 3 != 0;
        let byte = if in_group {
            layout.last_group_start + random.below(layout.data_end - layout.last_group_start)
        } else {
            layout.data_end + random.below(64)
        };
        let copy = copy_directory(directory.path());
        let segment = copy.path().join(last.file_name().expect("name"));
        flip(&segment, byte, random.below(8));
        let (recovered, torn) = recover(copy.path().to_path_buf()).expect("recovery must succeed");
        let torn_at = if in_group {
            layout.item_at(byte).0
        } else {
            layout.data_end
        };
        let expected = &log[..log.len() - layout.record_count() + layout.records_before(torn_at)];
        assert_eq!(recovered, expected, "flip at {byte}");
        assert_eq!(
            torn,
            Some((segment.clone(), torn_at as u64)),
            "flip at {byte}"
        );
    }
}

/// A power loss can persist a later block of the last write and not an earlier one: a hole of
/// zeros inside the last group commit, valid records after it. That group was never
/// acknowledged, so this is a torn tail, not damage: recovery keeps the records before the hole.
#[test]
fn hole_inside_the_last_group_is_a_torn_tail() {
    let (directory, log) = workload();
    let last = segment_files(directory.path()).pop().expect("a segment");
    let layout = Layout::of(&last);
    let group_items: Vec<_> = layout
        .items
        .iter()
        .filter(|(start, _, _)| *start >= layout.last_group_start)
        .collect();
    assert!(
        group_items.len() >= 3,
        "the last group must have several records"
    );
    let (hole_start, hole_end, _) = *group_items[1];
    let copy = copy_directory(directory.path());
    let segment = copy.path().join(last.file_name().expect("name"));
    let mut bytes = fs::read(&segment).expect("read");
    bytes[hole_start..hole_end].fill(0);
    fs::write(&segment, bytes).expect("write");
    let (recovered, torn) =
        recover(copy.path().to_path_buf()).expect("a hole in the last group is a torn tail");
    assert_eq!(
        recovered,
        &log[..log.len() - layout.record_count() + layout.records_before(hole_start)]
    );
    assert_eq!(torn, Some((segment, hole_start as u64)));
}

fn flip(path: &Path, byte: usize, bit: usize) {
    let mut bytes = fs::read(path).expect("read");
    bytes[byte] ^= 1 << bit;
    fs::write(path, bytes).expect("write");
}

fn assert_corrupt(outcome: Outcome, path: &Path, offset: u64, context: &str) {
    match outcome {
        Err(WalError::Corrupt {
            path: reported,
            offset: reported_offset,
            what,
        }) => {
            assert_eq!(
                (reported.as_path(), reported_offset),
                (path, offset),
                "{context}: {what}"
            );
        }
        other => panic!(
            "{context}: expected a Corrupt error at {} byte {offset}, got {other:?}",
            path.display()
        ),
    }
}

/// A flipped bit in a record or marker that a complete later group commit follows, or anywhere
/// in a sealed segment, is damage to acknowledged data: the open fails naming the file and the
/// damaged item's offset. So is a hole of zeros there.
#[test]
fn bit_flips_in_the_middle_stop_the_open() {
    let (directory, _) = workload();
    let segments = segment_files(directory.path());
    let mut random = Random(13);
    for (position, original) in segments.iter().enumerate() {
        let layout = Layout::of(original);
        let is_last = position + 1 == segments.len();
        // In the last segment only items before the last group commit count as the middle.
        let candidates: Vec<_> = layout
            .items
            .iter()
            .filter(|(start, _, _)| !is_last || *start < layout.last_group_start)
            .copied()
            .collect();
        assert!(!candidates.is_empty());
        for case in 0..8 {
            let (start, end, _) = candidates[random.below(candidates.len())];
            let copy = copy_directory(directory.path());
            let segment = copy.path().join(original.file_name().expect("name"));
            if case == 0 {
                let mut bytes = fs::read(&segment).expect("read");
                bytes[start..end].fill(0);
                fs::write(&segment, bytes).expect("write");
            } else {
                flip(&segment, start + random.below(end - start), random.below(8));
            }
            let context = format!("segment {position}, item at {start}, case {case}");
            assert_corrupt(
                recover(copy.path().to_path_buf()),
                &segment,
                start as u64,
                &context,
            );
        }
    }
}

/// A missing segment stops the open: a middle one shows as an index gap (named by the segment
/// after it), the first and the last are known from the hard state (named by their own file).
#[test]
fn missing_segment_stops_the_open() {
    let (directory, _) = workload();
    let segments = segment_files(directory.path());
    assert!(segments.len() >= 3);
    let copy = copy_directory(directory.path());
    fs::remove_file(copy.path().join(segments[1].file_name().expect("name"))).expect("remove");
    let after = copy.path().join(segments[2].file_name().expect("name"));
    let outcome = recover(copy.path().to_path_buf());
    assert_corrupt(outcome.clone(), &after, 0, "missing middle segment");
    assert!(outcome.expect_err("error").to_string().contains("missing"));
    for (position, which) in [(0, "oldest"), (segments.len() - 1, "newest")] {
        let copy = copy_directory(directory.path());
        let removed = copy
            .path()
            .join(segments[position].file_name().expect("name"));
        fs::remove_file(&removed).expect("remove");
        let outcome = recover(copy.path().to_path_buf());
        assert_corrupt(outcome.clone(), &removed, 0, which);
        assert!(outcome.expect_err("error").to_string().contains(which));
    }
}

/// A crash in the middle of a compaction leaves segments older than the recorded oldest one:
/// recovery finishes removing them instead of reporting anything.
#[test]
fn interrupted_compaction_is_finished_by_recovery() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    let before_compaction = tempdir();
    let saved = before_compaction.path().to_path_buf();
    let directory_path = path.clone();
    let first = run(move || async move {
        let (wal, _) = Wal::open(&path, small_options()).await.expect("open");
        for batch in 0..10u64 {
            wal.append(&entries(batch * 10 + 1, 10, 1, 200))
                .await
                .expect("append");
        }
        for file in segment_files(&path) {
            fs::copy(&file, saved.join(file.file_name().expect("name"))).expect("save");
        }
        wal.compact_through(60).await.expect("compact");
        let first = wal.first_index();
        wal.close().await.expect("close");
        first
    });
    assert!(first > 1);
    // Put back the oldest segment the compaction removed, as if the crash came before its removal.
    let oldest = segment_files(before_compaction.path()).remove(0);
    fs::copy(
        &oldest,
        directory_path.join(oldest.file_name().expect("name")),
    )
    .expect("restore");
    let (log, torn) = recover(directory_path.clone()).expect("recovery finishes the compaction");
    assert_eq!(
        (log.first().map(|entry| entry.index), torn),
        (Some(first), None)
    );
    assert!(
        !directory_path
            .join(oldest.file_name().expect("name"))
            .exists(),
        "the leftover was removed"
    );
}

/// A damaged header (any byte of it) stops the open at offset 0 of that file.
#[test]
fn bad_header_stops_the_open() {
    let (directory, _) = workload();
    let segments = segment_files(directory.path());
    for (position, original) in segments.iter().enumerate() {
        for byte in [0, 9, 13, 17, 25] {
            let copy = copy_directory(directory.path());
            let segment = copy.path().join(original.file_name().expect("name"));
            flip(&segment, byte, 3);
            assert_corrupt(
                recover(copy.path().to_path_buf()),
                &segment,
                0,
                &format!("segment {position} header byte {byte}"),
            );
        }
    }
}

/// Writes a forged segment file holding entries `first..first+count`.
fn forge_segment(directory: &Path, seq: u64, first: u64, count: u64) -> PathBuf {
    let mut bytes = SegmentHeader {
        seq,
        first_index: first,
    }
    .encode()
    .to_vec();
    for entry in entries(first, count, 1, 10) {
        format::encode_record(&mut bytes, entry.index, entry.term, &entry.payload);
    }
    bytes.resize(8192, 0);
    let path = directory.join(format!("wal-{seq:016x}.seg"));
    fs::write(&path, bytes).expect("write");
    path
}

/// Segments whose indexes overlap or leave a gap stop the open, naming the later segment.
#[test]
fn overlap_and_gap_between_segments_stop_the_open() {
    for (second_first, word) in [(4, "overlap"), (7, "missing")] {
        let directory = tempdir();
        forge_segment(directory.path(), 1, 1, 5);
        let second = forge_segment(directory.path(), 2, second_first, 3);
        let outcome = recover(directory.path().to_path_buf());
        assert_corrupt(outcome.clone(), &second, 0, word);
        assert!(outcome.expect_err("error").to_string().contains(word));
    }
    // Consecutive forged segments are fine: the forging itself is right.
    let directory = tempdir();
    forge_segment(directory.path(), 1, 1, 5);
    forge_segment(directory.path(), 2, 6, 3);
    let (log, torn) =
        recover(directory.path().to_path_buf()).expect("consecutive segments recover");
    assert_eq!((log.len(), torn), (8, None));
}

/// A record whose index is out of sequence inside a segment stops the open at that record.
#[test]
fn out_of_sequence_record_stops_the_open() {
    let directory = tempdir();
    let path = forge_segment(directory.path(), 1, 1, 3);
    let mut bytes = fs::read(&path).expect("read");
    let layout = Layout::of(&path);
    let data_end = layout.data_end;
    let mut extra = Vec::new();
    format::encode_record(&mut extra, 9, 1, b"stray");
    bytes[data_end..data_end + extra.len()].copy_from_slice(&extra);
    fs::write(&path, bytes).expect("write");
    assert_eq!(layout.record_count(), 3);
    assert_corrupt(
        recover(directory.path().to_path_buf()),
        &path,
        data_end as u64,
        "stray index",
    );
}

/// A crash in the middle of a suffix truncation (later segments removed, the zeroing of the
/// truncated bytes failed or torn) is finished by recovery: the durable truncation marker says
/// where the log ends, so the old complete groups left after a hole are not mistaken for damage.
#[test]
fn interrupted_truncation_is_finished_by_recovery() {
    for hole in [false, true] {
        let directory = tempdir();
        let path = directory.path().to_path_buf();
        let faults = Faults::new();
        let hook = faults.hook();
        let log = run(move || async move {
            let options = tern_wal::WalOptions {
                fault_hook: Some(hook),
                ..small_options()
            };
            let (wal, _) = Wal::open(&path, options).await.expect("open");
            for batch in 0..12u64 {
                wal.append(&entries(batch * 5 + 1, 5, 1, 300))
                    .await
                    .expect("append");
            }
            let log = wal.read_range(1..61).expect("read");
            // Let the truncation record itself durably, then fail its first segment write (the
            // zeroing), as a crash right after removing the later segments would leave it.
            faults.fail_writes_after.store(
                faults
                    .segment_writes
                    .load(std::sync::atomic::Ordering::SeqCst),
                std::sync::atomic::Ordering::SeqCst,
            );
            assert!(
                wal.truncate_suffix(10).await.is_err(),
                "the zeroing write was made to fail"
            );
            assert!(wal.close().await.is_err());
            log
        });
        let segments = segment_files(directory.path());
        assert_eq!(
            segments.len(),
            1,
            "the later segments were removed before the zeroing"
        );
        let layout = Layout::of(&segments[0]);
        let records: Vec<_> = layout
            .items
            .iter()
            .filter(|(_, _, is_marker)| !is_marker)
            .collect();
        let (offset, end, _) = *records[9];
        assert!(
            layout.data_end > end,
            "old groups remain after the truncation point"
        );
        if hole {
            // A torn zeroing: the first truncated record zeroed, later old groups intact.
            let mut bytes = fs::read(&segments[0]).expect("read");
            bytes[offset..end].fill(0);
            fs::write(&segments[0], bytes).expect("write");
        }
        let path = directory.path().to_path_buf();
        let segment = segments[0].clone();
        run(move || async move {
            let (wal, recovered) = Wal::open(&path, small_options())
                .await
                .expect("recovery finishes the truncation");
            assert_eq!((recovered.first_index, recovered.last_index), (1, 9));
            assert_eq!(recovered.torn_tail, Some((segment, offset as u64)));
            assert_eq!(wal.read_range(1..10).expect("read"), log[..9]);
            wal.append(&entries(10, 3, 2, 50))
                .await
                .expect("append after recovery");
            wal.close().await.expect("close");
            let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
            assert_eq!(
                (recovered.last_index, recovered.torn_tail),
                (12, None),
                "the marker was cleared"
            );
            assert_eq!(wal.read_range(10..13).expect("read"), entries(10, 3, 2, 50));
            wal.close().await.expect("close");
        });
    }
}

/// Fails the hard-state write after the next `allowed` ones, or (with `allowed` = u64::MAX)
/// the next segment write: the crash points of a restart.
struct RestartFault {
    hard_state_writes_allowed: std::sync::atomic::AtomicU64,
    fail_segment_writes: std::sync::atomic::AtomicBool,
}

impl RestartFault {
    fn hook(self: &std::sync::Arc<Self>) -> tern_wal::FaultHook {
        use std::sync::atomic::Ordering::SeqCst;
        use tern_wal::{FileKind, FileOp};
        let fault = self.clone();
        std::sync::Arc::new(move |operation: &FileOp<'_>| match operation {
            FileOp::Write {
                kind: FileKind::HardState,
                ..
            } => {
                let allowed = fault.hard_state_writes_allowed.load(SeqCst);
                if allowed == 0 {
                    return Err(std::io::Error::other("injected crash"));
                }
                if allowed != u64::MAX {
                    fault.hard_state_writes_allowed.store(allowed - 1, SeqCst);
                }
                Ok(())
            }
            FileOp::Write {
                kind: FileKind::Segment,
                ..
            } if fault.fail_segment_writes.load(SeqCst) => {
                Err(std::io::Error::other("injected crash"))
            }
            _ => Ok(()),
        })
    }
}

/// Where a restart is cut short.
#[derive(Clone, Copy, Debug)]
enum RestartCrash {
    /// The marker is durable, the new segment's header write fails: it never gets its name.
    BeforeSegmentNamed,
    /// The new segment is durable under its name; clearing the marker fails, so every old
    /// segment is still there beside it, its indexes overlapping them or leaving a gap.
    AfterSegmentNamed,
}

/// Runs 1..=70 (several segments, compacted through 40), then `restart_at(next_index)` cut
/// short at `crash`. Returns the log before the restart and the segment files it had.
fn interrupted_restart(
    path: PathBuf,
    next_index: u64,
    crash: RestartCrash,
) -> (Vec<Entry>, Vec<PathBuf>) {
    use std::sync::atomic::Ordering::SeqCst;
    let fault = std::sync::Arc::new(RestartFault {
        hard_state_writes_allowed: std::sync::atomic::AtomicU64::new(u64::MAX),
        fail_segment_writes: std::sync::atomic::AtomicBool::new(false),
    });
    let hook = fault.hook();
    run(move || async move {
        let options = tern_wal::WalOptions {
            fault_hook: Some(hook),
            ..small_options()
        };
        let (wal, _) = Wal::open(&path, options).await.expect("open");
        wal.append(&entries(1, 70, 1, 300)).await.expect("append");
        wal.compact_through(40).await.expect("compact");
        let log = wal
            .read_range(wal.first_index()..wal.last_index() + 1)
            .expect("read");
        let segments = segment_files(&path);
        match crash {
            RestartCrash::BeforeSegmentNamed => fault.fail_segment_writes.store(true, SeqCst),
            // The first slot write is the marker; the second clears it.
            RestartCrash::AfterSegmentNamed => fault.hard_state_writes_allowed.store(1, SeqCst),
        }
        let outcome = wal.restart_at(next_index).await;
        assert!(outcome.is_err(), "{crash:?}: the restart was made to fail");
        assert!(wal.close().await.is_err());
        (log, segments)
    })
}

/// A crash after a restart's new segment got its name, before the old segments are removed,
/// recovers to the new empty log at `next_index` (below, within or above the old log):
/// recovery knows the new segment from the durable marker and removes every older one, where
/// without the marker the gap or overlap would stop the open. The recovered log takes appends
/// and survives a reopen.
#[test]
fn restart_interrupted_after_its_segment_is_named_recovers_the_new_log() {
    for next_index in [3, 40, 71, 400] {
        let directory = tempdir();
        let path = directory.path().to_path_buf();
        let (log, old_segments) =
            interrupted_restart(path.clone(), next_index, RestartCrash::AfterSegmentNamed);
        assert!(log[0].index > 1, "the old log was compacted");
        let files = segment_files(&path);
        assert_eq!(
            files.len(),
            old_segments.len() + 1,
            "restart at {next_index}: the old segments and the new one are all on disk"
        );
        let newest = fs::read(files.last().expect("a segment")).expect("read");
        let header = SegmentHeader::decode(&newest).expect("the new segment's header is durable");
        assert_eq!(header.first_index, next_index);
        run(move || async move {
            let (wal, recovered) = Wal::open(&path, small_options())
                .await
                .expect("recovery finishes the restart");
            assert_eq!(
                (
                    recovered.first_index,
                    recovered.last_index,
                    recovered.torn_tail
                ),
                (next_index, next_index - 1, None),
                "restart at {next_index}"
            );
            assert_eq!(
                segment_files(&path).len(),
                1,
                "the old segments were removed"
            );
            wal.append(&entries(next_index, 25, 2, 300))
                .await
                .expect("append after recovery");
            wal.close().await.expect("close");
            let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
            assert_eq!(
                (recovered.first_index, recovered.last_index),
                (next_index, next_index + 24)
            );
            assert_eq!(
                wal.read_range(next_index..next_index + 25).expect("read"),
                entries(next_index, 25, 2, 300)
            );
            wal.close().await.expect("close");
        });
    }
}

/// A crash after the restart marker is durable but before the new segment has its name keeps
/// the old log, complete. The marker must be cleared at that open: otherwise, when a later
/// append rotates into a new ordinary segment with the seq the marker named, a crash between
/// that segment's naming and the next hard-state write would make recovery take it for the
/// restart's segment and drop the old entries. The test makes exactly that crash.
#[test]
fn restart_interrupted_before_its_segment_is_named_keeps_the_old_log() {
    use std::sync::atomic::Ordering::SeqCst;
    for next_index in [3, 40, 400] {
        let directory = tempdir();
        let path = directory.path().to_path_buf();
        let (log, old_segments) =
            interrupted_restart(path.clone(), next_index, RestartCrash::BeforeSegmentNamed);
        assert_eq!(
            segment_files(&path),
            old_segments,
            "no segment was added or removed"
        );
        run(move || async move {
            let first = log[0].index;
            let last = log.last().expect("entries").index;
            let fault = std::sync::Arc::new(RestartFault {
                hard_state_writes_allowed: std::sync::atomic::AtomicU64::new(u64::MAX),
                fail_segment_writes: std::sync::atomic::AtomicBool::new(false),
            });
            let options = tern_wal::WalOptions {
                fault_hook: Some(fault.hook()),
                ..small_options()
            };
            let (wal, recovered) = Wal::open(&path, options)
                .await
                .expect("recovery keeps the old log");
            assert_eq!(
                (
                    recovered.first_index,
                    recovered.last_index,
                    recovered.torn_tail
                ),
                (first, last, None)
            );
            assert_eq!(wal.read_range(first..last + 1).expect("read"), log);
            // Enough to rotate into a new segment, which gets the seq the marker named; the
            // hard-state write recording it fails, as a crash right after its naming would.
            fault.hard_state_writes_allowed.store(0, SeqCst);
            assert!(wal.append(&entries(last + 1, 30, 1, 300)).await.is_err());
            assert!(wal.close().await.is_err());
            assert!(
                segment_files(&path).len() > old_segments.len(),
                "the new segment got its name"
            );
            let (wal, recovered) = Wal::open(&path, small_options()).await.expect("reopen");
            assert_eq!(recovered.first_index, first, "the old entries are kept");
            assert!(recovered.last_index >= last);
            assert_eq!(wal.read_range(first..last + 1).expect("read"), log);
            wal.close().await.expect("close");
        });
    }
}

/// A crash while a restart removes the old segments (the marker cleared, the hard state
/// recording only the new segment) is finished by recovery, which removes the rest.
#[test]
fn restart_interrupted_while_removing_old_segments_is_finished() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    let saved = tempdir();
    let saved_path = saved.path().to_path_buf();
    let directory_path = path.clone();
    run(move || async move {
        let (wal, _) = Wal::open(&path, small_options()).await.expect("open");
        wal.append(&entries(1, 60, 1, 300)).await.expect("append");
        for file in segment_files(&path) {
            fs::copy(&file, saved_path.join(file.file_name().expect("name"))).expect("save");
        }
        wal.restart_at(45).await.expect("restart");
        wal.close().await.expect("close");
    });
    // Put back the newest old segments, as if the crash came before their removal.
    let old_segments = segment_files(saved.path());
    assert!(old_segments.len() >= 3);
    for old in &old_segments[1..] {
        fs::copy(old, directory_path.join(old.file_name().expect("name"))).expect("restore");
    }
    let path = directory_path.clone();
    run(move || async move {
        let (wal, recovered) = Wal::open(&path, small_options())
            .await
            .expect("recovery finishes the restart");
        assert_eq!((recovered.first_index, recovered.last_index), (45, 44));
        assert_eq!(segment_files(&path).len(), 1, "the leftovers were removed");
        wal.append(&entries(45, 1, 1, 10)).await.expect("append");
        wal.close().await.expect("close");
    });
}

/// A restart is known only from its marker, never from a gap: in a restarted log whose entries
/// span several segments, a missing middle segment still stops the open as a gap, and a
/// missing restart segment (the oldest) as a missing oldest segment.
#[test]
fn restarted_log_with_a_missing_segment_stops_the_open() {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    run(move || async move {
        let (wal, _) = Wal::open(&path, small_options()).await.expect("open");
        wal.append(&entries(1, 30, 1, 300)).await.expect("append");
        wal.restart_at(100).await.expect("restart");
        wal.append(&entries(100, 60, 2, 300)).await.expect("append");
        wal.close().await.expect("close");
    });
    let segments = segment_files(directory.path());
    assert!(segments.len() >= 3);
    let copy = copy_directory(directory.path());
    fs::remove_file(copy.path().join(segments[1].file_name().expect("name"))).expect("remove");
    let after = copy.path().join(segments[2].file_name().expect("name"));
    assert_corrupt(
        recover(copy.path().to_path_buf()),
        &after,
        0,
        "missing middle segment of a restarted log",
    );
    let copy = copy_directory(directory.path());
    let oldest = copy.path().join(segments[0].file_name().expect("name"));
    fs::remove_file(&oldest).expect("remove");
    assert_corrupt(
        recover(copy.path().to_path_buf()),
        &oldest,
        0,
        "missing restart segment",
    );
}
