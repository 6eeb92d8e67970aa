//! `mix`: read ratios 0, 50, 95 and 100%, and the YCSB core workloads A-F.

use clap::Args;

use super::args::CommonArgs;
use super::output::{plot_or_warn, write_results};
use super::points::{run_on_new_clusters, Point};
use super::specs::spec;
use crate::report::plot::grouped_bars;
use crate::report::record::RunRecord;
use crate::report::table::summary_table;
use crate::workload::ycsb::Ycsb;
use crate::workload::OpMix;

/// Throughput and latency under read/write mixes.
///
/// Runs gets/puts at read ratios of --read-percents (keys chosen by --distribution), then
/// YCSB A-F (each with its own key distribution: zipfian, or latest for D; E scans up to 100
/// keys), alternating the systems, --repeats times. Writes results.json, summary.txt and
/// mix.{svg,png} into <OUT>/mix/.
///
/// Example: cargo run --release -p tern-perf -- mix --with etcd
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct MixArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Members per cluster.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(1..=11))]
    pub nodes: u16,

    /// Concurrent clients (closed loop).
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub clients: u16,

    /// Read ratios to run, in percent.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = [0u8, 50, 95, 100],
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub read_percents: Vec<u8>,

    /// Leave out the YCSB workloads.
    #[arg(long)]
    pub no_ycsb: bool,
}

pub fn run(args: &MixArgs) -> Result<(), String> {
    let common = &args.common;
    common.validate()?;
    let systems = common.systems();
    let dir = common.out_dir("mix");
    let clients = usize::from(args.clients);
    let mut points = Vec::new();
    for &read_percent in &args.read_percents {
        let name = format!("read {read_percent}%");
        points.push(Point {
            label: name.clone(),
            spec: spec(
                common,
                &name,
                OpMix::reads_and_updates(read_percent),
                clients,
            ),
        });
    }
    if !args.no_ycsb {
        for workload in Ycsb::ALL {
            let (mix, distribution, scan_length_max) = workload.mix();
            let mut point_spec = spec(common, workload.name(), mix, clients);
            point_spec.distribution = distribution;
            point_spec.scan_length_max = scan_length_max;
            points.push(Point {
                label: workload.name().to_string(),
                spec: point_spec,
            });
        }
    }
    let mut records: Vec<RunRecord> = Vec::new();
    run_on_new_clusters(
        "mix",
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
        "mix",
        grouped_bars(
            &records,
            &dir.join("mix"),
            &format!(
                "Read/write mixes and YCSB, {} nodes, {clients} clients",
                args.nodes
            ),
        ),
    );
    Ok(())
}
