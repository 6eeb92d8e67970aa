//! The on-disk format: segment headers, records and hard-state slots. Pure functions over byte
//! slices, so recovery and the writer share one definition and tests can forge any damage.
//!
//! Segment file `wal-<seq as 16 hex digits>.seg`:
//! ```text
//! header (32 bytes): magic "TERNWAL\0" | version u32 | crc32 u32 | seq u64 | first_index u64
//! records, packed:   payload_len u32 | crc32 u32 | index u64 | term u64 | payload
//! after each group commit's records: a commit marker, a record with index 0 and term 0 whose
//!                    16-byte payload is group_start u64 | group_crc32 u32 | reserved u32
//! then zeros (the segment was preallocated with zeros) up to segment_bytes
//! ```
//! All integers are little-endian. A record's CRC covers its length, index, term and payload;
//! the header's CRC covers every other header byte. 24 zero bytes where a record would start
//! mark the end of the data: no record can look like that because indexes start at 1.
//!
//! The commit marker closes the bytes one group commit wrote to a segment: `group_crc32` covers
//! `[group_start, marker)`. Groups are written one after another, each only once the previous
//! one's fdatasync returned, so a complete (CRC-valid) group after a damaged record proves the
//! damaged record was durable before: that is lost acknowledged data, not a torn write. Without
//! markers, a power loss that persisted a later block of the last write but not an earlier one
//! would look the same as mid-log damage.

/// The first bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"TERNWAL\0";
/// The format version written in every segment header; recovery refuses any other.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the segment header in bytes; records start at this offset.
pub const SEGMENT_HEADER_BYTES: usize = 32;
/// Size of a record's header in bytes (length, CRC, index, term).
pub const RECORD_HEADER_BYTES: usize = 24;

/// A decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The segment's sequence number, also in its file name; grows with every new segment.
    pub seq: u64,
    /// The index of the first record the segment holds (or would hold, when empty).
    pub first_index: u64,
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

impl SegmentHeader {
    /// Encodes the header into its 32 bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut out = [0u8; SEGMENT_HEADER_BYTES];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.seq.to_le_bytes());
        out[24..32].copy_from_slice(&self.first_index.to_le_bytes());
        let crc = header_crc(&out);
        out[12..16].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a header; the error says what was wrong (the caller adds file and
    /// offset).
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, String> {
        if bytes.len() < SEGMENT_HEADER_BYTES {
            return Err(format!(
                "file is {} bytes, shorter than the {SEGMENT_HEADER_BYTES}-byte segment header",
                bytes.len()
            ));
        }
        if bytes[0..8] != SEGMENT_MAGIC {
            return Err(format!(
                "bad magic {:02x?} (expected {:02x?})",
                &bytes[0..8],
                SEGMENT_MAGIC
            ));
        }
        let version = read_u32(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(format!(
                "format version {version}, this build reads only version {FORMAT_VERSION}"
            ));
        }
        let stored = read_u32(bytes, 12);
        let computed = header_crc(&bytes[..SEGMENT_HEADER_BYTES]);
        if stored != computed {
            return Err(format!(
                "header CRC {stored:#010x} does not match computed {computed:#010x}"
            ));
        }
        let first_index = read_u64(bytes, 24);
        if first_index == 0 {
            return Err("header first_index is 0; indexes start at 1".to_string());
        }
        Ok(SegmentHeader {
            seq: read_u64(bytes, 16),
            first_index,
        })
    }
}

fn header_crc(header: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[0..12]);
    hasher.update(&header[16..SEGMENT_HEADER_BYTES]);
    hasher.finalize()
}

/// Payload bytes of a commit marker.
pub const MARKER_PAYLOAD_BYTES: usize = 16;
/// Size on disk of a commit marker.
pub const MARKER_BYTES: usize = RECORD_HEADER_BYTES + MARKER_PAYLOAD_BYTES;

