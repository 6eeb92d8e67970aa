//! Committed entries per second through the pure Raft core: an in-memory 3-node cluster with no
//! faults and no delays. Each iteration proposes one batch of 256-byte commands at the leader
//! and pumps messages, instant persists and applies until the batch is committed everywhere it
//! goes. Batches of 1, 64 and 1024 commands (Throughput::Elements = commands).
//!
//!     cargo bench -p tern-benches --bench raft_core

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tern_engine::raft::{Config, Message, Raft, Recovered, Role};

const COMMAND_BYTES: usize = 256;
const NODES: u64 = 3;
/// Ticks the first node may take to win the first election before the bench gives up.
const ELECTION_TICKS_MAX: u64 = 10_000;
/// Log length at which the bench starts a fresh cluster, bounding memory (entries per node).
const LOG_ENTRIES_MAX: u64 = 1 << 20;

struct Cluster {
    nodes: Vec<Raft>,
    in_flight: VecDeque<Message>,
}

impl Cluster {
    fn new() -> Self {
        let voters: Vec<u64> = (1..=NODES).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let mut config = Config::new(id, voters.clone());
                config.seed = id;
                config.uncommitted_entries_max = 1 << 30;
                Raft::new(config, Recovered::default()).expect("valid config")
            })
            .collect();
        let mut cluster = Cluster {
            nodes,
            in_flight: VecDeque::new(),
        };
        for _ in 0..ELECTION_TICKS_MAX {
            if cluster.nodes[0].status().role == Role::Leader {
                return cluster;
            }
            cluster.nodes[0].tick();
            cluster.pump();
        }
        panic!("node 1 did not become leader within {ELECTION_TICKS_MAX} ticks");
    }

    /// Carries out every Ready (persists complete at once) and delivers every message, until
    /// the cluster is quiet.
    fn pump(&mut self) {
        loop {
            let mut busy = false;
            for node in &mut self.nodes {
                while node.has_ready() {
                    busy = true;
                    let ready = node.ready();
                    self.in_flight.extend(ready.messages);
                    if let Some(last) = ready.entries.last() {
                        node.on_persisted(last.index, last.term);
                    }
                    self.in_flight.extend(ready.messages_after_persist);
                    if let Some(last) = ready.committed_entries.last() {
                        node.on_applied(last.index);
                    }
                }
            }
            while let Some(message) = self.in_flight.pop_front() {
                busy = true;
                let to = message.to as usize - 1;
                let _ = self.nodes[to].step(message);
            }
            if !busy {
                return;
            }
        }
    }
}

fn committed_entries(c: &mut Criterion) {
    let mut group = c.benchmark_group("raft_core_3_nodes");
    for batch in [1usize, 64, 1024] {
        let commands: Vec<Bytes> = (0..batch)
            .map(|i| Bytes::from(vec![i as u8; COMMAND_BYTES]))
            .collect();
        let mut cluster = Cluster::new();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(
            BenchmarkId::new("commit_256B_commands", batch),
            &batch,
            |b, _| {
                b.iter_custom(|iterations| {
                    let mut measured = Duration::ZERO;
                    for _ in 0..iterations {
                        // The core keeps its whole log in memory (no compaction yet): start a fresh
                        // cluster, outside the measured time, before the logs grow large.
                        if cluster.nodes[0].status().last_index > LOG_ENTRIES_MAX {
                            cluster = Cluster::new();
                        }
                        let started = Instant::now();
                        let (_, last, _) = cluster.nodes[0]
                            .propose(commands.clone())
                            .expect("leader accepts");
                        cluster.pump();
                        measured += started.elapsed();
                        assert!(
                            cluster.nodes[0].status().commit_index >= last,
                            "batch not committed"
                        );
                    }
                    measured
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, committed_entries);
criterion_main!(benches);
