//! A workload's shape, identical for both systems so that a run of each is the same experiment.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How requests are issued.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LoopKind {
    /// `clients` concurrent clients, each with exactly one request in flight: measures the
    /// throughput a given concurrency gets.
    Closed { clients: usize },
    /// Requests start at a fixed rate whatever the latency (latency-under-load curves).
    /// Latency is measured from each request's scheduled start, so a stalled server is not
    /// hidden (no coordinated omission). At most `inflight_max` requests are outstanding; a
    /// request due while that many are in flight counts as `late` and starts when one ends.
    Open {
        rate_ops_per_s: u64,
        inflight_max: usize,
    },
}

/// How keys are chosen among the key space.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeyDistribution {
    Uniform,
    /// Zipfian over the key space with skew `theta` (YCSB's default is 0.99), with the hot
    /// keys scattered over the key space rather than clustered at its start.
    Zipfian {
        theta: f64,
    },
    /// Zipfian favouring the most recently inserted keys (YCSB workload D).
    Latest {
        theta: f64,
    },
}

/// The share of each operation, in percent; the five add up to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpMix {
    /// Get of one key.
    pub read_percent: u8,
    /// Put of an existing key.
    pub update_percent: u8,
    /// Put of a new key (beyond the loaded key space).
    pub insert_percent: u8,
    /// Range read of up to `scan_length_max` keys from a chosen key.
    pub scan_percent: u8,
    /// Get then put of the same key (two requests, timed as one operation).
    pub read_modify_write_percent: u8,
}

impl OpMix {
    /// `read_percent` gets, the rest updates.
    pub fn reads_and_updates(read_percent: u8) -> OpMix {
        OpMix {
            read_percent,
            update_percent: 100 - read_percent.min(100),
            insert_percent: 0,
            scan_percent: 0,
            read_modify_write_percent: 0,
        }
    }

    /// An error unless the shares add up to 100.
    pub fn validate(&self) -> Result<(), String> {
        let total = u32::from(self.read_percent)
            + u32::from(self.update_percent)
            + u32::from(self.insert_percent)
            + u32::from(self.scan_percent)
            + u32::from(self.read_modify_write_percent);
        if total == 100 {
            Ok(())
        } else {
            Err(format!("the operation mix adds up to {total}%, not 100%"))
        }
    }
}

/// How reads are served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadConsistency {
    /// Both systems: confirmed with a quorum before answering (tern ReadIndex, etcd's default).
    Linearizable,
    /// tern only: the leader answers under its lease, without a quorum round trip.
    Lease,
    /// Both: any member answers from its own state (may be stale).
    Serializable,
}

/// One run's workload, the same for tern and etcd.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSpec {
    /// A short label for tables and plots ("puts", "ycsb-a", "read 95%").
    pub name: String,
    pub loop_kind: LoopKind,
    /// Keys loaded before the run: indices 0 .. key_space.
    pub key_space: u64,
    pub value_bytes: usize,
    pub distribution: KeyDistribution,
    pub mix: OpMix,
    /// Upper bound of a scan's length (each scan picks 1 ..= this, uniformly).
    pub scan_length_max: usize,
    /// Measured time (after the warm-up).
    #[serde(with = "duration_secs")]
    pub duration: Duration,
    /// Time run but not measured, first.
    #[serde(with = "duration_secs")]
    pub warmup: Duration,
    pub consistency: ReadConsistency,
    /// Seeds every client's generator (client i uses seed + i): runs are repeatable.
    pub seed: u64,
}

impl WorkloadSpec {
    /// An error that says what is wrong with this workload and what to change, for specs
    /// built from the command line. (The generator itself never panics on a bad spec: it
    /// clamps; this is for telling the user.)
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        self.mix
            .validate()
            .map_err(|error| format!("workload {name}: {error}"))?;
        if self.key_space == 0 {
            return Err(format!(
                "workload {name}: the key space is empty: give at least 1 key"
            ));
        }
        match self.loop_kind {
            LoopKind::Closed { clients: 0 } => {
                return Err(format!(
                    "workload {name}: a closed loop needs at least 1 client"
                ));
            }
            LoopKind::Open {
                rate_ops_per_s: 0, ..
            } => {
                return Err(format!(
                    "workload {name}: an open loop needs a rate above 0 ops/s"
                ));
            }
            LoopKind::Open {
                inflight_max: 0, ..
            } => {
                return Err(format!(
                    "workload {name}: an open loop needs room for at least 1 request in flight"
                ));
            }
            _ => {}
        }
        if let KeyDistribution::Zipfian { theta } | KeyDistribution::Latest { theta } =
            self.distribution
        {
            if !(0.0..1.0).contains(&theta) {
                return Err(format!(
                    "workload {name}: zipfian theta {theta} is outside 0 .. 1 (YCSB uses 0.99)"
                ));
            }
        }
        if self.mix.scan_percent > 0 && self.scan_length_max == 0 {
            return Err(format!(
                "workload {name}: scans need a scan length of at least 1"
            ));
        }
        if self.duration.is_zero() {
            return Err(format!("workload {name}: the measured duration is 0"));
        }
        Ok(())
    }
}

/// Durations as fractional seconds in the JSON.
mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(duration.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(seconds).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> WorkloadSpec {
        WorkloadSpec {
            name: "puts".to_string(),
            loop_kind: LoopKind::Closed { clients: 4 },
            key_space: 1000,
            value_bytes: 100,
            distribution: KeyDistribution::Zipfian { theta: 0.99 },
            mix: OpMix::reads_and_updates(0),
            scan_length_max: 10,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            consistency: ReadConsistency::Linearizable,
            seed: 1,
        }
    }

    #[test]
    fn validate_names_what_is_wrong() {
        assert_eq!(spec().validate(), Ok(()));
        type Breakage = (fn(&mut WorkloadSpec), &'static str);
        let cases: [Breakage; 6] = [
            (|spec| spec.mix.read_percent = 50, "150%"),
            (|spec| spec.key_space = 0, "key space"),
            (
                |spec| spec.loop_kind = LoopKind::Closed { clients: 0 },
                "1 client",
            ),
            (
                |spec| {
                    spec.loop_kind = LoopKind::Open {
                        rate_ops_per_s: 0,
                        inflight_max: 8,
                    }
                },
                "rate",
            ),
            (
                |spec| spec.distribution = KeyDistribution::Latest { theta: 1.5 },
                "theta",
            ),
            (|spec| spec.duration = Duration::ZERO, "duration"),
        ];
        for (break_it, expected) in cases {
            let mut broken = spec();
            break_it(&mut broken);
            let error = broken.validate().unwrap_err();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
            assert!(
                error.contains("puts"),
                "{error:?} does not name the workload"
            );
        }
    }

    #[test]
    fn spec_round_trips_through_json() {
        let original = spec();
        let json = serde_json::to_string(&original).unwrap();
        assert!(json.contains("\"duration\":10.0"), "{json}");
        let back: WorkloadSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, original);
    }
}
