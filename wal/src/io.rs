//! The runtime layer: every glommio-specific line of the crate lives here (DMA files over
//! io_uring, spawning, the executor builder), so the rest could move to another runtime by
//! rewriting this file only. It is also the fault-injection seam: every write and sync goes
//! through [`DiskFile`], which asks the optional [`FaultHook`] first.
//!
//! About glommio's log line `ERROR ... probing iopoll support ... Bad file descriptor`: glommio
//! logs it (through the `log` crate, target `glommio::reactor`) the first time it opens a DMA
//! file on a device whose driver has no polled I/O, such as virtio disks. It is harmless: glommio
//! then simply does not use its poll ring for that device. Add [`GLOMMIO_IOPOLL_LOG_FILTER`] to
//! the log filter to hide it.

use std::{
    fs,
    future::Future,
    io,
    path::{Path, PathBuf},
    sync::Arc,
};

use glommio::io::{DmaFile, OpenOptions};

use crate::error::{Result, WalError};

/// A `tracing_subscriber::EnvFilter` / `RUST_LOG` directive that hides glommio's harmless
/// "probing iopoll support" ERROR line (see the module documentation).
pub const GLOMMIO_IOPOLL_LOG_FILTER: &str = "glommio::reactor=off";

/// Bytes of io_uring-registered buffer memory per executor that the WAL's writes fit in
/// (batches are at most `batch_bytes_max`, 1 MiB by default). glommio's default is 10 MiB per
/// ring, three rings per executor, which exceeds the 8 MiB memlock limit of non-root users and
/// makes glommio fall back to unregistered buffers with a WARN.
pub const IO_MEMORY_BYTES: usize = 2 << 20;

/// An executor builder with [`IO_MEMORY_BYTES`] set, for programs and tests that run the WAL.
pub fn executor_builder(name: &str) -> glommio::LocalExecutorBuilder {
    glommio::LocalExecutorBuilder::default()
        .name(name)
        .io_memory(IO_MEMORY_BYTES)
}

/// Which kind of file an operation touches, so a fault hook can target one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A segment file holding records (including its first write under a temporary name).
    Segment,
    /// A segment being preallocated with zeros in the background.
    Preallocation,
    /// The hard-state file.
    HardState,
}

/// One file operation, as shown to a [`FaultHook`].
#[derive(Debug, Clone, Copy)]
pub enum FileOp<'a> {
    /// A write of `bytes` bytes at byte `offset`.
    Write {
        /// The kind of file.
        kind: FileKind,
        /// The file.
        path: &'a Path,
        /// Byte offset of the write.
        offset: u64,
        /// Length of the write in bytes.
        bytes: usize,
    },
    /// An fdatasync.
    Sync {
        /// The kind of file.
        kind: FileKind,
        /// The file.
        path: &'a Path,
    },
}

/// A test seam: called before every write and sync; returning an error makes that operation
/// fail with it (the operation is then not performed).
pub type FaultHook = Arc<dyn Fn(&FileOp<'_>) -> io::Result<()> + Send + Sync>;

/// A task running on the current executor.
pub(crate) type Task<T> = glommio::Task<T>;

/// Runs a future on the current executor, concurrently with the caller.
pub(crate) fn spawn<T: 'static>(future: impl Future<Output = T> + 'static) -> Task<T> {
    glommio::spawn_local(future)
}

/// A file written with O_DIRECT through io_uring. Writes must start at a multiple of
/// [`DiskFile::alignment`]; they are padded with zeros to a multiple of it.
pub(crate) struct DiskFile {
    file: DmaFile,
    path: PathBuf,
    kind: FileKind,
    hook: Option<FaultHook>,
}

