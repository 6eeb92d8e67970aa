//! The WAL's group commit against a plain `std::fs` write + fdatasync baseline, side by side, in
//! one run: 256-byte entries appended by 1, 16 and 256 concurrent appenders (each appends one
//! entry, waits until it is durable, repeats). After every WAL round, on the same thread while
//! the WAL is idle, the baseline writes batches of the size the WAL just used to a preallocated
//! file, one write + one fdatasync per batch; rounds alternate so both see the disk in the same
//! mood (on this kind of machine fsync latency swings 10x within minutes).
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
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use tern_wal::{Entry, FileKind, FileOp, Wal, WalOptions};

/// Payload bytes of every entry.
const ENTRY_PAYLOAD_BYTES: usize = 256;
/// Bytes each entry takes on disk: payload plus the 24-byte record header.
const ENTRY_RECORD_BYTES: usize = ENTRY_PAYLOAD_BYTES + tern_wal::format::RECORD_HEADER_BYTES;
/// Alternating rounds (WAL, then baseline) per appender count.
const ROUNDS: usize = 3;
/// How long each round runs.
const ROUND_DURATION: Duration = Duration::from_millis(1500);
/// Pause after opening the WAL so the background preallocation of the next segment that opening
/// starts is not all in the first round (later preallocations do fall in rounds: a real cost).
const SETTLE_DURATION: Duration = Duration::from_secs(2);
/// Concurrent appender counts to compare.
const APPENDER_COUNTS: [usize; 3] = [1, 16, 256];
/// Size of the baseline's preallocated file.
const BASELINE_FILE_BYTES: u64 = 64 << 20;

/// Totals of one configuration over its rounds.
struct Row {
    name: String,
    entries: u64,
    syncs: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
    /// WAL only: time inside group commits (first write to last sync returning).
    group_io: Duration,
    /// WAL only: time between the starts of consecutive segment syncs (one full cycle, including
    /// the appenders producing the next batch), in microseconds.
    cycle_us: Histogram<u64>,
}

impl Row {
    fn new(name: String) -> Row {
        let histogram = || Histogram::<u64>::new(3).expect("histogram");
        Row {
            name,
            entries: 0,
            syncs: 0,
            elapsed: Duration::ZERO,
            latency_us: histogram(),
            group_io: Duration::ZERO,
            cycle_us: histogram(),
        }
    }

    fn print(&self) {
        let seconds = self.elapsed.as_secs_f64();
        println!(
            "| {:<38} | {:>10.0} | {:>12.1} | {:>8.0} | {:>12.1} | {:>8} | {:>8} |",
            self.name,
            self.entries as f64 / seconds,
            (self.entries as usize * ENTRY_RECORD_BYTES) as f64 / seconds / 1e6,
            self.syncs as f64 / seconds,
            self.entries as f64 / self.syncs.max(1) as f64,
            self.latency_us.value_at_quantile(0.5),
            self.latency_us.value_at_quantile(0.99),
        );
    }

    fn entries_per_sync(&self) -> f64 {
        self.entries as f64 / self.syncs.max(1) as f64
    }

    fn group_io_mean_us(&self) -> f64 {
        self.group_io.as_secs_f64() * 1e6 / self.syncs.max(1) as f64
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
        let (row, baseline) = run_configuration(
            root.join(format!("wal-{appenders}")),
            baseline_path.clone(),
            appenders,
        );
        rows.push(row);
        baselines.push(baseline);
    }

    println!();
    println!(
        "WAL append vs plain write + fdatasync, {ENTRY_PAYLOAD_BYTES}-byte entries ({ENTRY_RECORD_BYTES} bytes on disk), {ROUNDS} alternating rounds of {:.1} s each, data in {}",
        ROUND_DURATION.as_secs_f64(),
        root.display()
    );
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
        println!(
            "Batch of {:>5.1} entries: WAL group I/O (first write..last fdatasync) mean {:>6.0} us vs raw write+fdatasync mean {:>6.0} us = {:.2}x; WAL full cycle p50 {:>5} us vs raw p50 {:>5} us",
            row.entries_per_sync(),
            row.group_io_mean_us(),
            raw.mean(),
            row.group_io_mean_us() / raw.mean().max(1.0),
            row.cycle_us.value_at_quantile(0.5),
            raw.value_at_quantile(0.5),
        );
    }
    let last = rows.last().expect("rows");
    let baseline = baselines.last().expect("baselines");
    let throughput = last.entries as f64 / last.elapsed.as_secs_f64();
    println!(
        "Target 1: 256 appenders >= 200,000 durable entries/s: {throughput:.0} -> {}",
        if throughput >= 200_000.0 {
            "MET"
        } else {
            "NOT MET"
        }
    );
    let ratio = last.group_io_mean_us() / baseline.latency_us.mean().max(1.0);
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
    assert!(
        !is_tmpfs,
        "{} is on tmpfs: fsync would measure nothing",
        path.display()
    );
}

/// Records the interval between the starts of consecutive segment syncs.
#[derive(Default)]
struct CycleClock {
    previous: Option<Instant>,
    intervals_us: Vec<u64>,
}