/// Appends a commit marker closing the group `[group_start, out.len())` of a segment's bytes.
pub fn encode_marker(out: &mut Vec<u8>, group_start: usize) {
    let group_crc = crc32fast::hash(&out[group_start..]);
    let mut payload = [0u8; MARKER_PAYLOAD_BYTES];
    payload[0..8].copy_from_slice(&(group_start as u64).to_le_bytes());
    payload[8..12].copy_from_slice(&group_crc.to_le_bytes());
    encode_record(out, 0, 0, &payload);
}

/// The size on disk of a record with `payload_bytes` of payload.
pub fn record_bytes(payload_bytes: usize) -> usize {
    RECORD_HEADER_BYTES + payload_bytes
}

/// Appends one encoded record to `out`. `payload.len()` must fit in a u32 (checked by the caller
/// against `segment_bytes`).
pub fn encode_record(out: &mut Vec<u8>, index: u64, term: u64, payload: &[u8]) {
    let length = payload.len() as u32;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&length.to_le_bytes());
    hasher.update(&index.to_le_bytes());
    hasher.update(&term.to_le_bytes());
    hasher.update(payload);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&hasher.finalize().to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&term.to_le_bytes());
    out.extend_from_slice(payload);
}

/// What was found where a record should start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A record whose CRC checks out.
    Record {
        /// The entry's index.
        index: u64,
        /// The entry's term.
        term: u64,
        /// Where the payload starts in the segment.
        payload_offset: usize,
        /// Payload length in bytes.
        payload_bytes: usize,
        /// Where the next record starts.
        next_offset: usize,
    },
    /// A commit marker whose own CRC checks out, closing the group that starts at `group_start`;
    /// the group's CRC is checked by [`marker_group_is_intact`].
    Marker {
        /// Where the group the marker closes starts.
        group_start: usize,
        /// The CRC of the group's bytes.
        group_crc: u32,
        /// Where the next record starts.
        next_offset: usize,
    },
    /// Zeros (or too little room for a record header): the end of the data.
    End,
    /// Something that is neither a record nor the end; the string says what.
    Bad(String),
}

/// Parses the record starting at `offset` in a segment's bytes. Never panics, whatever the
/// bytes are.
pub fn parse_record(segment: &[u8], offset: usize) -> Parsed {
    let Some(remaining) = segment.len().checked_sub(offset) else {
        return Parsed::End;
    };
    if remaining < RECORD_HEADER_BYTES {
        // Too short for a header: only zeros may be here.
        return if segment[offset..].iter().all(|b| *b == 0) {
            Parsed::End
        } else {
            Parsed::Bad(format!("{remaining} non-zero bytes at the end of the segment, too short for a record header"))
        };
    }
    let header = &segment[offset..offset + RECORD_HEADER_BYTES];
    if header.iter().all(|b| *b == 0) {
        return Parsed::End;
    }
    let payload_bytes = read_u32(header, 0) as usize;
    let stored_crc = read_u32(header, 4);
    let index = read_u64(header, 8);
    let term = read_u64(header, 16);
    if payload_bytes > remaining - RECORD_HEADER_BYTES {
        return Parsed::Bad(format!(
            "record length {payload_bytes} runs past the end of the segment ({} bytes left)",
            remaining - RECORD_HEADER_BYTES
        ));
    }
    let payload_offset = offset + RECORD_HEADER_BYTES;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[0..4]);
    hasher.update(&header[8..24]);
    hasher.update(&segment[payload_offset..payload_offset + payload_bytes]);
    let computed_crc = hasher.finalize();
    if computed_crc != stored_crc {
        return Parsed::Bad(format!(
            "record CRC {stored_crc:#010x} does not match computed {computed_crc:#010x}"
        ));
    }
    let next_offset = payload_offset + payload_bytes;
    if index == 0 {
        if term != 0 || payload_bytes != MARKER_PAYLOAD_BYTES {
            return Parsed::Bad(format!("record with index 0 is not a commit marker (term {term}, {payload_bytes} payload bytes)"));
        }
        let group_start = read_u64(segment, payload_offset);
        if group_start > offset as u64 {
            return Parsed::Bad(format!(
                "commit marker's group start {group_start} lies after the marker"
            ));
        }
        return Parsed::Marker {
            group_start: group_start as usize,
            group_crc: read_u32(segment, payload_offset + 8),
            next_offset,
        };
    }
    Parsed::Record {
        index,
        term,
        payload_offset,
        payload_bytes,
        next_offset,
    }
}

