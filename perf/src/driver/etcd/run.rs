//! A measured run: the spec checked, then the closed or open loop, one operation at a time
//! through [`issue`].

use std::cell::RefCell;
use std::time::{Duration, Instant};

use etcd_client::Client;

use super::errors::OpError;
use super::ops::{execute, Reads};
use super::progress_relay::LocalCounts;
use super::recorder::{Recorder, Window};
use super::{closed_loop, open_loop};
use crate::driver::{Progress, RunStats};
use crate::workload::{LoopKind, Op, WorkloadSpec};

/// Bound on one operation. etcd gives up on a proposal by itself after about 5 s plus two
/// election timeouts ("request timed out"); this only catches a member that never answers.
pub(super) const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `spec` through `client`: warm-up, then the measured window.
pub(super) async fn run(
    client: &Client,
    spec: &WorkloadSpec,
    progress: &Progress,
) -> Result<RunStats, String> {
    spec.mix
        .validate()
        .map_err(|error| format!("workload {:?}: {error}", spec.name))?;
    let reads = Reads::of(spec.consistency)?;
    if spec.duration.is_zero() {
        return Err(format!(
            "workload {:?}: the measured duration is zero",
            spec.name
        ));
    }
    match spec.loop_kind {
        LoopKind::Closed { clients } => {
            if clients == 0 {
                return Err(format!(
                    "workload {:?}: a closed loop needs at least one client",
                    spec.name
                ));
            }
            closed_loop::run(client, spec, clients, reads, progress).await
        }
        LoopKind::Open {
            rate_ops_per_s,
            inflight_max,
        } => {
            if rate_ops_per_s == 0 || inflight_max == 0 {
                return Err(format!(
                    "workload {:?}: an open loop needs a rate and an in-flight bound above zero",
                    spec.name
                ));
            }
            open_loop::run(client, spec, rate_ops_per_s, inflight_max, reads, progress).await
        }
    }
}

/// How one operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Succeeded,
    Failed,
    /// Still in flight when the window closed: dropped, neither a success nor a failure.
    Cut,
}

/// What every operation of a run records into.
pub(super) struct RunContext {
    pub reads: Reads,
    pub window: Window,
    pub recorder: RefCell<Recorder>,
    pub counts: LocalCounts,
}

/// Runs `op` and records it: latency from `latency_from` (its start, or its scheduled start in
/// an open loop). Bounded by [`OP_TIMEOUT`] and by the window's end.
pub(super) async fn issue(
    client: &mut Client,
    op: Op,
    latency_from: Instant,
    context: &RunContext,
) -> Outcome {
    let kind = op.kind();
    let deadline = (Instant::now() + OP_TIMEOUT).min(context.window.end);
    let result = tokio::time::timeout_at(
        tokio::time::Instant::from_std(deadline),
        execute(client, op, context.reads),
    )
    .await;
    let completed = Instant::now();
    let error = match result {
        Ok(Ok(())) => {
            context
                .recorder
                .borrow_mut()
                .success(kind, latency_from, completed);
            context.counts.op_done();
            return Outcome::Succeeded;
        }
        Ok(Err(error)) => OpError::from(error),
        Err(_) if deadline == context.window.end => return Outcome::Cut,
        Err(_) => OpError::timeout(OP_TIMEOUT),
    };
    context.recorder.borrow_mut().failure(error, completed);
    context.counts.error();
    Outcome::Failed
}
