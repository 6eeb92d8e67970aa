//! Loading the key space before a run: puts pipelined up to [`LOAD_INFLIGHT_MAX`], each
//! retried a few times, the whole load failing with the last error when one key cannot be
//! written.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use etcd_client::Client;
use tokio::task::LocalSet;

use super::errors::OpError;
use super::progress_relay::{with_relay, LocalCounts};
use crate::driver::Progress;
use crate::workload::{key_name, value_bytes, WorkloadSpec};

/// Puts in flight at once while loading (one task each): enough to keep etcd's batching busy
/// without queueing far more than it commits per batch.
pub const LOAD_INFLIGHT_MAX: usize = 256;

/// Attempts per key before the load fails.
const LOAD_ATTEMPTS_MAX: u32 = 5;

/// Bound on one put attempt while loading.
const LOAD_PUT_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause before retrying a key, times the attempt number (an election is over in well under
/// a second on loopback).
const LOAD_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// What the loading tasks share.
struct LoadState {
    /// The next key index to write.
    next: Cell<u64>,
    key_space: u64,
    value_bytes: usize,
    /// Set by the first key that could not be written; every task stops then.
    failure: RefCell<Option<String>>,
    counts: LocalCounts,
}

pub(super) async fn load(
    client: &Client,
    spec: &WorkloadSpec,
    progress: &Progress,
) -> Result<(), String> {
    let state = Rc::new(LoadState {
        next: Cell::new(0),
        key_space: spec.key_space,
        value_bytes: spec.value_bytes,
        failure: RefCell::new(None),
        counts: LocalCounts::default(),
    });
    let tasks = LocalSet::new();
    let writers = usize::try_from(spec.key_space)
        .unwrap_or(usize::MAX)
        .min(LOAD_INFLIGHT_MAX);
    let handles: Vec<_> = (0..writers)
        .map(|_| tasks.spawn_local(writer(client.clone(), state.clone())))
        .collect();
    let all_done = tasks.run_until(async {
        for handle in handles {
            handle
                .await
                .map_err(|error| format!("etcd driver: a load task failed: {error}"))?;
        }
        Ok::<(), String>(())
    });
    with_relay(all_done, &state.counts, progress).await?;
    let failure = state.failure.borrow_mut().take();
    match failure {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

/// Writes keys until none is left or one fails (bounded: each key is taken once).
async fn writer(mut client: Client, state: Rc<LoadState>) {
    loop {
        if state.failure.borrow().is_some() {
            return;
        }
        let index = state.next.get();
        if index >= state.key_space {
            return;
        }
        state.next.set(index + 1);
        if let Err(error) = put_with_retries(&mut client, index, &state).await {
            state.failure.borrow_mut().get_or_insert(format!(
                "etcd driver: loading key {index} failed {LOAD_ATTEMPTS_MAX} times, last with \
                 {}: {}; check that the cluster is up and has a leader (its members' logs)",
                error.kind, error.message
            ));
            return;
        }
        state.counts.op_done();
    }
}

async fn put_with_retries(
    client: &mut Client,
    index: u64,
    state: &LoadState,
) -> Result<(), OpError> {
    let key = key_name(index);
    let value = value_bytes(index, state.value_bytes);
    let mut attempt = 1;
    loop {
        let error = match tokio::time::timeout(
            LOAD_PUT_TIMEOUT,
            client.put(key.clone(), value.clone(), None),
        )
        .await
        {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(error)) => OpError::from(error),
            Err(_) => OpError::timeout(LOAD_PUT_TIMEOUT),
        };
        state.counts.error();
        if attempt >= LOAD_ATTEMPTS_MAX || state.failure.borrow().is_some() {
            return Err(error);
        }
        tokio::time::sleep(LOAD_RETRY_PAUSE * attempt).await;
        attempt += 1;
    }
}
