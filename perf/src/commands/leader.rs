//! Finding the leader through the members' own status answers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::driver::Driver;

/// How long one member gets to answer a status request.
pub const STATUS_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between polls while waiting for a leader.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The leader most of `members` agree on, and its term.
pub fn agreed_leader(driver: &mut dyn Driver, members: &[usize]) -> Option<(usize, u64)> {
    let mut votes: BTreeMap<(usize, u64), usize> = BTreeMap::new();
    for &member in members {
        if let Ok(status) = driver.member_status(member, STATUS_TIMEOUT) {
            if let Some(leader) = status.leader_index {
                *votes.entry((leader, status.term)).or_default() += 1;
            }
        }
    }
    let quorum = members.len() / 2 + 1;
    votes
        .into_iter()
        .find(|(_, count)| *count >= quorum)
        .map(|(leader_and_term, _)| leader_and_term)
}

/// Waits (up to `timeout`) until a majority of `members` agree on a leader among `members`.
pub fn wait_for_leader(
    driver: &mut dyn Driver,
    members: &[usize],
    timeout: Duration,
) -> Result<(usize, u64), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((leader, term)) = agreed_leader(driver, members) {
            if members.contains(&leader) {
                return Ok((leader, term));
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "members {members:?} did not agree on a leader within {} s",
                timeout.as_secs()
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
