//! tern's write-ahead log: a directory of preallocated segment files holding checksummed
//! records, written through io_uring with group commit, replayed and checked on open.
//!
//! ```no_run
//! use tern_wal::{Entry, HardState, Wal, WalOptions};
//!
//! tern_wal::executor_builder("wal").spawn(|| async {
//!     let (wal, recovered) = Wal::open("/var/lib/tern/wal", WalOptions::default()).await?;
//!     let next = recovered.last_index + 1;
//!     // Many appends may be in flight: all queued during one sync go out in the next one.
//!     let durable = wal.append(&[Entry { index: next, term: 1, payload: b"x".to_vec() }]);
//!     assert_eq!(durable.await?, next);
//!     wal.save_hard_state(HardState { term: 1, voted_for: Some(2), commit: next }).await?;
//!     wal.close().await
//! }).unwrap().join().unwrap().unwrap();
//! ```
//!
//! Durability contract: a [`Durable`] future resolves `Ok` only after an fdatasync covering
//! the request returned success. After any failed write or sync the log is poisoned: pending and
//! later requests fail, until the directory is reopened (the page cache state of the file is
//! unknown after a failed fsync, so retrying could report lost data as durable).
//!
//! Recovery contract ([`Wal::open`]): a torn write at the very tail of the last segment (its
//! sync never returned, so nothing in it was acknowledged) is cut off; any other damage (damage
//! followed by a complete later group commit, a gap or overlap of indexes between segments, a
//! missing first or last segment (the hard-state file records which should exist), a bad
//! header, a bad record in a sealed segment) fails the open with [`WalError::Corrupt`] naming the
//! file and byte offset. Every group commit ends with a marker holding its CRC, which is what
//! tells the two apart; an interrupted suffix truncation is finished from its durable marker,
//! and an interrupted [`Wal::restart_at`] from its durable marker (the old log or the new empty
//! one, never a mix). A compacted or restarted log reopens with [`Recovered::first_index`] at
//! its first segment's first index.
//!
//! The on-disk format is described in [`format`](mod@format). All glommio-specific code is in
//! one private module (`io`); from it come [`executor_builder`] (sets `io_memory`), the
//! fault-injection seam ([`FaultHook`]) and [`GLOMMIO_IOPOLL_LOG_FILTER`], which hides glommio's
//! harmless "probing iopoll support" ERROR line on virtio disks.

#![warn(missing_docs)]

mod error;
pub mod format;
mod io;
mod recovery;
mod wal;

pub use error::{Result, WalError};
pub use format::HardState;
pub use io::{
    executor_builder, FaultHook, FileKind, FileOp, GLOMMIO_IOPOLL_LOG_FILTER, IO_MEMORY_BYTES,
};
pub use wal::{Durable, Entry, Recovered, Wal, WalOptions, WalStats};
