//! The operation stream of one client: deterministic for a seed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::keys::KeyChooser;
use super::rng::{mix64, SplitMix64};
use super::spec::{OpMix, WorkloadSpec};

/// The kinds of operation, for per-kind latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    Read,
    Update,
    Insert,
    Scan,
    ReadModifyWrite,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Update => "update",
            OpKind::Insert => "insert",
            OpKind::Scan => "scan",
            OpKind::ReadModifyWrite => "read_modify_write",
        }
    }
}

/// One operation, with its key (and value for writes) already made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Read {
        key: Vec<u8>,
    },
    Update {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Insert {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Up to `count` keys from `start` (inclusive), in key order.
    Scan {
        start: Vec<u8>,
        count: usize,
    },
    ReadModifyWrite {
        key: Vec<u8>,
        value: Vec<u8>,
    },
}

impl Op {
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Read { .. } => OpKind::Read,
            Op::Update { .. } => OpKind::Update,
            Op::Insert { .. } => OpKind::Insert,
            Op::Scan { .. } => OpKind::Scan,
            Op::ReadModifyWrite { .. } => OpKind::ReadModifyWrite,
        }
    }
}

/// The name of key `index`: fixed width so that key order is index order (scans).
pub fn key_name(index: u64) -> Vec<u8> {
    format!("perf/{index:012}").into_bytes()
}

/// A value of exactly `bytes` bytes, varying with `stamp` (not all zeros, not compressible to
/// nothing; neither system compresses, but a real value is not constant either).
///
/// Printable characters (a 64-symbol alphabet), so that a value read back with etcdctl or
/// `tern` is legible; one 64-bit mix per 8 bytes keeps it cheap.
pub fn value_bytes(stamp: u64, bytes: usize) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut value = Vec::with_capacity(bytes);
    let mut word_index = 0u64;
    while value.len() < bytes {
        let word = mix64(stamp ^ mix64(word_index));
        let take = (bytes - value.len()).min(8);
        value.extend(
            word.to_le_bytes()[..take]
                .iter()
                .map(|byte| ALPHABET[usize::from(byte & 63)]),
        );
        word_index += 1;
    }
    value
}

/// The next key index to insert, shared by all clients of a run (inserts extend the key space;
/// the `Latest` distribution follows it).
#[derive(Clone, Debug)]
pub struct InsertCounter(Arc<AtomicU64>);

impl InsertCounter {
    /// Starts after the loaded key space.
    pub fn new(key_space: u64) -> InsertCounter {
        InsertCounter(Arc::new(AtomicU64::new(key_space)))
    }

    /// Takes the next index to insert.
    pub fn take(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }

    /// Keys that exist (or are being inserted) now: 0 .. this.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One client's generator.
pub struct OpGenerator {
    rng: SplitMix64,
    keys: KeyChooser,
    inserts: InsertCounter,
    /// Cumulative shares (read, +update, +insert, +scan, +read-modify-write), in percent.
    cumulative: [u32; 5],
    value_bytes: usize,
    scan_length_max: usize,
}

impl OpGenerator {
    /// Client `client_index`'s stream for `spec` (seeded with `spec.seed + client_index`).
    ///
    /// A mix that does not add up to 100 (see [`OpMix::validate`]) is taken relative to its
    /// sum; an all-zero mix reads. A zipfian theta outside 0 .. 1 is clamped. A
    /// `scan_length_max` of 0 scans one key.
    pub fn new(spec: &WorkloadSpec, client_index: usize, inserts: InsertCounter) -> OpGenerator {
        let seed = spec.seed.wrapping_add(client_index as u64);
        OpGenerator {
            rng: SplitMix64::new(seed),
            keys: KeyChooser::new(spec.distribution, spec.key_space),
            inserts,
            cumulative: cumulative_shares(&spec.mix),
            value_bytes: spec.value_bytes,
            scan_length_max: spec.scan_length_max.max(1),
        }
    }

