//! CPU throttling of chosen server processes, the same for both systems: a thread stops them
//! (SIGSTOP) for part of every period and lets them run (SIGCONT) for the rest.
//
// Contract: `Throttle::start(pids: Vec<u32>, run_percent: u8, period: Duration) -> Throttle`;
// dropping it ends the throttling and leaves every process running (SIGCONT).
