//! `soak`: a long closed-loop put workload on one cluster (or both systems, one after the
//! other), measured in slices, with every member's current resident memory and the cluster's
//! on-disk bytes sampled after each slice: does memory and disk stay bounded while the log is
//! compacted (tern snapshots every `--snapshot-entries` applied entries, 100000 by default)?

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use super::args::CommonArgs;
use super::clusters::SideBySide;
use super::runner::{measure, RunPlace};
use super::specs::{puts, spec};
use crate::metrics::proc_stats::rss_bytes;
use crate::report::plot::{over_time, TimePanel};
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

/// The restart after a system's soak: every member killed (SIGKILL) and started again on
/// its data directory; the cluster must answer a write within [`RESTART_READY_TIMEOUT`] and
/// hold every key the soak left, with the value it had.
#[derive(Clone, Debug, Serialize)]
pub struct RestartCheck {
    pub system: System,
    /// From starting the first member again to the first write the restarted cluster
    /// acknowledged (election included), in ms.
    pub restart_ms: f64,
    /// Keys read (linearizably) before the kill and compared after the restart.
    pub keys_checked: usize,
    /// Keys read before that were absent after the restart.
    pub keys_missing: usize,
    /// Keys whose value after the restart differed from the one read before.
    pub values_changed: usize,
}

#[derive(Serialize)]
struct SoakResults<'a> {
    minutes: f64,
    slice_secs: u64,
    nodes: u16,
    clients: u16,
    samples: &'a [SoakSample],
    restarts: &'a [RestartCheck],
}

/// Keys the workload writes (`key_name`: "perf/" and 12 digits); the ready probes' keys are
/// not among them.
const WORKLOAD_KEY_PREFIX: &[u8] = b"perf/0";
/// Bound on reading every workload key once (10,000 keys by default, in pages).
const READ_ALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound on the restarted cluster answering its first write.
const RESTART_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The slices the ratio over the end of the soak looks at: the last 8 minutes, as the
/// issue's acceptance states it.
const TAIL_MINUTES: f64 = 8.0;

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
    let mut restarts = Vec::new();
    for system in common.systems() {
        // One system at a time: both at once would share the 2 cores and the disk.
        let mut clusters = SideBySide::start(&[system], usize::from(args.nodes), common.timing())?;
        let outcome = soak_one(&mut clusters, system, slices, args, &mut samples)
            .and_then(|()| restart_check(&mut clusters, system));
        clusters.stop();
        restarts.push(outcome?);
    }
    let summary = summary(&samples, &restarts);
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
            restarts: &restarts,
        },
    )?;
    plot(&samples, &dir.join("soak"))?;
    let path = dir.join("summary.txt");
    std::fs::write(&path, &summary)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    eprintln!("wrote {}, results.json and soak.svg/.png", path.display());
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

/// Kills every member of `system`'s cluster after its soak, starts them again and checks
/// what they hold against a linearizable read taken before the kill.
fn restart_check(clusters: &mut SideBySide, system: System) -> Result<RestartCheck, String> {
    let running = clusters
        .get(system)
        .ok_or_else(|| format!("no {system} cluster is running"))?;
    eprintln!("{system}: reading every workload key before the restart");
    let before = running
        .driver
        .read_prefix(WORKLOAD_KEY_PREFIX, READ_ALL_TIMEOUT)?;
    let members = running.cluster.nodes();
    for member in 0..members {
        running.cluster.kill(member)?;
    }
    eprintln!("{system}: killed all {members} members (SIGKILL); starting them again");
    let started = Instant::now();
    for member in 0..members {
        running.cluster.restart(member)?;
    }
    running.cluster.wait_ready(RESTART_READY_TIMEOUT)?;
    let restart_ms = started.elapsed().as_secs_f64() * 1000.0;
    // The old driver's connections went with the killed processes.
    running.driver = running.cluster.connect()?;
    let after: BTreeMap<Vec<u8>, Vec<u8>> = running
        .driver
        .read_prefix(WORKLOAD_KEY_PREFIX, READ_ALL_TIMEOUT)?
        .into_iter()
        .collect();
    let check = compare(system, restart_ms, &before, &after);
    eprintln!(
        "{system}: restarted in {:.0} ms; {} keys checked, {} missing, {} changed",
        check.restart_ms, check.keys_checked, check.keys_missing, check.values_changed
    );
    Ok(check)
}