    pub fn next_op(&mut self) -> Op {
        match self.next_kind() {
            OpKind::Read => Op::Read {
                key: self.existing_key(),
            },
            OpKind::Update => Op::Update {
                key: self.existing_key(),
                value: self.value(),
            },
            OpKind::Insert => Op::Insert {
                key: key_name(self.inserts.take()),
                value: self.value(),
            },
            OpKind::Scan => Op::Scan {
                start: self.existing_key(),
                count: 1 + self.rng.below(self.scan_length_max as u64) as usize,
            },
            OpKind::ReadModifyWrite => Op::ReadModifyWrite {
                key: self.existing_key(),
                value: self.value(),
            },
        }
    }

    fn next_kind(&mut self) -> OpKind {
        const KINDS: [OpKind; 5] = [
            OpKind::Read,
            OpKind::Update,
            OpKind::Insert,
            OpKind::Scan,
            OpKind::ReadModifyWrite,
        ];
        let total = self.cumulative[4];
        if total == 0 {
            return OpKind::Read;
        }
        let draw = self.rng.below(u64::from(total)) as u32;
        let slot = self
            .cumulative
            .iter()
            .position(|&bound| draw < bound)
            .unwrap_or(KINDS.len() - 1);
        KINDS[slot]
    }

    fn existing_key(&mut self) -> Vec<u8> {
        key_name(self.keys.next_index(&mut self.rng, self.inserts.current()))
    }

