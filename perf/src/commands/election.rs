//! `election`: kill -9 the leader under light load and time the recovery, T trials per
//! election-timeout range, for tern and for etcd with comparable settings.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Args;

use super::args::Other;
use super::leader::wait_for_leader;
use super::output::{plot_or_warn, write_results};
use crate::driver::Driver;
use crate::launch::{self, ClusterSpec, ElectionTiming};
use crate::report::plot::election_times;
use crate::report::record::ElectionTrial;
use crate::report::table::election_table;
use crate::system::System;

/// How long a fresh cluster gets to commit its first write.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a trial waits for a new leader and a committed write before it counts as failed.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(15);
/// Each write probe's own timeout, the same for both systems; a probe that times out is
/// followed at once by the next. Short, so the time measured is the cluster's and not a
/// client's patience: etcd holds a write that reached the dead leader until its 5 s request
/// timeout, and tern's client would wait its attempt timeout on the dead connection.
const PROBE_TIMEOUT: Duration = Duration::from_millis(50);
/// How long members get to agree on a leader before a trial.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);
/// The light load before the kill: one write every this long, for `LIGHT_LOAD_WRITES` writes.
const LIGHT_LOAD_INTERVAL: Duration = Duration::from_millis(10);
const LIGHT_LOAD_WRITES: usize = 50;
/// How often the watcher asks each surviving member for its leader.
const STATUS_POLL_INTERVAL: Duration = Duration::from_millis(2);
/// How long one member gets to answer one status poll.
const STATUS_POLL_TIMEOUT: Duration = Duration::from_millis(50);

/// Leader failover time per election-timeout range.
///
/// For every range of --timeouts and every system: starts a cluster, and --trials times:
/// waits until a leader is agreed, writes lightly (one write per 10 ms for 0.5 s), kills the
/// leader with SIGKILL, then measures from the kill until (a) a surviving member reports a new
/// leader of a higher term (polled every 2 ms) and (b) a write through the survivors commits
/// (writes back to back, each given 50 ms), and the terms that took (more than 1: a split vote). The killed
/// member is restarted and rejoins before the next trial. etcd takes the range's lower bound
/// as --election-timeout (it draws from [T, 2T)); both get a heartbeat of a fifth of it.
/// Writes results.json, summary.txt and election_times.{svg,png} into <OUT>/election/.
///
/// Example: cargo run --release -p tern-perf -- election --with etcd --trials 10
/// Why was a trial slow: ... election --trials 5 --timeouts 12-25 --keep-logs /tmp/election-logs
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ElectionArgs {
    /// Also run this system.
    #[arg(long, value_enum, value_name = "SYSTEM")]
    pub with: Option<Other>,

    /// Members per cluster (at least 3: a majority must survive the kill).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(3..=11))]
    pub nodes: u16,

    /// Trials per range and system.
    #[arg(long, value_name = "T", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub trials: u32,

    /// Election-timeout ranges MIN-MAX in milliseconds.
    #[arg(long, value_name = "LIST", value_delimiter = ',',
          default_values_t = ["12-25".to_string(), "150-300".to_string(), "300-500".to_string()])]
    pub timeouts: Vec<String>,

    /// Where results go: <OUT>/election/. Default: perf/results in the source tree.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Keep every node's data directory and log under DIR/<system>-<range>/ after the run,
    /// logging at debug (tern) or info (etcd) instead of warn: for finding out why a trial
    /// was slow. Refused if DIR exists and is not empty (nothing is overwritten). Without it
    /// a temporary directory is used and removed.
    #[arg(long, value_name = "DIR")]
    pub keep_logs: Option<PathBuf>,
}

/// Parses "150-300" into a timing with a heartbeat of a fifth of the lower bound.
pub fn parse_timing(text: &str) -> Result<ElectionTiming, String> {
    let bad = || format!("--timeouts: '{text}' is not MIN-MAX in milliseconds, e.g. 150-300");
    let (min, max) = text.split_once('-').ok_or_else(bad)?;
    let min: u64 = min.trim().parse().map_err(|_| bad())?;
    let max: u64 = max.trim().parse().map_err(|_| bad())?;
    if min < 5 || max <= min || max > 60_000 {
        return Err(format!(
            "--timeouts: '{text}' must have 5 <= MIN < MAX <= 60000 (the heartbeat is MIN/5 ms)"
        ));
    }
    Ok(ElectionTiming {
        timeout_ms_min: min,
        timeout_ms_max: max,
        heartbeat_ms: (min / 5).max(1),
    })
}