fn run_configuration(directory: PathBuf, baseline_path: PathBuf, appenders: usize) -> (Row, Row) {
    let clock = Arc::new(Mutex::new(CycleClock::default()));
    let hook_clock = clock.clone();
    let hook: tern_wal::FaultHook = Arc::new(move |operation: &FileOp<'_>| {
        if let FileOp::Sync {
            kind: FileKind::Segment,
            ..
        } = operation
        {
            let now = Instant::now();
            let mut clock = hook_clock.lock().expect("cycle clock");
            if let Some(previous) = clock.previous {
                clock
                    .intervals_us
                    .push(now.duration_since(previous).as_micros() as u64);
            }
            clock.previous = Some(now);
        }
        Ok(())
    });
    let options = WalOptions {
        fault_hook: Some(hook),
        ..WalOptions::default()
    };
    let name = format!(
        "tern-wal, {appenders} appender{}",
        if appenders == 1 { "" } else { "s" }
    );
    let rows = tern_wal::executor_builder("wal-bench")
        .spawn(move || async move {
            let (wal, _) = Wal::open(&directory, options).await.expect("open");
            let wal = Rc::new(wal);
            // The first append waits for the first segment's preallocation.
            wal.append(&[entry(1)]).await.expect("warm-up append");
            glommio::timer::sleep(SETTLE_DURATION).await;
            let next_index = Rc::new(Cell::new(2u64));
            let mut row = Row::new(name);
            let mut baseline = Row::new(String::new());
            for _ in 0..ROUNDS {
                clock.lock().expect("cycle clock").previous = None;
                let before = wal.stats();
                let round = wal_round(&wal, &next_index, appenders, &mut row).await;
                let after = wal.stats();
                let syncs = after.segment_syncs - before.segment_syncs;
                row.syncs += syncs;
                row.group_io += after.flush_busy - before.flush_busy;
                for interval in clock.lock().expect("cycle clock").intervals_us.drain(..) {
                    let _ = row.cycle_us.record(interval);
                }
                // The baseline writes batches of the size this round used, while the WAL idles.
                let entries_per_batch =
                    ((round as f64 / syncs.max(1) as f64).round() as usize).max(1);
                baseline_round(&baseline_path, entries_per_batch, &mut baseline);
            }
            match Rc::try_unwrap(wal) {
                Ok(wal) => wal.close().await.expect("close"),
                Err(_) => panic!("appenders still hold the WAL"),
            }
            baseline.name = format!(
                "std::fs write+fdatasync, {:.0} entries",
                baseline.entries_per_sync()
            );
            (row, baseline)
        })
        .expect("executor")
        .join()
        .expect("executor thread");
    eprintln!("done: {}", rows.0.name);
    rows
}

/// Runs `appenders` closed-loop appenders for one round; returns the entries they appended.
async fn wal_round(
    wal: &Rc<Wal>,
    next_index: &Rc<Cell<u64>>,
    appenders: usize,
    row: &mut Row,
) -> u64 {
    let histogram = Rc::new(RefCell::new(Histogram::<u64>::new(3).expect("histogram")));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..appenders {
        let (wal, next_index, histogram) = (wal.clone(), next_index.clone(), histogram.clone());
        tasks.push(glommio::spawn_local(async move {
            let mut appended = 0u64;
            while started.elapsed() < ROUND_DURATION {
                let index = next_index.get();
                next_index.set(index + 1);
                let begun = Instant::now();
                wal.append(&[entry(index)]).await.expect("append");
                histogram
                    .borrow_mut()
                    .record(begun.elapsed().as_micros() as u64)
                    .expect("record");
                appended += 1;
            }
            appended
        }));
    }
    let mut entries = 0;
    for task in tasks {
        entries += task.await;
    }
    row.elapsed += started.elapsed();
    row.entries += entries;
    row.latency_us.add(&*histogram.borrow()).expect("merge");
    entries
}

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        payload: vec![(index % 251) as u8; ENTRY_PAYLOAD_BYTES],
    }
}

fn preallocate_baseline(path: &Path) {
    let mut file = fs::File::create(path).expect("baseline file");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..BASELINE_FILE_BYTES / zeros.len() as u64 {
        file.write_all(&zeros).expect("preallocate");
    }
    file.sync_all().expect("sync");
}

/// Plain std::fs for one round: write `entries_per_batch` records' worth of bytes at the next
/// offset of the preallocated file, fdatasync, repeat.
fn baseline_round(path: &Path, entries_per_batch: usize, row: &mut Row) {
    let batch_bytes = entries_per_batch * ENTRY_RECORD_BYTES;
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("baseline file");
    let batch = vec![0x5au8; batch_bytes];
    let mut offset = 0u64;
    let started = Instant::now();
    while started.elapsed() < ROUND_DURATION {
        if offset + batch_bytes as u64 > BASELINE_FILE_BYTES {
            offset = 0;
        }
        let begun = Instant::now();
        file.write_all_at(&batch, offset).expect("write");
        file.sync_data().expect("fdatasync");
        row.latency_us
            .record(begun.elapsed().as_micros() as u64)
            .expect("record");
        offset += batch_bytes as u64;
        row.syncs += 1;
        row.entries += entries_per_batch as u64;
    }
    row.elapsed += started.elapsed();
}
