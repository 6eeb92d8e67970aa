//! The summary table on stdout: one row per point, tern and etcd side by side, with ratios.
//
// Contract: `pub fn summary_table(records: &[RunRecord]) -> String`: groups by (label, nodes),
// takes the median over repeats of each figure (ops/s, p50, p99, p99.9, CPU ms/op, peak RSS
// MiB), shows both systems, the spread (min-max of ops/s) and tern/etcd ratios (for latency,
// CPU and memory a ratio < 1 means tern is better; say so in the header).
// `pub fn election_table(trials: &[ElectionTrial]) -> String` (per system and timing: median,
// p90, max of new_leader_ms and first_write_ms, mean terms used, failures).
