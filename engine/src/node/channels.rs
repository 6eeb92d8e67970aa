//! What the executors tell each other, and how they wake each other.
//!
//! Client executor -> Raft executor: [`ToRaft`] on a `flume::bounded(proposal_queue_batches_max)`
//! channel per client executor; when it is full the client executor answers "overloaded, retry"
//! instead of waiting (it must never block its connections).
//! Raft executor -> client executor: [`FromRaft`] on a `flume::bounded(RESULT_QUEUE_BATCHES_MAX)`
//! channel; when it is full the Raft executor drops the batch with a WARN (the clients time out
//! and retry; their sessions answer retried writes exactly once). The Raft executor never waits
//! for a client executor.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tern_kv::CommandResult;
use tern_net::message::ClientError;

use crate::raft::{NodeId, ReadConsistency};

use super::NodeError;

/// Most result batches waiting in one Raft-to-client-executor channel. Each Ready yields at
/// most one batch per client executor, so this is many Readies of slack.
pub(crate) const RESULT_QUEUE_BATCHES_MAX: usize = 1024;

/// A message from a client executor to the Raft executor.
pub(crate) enum ToRaft {
    /// Proposals to append, in order: each with the token its client executor will recognize
    /// the result by. At most `proposal_batch_commands_max` commands and (unless one command
    /// alone is larger) `proposal_batch_bytes_max` bytes.
    Proposals(Vec<(u64, Bytes)>),
    /// One read index for every read of a client batch, answered by token.
    Read {
        token: u64,
        consistency: ReadConsistency,
    },
    /// An operator's membership or leadership request, answered by token.
    Admin {
        token: u64,
        request_id: u64,
        op: tern_net::message::AdminOp,
    },
}

/// What happened to one write.
pub(crate) enum WriteOutcome {
    /// Applied (or answered from the session, for a retry): the state machine's result.
    Applied(CommandResult),
    /// Not applied here; the client should retry (at the leader, for `NotLeader`).
    Failed(ClientError),
}

/// What happened to one read group.
pub(crate) enum ReadAnswer {
    /// The applied map now covers the read index: answer from it.
    Ready,
    /// The read cannot be served here.
    Failed(ClientError),
}

/// A message from the Raft executor to one client executor: the outcomes of one Ready (or of
/// one input batch that was refused at once).
#[derive(Default)]
pub(crate) struct FromRaft {
    pub(crate) writes: Vec<(u64, WriteOutcome)>,
    pub(crate) reads: Vec<(u64, ReadAnswer)>,
    pub(crate) admin: Vec<(u64, tern_net::message::AdminResponse)>,
}

impl FromRaft {
    pub(crate) fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.reads.is_empty() && self.admin.is_empty()
    }
}

/// `ClientError::NotLeader` with the hint the core gave.
pub(crate) fn not_leader(leader: Option<NodeId>) -> ClientError {
    ClientError::NotLeader { leader_id: leader }
}

/// `ClientError::Unavailable` with a reason.
pub(crate) fn unavailable(reason: &str) -> ClientError {
    ClientError::Unavailable {
        reason: reason.to_string(),
    }
}

/// A wake-up flag one task waits on and any thread sets. Several notifications before the
/// waiter runs collapse into one: the waiter then looks at every input anyway.
#[derive(Default)]
pub(crate) struct Wakeup {
    state: Mutex<(bool, Option<Waker>)>,
}

impl Wakeup {
    /// Wakes the waiter (now, or its next wait returns at once).
    pub(crate) fn notify(&self) {
        let waker = {
            let mut state = self
                .state
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            state.0 = true;
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Resolves once `notify` was called since the last wait returned.
    pub(crate) fn wait(&self) -> WakeupWait<'_> {
        WakeupWait { wakeup: self }
    }
}

/// The future of [`Wakeup::wait`].
pub(crate) struct WakeupWait<'a> {
    wakeup: &'a Wakeup,
}

impl Future for WakeupWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        let mut state = self
            .wakeup
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if state.0 {
            state.0 = false;
            Poll::Ready(())
        } else {
            state.1 = Some(context.waker().clone());
            Poll::Pending
        }
    }
}

/// The node-wide stop: set by `run` when shutdown is requested, or by an executor that hit a
/// fatal error (which it records first, so `run` can return it).
#[derive(Default)]
pub(crate) struct Stop {
    stopping: AtomicBool,
    fatal: Mutex<Option<NodeError>>,
}

impl Stop {
    /// Asks every executor to stop.
    pub(crate) fn request(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether executors should stop.
    pub(crate) fn is_requested(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Records a fatal error (the first one wins) and asks every executor to stop.
    pub(crate) fn fail(&self, error: NodeError) {
        tracing::error!(%error, "fatal: the node stops");
        let mut fatal = self
            .fatal
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if fatal.is_none() {
            *fatal = Some(error);
        }
        drop(fatal);
        self.request();
    }

    /// The fatal error, if one was recorded.
    pub(crate) fn take_fatal(&self) -> Option<NodeError> {
        self.fatal
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take()
    }
}
