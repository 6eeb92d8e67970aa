//! CPU time and peak memory of server processes, and the machine's total CPU use, from /proc.

use std::fs;

/// Clock ticks per second of the times in /proc (USER_HZ); 100 on every Linux port when
/// sysconf cannot say.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

fn read_proc(path: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|error| format!("cannot read {path}: {error}"))
}

/// User plus system CPU seconds of process `pid` so far, all its threads included (the
/// process's /proc/PID/stat line sums its threads; children it waited for are not counted).
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let line = read_proc(&path)?;
    // Field 2 is the command name in parentheses and may itself hold spaces or ')': the
    // fields that follow start after the last ')'.
    let after_name = line
        .rfind(')')
        .map(|end| &line[end + 1..])
        .ok_or_else(|| format!("{path} of process {pid} has no command name: {line:?}"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name come field 3 (state) onwards: utime is field 14, stime field 15.
    let field = |index: usize, name: &str| -> Result<u64, String> {
        fields
            .get(index)
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| format!("{path} of process {pid} has no readable {name}: {line:?}"))
    };
    let ticks = field(14 - 3, "utime")? + field(15 - 3, "stime")?;
    Ok(ticks as f64 / ticks_per_second())
}

/// The peak resident set size of process `pid` (VmHWM), in bytes.
pub fn peak_rss_bytes(pid: u32) -> Result<u64, String> {
    status_kib(pid, "VmHWM").map(|kib| kib * 1024)
}

/// The current resident set size of process `pid` (VmRSS), in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64, String> {
    status_kib(pid, "VmRSS").map(|kib| kib * 1024)
}

/// A "<field>:     12345 kB" line of /proc/<pid>/status, in KiB.
fn status_kib(pid: u32, field: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = read_proc(&path)?;
    let prefix = format!("{field}:");
    let line = status
        .lines()
        .find(|line| line.starts_with(&prefix))
        .ok_or_else(|| format!("{path} of process {pid} has no {field} line (a kernel thread?)"))?;
    line.split_whitespace()
        .nth(1)
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| format!("{path} of process {pid}: unreadable {field} line {line:?}"))
}

/// The machine's cumulative CPU time, all processes and all cores (the first line of
/// /proc/stat), to measure how busy the machine was over a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineCpu {
    /// user + nice + system + irq + softirq + steal, in clock ticks (guest time is already
    /// inside user; idle and iowait are not busy).
    busy_ticks: u64,
}

impl MachineCpu {
    pub fn sample() -> Result<MachineCpu, String> {
        let path = "/proc/stat";
        let stat = read_proc(path)?;
        let line = stat
            .lines()
            .next()
            .filter(|line| line.starts_with("cpu "))
            .ok_or_else(|| format!("{path} does not start with the total \"cpu\" line"))?;
        let ticks: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|text| text.parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|error| format!("{path}: unreadable cpu line {line:?}: {error}"))?;
        // user nice system idle iowait irq softirq steal [guest guest_nice]
        if ticks.len() < 8 {
            return Err(format!(
                "{path}: the cpu line has {} fields, expected at least 8: {line:?}",
                ticks.len()
            ));
        }
        let busy_ticks = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7];
        Ok(MachineCpu { busy_ticks })
    }

    /// CPU seconds spent busy, summed over all cores, between `earlier` and this sample
    /// (0 if `earlier` is in fact later).
    pub fn busy_cpu_seconds_since(&self, earlier: &MachineCpu) -> f64 {
        self.busy_ticks.saturating_sub(earlier.busy_ticks) as f64 / ticks_per_second()
    }
}

/// The number of online CPUs (the cores /proc/stat counts), at least 1.
pub fn cores() -> usize {
    // SAFETY: sysconf only reads a configuration value.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if online > 0 {
        online as usize
    } else {
        std::thread::available_parallelism().map_or(1, |count| count.get())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Spins until this process has used `cpu` more CPU time, giving up after `guard`.
    fn burn(cpu: f64, guard: Duration) -> f64 {
        let pid = std::process::id();
        let start = cpu_seconds(pid).unwrap();
        let deadline = Instant::now() + guard;
        let mut sink = 0u64;
        while Instant::now() < deadline {
            for i in 0..100_000u64 {
                sink = sink.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(sink);
            if cpu_seconds(pid).unwrap() - start >= cpu {
                break;
            }
        }
        cpu_seconds(pid).unwrap() - start
    }

    #[test]
    fn own_cpu_time_grows_with_a_busy_loop() {
        let used = burn(0.2, Duration::from_secs(30));
        assert!(used >= 0.2, "only {used} s of CPU counted");
        // Far below anything a 30 s guard on a few threads could reach.
        assert!(used < 1000.0, "{used} s of CPU is not plausible");
    }

    #[test]
    fn peak_rss_of_this_process_is_positive() {
        let bytes = peak_rss_bytes(std::process::id()).unwrap();
        // A test binary maps at least a few hundred KiB; less than 1 TiB surely.
        assert!(bytes > 100 * 1024 && bytes < 1 << 40, "{bytes} bytes");
        assert_eq!(bytes % 1024, 0);
    }

    #[test]
    fn a_missing_pid_is_an_error_naming_it() {
        // Above the kernel's pid_max limit (4,194,304): no process can have it.
        let pid = 99_999_999;
        let error = cpu_seconds(pid).unwrap_err();
        assert!(error.contains("/proc/99999999/stat"), "{error}");
        let error = peak_rss_bytes(pid).unwrap_err();
        assert!(error.contains("/proc/99999999/status"), "{error}");
    }

    #[test]
    fn machine_cpu_counts_a_busy_loop() {
        let before = MachineCpu::sample().unwrap();
        burn(0.2, Duration::from_secs(30));
        let after = MachineCpu::sample().unwrap();
        let busy = after.busy_cpu_seconds_since(&before);
        // The machine was at least as busy as this process. Both ends of every core's counter
        // are sampled at 100 Hz, so each core can lose a tick at each end: on 2 cores that is
        // 4 ticks (CI measured 0.18 s once against a 2-tick allowance); allow 5.
        assert!(busy >= 0.2 - 0.05, "machine busy {busy} s");
        assert_eq!(before.busy_cpu_seconds_since(&after), 0.0);
        assert!(cores() >= 1);
    }
}
