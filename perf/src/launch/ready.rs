//! Waiting for a fresh or recovering cluster: a write through the system's own command-line
//! client, repeated until it commits (so readiness does not depend on the drivers).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tern_engine::local_process::{log_tail, ServerProcess};

use crate::system::System;

/// Pause between two failed probes.
const PROBE_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Most bytes of a failed probe's output kept for the error message.
const PROBE_OUTPUT_BYTES_MAX: usize = 1024;

/// One probe command: a write that exits 0 once committed.
pub struct Probe {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Extra environment variables.
    pub env: Vec<(OsString, OsString)>,
}

/// Runs `probe` until it exits 0, at most until `timeout` has passed (each probe bounds its
/// own wait). Fails at once, with the member's log, if a member that should run has exited;
/// after `timeout`, with the last probe's output and every member's log tail.
pub fn wait_until_probe_succeeds(
    system: System,
    members: &mut [ServerProcess],
    probe: &Probe,
    timeout: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    let mut attempts = 0u64;
    let mut last_failure = String::from("(no probe ran)");
    while attempts == 0 || start.elapsed() < timeout {
        attempts += 1;
        for member in members.iter_mut() {
            member
                .check_running()
                .map_err(|error| format!("{system} cluster not ready: {error}"))?;
        }
        let output = Command::new(&probe.program)
            .args(&probe.args)
            .envs(probe.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .output()
            .map_err(|error| {
                format!(
                    "cannot run {} to check that the {system} cluster is ready: {error}",
                    probe.program.display()
                )
            })?;
        if output.status.success() {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stdout));
        let text = text.trim();
        let cut = text.floor_char_boundary_compat(PROBE_OUTPUT_BYTES_MAX);
        last_failure = format!("{} ({}): {}", probe.program.display(), output.status, cut);
        std::thread::sleep(PROBE_RETRY_PAUSE);
    }
    let logs = members
        .iter()
        .map(|member| {
            format!(
                "  {} (log {}):\n{}",
                member.name(),
                member.log_path().display(),
                log_tail(member.log_path())
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Err(format!(
        "the {system} cluster did not commit a write within {} ms ({attempts} attempts); the \
         last attempt said: {last_failure}\nmember logs:\n{logs}",
        timeout.as_millis()
    ))
}

/// `str::floor_char_boundary` is not stable yet: the longest prefix of at most `bytes` bytes
/// that ends on a character boundary.
trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, bytes: usize) -> &str;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, bytes: usize) -> &str {
        let mut end = bytes.min(self.len());
        while !self.is_char_boundary(end) {
            end -= 1;
        }
        &self[..end]
    }
}
