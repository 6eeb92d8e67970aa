//! Plots, drawn as SVG with plotters and rasterised to PNG with resvg (system DejaVu fonts).
//
// Contract: each writes `<stem>.svg` and `<stem>.png`:
// `pub fn throughput_vs_clients(records: &[RunRecord], stem: &Path) -> Result<(), String>`
//   (x = clients, log scale; one line per system and op label; median over repeats),
// `pub fn latency_cdf(records: &[RunRecord], stem: &Path) -> Result<(), String>`
//   (x = latency ms log scale, y = percentile, one line per system/label),
// `pub fn by_cluster_size(records: &[RunRecord], stem: &Path) -> Result<(), String>`
//   (two panels: ops/s and p99 vs nodes, per system),
// `pub fn grouped_bars(records: &[RunRecord], stem: &Path, title: &str) -> Result<(), String>`
//   (ops/s per label, tern and etcd bars side by side: mix and stragglers),
// `pub fn election_times(trials: &[ElectionTrial], stem: &Path) -> Result<(), String>`
//   (per timing range and system, the spread of first_write_ms: box or dot strip).
