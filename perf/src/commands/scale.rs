//! `scale`: both systems at cluster sizes 3, 5, 7, 9 and 11.

use clap::Args;

use super::args::CommonArgs;
use super::output::{plot_or_warn, write_results};
use super::points::{run_on_new_clusters, Point};
use super::specs::{gets, puts, spec};
use crate::report::plot::by_cluster_size;
use crate::report::record::RunRecord;
use crate::report::table::summary_table;

/// Throughput and p99 latency as the cluster grows.
///
/// For every size, starts a cluster of each system side by side, runs puts and gets at
/// --clients, alternating the systems, --repeats times, and stops them. All nodes share this
/// machine's cores, so the curve shows the cost of replication to more members on the same
/// hardware, not what separate machines would give. Writes results.json, summary.txt and
/// by_cluster_size.{svg,png} into <OUT>/scale/.
///
/// Example: cargo run --release -p tern-perf -- scale --with etcd
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ScaleArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Cluster sizes.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = [3u16, 5, 7, 9, 11],
          value_parser = clap::value_parser!(u16).range(1..=11))]
    pub sizes: Vec<u16>,

    /// Concurrent clients (closed loop).
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub clients: u16,
}

pub fn run(args: &ScaleArgs) -> Result<(), String> {
    let common = &args.common;
    common.validate()?;
    let systems = common.systems();
    let dir = common.out_dir("scale");
    let clients = usize::from(args.clients);
    let points: Vec<Point> = [("puts", puts()), ("gets", gets())]
        .into_iter()
        .map(|(name, mix)| Point {
            label: format!("{name} c={clients}"),
            spec: spec(common, name, mix, clients),
        })
        .collect();
    let mut records: Vec<RunRecord> = Vec::new();
    for &size in &args.sizes {
        run_on_new_clusters(
            "scale",
            &systems,
            usize::from(size),
            common.timing(),
            &points,
            common.repeats,
            &mut records,
        )?;
    }
    let summary = summary_table(&records);
    write_results(&dir, &systems, &records, &summary)?;
    plot_or_warn(
        "by_cluster_size",
        by_cluster_size(&records, &dir.join("by_cluster_size")),
    );
    Ok(())
}