    fn value(&mut self) -> Vec<u8> {
        let stamp = self.rng.next_u64();
        value_bytes(stamp, self.value_bytes)
    }
}

fn cumulative_shares(mix: &OpMix) -> [u32; 5] {
    let shares = [
        mix.read_percent,
        mix.update_percent,
        mix.insert_percent,
        mix.scan_percent,
        mix.read_modify_write_percent,
    ];
    let mut cumulative = [0u32; 5];
    let mut sum = 0u32;
    for (slot, share) in cumulative.iter_mut().zip(shares) {
        sum += u32::from(share);
        *slot = sum;
    }
    cumulative
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::workload::spec::{KeyDistribution, LoopKind, ReadConsistency};
    use crate::workload::ycsb::Ycsb;

    fn spec(mix: OpMix, distribution: KeyDistribution) -> WorkloadSpec {
        WorkloadSpec {
            name: "test".to_string(),
            loop_kind: LoopKind::Closed { clients: 1 },
            key_space: 10_000,
            value_bytes: 100,
            distribution,
            mix,
            scan_length_max: 10,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            consistency: ReadConsistency::Linearizable,
            seed: 1234,
        }
    }

    fn shares(generator: &mut OpGenerator, ops: usize) -> BTreeMap<OpKind, f64> {
        let mut counts = BTreeMap::new();
        for _ in 0..ops {
            *counts.entry(generator.next_op().kind()).or_insert(0usize) += 1;
        }
        counts
            .into_iter()
            .map(|(kind, count)| (kind, 100.0 * count as f64 / ops as f64))
            .collect()
    }

    #[test]
    fn ycsb_mixes_match_their_shares() {
        let ops = 100_000;
        for workload in Ycsb::ALL {
            let (mix, distribution, scan_length_max) = workload.mix();
            let mut workload_spec = spec(mix, distribution);
            workload_spec.scan_length_max = scan_length_max;
            let inserts = InsertCounter::new(workload_spec.key_space);
            let mut generator = OpGenerator::new(&workload_spec, 0, inserts.clone());
            let measured = shares(&mut generator, ops);
            let expected = [
                (OpKind::Read, mix.read_percent),
                (OpKind::Update, mix.update_percent),
                (OpKind::Insert, mix.insert_percent),
                (OpKind::Scan, mix.scan_percent),
                (OpKind::ReadModifyWrite, mix.read_modify_write_percent),
            ];
            for (kind, percent) in expected {
                let got = measured.get(&kind).copied().unwrap_or(0.0);
                // The standard error of a share over 100k draws is at most 0.16 points.
                assert!(
                    (got - f64::from(percent)).abs() < 1.0,
                    "{}: {} is {got:.2}%, expected {percent}%",
                    workload.name(),
                    kind.name()
                );
            }
            // Every insert took one index: the counter moved by exactly the inserts made.
            let inserted = measured.get(&OpKind::Insert).copied().unwrap_or(0.0);
            let taken = inserts.current() - workload_spec.key_space;
            assert!((inserted * ops as f64 / 100.0 - taken as f64).abs() < 0.5);
        }
    }

    #[test]
    fn same_seed_same_stream_other_client_other_stream() {
        let workload_spec = spec(
            OpMix::reads_and_updates(50),
            KeyDistribution::Zipfian { theta: 0.99 },
        );
        let stream = |client| {
            let mut generator =
                OpGenerator::new(&workload_spec, client, InsertCounter::new(10_000));
            (0..500).map(|_| generator.next_op()).collect::<Vec<_>>()
        };
        assert_eq!(stream(0), stream(0));
        assert_ne!(stream(0), stream(1));
    }

    #[test]
    fn ops_are_well_formed() {
        let (mix, distribution, scan_length_max) = Ycsb::E.mix();
        let mut workload_spec = spec(mix, distribution);
        workload_spec.scan_length_max = scan_length_max;
        let mut generator = OpGenerator::new(&workload_spec, 3, InsertCounter::new(10_000));
        let mut longest_scan = 0;
        for _ in 0..10_000 {
            match generator.next_op() {
                Op::Scan { start, count } => {
                    assert!((1..=scan_length_max).contains(&count));
                    assert!(start.starts_with(b"perf/"));
                    longest_scan = longest_scan.max(count);
                }
                Op::Insert { key, value } => {
                    assert!(key.as_slice() >= key_name(10_000).as_slice());
                    assert_eq!(value.len(), 100);
                }
                other => panic!("workload E made {other:?}"),
            }
        }
        assert_eq!(longest_scan, scan_length_max);
    }

    #[test]
    fn a_mix_not_adding_up_is_relative_and_an_empty_one_reads() {
        let uneven = OpMix {
            read_percent: 1,
            update_percent: 1,
            insert_percent: 0,
            scan_percent: 0,
            read_modify_write_percent: 0,
        };
        let mut generator = OpGenerator::new(
            &spec(uneven, KeyDistribution::Uniform),
            0,
            InsertCounter::new(10_000),
        );
        let measured = shares(&mut generator, 10_000);
        assert!((measured[&OpKind::Read] - 50.0).abs() < 3.0);
        let empty = OpMix {
            read_percent: 0,
            update_percent: 0,
            ..uneven
        };
        let mut generator = OpGenerator::new(
            &spec(empty, KeyDistribution::Uniform),
            0,
            InsertCounter::new(10_000),
        );
        assert_eq!(generator.next_op().kind(), OpKind::Read);
    }

    #[test]
    fn values_have_the_exact_size_and_vary() {
        for bytes in [0, 1, 7, 8, 9, 100, 4096] {
            assert_eq!(value_bytes(5, bytes).len(), bytes);
        }
        assert_ne!(value_bytes(1, 64), value_bytes(2, 64));
        assert_eq!(value_bytes(1, 64), value_bytes(1, 64));
        let value = value_bytes(3, 1000);
        let distinct: std::collections::BTreeSet<u8> = value.iter().copied().collect();
        assert!(
            distinct.len() > 32,
            "a value uses only {} symbols",
            distinct.len()
        );
    }

    #[test]
    fn keys_sort_as_their_indices() {
        assert!(key_name(9) < key_name(10));
        assert!(key_name(99_999) < key_name(100_000));
    }
}
