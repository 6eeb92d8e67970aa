//! The driver's executor side: one glommio thread that owns every `KvClient` (they are not
//! `Send`) and serves the driver's jobs one at a time.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use tern_net::message::ReadConsistency as TernReadConsistency;
use tern_net::tls::Security;
use tern_net::{KvClient, KvClientConfig};

use super::load::{load, LOAD_INFLIGHT_MAX};
use super::probe::ProbeClients;
use super::run::{closed_loop, open_loop};
use super::status::StatusClients;
use crate::driver::{key_after, KeyValue, MemberStatus, Progress, RunStats, READ_PREFIX_PAGE_KEYS};
use crate::workload::{LoopKind, ReadConsistency, WorkloadSpec};

/// Requests one tern client keeps in flight by default (`KvClientConfig::new`'s 1024).
const CLIENT_INFLIGHT_DEFAULT: usize = 1024;
/// Most requests one run's client keeps in flight: below the servers' default
/// `results_per_session_max` (4096), as the client requires. More concurrent operations
/// wait in the client for a slot (that wait is part of their latency).
const CLIENT_INFLIGHT_MAX: usize = 4000;

/// Where a job's answer goes: a channel of one slot.
pub type Reply<T> = flume::Sender<T>;

/// What the driver asks of its executor.
pub enum Job {
    /// `Driver::load`: counts into `progress`, answers once every key is written (or not).
    Load {
        spec: WorkloadSpec,
        progress: Arc<Progress>,
        reply: Reply<Result<(), String>>,
    },
    /// `Driver::run`: counts into `progress`, answers with the measured window's stats.
    Run {
        spec: WorkloadSpec,
        progress: Arc<Progress>,
        reply: Reply<Result<RunStats, String>>,
    },
    /// `Driver::member_status`.
    MemberStatus {
        member_index: usize,
        timeout: Duration,
        reply: Reply<Result<MemberStatus, String>>,
    },
    /// `Driver::probe_write`.
    ProbeWrite {
        members: Vec<usize>,
        key: Vec<u8>,
        timeout: Duration,
        reply: Reply<Result<(), String>>,
    },
    /// `Driver::read_prefix` (the caller bounds the wait).
    ReadPrefix {
        prefix: Vec<u8>,
        reply: Reply<Result<Vec<KeyValue>, String>>,
    },
}

/// Serves jobs until the driver drops its sender, then closes every client.
pub async fn serve(jobs: flume::Receiver<Job>, addrs: Vec<SocketAddr>, security: Security) {
    let mut probes = ProbeClients::default();
    let mut statuses = StatusClients::new(addrs.len());
    while let Ok(job) = jobs.recv_async().await {
        // A reply whose receiver is gone (the driver gave up waiting) is dropped.
        match job {
            Job::Load {
                spec,
                progress,
                reply,
            } => {
                let result = run_load(&addrs, &security, &spec, progress).await;
                let _ = reply.try_send(result);
            }
            Job::Run {
                spec,
                progress,
                reply,
            } => {
                let result = run_workload(&addrs, &security, &spec, progress).await;
                let _ = reply.try_send(result);
            }
            Job::MemberStatus {
                member_index,
                timeout,
                reply,
            } => {
                let result =
                    member_status(&mut statuses, &addrs, &security, member_index, timeout).await;
                let _ = reply.try_send(result);
            }
            Job::ProbeWrite {
                members,
                key,
                timeout,
                reply,
            } => {
                let result = probes
                    .probe_write(&addrs, &security, &members, &key, timeout)
                    .await;
                let _ = reply.try_send(result);
            }
            Job::ReadPrefix { prefix, reply } => {
                let result = read_prefix(&addrs, &security, &prefix).await;
                let _ = reply.try_send(result);
            }
        }
    }
    probes.close_all();
    statuses.close_all();
}

/// A client of every member with the library's default timeouts.
async fn connect(
    addrs: &[SocketAddr],
    security: &Security,
    consistency: TernReadConsistency,
    inflight_requests_max: usize,
) -> Result<Rc<KvClient>, String> {
    let mut config = KvClientConfig::new(addrs.to_vec(), security.clone());
    config.read_consistency = consistency;
    config.inflight_requests_max = inflight_requests_max;
    KvClient::connect(config)
        .await
        .map(Rc::new)
        .map_err(|error| format!("cannot connect to the tern cluster at {addrs:?}: {error}"))
}

/// Every pair under `prefix`, page by page, linearizable.
async fn read_prefix(
    addrs: &[SocketAddr],
    security: &Security,
    prefix: &[u8],
) -> Result<Vec<KeyValue>, String> {
    let client = connect(
        addrs,
        security,
        TernReadConsistency::Linearizable,
        CLIENT_INFLIGHT_DEFAULT,
    )
    .await?;
    let end = tern_kv::prefix_end(prefix);
    let mut pairs = Vec::new();
    let mut start = prefix.to_vec();
    let result = loop {
        match client
            .range(
                Bytes::from(start.clone()),
                end.clone(),
                READ_PREFIX_PAGE_KEYS,
            )
            .await
        {
            Err(error) => break Err(format!("tern driver: range read failed: {error}")),
            Ok((page, more)) => {
                pairs.extend(
                    page.into_iter()
                        .map(|(key, value)| (key.to_vec(), value.to_vec())),
                );
                match pairs.last() {
                    Some((last, _)) if more => start = key_after(last),
                    _ => break Ok(pairs),
                }
            }
        }
    };
    client.close();
    result
}

