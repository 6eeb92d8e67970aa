//! The one error type of the crate. Every message names the file, the byte offset, what was
//! wrong and what the operator can do about it, because a WAL error usually ends in a human
//! reading a log line at night.

use std::{io, path::PathBuf, sync::Arc};

/// Everything that can go wrong in the write-ahead log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WalError {
    /// A file operation failed. After a failed write or sync the log is poisoned (see
    /// [`WalError::Poisoned`]): the page cache state of the file is unknown.
    #[error("{operation} of {path} at byte {offset} failed: {source}; nothing in this batch is durable; check the disk and reopen the WAL")]
    Io {
        /// What was being done: "write", "fdatasync", "open", "rename", "remove", ...
        operation: &'static str,
        /// The file (or directory) concerned.
        path: PathBuf,
        /// The byte offset in the file (0 when the operation has none).
        offset: u64,
        /// The operating system's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// An earlier write or sync failed, so nothing appended since can be reported durable.
    #[error("the WAL is poisoned by an earlier I/O failure ({cause}); no later append is durable; reopen the WAL to recover what is on disk")]
    Poisoned {
        /// The failure that poisoned the log.
        cause: Arc<WalError>,
    },
    /// On-disk data is damaged in a way that could lose acknowledged entries, so the open stops.
    #[error("{path} is damaged at byte {offset}: {what}; acknowledged entries may be lost, so tern will not serve from this log; restore this replica from a healthy peer (or move the data directory aside)")]
    Corrupt {
        /// The damaged file (or the directory, for a missing segment).
        path: PathBuf,
        /// The byte offset of the damage.
        offset: u64,
        /// What was wrong.
        what: String,
    },
    /// The caller asked for something the log cannot do (a bad index, an oversized entry, ...).
    #[error("invalid request: {what}")]
    Invalid {
        /// What was wrong with the request.
        what: String,
    },
    /// The requested index is no longer (or not yet) in the log.
    #[error("index {index} is outside the log [{first_index}, {last_index}]")]
    OutOfRange {
        /// The index asked for.
        index: u64,
        /// The first index the log holds.
        first_index: u64,
        /// The last index the log holds (first_index - 1 when empty).
        last_index: u64,
    },
    /// The options are unusable.
    #[error("invalid WAL option: {what}")]
    Options {
        /// What was wrong.
        what: String,
    },
    /// The WAL was closed while the request was pending.
    #[error("the WAL was closed before this request completed; it is not durable")]
    Closed,
}

impl WalError {
    pub(crate) fn io(
        operation: &'static str,
        path: impl Into<PathBuf>,
        offset: u64,
        source: io::Error,
    ) -> Self {
        WalError::Io {
            operation,
            path: path.into(),
            offset,
            source: Arc::new(source),
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, offset: u64, what: impl Into<String>) -> Self {
        WalError::Corrupt {
            path: path.into(),
            offset,
            what: what.into(),
        }
    }

    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        WalError::Invalid { what: what.into() }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = WalError> = std::result::Result<T, E>;