/// Whether the group closed by the marker at `marker_offset` is byte for byte what was written.
pub fn marker_group_is_intact(
    segment: &[u8],
    group_start: usize,
    group_crc: u32,
    marker_offset: usize,
) -> bool {
    group_start <= marker_offset
        && marker_offset <= segment.len()
        && crc32fast::hash(&segment[group_start..marker_offset]) == group_crc
}

/// Looks for a commit marker after `offset` whose group is intact: a group commit that completed
/// after whatever is at `offset` was durable. Returns the marker's offset. Checks CRCs only where
/// the length field says 16 and index and term are 0, so scanning zeros is one comparison a byte.
pub fn find_intact_group_after(segment: &[u8], offset: usize) -> Option<usize> {
    let mut at = offset + 1;
    while at + MARKER_BYTES <= segment.len() {
        if read_u32(segment, at) as usize == MARKER_PAYLOAD_BYTES
            && read_u64(segment, at + 8) == 0
            && read_u64(segment, at + 16) == 0
        {
            if let Parsed::Marker {
                group_start,
                group_crc,
                ..
            } = parse_record(segment, at)
            {
                if marker_group_is_intact(segment, group_start, group_crc, at) {
                    return Some(at);
                }
            }
        }
        at += 1;
    }
    None
}

/// Each hard-state slot is one 4 KiB block so a slot write never touches the other slot's
/// sector: a torn write can damage only the slot being written.
pub const HARD_STATE_SLOT_BYTES: usize = 4096;
const HARD_STATE_MAGIC: u32 = u32::from_le_bytes(*b"THS3");
const HARD_STATE_ENCODED_BYTES: usize = 96;
/// The previous slot layout (no restart marker), still read so that a log written by an older
/// build opens; it is rewritten as the current layout at the first slot write.
const HARD_STATE_MAGIC_V2: u32 = u32::from_le_bytes(*b"THS2");
const HARD_STATE_ENCODED_BYTES_V2: usize = 88;

/// Raft's persistent state: what must survive a crash besides the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: u64,
    /// The candidate this node voted for in `term`, if any.
    pub voted_for: Option<u64>,
    /// The highest index known committed.
    pub commit: u64,
}

/// One hard-state slot: the state (if one was ever saved), the write's sequence number (the
/// newer valid slot wins), the segment range, and a pending suffix truncation or restart.
///
/// Layout (little-endian): magic `THS3` u32 | crc32 u32 | sequence u64 | term u64 |
/// has_vote u64 | voted_for u64 | commit u64 | truncation seq u64 | truncation offset u64 |
/// has_state u64 | oldest seq u64 | newest seq u64 | restart seq u64, then zeros to 4 KiB. The
/// CRC covers every other encoded byte. Slots of the previous layout (`THS2`, without the
/// restart seq) are still read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HardStateSlot {
    /// The saved hard state; `None` until the first save.
    pub state: Option<HardState>,
    /// Grows with every slot write.
    pub sequence: u64,
    /// While a suffix truncation is being carried out: (segment seq, byte offset). Everything
    /// from that offset of that segment on, and every later segment, is no longer part of the
    /// log, whatever a crash left there. Cleared (durably) before any later append is
    /// acknowledged.
    pub truncation: Option<(u64, u64)>,
    /// The oldest and newest segment seq the log holds, so that a missing first or last segment
    /// file is detected (a missing middle one shows as an index gap). `None` while the log has
    /// no segment.
    pub segments: Option<(u64, u64)>,
    /// While a restart ([`Wal::restart_at`](crate::Wal::restart_at)) is being carried out: the
    /// seq of the new, empty segment that begins the restarted log. If a segment file of that
    /// seq exists (it gets its name only once its header is durable), the restart took effect
    /// and every older segment is a leftover to remove; if not, nothing was removed yet and the
    /// old log stands. Cleared (durably) before any old segment is removed.
    pub restart: Option<u64>,
}

