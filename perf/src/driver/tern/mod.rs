//! The tern driver: workloads through tern-net's `KvClient`.
//!
//! `KvClient` lives on a glommio executor and is not `Send`, while [`Driver`] is synchronous
//! and `Send`. So the driver owns one long-lived executor thread ([`worker`]) that holds every
//! client, sends it one job at a time over a channel and waits for the answer. Progress
//! counters are the executor's own (`Arc`); the waiting caller copies their growth into the
//! caller's [`Progress`] as it goes.
//!
//! Files: `worker.rs` (the executor side and its jobs), `run.rs` (closed and open loops),
//! `load.rs`, `ops.rs` (one operation, error kinds), `probe.rs` (cached probe clients),
//! `status.rs` (cached member status connections).

mod load;
mod ops;
mod probe;
mod run;
mod status;
mod worker;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tern_net::certs::load_credentials;
use tern_net::tls::{Identity, Security};

pub use load::{LOAD_ATTEMPTS_PER_KEY, LOAD_INFLIGHT_MAX};
pub use ops::KIND_NOT_FOUND;

use super::{Driver, KeyValue, MemberStatus, Progress, RunStats, TernEndpoints};
use crate::workload::WorkloadSpec;
use worker::Job;

/// Jobs waiting for the executor: calls are synchronous, so one at most.
const JOBS_QUEUED_MAX: usize = 1;
/// How often a waiting call copies the executor's progress into the caller's.
const PROGRESS_COPY_INTERVAL: Duration = Duration::from_millis(100);
/// Hang guard added to a job's own bound (its timeouts, or the run's length plus the client's
/// 10 s operation timeout): a waiting call gives up after that.
const JOB_WAIT_MARGIN: Duration = Duration::from_secs(60);
/// The client library's default operation timeout (runs keep it): the longest an operation
/// started at the end of a run may take.
const CLIENT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// A driver for one tern cluster. Dropping it closes its clients and joins its thread.
pub struct TernDriver {
    members: usize,
    jobs: Option<flume::Sender<Job>>,
    executor: Option<JoinHandle<()>>,
}

impl TernDriver {
    /// Loads the client certificate from `endpoints.cert_dir` and starts the executor thread.
    /// Does not contact the cluster (a run that cannot connect fails then).
    pub fn connect(endpoints: TernEndpoints) -> Result<TernDriver, String> {
        if endpoints.client_addrs.is_empty() {
            return Err("the tern cluster has no client addresses".to_string());
        }
        let credentials =
            load_credentials(&endpoints.cert_dir, Identity::Client).map_err(|error| {
                format!(
                "tern client certificate in {}: {error} (the directory `tern certs` wrote, with \
                 ca.pem, client.pem and client.key)",
                endpoints.cert_dir.display()
            )
            })?;
        let security = Security::MutualTls(credentials);
        let (jobs, receiver) = flume::bounded(JOBS_QUEUED_MAX);
        let addrs = endpoints.client_addrs.clone();
        let executor = tern_net::runtime::run_executor("tern-driver", move || {
            worker::serve(receiver, addrs, security)
        })
        .map_err(|error| format!("cannot start the tern driver's executor thread: {error}"))?;
        Ok(TernDriver {
            members: endpoints.client_addrs.len(),
            jobs: Some(jobs),
            executor: Some(executor),
        })
    }

    /// Sends a job made with its reply channel and waits (at most `wait_max`) for the answer,
    /// copying `executor_progress` into `progress` meanwhile.
    fn call<T>(
        &self,
        make_job: impl FnOnce(flume::Sender<T>) -> Job,
        wait_max: Duration,
        progress: Option<(&Arc<Progress>, &Progress)>,
    ) -> Result<T, String> {
        let gone = || {
            "the tern driver's executor thread has stopped (it panicked: see stderr)".to_string()
        };
        let jobs = self.jobs.as_ref().ok_or_else(gone)?;
        let (reply, answer) = flume::bounded(1);
        jobs.send(make_job(reply)).map_err(|_| gone())?;
        let started = Instant::now();
        let mut copied = (0, 0);
        // Bounded by `wait_max`.
        loop {
            let waited = answer.recv_timeout(PROGRESS_COPY_INTERVAL);
            if let Some((source, target)) = progress {
                copy_progress(source, target, &mut copied);
            }
            match waited {
                Ok(result) => return Ok(result),
                Err(flume::RecvTimeoutError::Disconnected) => return Err(gone()),
                Err(flume::RecvTimeoutError::Timeout) => {
                    if started.elapsed() > wait_max {
                        return Err(format!(
                            "the tern driver got no answer within {} s (hang guard): the \
                             cluster or the client is stuck",
                            wait_max.as_secs()
                        ));
                    }
                }
            }
        }
    }
}

