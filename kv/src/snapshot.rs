//! Snapshot format: the whole map, the sessions and the applied index, with a CRC32 over all of
//! it, so a damaged snapshot is refused with an error instead of restoring a wrong state.

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