/// Encodes a slot into its 4 KiB block.
pub fn encode_hard_state(slot: &HardStateSlot) -> Vec<u8> {
    let mut out = vec![0u8; HARD_STATE_SLOT_BYTES];
    let state = slot.state.unwrap_or_default();
    let (truncation_seq, truncation_offset) = slot.truncation.unwrap_or((0, 0));
    out[0..4].copy_from_slice(&HARD_STATE_MAGIC.to_le_bytes());
    out[8..16].copy_from_slice(&slot.sequence.to_le_bytes());
    out[16..24].copy_from_slice(&state.term.to_le_bytes());
    out[24..32].copy_from_slice(&u64::from(state.voted_for.is_some()).to_le_bytes());
    out[32..40].copy_from_slice(&state.voted_for.unwrap_or(0).to_le_bytes());
    out[40..48].copy_from_slice(&state.commit.to_le_bytes());
    out[48..56].copy_from_slice(&truncation_seq.to_le_bytes());
    out[56..64].copy_from_slice(&truncation_offset.to_le_bytes());
    out[64..72].copy_from_slice(&u64::from(slot.state.is_some()).to_le_bytes());
    let (oldest_seq, newest_seq) = slot.segments.unwrap_or((0, 0));
    out[72..80].copy_from_slice(&oldest_seq.to_le_bytes());
    out[80..88].copy_from_slice(&newest_seq.to_le_bytes());
    out[88..96].copy_from_slice(&slot.restart.unwrap_or(0).to_le_bytes());
    let crc = hard_state_crc(&out, HARD_STATE_ENCODED_BYTES);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

fn hard_state_crc(slot: &[u8], encoded_bytes: usize) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&slot[0..4]);
    hasher.update(&slot[8..encoded_bytes]);
    hasher.finalize()
}

