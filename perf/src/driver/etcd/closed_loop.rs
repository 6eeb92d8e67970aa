//! Closed loop: `clients` tasks sharing one etcd client, each with one operation in flight.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use etcd_client::Client;
use tokio::task::LocalSet;

use super::ops::Reads;
use super::progress_relay::{with_relay, LocalCounts};
use super::recorder::{Recorder, Window};
use super::run::{issue, Outcome, RunContext};
use crate::driver::{Progress, RunStats};
use crate::workload::{InsertCounter, OpGenerator, WorkloadSpec};

/// Pause of a client after a failed operation: a member that refuses at once (connection
/// refused) would otherwise have the client spin on the CPU the servers share.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(1);

pub(super) async fn run(
    client: &Client,
    spec: &WorkloadSpec,
    clients: usize,
    reads: Reads,
    progress: &Progress,
) -> Result<RunStats, String> {
    let inserts = InsertCounter::new(spec.key_space);
    // Made before the clock starts: a generator may precompute (zipfian constants).
    let generators: Vec<OpGenerator> = (0..clients)
        .map(|client_index| OpGenerator::new(spec, client_index, inserts.clone()))
        .collect();
    let window = Window::starting_now(spec.warmup, spec.duration);
    let context = Rc::new(RunContext {
        reads,
        window,
        recorder: RefCell::new(Recorder::new(window)),
        counts: LocalCounts::default(),
    });
    let tasks = LocalSet::new();
    let handles: Vec<_> = generators
        .into_iter()
        .map(|generator| tasks.spawn_local(client_loop(client.clone(), generator, context.clone())))
        .collect();
    let all_done = tasks.run_until(async {
        for handle in handles {
            handle
                .await
                .map_err(|error| format!("etcd driver: a client task failed: {error}"))?;
        }
        Ok::<(), String>(())
    });
    with_relay(all_done, &context.counts, progress).await?;
    let stats = context.recorder.replace(Recorder::new(window)).into_stats();
    Ok(stats)
}

/// One client: operations back to back until the window ends (bounded by time: `issue` cuts
/// the last one at the window's end).
async fn client_loop(mut client: Client, mut generator: OpGenerator, context: Rc<RunContext>) {
    while Instant::now() < context.window.end {
        let op = generator.next_op();
        let started = Instant::now();
        if issue(&mut client, op, started, &context).await == Outcome::Failed {
            tokio::time::sleep(PAUSE_AFTER_FAILURE).await;
        }
    }
}
