//! The JSON records: one per measured run, one per election trial, and the file around them.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::launch::ElectionTiming;
use crate::metrics::latency::LatencySummary;
use crate::metrics::proc_stats;
use crate::system::System;
use crate::workload::WorkloadSpec;

/// One measured run of one system.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RunRecord {
    /// The subcommand that made it ("compare", "scale", "mix", "stragglers").
    pub suite: String,
    pub system: System,
    pub nodes: usize,
    /// The point this run measures ("puts c=16", "ycsb-a"): tables group runs by label and
    /// nodes, and take medians over repeats.
    pub label: String,
    /// 0-based repeat of this point.
    pub repeat: usize,
    pub workload: WorkloadSpec,
    pub timing: ElectionTiming,
    pub ops_ok: u64,
    pub errors: u64,
    /// Failures per kind: count and the first message.
    pub error_kinds: BTreeMap<String, (u64, String)>,
    /// Open loop: requests due while the in-flight bound was reached.
    pub late: u64,
    pub elapsed_s: f64,
    pub ops_per_s: f64,
    /// All operations.
    pub latency: LatencySummary,
    /// Per operation kind ("read", "update", ...).
    pub latency_by_kind: BTreeMap<String, LatencySummary>,
    /// (percentile 0-100, ms), see `metrics::latency::cdf_points`.
    pub cdf: Vec<(f64, f64)>,
    /// CPU seconds of all server processes during the measured window.
    pub server_cpu_s: f64,
    pub cpu_ms_per_op: f64,
    /// Peak RSS of each server, member index order.
    pub peak_rss_bytes: Vec<u64>,
    /// Average busy cores of the whole machine during the window (servers and clients).
    pub machine_busy_cores: f64,
    /// Busy cores not accounted for by the servers (the driver, and anything else running).
    pub other_busy_cores: f64,
    pub started_at_unix_s: u64,
}

/// One kill of a leader and what followed.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ElectionTrial {
    pub system: System,
    pub nodes: usize,
    pub timing: ElectionTiming,
    /// 0-based.
    pub trial: usize,
    /// The member killed (the leader at the time).
    pub killed_index: usize,
    /// From the kill to a member reporting a new leader.
    pub new_leader_ms: Option<f64>,
    /// From the kill to the first write committed after it.
    pub first_write_ms: Option<f64>,
    /// Terms between the old leader's and the new one's (more than 1: split votes).
    pub terms_used: Option<u64>,
    /// Why the trial failed, if it did.
    pub error: Option<String>,
}

/// The machine the results come from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MachineInfo {
    pub cores: usize,
    /// /proc/sys/kernel/osrelease.
    pub kernel: String,
    /// The first "model name" of /proc/cpuinfo.
    pub cpu_model: String,
}

impl MachineInfo {
    /// This machine; a figure that cannot be read is "unknown" (it is information, not a
    /// reason to fail a run).
    pub fn detect() -> MachineInfo {
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|text| text.trim().to_string())
            .unwrap_or_else(|_| "unknown".to_string());
        let cpu_model = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| cpu_model_of(&text))
            .unwrap_or_else(|| "unknown".to_string());
        MachineInfo {
            cores: proc_stats::cores(),
            kernel,
            cpu_model,
        }
    }
}

/// The first "model name" (x86) or "Model"/"Hardware" (some ARM kernels) of a cpuinfo text.
fn cpu_model_of(cpuinfo: &str) -> Option<String> {
    ["model name", "Model", "Hardware"]
        .iter()
        .find_map(|field| {
            cpuinfo.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                (name.trim() == *field && !value.trim().is_empty())
                    .then(|| value.trim().to_string())
            })
        })
}

/// A results file: how the records were made, where, and the records.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ResultsFile<T> {
    /// The exact command line that produced the file.
    pub command_line: String,
    pub tern_version: String,
    pub etcd_version: String,
    pub machine: MachineInfo,
    pub records: Vec<T>,
}

