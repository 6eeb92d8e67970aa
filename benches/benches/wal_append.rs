//! The WAL's group commit against a plain `std::fs` write + fdatasync baseline, side by side, in
//! one run: 256-byte entries appended by 1, 16 and 256 concurrent appenders (each appends one
//! entry, waits until it is durable, repeats), then the baseline writes batches of the sizes the
//! WAL ended up using, on a preallocated file, one write + one fdatasync per batch.
//!
//! Run: `cargo bench -p tern-benches --bench wal_append`. Data goes under `target/wal-bench`
//! (the same disk as the build; the bench refuses tmpfs). Not a test: nothing here asserts.

use std::{
    cell::{Cell, RefCell},
    fs,
    io::Write,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    rc::Rc,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use tern_wal::{Entry, FileKind, FileOp, Wal, WalOptions};

/// Payload bytes of every entry.
const ENTRY_PAYLOAD_BYTES: usize = 256;
/// Bytes each entry takes on disk: payload plus the 24-byte record header.
const ENTRY_RECORD_BYTES: usize = ENTRY_PAYLOAD_BYTES + tern_wal::format::RECORD_HEADER_BYTES;
/// How long each configuration runs.
const RUN_DURATION: Duration = Duration::from_secs(4);
/// Concurrent appender counts to compare.
const APPENDER_COUNTS: [usize; 3] = [1, 16, 256];
/// Size of the baseline's preallocated file.
const BASELINE_FILE_BYTES: u64 = 64 << 20;

struct Row {
    name: String,
    entries: u64,
    syncs: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
    /// WAL only: time between the starts of consecutive segment syncs, i.e. one group-commit
    /// cycle (write + fdatasync + bookkeeping), in microseconds.
    cycle_us: Option<Histogram<u64>>,
    /// WAL only: mean time of one group commit's I/O (first write to last sync), from WalStats.
    group_io_mean_us: Option<f64>,
}

impl Row {
    fn print(&self) {
        let seconds = self.elapsed.as_secs_f64();
        println!(
            "| {:<38} | {:>10.0} | {:>12.1} | {:>8.0} | {:>13.1} | {:>8} | {:>8} |",
            self.name,
            self.entries as f64 / seconds,
            (self.entries as usize * ENTRY_RECORD_BYTES) as f64 / seconds / 1e6,
            self.syncs as f64 / seconds,
            self.entries as f64 / self.syncs.max(1) as f64,
            self.latency_us.value_at_quantile(0.5),
            self.latency_us.value_at_quantile(0.99),
        );
    }

    fn entries_per_sync(&self) -> usize {
        ((self.entries as f64 / self.syncs.max(1) as f64).round() as usize).max(1)
    }

}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wal-bench");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).expect("create bench directory");
    refuse_tmpfs(&root);

    let baseline_path = root.join("baseline");
    preallocate_baseline(&baseline_path);
    let mut rows = Vec::new();
    let mut baselines = Vec::new();
    for appenders in APPENDER_COUNTS {
        let row = run_wal(root.join(format!("wal-{appenders}")), appenders);
        // The baseline runs right after, so both see the disk in the same mood.
        baselines.push(run_baseline(&baseline_path, row.entries_per_sync()));
        rows.push(row);
    }

    println!();
    println!("WAL append vs plain write + fdatasync, {ENTRY_PAYLOAD_BYTES}-byte entries ({ENTRY_RECORD_BYTES} bytes on disk), {} s per run, data in {}", RUN_DURATION.as_secs(), root.display());
    println!();
    println!("| run                                    |  entries/s | MB/s on disk |  syncs/s | entries/sync | p50 (us) | p99 (us) |");
    println!("|----------------------------------------|-----------:|-------------:|---------:|-------------:|---------:|---------:|");
    for row in rows.iter().chain(&baselines) {
        row.print();
    }
    println!();
    println!("p50/p99: WAL rows are append-to-durable per entry; baseline rows are one write + fdatasync of the whole batch.");
    for (row, baseline) in rows.iter().zip(&baselines) {
        let raw = &baseline.latency_us;
        let cycles = row.cycle_us.as_ref().expect("cycles");
        let io_mean = row.group_io_mean_us.expect("group I/O");
        println!(
            "Batch of {:>3} entries: WAL group I/O (write..fdatasync) mean {:>6.0} us vs raw write+fdatasync mean {:>6.0} us = {:.2}x; \
             WAL full cycle (incl. appenders refilling) p50 {:>5} us vs raw p50 {:>5} us",
            row.entries_per_sync(),
            io_mean,
            raw.mean(),
            io_mean / raw.mean().max(1.0),
            cycles.value_at_quantile(0.5),
            raw.value_at_quantile(0.5),
        );
    }
    let last = rows.last().expect("rows");
    let baseline = baselines.last().expect("baselines");
    let throughput = last.entries as f64 / last.elapsed.as_secs_f64();
    println!(
        "Target 1: 256 appenders >= 200,000 durable entries/s: {throughput:.0} -> {}",
        if throughput >= 200_000.0 { "MET" } else { "NOT MET" }
    );
    let ratio = last.group_io_mean_us.expect("group I/O") / baseline.latency_us.mean().max(1.0);
    println!(
        "Target 2: one batch's I/O (256 appenders) within 1.5x of one raw write + fdatasync of the same size (means): {ratio:.2}x -> {}",
        if ratio <= 1.5 { "MET" } else { "NOT MET" }
    );
    let _ = fs::remove_dir_all(&root);
}

