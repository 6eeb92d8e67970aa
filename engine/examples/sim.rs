//! Runs the deterministic Raft simulator over many seeds and cluster sizes.
//!
//!     cargo run --release -p tern-engine --example sim -- --seeds 1000 --nodes 3,5,7,9,11
//!     cargo run --release -p tern-engine --example sim -- --seed 42 --nodes 5 --trace
//!
//! Ends with one line `seeds: N, steps: S, violations: V` and exits non-zero when V > 0.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;
use tern_engine::raft::PlantedBug;
use tern_engine::sim::{self, RunOptions, NODES_MAX, NODES_MIN};

const HELP: &str = "\
sim: run tern's deterministic Raft simulator

USAGE:
    cargo run --release -p tern-engine --example sim -- [FLAGS]

FLAGS:
    --seeds N          seeds to run per cluster size (default 100)
    --seed-start S     first seed (default 0): runs seeds S..S+N
    --seed S           run the single seed S (same as --seed-start S --seeds 1)
    --nodes LIST       comma-separated cluster sizes, each 3 to 11 (default 3,5,7,9,11)
    --trace            print the readable event trace of each run (use with --seed)
    --plant-bug NAME   switch on a classic Raft bug in every node, to see the checker catch it:
                       vote-for-stale-log, commit-previous-term-by-count,
                       keep-conflicting-suffix, leader-counts-self-before-persist,
                       lease-ignores-drift-margin, vote-not-persisted,
                       install-snapshot-below-commit
    --no-vote-durability-check
                       do not check directly that a granted vote is durable before it is
                       sent (a double vote must then be caught by election safety)
    --ticks T          simulated ticks of the faulty phase of each run (default 400); client
                       operations scale with it
    --threads N        worker threads (default 2); results do not depend on it
    --help             print this help

OUTPUT:
    A progress line on stderr; for each failing run its seed, what broke and the command that
    replays it; then exactly one line `seeds: N, steps: S, violations: V` on stdout.
    Exit status 1 when V > 0, 2 on bad flags.
";

struct Args {
    seeds: u64,
    seed_start: u64,
    sizes: Vec<usize>,
    trace: bool,
    planted_bug: Option<(PlantedBug, String)>,
    threads: usize,
    ticks: u64,
    check_vote_durability: bool,
}

fn parse_bug(name: &str) -> Result<PlantedBug, String> {
    match name {
        "vote-for-stale-log" => Ok(PlantedBug::VoteForStaleLog),
        "commit-previous-term-by-count" => Ok(PlantedBug::CommitPreviousTermByCount),
        "keep-conflicting-suffix" => Ok(PlantedBug::KeepConflictingSuffix),
        "leader-counts-self-before-persist" => Ok(PlantedBug::LeaderCountsSelfBeforePersist),
        "lease-ignores-drift-margin" => Ok(PlantedBug::LeaseIgnoresDriftMargin),
        "vote-not-persisted" => Ok(PlantedBug::VoteNotPersisted),
        "install-snapshot-below-commit" => Ok(PlantedBug::InstallSnapshotBelowCommit),
        other => Err(format!(
            "unknown planted bug {other:?}: expected vote-for-stale-log, \
             commit-previous-term-by-count, keep-conflicting-suffix, \
             leader-counts-self-before-persist, lease-ignores-drift-margin, \
             vote-not-persisted or install-snapshot-below-commit"
        )),
    }
}

