//! The JSON records.
//
// Contract (all Serialize + Deserialize + Clone + Debug):
// `pub struct RunRecord { suite: String, system: System, nodes: usize, label: String,
//   repeat: usize, workload: WorkloadSpec, timing: ElectionTiming, ops_ok: u64, errors: u64,
//   error_kinds: BTreeMap<String, (u64, String)>, late: u64, elapsed_s: f64, ops_per_s: f64,
//   latency: LatencySummary, latency_by_kind: BTreeMap<String, LatencySummary>,
//   cdf: Vec<(f64, f64)>, server_cpu_s: f64, cpu_ms_per_op: f64, peak_rss_bytes: Vec<u64>,
//   machine_busy_cores: f64, other_busy_cores: f64, started_at_unix_s: u64 }`
// `pub struct ElectionTrial { system, nodes, timing: ElectionTiming, trial: usize,
//   killed_index: usize, new_leader_ms: Option<f64>, first_write_ms: Option<f64>,
//   terms_used: Option<u64>, error: Option<String> }`
// `pub struct ResultsFile<T> { command_line: String, tern_version: String, etcd_version: String,
//   machine: MachineInfo { cores, kernel, cpu_model }, records: Vec<T> }`
// `pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), String>`.