fn refuse_tmpfs(path: &Path) {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // Safety: c_path is a valid NUL-terminated string and stat a valid out-pointer.
    let result = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
    assert_eq!(result, 0, "statfs {}", path.display());
    // f_type's integer type differs between architectures, hence the casts.
    #[allow(clippy::unnecessary_cast)]
    let is_tmpfs = stat.f_type as i64 == libc::TMPFS_MAGIC as i64;
    assert!(!is_tmpfs, "{} is on tmpfs: fsync would measure nothing", path.display());
}

fn run_wal(directory: PathBuf, appenders: usize) -> Row {
    let syncs = Arc::new(AtomicU64::new(0));
    let cycles = Arc::new(Mutex::new((None::<Instant>, Histogram::<u64>::new(3).expect("histogram"))));
    let (counter, cycle_clock) = (syncs.clone(), cycles.clone());
    let hook: tern_wal::FaultHook = Arc::new(move |operation: &FileOp<'_>| {
        if let FileOp::Sync { kind: FileKind::Segment, .. } = operation {
            counter.fetch_add(1, Ordering::Relaxed);
            let now = Instant::now();
            let mut clock = cycle_clock.lock().expect("cycle clock");
            if let Some(previous) = clock.0 {
                let _ = clock.1.record(now.duration_since(previous).as_micros() as u64);
            }
            clock.0 = Some(now);
        }
        Ok(())
    });
    let options = WalOptions { fault_hook: Some(hook), ..WalOptions::default() };
    let reset_cycles = cycles.clone();
    let name = format!("tern-wal, {appenders} appender{}", if appenders == 1 { "" } else { "s" });
    let outcome = tern_wal::executor_builder("wal-bench")
        .spawn(move || async move {
            let (wal, _) = Wal::open(&directory, options).await.expect("open");
            let wal = Rc::new(wal);
            // The first append waits for the first segment's preallocation: keep it out.
            wal.append(&[entry(1)]).await.expect("warm-up append");
            reset_cycles.lock().expect("cycle clock").0 = None;
            let stats_before = wal.stats();
            let next_index = Rc::new(Cell::new(2u64));
            let histogram = Rc::new(RefCell::new(Histogram::<u64>::new(3).expect("histogram")));
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..appenders {
                let (wal, next_index, histogram) = (wal.clone(), next_index.clone(), histogram.clone());
                tasks.push(glommio::spawn_local(async move {
                    let mut appended = 0u64;
                    while started.elapsed() < RUN_DURATION {
                        let index = next_index.get();
                        next_index.set(index + 1);
                        let begun = Instant::now();
                        wal.append(&[entry(index)]).await.expect("append");
                        histogram.borrow_mut().record(begun.elapsed().as_micros() as u64).expect("record");
                        appended += 1;
                    }
                    appended
                }));
            }
            let mut entries = 0;
            for task in tasks {
                entries += task.await;
            }
            let elapsed = started.elapsed();
            let stats_after = wal.stats();
            let groups = stats_after.groups - stats_before.groups;
            let busy = stats_after.flush_busy - stats_before.flush_busy;
            let group_io_mean_us = busy.as_secs_f64() * 1e6 / groups.max(1) as f64;
            match Rc::try_unwrap(wal) {
                Ok(wal) => wal.close().await.expect("close"),
                Err(_) => panic!("appenders still hold the WAL"),
            }
            let latency_us = histogram.borrow().clone();
            (entries, elapsed, latency_us, group_io_mean_us)
        })
        .expect("executor")
        .join()
        .expect("executor thread");
    let (entries, elapsed, latency_us, group_io_mean_us) = outcome;
    // The warm-up append's sync is not in the measured window.
    let syncs = syncs.load(Ordering::Relaxed).saturating_sub(1);
    let cycle_us = cycles.lock().expect("cycle clock").1.clone();
    let row = Row { name, entries, syncs, elapsed, latency_us, cycle_us: Some(cycle_us), group_io_mean_us: Some(group_io_mean_us) };
    eprintln!("done: {} ({} entries)", row.name, row.entries);
    row
}

fn entry(index: u64) -> Entry {
    Entry { index, term: 1, payload: vec![(index % 251) as u8; ENTRY_PAYLOAD_BYTES] }
}

fn preallocate_baseline(path: &Path) {
    let mut file = fs::File::create(path).expect("baseline file");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..BASELINE_FILE_BYTES / zeros.len() as u64 {
        file.write_all(&zeros).expect("preallocate");
    }
    file.sync_all().expect("sync");
}

/// Plain std::fs: write `entries_per_batch` records' worth of bytes at the next offset of a
/// preallocated file, fdatasync, repeat.
fn run_baseline(path: &Path, entries_per_batch: usize) -> Row {
    let batch_bytes = entries_per_batch * ENTRY_RECORD_BYTES;
    let file = fs::OpenOptions::new().write(true).open(path).expect("baseline file");
    let batch = vec![0x5au8; batch_bytes];
    let mut latency_us = Histogram::<u64>::new(3).expect("histogram");
    let mut offset = 0u64;
    let mut syncs = 0u64;
    let started = Instant::now();
    while started.elapsed() < RUN_DURATION {
        if offset + batch_bytes as u64 > BASELINE_FILE_BYTES {
            offset = 0;
        }
        let begun = Instant::now();
        file.write_all_at(&batch, offset).expect("write");
        file.sync_data().expect("fdatasync");
        latency_us.record(begun.elapsed().as_micros() as u64).expect("record");
        offset += batch_bytes as u64;
        syncs += 1;
    }
    let elapsed = started.elapsed();
    let name = format!("std::fs write+fdatasync, {entries_per_batch} entries");
    eprintln!("done: {name}");
    Row { name, entries: syncs * entries_per_batch as u64, syncs, elapsed, latency_us, cycle_us: None, group_io_mean_us: None }
}
