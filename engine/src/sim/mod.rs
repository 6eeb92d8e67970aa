//! A deterministic simulator for the Raft core: 3 to 11 nodes on a simulated network, clock and
//! disks, with seeded faults (drops, duplicates, reordering, delays, partitions, crashes that
//! lose unpersisted writes, restarts, clock drift) and simulated clients. It checks Raft's
//! safety properties after every step (see `invariants`; the world also checks that a granted
//! vote is durable before it is sent, that reads are answered only after the state machine
//! applied their index, and that a read's index covers every entry committed anywhere before
//! the read was requested, thesis 6.4), the client history's linearizability at the end, and liveness once
//! every fault has healed. One u64 seed decides everything; a seed replays exactly.
//!
//! Run it:
//!
//! ```text
//! cargo run --release -p tern-engine --example sim -- --seeds 1000 --nodes 3,5,7,9,11
//! cargo run --release -p tern-engine --example sim -- --seed 42 --nodes 5 --trace
//! cargo run --release -p tern-engine --example sim -- --seeds 50 --nodes 3 --plant-bug vote-for-stale-log
//! ```
//!
//! Two faults aim at what random ones rarely line up. The lease trap slows a leader's inbox and
//! then cuts its outbox: the others elect a new leader while late answers keep the old one
//! leading a while, and read-mostly clients that prefer lease reads keep reading there, so an
//! overlong lease serves a stale read (caught by the read-index check). And a node sometimes
//! crashes right after a granted vote left and reboots at once, so a vote sent before it was
//! durable is forgotten and given again in the same term (two leaders, caught by election
//! safety even with the direct vote-durability check off).
//!
//! A run has two phases. The faulty phase (`--ticks`, 400 by default) has faults striking every
//! few election timeouts and clients issuing operations. Then everything heals (network clean,
//! crashed nodes restarted), every client issues one more operation, and within
//! `LIVENESS_TICKS_MAX` a leader must exist and every client must have its answer. Last, each
//! key's history is checked for linearizability. The first violation ends the run.
//!
//! Files follow concepts: `world` (the event loop and the Ready execution), `network`,
//! `storage` (durable state and the disk queue), `faults`, `client`, `requests` and `kv` (the
//! workload, how nodes serve it, and the state machine), `invariants` (the safety checks), `linearizability` (the history checker),
//! `params` (what a seed varies), `trace`.

pub mod client;
pub mod faults;
pub mod invariants;
pub mod kv;
pub mod linearizability;
pub mod network;
pub mod params;
pub mod requests;
pub mod storage;
pub mod trace;
pub mod world;

pub use params::SimParams;
pub use world::RunReport;

/// What to run: one seed on one cluster size.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub seed: u64,
    /// Cluster size, 3 to 11.
    pub nodes: usize,
    /// Record a readable event trace in the report.
    pub trace: bool,
    /// Check the commitment rule (5.4.2) directly (on by default). Off, a figure-8 bug is
    /// caught only by its consequence, a committed entry lost to a later leader.
    pub check_commitment_rule: bool,
    /// Check directly that a granted vote is durable before it is sent (on by default). Off, a
    /// vote sent too early is caught only by its consequence, two leaders in one term.
    pub check_vote_durability: bool,
    /// Length of the faulty phase in simulated ticks (default `SIM_TIME_TICKS_DEFAULT`). Client
    /// operations scale with it, so a longer run also checks a longer history.
    pub sim_time_ticks: u64,
    /// A classic bug to switch on in every node (test builds only).
    #[cfg(feature = "planted-bugs")]
    pub planted_bug: Option<crate::raft::PlantedBug>,
}

/// Smallest and largest cluster the simulator runs.
pub const NODES_MIN: usize = 3;
pub const NODES_MAX: usize = 11;

impl RunOptions {
    pub fn new(seed: u64, nodes: usize) -> Self {
        Self {
            seed,
            nodes,
            trace: false,
            check_commitment_rule: true,
            check_vote_durability: true,
            sim_time_ticks: params::bounds::SIM_TIME_TICKS_DEFAULT,
            #[cfg(feature = "planted-bugs")]
            planted_bug: None,
        }
    }
}

/// Runs one seed. A cluster size outside 3..=11 is reported as an error, not a panic.
pub fn run(options: &RunOptions) -> Result<RunReport, String> {
    if !(NODES_MIN..=NODES_MAX).contains(&options.nodes) {
        return Err(format!(
            "cluster size {} is outside {NODES_MIN}..={NODES_MAX}",
            options.nodes
        ));
    }
    if !(1..=params::bounds::SIM_TIME_TICKS_MAX).contains(&options.sim_time_ticks) {
        return Err(format!(
            "sim_time_ticks {} is outside 1..={}",
            options.sim_time_ticks,
            params::bounds::SIM_TIME_TICKS_MAX
        ));
    }
    let mut params = SimParams::from_seed(options.seed, options.nodes);
    // Same operation rate whatever the length; the per-key history stays searchable because
    // the checker's memoization keeps few-client histories cheap.
    params.client_ops_max = (params.client_ops_max * options.sim_time_ticks
        / params::bounds::SIM_TIME_TICKS_DEFAULT)
        .clamp(1, params::bounds::CLIENT_OPS_MAX);
    params.sim_time_ticks = options.sim_time_ticks;
    if let Err(error) = params.raft.validate() {
        return Err(format!(
            "seed {} drew an invalid configuration: {error}",
            options.seed
        ));
    }
    #[allow(unused_mut)]
    let mut world = world::World::new(options.seed, params, options.trace);
    world.check_commitment_rule = options.check_commitment_rule;
    world.check_vote_durability = options.check_vote_durability;
    #[cfg(feature = "planted-bugs")]
    world.plant_bug(options.planted_bug);
    // A panic inside the core (or the simulator) is a finding like any other: report it as
    // this seed's violation instead of taking down every other run.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| world.run()));
    let mut report = outcome.unwrap_or_else(|panic| {
        let text = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        world.report_after_panic(text)
    });
    report.seed = options.seed;
    Ok(report)
}

/// Runs `seeds` for each size in `sizes` on `threads` threads. Reports come back in (size,
/// seed) order whatever the threads' timing, so the output does not depend on scheduling.
pub fn run_many(
    sizes: &[usize],
    seeds: std::ops::Range<u64>,
    threads: usize,
    make: impl Fn(u64, usize) -> RunOptions + Sync,
    progress: impl Fn(u64) + Sync,
) -> Vec<Result<RunReport, String>> {
    let jobs: Vec<(usize, u64)> = sizes
        .iter()
        .flat_map(|&size| seeds.clone().map(move |seed| (size, seed)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicU64::new(0);
    let mut results: Vec<Option<Result<RunReport, String>>> =
        (0..jobs.len()).map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let job = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(size, seed)) = jobs.get(job) else {
                    break;
                };
                let report = run(&make(seed, size));
                if let Ok(mut slots) = slots.lock() {
                    slots[job] = Some(report);
                }
                progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
            });
        }
    });
    results
        .into_iter()
        .map(|slot| slot.unwrap_or_else(|| Err("run did not finish".into())))
        .collect()
}
