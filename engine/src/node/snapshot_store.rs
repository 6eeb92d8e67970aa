//! Snapshot files: the applied state machine at one log index, with the Raft metadata the core
//! needs to start its log after it (index, term, membership), in `<data>/snapshots/`.
//!
//! A file is written whole to a temporary name, synced, renamed into place and the directory
//! synced, so a crash leaves either the old set of files or the new one, never a half file
//! under a snapshot's name. Every file carries a CRC32 over all of it: a damaged newest file is
//! reported and the next older one is used (the WAL still holds what came after it, because
//! the WAL is compacted only through the older of the `SNAPSHOTS_KEPT` files it keeps).
//!
//! Layout: `SNAPSHOT_FILE_MAGIC` (8 bytes), index (`u64` LE), term (`u64` LE), the membership
//! (`membership_codec`), the state machine's own snapshot (`u64` LE length, then its bytes),
//! then the CRC32 (`u32` LE) of everything before it.

use std::fs;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::membership_codec::{decode_membership, encode_membership};
use crate::raft::{LogIndex, SnapshotMeta, Term};

/// The first bytes of a snapshot file: "TERNSNP" and a format version.
const SNAPSHOT_FILE_MAGIC: [u8; 8] = *b"TERNSNP\x01";

/// Snapshot files kept: the newest and one older, the fallback when the newest is damaged.
pub(crate) const SNAPSHOTS_KEPT: usize = 2;

/// The largest snapshot file this version reads or accepts from a leader (a bound on the
/// memory one restore or one transfer takes). 4 GiB: well above any state tern's limits allow.
pub(crate) const SNAPSHOT_FILE_BYTES_MAX: u64 = 4 << 30;

const FILE_PREFIX: &str = "snapshot-";
const FILE_SUFFIX: &str = ".tsnap";

/// The bytes of a snapshot file: mapped from disk (restores, received transfers: the page
/// cache holds them, not the heap) or owned (tests).
enum FileBytes {
    Mapped(memmap2::Mmap),
    #[cfg(test)]
    Owned(Vec<u8>),
}

impl FileBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(map) => map,
            #[cfg(test)]
            FileBytes::Owned(bytes) => bytes,
        }
    }
}

/// One checked snapshot file.
pub(crate) struct SnapshotFile {
    pub(crate) meta: SnapshotMeta,
    bytes: FileBytes,
    /// Where the state machine's snapshot lies in `bytes`.
    state: Range<usize>,
}

impl std::fmt::Debug for SnapshotFile {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SnapshotFile")
            .field("meta", &self.meta)
            .field("state_bytes", &self.state.len())
            .finish()
    }
}

impl SnapshotFile {
    /// The state machine's snapshot (`tern_kv::StateMachine::snapshot`).
    pub(crate) fn state(&self) -> &[u8] {
        &self.bytes.as_slice()[self.state.clone()]
    }
}

/// Everything before the state: magic, index, term, membership, the state's length.
fn header(meta: &SnapshotMeta, state_bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&SNAPSHOT_FILE_MAGIC);
    out.extend_from_slice(&meta.index.to_le_bytes());
    out.extend_from_slice(&meta.term.to_le_bytes());
    encode_membership(&meta.membership, &mut out);
    out.extend_from_slice(&(state_bytes as u64).to_le_bytes());
    out
}

/// Encodes a snapshot file's bytes.
#[cfg(test)]
pub(crate) fn encode(meta: &SnapshotMeta, state: &[u8]) -> Vec<u8> {
    let mut out = header(meta, state.len());
    out.extend_from_slice(state);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks a snapshot file's bytes: its metadata and where the state lies, or what is wrong.
fn check(bytes: &[u8]) -> Result<(SnapshotMeta, Range<usize>), String> {
    let header = SNAPSHOT_FILE_MAGIC.len() + 16;
    if bytes.len() < header + 4 {
        return Err(format!(
            "{} bytes is too short for a snapshot file (at least {})",
            bytes.len(),
            header + 4
        ));
    }
    if bytes[..8] != SNAPSHOT_FILE_MAGIC {
        return Err("not a tern snapshot file of this version (bad magic)".into());
    }
    let (body, crc_bytes) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes(crc_bytes.try_into().unwrap_or_default());
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(format!(
            "checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is damaged"
        ));
    }
    let read_u64 = |at: usize| -> Result<u64, String> {
        body.get(at..at + 8)
            .map(|raw| u64::from_le_bytes(raw.try_into().unwrap_or_default()))
            .ok_or_else(|| format!("truncated at byte {at}"))
    };
    let index = read_u64(8)?;
    let term = read_u64(16)?;
    let (membership, used) = decode_membership(&body[24..])?;
    let length_at = 24 + used;
    let state_len = read_u64(length_at)?;
    let state_at = length_at + 8;
    if state_len != (body.len() - state_at.min(body.len())) as u64 {
        return Err(format!(
            "the state length {state_len} does not match the {} bytes that follow",
            body.len().saturating_sub(state_at)
        ));
    }
    let meta = SnapshotMeta {
        index,
        term,
        membership,
    };
    Ok((meta, state_at..body.len()))
}

