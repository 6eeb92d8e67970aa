//! Puts applied per second by the kv state machine (`tern_kv::StateMachine::apply`): decode the
//! proposal, pass the client's session, decode and check the command, write the lock-free map,
//! record the result. Values are 256 bytes over a bounded key space. Two shapes, as the node
//! sees them: N log entries of one `Put` each (N = 1, 64, 1024), and one entry holding a
//! `Batch` of N puts (N = 64, 1024). Throughput::Elements = puts.
//!
//!
//! `kv_snapshot`: what taking a snapshot costs the apply thread. `capture` is what the node's
//! Raft executor does now (a reference per key, `StateMachine::capture`); `capture_encode` is
//! the whole encoding (copies and CRC), which the snapshot writer thread does. 10,000 and
//! 100,000 keys of 256-byte values. Throughput::Elements = keys.
//!
//!     cargo bench -p tern-benches --bench kv_apply

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tern_kv::{encode_proposal, Command, Limits, Proposal, SessionLimits, StateMachine};

const VALUE_BYTES: usize = 256;
/// Distinct keys written (keys), so the map's size stays bounded however long the bench runs.
const KEYS_MAX: u64 = 1 << 16;
const CLIENT_ID: u64 = 1;

/// Hands out puts and proposals with fresh keys and sequences.
struct Workload {
    next_key: u64,
    next_sequence: u64,
    value: Bytes,
}

impl Workload {
    fn new() -> Workload {
        Workload {
            next_key: 0,
            next_sequence: 1,
            value: Bytes::from(vec![0xab; VALUE_BYTES]),
        }
    }

    fn put(&mut self) -> Command {
        let key = Bytes::from(format!("key-{:012}", self.next_key % KEYS_MAX));
        self.next_key += 1;
        Command::Put {
            key,
            value: self.value.clone(),
        }
    }

    /// An encoded proposal of `command`; the client has received every earlier answer, so the
    /// session stays small as it would with a well-behaved client.
    fn proposal(&mut self, command: &Command) -> Vec<u8> {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let command = command.to_bytes();
        let mut out = Vec::new();
        encode_proposal(
            &Proposal {
                client_id: CLIENT_ID,
                sequence,
                answered_through: sequence - 1,
                command: &command,
            },
            &mut out,
        );
        out
    }
}

fn apply_all(machine: &mut StateMachine, payloads: &[Vec<u8>]) {
    for payload in payloads {
        let index = machine.applied_index() + 1;
        let applied = machine.apply(index, payload);
        std::hint::black_box(applied);
    }
}

fn kv_apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("kv_apply");
    for entries in [1usize, 64, 1024] {
        group.throughput(Throughput::Elements(entries as u64));
        let mut machine = StateMachine::new(Limits::default(), SessionLimits::default());
        let mut workload = Workload::new();
        group.bench_with_input(
            BenchmarkId::new("entries_of_one_put", entries),
            &entries,
            |b, &entries| {
                b.iter_batched(
                    || {
                        (0..entries)
                            .map(|_| {
                                let put = workload.put();
                                workload.proposal(&put)
                            })
                            .collect::<Vec<_>>()
                    },
                    |payloads| apply_all(&mut machine, &payloads),
                    BatchSize::SmallInput,
                )
            },
        );
    }
    for puts in [64usize, 1024] {
        group.throughput(Throughput::Elements(puts as u64));
        let mut machine = StateMachine::new(Limits::default(), SessionLimits::default());
        let mut workload = Workload::new();
        group.bench_with_input(
            BenchmarkId::new("one_batch_entry", puts),
            &puts,
            |b, &puts| {
                b.iter_batched(
                    || {
                        let batch = Command::Batch((0..puts).map(|_| workload.put()).collect());
                        vec![workload.proposal(&batch)]
                    },
                    |payloads| apply_all(&mut machine, &payloads),
                    BatchSize::SmallInput,
                )
            },
        );
    }
    group.finish();
}

fn kv_snapshot(c: &mut Criterion) {
    let mut group = c.benchmark_group("kv_snapshot");
    group.sample_size(20);
    for keys in [10_000u64, 100_000] {
        let mut machine = StateMachine::new(Limits::default(), SessionLimits::default());
        let mut workload = Workload::new();
        let payloads: Vec<Vec<u8>> = (0..keys)
            .map(|index| {
                let put = Command::Put {
                    key: Bytes::from(format!("key-{index:012}")),
                    value: workload.value.clone(),
                };
                workload.proposal(&put)
            })
            .collect();
        apply_all(&mut machine, &payloads);
        group.throughput(Throughput::Elements(keys));
        group.bench_with_input(BenchmarkId::new("capture", keys), &keys, |b, _| {
            b.iter(|| std::hint::black_box(machine.capture()))
        });
        group.bench_with_input(BenchmarkId::new("capture_encode", keys), &keys, |b, _| {
            b.iter(|| std::hint::black_box(machine.capture().encode()))
        });
    }
    group.finish();
}

criterion_group!(benches, kv_apply, kv_snapshot);
criterion_main!(benches);
