//! The YCSB core workloads A-F as operation mixes and key distributions.

use super::spec::{KeyDistribution, OpMix};

/// YCSB's zipfian constant.
const YCSB_THETA: f64 = 0.99;

/// Workload E's longest scan, in keys (YCSB's workloade file).
const SCAN_LENGTH_MAX: usize = 100;

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
        match self {
            Ycsb::A => "ycsb-a",
            Ycsb::B => "ycsb-b",
            Ycsb::C => "ycsb-c",
            Ycsb::D => "ycsb-d",
            Ycsb::E => "ycsb-e",
            Ycsb::F => "ycsb-f",
        }
    }

    /// A: 50% read 50% update, zipfian; B: 95/5 zipfian; C: 100% read zipfian; D: 95% read
    /// 5% insert, latest; E: 95% scan 5% insert, zipfian, scans up to 100 keys; F: 50% read
    /// 50% read-modify-write, zipfian. Zipfian theta 0.99.
    ///
    /// Returns (mix, distribution, scan_length_max); the scan length only matters for E.
    pub fn mix(self) -> (OpMix, KeyDistribution, usize) {
        let zipfian = KeyDistribution::Zipfian { theta: YCSB_THETA };
        let mix = |read, update, insert, scan, read_modify_write| OpMix {
            read_percent: read,
            update_percent: update,
            insert_percent: insert,
            scan_percent: scan,
            read_modify_write_percent: read_modify_write,
        };
        match self {
            Ycsb::A => (mix(50, 50, 0, 0, 0), zipfian, SCAN_LENGTH_MAX),
            Ycsb::B => (mix(95, 5, 0, 0, 0), zipfian, SCAN_LENGTH_MAX),
            Ycsb::C => (mix(100, 0, 0, 0, 0), zipfian, SCAN_LENGTH_MAX),
            Ycsb::D => (
                mix(95, 0, 5, 0, 0),
                KeyDistribution::Latest { theta: YCSB_THETA },
                SCAN_LENGTH_MAX,
            ),
            Ycsb::E => (mix(0, 0, 5, 95, 0), zipfian, SCAN_LENGTH_MAX),
            Ycsb::F => (mix(50, 0, 0, 0, 50), zipfian, SCAN_LENGTH_MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_mix_is_valid_and_named() {
        for workload in Ycsb::ALL {
            let (mix, _, scan_length_max) = workload.mix();
            assert_eq!(mix.validate(), Ok(()), "{}", workload.name());
            assert!(scan_length_max >= 1);
            assert!(workload.name().starts_with("ycsb-"));
        }
        assert!(matches!(Ycsb::D.mix().1, KeyDistribution::Latest { .. }));
        assert_eq!(Ycsb::E.mix().0.scan_percent, 95);
    }

    #[test]
    fn op_mix_validate_rejects_a_wrong_total() {
        assert_eq!(OpMix::reads_and_updates(95).validate(), Ok(()));
        let mut mix = OpMix::reads_and_updates(50);
        mix.insert_percent = 10;
        let error = mix.validate().unwrap_err();
        assert!(error.contains("110%"), "{error}");
    }
}
