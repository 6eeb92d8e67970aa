//! The applied map: ordered, lock-free (crossbeam-skiplist). The apply step is its only writer;
//! any thread reads it through a [`MapReader`] without locks.

use std::ops::Bound;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use crossbeam_skiplist::SkipMap;

use crate::command::Command;
use crate::result::{CommandError, CommandResult};

/// The shared map. Writes go through [`crate::StateMachine`] only, with [`put`] and `remove`.
pub(crate) type SharedMap = Arc<SkipMap<Bytes, ValueCell>>;

/// One key's value, replaced in place by an atomic pointer swap.
///
/// Why not just `SkipMap::insert` over the old entry: crossbeam-skiplist's insert of an
/// existing key first marks the old entry removed and only then links the new one, so a
/// reader in between finds no key at all (measured: most reads of a key under constant
/// overwrite saw it absent). Overwriting the cell of the entry that stays keeps the key present
/// for readers throughout: they see the old value or the new one.
pub(crate) struct ValueCell(ArcSwap<Bytes>);

impl ValueCell {
    pub(crate) fn new(value: Bytes) -> ValueCell {
        ValueCell(ArcSwap::from_pointee(value))
    }

    /// The current value (a reference-counted handle: no copy of the bytes).
    pub(crate) fn load(&self) -> Bytes {
        Bytes::clone(&self.0.load())
    }

    fn store(&self, value: Bytes) {
        self.0.store(Arc::new(value));
    }
}

/// Sets `key` to `value`: an existing key's cell is overwritten in place (readers never see it
/// absent), a new key is inserted. Only the single writer (apply) calls this, so nothing can
/// remove the entry between the lookup and the store.
pub(crate) fn put(map: &SkipMap<Bytes, ValueCell>, key: Bytes, value: Bytes) {
    match map.get(&key) {
        Some(entry) => entry.value().store(value),
        None => {
            map.insert(key, ValueCell::new(value));
        }
    }
}

/// Most pairs a range result preallocates room for; larger results grow as they fill.
const RANGE_PREALLOCATE_PAIRS_MAX: usize = 1024;

/// A read-only handle on the applied map: cheap to clone, `Send + Sync`.
///
/// A reader sees each applied command's effect whole (one key's value is replaced atomically),
/// but a read running while a batch is being applied may see part of the batch: linearizable
/// reads wait until the applied index covers their read index and are served between applies
/// on the same node only in that sense (see ARCHITECTURE.md, "Reads").
#[derive(Clone)]
pub struct MapReader {
    pub(crate) map: SharedMap,
}

impl MapReader {
    /// The value of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.map.get(key).map(|entry| entry.value().load())
    }

    /// Pairs with keys in `start..end` (`end: None`: unbounded), at most `limit`; `more` is true
    /// when pairs were left out.
    pub fn range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: u32,
    ) -> (Vec<(Bytes, Bytes)>, bool) {
        if let Some(end) = end {
            if start >= end {
                // An empty (or inverted) interval holds nothing; the skiplist is not asked.
                return (Vec::new(), false);
            }
        }
        let end_bound = end.map_or(Bound::Unbounded, Bound::Excluded);
        let mut entries = self
            .map
            .range::<[u8], _>((Bound::Included(start), end_bound));
        // Allocate for what is there at most, not for what was asked (`limit` is a client value).
        let mut pairs = Vec::with_capacity((limit as usize).min(RANGE_PREALLOCATE_PAIRS_MAX));
        for entry in entries.by_ref().take(limit as usize) {
            pairs.push((entry.key().clone(), entry.value().load()));
        }
        let more = entries.next().is_some();
        (pairs, more)
    }

    /// Answers a read-only command (`Get`, `Range`, or a batch of them) from the map.
    /// Anything else answers `CommandResult::Error(CommandError::Invalid)`.
    pub fn read(&self, command: &Command) -> CommandResult {
        match command {
            Command::Batch(commands) if command.is_read_only() => {
                CommandResult::Batch(commands.iter().map(|inner| self.read(inner)).collect())
            }
            Command::Get { key } => CommandResult::Value(self.get(key)),
            Command::Range { start, end, limit } => {
                let (pairs, more) = self.range(start, end.as_deref(), *limit);
                CommandResult::Range { pairs, more }
            }
            other => CommandResult::Error(CommandError::Invalid {
                reason: format!(
                    "{} is not read-only; writes go through the log, not the read path",
                    other.name()
                ),
            }),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when the map holds no key.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Overwrites of one key while another thread reads it: every read must find the key (the
    /// old or the new value). `SkipMap::insert` over the existing entry failed this with most
    /// reads absent.
    #[test]
    fn a_key_being_overwritten_is_never_read_as_absent() {
        const OVERWRITES: u32 = 200_000;
        let map: SharedMap = Arc::new(SkipMap::new());
        put(
            &map,
            Bytes::from_static(b"k"),
            Bytes::from_static(b"initial"),
        );
        let reader = MapReader { map: map.clone() };
        let writer_done = Arc::new(AtomicBool::new(false));
        let done = writer_done.clone();
        let reads = std::thread::spawn(move || {
            let (mut absent, mut reads) = (0u64, 0u64);
            // Bounded by the writer: it stops once the overwrites are done.
            while !done.load(Ordering::Acquire) {
                reads += 1;
                if reader.get(b"k").is_none() {
                    absent += 1;
                }
            }
            (absent, reads)
        });
        for write in 0..OVERWRITES {
            put(
                &map,
                Bytes::from_static(b"k"),
                Bytes::from(write.to_le_bytes().to_vec()),
            );
        }
        writer_done.store(true, Ordering::Release);
        let (absent, reads) = reads.join().expect("reader thread");
        assert_eq!(absent, 0, "{absent} of {reads} reads found the key absent");
        assert_eq!(
            MapReader { map: map.clone() }.get(b"k").as_deref(),
            Some(&(OVERWRITES - 1).to_le_bytes()[..])
        );
        assert_eq!(map.len(), 1, "an overwrite must not add a second entry");
    }

    #[test]
    fn put_inserts_new_keys_and_range_reads_current_values() {
        let map: SharedMap = Arc::new(SkipMap::new());
        put(&map, Bytes::from_static(b"a"), Bytes::from_static(b"1"));
        put(&map, Bytes::from_static(b"b"), Bytes::from_static(b"2"));
        put(&map, Bytes::from_static(b"a"), Bytes::from_static(b"3"));
        let (pairs, more) = MapReader { map }.range(b"a", None, 10);
        assert!(!more);
        assert_eq!(
            pairs,
            vec![
                (Bytes::from_static(b"a"), Bytes::from_static(b"3")),
                (Bytes::from_static(b"b"), Bytes::from_static(b"2"))
            ]
        );
    }
}
