//! The log itself: the in-memory view the Raft node reads and mutates synchronously (the
//! "front"), and one background task (the "flusher") that turns the queued mutations into
//! writes and syncs, group-committing everything that queued up while the previous sync ran.
//!
//! Ordering is decided at call time: every mutating call updates the in-memory view at once and
//! queues its disk work behind everything queued before it; the returned [`Durable`] future
//! resolves once that work (and everything before it) is on stable storage.

use std::{
    cell::RefCell,
    collections::{HashMap, VecDeque},
    fmt,
    future::Future,
    ops::Range,
    path::{Path, PathBuf},
    pin::Pin,
    rc::Rc,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use memmap2::Mmap;

use crate::{
    error::{Result, WalError},
    format::{
        self, HardState, HardStateSlot, SegmentHeader, HARD_STATE_SLOT_BYTES, MARKER_BYTES,
        RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES,
    },
    io::{self, DiskFile, FaultHook, FileKind, Task},
    recovery::{self, segment_file_name, HARD_STATE_FILE},
};

/// Settings of a [`Wal`].
#[derive(Clone)]
pub struct WalOptions {
    /// Size of each segment file in bytes, preallocated with zeros. A multiple of 4096, at least
    /// 8192 and at most 4 GiB - 4 KiB. An entry must fit in one segment with its 24-byte record
    /// header and the 32-byte segment header. Default 64 MiB.
    pub segment_bytes: usize,
    /// The most bytes handed to one write call; a larger group goes out as several writes
    /// followed by one sync. A multiple of 4096. Default 1 MiB.
    pub batch_bytes_max: usize,
    /// Called before every write and sync, to inject failures in tests. Default none.
    pub fault_hook: Option<FaultHook>,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: 64 << 20,
            batch_bytes_max: 1 << 20,
            fault_hook: None,
        }
    }
}

impl fmt::Debug for WalOptions {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WalOptions")
            .field("segment_bytes", &self.segment_bytes)
            .field("batch_bytes_max", &self.batch_bytes_max)
            .field("fault_hook", &self.fault_hook.is_some())
            .finish()
    }
}

/// The largest `segment_bytes` accepted: record offsets are kept as u32.
const SEGMENT_BYTES_MAX: usize = (u32::MAX as usize) - 4095;

impl WalOptions {
    fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(WalError::Options { what });
        if self.segment_bytes % 4096 != 0
            || self.segment_bytes < 8192
            || self.segment_bytes > SEGMENT_BYTES_MAX
        {
            return bad(format!(
                "segment_bytes is {}, must be a multiple of 4096 in [8192, {SEGMENT_BYTES_MAX}]",
                self.segment_bytes
            ));
        }
        if self.batch_bytes_max % 4096 != 0 || self.batch_bytes_max == 0 {
            return bad(format!(
                "batch_bytes_max is {}, must be a positive multiple of 4096",
                self.batch_bytes_max
            ));
        }
        Ok(())
    }
}

/// One log entry: opaque bytes with the index and term Raft gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's position in the log, starting at 1.
    pub index: u64,
    /// The term in which a leader created the entry.
    pub term: u64,
    /// The entry's contents, opaque to the WAL.
    pub payload: Vec<u8>,
}

/// What [`Wal::open`] found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The last durably saved hard state, or `None` if none was ever saved.
    pub hard_state: Option<HardState>,
    /// The first index the log holds (read the entries with [`Wal::read_range`]): 1 for a new
    /// log, the first index of the oldest segment after a compaction, the restart's index after
    /// [`Wal::restart_at`] (also while the log is empty).
    pub first_index: u64,
    /// The last index the log holds (`first_index - 1` when empty).
    pub last_index: u64,
    /// If a torn (never acknowledged) record was cut off the tail: the file and byte offset.
    pub torn_tail: Option<(PathBuf, u64)>,
}

/// Counters of the disk work done so far, for benchmarks and monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Group commits completed: each is one or more writes followed by the syncs they need.
    pub groups: u64,
    /// Bytes handed to segment writes (including the rewritten partial block and padding).
    pub segment_bytes_written: u64,
    /// Segment fdatasyncs completed.
    pub segment_syncs: u64,
    /// Total time spent inside group commits, from the first write to the last sync returning.
    pub flush_busy: std::time::Duration,
}

/// Where an entry is: its term and its record's place in its segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryMeta {
    pub term: u64,
    pub offset: u32,
    pub payload_bytes: u32,
}

/// A segment's bytes: the active segment (and sealed ones not yet fully written) in memory,
/// sealed segments mapped from their file.
pub(crate) enum SegmentBytes {
    Memory(Vec<u8>),
    Mapped(Mmap),
}

impl SegmentBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            SegmentBytes::Memory(bytes) => bytes,
            SegmentBytes::Mapped(map) => map,
        }
    }
}

/// One segment file as the front sees it.
pub(crate) struct Segment {
    pub seq: u64,
    pub first_index: u64,
    /// The file's final path (a new segment lives under a temporary name until its first sync).
    pub path: PathBuf,
    /// Bytes the file holds (it was preallocated to this size).
    pub capacity: usize,
    /// End of the header and records.
    pub data_end: usize,
    /// How many bytes were known written when the segment was loaded (for the flusher).
    pub disk_end: usize,
    /// Whether the file exists under its final name.
    pub on_disk: bool,
    /// Where the bytes not yet closed by a commit marker start.
    pub group_start: usize,
    pub bytes: SegmentBytes,
}