pub fn run(args: &ElectionArgs) -> Result<(), String> {
    let timings = args
        .timeouts
        .iter()
        .map(|text| parse_timing(text))
        .collect::<Result<Vec<_>, _>>()?;
    let mut systems = vec![System::Tern];
    if args.with == Some(Other::Etcd) {
        systems.push(System::Etcd);
    }
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/results")))
        .join("election");
    let nodes = usize::from(args.nodes);
    if let Some(keep) = &args.keep_logs {
        let empty = std::fs::read_dir(keep).map_or(true, |mut entries| entries.next().is_none());
        if !empty {
            return Err(format!(
                "--keep-logs: {} exists and is not empty; name a new or empty directory",
                keep.display()
            ));
        }
    }
    let mut trials = Vec::new();
    for timing in &timings {
        for &system in &systems {
            let place = match &args.keep_logs {
                Some(keep) => NodeFiles::Kept(keep.join(format!(
                    "{system}-{}-{}",
                    timing.timeout_ms_min, timing.timeout_ms_max
                ))),
                None => NodeFiles::temporary()?,
            };
            run_system(
                system,
                nodes,
                *timing,
                args.trials as usize,
                &place,
                &mut trials,
            )?;
            if let NodeFiles::Kept(path) = &place {
                eprintln!("node logs kept in {}", path.display());
            }
        }
    }
    let summary = election_table(&trials);
    write_results(&dir, &systems, &trials, &summary)?;
    plot_or_warn(
        "election_times",
        election_times(&trials, &dir.join("election_times")),
    );
    Ok(())
}

/// Where one cluster's data directories and logs go.
enum NodeFiles {
    /// Removed when dropped.
    Temporary(tempfile::TempDir),
    /// Kept, with verbose logs (`--keep-logs`).
    Kept(PathBuf),
}

impl NodeFiles {
    fn temporary() -> Result<NodeFiles, String> {
        tempfile::Builder::new()
            .prefix("tern-perf-election-")
            .tempdir()
            .map(NodeFiles::Temporary)
            .map_err(|error| format!("cannot create a temporary directory: {error}"))
    }
}

/// All trials of one system at one timing, on one cluster.
fn run_system(
    system: System,
    nodes: usize,
    timing: ElectionTiming,
    trial_count: usize,
    place: &NodeFiles,
    trials: &mut Vec<ElectionTrial>,
) -> Result<(), String> {
    eprintln!("starting {nodes} {system} nodes ({})", timing.label());
    let spec = match place {
        NodeFiles::Temporary(dir) => ClusterSpec {
            nodes,
            timing,
            base_dir: dir.path().to_path_buf(),
            verbose_logs: false,
        },
        NodeFiles::Kept(path) => ClusterSpec {
            nodes,
            timing,
            base_dir: path.clone(),
            verbose_logs: true,
        },
    };
    let mut cluster = launch::launch(system, &spec)?;
    cluster.wait_ready(READY_TIMEOUT)?;
    let mut driver = cluster.connect()?;
    let mut watcher = cluster.connect()?;
    let all: Vec<usize> = (0..nodes).collect();
    for trial in 0..trial_count {
        let (leader, old_term) = wait_for_leader(driver.as_mut(), &all, SETTLE_TIMEOUT)?;
        // Light load, which also proves the cluster healthy before the kill.
        for write in 0..LIGHT_LOAD_WRITES {
            let key = format!("election/load/{write}");
            driver.probe_write(&all, key.as_bytes(), Duration::from_secs(5))?;
            std::thread::sleep(LIGHT_LOAD_INTERVAL);
        }
        let survivors: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&member| member != leader)
            .collect();
        let killed_at = Instant::now();
        cluster.kill(leader)?;
        let outcome = time_recovery(
            driver.as_mut(),
            watcher.as_mut(),
            &survivors,
            leader,
            old_term,
            killed_at,
            trial,
            spec.verbose_logs,
        );
        let (new_leader_ms, first_write_ms, terms_used, error) = outcome;
        println!(
            "{system} {} trial {:>2}: new leader {}, first write {}, terms {}{}",
            timing.label(),
            trial + 1,
            show_ms(new_leader_ms),
            show_ms(first_write_ms),
            terms_used.map_or("?".to_string(), |terms| terms.to_string()),
            error
                .as_ref()
                .map_or(String::new(), |error| format!(" ({error})")),
        );
        trials.push(ElectionTrial {
            system,
            nodes,
            timing,
            trial,
            killed_index: leader,
            new_leader_ms,
            first_write_ms,
            terms_used,
            error,
        });
        cluster.restart(leader)?;
        // The restarted member must be back in the cluster (knowing the leader) before the
        // next kill, or that kill could leave no majority.
        wait_for_member(watcher.as_mut(), leader, SETTLE_TIMEOUT)?;
        cluster.check_running()?;
    }
    drop(driver);
    drop(watcher);
    cluster.stop();
    Ok(())
}