async fn run_load(
    addrs: &[SocketAddr],
    security: &Security,
    spec: &WorkloadSpec,
    progress: Arc<Progress>,
) -> Result<(), String> {
    let client = connect(
        addrs,
        security,
        TernReadConsistency::ServerDefault,
        CLIENT_INFLIGHT_DEFAULT.max(LOAD_INFLIGHT_MAX),
    )
    .await?;
    let result = load(client.clone(), spec, progress).await;
    client.close();
    result
}

/// The run's concurrency, after checking the spec.
fn concurrency(spec: &WorkloadSpec) -> Result<usize, String> {
    spec.mix.validate()?;
    if spec.duration.is_zero() {
        return Err("the run's duration must be above zero".to_string());
    }
    match spec.loop_kind {
        LoopKind::Closed { clients: 0 } => {
            Err("a closed loop needs at least one client".to_string())
        }
        LoopKind::Closed { clients } => Ok(clients),
        LoopKind::Open {
            rate_ops_per_s,
            inflight_max,
        } if rate_ops_per_s == 0 || inflight_max == 0 => Err(format!(
            "an open loop needs a rate and an in-flight bound above zero (rate {rate_ops_per_s} \
             ops/s, inflight_max {inflight_max})"
        )),
        LoopKind::Open { inflight_max, .. } => Ok(inflight_max),
    }
}

fn tern_consistency(consistency: ReadConsistency) -> TernReadConsistency {
    match consistency {
        ReadConsistency::Linearizable => TernReadConsistency::Linearizable,
        ReadConsistency::Lease => TernReadConsistency::Lease,
        ReadConsistency::Serializable => TernReadConsistency::Serializable,
    }
}

async fn run_workload(
    addrs: &[SocketAddr],
    security: &Security,
    spec: &WorkloadSpec,
    progress: Arc<Progress>,
) -> Result<RunStats, String> {
    let concurrency = concurrency(spec)?;
    let inflight = concurrency.clamp(CLIENT_INFLIGHT_DEFAULT, CLIENT_INFLIGHT_MAX);
    let client = connect(
        addrs,
        security,
        tern_consistency(spec.consistency),
        inflight,
    )
    .await?;
    let stats = match spec.loop_kind {
        LoopKind::Closed { clients } => closed_loop(client.clone(), spec, clients, progress).await,
        LoopKind::Open {
            rate_ops_per_s,
            inflight_max,
        } => open_loop(client.clone(), spec, rate_ops_per_s, inflight_max, progress).await,
    };
    client.close();
    Ok(stats)
}

async fn member_status(
    statuses: &mut StatusClients,
    addrs: &[SocketAddr],
    security: &Security,
    member_index: usize,
    timeout: Duration,
) -> Result<MemberStatus, String> {
    let addr = addrs.get(member_index).copied().ok_or_else(|| {
        format!(
            "member {member_index} does not exist (the cluster has {})",
            addrs.len()
        )
    })?;
    let status = statuses
        .status(member_index, addr, security, timeout)
        .await
        .map_err(|error| format!("status of member {member_index} ({addr}): {error}"))?;
    member_status_of(status.term, status.leader_id, addrs.len())
        .map_err(|problem| format!("status of member {member_index} ({addr}): {problem}"))
}

/// Node ids are 1-based in launch order: node `id` is member `id - 1`.
fn member_status_of(
    term: u64,
    leader_id: Option<u64>,
    members: usize,
) -> Result<MemberStatus, String> {
    let leader_index = match leader_id {
        None => None,
        Some(id) => {
            let index = usize::try_from(id)
                .ok()
                .and_then(|id| id.checked_sub(1))
                .filter(|&index| index < members)
                .ok_or_else(|| {
                    format!(
                        "it names node {id} as leader, not one of the {members} members (ids \
                         1 ..= {members}): is this the cluster the driver was given?"
                    )
                })?;
            Some(index)
        }
    };
    Ok(MemberStatus { term, leader_index })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_map_to_member_indices() {
        assert_eq!(
            member_status_of(7, Some(2), 3),
            Ok(MemberStatus {
                term: 7,
                leader_index: Some(1)
            })
        );
        assert_eq!(
            member_status_of(1, None, 3),
            Ok(MemberStatus {
                term: 1,
                leader_index: None
            })
        );
        assert!(member_status_of(1, Some(0), 3).is_err());
        assert!(member_status_of(1, Some(4), 3).is_err());
    }
}