impl Segment {
    /// The in-memory bytes, copying a mapped segment back into memory first (only a suffix
    /// truncation into a sealed segment does that).
    fn memory_mut(&mut self) -> &mut Vec<u8> {
        if let SegmentBytes::Mapped(map) = &self.bytes {
            self.bytes = SegmentBytes::Memory(map[..self.data_end].to_vec());
        }
        match &mut self.bytes {
            SegmentBytes::Memory(bytes) => bytes,
            SegmentBytes::Mapped(_) => unreachable!("converted to memory just above"),
        }
    }
}

/// Disk work queued by the front for the flusher.
enum Operation {
    /// Write segment `seq`'s bytes up to byte `end`.
    Write { seq: u64, end: usize },
    /// Remove segments `remove` (newest first), then zero segment `seq` from `offset` to
    /// `zero_end`.
    Truncate {
        seq: u64,
        offset: usize,
        zero_end: usize,
        remove: Vec<(u64, PathBuf)>,
    },
    /// Remove whole segments at the front of the log (oldest first).
    Remove {
        segments: Vec<(u64, PathBuf)>,
        oldest_remaining: u64,
    },
    /// Restart the log: create segment `seq`, empty, starting at `first_index`, then remove
    /// segments `remove` (every older one, oldest first).
    Restart {
        seq: u64,
        first_index: u64,
        remove: Vec<(u64, PathBuf)>,
    },
    /// Write the hard state.
    HardState(HardState),
}

struct Queued {
    ticket: u64,
    operation: Operation,
}

struct State {
    directory: PathBuf,
    segment_bytes: usize,
    segments: VecDeque<Segment>,
    /// `entries[k]` is the entry at index `first_index + k`.
    entries: VecDeque<EntryMeta>,
    first_index: u64,
    next_seq: u64,
    hard_state: HardState,
    queue: Vec<Queued>,
    /// The ticket the next mutating call gets; tickets start at 1.
    next_ticket: u64,
    /// Every ticket up to this one is durable.
    done_ticket: u64,
    /// The failure that poisoned the log, and the last ticket of the batch it failed.
    failure: Option<(Arc<WalError>, u64)>,
    waiters: Vec<Waker>,
    flusher_waker: Option<Waker>,
    closing: bool,
    stats: WalStats,
}

impl State {
    fn last_index(&self) -> u64 {
        self.first_index + self.entries.len() as u64 - 1
    }

    fn poisoned(&self) -> Option<WalError> {
        self.failure.as_ref().map(|(cause, _)| WalError::Poisoned {
            cause: cause.clone(),
        })
    }

    fn take_ticket(&mut self) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        ticket
    }

    fn enqueue(&mut self, ticket: u64, operation: Operation) {
        // Appends to the same segment coalesce into one write of the newest end.
        if let (Operation::Write { seq, end }, Some(last)) = (&operation, self.queue.last_mut()) {
            if let Operation::Write {
                seq: last_seq,
                end: last_end,
            } = &mut last.operation
            {
                if last_seq == seq {
                    *last_end = *end;
                    last.ticket = ticket;
                    return;
                }
            }
        }
        self.queue.push(Queued { ticket, operation });
        if let Some(waker) = self.flusher_waker.take() {
            waker.wake();
        }
    }

    /// The position in `segments` of the segment holding `index`.
    fn segment_of(&self, index: u64) -> usize {
        self.segments
            .partition_point(|segment| segment.first_index <= index)
            .saturating_sub(1)
    }

    fn check_index(&self, index: u64) -> Result<()> {
        if index < self.first_index || index > self.last_index() {
            return Err(WalError::OutOfRange {
                index,
                first_index: self.first_index,
                last_index: self.last_index(),
            });
        }
        Ok(())
    }

    /// Adds a new, empty segment (not yet on disk) whose first record will be `first_index`,
    /// and returns its seq.
    fn push_segment(&mut self, first_index: u64) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut bytes = Vec::with_capacity(self.segment_bytes);
        bytes.extend_from_slice(&SegmentHeader { seq, first_index }.encode());
        self.segments.push_back(Segment {
            seq,
            first_index,
            path: self.directory.join(segment_file_name(seq)),
            capacity: self.segment_bytes,
            data_end: SEGMENT_HEADER_BYTES,
            disk_end: 0,
            on_disk: false,
            group_start: SEGMENT_HEADER_BYTES,
            bytes: SegmentBytes::Memory(bytes),
        });
        seq
    }

    fn push_entry(&mut self, entry: &Entry) -> u64 {
        let record_bytes = format::record_bytes(entry.payload.len());
        // Room for the record and for the commit marker that will close its group.
        let rotate = self.segments.back().is_none_or(|segment| {
            segment.data_end + record_bytes + MARKER_BYTES > segment.capacity
        });
        if rotate {
            self.push_segment(entry.index);
        }
        let Some(segment) = self.segments.back_mut() else {
            unreachable!("a segment was pushed just above")
        };
        let memory = segment.memory_mut();
        let offset = memory.len();
        format::encode_record(memory, entry.index, entry.term, &entry.payload);
        segment.data_end = memory.len();
        self.entries.push_back(EntryMeta {
            term: entry.term,
            offset: offset as u32,
            payload_bytes: entry.payload.len() as u32,
        });
        segment.seq
    }

    fn read_entry(&self, index: u64) -> Result<Entry> {
        self.check_index(index)?;
        let meta = self.entries[(index - self.first_index) as usize];
        let segment = &self.segments[self.segment_of(index)];
        let start = meta.offset as usize + RECORD_HEADER_BYTES;
        let payload = segment
            .bytes
            .as_slice()
            .get(start..start + meta.payload_bytes as usize)
            .ok_or_else(|| {
                WalError::corrupt(
                    &segment.path,
                    meta.offset as u64,
                    "record lies past the end of the mapped segment (was the file shortened?)",
                )
            })?;
        Ok(Entry {
            index,
            term: meta.term,
            payload: payload.to_vec(),
        })
    }
}

