//! CPU time and peak memory of server processes, and the machine's total CPU use, from /proc.
//
// Contract:
// `pub fn cpu_seconds(pid: u32) -> Result<f64, String>` (utime + stime of all threads),
// `pub fn peak_rss_bytes(pid: u32) -> Result<u64, String>` (VmHWM),
// `pub struct MachineCpu` with `MachineCpu::sample() -> Result<MachineCpu, String>` and
// `busy_cpu_seconds_since(&self, earlier: &MachineCpu) -> f64` (all processes, all cores),
// `pub fn cores() -> usize`.
