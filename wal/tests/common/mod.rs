//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::{
    future::Future,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use tern_wal::{Entry, FaultHook, FileKind, FileOp, WalOptions};

/// Runs a future on a fresh glommio executor and returns its output.
pub fn run<T: Send + 'static, F: Future<Output = T> + 'static>(
    make: impl FnOnce() -> F + Send + 'static,
) -> T {
    tern_wal::executor_builder("wal-test")
        .spawn(make)
        .expect("executor")
        .join()
        .expect("executor thread")
}

/// Small segments so a few dozen entries span several files.
pub fn small_options() -> WalOptions {
    WalOptions {
        segment_bytes: 8192,
        batch_bytes_max: 4096,
        fault_hook: None,
    }
}

/// A payload that encodes its index, of a length that varies with it.
pub fn payload(index: u64, length: usize) -> Vec<u8> {
    (0..length)
        .map(|position| (index as usize * 31 + position) as u8)
        .collect()
}

/// Entries `first..first+count` in `term`, of `length` payload bytes.
pub fn entries(first: u64, count: u64, term: u64, length: usize) -> Vec<Entry> {
    (first..first + count)
        .map(|index| Entry {
            index,
            term,
            payload: payload(index, length),
        })
        .collect()
}

/// Counts segment syncs and can be told to fail segment writes or syncs from some point on.
#[derive(Default)]
pub struct Faults {
    pub segment_syncs: AtomicU64,
    pub segment_writes: AtomicU64,
    /// Fail every segment write once this many have happened (u64::MAX: never).
    pub fail_writes_after: AtomicU64,
    /// Fail every segment sync once this many have happened (u64::MAX: never).
    pub fail_syncs_after: AtomicU64,
    /// Fail every hard-state sync from now on when non-zero.
    pub fail_hard_state_syncs: AtomicU64,
}

impl Faults {
    pub fn new() -> Arc<Faults> {
        let faults = Faults::default();
        faults.fail_writes_after.store(u64::MAX, Ordering::SeqCst);
        faults.fail_syncs_after.store(u64::MAX, Ordering::SeqCst);
        Arc::new(faults)
    }

    pub fn hook(self: &Arc<Self>) -> FaultHook {
        let faults = self.clone();
        Arc::new(move |operation: &FileOp<'_>| {
            let injected = || Err(std::io::Error::other("injected fault"));
            match operation {
                FileOp::Write {
                    kind: FileKind::Segment,
                    ..
                } => {
                    let done = faults.segment_writes.fetch_add(1, Ordering::SeqCst);
                    if done >= faults.fail_writes_after.load(Ordering::SeqCst) {
                        return injected();
                    }
                }
                FileOp::Sync {
                    kind: FileKind::Segment,
                    ..
                } => {
                    let done = faults.segment_syncs.fetch_add(1, Ordering::SeqCst);
                    if done >= faults.fail_syncs_after.load(Ordering::SeqCst) {
                        return injected();
                    }
                }
                FileOp::Sync {
                    kind: FileKind::HardState,
                    ..
                } if faults.fail_hard_state_syncs.load(Ordering::SeqCst) != 0 => {
                    return injected();
                }
                _ => {}
            }
            Ok(())
        })
    }
}

/// The segment files of a directory, oldest first.
pub fn segment_files(directory: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .expect("list")
        .map(|item| item.expect("item").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    files.sort();
    files
}

/// Copies a directory's regular files into a new temporary directory.
pub fn copy_directory(source: &Path) -> tempfile::TempDir {
    let target = tempfile::tempdir_in(test_root()).expect("tempdir");
    for item in std::fs::read_dir(source).expect("list") {
        let path = item.expect("item").path();
        std::fs::copy(&path, target.path().join(path.file_name().expect("name"))).expect("copy");
    }
    target
}

/// Where test directories go: under target/ (same disk as the build, never a tmpfs).
pub fn test_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wal-tests");
    std::fs::create_dir_all(&root).expect("create test root");
    root
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in(test_root()).expect("tempdir")
}
