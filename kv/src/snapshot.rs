//! Snapshot format: the whole map, the sessions and the applied index, with a CRC32 over all of
//! it, so a damaged snapshot is refused with an error instead of restoring a wrong state.

use bytes::Bytes;

use crate::command::DecodeError;
use crate::session::Sessions;
use crate::wire::{put_bytes, put_u64, Reader};

/// Why a snapshot could not be restored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot is {found} bytes, too short for its {needed}-byte header")]
    TooShort { found: usize, needed: usize },
    #[error("snapshot magic/version mismatch: found {found:#x}; it was not written by this tern version")]
    BadMagic { found: u64 },
    #[error("snapshot checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is damaged")]
    Checksum { stored: u32, computed: u32 },
    #[error("snapshot body malformed at byte {offset}: {detail}")]
    Malformed { offset: usize, detail: String },
}

/// The first 8 bytes of a snapshot (little endian): "TERNKV" and a 2-byte format version.
/// A change to the body layout must change the version.
pub const SNAPSHOT_MAGIC: u64 = u64::from_le_bytes(*b"TERNKV\x00\x01");

/// Header bytes: the magic (`u64`) and the CRC32 of the body (`u32`).
pub const SNAPSHOT_HEADER_BYTES: usize = 8 + 4;

/// The fewest bytes one encoded map pair takes: two empty length-prefixed strings.
const PAIR_BYTES_MIN: usize = 8;

/// The decoded content of a snapshot.
pub(crate) struct SnapshotContent {
    pub(crate) applied_index: u64,
    /// Pairs in strictly increasing key order.
    pub(crate) pairs: Vec<(Bytes, Bytes)>,
    pub(crate) sessions: Sessions,
}

/// Encodes a snapshot.
///
/// Layout: [`SNAPSHOT_MAGIC`] (`u64` LE), the CRC32 (`u32` LE) of the body, then the body: the
/// applied index (`u64`), the pair count (`u64`) and each pair as two length-prefixed strings
/// in key order, then the sessions (see `Sessions::encode`).
pub(crate) fn encode(
    applied_index: u64,
    pairs: impl Iterator<Item = (Bytes, Bytes)>,
    sessions: &Sessions,
) -> Vec<u8> {
    let mut out = Vec::new();
    put_u64(&mut out, SNAPSHOT_MAGIC);
    out.extend_from_slice(&[0; 4]); // the CRC, filled in below
    put_u64(&mut out, applied_index);
    // The pair count is patched in after the pairs: the count is what was written.
    let count_at = out.len();
    put_u64(&mut out, 0);
    let mut written = 0u64;
    for (key, value) in pairs {
        put_bytes(&mut out, &key);
        put_bytes(&mut out, &value);
        written += 1;
    }
    out[count_at..count_at + 8].copy_from_slice(&written.to_le_bytes());
    sessions.encode(&mut out);
    let crc = crc32fast::hash(&out[SNAPSHOT_HEADER_BYTES..]);
    out[8..SNAPSHOT_HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Checks the header and checksum, then parses the body; never panics on any input.
pub(crate) fn decode(bytes: &[u8]) -> Result<SnapshotContent, SnapshotError> {
    if bytes.len() < SNAPSHOT_HEADER_BYTES {
        return Err(SnapshotError::TooShort {
            found: bytes.len(),
            needed: SNAPSHOT_HEADER_BYTES,
        });
    }
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&bytes[..8]);
    let magic = u64::from_le_bytes(magic);
    if magic != SNAPSHOT_MAGIC {
        return Err(SnapshotError::BadMagic { found: magic });
    }
    let mut stored = [0u8; 4];
    stored.copy_from_slice(&bytes[8..SNAPSHOT_HEADER_BYTES]);
    let stored = u32::from_le_bytes(stored);
    let body = &bytes[SNAPSHOT_HEADER_BYTES..];
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(SnapshotError::Checksum { stored, computed });
    }
    decode_body(body).map_err(|error| SnapshotError::Malformed {
        // Offsets in the error count from the start of the snapshot, header included.
        offset: error.offset + SNAPSHOT_HEADER_BYTES,
        detail: error.detail,
    })
}

/// Parses the body (after the header).
fn decode_body(body: &[u8]) -> Result<SnapshotContent, DecodeError> {
    let mut reader = Reader::new(body, "snapshot");
    let applied_index = reader.u64("applied index")?;
    let count = reader.count_u64("map pair", PAIR_BYTES_MIN)?;
    let mut pairs: Vec<(Bytes, Bytes)> = Vec::with_capacity(count);
    for _ in 0..count {
        let start = reader.offset();
        let key = reader.owned("key")?;
        let value = reader.owned("value")?;
        if let Some((previous, _)) = pairs.last() {
            if *previous >= key {
                return Err(reader.error_at(
                    start,
                    "map keys are not in strictly increasing order".to_string(),
                ));
            }
        }
        pairs.push((key, value));
    }
    let sessions = Sessions::decode(&mut reader)?;
    reader.finish()?;
    Ok(SnapshotContent {
        applied_index,
        pairs,
        sessions,
    })
}
