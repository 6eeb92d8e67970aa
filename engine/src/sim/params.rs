//! Everything a run varies, drawn from its seed: the Raft configuration (pre-vote,
//! check-quorum, lease reads, batch bounds, in-flight window), the fault mix, the disks, the
//! clocks and the client workload. One seed, one run.

use super::network::NetworkFaults;
use crate::raft::rng::SeededRng;
use crate::raft::{Config, NodeId};

/// Simulated time units per nominal tick. A node's tick period is this or slightly less (its
/// clock runs fast), within the configuration's clock-drift margin.
pub const TICK_TIME: u64 = 1_000;

/// Fixed bounds of a run: they keep each run to a few milliseconds of real time.
pub mod bounds {
    /// Simulated ticks of the faulty phase (clients and faults active), unless a run asks for
    /// another length (`--ticks`).
    pub const SIM_TIME_TICKS_DEFAULT: u64 = 400;
    /// The longest faulty phase a run may ask for.
    pub const SIM_TIME_TICKS_MAX: u64 = 1_000_000;
    /// Most client operations in one run, however long: the linearizability search recurses
    /// once per operation of a key, and this keeps its depth well inside a thread's stack.
    pub const CLIENT_OPS_MAX: u64 = 4_000;
    /// Simulated ticks, after every fault healed, within which a leader must be elected and
    /// every pending client operation must complete (liveness).
    pub const LIVENESS_TICKS_MAX: u64 = 400;
    /// Events processed in one run, a guard against a livelock of the simulator itself.
    pub const EVENTS_MAX: u64 = 2_000_000;
    /// Ready rounds taken from one node after one input before it must be quiet.
    pub const READY_ROUNDS_MAX: u32 = 64;
}

/// The per-seed parameters of one run.
#[derive(Clone, Debug)]
pub struct SimParams {
    pub nodes: usize,
    pub raft: Config,
    pub network: NetworkFaults,
    /// Per node: time units per tick (clock drift).
    pub tick_time: Vec<u64>,
    /// Per node: disk write delay range in time units (some disks are slow).
    pub disk_time: Vec<(u64, u64)>,
    /// Mean time between two fault actions (crash, restart, partition, heal, transfer).
    pub fault_interval_time: u64,
    /// Most nodes down at once; may exceed a minority (safety must hold; progress may stop).
    pub crashed_max: usize,
    pub clients: usize,
    pub keys: u8,
    pub client_ops_max: u64,
    /// Simulated ticks of the faulty phase.
    pub sim_time_ticks: u64,
    /// A client that hears nothing for this long retries, maybe at another node.
    pub client_timeout_time: u64,
    pub client_delay_time_max: u64,
    pub client_think_time_max: u64,
    /// A node snapshots its applied state (and compacts its log) every this many applied
    /// entries; 0 never.
    pub snapshot_entries: u64,
}

fn pick<T: Copy>(rng: &mut SeededRng, choices: &[T]) -> T {
    choices[rng.range(0, choices.len() as u64) as usize]
}

impl SimParams {
    pub fn from_seed(seed: u64, nodes: usize) -> Self {
        let mut rng = SeededRng::new(seed ^ 0x5E_ED0F_7E4E);
        // Some nodes start as spares outside the cluster (no bootstrap voters): the membership
        // faults add them as learners and promote them.
        let spares = pick(&mut rng, &[0, 0, 1, 2]).min(nodes - 1);
        let voters: Vec<NodeId> = (1..=(nodes - spares) as NodeId).collect();
        let mut raft = Config::new(1, voters);
        raft.election_timeout_ticks_min = rng.range(10, 14);
        raft.election_timeout_ticks_max = raft.election_timeout_ticks_min + rng.range(5, 12);
        raft.heartbeat_interval_ticks = rng.range(1, 4);
        raft.pre_vote = rng.chance(1, 2);
        raft.check_quorum = rng.chance(2, 3);
        raft.lease_reads = raft.check_quorum && rng.chance(1, 2);
        raft.clock_drift_margin_ticks = 2;
        raft.append_entries_max = pick(&mut rng, &[1, 2, 4, 64]);
        raft.append_bytes_max = pick(&mut rng, &[40, 200, 1 << 20]);
        raft.inflight_messages_max = pick(&mut rng, &[1, 2, 4, 32]);
        raft.uncommitted_entries_max = pick(&mut rng, &[4, 64, 1 << 20]);
        raft.pending_reads_max = pick(&mut rng, &[2, 64]);
        raft.seed = rng.next_u64();
        // Clocks run fast by at most half the drift margin: a follower runs at most
        // `margin / 2` ticks ahead per election timeout, inside what the lease allows for.
        let drift_time_max =
            TICK_TIME * raft.clock_drift_margin_ticks / (2 * raft.election_timeout_ticks_min);
        let tick_time = (0..nodes)
            .map(|_| TICK_TIME - rng.range(0, drift_time_max + 1))
            .collect();
        let disk_time = (0..nodes)
            .map(|_| {
                // Some disks are slow, but a write stays well below the election timeout:
                // Raft needs broadcast time (two writes and a round trip per election) much
                // shorter than it, or split votes can go on forever (see SIM_FINDINGS.md).
                let slow = rng.chance(1, 3);
                if slow {
                    (300, rng.range(800, 3000))
                } else {
                    (20, rng.range(50, 400))
                }
            })
            .collect();
        let delay_time_min = rng.range(50, 300);
        let network = NetworkFaults {
            drop_per_mille: pick(&mut rng, &[0, 10, 50, 150]),
            duplicate_per_mille: pick(&mut rng, &[0, 10, 50]),
            delay_time_min,
            delay_time_max: delay_time_min + pick(&mut rng, &[200, 1000, 3000]),
            late_per_mille: pick(&mut rng, &[0, 5, 20]),
            late_time_max: TICK_TIME * 40,
        };
        SimParams {
            nodes,
            raft,
            network,
            tick_time,
            disk_time,
            fault_interval_time: TICK_TIME * pick(&mut rng, &[5, 10, 20, 40]),
            crashed_max: pick(&mut rng, &[1, nodes / 2, nodes / 2 + 1]).max(1),
            clients: rng.range(2, 8) as usize,
            keys: rng.range(1, 5) as u8,
            client_ops_max: rng.range(60, 150),
            sim_time_ticks: bounds::SIM_TIME_TICKS_DEFAULT,
            client_timeout_time: TICK_TIME * 15,
            client_delay_time_max: 500,
            client_think_time_max: TICK_TIME * 4,
            snapshot_entries: pick(&mut rng, &[0, 3, 8, 20, 50]),
        }
    }

    /// The configuration of node `id`: the shared one with its own id and election seed; a
    /// spare (not a bootstrap voter) starts with no voters and learns the membership it joins.
    pub fn config_for(&self, id: NodeId) -> Config {
        let mut config = self.raft.clone();
        config.id = id;
        if !config.voters.contains(&id) {
            config.voters.clear();
        }
        config.seed = self.raft.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        config
    }
}
