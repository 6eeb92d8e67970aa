//! The YCSB core workloads A-F as operation mixes and key distributions.

use super::spec::{KeyDistribution, OpMix};

/// One YCSB core workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ycsb {
    A,
    B,
    C,
    D,
    E,
    F,
}

impl Ycsb {
    pub const ALL: [Ycsb; 6] = [Ycsb::A, Ycsb::B, Ycsb::C, Ycsb::D, Ycsb::E, Ycsb::F];

    /// "ycsb-a" .. "ycsb-f".
    pub fn name(self) -> &'static str {
        todo!("{self:?}")
    }

    /// A: 50% read 50% update, zipfian; B: 95/5 zipfian; C: 100% read zipfian; D: 95% read
    /// 5% insert, latest; E: 95% scan 5% insert, zipfian, scans up to 100 keys; F: 50% read
    /// 50% read-modify-write, zipfian. Zipfian theta 0.99.
    pub fn mix(self) -> (OpMix, KeyDistribution, usize) {
        todo!("{self:?}")
    }
}
