//! One measured run: the driver's workload on one cluster, with the servers' CPU and memory
//! read from /proc around it, and a progress bar while it runs.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};

use super::clusters::Running;
use crate::driver::Progress;
use crate::metrics::latency::{cdf_points, LatencySummary};
use crate::metrics::proc_stats::{cpu_seconds, peak_rss_bytes, MachineCpu};
use crate::report::record::RunRecord;
use crate::workload::WorkloadSpec;

/// Where a run sits in its suite, for the record and the progress bar.
pub struct RunPlace<'a> {
    pub suite: &'a str,
    /// The point's label, e.g. "puts c=64".
    pub label: &'a str,
    pub repeat: usize,
    /// "run 3/16", shown on the bar.
    pub counter: String,
}

/// Runs `spec` on `running` and returns its record.
pub fn measure(
    running: &mut Running,
    spec: &WorkloadSpec,
    place: &RunPlace,
) -> Result<RunRecord, String> {
    running.cluster.check_running()?;
    running.ensure_loaded(spec)?;
    let pids: Vec<u32> = running
        .cluster
        .server_pids()
        .into_iter()
        .flatten()
        .collect();
    let own_pid = std::process::id();
    let cpu_before = server_cpu_seconds(&pids)?;
    let own_cpu_before = cpu_seconds(own_pid)?;
    let machine_before = MachineCpu::sample()?;
    let started_at_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or(0);

    let total = spec.warmup + spec.duration;
    let bar = ProgressBar::new(total.as_millis() as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} {wide_bar} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!(
        "{} {:>4} {:<16}",
        place.counter, running.system, place.label
    ));
    let progress = Progress::default();
    let started = Instant::now();
    let result = std::thread::scope(|scope| {
        let driver = &mut running.driver;
        let worker = scope.spawn(|| driver.run(spec, &progress));
        let mut last_ops = 0;
        let mut last_at = Instant::now();
        while !worker.is_finished() {
            std::thread::sleep(Duration::from_millis(200));
            let ops = progress.ops_done.load(Ordering::Relaxed);
            let rate = (ops - last_ops) as f64 / last_at.elapsed().as_secs_f64().max(1e-3);
            last_ops = ops;
            last_at = Instant::now();
            let phase = if started.elapsed() < spec.warmup {
                "warm-up"
            } else {
                "measuring"
            };
            bar.set_position(started.elapsed().as_millis().min(total.as_millis()) as u64);
            bar.set_message(format!(
                "{phase} {:>9.0} ops/s, {} errors",
                rate,
                progress.errors.load(Ordering::Relaxed)
            ));
        }
        worker
            .join()
            .unwrap_or_else(|_| Err("the driver thread panicked".to_string()))
    });
    bar.finish_and_clear();
    let stats = result.map_err(|error| format!("{} {}: {error}", running.system, place.label))?;

    let machine_after = MachineCpu::sample()?;
    let cpu_after = server_cpu_seconds(&pids)?;
    let own_cpu_after = cpu_seconds(own_pid)?;
    let wall_s = started.elapsed().as_secs_f64().max(1e-6);
    let server_cpu_s = cpu_after - cpu_before;
    let own_cpu_s = own_cpu_after - own_cpu_before;
    let machine_busy_s = machine_after.busy_cpu_seconds_since(&machine_before);
    // Every op the driver did (warm-up included) costs server CPU inside this window.
    let ops_all = progress.ops_done.load(Ordering::Relaxed).max(1);
    let mut peak_rss = Vec::new();
    for &pid in &pids {
        peak_rss.push(peak_rss_bytes(pid)?);
    }
    running.cluster.check_running()?;

    let merged = stats.merged_latency_us();
    let ops_ok = stats.ops_ok();
    let elapsed_s = stats.elapsed.as_secs_f64().max(1e-6);
    let latency_by_kind: BTreeMap<String, LatencySummary> = stats
        .latency_us
        .iter()
        .map(|(kind, histogram)| (kind.name().to_string(), LatencySummary::of(histogram)))
        .collect();
    let record = RunRecord {
        suite: place.suite.to_string(),
        system: running.system,
        nodes: running.cluster.nodes(),
        label: place.label.to_string(),
        repeat: place.repeat,
        workload: spec.clone(),
        timing: running.timing,
        ops_ok,
        errors: stats.errors_total(),
        error_kinds: stats.errors.clone(),
        late: stats.late,
        elapsed_s,
        ops_per_s: ops_ok as f64 / elapsed_s,
        latency: LatencySummary::of(&merged),
        latency_by_kind,
        cdf: cdf_points(&merged),
        server_cpu_s,
        cpu_ms_per_op: server_cpu_s * 1000.0 / ops_all as f64,
        peak_rss_bytes: peak_rss,
        machine_busy_cores: machine_busy_s / wall_s,
        other_busy_cores: ((machine_busy_s - server_cpu_s - own_cpu_s) / wall_s).max(0.0),
        started_at_unix_s,
    };
    println!(
        "{} {:>4} {:<18} {:>9.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms  cpu {:>6.3} ms/op  errors {}",
        place.counter,
        running.system,
        place.label,
        record.ops_per_s,
        record.latency.p50_ms,
        record.latency.p99_ms,
        record.cpu_ms_per_op,
        record.errors
    );
    Ok(record)
}

fn server_cpu_seconds(pids: &[u32]) -> Result<f64, String> {
    let mut total = 0.0;
    for &pid in pids {
        total += cpu_seconds(pid)?;
    }
    Ok(total)
}
