//! Latency summaries of an hdrhistogram (microseconds in, milliseconds out).
//
// Contract:
// `#[derive(Serialize, Deserialize, Clone, Debug)] pub struct LatencySummary { count: u64,
//   mean_ms, p50_ms, p90_ms, p99_ms, p999_ms, max_ms: f64 }`,
// `LatencySummary::of(&Histogram<u64>) -> LatencySummary`,
// `pub fn cdf_points(&Histogram<u64>) -> Vec<(f64 /*percentile 0-100*/, f64 /*ms*/)>`
// (a few hundred points, dense near the tail, for the CDF plot).