fn compare(
    system: System,
    restart_ms: f64,
    before: &[(Vec<u8>, Vec<u8>)],
    after: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> RestartCheck {
    let mut check = RestartCheck {
        system,
        restart_ms,
        keys_checked: before.len(),
        keys_missing: 0,
        values_changed: 0,
    };
    for (key, value) in before {
        match after.get(key) {
            None => check.keys_missing += 1,
            Some(found) if found != value => check.values_changed += 1,
            Some(_) => {}
        }
    }
    check
}

/// soak.svg/.png: the largest member's RSS and the cluster's disk bytes over the minutes.
fn plot(samples: &[SoakSample], stem: &Path) -> Result<(), String> {
    let mut systems: Vec<System> = samples.iter().map(|sample| sample.system).collect();
    systems.dedup();
    let line = |system: System, value: &dyn Fn(&SoakSample) -> f64| {
        let points = samples
            .iter()
            .filter(|sample| sample.system == system)
            .map(|sample| (sample.minute, value(sample)))
            .collect();
        (system, system.name().to_string(), points)
    };
    let panel = |title: &str, y_label: &str, value: &dyn Fn(&SoakSample) -> f64| TimePanel {
        title: title.to_string(),
        y_label: y_label.to_string(),
        lines: systems.iter().map(|&system| line(system, value)).collect(),
    };
    over_time(
        &[
            panel(
                "largest member's RSS",
                "MiB (VmRSS after each slice)",
                &|sample| mib(max_rss(sample)),
            ),
            panel("cluster's data directories", "MiB on disk", &|sample| {
                mib(sample.disk_bytes)
            }),
        ],
        stem,
        "Soak: memory and disk under continuous puts",
    )
}

fn max_rss(sample: &SoakSample) -> u64 {
    sample.rss_bytes.iter().copied().max().unwrap_or(0)
}

/// Max over min of `value` over the slices that end after `TAIL_MINUTES` before the last
/// one (a slice ending exactly then lies before that window).
fn tail_ratio(own: &[&SoakSample], value: impl Fn(&SoakSample) -> u64) -> f64 {
    let Some(last) = own.last() else {
        return 0.0;
    };
    let tail: Vec<u64> = own
        .iter()
        .filter(|sample| sample.minute > last.minute - TAIL_MINUTES + 1e-9)
        .map(|sample| value(sample))
        .collect();
    let max = tail.iter().copied().max().unwrap_or(0);
    let min = tail.iter().copied().min().unwrap_or(0);
    max as f64 / min.max(1) as f64
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
/// the second slice (the first ends the warm-up) against the last, their max/min over the
/// last `TAIL_MINUTES`, and the restart check.
pub fn summary(samples: &[SoakSample], restarts: &[RestartCheck]) -> String {
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
        out.push_str(&format!(
            "{}: over the last {TAIL_MINUTES} minutes max/min: RSS {:.2}, disk {:.2}\n",
            system.name(),
            tail_ratio(&own, max_rss),
            tail_ratio(&own, |sample| sample.disk_bytes),
        ));
    }
    for check in restarts {
        out.push_str(&format!(
            "{}: restart of every member (SIGKILL) to the first acknowledged write: {:.0} ms; \
             {} keys checked: {} missing, {} changed\n",
            check.system.name(),
            check.restart_ms,
            check.keys_checked,
            check.keys_missing,
            check.values_changed
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
        let text = summary(
            &[
                sample(0.5, 300, 90),
                sample(1.0, 100, 40),
                sample(1.5, 120, 60),
            ],
            &[],
        );
        assert!(text.contains("from minute 1.0 to 1.5"), "{text}");
        assert!(text.contains("100.0 -> 120.0 MiB (1.20x)"), "{text}");
        assert!(text.contains("disk 40.0 -> 60.0 MiB (1.50x)"), "{text}");
    }

    #[test]
    fn the_tail_ratio_covers_only_the_last_eight_minutes() {
        let samples: Vec<SoakSample> = (1..=10)
            .map(|minute| {
                sample(
                    f64::from(minute),
                    if minute == 1 {
                        500
                    } else {
                        100 + minute as u64
                    },
                    10,
                )
            })
            .collect();
        let own: Vec<&SoakSample> = samples.iter().collect();
        // Slices ending at minutes 3..=10 lie in the last 8 minutes: 110 / 103; minute 1's
        // 500 and minute 2's 102 do not.
        let ratio = tail_ratio(&own, max_rss);
        assert!((ratio - 110.0 / 103.0).abs() < 1e-9, "{ratio}");
    }

    #[test]
    fn the_restart_comparison_counts_missing_and_changed_keys() {
        let before = vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec()),
            (b"c".to_vec(), b"3".to_vec()),
        ];
        let after: BTreeMap<Vec<u8>, Vec<u8>> = [
            (b"a".to_vec(), b"1".to_vec()),
            (b"c".to_vec(), b"4".to_vec()),
            (b"d".to_vec(), b"5".to_vec()),
        ]
        .into_iter()
        .collect();
        let check = compare(System::Tern, 12.0, &before, &after);
        assert_eq!(
            (check.keys_checked, check.keys_missing, check.values_changed),
            (3, 1, 1)
        );
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