/// Decodes one slot: `None` if it is empty or its CRC fails (a torn slot write).
pub fn decode_hard_state(bytes: &[u8]) -> Option<HardStateSlot> {
    let magic = read_u32(bytes.get(..4)?, 0);
    let encoded_bytes = match magic {
        HARD_STATE_MAGIC => HARD_STATE_ENCODED_BYTES,
        HARD_STATE_MAGIC_V2 => HARD_STATE_ENCODED_BYTES_V2,
        _ => return None,
    };
    if bytes.len() < encoded_bytes || read_u32(bytes, 4) != hard_state_crc(bytes, encoded_bytes) {
        return None;
    }
    let voted_for = match read_u64(bytes, 24) {
        0 => None,
        1 => Some(read_u64(bytes, 32)),
        _ => return None,
    };
    let state = HardState {
        term: read_u64(bytes, 16),
        voted_for,
        commit: read_u64(bytes, 40),
    };
    let truncation_offset = read_u64(bytes, 56);
    // A real truncation offset is at least the segment header's size, so 0 means none.
    let truncation = (truncation_offset != 0).then(|| (read_u64(bytes, 48), truncation_offset));
    let state = (read_u64(bytes, 64) == 1).then_some(state);
    // Segment seqs start at 1, so 0 means none.
    let segments = (read_u64(bytes, 80) != 0).then(|| (read_u64(bytes, 72), read_u64(bytes, 80)));
    let restart = match magic {
        HARD_STATE_MAGIC => Some(read_u64(bytes, 88)).filter(|seq| *seq != 0),
        _ => None,
    };
    Some(HardStateSlot {
        state,
        sequence: read_u64(bytes, 8),
        truncation,
        segments,
        restart,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record round-trips, and any single flipped bit makes it Bad or End, never a different
    /// valid record.
    #[test]
    fn record_round_trip_and_every_bit_flip_is_caught() {
        let mut bytes = Vec::new();
        encode_record(&mut bytes, 7, 3, b"hello");
        match parse_record(&bytes, 0) {
            Parsed::Record {
                index: 7,
                term: 3,
                payload_offset: 24,
                payload_bytes: 5,
                next_offset: 29,
            } => {}
            other => panic!("unexpected {other:?}"),
        }
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(parse_record(&damaged, 0), Parsed::Record { .. }),
                "bit {bit} flip went unnoticed"
            );
        }
    }

    /// Headers round-trip and reject wrong magic, version and CRC.
    #[test]
    fn header_round_trip_and_damage() {
        let header = SegmentHeader {
            seq: 9,
            first_index: 100,
        };
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        for byte in 0..SEGMENT_HEADER_BYTES {
            let mut damaged = bytes;
            damaged[byte] ^= 0x10;
            assert!(
                SegmentHeader::decode(&damaged).is_err(),
                "byte {byte} damage went unnoticed"
            );
        }
        assert!(SegmentHeader::decode(&bytes[..10]).is_err());
    }

    /// A hard-state slot round-trips; a torn slot decodes to None.
    #[test]
    fn hard_state_slots() {
        let slot = HardStateSlot {
            state: Some(HardState {
                term: 5,
                voted_for: Some(2),
                commit: 40,
            }),
            sequence: 11,
            truncation: Some((3, 4096)),
            segments: Some((2, 3)),
            restart: Some(4),
        };
        let bytes = encode_hard_state(&slot);
        assert_eq!(decode_hard_state(&bytes), Some(slot));
        let empty = HardStateSlot {
            state: None,
            sequence: 1,
            truncation: None,
            segments: None,
            restart: None,
        };
        assert_eq!(decode_hard_state(&encode_hard_state(&empty)), Some(empty));
        let mut torn = bytes.clone();
        torn[20] ^= 1;
        assert_eq!(decode_hard_state(&torn), None);
        let mut torn_restart = bytes.clone();
        torn_restart[90] ^= 1;
        assert_eq!(
            decode_hard_state(&torn_restart),
            None,
            "the CRC covers the restart seq"
        );
        assert_eq!(decode_hard_state(&vec![0u8; HARD_STATE_SLOT_BYTES]), None);
    }

    /// A slot of the previous layout (`THS2`: no restart seq, CRC over 88 bytes) still decodes,
    /// with no restart pending; one with a bad CRC does not.
    #[test]
    fn previous_hard_state_layout_is_read() {
        let slot = HardStateSlot {
            state: Some(HardState {
                term: 3,
                voted_for: None,
                commit: 9,
            }),
            sequence: 4,
            truncation: None,
            segments: Some((1, 2)),
            restart: None,
        };
        let mut bytes = encode_hard_state(&slot);
        bytes[0..4].copy_from_slice(&HARD_STATE_MAGIC_V2.to_le_bytes());
        let crc = hard_state_crc(&bytes, HARD_STATE_ENCODED_BYTES_V2);
        bytes[4..8].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_hard_state(&bytes), Some(slot));
        bytes[40] ^= 1;
        assert_eq!(decode_hard_state(&bytes), None);
    }

    /// Zeros are the end; a short non-zero tail is Bad; an intact group after junk is found by
    /// the scan, a damaged one is not.
    #[test]
    fn end_detection_and_scan() {
        assert_eq!(parse_record(&[0u8; 100], 0), Parsed::End);
        assert!(matches!(parse_record(&[1u8; 10], 0), Parsed::Bad(_)));
        let mut bytes = vec![0xAB; 50];
        encode_record(&mut bytes, 12, 1, b"x");
        encode_marker(&mut bytes, 50);
        let marker_at = 50 + record_bytes(1);
        bytes.extend_from_slice(&[0u8; 30]);
        assert!(matches!(
            parse_record(&bytes, marker_at),
            Parsed::Marker {
                group_start: 50,
                ..
            }
        ));
        assert_eq!(find_intact_group_after(&bytes, 0), Some(marker_at));
        bytes[60] ^= 1;
        assert_eq!(find_intact_group_after(&bytes, 0), None);
    }
}
