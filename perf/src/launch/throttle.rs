//! CPU throttling of chosen server processes, the same for both systems: a thread stops them
//! (SIGSTOP) for part of every period and lets them run (SIGCONT) for the rest.
//
// Contract: `Throttle::start(pids: Vec<u32>, run_percent: u8, period: Duration)
// -> Result<Throttle, String>` (an error for a run share outside 1..=100 or a zero period);
// dropping it ends the throttling and leaves every process running (SIGCONT).

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// Throttles a set of processes until dropped.
///
/// Only give it the PIDs of processes this program started and has not reaped (the cluster's
/// `server_pids`): a PID of a reaped process could belong to anyone. A process may exit while
/// throttled; signals to it then fail harmlessly.
pub struct Throttle {
    /// Dropped (or sent to) to end the thread at once, mid-period.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    pids: Vec<libc::pid_t>,
}

impl Throttle {
    /// Starts throttling `pids`: in every `period`, they run for `run_percent` % of it and are
    /// stopped for the rest. `run_percent` must be 1..=100 (100: never stopped) and `period`
    /// at least 1 ms.
    pub fn start(pids: Vec<u32>, run_percent: u8, period: Duration) -> Result<Throttle, String> {
        if !(1..=100).contains(&run_percent) {
            return Err(format!(
                "a throttle's run share must be 1..=100 %, not {run_percent}"
            ));
        }
        if period < Duration::from_millis(1) {
            return Err(format!(
                "a throttle's period must be at least 1 ms, not {} us",
                period.as_micros()
            ));
        }
        let pids = pids
            .into_iter()
            .map(|pid| match libc::pid_t::try_from(pid) {
                Ok(pid) if pid > 0 => Ok(pid),
                _ => Err(format!("{pid} is not a process id")),
            })
            .collect::<Result<Vec<_>, String>>()?;
        let run = period.mul_f64(f64::from(run_percent) / 100.0);
        let stopped = period.saturating_sub(run);
        let (stop, stop_requests) = mpsc::channel::<()>();
        let thread_pids = pids.clone();
        let thread = std::thread::Builder::new()
            .name("tern-perf-throttle".to_string())
            .spawn(move || {
                // Runs until the Throttle is dropped (the sender goes away or sends).
                loop {
                    signal_all(&thread_pids, libc::SIGCONT);
                    if stopped.is_zero() {
                        // 100 %: nothing to stop; just wait for the end.
                        let _ = stop_requests.recv();
                        return;
                    }
                    match stop_requests.recv_timeout(run) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    signal_all(&thread_pids, libc::SIGSTOP);
                    match stop_requests.recv_timeout(stopped) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })
            .map_err(|error| format!("cannot start the throttle thread: {error}"))?;
        Ok(Throttle {
            stop: Some(stop),
            thread: Some(thread),
            pids,
        })
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // After the thread ended, so no SIGSTOP can follow this.
        signal_all(&self.pids, libc::SIGCONT);
    }
}

fn signal_all(pids: &[libc::pid_t], signal: libc::c_int) {
    for &pid in pids {
        // SAFETY: kill(2) on a positive PID the caller started (see Throttle's docs); no
        // memory is involved. A failure (the process has exited) is harmless.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}
