//! `compare`: tern against etcd at 1, 16, 64 and 256 clients, puts and gets.

use clap::Args;

use super::args::CommonArgs;
use super::output::{plot_or_warn, write_results};
use super::points::{run_on_new_clusters, Point};
use super::specs::{gets, puts, spec};
use crate::report::plot::{latency_cdf, throughput_vs_clients};
use crate::report::record::RunRecord;
use crate::report::table::summary_table;
use crate::workload::LoopKind;

/// The client count whose latency CDF is plotted (or the nearest one measured).
const CDF_CLIENTS: usize = 64;

/// Throughput and latency of puts and gets as concurrency grows.
///
/// Starts a cluster of each system side by side, loads the key space, then for every client
/// count runs puts (updates of loaded keys) and gets, alternating the systems, --repeats times.
/// Writes results.json, summary.txt, throughput_vs_clients.{svg,png} and
/// latency_cdf.{svg,png} (at 64 clients) into <OUT>/compare/.
///
/// Example: cargo run --release -p tern-perf -- compare --nodes 3 --with etcd
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct CompareArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Members per cluster.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(1..=11))]
    pub nodes: u16,

    /// Client counts (closed loop: each client has one request in flight).
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = [1u16, 16, 64, 256],
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub clients: Vec<u16>,
}

pub fn run(args: &CompareArgs) -> Result<(), String> {
    let common = &args.common;
    common.validate()?;
    let systems = common.systems();
    let dir = common.out_dir("compare");
    let mut points = Vec::new();
    for (name, mix) in [("puts", puts()), ("gets", gets())] {
        for &clients in &args.clients {
            points.push(Point {
                label: format!("{name} c={clients}"),
                spec: spec(common, name, mix, usize::from(clients)),
            });
        }
    }
    let mut records: Vec<RunRecord> = Vec::new();
    run_on_new_clusters(
        "compare",
        &systems,
        usize::from(args.nodes),
        common.timing(),
        &points,
        common.repeats,
        &mut records,
    )?;

    let summary = summary_table(&records);
    write_results(&dir, &systems, &records, &summary)?;
    plot_or_warn(
        "throughput_vs_clients",
        throughput_vs_clients(&records, &dir.join("throughput_vs_clients")),
    );
    let cdf_clients = nearest_clients(&args.clients, CDF_CLIENTS);
    let cdf_records: Vec<RunRecord> = records
        .iter()
        .filter(|record| clients_of(record) == Some(cdf_clients))
        .cloned()
        .collect();
    plot_or_warn(
        "latency_cdf",
        latency_cdf(&cdf_records, &dir.join("latency_cdf")),
    );
    Ok(())
}

/// The closed loop's client count (or the open loop's in-flight bound).
pub fn clients_of(record: &RunRecord) -> Option<usize> {
    match record.workload.loop_kind {
        LoopKind::Closed { clients } => Some(clients),
        LoopKind::Open { inflight_max, .. } => Some(inflight_max),
    }
}

fn nearest_clients(measured: &[u16], wanted: usize) -> usize {
    measured
        .iter()
        .map(|&clients| usize::from(clients))
        .min_by_key(|&clients| clients.abs_diff(wanted))
        .unwrap_or(wanted)
}