/// (new leader ms, first write ms, terms used, error).
type Recovery = (Option<f64>, Option<f64>, Option<u64>, Option<String>);

/// Watches the survivors' status on one thread and writes through them on this one.
fn time_recovery(
    driver: &mut dyn Driver,
    watcher: &mut dyn Driver,
    survivors: &[usize],
    killed: usize,
    old_term: u64,
    killed_at: Instant,
    trial: usize,
    show_failed_probes: bool,
) -> Recovery {
    let stop = AtomicBool::new(false);
    let elected: Mutex<Option<(f64, u64)>> = Mutex::new(None);
    let mut first_write_ms = None;
    let mut error = None;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) && killed_at.elapsed() < RECOVERY_TIMEOUT {
                for &member in survivors {
                    if let Ok(status) = watcher.member_status(member, STATUS_POLL_TIMEOUT) {
                        let new = status
                            .leader_index
                            .is_some_and(|leader| leader != killed && status.term > old_term);
                        if new {
                            let at_ms = killed_at.elapsed().as_secs_f64() * 1000.0;
                            *elected.lock().unwrap_or_else(|poison| poison.into_inner()) =
                                Some((at_ms, status.term - old_term));
                            return;
                        }
                    }
                }
                std::thread::sleep(STATUS_POLL_INTERVAL);
            }
        });
        let mut attempt = 0u64;
        while killed_at.elapsed() < RECOVERY_TIMEOUT {
            attempt += 1;
            let key = format!("election/probe/{trial}/{attempt}");
            match driver.probe_write(survivors, key.as_bytes(), PROBE_TIMEOUT) {
                Ok(()) => {
                    first_write_ms = Some(killed_at.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                Err(problem) if show_failed_probes => eprintln!(
                    "  write probe {attempt} failed at {:.1} ms: {problem}",
                    killed_at.elapsed().as_secs_f64() * 1000.0
                ),
                Err(_) => {}
            }
        }
        if first_write_ms.is_none() {
            error = Some(format!(
                "no write committed within {} s",
                RECOVERY_TIMEOUT.as_secs()
            ));
        }
        // The watcher stops by itself once it saw a leader or at the recovery timeout.
        if first_write_ms.is_none() {
            stop.store(true, Ordering::Relaxed);
        }
    });
    let elected = elected
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner());
    if elected.is_none() && error.is_none() {
        error = Some("no survivor reported a new leader".to_string());
    }
    (
        elected.map(|(at_ms, _)| at_ms),
        first_write_ms,
        elected.map(|(_, terms)| terms),
        error,
    )
}

/// Waits until `member` answers and knows a leader.
fn wait_for_member(
    driver: &mut dyn Driver,
    member: usize,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(status) = driver.member_status(member, STATUS_POLL_TIMEOUT) {
            if status.leader_index.is_some() {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "the restarted member {member} did not rejoin (know a leader) within {} s",
        timeout.as_secs()
    ))
}

fn show_ms(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |ms| format!("{ms:.1} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_gets_a_heartbeat_of_a_fifth_of_its_lower_bound() {
        let timing = parse_timing("150-300").expect("valid range");
        assert_eq!(
            timing,
            ElectionTiming {
                timeout_ms_min: 150,
                timeout_ms_max: 300,
                heartbeat_ms: 30
            }
        );
        assert_eq!(parse_timing("12-25").expect("valid range").heartbeat_ms, 2);
    }

    #[test]
    fn malformed_ranges_are_refused_with_an_example() {
        for bad in ["150", "300-150", "a-b", "150-150", "1-3", ""] {
            let error = parse_timing(bad).expect_err(bad);
            assert!(error.contains("--timeouts"), "{bad}: {error}");
        }
    }
}
