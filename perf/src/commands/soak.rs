//! `soak`: a long closed-loop put workload on one cluster (or both systems, one after the
//! other), measured in slices, with every member's current resident memory and the cluster's
//! on-disk bytes sampled after each slice: does memory and disk stay bounded while the log is
//! compacted (tern snapshots every `--snapshot-entries` applied entries, 100000 by default)?

use std::path::Path;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::args::CommonArgs;
use super::clusters::SideBySide;
use super::runner::{measure, RunPlace};
use super::specs::{puts, spec};
use crate::metrics::proc_stats::rss_bytes;
use crate::report::record::write_json;
use crate::system::System;

/// A long write workload: memory and disk over time.
///
/// Runs puts for --minutes on a fresh cluster, in slices of --slice-secs; after each slice it
/// records throughput, p99 latency, each member's resident memory (VmRSS) and the bytes under
/// the cluster's data directories. With --with etcd, etcd runs the same afterwards. Writes
/// results.json and summary.txt into <OUT>/soak/; the summary compares the last slice with
/// the first one after the --warmup-secs slice.
///
/// Example: cargo run --release -p tern-perf -- soak --minutes 10 --with etcd
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct SoakArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// How long each system runs (minutes).
    #[arg(long, value_name = "MINUTES", default_value_t = 10.0)]
    pub minutes: f64,

    /// Length of one measured slice (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub slice_secs: u64,

    /// Members per cluster.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(1..=11))]
    pub nodes: u16,

    /// Concurrent clients (closed loop).
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub clients: u16,
}

/// One slice's measurements.
#[derive(Clone, Debug, Serialize)]
pub struct SoakSample {
    pub system: System,
    /// Minutes since the system's soak started, at the end of the slice.
    pub minute: f64,
    pub ops_per_s: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// Each member's resident memory after the slice.
    pub rss_bytes: Vec<u64>,
    /// Bytes in every file under the cluster's directory (data, logs, certificates).
    pub disk_bytes: u64,
}

#[derive(Serialize)]
struct SoakResults<'a> {
    minutes: f64,
    slice_secs: u64,
    nodes: u16,
    clients: u16,
    samples: &'a [SoakSample],
}

pub fn run(args: &SoakArgs) -> Result<(), String> {
    let common = &args.common;
    common.validate()?;
    if !(args.minutes > 0.0 && args.minutes <= 24.0 * 60.0) {
        return Err(format!(
            "--minutes {} is out of range: use more than 0 and at most 1440",
            args.minutes
        ));
    }
    let slices = ((args.minutes * 60.0) / args.slice_secs as f64)
        .ceil()
        .max(1.0) as usize;
    let dir = common.out_dir("soak");
    let mut samples = Vec::new();
    for system in common.systems() {
        // One system at a time: both at once would share the 2 cores and the disk.
        let mut clusters = SideBySide::start(&[system], usize::from(args.nodes), common.timing())?;
        let outcome = soak_one(&mut clusters, system, slices, args, &mut samples);
        clusters.stop();
        outcome?;
    }
    let summary = summary(&samples);
    print!("{summary}");
    std::fs::create_dir_all(&dir)
        .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    write_json(
        &dir.join("results.json"),
        &SoakResults {
            minutes: args.minutes,
            slice_secs: args.slice_secs,
            nodes: args.nodes,
            clients: args.clients,
            samples: &samples,
        },
    )?;
    let path = dir.join("summary.txt");
    std::fs::write(&path, &summary)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    eprintln!("wrote {} and results.json", path.display());
    Ok(())
}

