//! Server-side measurements from /proc, and latency summaries.

pub mod latency;
pub mod proc_stats;
