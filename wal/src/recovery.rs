//! Opening a data directory: read every segment, check every header and CRC, cut a torn tail
//! off the last segment, finish an interrupted compaction, truncation or restart (from what the
//! hard state records), and refuse (with file, offset and reason) anything that could mean an
//! acknowledged entry is lost. Runs once at open with plain blocking file I/O.
//!
//! Segments must hold consecutive indexes, each starting where the previous one ended: a gap
//! is always a lost segment, never taken for a restart. A restart ([`crate::Wal::restart_at`])
//! is known only from the durable marker in the hard state naming its new segment; recovery
//! then treats that segment as the oldest one, so the older segments are removed before the
//! continuity check sees them.

use std::{
    collections::VecDeque,
    fs,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

use memmap2::Mmap;

use crate::{
    error::{Result, WalError},
    format::{
        self, HardStateSlot, Parsed, SegmentHeader, HARD_STATE_SLOT_BYTES, SEGMENT_HEADER_BYTES,
    },
    wal::{EntryMeta, Segment, SegmentBytes},
};

/// The name of the hard-state file in the data directory.
pub(crate) const HARD_STATE_FILE: &str = "hardstate";

/// The file name of segment `seq`.
pub(crate) fn segment_file_name(seq: u64) -> String {
    format!("wal-{seq:016x}.seg")
}

fn parse_segment_file_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("wal-")?.strip_suffix(".seg")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// What recovery found.
pub(crate) struct RecoveredLog {
    pub segments: Vec<Segment>,
    pub entries: VecDeque<EntryMeta>,
    pub first_index: u64,
    pub next_seq: u64,
    /// The newest valid hard-state slot.
    pub hard_state: Option<HardStateSlot>,
    /// Where a torn tail was cut off, if one was: (file, byte offset).
    pub torn_tail: Option<(PathBuf, u64)>,
}

/// Reads and checks the whole directory (creating it if missing).
pub(crate) fn recover(directory: &Path) -> Result<RecoveredLog> {
    fs::create_dir_all(directory)
        .map_err(|error| WalError::io("create directory", directory, 0, error))?;
    let mut sequence_numbers = Vec::new();
    let listing = fs::read_dir(directory)
        .map_err(|error| WalError::io("list directory", directory, 0, error))?;
    for item in listing {
        let item = item.map_err(|error| WalError::io("list directory", directory, 0, error))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if let Some(seq) = parse_segment_file_name(&name) {
            sequence_numbers.push(seq);
        } else if name.ends_with(".tmp") {
            // A segment being preallocated, or one whose first write never became durable under
            // its final name: nothing in it was ever acknowledged.
            fs::remove_file(item.path())
                .map_err(|error| WalError::io("remove", item.path(), 0, error))?;
        }
    }
    sequence_numbers.sort_unstable();
    let hard_state = read_hard_state(&directory.join(HARD_STATE_FILE))?;
    let truncation = hard_state.and_then(|slot| slot.truncation);
    let mut recorded_segments = hard_state.and_then(|slot| slot.segments);
    if let Some(restart_seq) = hard_state.and_then(|slot| slot.restart) {
        if sequence_numbers.binary_search(&restart_seq).is_ok() {
            // A restart was under way and its new segment got its name (only done once the
            // header was durable): the restart took effect, the log is that segment and
            // whatever follows it; every older segment is a leftover, removed below exactly as
            // after an interrupted compaction.
            tracing::warn!(
                seq = restart_seq,
                "finishing an interrupted restart of the log"
            );
            recorded_segments = Some((restart_seq, restart_seq));
        } else {
            // The new segment never got its name, so no old segment was removed yet (removal
            // starts after the marker is cleared): the old log stands, complete.
            tracing::warn!(
                seq = restart_seq,
                "an interrupted restart of the log never created its segment; keeping the old log"
            );
        }
    }
    check_recorded_segments(
        directory,
        &mut sequence_numbers,
        recorded_segments,
        truncation.is_some(),
    )?;
    if let Some((truncated_seq, _)) = truncation {
        // A suffix truncation was under way: it had removed, or was removing, every later
        // segment; finish that (newest first, as it does).
        while let Some(&seq) = sequence_numbers.last() {
            if seq <= truncated_seq {
                break;
            }
            let path = directory.join(segment_file_name(seq));
            tracing::warn!(path = %path.display(), "removing a segment an interrupted suffix truncation was removing");
            fs::remove_file(&path).map_err(|error| WalError::io("remove", &path, 0, error))?;
            crate::io::sync_directory(directory)?;
            sequence_numbers.pop();
        }
    }

    let mut log = RecoveredLog {
        segments: Vec::new(),
        entries: VecDeque::new(),
        first_index: 1,
        next_seq: sequence_numbers.last().map_or(1, |seq| seq + 1),
        hard_state,
        torn_tail: None,
    };
    let count = sequence_numbers.len();
    for (position, seq) in sequence_numbers.into_iter().enumerate() {
        let path = directory.join(segment_file_name(seq));
        let is_last = position + 1 == count;
        // An interrupted truncation's segment ends at the truncation offset, whatever follows.
        let limit = truncation
            .filter(|(truncated_seq, _)| *truncated_seq == seq)
            .map(|(_, offset)| offset as usize);
        let segment = load_segment(&path, seq, is_last, limit, &mut log)?;
        log.segments.push(segment);
    }
    Ok(log)
}

fn load_segment(
    path: &Path,
    seq: u64,
    is_last: bool,
    limit: Option<usize>,
    log: &mut RecoveredLog,
) -> Result<Segment> {
    let file = fs::File::open(path).map_err(|error| WalError::io("open", path, 0, error))?;
    // Safety of the mapping: segment files are only ever modified by this process, through the
    // WAL, which never rewrites a byte a mapped (sealed) segment holds.
    let map = unsafe { Mmap::map(&file) }.map_err(|error| WalError::io("mmap", path, 0, error))?;
    let capacity = map.len();
    if capacity > u32::MAX as usize {
        return Err(WalError::corrupt(
            path,
            0,
            format!("segment is {capacity} bytes, more than the 4 GiB a segment may hold"),
        ));
    }
    let header = SegmentHeader::decode(&map)
        .map_err(|what| WalError::corrupt(path, 0, format!("bad segment header: {what}")))?;
    if header.seq != seq {
        return Err(WalError::corrupt(
            path,
            0,
            format!(
                "header says segment {} but the file name says {seq}",
                header.seq
            ),
        ));
    }
    check_continuity(path, &header, log)?;
    if log.segments.is_empty() {
        log.first_index = header.first_index;
    }

    let data = &map[..limit
        .unwrap_or(capacity)
        .clamp(SEGMENT_HEADER_BYTES, capacity)];
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut next_index = header.first_index;
    let end_reason = loop {
        match format::parse_record(data, offset) {
            Parsed::Record {
                index,
                term,
                payload_bytes,
                next_offset,
                ..
            } => {
                if index != next_index {
                    return Err(WalError::corrupt(
                        path,
                        offset as u64,
                        format!(
                            "record has index {index}, expected {next_index} (out of sequence)"
                        ),
                    ));
                }
                log.entries.push_back(EntryMeta {
                    term,
                    offset: offset as u32,
                    payload_bytes: payload_bytes as u32,
                });
                next_index += 1;
                offset = next_offset;
            }
            Parsed::Marker {
                group_start,
                group_crc,
                next_offset,
            } => {
                if !format::marker_group_is_intact(data, group_start, group_crc, offset) {
                    break Some(format!("the group commit closed by the marker here (from byte {group_start}) fails its CRC"));
                }
                offset = next_offset;
            }
            Parsed::End => break None,
            Parsed::Bad(what) => break Some(what),
        }
    };
    // A complete group commit after the end of the data means the end is damage, not the end:
    // that group was written only after everything before it was durable.
    if let Some(found_at) = format::find_intact_group_after(data, offset) {
        let what = end_reason.unwrap_or_else(|| "zeros where a record should be".to_string());
        return Err(WalError::corrupt(
            path,
            offset as u64,
            format!(
                "{what}, but a complete later group commit (its marker at byte {found_at}) follows"
            ),
        ));
    }
    if let (Some(what), false) = (&end_reason, is_last) {
        return Err(WalError::corrupt(
            path,
            offset as u64,
            format!("{what}, in a sealed segment (one that a later segment follows)"),
        ));
    }
    if is_last && map[offset..].iter().any(|byte| *byte != 0) {
        let what = end_reason.unwrap_or_else(|| "non-zero bytes after the last record".to_string());
        // Anything but zeros after the data of the last segment is a torn write: its fdatasync
        // never returned, so no entry in it was acknowledged. Zero it so that later appends
        // never run into its leftovers.
        tracing::warn!(path = %path.display(), offset, reason = %what, "cutting a torn record off the tail of the WAL");
        zero_tail(path, &map, offset)?;
        log.torn_tail = Some((path.to_path_buf(), offset as u64));
    }
    let bytes = if is_last {
        SegmentBytes::Memory(map[..offset].to_vec())
    } else {
        SegmentBytes::Mapped(map)
    };
    Ok(Segment {
        seq,
        first_index: header.first_index,
        path: path.to_path_buf(),
        capacity,
        data_end: offset,
        disk_end: offset,
        on_disk: true,
        group_start: offset,
        bytes,
    })
}

/// Compares the segment files found with the oldest and newest seq the hard state recorded:
/// segments older than the recorded oldest are leftovers of an interrupted compaction or
/// restart (removed here); a missing oldest or newest segment is an error.
fn check_recorded_segments(
    directory: &Path,
    found: &mut Vec<u64>,
    recorded: Option<(u64, u64)>,
    truncating: bool,
) -> Result<()> {
    let Some((oldest, newest)) = recorded else {
        return Ok(());
    };
    while let Some(&seq) = found.first() {
        if seq >= oldest {
            break;
        }
        let path = directory.join(segment_file_name(seq));
        tracing::warn!(path = %path.display(), "removing a segment an interrupted compaction or restart was removing");
        fs::remove_file(&path).map_err(|error| WalError::io("remove", &path, 0, error))?;
        crate::io::sync_directory(directory)?;
        found.remove(0);
    }
    let missing = |seq: u64, which: &str| {
        WalError::corrupt(
            directory.join(segment_file_name(seq)),
            0,
            format!("the {which} segment file is missing (the hard state records segments {oldest}..={newest}); the entries it held are lost"),
        )
    };
    match (found.first(), found.last()) {
        (Some(&first), _) if first > oldest => Err(missing(oldest, "oldest")),
        // An interrupted truncation may have removed its newest segments already: it says so.
        (_, Some(&last)) if last < newest && !truncating => Err(missing(newest, "newest")),
        (None, _) if !truncating => Err(missing(newest, "newest")),
        _ => Ok(()),
    }
}

fn check_continuity(path: &Path, header: &SegmentHeader, log: &RecoveredLog) -> Result<()> {
    let Some(previous) = log.segments.last() else {
        return Ok(());
    };
    let expected = log.first_index + log.entries.len() as u64;
    if header.first_index > expected {
        return Err(WalError::corrupt(
            path,
            0,
            format!(
                "segment starts at index {} but {} ends at index {}: entries {expected}..{} are missing (a missing segment file?)",
                header.first_index,
                previous.path.display(),
                expected - 1,
                header.first_index - 1
            ),
        ));
    }
    if header.first_index < expected {
        return Err(WalError::corrupt(
            path,
            0,
            format!(
                "segment starts at index {} but {} already holds entries through {}: the segments overlap",
                header.first_index,
                previous.path.display(),
                expected - 1
            ),
        ));
    }
    Ok(())
}

fn zero_tail(path: &Path, map: &[u8], from: usize) -> Result<()> {
    let Some(last_nonzero) = map.iter().rposition(|byte| *byte != 0) else {
        return Ok(());
    };
    if last_nonzero < from {
        return Ok(());
    }
    let writer = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|error| WalError::io("open", path, 0, error))?;
    let zeros = vec![0u8; last_nonzero + 1 - from];
    writer
        .write_all_at(&zeros, from as u64)
        .map_err(|error| WalError::io("write", path, from as u64, error))?;
    writer
        .sync_data()
        .map_err(|error| WalError::io("fdatasync", path, 0, error))
}

/// Reads the two hard-state slots and returns the newer valid one.
fn read_hard_state(path: &Path) -> Result<Option<HardStateSlot>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(WalError::io("read", path, 0, error)),
    };
    let slot = |number: usize| {
        bytes
            .get(number * HARD_STATE_SLOT_BYTES..(number + 1) * HARD_STATE_SLOT_BYTES)
            .unwrap_or(&[])
    };
    let decoded = [
        format::decode_hard_state(slot(0)),
        format::decode_hard_state(slot(1)),
    ];
    let newest = decoded
        .iter()
        .flatten()
        .max_by_key(|slot| slot.sequence)
        .copied();
    if newest.is_none() {
        // Both slots unreadable. Only the very first write can leave that state legitimately,
        // and then the other slot is still all zeros. Two damaged slots would reset the term and
        // vote, which could let this node vote twice in one term: refuse.
        let empty = |number: usize| slot(number).iter().all(|byte| *byte == 0);
        if !empty(0) && !empty(1) {
            return Err(WalError::corrupt(
                path,
                0,
                "both hard-state slots fail their CRC",
            ));
        }
    }
    Ok(newest)
}
