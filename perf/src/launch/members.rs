//! What both launchers do the same way to their members: kill one, restart one, check that
//! all that should run do.

use std::time::Duration;

use tern_engine::local_process::ServerProcess;

/// How long members get to exit after SIGTERM before they get SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

fn member(members: &mut [ServerProcess], index: usize) -> Result<&mut ServerProcess, String> {
    let count = members.len();
    members
        .get_mut(index)
        .ok_or_else(|| format!("no member {index}: the cluster has {count} (indexes 0..{count})"))
}

/// SIGKILL to member `index`, then reaps it.
pub fn kill_member(members: &mut [ServerProcess], index: usize) -> Result<(), String> {
    member(members, index)?.kill()
}

/// Starts member `index` again with its command, data directory and log.
pub fn restart_member(members: &mut [ServerProcess], index: usize) -> Result<(), String> {
    member(members, index)?.restart()
}

/// The first member that should run but has exited, with its log's tail.
pub fn check_all_running(members: &mut [ServerProcess]) -> Result<(), String> {
    members
        .iter_mut()
        .try_for_each(ServerProcess::check_running)
}
