//! `stragglers`: throughput and latency with one slow follower, then with a majority of slow
//! members, the slowness made the same way for both systems (CPU throttling of the processes).

use std::time::Duration;

use clap::Args;

use super::args::CommonArgs;
use super::clusters::SideBySide;
use super::leader::wait_for_leader;
use super::output::{plot_or_warn, write_results};
use super::runner::{measure, RunPlace};
use super::specs::{puts, spec};
use crate::launch::throttle::Throttle;
use crate::report::plot::grouped_bars;
use crate::report::record::RunRecord;
use crate::report::table::summary_table;
use crate::system::System;

/// How long the leader may take to settle before a scenario starts.
const LEADER_WAIT: Duration = Duration::from_secs(10);

/// Slow members: none, one follower, then a majority.
///
/// A slow member is throttled: stopped (SIGSTOP) for all but --run-percent of every
/// --period-ms, then resumed (SIGCONT), which makes it slow at everything (disk, network,
/// CPU) without touching its code; the same for tern and etcd. The majority case picks
/// followers first, so with 3 nodes the leader stays fast and every commit waits for a slow
/// follower. Puts at --clients. Writes results.json, summary.txt and stragglers.{svg,png}
/// into <OUT>/stragglers/.
///
/// Example: cargo run --release -p tern-perf -- stragglers --with etcd
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct StragglersArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Members per cluster.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(3..=11))]
    pub nodes: u16,

    /// Concurrent clients (closed loop).
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub clients: u16,

    /// Share of each period a slow member may run, in percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 30,
          value_parser = clap::value_parser!(u8).range(1..=99))]
    pub run_percent: u8,

    /// Throttling period (ms). Keep it well below the election timeout, or slow members
    /// look dead and elections start.
    #[arg(long, value_name = "MS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(2..=1000))]
    pub period_ms: u64,
}

/// Which members a scenario slows down.
#[derive(Clone, Copy, Debug)]
enum Scenario {
    None,
    OneFollower,
    Majority,
}

impl Scenario {
    fn label(self, nodes: usize) -> String {
        match self {
            Scenario::None => "no slow member".to_string(),
            Scenario::OneFollower => "1 slow follower".to_string(),
            Scenario::Majority => format!("{} of {nodes} slow", nodes / 2 + 1),
        }
    }

    /// Members to slow down: followers first, then the leader if a majority needs it.
    fn members(self, nodes: usize, leader: usize) -> Vec<usize> {
        let count = match self {
            Scenario::None => 0,
            Scenario::OneFollower => 1,
            Scenario::Majority => nodes / 2 + 1,
        };
        let mut order: Vec<usize> = (0..nodes).filter(|&member| member != leader).collect();
        order.push(leader);
        order.truncate(count);
        order
    }
}

pub fn run(args: &StragglersArgs) -> Result<(), String> {
    let common = &args.common;
    common.validate()?;
    if args.period_ms * 2 > common.election_timeout_ms_min {
        return Err(format!(
            "--period-ms {} is too long for an election timeout of {} ms: a member stopped that \
             long looks dead; use at most half the timeout",
            args.period_ms, common.election_timeout_ms_min
        ));
    }
    let systems = common.systems();
    let dir = common.out_dir("stragglers");
    let nodes = usize::from(args.nodes);
    let clients = usize::from(args.clients);
    let scenarios = [Scenario::None, Scenario::OneFollower, Scenario::Majority];
    let mut clusters = SideBySide::start(&systems, nodes, common.timing())?;
    let mut records: Vec<RunRecord> = Vec::new();
    let total = common.repeats as usize * scenarios.len() * systems.len();
    let mut done = 0;
    let mut outcome = Ok(());
    'all: for repeat in 0..common.repeats as usize {
        for scenario in scenarios {
            let mut order = systems.clone();
            if repeat % 2 == 1 {
                order.reverse();
            }
            for system in order {
                done += 1;
                let label = scenario.label(nodes);
                let place = RunPlace {
                    suite: "stragglers",
                    label: &label,
                    repeat,
                    counter: format!("[{done:>3}/{total}]"),
                };
                let point = spec(common, "puts", puts(), clients);
                let result =
                    run_scenario(&mut clusters, system, scenario, nodes, args, &point, &place);
                match result {
                    Ok(record) => records.push(record),
                    Err(error) => {
                        outcome = Err(error);
                        break 'all;
                    }
                }
            }
        }
    }
    clusters.stop();
    outcome?;
    let summary = summary_table(&records);
    write_results(&dir, &systems, &records, &summary)?;
    plot_or_warn(
        "stragglers",
        grouped_bars(
            &records,
            &dir.join("stragglers"),
            &format!(
                "Slow members ({}% CPU time), {nodes} nodes, puts, {clients} clients",
                args.run_percent
            ),
        ),
    );
    Ok(())
}

fn run_scenario(
    clusters: &mut SideBySide,
    system: System,
    scenario: Scenario,
    nodes: usize,
    args: &StragglersArgs,
    point: &crate::workload::WorkloadSpec,
    place: &RunPlace,
) -> Result<RunRecord, String> {
    let running = clusters
        .get(system)
        .ok_or_else(|| format!("no {system} cluster is running"))?;
    let members: Vec<usize> = (0..nodes).collect();
    let (leader, _) = wait_for_leader(running.driver.as_mut(), &members, LEADER_WAIT)?;
    let slow = scenario.members(nodes, leader);
    let pids = running.cluster.server_pids();
    let slow_pids: Vec<u32> = slow
        .iter()
        .filter_map(|&member| pids.get(member).copied().flatten())
        .collect();
    // Loading happens unthrottled (it is not measured).
    running.ensure_loaded(point)?;
    let throttle = if slow_pids.is_empty() {
        None
    } else {
        Some(Throttle::start(
            slow_pids,
            args.run_percent,
            Duration::from_millis(args.period_ms),
        )?)
    };
    let record = measure(running, point, place);
    drop(throttle);
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_members_are_followers_first() {
        assert_eq!(Scenario::None.members(3, 1), Vec::<usize>::new());
        assert_eq!(Scenario::OneFollower.members(3, 0), vec![1]);
        assert_eq!(Scenario::Majority.members(3, 0), vec![1, 2]);
        assert_eq!(Scenario::Majority.members(5, 4), vec![0, 1, 2]);
        // With 3 nodes a majority is both followers: the leader stays fast.
        assert!(!Scenario::Majority.members(3, 2).contains(&2));
    }
}