/// Decodes and checks a snapshot file's bytes; the error says what is wrong.
#[cfg(test)]
pub(crate) fn decode(bytes: Vec<u8>) -> Result<SnapshotFile, String> {
    let (meta, state) = check(&bytes)?;
    Ok(SnapshotFile {
        meta,
        bytes: FileBytes::Owned(bytes),
        state,
    })
}

/// Maps the snapshot file at `path` and checks it whole (bounded by
/// `SNAPSHOT_FILE_BYTES_MAX`).
pub(crate) fn map_file(path: &Path) -> Result<SnapshotFile, String> {
    let file = fs::File::open(path).map_err(|error| format!("cannot open: {error}"))?;
    let size = file
        .metadata()
        .map_err(|error| format!("cannot stat: {error}"))?
        .len();
    if size > SNAPSHOT_FILE_BYTES_MAX {
        return Err(format!(
            "{size} bytes is over the {SNAPSHOT_FILE_BYTES_MAX}-byte limit"
        ));
    }
    if size == 0 {
        return Err("the file is empty".into());
    }
    // SAFETY: snapshot files are this node's own: written whole under a temporary name and
    // never modified or truncated after (only renamed and, once superseded, unlinked, which
    // keeps a mapping valid). A file changed by someone else could fault the mapping, as it
    // could corrupt any file the node owns.
    let map =
        unsafe { memmap2::Mmap::map(&file) }.map_err(|error| format!("cannot map: {error}"))?;
    let (meta, state) = check(&map)?;
    Ok(SnapshotFile {
        meta,
        bytes: FileBytes::Mapped(map),
        state,
    })
}

