//! Property test: random sequences of appends, suffix truncations, compactions, restarts,
//! hard-state saves and reopens, checked after every step against a plain in-memory model of
//! the log.

mod common;

use common::*;
use proptest::prelude::*;
use tern_wal::{Entry, HardState, Wal};

#[derive(Debug, Clone)]
enum Step {
    /// Append `count` entries with payloads of `length` bytes, raising the term by `term_raise`.
    Append {
        count: u64,
        length: usize,
        term_raise: u64,
    },
    /// Truncate at a position chosen as a fraction (per mille) of the current log.
    Truncate {
        per_mille: u64,
    },
    /// Compact through a position chosen the same way.
    Compact {
        per_mille: u64,
    },
    /// Restart the log at `offset` relative to the current first index (negative: below it).
    Restart {
        offset: i64,
    },
    SaveHardState {
        term: u64,
    },
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (1u64..12, 0usize..700, 0u64..2).prop_map(|(count, length, term_raise)| Step::Append { count, length, term_raise }),
        2 => (0u64..1000).prop_map(|per_mille| Step::Truncate { per_mille }),
        1 => (0u64..1000).prop_map(|per_mille| Step::Compact { per_mille }),
        1 => (-20i64..120).prop_map(|offset| Step::Restart { offset }),
        1 => (0u64..100).prop_map(|term| Step::SaveHardState { term }),
        2 => Just(Step::Reopen),
    ]
}

/// The model: every entry kept since the last restart, by index from `start`, and the lowest
/// index still required.
struct Model {
    /// The index of `log[0]`: 1, or where the log was last restarted (`compacted_through` is
    /// then at least `start - 1`).
    start: u64,
    log: Vec<Entry>,
    compacted_through: u64,
    hard_state: Option<HardState>,
}

impl Model {
    fn last_index(&self) -> u64 {
        self.start + self.log.len() as u64 - 1
    }
}

async fn check(wal: &Wal, model: &Model) {
    let last = model.last_index();
    assert_eq!(wal.last_index(), last, "last index");
    let first = wal.first_index();
    assert!(
        first <= model.compacted_through + 1,
        "first index {first} beyond what compaction allows"
    );
    assert!(first >= model.start && first <= last + 1);
    let read = wal.read_range(first..last + 1).expect("read");
    assert_eq!(
        read,
        model.log[(first - model.start) as usize..],
        "entries from {first}"
    );
    assert_eq!(wal.hard_state(), model.hard_state.unwrap_or_default());
}

fn run_steps(steps: Vec<Step>) {
    let directory = tempdir();
    let path = directory.path().to_path_buf();
    run(move || async move {
        let mut model = Model {
            start: 1,
            log: Vec::new(),
            compacted_through: 0,
            hard_state: None,
        };
        let (mut wal, _) = Wal::open(&path, small_options()).await.expect("open");
        for step in steps {
            let first = wal.first_index();
            let last = model.last_index();
            match step {
                Step::Append {
                    count,
                    length,
                    term_raise,
                } => {
                    let term = model.log.last().map_or(1, |entry| entry.term) + term_raise;
                    let batch = entries(last + 1, count, term, length);
                    model.log.extend(batch.iter().cloned());
                    assert_eq!(wal.append(&batch).await.expect("append"), last + count);
                }
                Step::Truncate { per_mille } => {
                    let from = first + (last + 1 - first) * per_mille / 1000;
                    model.log.truncate((from - model.start) as usize);
                    wal.truncate_suffix(from).await.expect("truncate");
                }
                Step::Compact { per_mille } => {
                    let through = first + (last + 1 - first) * per_mille / 1000;
                    model.compacted_through = model.compacted_through.max(through.min(last));
                    wal.compact_through(through).await.expect("compact");
                }
                Step::Restart { offset } => {
                    let next_index = first.saturating_add_signed(offset).max(1);
                    model.start = next_index;
                    model.log.clear();
                    model.compacted_through = next_index - 1;
                    assert_eq!(
                        wal.restart_at(next_index).await.expect("restart"),
                        next_index - 1
                    );
                    assert_eq!(
                        wal.first_index(),
                        next_index,
                        "restart sets the first index"
                    );
                }
                Step::SaveHardState { term } => {
                    let state = HardState {
                        term,
                        voted_for: Some(term % 3),
                        commit: last,
                    };
                    model.hard_state = Some(state);
                    wal.save_hard_state(state).await.expect("save");
                }
                Step::Reopen => {
                    let first_before = wal.first_index();
                    wal.close().await.expect("close");
                    let (reopened, recovered) =
                        Wal::open(&path, small_options()).await.expect("reopen");
                    assert_eq!(
                        recovered.torn_tail, None,
                        "a clean close leaves no torn tail"
                    );
                    assert_eq!(
                        recovered.first_index, first_before,
                        "reopen keeps the first index"
                    );
                    assert_eq!(recovered.hard_state, model.hard_state);
                    wal = reopened;
                }
            }
            check(&wal, &model).await;
        }
        wal.close().await.expect("close");
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any sequence of operations leaves the WAL equal to the model, before and after reopens.
    #[test]
    fn wal_matches_model(steps in proptest::collection::vec(step(), 1..40)) {
        run_steps(steps);
    }
}