/// The write-ahead log. Use it from the glommio executor that opened it; it is not `Send`.
/// Open one `Wal` per directory at a time, and [`Wal::close`] it before reopening.
pub struct Wal {
    shared: Rc<RefCell<State>>,
    flusher: Option<Task<()>>,
}

impl Wal {
    /// Opens (creating if needed) the log in `directory`, replaying and checking every segment.
    /// Must run inside a glommio executor. Fails with [`WalError::Corrupt`] on damage that could
    /// mean a lost acknowledged entry.
    pub async fn open(
        directory: impl AsRef<Path>,
        options: WalOptions,
    ) -> Result<(Wal, Recovered)> {
        options.validate()?;
        let directory = directory.as_ref().to_path_buf();
        std::fs::create_dir_all(&directory)
            .map_err(|error| WalError::io("create directory", &directory, 0, error))?;
        let lock = io::lock_directory(&directory)?;
        let log = recovery::recover(&directory)?;
        let hard_state_file = open_hard_state_file(&directory, options.fault_hook.clone()).await?;
        let recovered = Recovered {
            hard_state: log.hard_state.and_then(|slot| slot.state),
            first_index: log.first_index,
            last_index: log.first_index + log.entries.len() as u64 - 1,
            torn_tail: log.torn_tail.clone(),
        };
        let state = State {
            directory: directory.clone(),
            segment_bytes: options.segment_bytes,
            segments: log.segments.into(),
            entries: log.entries,
            first_index: log.first_index,
            next_seq: log.next_seq,
            hard_state: recovered.hard_state.unwrap_or_default(),
            queue: Vec::new(),
            next_ticket: 1,
            done_ticket: 0,
            failure: None,
            waiters: Vec::new(),
            flusher_waker: None,
            closing: false,
            stats: WalStats::default(),
        };
        let shared = Rc::new(RefCell::new(state));
        let mut disk = Disk {
            directory,
            options,
            files: HashMap::new(),
            spare: None,
            spares_made: 0,
            hard_state_file,
            hard_state_sequence: log.hard_state.map_or(0, |slot| slot.sequence),
            hard_state_written: recovered.hard_state,
            segment_range: log.hard_state.and_then(|slot| slot.segments),
            restart_seq: None,
            hard_state_dirty: false,
            _lock: lock,
        };
        let on_disk_range = shared
            .borrow()
            .segments
            .front()
            .zip(shared.borrow().segments.back())
            .map(|(first, last)| (first.seq, last.seq));
        let truncating = log.hard_state.is_some_and(|slot| slot.truncation.is_some());
        let restarting = log.hard_state.is_some_and(|slot| slot.restart.is_some());
        if truncating || restarting || on_disk_range != disk.segment_range {
            // Recovery finished an interrupted truncation, compaction or restart (or kept the
            // old log of a restart that never named its segment): record what is on disk and
            // clear the markers before anything is appended, or a later recovery would cut
            // those appends off (truncation) or take a later segment for the restart's.
            disk.segment_range = on_disk_range;
            disk.write_hard_state_slot(None).await?;
            disk.hard_state_file.sync().await?;
            disk.hard_state_dirty = false;
        }
        disk.start_spare();
        let flusher = io::spawn(run_flusher(shared.clone(), disk));
        Ok((
            Wal {
                shared,
                flusher: Some(flusher),
            },
            recovered,
        ))
    }

    /// Appends entries, which must continue the log (the first index is `last_index() + 1`,
    /// indexes consecutive, terms never decreasing). They are readable at once; the returned
    /// future resolves to "durable through index i" once they are on stable storage. Errors
    /// (invalid entries, a poisoned log) come out of the future.
    pub fn append(&self, entries: &[Entry]) -> Durable {
        let mut state = self.shared.borrow_mut();
        if let Some(error) = state.poisoned() {
            return self.ready(Err(error));
        }
        if let Err(error) = check_entries(&state, entries) {
            return self.ready(Err(error));
        }
        if entries.is_empty() {
            let (ticket, value) = (state.next_ticket - 1, state.last_index());
            return self.waiting(ticket, value);
        }
        let ticket = state.take_ticket();
        let mut touched: Option<u64> = None;
        for entry in entries {
            let seq = state.push_entry(entry);
            if let Some(touched_seq) = touched.filter(|touched_seq| *touched_seq != seq) {
                // The entries rotated into a new segment: the old one must be written first.
                state.enqueue(
                    ticket,
                    Operation::Write {
                        seq: touched_seq,
                        end: usize::MAX,
                    },
                );
            }
            touched = Some(seq);
        }
        if let Some(seq) = touched {
            // `end` is set when the flusher takes the batch and closes the group.
            state.enqueue(
                ticket,
                Operation::Write {
                    seq,
                    end: usize::MAX,
                },
            );
        }
        let value = state.last_index();
        drop(state);
        self.waiting(ticket, value)
    }

    /// Durably saves Raft's hard state; the future resolves once it is on stable storage.
    /// A crash leaves either this value or the previous one, never a mix.
    pub fn save_hard_state(&self, hard_state: HardState) -> Durable {
        let mut state = self.shared.borrow_mut();
        if let Some(error) = state.poisoned() {
            return self.ready(Err(error));
        }
        state.hard_state = hard_state;
        let ticket = state.take_ticket();
        state.enqueue(ticket, Operation::HardState(hard_state));
        let value = state.last_index();
        drop(state);
        self.waiting(ticket, value)
    }

