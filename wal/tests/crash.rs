//! Crash-point tests. A workload of appends, suffix truncations and prefix compaction runs to
//! completion; then copies of its directory are damaged the ways a crash or a bad disk damages
//! files, and recovery must return exactly the acknowledged entries that survive (a prefix of the
//! log), or refuse with an error naming the damaged file and byte offset when the damage is not a
//! torn tail.

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
            wal.append(&entries(batch * 6 + 1, 6, 1, 40 + batch as usize * 17)).await.expect("append");
        }
        wal.truncate_suffix(40).await.expect("truncate");
        wal.append(&entries(40, 20, 2, 90)).await.expect("append");
        wal.compact_through(20).await.expect("compact");
        wal.truncate_suffix(55).await.expect("truncate within the last segment");
        for batch in 0..24u64 {
            wal.append(&entries(55 + batch * 4, 4, 3, 120 + batch as usize)).await.expect("append");
        }
        let log = wal.read_range(wal.first_index()..wal.last_index() + 1).expect("read");
        wal.close().await.expect("close");
        log
    });
    assert!(segment_files(directory.path()).len() >= 3, "the workload must leave several segments");
    (directory, log)
}

/// The record start offsets of a segment file, and where its data ends.
fn record_offsets(path: &Path) -> (Vec<usize>, usize) {
    let bytes = fs::read(path).expect("read segment");
    let mut offsets = Vec::new();
    let mut offset = SEGMENT_HEADER_BYTES;
    while let Parsed::Record { next_offset, .. } = format::parse_record(&bytes, offset) {
        offsets.push(offset);
        offset = next_offset;
    }
    (offsets, offset)
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
        assert_eq!(again.torn_tail, None, "the torn tail must have been repaired");
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
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

/// Cutting the last segment at every record boundary (file shortened, or zeroed from there as
/// when unsynced writes are lost in a preallocated file) recovers exactly the records before it.
#[test]
fn cut_at_every_record_boundary_recovers_the_prefix() {
    let (directory, log) = workload();
    let last = segment_files(directory.path()).pop().expect("a segment");
    let (offsets, data_end) = record_offsets(&last);
    let mut boundaries = offsets.clone();
    boundaries.push(data_end);
    for (position, boundary) in boundaries.iter().enumerate() {
        for shorten in [true, false] {
            let copy = copy_directory(directory.path());
            let segment = copy.path().join(last.file_name().expect("name"));
            cut(&segment, *boundary, shorten);
            let (recovered, torn) = recover(copy.path().to_path_buf()).expect("recovery must succeed");
            let expected = &log[..log.len() - (offsets.len() - position)];
            assert_eq!(recovered, expected, "cut at boundary {boundary} (shorten: {shorten})");
            assert_eq!(torn, None, "a cut at a record boundary is a clean end");
        }
    }
}

fn cut(segment: &Path, at: usize, shorten: bool) {
    if shorten {
        fs::OpenOptions::new().write(true).open(segment).expect("open").set_len(at as u64).expect("set_len");
    } else {
        let mut bytes = fs::read(segment).expect("read");
        bytes[at..].fill(0);
        fs::write(segment, bytes).expect("write");
    }
}

/// Cutting the last segment at random offsets inside records cuts off exactly the torn record.
#[test]
fn cut_at_random_offsets_recovers_the_prefix() {
    let (directory, log) = workload();
    let last = segment_files(directory.path()).pop().expect("a segment");
    let (offsets, data_end) = record_offsets(&last);
    let mut random = Random(7);
    for case in 0..40 {
        let at = SEGMENT_HEADER_BYTES + random.below(data_end - SEGMENT_HEADER_BYTES);
        let shorten = case % 2 == 0;
        let copy = copy_directory(directory.path());
        let segment = copy.path().join(last.file_name().expect("name"));
        cut(&segment, at, shorten);
        let (recovered, torn) = recover(copy.path().to_path_buf()).expect("recovery must succeed");
        let mut ends: Vec<usize> = offsets[1..].to_vec();
        ends.push(data_end);
        let whole = ends.iter().filter(|end| **end <= at).count();
        let expected = &log[..log.len() - offsets.len() + whole];
        assert_eq!(recovered, expected, "cut at {at} (shorten: {shorten})");
        let starts_a_record = offsets.contains(&at);
        if !starts_a_record {
            assert_eq!(torn, Some((segment.clone(), offsets[whole] as u64)), "cut at {at}");
        }
    }
}

/// A flipped bit in the last record, or in the zeros after it, is a torn tail: the records
/// before it are recovered, and the tail is reported.
#[test]
fn bit_flips_at_the_tail_cut_only_the_tail() {
    let (directory, log) = workload();
    let last = segment_files(directory.path()).pop().expect("a segment");
    let (offsets, data_end) = record_offsets(&last);
    let last_record = *offsets.last().expect("records");
    let mut random = Random(11);
    for case in 0..24 {
        let in_record = case % 3 != 0;
        let byte = if in_record { last_record + random.below(data_end - last_record) } else { data_end + random.below(64) };
        let copy = copy_directory(directory.path());
        let segment = copy.path().join(last.file_name().expect("name"));
        flip(&segment, byte, random.below(8));
        let (recovered, torn) = recover(copy.path().to_path_buf()).expect("recovery must succeed");
        if in_record {
            assert_eq!(recovered, &log[..log.len() - 1], "flip at {byte}");
            assert_eq!(torn, Some((segment.clone(), last_record as u64)));
        } else {
            assert_eq!(recovered, log, "flip at {byte} after the data");
            assert_eq!(torn, Some((segment.clone(), data_end as u64)));
        }
    }
}

fn flip(path: &Path, byte: usize, bit: usize) {
    let mut bytes = fs::read(path).expect("read");
    bytes[byte] ^= 1 << bit;
    fs::write(path, bytes).expect("write");
}

fn assert_corrupt(outcome: Outcome, path: &Path, offset: u64, context: &str) {
    match outcome {
        Err(WalError::Corrupt { path: reported, offset: reported_offset, what }) => {
            assert_eq!((reported.as_path(), reported_offset), (path, offset), "{context}: {what}");
        }
        other => panic!("{context}: expected a Corrupt error at {} byte {offset}, got {other:?}", path.display()),
    }
}

/// A flipped bit in a record that valid records follow, or anywhere in a sealed segment, is
/// damage to acknowledged data: the open fails naming the file and the record's offset.
#[test]
fn bit_flips_in_the_middle_stop_the_open() {
    let (directory, _) = workload();
    let segments = segment_files(directory.path());
    let mut random = Random(13);
    for (position, original) in segments.iter().enumerate() {
        let (offsets, data_end) = record_offsets(original);
        let is_last = position + 1 == segments.len();
        // In the last segment only records before the last one count as the middle.
        let candidates = if is_last { offsets.len() - 1 } else { offsets.len() };
        for _ in 0..6 {
            let record = random.below(candidates);
            let start = offsets[record];
            let end = offsets.get(record + 1).copied().unwrap_or(data_end);
            let copy = copy_directory(directory.path());
            let segment = copy.path().join(original.file_name().expect("name"));
            flip(&segment, start + random.below(end - start), random.below(8));
            let context = format!("segment {position}, record {record}");
            assert_corrupt(recover(copy.path().to_path_buf()), &segment, start as u64, &context);
        }
    }
}

/// A missing middle segment is a gap: the open fails naming the segment after the gap.
#[test]
fn missing_segment_stops_the_open() {
    let (directory, _) = workload();
    let segments = segment_files(directory.path());
    let copy = copy_directory(directory.path());
    fs::remove_file(copy.path().join(segments[1].file_name().expect("name"))).expect("remove");
    let after = copy.path().join(segments[2].file_name().expect("name"));
    let outcome = recover(copy.path().to_path_buf());
    assert_corrupt(outcome.clone(), &after, 0, "missing segment");
    assert!(format!("{}", outcome.expect_err("error")).contains("missing"));
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
            assert_corrupt(recover(copy.path().to_path_buf()), &segment, 0, &format!("segment {position} header byte {byte}"));
        }
    }
}

/// Writes a forged segment file holding entries `first..first+count`.
fn forge_segment(directory: &Path, seq: u64, first: u64, count: u64) -> PathBuf {
    let mut bytes = SegmentHeader { seq, first_index: first }.encode().to_vec();
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
    let (log, torn) = recover(directory.path().to_path_buf()).expect("consecutive segments recover");
    assert_eq!((log.len(), torn), (8, None));
}

/// A record whose index is out of sequence inside a segment stops the open at that record.
#[test]
fn out_of_sequence_record_stops_the_open() {
    let directory = tempdir();
    let path = forge_segment(directory.path(), 1, 1, 3);
    let mut bytes = fs::read(&path).expect("read");
    let (offsets, data_end) = record_offsets(&path);
    let mut extra = Vec::new();
    format::encode_record(&mut extra, 9, 1, b"stray");
    bytes[data_end..data_end + extra.len()].copy_from_slice(&extra);
    fs::write(&path, bytes).expect("write");
    assert_eq!(offsets.len(), 3);
    assert_corrupt(recover(directory.path().to_path_buf()), &path, data_end as u64, "stray index");
}
