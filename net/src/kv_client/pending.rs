//! Per-request bookkeeping: the slot a waiting call receives its reply in, and the sequence
//! numbers not answered yet (which give the batch's `answered_through`).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// The receiving end of a one-value channel on one executor: a call waits on it while the
/// connection's reader task answers through the matching [`ReplySender`].
pub(crate) struct Reply<T> {
    state: Rc<RefCell<ReplyState<T>>>,
}

/// The sending end of a [`Reply`].
pub(crate) struct ReplySender<T> {
    state: Rc<RefCell<ReplyState<T>>>,
}

struct ReplyState<T> {
    value: Option<T>,
    waker: Option<Waker>,
    /// The sender was dropped without sending: no value will ever come.
    abandoned: bool,
}

/// A new reply channel.
pub(crate) fn reply<T>() -> (ReplySender<T>, Reply<T>) {
    let state = Rc::new(RefCell::new(ReplyState {
        value: None,
        waker: None,
        abandoned: false,
    }));
    (
        ReplySender {
            state: state.clone(),
        },
        Reply { state },
    )
}

impl<T> ReplySender<T> {
    /// Delivers `value` (dropped silently when the caller stopped waiting).
    pub(crate) fn send(self, value: T) {
        let waker = {
            let mut state = self.state.borrow_mut();
            state.value = Some(value);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for ReplySender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.state.borrow_mut();
            if state.value.is_some() {
                return;
            }
            state.abandoned = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Future for Reply<T> {
    /// `None` when the sender was dropped without an answer.
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.state.borrow_mut();
        if let Some(value) = state.value.take() {
            return Poll::Ready(Some(value));
        }
        if state.abandoned {
            return Poll::Ready(None);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Hands out one client's sequence numbers and tracks which are still unanswered.
///
/// `answered_through` is the highest S such that every sequence up to S has finished (answered,
/// refused or given up), so the server may forget its stored results for those; but never
/// above the highest write the state machine answered. The server's session is created by the
/// client's first write through the log, and a first write that arrives with
/// `answered_through > 0` reads as "my session expired" (tern-kv's session rule 2): reads take
/// sequences too (one counter matches every answer) but never create a session, so they must
/// not lift `answered_through` before a write has. Bounded by the in-flight limit: at most
/// `inflight_requests_max` sequences are outstanding at once.
pub(crate) struct Sequences {
    next: u64,
    outstanding: BTreeSet<u64>,
    /// The highest sequence of a write the state machine answered (0: none yet).
    write_answered: u64,
}

impl Sequences {
    /// Sequences start at 1; 0 in `answered_through` means "nothing answered yet".
    pub(crate) fn new() -> Sequences {
        Sequences {
            next: 1,
            outstanding: BTreeSet::new(),
            write_answered: 0,
        }
    }

    /// A new sequence, outstanding until [`Sequences::finish`].
    pub(crate) fn start(&mut self) -> u64 {
        let sequence = self.next;
        self.next += 1;
        self.outstanding.insert(sequence);
        sequence
    }

    /// The call for `sequence` is over: it will never be sent again.
    pub(crate) fn finish(&mut self, sequence: u64) {
        self.outstanding.remove(&sequence);
    }

    /// The state machine answered the write `sequence`: the server has a session for us.
    pub(crate) fn write_answered(&mut self, sequence: u64) {
        self.write_answered = self.write_answered.max(sequence);
    }

    /// Every sequence at or below this has finished (see the type's documentation).
    pub(crate) fn answered_through(&self) -> u64 {
        let finished = match self.outstanding.first() {
            Some(&lowest) => lowest - 1,
            None => self.next - 1,
        };
        finished.min(self.write_answered)
    }
}

/// Finishes a sequence however its call ends (answer, error, or the caller dropping the future).
pub(crate) struct SequenceGuard {
    pub(crate) sequences: Rc<RefCell<Sequences>>,
    pub(crate) sequence: u64,
}

impl Drop for SequenceGuard {
    fn drop(&mut self) {
        self.sequences.borrow_mut().finish(self.sequence);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answered_through_waits_for_the_lowest_outstanding_sequence() {
        let mut sequences = Sequences::new();
        assert_eq!(sequences.answered_through(), 0);
        let one = sequences.start();
        let two = sequences.start();
        let three = sequences.start();
        assert_eq!((one, two, three), (1, 2, 3));
        for sequence in [two, three] {
            sequences.write_answered(sequence);
            sequences.finish(sequence);
        }
        assert_eq!(sequences.answered_through(), 0, "1 is still outstanding");
        sequences.write_answered(one);
        sequences.finish(one);
        assert_eq!(sequences.answered_through(), 3);
        let four = sequences.start();
        assert_eq!(sequences.answered_through(), 3);
        sequences.write_answered(four);
        sequences.finish(four);
        assert_eq!(sequences.answered_through(), 4);
    }

    #[test]
    fn reads_alone_do_not_lift_answered_through() {
        let mut sequences = Sequences::new();
        for _ in 0..3 {
            let read = sequences.start();
            sequences.finish(read);
        }
        assert_eq!(sequences.answered_through(), 0, "no session exists yet");
        let write = sequences.start();
        assert_eq!(sequences.answered_through(), 0);
        sequences.write_answered(write);
        sequences.finish(write);
        assert_eq!(sequences.answered_through(), 4);
        let read = sequences.start();
        sequences.finish(read);
        assert_eq!(
            sequences.answered_through(),
            4,
            "capped at the last answered write"
        );
    }

    #[test]
    fn a_dropped_sender_ends_the_wait() {
        let (sender, reply) = super::reply::<u32>();
        drop(sender);
        assert_eq!(futures_lite::future::block_on(reply), None);
        let (sender, reply) = super::reply::<u32>();
        sender.send(7);
        assert_eq!(futures_lite::future::block_on(reply), Some(7));
    }
}