    /// Removes every entry from index `from` on (Raft does this when a leader's log conflicts).
    /// Takes effect in memory at once; appends made after this call are acknowledged only after
    /// the truncation is durable. `from` must be in `[first_index, last_index + 1]`.
    pub fn truncate_suffix(&self, from: u64) -> Durable {
        let mut state = self.shared.borrow_mut();
        if let Some(error) = state.poisoned() {
            return self.ready(Err(error));
        }
        let last_index = state.last_index();
        if from == last_index + 1 {
            let ticket = state.next_ticket - 1;
            return self.waiting(ticket, last_index);
        }
        if let Err(error) = state.check_index(from) {
            return self.ready(Err(error));
        }
        let meta = state.entries[(from - state.first_index) as usize];
        let position = state.segment_of(from);
        let remove: Vec<(u64, PathBuf)> = state
            .segments
            .drain(position + 1..)
            .map(|segment| (segment.seq, segment.path))
            .collect();
        let segment = &mut state.segments[position];
        let zero_end = segment.data_end;
        let offset = meta.offset as usize;
        segment.memory_mut().truncate(offset);
        segment.data_end = offset;
        segment.group_start = segment.group_start.min(offset);
        let seq = segment.seq;
        let keep = (from - state.first_index) as usize;
        state.entries.truncate(keep);
        let ticket = state.take_ticket();
        state.enqueue(
            ticket,
            Operation::Truncate {
                seq,
                offset,
                zero_end,
                remove,
            },
        );
        drop(state);
        self.waiting(ticket, from - 1)
    }

    /// Drops the log's prefix through `index` where whole segments allow: every segment whose
    /// entries are all at or below `index` is deleted (never the last segment). `first_index()`
    /// afterwards may still be at or below `index`. The future resolves once the files are gone.
    pub fn compact_through(&self, index: u64) -> Durable {
        let mut state = self.shared.borrow_mut();
        if let Some(error) = state.poisoned() {
            return self.ready(Err(error));
        }
        let mut segments = Vec::new();
        while state.segments.len() >= 2 && state.segments[1].first_index <= index.saturating_add(1)
        {
            let Some(segment) = state.segments.pop_front() else {
                break;
            };
            let next_first = state.segments[0].first_index;
            let count = (next_first - segment.first_index) as usize;
            let drop_count = count.min(state.entries.len());
            state.entries.drain(..drop_count);
            state.first_index = next_first;
            segments.push((segment.seq, segment.path));
        }
        let value = state.last_index();
        if segments.is_empty() {
            let ticket = state.next_ticket - 1;
            return self.waiting(ticket, value);
        }
        let ticket = state.take_ticket();
        let oldest_remaining = state.segments[0].seq;
        state.enqueue(
            ticket,
            Operation::Remove {
                segments,
                oldest_remaining,
            },
        );
        drop(state);
        self.waiting(ticket, value)
    }

    /// Discards every entry and restarts the log empty, so that the next entry appended must
    /// have index `next_index` (at least 1; it may lie below, within or above the current log).
    /// Raft does this after installing a snapshot through `next_index - 1` that the log does not
    /// match. Afterwards `first_index()` is `next_index` and `last_index()` is `next_index - 1`;
    /// the hard state is kept.
    ///
    /// Takes effect in memory at once, and its disk work queues behind earlier calls, like
    /// [`Wal::truncate_suffix`]: appends made after this call (starting at `next_index`) are
    /// acknowledged only after the restart is durable. The future resolves to `next_index - 1`
    /// once it is; errors (`next_index` 0, a poisoned log, a failed write or sync) come out of
    /// it instead. A crash at any point leaves either the whole old log or the new empty one:
    /// a marker naming the new segment is made durable in the hard-state file first, then the
    /// new segment is written, synced and named, then the marker is cleared and the old
    /// segments are removed; recovery finishes a restart whose segment has its name.
    pub fn restart_at(&self, next_index: u64) -> Durable {
        let mut state = self.shared.borrow_mut();
        if let Some(error) = state.poisoned() {
            return self.ready(Err(error));
        }
        if next_index == 0 {
            return self.ready(Err(WalError::invalid(
                "restart_at(0): indexes start at 1, so the next index is at least 1",
            )));
        }
        let remove: Vec<(u64, PathBuf)> = state
            .segments
            .drain(..)
            .map(|segment| (segment.seq, segment.path))
            .collect();
        state.entries.clear();
        state.first_index = next_index;
        let seq = state.push_segment(next_index);
        let ticket = state.take_ticket();
        state.enqueue(
            ticket,
            Operation::Restart {
                seq,
                first_index: next_index,
                remove,
            },
        );
        drop(state);
        self.waiting(ticket, next_index - 1)
    }

    /// The entries with indexes in `range` (which must lie within the log).
    pub fn read_range(&self, range: Range<u64>) -> Result<Vec<Entry>> {
        let state = self.shared.borrow();
        range.map(|index| state.read_entry(index)).collect()
    }

    /// The term of the entry at `index`.
    pub fn term_at(&self, index: u64) -> Result<u64> {
        let state = self.shared.borrow();
        state.check_index(index)?;
        Ok(state.entries[(index - state.first_index) as usize].term)
    }

    /// The first index the log holds; when the log is empty, the index the next append must
    /// have (1, or where [`Wal::restart_at`] restarted it).
    pub fn first_index(&self) -> u64 {
        self.shared.borrow().first_index
    }

    /// The last index the log holds (`first_index() - 1` when empty); includes entries whose
    /// durability is still pending.
    pub fn last_index(&self) -> u64 {
        self.shared.borrow().last_index()
    }

    /// Counters of the disk work done so far.
    pub fn stats(&self) -> WalStats {
        self.shared.borrow().stats
    }

    /// The hard state most recently passed to [`Wal::save_hard_state`] (or recovered).
    pub fn hard_state(&self) -> HardState {
        self.shared.borrow().hard_state
    }