/// Writes `value` as pretty JSON to `path`, creating its parent directories.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        fs::create_dir_all(parent).map_err(|error| {
            format!("cannot create the directory {}: {error}", parent.display())
        })?;
    }
    let mut json = serde_json::to_string_pretty(value)
        .map_err(|error| format!("cannot encode the results for {}: {error}", path.display()))?;
    json.push('\n');
    fs::write(path, json).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// Reads a JSON file written by [`write_json`] (to re-plot or re-tabulate saved results).
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| {
        format!(
            "{} is not a results file of this version of tern-perf: {error}",
            path.display()
        )
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::workload::{KeyDistribution, LoopKind, OpMix, ReadConsistency};

    /// A small synthetic record (shared with the table and plot tests).
    pub(crate) fn record(
        system: System,
        label: &str,
        nodes: usize,
        clients: usize,
        repeat: usize,
        ops_per_s: f64,
        p99_ms: f64,
    ) -> RunRecord {
        let latency = LatencySummary {
            count: 1000,
            mean_ms: p99_ms / 4.0,
            p50_ms: p99_ms / 5.0,
            p90_ms: p99_ms / 2.0,
            p99_ms,
            p999_ms: p99_ms * 2.0,
            max_ms: p99_ms * 3.0,
        };
        RunRecord {
            suite: "test".to_string(),
            system,
            nodes,
            label: label.to_string(),
            repeat,
            workload: WorkloadSpec {
                name: label.split(" c=").next().unwrap_or(label).to_string(),
                loop_kind: LoopKind::Closed { clients },
                key_space: 1000,
                value_bytes: 100,
                distribution: KeyDistribution::Uniform,
                mix: OpMix::reads_and_updates(0),
                scan_length_max: 1,
                duration: Duration::from_secs(10),
                warmup: Duration::from_secs(1),
                consistency: ReadConsistency::Linearizable,
                seed: 1,
            },
            timing: ElectionTiming::DEFAULT,
            ops_ok: (ops_per_s * 10.0) as u64,
            errors: 0,
            error_kinds: BTreeMap::new(),
            late: 0,
            elapsed_s: 10.0,
            ops_per_s,
            latency: latency.clone(),
            latency_by_kind: BTreeMap::from([("update".to_string(), latency)]),
            cdf: vec![
                (0.0, p99_ms / 10.0),
                (50.0, p99_ms / 5.0),
                (90.0, p99_ms / 2.0),
                (99.0, p99_ms),
                (99.9, p99_ms * 2.0),
                (100.0, p99_ms * 3.0),
            ],
            server_cpu_s: 5.0,
            cpu_ms_per_op: 5000.0 / (ops_per_s * 10.0),
            peak_rss_bytes: vec![50 << 20; nodes],
            machine_busy_cores: 1.5,
            other_busy_cores: 0.5,
            started_at_unix_s: 1_700_000_000,
        }
    }

    #[test]
    fn results_round_trip_through_a_new_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/results.json");
        let file = ResultsFile {
            command_line: "tern-perf compare".to_string(),
            tern_version: "0.1.0".to_string(),
            etcd_version: "3.4.23".to_string(),
            machine: MachineInfo::detect(),
            records: vec![record(System::Tern, "puts c=1", 3, 1, 0, 1000.0, 2.0)],
        };
        write_json(&path, &file).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\n  \"command_line\""), "not pretty: {text}");
        let back: ResultsFile<RunRecord> = read_json(&path).unwrap();
        assert_eq!(back.records.len(), 1);
        assert_eq!(back.records[0].system, System::Tern);
        assert_eq!(back.records[0].workload, file.records[0].workload);
        assert_eq!(back.machine, file.machine);
    }

    #[test]
    fn machine_info_is_read() {
        let machine = MachineInfo::detect();
        assert!(machine.cores >= 1);
        assert_ne!(machine.kernel, "unknown");
        assert!(!machine.cpu_model.is_empty());
        assert_eq!(
            cpu_model_of("processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\n").as_deref(),
            Some("Some CPU @ 2.0GHz")
        );
        assert_eq!(cpu_model_of("nothing here"), None);
    }

    #[test]
    fn a_bad_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        fs::write(&path, "{").unwrap();
        let error = read_json::<ResultsFile<RunRecord>>(&path).unwrap_err();
        assert!(error.contains("bad.json"), "{error}");
    }
}
