//! The `tern-perf` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tern_perf::commands::{compare, election, mix, scale, soak, stragglers};

/// tern's cluster bench suite: tern and etcd side by side on this machine, in one run, with one
/// workload, both fsyncing every acknowledged write on a majority.
///
/// Each subcommand starts real server processes on 127.0.0.1 in a temporary directory, drives
/// them through each system's own client library, prints a table (with tern/etcd ratios) and
/// writes results.json, summary.txt and plots (SVG and PNG) under perf/results/<subcommand>/.
/// etcd runs only with --with etcd and must be installed: perf/install-etcd.sh. See
/// perf/README.md for what is measured and why the comparison is fair.
///
/// Examples:
///
///   cargo run --release -p tern-perf -- compare --nodes 3 --with etcd
///   cargo run --release -p tern-perf -- scale --with etcd --sizes 3,5,7
///   cargo run --release -p tern-perf -- election --with etcd --trials 10
#[derive(Parser, Debug)]
#[command(name = "tern-perf", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Compare(compare::CompareArgs),
    Scale(scale::ScaleArgs),
    Mix(mix::MixArgs),
    Election(election::ElectionArgs),
    Stragglers(stragglers::StragglersArgs),
    Soak(soak::SoakArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Compare(args) => compare::run(args),
        Command::Scale(args) => scale::run(args),
        Command::Mix(args) => mix::run(args),
        Command::Election(args) => election::run(args),
        Command::Stragglers(args) => stragglers::run(args),
        Command::Soak(args) => soak::run(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tern-perf: {error}");
            ExitCode::FAILURE
        }
    }
}