/// The snapshot directory of one node.
pub(crate) struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    /// Opens (creating) `dir`, and removes temporary files a crash left behind.
    pub(crate) fn open(dir: &Path) -> Result<SnapshotStore, String> {
        fs::create_dir_all(dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        let store = SnapshotStore {
            dir: dir.to_path_buf(),
        };
        for entry in store.read_dir()? {
            if entry.extension().is_some_and(|ext| ext == "tmp") {
                let _ = fs::remove_file(&entry);
            }
        }
        Ok(store)
    }

    fn read_dir(&self) -> Result<Vec<PathBuf>, String> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|error| format!("cannot list {}: {error}", self.dir.display()))?;
        Ok(entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect())
    }

    fn path_for(&self, index: LogIndex, term: Term) -> PathBuf {
        self.dir
            .join(format!("{FILE_PREFIX}{index:020}-{term:020}{FILE_SUFFIX}"))
    }

    /// The snapshot files by index, newest first.
    fn files_newest_first(&self) -> Result<Vec<(LogIndex, PathBuf)>, String> {
        let mut files: Vec<(LogIndex, PathBuf)> = self
            .read_dir()?
            .into_iter()
            .filter_map(|path| {
                let name = path.file_name()?.to_str()?;
                let stem = name.strip_prefix(FILE_PREFIX)?.strip_suffix(FILE_SUFFIX)?;
                let index = stem.split('-').next()?.parse().ok()?;
                Some((index, path))
            })
            .collect();
        files.sort_by_key(|file| std::cmp::Reverse(file.0));
        Ok(files)
    }

    /// Writes a snapshot durably, then removes all but the newest `SNAPSHOTS_KEPT`.
    #[cfg(test)]
    pub(crate) fn save(&self, meta: &SnapshotMeta, state: &[u8]) -> Result<PathBuf, String> {
        self.save_state(meta, state)
    }

    /// Writes the snapshot file of `state` (the state machine's snapshot) at `meta` durably:
    /// header, state and checksum streamed to a temporary file, then as `adopt`. Runs on the
    /// snapshot writer thread.
    pub(crate) fn save_state(&self, meta: &SnapshotMeta, state: &[u8]) -> Result<PathBuf, String> {
        let temporary = self.path_for(meta.index, meta.term).with_extension("tmp");
        let fail =
            |what: &str, error: std::io::Error| format!("{what} {}: {error}", temporary.display());
        let file = fs::File::create(&temporary).map_err(|e| fail("cannot create", e))?;
        let mut writer = std::io::BufWriter::new(file);
        let header = header(meta, state.len());
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&header);
        hasher.update(state);
        writer
            .write_all(&header)
            .and_then(|()| writer.write_all(state))
            .and_then(|()| writer.write_all(&hasher.finalize().to_le_bytes()))
            .and_then(|()| writer.flush())
            .map_err(|e| fail("cannot write", e))?;
        drop(writer);
        self.adopt(&temporary, meta.index, meta.term)
    }

    /// A temporary file's name for transfer number `number` being received (removed at the
    /// next open if a crash leaves it).
    pub(crate) fn incoming_path(&self, number: u64) -> PathBuf {
        self.dir.join(format!("incoming-{number}.tmp"))
    }

    /// Makes the complete snapshot file at `temporary` (in this directory) the snapshot at
    /// (`index`, `term`): synced, renamed into place, the directory synced; then removes all
    /// but the newest `SNAPSHOTS_KEPT`.
    pub(crate) fn adopt(
        &self,
        temporary: &Path,
        index: LogIndex,
        term: Term,
    ) -> Result<PathBuf, String> {
        let path = self.path_for(index, term);
        let fail =
            |what: &str, error: std::io::Error| format!("{what} {}: {error}", temporary.display());
        fs::File::open(temporary)
            .and_then(|file| file.sync_all())
            .map_err(|e| fail("cannot sync", e))?;
        fs::rename(temporary, &path).map_err(|e| fail("cannot rename", e))?;
        fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|error| format!("cannot sync {}: {error}", self.dir.display()))?;
        for (_, old) in self.files_newest_first()?.into_iter().skip(SNAPSHOTS_KEPT) {
            let _ = fs::remove_file(old);
        }
        Ok(path)
    }

    /// The newest snapshot file at `index`, if there is one (for a transfer).
    pub(crate) fn path_at(&self, index: LogIndex) -> Option<PathBuf> {
        let (_, path) = self
            .files_newest_first()
            .ok()?
            .into_iter()
            .find(|(file_index, _)| *file_index == index)?;
        Some(path)
    }

    /// The newest snapshot that reads back whole. Damaged files are reported (`warnings`) and
    /// skipped; nothing is deleted, so an operator can inspect them.
    pub(crate) fn load_newest(&self) -> Result<(Option<SnapshotFile>, Vec<String>), String> {
        let mut warnings = Vec::new();
        for (_, path) in self.files_newest_first()? {
            match map_file(&path) {
                Ok(file) => return Ok((Some(file), warnings)),
                Err(error) => warnings.push(format!("{}: {error}; skipped", path.display())),
            }
        }
        Ok((None, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::Membership;

    fn meta(index: LogIndex) -> SnapshotMeta {
        SnapshotMeta {
            index,
            term: 3,
            membership: Membership::with_voters(&[1, 2, 3]),
        }
    }

    #[test]
    fn files_round_trip_and_every_damage_is_refused() {
        let bytes = encode(&meta(7), b"state bytes");
        let file = decode(bytes.clone()).unwrap();
        assert_eq!(file.meta, meta(7));
        assert_eq!(file.state(), b"state bytes");
        for cut in 0..bytes.len() {
            assert!(decode(bytes[..cut].to_vec()).is_err(), "truncated at {cut}");
        }
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x40;
            assert!(decode(damaged).is_err(), "flipped byte {position}");
        }
    }

    #[test]
    fn the_newest_good_file_is_loaded_and_only_two_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        assert!(store.load_newest().unwrap().0.is_none());
        for index in [5, 9, 12] {
            store
                .save(&meta(index), format!("at {index}").as_bytes())
                .unwrap();
        }
        let names = store.files_newest_first().unwrap();
        assert_eq!(
            names.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![12, 9]
        );
        let (newest, warnings) = store.load_newest().unwrap();
        assert_eq!(newest.unwrap().meta.index, 12);
        assert!(warnings.is_empty());
        // Damage the newest: the older one is used, with a warning naming the file.
        let mut bytes = fs::read(&names[0].1).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        fs::write(&names[0].1, bytes).unwrap();
        let (fallback, warnings) = store.load_newest().unwrap();
        assert_eq!(fallback.unwrap().state(), b"at 9");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("checksum"), "{warnings:?}");
        assert_eq!(
            store
                .path_at(9)
                .map(|path| map_file(&path).unwrap().meta.index),
            Some(9)
        );
        // What save_state streams is what encode builds.
        assert_eq!(fs::read(&names[1].1).unwrap(), encode(&meta(9), b"at 9"));
    }
}