fn soak_one(
    clusters: &mut SideBySide,
    system: System,
    slices: usize,
    args: &SoakArgs,
    samples: &mut Vec<SoakSample>,
) -> Result<(), String> {
    let cluster_dir = clusters.system_dir(system);
    let running = clusters
        .get(system)
        .ok_or_else(|| format!("no {system} cluster is running"))?;
    let mut point = spec(&args.common, "puts", puts(), usize::from(args.clients));
    for slice in 0..slices {
        point.duration = Duration::from_secs(args.slice_secs);
        // Only the first slice warms up; the others continue the same load.
        if slice > 0 {
            point.warmup = Duration::ZERO;
        }
        let label = format!(
            "minute {:.1}",
            (slice + 1) as f64 * args.slice_secs as f64 / 60.0
        );
        let place = RunPlace {
            suite: "soak",
            label: &label,
            repeat: 0,
            counter: format!("[{:>3}/{slices}]", slice + 1),
        };
        let record = measure(running, &point, &place)?;
        let mut rss = Vec::new();
        for pid in running.cluster.server_pids().into_iter().flatten() {
            rss.push(rss_bytes(pid)?);
        }
        samples.push(SoakSample {
            system,
            minute: (slice + 1) as f64 * args.slice_secs as f64 / 60.0,
            ops_per_s: record.ops_per_s,
            p99_ms: record.latency.p99_ms,
            errors: record.errors,
            rss_bytes: rss,
            disk_bytes: directory_bytes(&cluster_dir),
        });
    }
    Ok(())
}

/// Bytes of every regular file under `dir` (0 for what cannot be read).
fn directory_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|entry| entry.ok())
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => directory_bytes(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// One line per slice, then per system: the largest member's memory and the disk bytes of
/// the second slice (the first ends the warm-up) against the last.
pub fn summary(samples: &[SoakSample]) -> String {
    let mut out = String::from("system  minute   ops/s    p99 ms  errors  max RSS MiB  disk MiB\n");
    for sample in samples {
        let max_rss = sample.rss_bytes.iter().copied().max().unwrap_or(0);
        out.push_str(&format!(
            "{:<6}  {:>6.1}  {:>7.0}  {:>8.2}  {:>6}  {:>11.1}  {:>8.1}\n",
            sample.system.name(),
            sample.minute,
            sample.ops_per_s,
            sample.p99_ms,
            sample.errors,
            mib(max_rss),
            mib(sample.disk_bytes)
        ));
    }
    let mut systems: Vec<System> = samples.iter().map(|sample| sample.system).collect();
    systems.dedup();
    for system in systems {
        let own: Vec<&SoakSample> = samples.iter().filter(|s| s.system == system).collect();
        let (Some(first), Some(last)) = (own.get(1.min(own.len() - 1)), own.last()) else {
            continue;
        };
        let max_rss = |sample: &SoakSample| sample.rss_bytes.iter().copied().max().unwrap_or(0);
        out.push_str(&format!(
            "{}: from minute {:.1} to {:.1}, max RSS {:.1} -> {:.1} MiB ({:.2}x), disk {:.1} -> {:.1} MiB ({:.2}x)\n",
            system.name(),
            first.minute,
            last.minute,
            mib(max_rss(first)),
            mib(max_rss(last)),
            max_rss(last) as f64 / max_rss(first).max(1) as f64,
            mib(first.disk_bytes),
            mib(last.disk_bytes),
            last.disk_bytes as f64 / first.disk_bytes.max(1) as f64,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(minute: f64, rss_mib: u64, disk_mib: u64) -> SoakSample {
        SoakSample {
            system: System::Tern,
            minute,
            ops_per_s: 1000.0,
            p99_ms: 2.0,
            errors: 0,
            rss_bytes: vec![rss_mib << 20, (rss_mib / 2) << 20],
            disk_bytes: disk_mib << 20,
        }
    }

    #[test]
    fn the_summary_compares_the_second_slice_with_the_last() {
        let text = summary(&[
            sample(0.5, 300, 90),
            sample(1.0, 100, 40),
            sample(1.5, 120, 60),
        ]);
        assert!(text.contains("from minute 1.0 to 1.5"), "{text}");
        assert!(text.contains("100.0 -> 120.0 MiB (1.20x)"), "{text}");
        assert!(text.contains("disk 40.0 -> 60.0 MiB (1.50x)"), "{text}");
    }

    #[test]
    fn directory_bytes_counts_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/x"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("y"), [0u8; 23]).unwrap();
        assert_eq!(directory_bytes(dir.path()), 123);
    }
}