    /// Waits for all queued work, stops the background task and closes the files. Reports the
    /// failure that poisoned the log, if any.
    pub async fn close(mut self) -> Result<()> {
        self.shared.borrow_mut().closing = true;
        wake_flusher(&self.shared);
        if let Some(flusher) = self.flusher.take() {
            flusher.await;
        }
        let state = self.shared.borrow();
        match &state.failure {
            Some((cause, _)) => Err(WalError::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    fn ready(&self, outcome: Result<u64>) -> Durable {
        Durable {
            shared: self.shared.clone(),
            ticket: 0,
            value: 0,
            outcome: Some(outcome),
        }
    }

    fn waiting(&self, ticket: u64, value: u64) -> Durable {
        Durable {
            shared: self.shared.clone(),
            ticket,
            value,
            outcome: None,
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        // Without close(): let the flusher finish the queued work in the background.
        if let Some(flusher) = self.flusher.take() {
            self.shared.borrow_mut().closing = true;
            wake_flusher(&self.shared);
            flusher.detach();
        }
    }
}

fn wake_flusher(shared: &Rc<RefCell<State>>) {
    let waker = shared.borrow_mut().flusher_waker.take();
    if let Some(waker) = waker {
        waker.wake();
    }
}

fn check_entries(state: &State, entries: &[Entry]) -> Result<()> {
    let mut term_before = state.entries.back().map_or(0, |meta| meta.term);
    let record_bytes_max = state.segment_bytes - SEGMENT_HEADER_BYTES - MARKER_BYTES;
    for (expected, entry) in (state.last_index() + 1..).zip(entries) {
        if entry.index != expected {
            return Err(WalError::invalid(format!(
                "entry index {} does not continue the log (expected {expected})",
                entry.index
            )));
        }
        if entry.term < term_before {
            return Err(WalError::invalid(format!(
                "entry {} has term {}, below the previous entry's term {term_before}",
                entry.index, entry.term
            )));
        }
        if format::record_bytes(entry.payload.len()) > record_bytes_max {
            return Err(WalError::invalid(format!(
                "entry {} has {} payload bytes; with its {RECORD_HEADER_BYTES}-byte record header it exceeds the {record_bytes_max} bytes a segment holds (segment_bytes {})",
                entry.index,
                entry.payload.len(),
                state.segment_bytes
            )));
        }
        term_before = entry.term;
    }
    Ok(())
}

/// A future that resolves once a request is durable: `Ok(i)` where `i` is the last index of
/// the log when the request was made ("durable through index i" for an append), or the error
/// that kept it from being durable. Never reports durable after a failed write or sync.
#[must_use = "an append is acknowledged only when this future resolves"]
pub struct Durable {
    shared: Rc<RefCell<State>>,
    ticket: u64,
    value: u64,
    outcome: Option<Result<u64>>,
}

impl Future for Durable {
    type Output = Result<u64>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(outcome) = self.outcome.take() {
            return Poll::Ready(outcome);
        }
        let mut state = self.shared.borrow_mut();
        if state.done_ticket >= self.ticket {
            return Poll::Ready(Ok(self.value));
        }
        if let Some((cause, failed_through)) = &state.failure {
            let error = if self.ticket <= *failed_through {
                (**cause).clone()
            } else {
                WalError::Poisoned {
                    cause: cause.clone(),
                }
            };
            return Poll::Ready(Err(error));
        }
        state.waiters.push(context.waker().clone());
        Poll::Pending
    }
}

async fn open_hard_state_file(directory: &Path, hook: Option<FaultHook>) -> Result<DiskFile> {
    let path = directory.join(HARD_STATE_FILE);
    if path.exists() {
        return DiskFile::open(&path, FileKind::HardState, hook).await;
    }
    // Create it with both slots empty, durably, so later saves only ever overwrite one slot.
    let file = DiskFile::create(&path, FileKind::HardState, hook).await?;
    file.write_filled(0, 2 * HARD_STATE_SLOT_BYTES, |buffer| buffer.fill(0))
        .await?;
    file.sync().await?;
    io::sync_directory(directory)?;
    Ok(file)
}

/// A segment file the flusher has open.
struct OpenSegment {
    file: DiskFile,
    /// Bytes written so far (the next write starts at the block holding this offset).
    written_end: usize,
    dirty: bool,
    /// For a new segment still under its temporary name: the final name, given after its first
    /// sync so that a segment never appears under its final name before its header is durable.
    rename_to: Option<PathBuf>,
}

/// The flusher's side: open files, the spare segment being preallocated, the hard-state file.
struct Disk {
    directory: PathBuf,
    options: WalOptions,
    files: HashMap<u64, OpenSegment>,
    spare: Option<Task<Result<DiskFile>>>,
    spares_made: u64,
    hard_state_file: DiskFile,
    hard_state_sequence: u64,
    /// The hard state in the newest slot written.
    hard_state_written: Option<HardState>,
    /// The oldest and newest segment seq recorded in the hard-state file.
    segment_range: Option<(u64, u64)>,
    /// The restart marker written with every slot: set only while a restart runs.
    restart_seq: Option<u64>,
    hard_state_dirty: bool,
    /// The directory lock, held until the flusher has finished all queued work.
    _lock: std::fs::File,
}

async fn run_flusher(shared: Rc<RefCell<State>>, mut disk: Disk) {
    loop {
        let batch = futures_lite::future::poll_fn(|context| {
            let mut state = shared.borrow_mut();
            if !state.queue.is_empty() {
                let mut batch = std::mem::take(&mut state.queue);
                close_groups(&mut state, &mut batch);
                Poll::Ready(Some(batch))
            } else if state.closing {
                Poll::Ready(None)
            } else {
                state.flusher_waker = Some(context.waker().clone());
                Poll::Pending
            }
        })
        .await;
        let Some(batch) = batch else { break };
        let ticket_max = batch.iter().map(|queued| queued.ticket).max().unwrap_or(0);
        let started = std::time::Instant::now();
        let outcome = disk.execute(&shared, batch).await;
        if !publish(&shared, outcome, ticket_max, started.elapsed()) {
            break;
        }
        disk.map_sealed_segments(&shared).await;
    }
    disk.shutdown().await;
}

/// Ends the group commit being taken: appends a commit marker after the new bytes of every
/// segment the batch writes, and makes the batch write exactly through it (records appended
/// while this group is in flight belong to the next group).
fn close_groups(state: &mut State, batch: &mut [Queued]) {
    for queued in batch.iter_mut() {
        let Operation::Write { seq, end } = &mut queued.operation else {
            continue;
        };
        let Some(segment) = state
            .segments
            .iter_mut()
            .find(|segment| segment.seq == *seq)
        else {
            continue;
        };
        if let SegmentBytes::Mapped(_) = segment.bytes {
            // Sealed and fully written already: nothing to add.
            continue;
        }
        let group_start = segment.group_start;
        let memory = segment.memory_mut();
        if group_start < memory.len() {
            format::encode_marker(memory, group_start);
        }
        let closed_end = memory.len();
        segment.data_end = closed_end;
        segment.group_start = closed_end;
        *end = closed_end;
    }
}

/// Records a group's outcome and wakes every waiter; false if the group failed (the log is now
/// poisoned and the flusher stops).
fn publish(
    shared: &Rc<RefCell<State>>,
    outcome: Result<()>,
    ticket_max: u64,
    busy: std::time::Duration,
) -> bool {
    let mut state = shared.borrow_mut();
    state.stats.groups += 1;
    state.stats.flush_busy += busy;
    match outcome {
        Ok(()) => state.done_ticket = state.done_ticket.max(ticket_max),
        Err(error) => {
            tracing::error!(%error, "WAL write failed; the log is poisoned until reopened");
            state.failure = Some((Arc::new(error), ticket_max));
        }
    }
    for waker in state.waiters.drain(..) {
        waker.wake();
    }
    state.failure.is_none()
}

impl Disk {
    async fn execute(&mut self, shared: &Rc<RefCell<State>>, batch: Vec<Queued>) -> Result<()> {
        for queued in batch {
            match queued.operation {
                Operation::Write { seq, end } => self.write_segment(shared, seq, end).await?,
                Operation::HardState(hard_state) => {
                    self.hard_state_written = Some(hard_state);
                    self.write_hard_state_slot(None).await?;
                }
                Operation::Truncate {
                    seq,
                    offset,
                    zero_end,
                    remove,
                } => {
                    self.finish_group(shared).await?;
                    // Make the truncation durable first, so a crash while removing or zeroing
                    // (which can leave old complete groups after zeros) is finished by recovery
                    // instead of looking like damage.
                    self.segment_range = self
                        .segment_range
                        .map(|(oldest, newest)| (oldest, newest.min(seq)));
                    self.write_hard_state_slot(Some((seq, offset as u64)))
                        .await?;
                    self.finish_group(shared).await?;
                    for (seq, path) in remove.iter().rev() {
                        self.remove_segment(*seq, path).await?;
                    }
                    self.zero_from(shared, seq, offset, zero_end).await?;
                    // Cleared before any later append can be acknowledged: later groups sync it.
                    self.write_hard_state_slot(None).await?;
                }
                Operation::Remove {
                    segments,
                    oldest_remaining,
                } => {
                    self.finish_group(shared).await?;
                    // Record the new oldest segment first: recovery removes anything older that a
                    // crash left behind, and reports a missing oldest segment.
                    self.segment_range = self
                        .segment_range
                        .map(|(_, newest)| (oldest_remaining, newest));
                    self.write_hard_state_slot(None).await?;
                    self.finish_group(shared).await?;
                    for (seq, path) in &segments {
                        self.remove_segment(*seq, path).await?;
                    }
                }
                Operation::Restart {
                    seq,
                    first_index,
                    remove,
                } => self.restart(shared, seq, first_index, &remove).await?,
            }
        }
        self.finish_group(shared).await
    }

    /// Carries out a restart of the log at segment `seq`. The order makes every crash point
    /// recover to the old log or the new one: the marker is durable before the new segment has
    /// a name, the name is durable before the marker is cleared, and the marker is cleared
    /// (with the segment range now starting at `seq`) before any old segment is removed.
    async fn restart(
        &mut self,
        shared: &Rc<RefCell<State>>,
        seq: u64,
        first_index: u64,
        remove: &[(u64, PathBuf)],
    ) -> Result<()> {
        // Everything queued before the restart is durable (and named) first.
        self.finish_group(shared).await?;
        self.restart_seq = Some(seq);
        self.write_hard_state_slot(None).await?;
        self.finish_group(shared).await?;
        self.create_empty_segment(shared, seq, first_index).await?;
        self.restart_seq = None;
        self.segment_range = Some((seq, seq));
        self.write_hard_state_slot(None).await?;
        self.finish_group(shared).await?;
        for (old_seq, path) in remove {
            self.remove_segment(*old_seq, path).await?;
        }
        Ok(())
    }

    /// Writes segment `seq`'s header (no records) into a preallocated file, syncs it, and
    /// gives it its final name durably. Writes the header itself rather than the front's bytes:
    /// a later call (another restart, or a compaction once appends rotated past it) may already
    /// have dropped this segment from the front, and its file must exist anyway: the marker
    /// written before names it, and that later call's queued work removes it.
    async fn create_empty_segment(
        &mut self,
        shared: &Rc<RefCell<State>>,
        seq: u64,
        first_index: u64,
    ) -> Result<()> {
        let mut file = self.take_spare().await?;
        let header = SegmentHeader { seq, first_index }.encode();
        file.write_filled(0, SEGMENT_HEADER_BYTES, |buffer| {
            buffer.copy_from_slice(&header)
        })
        .await?;
        file.sync().await?;
        let path = self.directory.join(segment_file_name(seq));
        file.rename(&path).await?;
        io::sync_directory_off_thread(&self.directory).await?;
        let still_in_log = {
            let mut state = shared.borrow_mut();
            state.stats.segment_bytes_written += file.alignment() as u64;
            state.stats.segment_syncs += 1;
            let segment = state.segments.iter_mut().find(|segment| segment.seq == seq);
            segment.map(|segment| segment.on_disk = true).is_some()
        };
        if still_in_log {
            let open = OpenSegment {
                file,
                written_end: SEGMENT_HEADER_BYTES,
                dirty: false,
                rename_to: None,
            };
            self.files.insert(seq, open);
        } else {
            // Dropped from the log by a later call already, whose queued work removes the file.
            file.close().await;
        }
        Ok(())
    }

    fn start_spare(&mut self) {
        self.spares_made += 1;
        let path = self
            .directory
            .join(format!("spare-{:016x}.tmp", self.spares_made));
        let task = io::spawn(io::preallocate(
            path,
            self.options.segment_bytes,
            self.options.fault_hook.clone(),
        ));
        self.spare = Some(task);
    }

    /// The preallocated spare file (waiting for its preallocation if needed), starting the next.
    async fn take_spare(&mut self) -> Result<DiskFile> {
        if self.spare.is_none() {
            self.start_spare();
        }
        let Some(spare) = self.spare.take() else {
            unreachable!("started just above")
        };
        let file = spare.await?;
        self.start_spare();
        Ok(file)
    }

    /// Makes sure segment `seq` is open; false if the segment no longer exists.
    async fn open_segment(&mut self, shared: &Rc<RefCell<State>>, seq: u64) -> Result<bool> {
        if self.files.contains_key(&seq) {
            return Ok(true);
        }
        let found = {
            let state = shared.borrow();
            state
                .segments
                .iter()
                .find(|segment| segment.seq == seq)
                .map(|s| (s.on_disk, s.path.clone(), s.disk_end))
        };
        let Some((on_disk, path, disk_end)) = found else {
            return Ok(false);
        };
        let open = if on_disk {
            let file =
                DiskFile::open(&path, FileKind::Segment, self.options.fault_hook.clone()).await?;
            OpenSegment {
                file,
                written_end: disk_end,
                dirty: false,
                rename_to: None,
            }
        } else {
            let file = self.take_spare().await?;
            OpenSegment {
                file,
                written_end: 0,
                dirty: false,
                rename_to: Some(path),
            }
        };
        self.files.insert(seq, open);
        Ok(true)
    }

    async fn write_segment(
        &mut self,
        shared: &Rc<RefCell<State>>,
        seq: u64,
        end: usize,
    ) -> Result<()> {
        if !self.open_segment(shared, seq).await? {
            return Ok(());
        }
        let batch_bytes_max = self.options.batch_bytes_max;
        let Some(open) = self.files.get_mut(&seq) else {
            return Ok(());
        };
        let alignment = open.file.alignment();
        loop {
            let available = {
                let state = shared.borrow();
                match state
                    .segments
                    .iter()
                    .find(|segment| segment.seq == seq)
                    .map(|segment| &segment.bytes)
                {
                    Some(SegmentBytes::Memory(bytes)) => bytes.len().min(end),
                    _ => return Ok(()),
                }
            };
            if open.written_end >= available {
                return Ok(());
            }
            let start = open.written_end / alignment * alignment;
            let chunk_end = available.min(start + batch_bytes_max);
            open.file
                .write_filled(start as u64, chunk_end - start, |buffer| {
                    copy_segment_bytes(shared, seq, start, buffer)
                })
                .await?;
            open.written_end = chunk_end;
            open.dirty = true;
            shared.borrow_mut().stats.segment_bytes_written += (chunk_end - start) as u64;
        }
    }

    /// Writes the next hard-state slot: the newest hard state and the given truncation marker.
    async fn write_hard_state_slot(&mut self, truncation: Option<(u64, u64)>) -> Result<()> {
        self.hard_state_sequence += 1;
        let slot = format::encode_hard_state(&HardStateSlot {
            state: self.hard_state_written,
            sequence: self.hard_state_sequence,
            truncation,
            segments: self.segment_range,
            restart: self.restart_seq,
        });
        let offset = (self.hard_state_sequence % 2) * HARD_STATE_SLOT_BYTES as u64;
        self.hard_state_file
            .write_filled(offset, slot.len(), |buffer| buffer.copy_from_slice(&slot))
            .await?;
        self.hard_state_dirty = true;
        Ok(())
    }

    /// Zeros segment `seq` from byte `offset` to `zero_end` (or to what was written, if more),
    /// keeping the bytes before `offset` in the first block, and syncs.
    async fn zero_from(
        &mut self,
        shared: &Rc<RefCell<State>>,
        seq: u64,
        offset: usize,
        zero_end: usize,
    ) -> Result<()> {
        if !self.open_segment(shared, seq).await? {
            return Ok(());
        }
        let batch_bytes_max = self.options.batch_bytes_max;
        let capacity = shared
            .borrow()
            .segments
            .iter()
            .find(|s| s.seq == seq)
            .map_or(0, |s| s.capacity);
        let Some(open) = self.files.get_mut(&seq) else {
            return Ok(());
        };
        let alignment = open.file.alignment();
        let zero_end = zero_end.max(open.written_end).min(capacity);
        let mut start = offset / alignment * alignment;
        while start < zero_end {
            let chunk_end = zero_end.min(start + batch_bytes_max);
            let keep_end = offset.clamp(start, chunk_end);
            open.file
                .write_filled(start as u64, chunk_end - start, |buffer| {
                    buffer.fill(0);
                    copy_segment_bytes(shared, seq, start, &mut buffer[..keep_end - start]);
                })
                .await?;
            start = chunk_end;
        }
        open.file.sync().await?;
        open.written_end = offset;
        Ok(())
    }

    async fn remove_segment(&mut self, seq: u64, path: &Path) -> Result<()> {
        let mut target = path.to_path_buf();
        if let Some(open) = self.files.remove(&seq) {
            if open.rename_to.is_some() {
                target = open.file.path().to_path_buf();
            }
            open.file.close().await;
        }
        let removed = {
            let target = target.clone();
            io::off_thread(move || std::fs::remove_file(&target)).await
        };
        match removed {
            Ok(()) => io::sync_directory_off_thread(&self.directory).await,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(WalError::io("remove", &target, 0, error)),
        }
    }

    /// Syncs every file written since the last sync, then gives new segments their final names
    /// (in order, syncing the directory after each, so a later segment's name is never durable
    /// before an earlier one's).
    async fn finish_group(&mut self, shared: &Rc<RefCell<State>>) -> Result<()> {
        // The segment syncs and the hard-state sync run concurrently: a group that carries both
        // (Raft saves the hard state often) costs one sync latency, not two.
        let hard_state_file = self.hard_state_dirty.then_some(&self.hard_state_file);
        let hard_state_sync = async move {
            match hard_state_file {
                Some(file) => file.sync().await,
                None => Ok(()),
            }
        };
        let files = &mut self.files;
        let segment_syncs = async move {
            for open in files.values_mut().filter(|open| open.dirty) {
                open.file.sync().await?;
                open.dirty = false;
                shared.borrow_mut().stats.segment_syncs += 1;
            }
            Ok::<(), WalError>(())
        };
        let (segments_synced, hard_state_synced) =
            futures_lite::future::zip(segment_syncs, hard_state_sync).await;
        segments_synced?;
        hard_state_synced?;
        self.hard_state_dirty = false;
        let mut renames: Vec<u64> = self
            .files
            .iter()
            .filter(|(_, open)| open.rename_to.is_some())
            .map(|(seq, _)| *seq)
            .collect();
        renames.sort_unstable();
        let renamed = renames.first().copied().zip(renames.last().copied());
        for seq in renames {
            let Some(open) = self.files.get_mut(&seq) else {
                continue;
            };
            let Some(target) = open.rename_to.take() else {
                continue;
            };
            open.file.rename(&target).await?;
            io::sync_directory_off_thread(&self.directory).await?;
            let mut state = shared.borrow_mut();
            if let Some(segment) = state.segments.iter_mut().find(|segment| segment.seq == seq) {
                segment.on_disk = true;
            }
        }
        if let Some((first_renamed, newest)) = renamed {
            // Record the new newest segment before acknowledging anything in it, so a missing
            // last segment file is detected at open.
            self.segment_range = Some((
                self.segment_range
                    .map_or(first_renamed, |(oldest, _)| oldest),
                newest,
            ));
            self.write_hard_state_slot(None).await?;
            self.hard_state_file.sync().await?;
            self.hard_state_dirty = false;
        }
        Ok(())
    }

    /// Sealed segments that are fully written move from memory to a read-only mapping, and
    /// their files are closed, so memory and open files stay bounded by one active segment.
    async fn map_sealed_segments(&mut self, shared: &Rc<RefCell<State>>) {
        let mut closable = Vec::new();
        {
            let mut state = shared.borrow_mut();
            let sealed_count = state.segments.len().saturating_sub(1);
            for segment in state.segments.iter_mut().take(sealed_count) {
                let SegmentBytes::Memory(_) = segment.bytes else {
                    continue;
                };
                let Some(open) = self.files.get(&segment.seq) else {
                    continue;
                };
                if open.dirty || open.rename_to.is_some() || open.written_end < segment.data_end {
                    continue;
                }
                let mapped =
                    std::fs::File::open(&segment.path).and_then(|file| unsafe { Mmap::map(&file) });
                match mapped {
                    Ok(map) if map.len() >= segment.data_end => {
                        segment.bytes = SegmentBytes::Mapped(map);
                        closable.push(segment.seq);
                    }
                    Ok(_) => {
                        tracing::warn!(path = %segment.path.display(), "sealed segment is shorter than its data; keeping it in memory")
                    }
                    Err(error) => {
                        tracing::warn!(path = %segment.path.display(), %error, "cannot map a sealed segment; keeping it in memory")
                    }
                }
            }
        }
        for seq in closable {
            if let Some(open) = self.files.remove(&seq) {
                open.file.close().await;
            }
        }
    }

    async fn shutdown(mut self) {
        if let Some(spare) = self.spare.take() {
            // Let the preallocation finish rather than cancel a write midway; the next open
            // removes the spare file.
            if let Ok(file) = spare.await {
                file.close().await;
            }
        }
        for (_, open) in self.files.drain() {
            open.file.close().await;
        }
        self.hard_state_file.close().await;
    }
}

/// Copies segment `seq`'s bytes from `start` into `buffer` (zeros where it has none).
fn copy_segment_bytes(shared: &Rc<RefCell<State>>, seq: u64, start: usize, buffer: &mut [u8]) {
    let state = shared.borrow();
    let Some(segment) = state.segments.iter().find(|segment| segment.seq == seq) else {
        return;
    };
    let bytes = segment.bytes.as_slice();
    let end = bytes.len().min(start + buffer.len());
    if start < end {
        buffer[..end - start].copy_from_slice(&bytes[start..end]);
    }
}