/// Adds what `source` counted since the last copy (`copied`) to `target`.
fn copy_progress(source: &Progress, target: &Progress, copied: &mut (u64, u64)) {
    let ops = source.ops_done.load(Ordering::Relaxed);
    let errors = source.errors.load(Ordering::Relaxed);
    target
        .ops_done
        .fetch_add(ops.saturating_sub(copied.0), Ordering::Relaxed);
    target
        .errors
        .fetch_add(errors.saturating_sub(copied.1), Ordering::Relaxed);
    *copied = (ops, errors);
}

impl Driver for TernDriver {
    fn load(&mut self, spec: &WorkloadSpec, progress: &Progress) -> Result<(), String> {
        let counters = Arc::new(Progress::default());
        // Each key may take LOAD_ATTEMPTS_PER_KEY operation timeouts; keys go in waves of
        // LOAD_INFLIGHT_MAX.
        let waves = spec.key_space / LOAD_INFLIGHT_MAX as u64 + 1;
        let timeouts = waves.saturating_mul(u64::from(LOAD_ATTEMPTS_PER_KEY));
        let wait_max = CLIENT_OPERATION_TIMEOUT
            .saturating_mul(u32::try_from(timeouts).unwrap_or(u32::MAX))
            .saturating_add(JOB_WAIT_MARGIN);
        let spec = spec.clone();
        let job_counters = counters.clone();
        self.call(
            move |reply| Job::Load {
                spec,
                progress: job_counters,
                reply,
            },
            wait_max,
            Some((&counters, progress)),
        )?
    }

    fn run(&mut self, spec: &WorkloadSpec, progress: &Progress) -> Result<RunStats, String> {
        let counters = Arc::new(Progress::default());
        let wait_max = spec
            .warmup
            .saturating_add(spec.duration)
            .saturating_add(CLIENT_OPERATION_TIMEOUT)
            .saturating_add(JOB_WAIT_MARGIN);
        let spec = spec.clone();
        let job_counters = counters.clone();
        self.call(
            move |reply| Job::Run {
                spec,
                progress: job_counters,
                reply,
            },
            wait_max,
            Some((&counters, progress)),
        )?
    }

    fn member_status(
        &mut self,
        member_index: usize,
        timeout: Duration,
    ) -> Result<MemberStatus, String> {
        if member_index >= self.members {
            return Err(format!(
                "member {member_index} does not exist (the cluster has {})",
                self.members
            ));
        }
        self.call(
            move |reply| Job::MemberStatus {
                member_index,
                timeout,
                reply,
            },
            timeout.saturating_add(JOB_WAIT_MARGIN),
            None,
        )?
    }

    fn probe_write(
        &mut self,
        member_indices: &[usize],
        key: &[u8],
        timeout: Duration,
    ) -> Result<(), String> {
        let members = member_indices.to_vec();
        let key = key.to_vec();
        // A new member set dials first (bounded by the timeout too), then puts.
        self.call(
            move |reply| Job::ProbeWrite {
                members,
                key,
                timeout,
                reply,
            },
            timeout.saturating_mul(2).saturating_add(JOB_WAIT_MARGIN),
            None,
        )?
    }

    fn read_prefix(&mut self, prefix: &[u8], timeout: Duration) -> Result<Vec<KeyValue>, String> {
        let prefix = prefix.to_vec();
        // Each page is one client operation with its own timeout; `timeout` bounds the wait.
        self.call(
            move |reply| Job::ReadPrefix { prefix, reply },
            timeout,
            None,
        )?
    }
}

impl Drop for TernDriver {
    fn drop(&mut self) {
        // Without senders the executor's job loop ends and closes every client.
        self.jobs.take();
        if let Some(executor) = self.executor.take() {
            let _ = executor.join();
        }
    }
}