impl DiskFile {
    /// Opens an existing file for reading and writing.
    pub(crate) async fn open(
        path: &Path,
        kind: FileKind,
        hook: Option<FaultHook>,
    ) -> Result<DiskFile> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        Self::open_with(&options, "open", path, kind, hook).await
    }

    /// Creates (or truncates) a file.
    pub(crate) async fn create(
        path: &Path,
        kind: FileKind,
        hook: Option<FaultHook>,
    ) -> Result<DiskFile> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(true);
        Self::open_with(&options, "create", path, kind, hook).await
    }

    /// Opens `path` with O_DIRECT; `operation` names the call in the error.
    async fn open_with(
        options: &OpenOptions,
        operation: &'static str,
        path: &Path,
        kind: FileKind,
        hook: Option<FaultHook>,
    ) -> Result<DiskFile> {
        let file = options
            .dma_open(path)
            .await
            .map_err(|error| WalError::io(operation, path, 0, error.into()))?;
        Ok(DiskFile {
            file,
            path: path.to_path_buf(),
            kind,
            hook,
        })
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The O_DIRECT alignment in bytes: write offsets and lengths are multiples of it.
    pub(crate) fn alignment(&self) -> usize {
        self.file.alignment() as usize
    }

    /// Writes `bytes` bytes at `offset` (a multiple of the alignment): `fill` is called once,
    /// synchronously, to fill the buffer, then the write runs; the tail up to the alignment is
    /// zeros.
    pub(crate) async fn write_filled(
        &self,
        offset: u64,
        bytes: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<()> {
        let alignment = self.alignment();
        debug_assert_eq!(offset as usize % alignment, 0);
        let padded = bytes.div_ceil(alignment) * alignment;
        self.check_hook(&FileOp::Write {
            kind: self.kind,
            path: &self.path,
            offset,
            bytes: padded,
        })?;
        let mut buffer = self.file.alloc_dma_buffer(padded);
        let slice = buffer.as_bytes_mut();
        fill(&mut slice[..bytes]);
        slice[bytes..].fill(0);
        let written = self
            .file
            .write_at(buffer, offset)
            .await
            .map_err(|error| WalError::io("write", &self.path, offset, error.into()))?;
        if written != padded {
            // O_DIRECT writes to a regular file are all or nothing except at ENOSPC; treat a short
            // write as the failure it is rather than retrying into a full disk.
            let error = io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {written} of {padded} bytes"),
            );
            return Err(WalError::io("write", &self.path, offset, error));
        }
        Ok(())
    }

    /// fdatasync: the data written so far is on stable storage when this returns Ok.
    pub(crate) async fn sync(&self) -> Result<()> {
        self.check_hook(&FileOp::Sync {
            kind: self.kind,
            path: &self.path,
        })?;
        self.file
            .fdatasync()
            .await
            .map_err(|error| WalError::io("fdatasync", &self.path, 0, error.into()))
    }

    /// Renames the file (the directory must be synced afterwards for the name to be durable),
    /// off the executor thread (see [`off_thread`]).
    pub(crate) async fn rename(&mut self, target: &Path) -> Result<()> {
        let (from, to) = (self.path.clone(), target.to_path_buf());
        off_thread(move || fs::rename(&from, &to))
            .await
            .map_err(|error| WalError::io("rename", &self.path, 0, error))?;
        self.path = target.to_path_buf();
        self.kind = FileKind::Segment;
        Ok(())
    }

    /// Closes the file; errors on close are reported but carry no durability meaning (every
    /// write that matters was followed by a successful sync).
    pub(crate) async fn close(self) {
        if let Err(error) = self.file.close().await {
            tracing::warn!(path = %self.path.display(), %error, "closing a WAL file failed");
        }
    }

    fn check_hook(&self, operation: &FileOp<'_>) -> Result<()> {
        let Some(hook) = &self.hook else {
            return Ok(());
        };
        hook(operation).map_err(|error| match operation {
            FileOp::Write { offset, .. } => WalError::io("write", &self.path, *offset, error),
            FileOp::Sync { .. } => WalError::io("fdatasync", &self.path, 0, error),
        })
    }
}

/// Bytes of zeros per write while preallocating a segment: large enough that the growing
/// writes (milliseconds each on this machine) are few, small enough for one DMA buffer.
const PREALLOCATION_CHUNK_BYTES: usize = 1 << 20;

/// Creates `path` and fills it with `segment_bytes` zeros, then syncs it: later writes to it
/// overwrite allocated blocks, which costs tens of microseconds instead of milliseconds.
pub(crate) async fn preallocate(
    path: PathBuf,
    segment_bytes: usize,
    hook: Option<FaultHook>,
) -> Result<DiskFile> {
    let mut file = DiskFile::create(&path, FileKind::Preallocation, hook).await?;
    let mut offset = 0;
    while offset < segment_bytes {
        let bytes = PREALLOCATION_CHUNK_BYTES.min(segment_bytes - offset);
        file.write_filled(offset as u64, bytes, |buffer| buffer.fill(0))
            .await?;
        offset += bytes;
    }
    file.sync().await?;
    file.kind = FileKind::Segment;
    Ok(file)
}

/// Runs a blocking file-system call (rename, remove, directory fsync) on glommio's blocking
/// thread pool and awaits it, so the executor keeps running its other tasks meanwhile: the
/// Raft node ticks, heartbeats and answers votes on the WAL's executor, and under write
/// pressure from other programs a rename plus directory fsync took up to 112 ms here (p50
/// 5.6 ms), enough to delay heartbeats towards an election timeout.
pub(crate) async fn off_thread<R: Send + 'static>(call: impl FnOnce() -> R + Send + 'static) -> R {
    glommio::executor().spawn_blocking(call).await
}

/// [`sync_directory`] off the executor thread (see [`off_thread`]); for the flusher.
pub(crate) async fn sync_directory_off_thread(directory: &Path) -> Result<()> {
    let directory = directory.to_path_buf();
    off_thread(move || sync_directory(&directory)).await
}

/// fsyncs a directory so that creations, renames and removals in it are durable.
pub(crate) fn sync_directory(directory: &Path) -> Result<()> {
    let handle = fs::File::open(directory)
        .map_err(|error| WalError::io("open directory", directory, 0, error))?;
    handle
        .sync_all()
        .map_err(|error| WalError::io("fsync directory", directory, 0, error))
}

/// Takes an exclusive advisory lock (flock) on `directory/LOCK`, so that two `Wal`s (in one
/// process or two) never write the same directory. The lock lasts as long as the returned file.
pub(crate) fn lock_directory(directory: &Path) -> Result<fs::File> {
    use std::os::fd::AsRawFd;
    let path = directory.join("LOCK");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| WalError::io("open", &path, 0, error))?;
    // Safety: flock on a file descriptor we own; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let error = io::Error::last_os_error();
        let error = io::Error::new(
            error.kind(),
            format!("{error}: another Wal (in this or another process) has this directory open"),
        );
        return Err(WalError::io("lock", &path, 0, error));
    }
    Ok(file)
}