fn parse_number(flag: &str, value: Option<String>) -> Result<u64, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value
        .parse()
        .map_err(|_| format!("{flag} {value:?}: expected a non-negative integer"))
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        seeds: 100,
        seed_start: 0,
        sizes: vec![3, 5, 7, 9, 11],
        trace: false,
        planted_bug: None,
        threads: 2,
        ticks: sim::params::bounds::SIM_TIME_TICKS_DEFAULT,
        check_vote_durability: true,
    };
    let mut input = std::env::args().skip(1);
    while let Some(flag) = input.next() {
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--seeds" => args.seeds = parse_number(&flag, input.next())?,
            "--seed-start" => args.seed_start = parse_number(&flag, input.next())?,
            "--seed" => {
                args.seed_start = parse_number(&flag, input.next())?;
                args.seeds = 1;
            }
            "--threads" => args.threads = parse_number(&flag, input.next())?.clamp(1, 64) as usize,
            "--trace" => args.trace = true,
            "--no-vote-durability-check" => args.check_vote_durability = false,
            "--ticks" => {
                args.ticks = parse_number(&flag, input.next())?;
                let max = sim::params::bounds::SIM_TIME_TICKS_MAX;
                if !(1..=max).contains(&args.ticks) {
                    return Err(format!("--ticks {}: expected 1 to {max}", args.ticks));
                }
            }
            "--plant-bug" => {
                let name = input.next().ok_or("--plant-bug needs a bug name")?;
                args.planted_bug = Some((parse_bug(&name)?, name));
            }
            "--nodes" => {
                let list = input.next().ok_or("--nodes needs a list such as 3,5,7")?;
                let mut sizes = Vec::new();
                for part in list.split(',') {
                    let size: usize = part
                        .trim()
                        .parse()
                        .map_err(|_| format!("--nodes {list:?}: {part:?} is not a number"))?;
                    if !(NODES_MIN..=NODES_MAX).contains(&size) {
                        return Err(format!(
                            "--nodes {list:?}: {size} is outside {NODES_MIN}..={NODES_MAX}"
                        ));
                    }
                    sizes.push(size);
                }
                args.sizes = sizes;
            }
            other => return Err(format!("unknown flag {other:?} (see --help)")),
        }
    }
    if args.seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    if args.seed_start.checked_add(args.seeds).is_none() {
        return Err("--seed-start plus --seeds overflows a u64".into());
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("sim: {error}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let total = args.seeds * args.sizes.len() as u64;
    let bug = args.planted_bug.as_ref().map(|(bug, _)| *bug);
    let make = |seed: u64, nodes: usize| {
        let mut options = RunOptions::new(seed, nodes);
        options.trace = args.trace;
        options.sim_time_ticks = args.ticks;
        options.planted_bug = bug;
        options.check_vote_durability = args.check_vote_durability;
        options
    };
    let progress = |done: u64| {
        if done % 200 == 0 || done == total {
            let seconds = started.elapsed().as_secs_f64();
            eprint!("\r{done}/{total} runs, {seconds:.1} s");
            let _ = std::io::stderr().flush();
        }
    };
    let seeds = args.seed_start..args.seed_start + args.seeds;
    let reports = sim::run_many(&args.sizes, seeds, args.threads, make, progress);
    eprintln!();

    let (mut steps, mut violations) = (0u64, 0u64);
    let mut extra_flags = args
        .planted_bug
        .as_ref()
        .map(|(_, name)| format!(" --plant-bug {name}"))
        .unwrap_or_default();
    if args.ticks != sim::params::bounds::SIM_TIME_TICKS_DEFAULT {
        extra_flags += &format!(" --ticks {}", args.ticks);
    }
    if !args.check_vote_durability {
        extra_flags += " --no-vote-durability-check";
    }
    for report in reports {
        let report = match report {
            Ok(report) => report,
            Err(error) => {
                violations += 1;
                println!("error: {error}");
                continue;
            }
        };
        steps += report.steps;
        for line in &report.trace {
            println!("{line}");
        }
        if let Some(violation) = &report.violation {
            violations += 1;
            println!(
                "FAIL seed {} nodes {}: {violation}",
                report.seed, report.nodes
            );
            println!(
                "  replay: cargo run --release -p tern-engine --example sim -- --seed {} --nodes {}{extra_flags} --trace",
                report.seed, report.nodes
            );
        }
    }
    eprintln!(
        "{total} runs ({} seeds x {} sizes) in {:.1} s",
        args.seeds,
        args.sizes.len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "seeds: {}, steps: {steps}, violations: {violations}",
        args.seeds
    );
    if violations > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
