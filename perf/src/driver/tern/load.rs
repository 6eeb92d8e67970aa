//! The load: keys 0 .. key_space written before a run, pipelined over one client.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use tern_net::{runtime, KvClient};

use super::ops::error_kind;
use crate::driver::Progress;
use crate::workload::{key_name, value_bytes, WorkloadSpec};

/// Most puts of the load in flight at once (the client pipelines them on one connection).
pub const LOAD_INFLIGHT_MAX: usize = 256;
/// Attempts at one key before the load gives up (each attempt already retries inside the
/// client until its operation timeout).
pub const LOAD_ATTEMPTS_PER_KEY: u32 = 3;

/// Shared by the load's tasks: the next key to write, and the first failure that stopped it.
struct LoadState {
    next_key: Cell<u64>,
    key_space: u64,
    failure: RefCell<Option<String>>,
}

impl LoadState {
    /// The next key to write; `None` once all are taken or the load failed.
    fn take_key(&self) -> Option<u64> {
        if self.failure.borrow().is_some() {
            return None;
        }
        let key = self.next_key.get();
        if key >= self.key_space {
            return None;
        }
        self.next_key.set(key + 1);
        Some(key)
    }
}

/// Writes every key with a `spec.value_bytes` value; progress counts keys written.
pub async fn load(
    client: Rc<KvClient>,
    spec: &WorkloadSpec,
    progress: Arc<Progress>,
) -> Result<(), String> {
    let state = Rc::new(LoadState {
        next_key: Cell::new(0),
        key_space: spec.key_space,
        failure: RefCell::new(None),
    });
    let tasks = usize::try_from(spec.key_space)
        .unwrap_or(usize::MAX)
        .min(LOAD_INFLIGHT_MAX);
    let value_size = spec.value_bytes;
    // Each task reports its end here; `tasks` slots, so a send never waits.
    let (done_sender, done_receiver) = flume::bounded::<()>(tasks.max(1));
    for _ in 0..tasks {
        let client = client.clone();
        let state = state.clone();
        let progress = progress.clone();
        let done_sender = done_sender.clone();
        runtime::spawn(async move {
            // Bounded: each key is taken once, and each takes at most LOAD_ATTEMPTS_PER_KEY.
            while let Some(index) = state.take_key() {
                if let Err(problem) = put_key(&client, index, value_size, &progress).await {
                    state.failure.borrow_mut().get_or_insert(problem);
                }
            }
            let _ = done_sender.try_send(());
        });
    }
    drop(done_sender);
    while done_receiver.recv_async().await.is_ok() {}
    match state.failure.take() {
        None => Ok(()),
        Some(problem) => Err(problem),
    }
}

/// One key, retried: `Ok` once written, else what the last attempt said.
async fn put_key(
    client: &KvClient,
    index: u64,
    value_size: usize,
    progress: &Progress,
) -> Result<(), String> {
    let key = Bytes::from(key_name(index));
    let value = Bytes::from(value_bytes(index, value_size));
    let mut last_error = None;
    let mut attempts = 0;
    while attempts < LOAD_ATTEMPTS_PER_KEY {
        attempts += 1;
        match client.put(key.clone(), value.clone()).await {
            Ok(()) => {
                progress.op_done();
                return Ok(());
            }
            Err(error) => {
                progress.error();
                let final_error = matches!(
                    error,
                    tern_net::KvError::Refused(_)
                        | tern_net::KvError::Security(_)
                        | tern_net::KvError::Config(_)
                        | tern_net::KvError::Closed
                );
                last_error = Some(error);
                // Retrying cannot change a refusal or a closed client.
                if final_error {
                    break;
                }
            }
        }
    }
    let (kind, error) = match last_error {
        Some(error) => (error_kind(&error), error.to_string()),
        None => ("none", "no attempt was made".to_string()),
    };
    Err(format!(
        "loading key {} into tern failed ({attempts} attempts, the last {kind}): {error}; check that the cluster is up and has a leader (the members' logs \
         say why not)",
        String::from_utf8_lossy(&key)
    ))
}
