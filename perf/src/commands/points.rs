//! Runs a list of points on side-by-side clusters, interleaved: every repeat runs every point
//! on every system before the next repeat starts, and the system that goes first alternates,
//! so slow drifts of the shared machine hit both systems alike.

use super::clusters::SideBySide;
use super::runner::{measure, RunPlace};
use crate::report::record::RunRecord;
use crate::system::System;
use crate::workload::{ReadConsistency, WorkloadSpec};

/// One point of a suite: a label and the workload both systems run.
pub struct Point {
    pub label: String,
    pub spec: WorkloadSpec,
}

/// Whether `system` can run `spec` (etcd has no lease reads).
pub fn supports(system: System, spec: &WorkloadSpec) -> bool {
    !(system == System::Etcd
        && spec.consistency == ReadConsistency::Lease
        && spec.mix.read_percent > 0)
}

/// Runs every point `repeats` times on every cluster of `clusters`.
pub fn run_points(
    suite: &str,
    clusters: &mut SideBySide,
    points: &[Point],
    repeats: u32,
    records: &mut Vec<RunRecord>,
) -> Result<(), String> {
    let systems: Vec<System> = clusters
        .running
        .iter()
        .map(|running| running.system)
        .collect();
    let total: usize = (repeats as usize)
        * points
            .iter()
            .map(|point| {
                systems
                    .iter()
                    .filter(|&&system| supports(system, &point.spec))
                    .count()
            })
            .sum::<usize>();
    let mut done = 0;
    for repeat in 0..repeats as usize {
        for point in points {
            let mut order = systems.clone();
            if repeat % 2 == 1 {
                order.reverse();
            }
            for system in order {
                if !supports(system, &point.spec) {
                    continue;
                }
                done += 1;
                let place = RunPlace {
                    suite,
                    label: &point.label,
                    repeat,
                    counter: format!("[{done:>3}/{total}]"),
                };
                let running = clusters
                    .get(system)
                    .ok_or_else(|| format!("no {system} cluster is running"))?;
                records.push(measure(running, &point.spec, &place)?);
            }
        }
    }
    Ok(())
}

/// Starts `nodes`-member clusters of `systems`, runs every point on them (see [`run_points`])
/// and stops them, also when a run failed.
pub fn run_on_new_clusters(
    suite: &str,
    systems: &[System],
    nodes: usize,
    timing: crate::launch::ElectionTiming,
    points: &[Point],
    repeats: u32,
    records: &mut Vec<RunRecord>,
) -> Result<(), String> {
    let mut clusters = SideBySide::start(systems, nodes, timing)?;
    let outcome = run_points(suite, &mut clusters, points, repeats, records);
    clusters.stop();
    outcome
}
