//! Open loop: requests start on a fixed schedule whatever the latency, at most `inflight_max`
//! outstanding; latency counts from each request's scheduled start.
//!
//! The schedule runs on tokio's timer, whose resolution is one millisecond: a request may
//! start up to about a millisecond after its due time, and that delay is part of its latency
//! (it is a delay the request really saw; none is hidden).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::Client;
use tokio::sync::Semaphore;
use tokio::task::LocalSet;

use super::ops::Reads;
use super::progress_relay::{with_relay, LocalCounts};
use super::recorder::{Recorder, Window};
use super::run::{issue, RunContext};
use crate::driver::{Progress, RunStats};
use crate::workload::{InsertCounter, OpGenerator, WorkloadSpec};

pub(super) async fn run(
    client: &Client,
    spec: &WorkloadSpec,
    rate_ops_per_s: u64,
    inflight_max: usize,
    reads: Reads,
    progress: &Progress,
) -> Result<RunStats, String> {
    let permits_total = u32::try_from(inflight_max)
        .ok()
        .filter(|&permits| permits as usize <= Semaphore::MAX_PERMITS)
        .ok_or_else(|| {
            format!(
                "workload {:?}: inflight_max {inflight_max} is too large",
                spec.name
            )
        })?;
    // One request stream: an open loop models arrivals, not clients.
    let mut generator = OpGenerator::new(spec, 0, InsertCounter::new(spec.key_space));
    let window = Window::starting_now(spec.warmup, spec.duration);
    let context = Rc::new(RunContext {
        reads,
        window,
        recorder: RefCell::new(Recorder::new(window)),
        counts: LocalCounts::default(),
    });
    let permits = Arc::new(Semaphore::new(inflight_max));
    let interval_s = 1.0 / rate_ops_per_s as f64;
    let tasks = LocalSet::new();
    let schedule = tasks.run_until(async {
        // Bounded: the loop ends at the window's end, after rate x (warm-up + duration) requests.
        for sequence in 0u64.. {
            let due = window.start + Duration::from_secs_f64(sequence as f64 * interval_s);
            if due >= window.end {
                break;
            }
            tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
            let permit =
                match permits.clone().try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(_) => {
                        context.recorder.borrow_mut().late(due);
                        permits.clone().acquire_owned().await.map_err(|_| {
                            "etcd driver: the in-flight bound was closed".to_string()
                        })?
                    }
                };
            if Instant::now() >= window.end {
                break;
            }
            let op = generator.next_op();
            let mut client = client.clone();
            let context = context.clone();
            tokio::task::spawn_local(async move {
                issue(&mut client, op, due, &context).await;
                drop(permit);
            });
        }
        // Every request still in flight ends by the window's end (`issue` cuts it there).
        let _all_returned = permits
            .acquire_many(permits_total)
            .await
            .map_err(|_| "etcd driver: the in-flight bound was closed".to_string())?;
        Ok::<(), String>(())
    });
    with_relay(schedule, &context.counts, progress).await?;
    let stats = context.recorder.replace(Recorder::new(window)).into_stats();
    Ok(stats)
}
