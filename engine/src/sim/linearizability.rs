//! A linearizability checker for one register (one key) with put, get, delete and
//! compare-and-swap, in the style of Wing & Gong with Lowe's memoization: a depth-first search
//! over "which operation takes effect next", remembering every (set of operations already
//! linearized, register value) pair it has explored so no state is searched twice.
//!
//! Operations whose client never saw an answer (it timed out and the run ended) may or may not
//! have taken effect: the search may linearize such a write anywhere after its invocation, or
//! never. A read without an answer changes nothing and carries no information, so it is ignored.

use std::collections::HashSet;

/// What a client asked of one register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    Put(u64),
    Delete,
    /// Sets `new` if the register holds `expected`; answers whether it did.
    CompareAndSwap {
        expected: u64,
        new: u64,
    },
    Get,
}

/// What the client was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterAnswer {
    /// A put or delete took effect.
    Done,
    Swapped(bool),
    Value(Option<u64>),
}

/// One operation of a history. Stamps are unique, increasing points of one clock shared by all
/// clients of the history (so "responded before invoked" is never ambiguous).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryOp {
    pub client: u64,
    pub op: RegisterOp,
    pub invoke_stamp: u64,
    /// `None` when the client never got an answer: the op may or may not have taken effect.
    pub response: Option<(u64, RegisterAnswer)>,
}

/// Why a history was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// No order of the operations explains every answer.
    NotLinearizable { ops: usize },
    /// The search explored `states_max` states without an answer (history too concurrent).
    Inconclusive { states_max: usize },
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::NotLinearizable { ops } => {
                write!(f, "history of {ops} operations is not linearizable")
            }
            CheckError::Inconclusive { states_max } => {
                write!(
                    f,
                    "linearizability search gave up after {states_max} states"
                )
            }
        }
    }
}

/// Most search states explored before giving up. Histories of the simulator have a few clients
/// with one outstanding operation each, which keeps the reachable states far below this.
pub const SEARCH_STATES_MAX: usize = 2_000_000;

/// Applies `op` to `value`: the new value and the answer the op gives.
pub fn apply(op: RegisterOp, value: Option<u64>) -> (Option<u64>, RegisterAnswer) {
    match op {
        RegisterOp::Put(new) => (Some(new), RegisterAnswer::Done),
        RegisterOp::Delete => (None, RegisterAnswer::Done),
        RegisterOp::CompareAndSwap { expected, new } => {
            if value == Some(expected) {
                (Some(new), RegisterAnswer::Swapped(true))
            } else {
                (value, RegisterAnswer::Swapped(false))
            }
        }
        RegisterOp::Get => (value, RegisterAnswer::Value(value)),
    }
}

/// Checks that `history` (one register, starting at `initial`) is linearizable.
pub fn check(history: &[HistoryOp], initial: Option<u64>) -> Result<(), CheckError> {
    // Unanswered reads carry no information; drop them. Sort by invocation so the search order
    // (and so its cost) does not depend on how the caller listed the history.
    let mut ops: Vec<HistoryOp> = history
        .iter()
        .filter(|op| op.response.is_some() || op.op != RegisterOp::Get)
        .cloned()
        .collect();
    ops.sort_by_key(|op| op.invoke_stamp);
    let mut search = Search {
        ops: &ops,
        seen: HashSet::new(),
        words: ops.len().div_ceil(64),
        gave_up: false,
    };
    let completed = ops.iter().filter(|op| op.response.is_some()).count();
    let mut linearized = vec![0u64; search.words];
    if search.explore(&mut linearized, initial, completed) {
        Ok(())
    } else if search.gave_up {
        Err(CheckError::Inconclusive {
            states_max: SEARCH_STATES_MAX,
        })
    } else {
        Err(CheckError::NotLinearizable { ops: ops.len() })
    }
}

struct Search<'a> {
    ops: &'a [HistoryOp],
    seen: HashSet<(Vec<u64>, Option<u64>)>,
    words: usize,
    gave_up: bool,
}

impl Search<'_> {
    /// True when the ops not yet in `linearized` can follow, from `value`, in some legal order
    /// that linearizes every answered op. `completed_left` counts answered ops not linearized.
    fn explore(
        &mut self,
        linearized: &mut Vec<u64>,
        value: Option<u64>,
        completed_left: usize,
    ) -> bool {
        if completed_left == 0 {
            return true;
        }
        if self.seen.len() >= SEARCH_STATES_MAX {
            self.gave_up = true;
            return false;
        }
        if !self.seen.insert((linearized.clone(), value)) {
            return false;
        }
        debug_assert_eq!(linearized.len(), self.words);
        let is_done = |set: &Vec<u64>, i: usize| set[i / 64] & (1 << (i % 64)) != 0;
        // An op may go next only if it was invoked before every pending answered op responded:
        // otherwise that answered op finished before this one started and must come first.
        let first_response = (0..self.ops.len())
            .filter(|&i| !is_done(linearized, i))
            .filter_map(|i| self.ops[i].response.map(|(stamp, _)| stamp))
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..self.ops.len() {
            let op = &self.ops[i];
            if is_done(linearized, i) || op.invoke_stamp >= first_response {
                continue;
            }
            let (next, answer) = apply(op.op, value);
            let completes = match op.response {
                Some((_, recorded)) if recorded != answer => continue,
                Some(_) => 1,
                None => 0,
            };
            linearized[i / 64] |= 1 << (i % 64);
            if self.explore(linearized, next, completed_left - completes) {
                return true;
            }
            linearized[i / 64] &= !(1 << (i % 64));
            if self.gave_up {
                return false;
            }
        }
        false
    }
}
