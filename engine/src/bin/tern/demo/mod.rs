//! `tern demo`: the one-command tour. Starts a cluster of child processes on loopback with TLS
//! in a temporary directory, runs a mixed workload with a progress bar, reports throughput and
//! latency, kills the leader with SIGKILL and measures how long until the next write commits,
//! checks that acknowledged writes survived, and shuts the rest down with SIGTERM.

mod cluster;
mod workload;

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use tern_net::tls::{Identity, Security};
use tern_net::{KvClient, KvClientConfig, NodeId};

use crate::status::query_all;
use crate::{fail, EXIT_NEGATIVE};
use cluster::Cluster;
use workload::{describe, latency, thousands, write_id, Possible, Shape, Tally};

/// How long the demo waits for the first leader.
const LEADER_WAIT: Duration = Duration::from_secs(10);
/// How long the demo waits for a write after killing the leader.
const FAILOVER_WAIT: Duration = Duration::from_secs(15);
/// How long nodes get to exit after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Most keys read back after the failover.
const CHECK_KEYS_MAX: usize = 1000;
/// The failover probe's attempt timeout: short, so the measured failover time is the
/// cluster's, not the client's patience (retries keep their sequence: still exactly once).
const PROBE_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(50);

/// Start a local cluster, load it, kill its leader, and watch it recover.
///
/// With no arguments: makes a temporary directory with certificates, starts 3 `tern serve`
/// processes on free 127.0.0.1 ports (mutual TLS, default timeouts; their logs go to files in
/// that directory), waits for a leader, runs 64 concurrent clients for 10 s (half gets, half
/// puts of 256-byte values over 10,000 keys) with a progress bar, prints throughput and
/// latency, kills the leader with SIGKILL, reports how long until the next write committed,
/// reads back up to 1000 keys written before the kill, stops the other nodes with SIGTERM and
/// removes the directory. Exit code 0 if everything checked out, 1 otherwise (the directory
/// is then kept for its logs). Ctrl-C stops the nodes and exits with 130.
///
/// Examples:
///
///   cargo run --release -- demo
///   tern demo --nodes 5 --duration-secs 30
///   tern demo --clients 256 --read-percent 90 --keep-data
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct DemoArgs {
    /// Nodes in the cluster (3 to 9).
    ///
    /// The leader is killed, so a majority must survive it: at least 3.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(3..=9))]
    nodes: u16,

    /// How long the workload runs (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration_secs: u64,

    /// Concurrent clients (tasks sharing one pipelining connection), each doing one operation
    /// at a time.
    ///
    /// More clients mean more requests in flight: throughput rises until the machine is busy,
    /// then latency rises instead. At most 1024, the client library's default in-flight bound
    /// (more tasks would only queue inside the client).
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    clients: u16,

    /// Size of each written value (bytes, at least 16: it starts with the write's id).
    #[arg(long, value_name = "BYTES", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(16..=65_536))]
    value_bytes: u32,

    /// Share of operations that are gets (percent); the rest are puts.
    #[arg(long, value_name = "PERCENT", default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    read_percent: u8,

    /// Keep the temporary directory (certificates, data, logs) instead of removing it.
    #[arg(long)]
    keep_data: bool,
}

/// Runs `tern demo`.
pub fn run(args: DemoArgs) -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal asks the demo to stop its nodes; a second one exits at once (the
        // nodes then die with their parent-death signal).
        let registered =
            signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())
                .and_then(|_| signal_hook::flag::register(signal, stop.clone()));
        if let Err(error) = registered {
            return fail(
                "demo",
                EXIT_NEGATIVE,
                format!("cannot handle signals: {error}"),
            );
        }
    }
    let dir = match tempfile::Builder::new().prefix("tern-demo-").tempdir() {
        Ok(dir) => dir,
        Err(error) => {
            return fail(
                "demo",
                EXIT_NEGATIVE,
                format!("cannot create a temporary directory: {error}"),
            )
        }
    };
    let outcome = demo(&args, dir.path(), stop.clone());
    let path = dir.path().display().to_string();
    if stop.load(Ordering::Relaxed) {
        // Ctrl-C (or SIGTERM): the nodes are already stopped; nothing failed, nothing to keep.
        if args.keep_data {
            let _ = dir.keep();
            eprintln!("tern demo: interrupted; nodes stopped; data kept in {path}");
        } else {
            drop(dir);
            eprintln!("tern demo: interrupted; nodes stopped; removed {path}");
        }
        return ExitCode::from(130);
    }
    match outcome {
        Ok(()) if !args.keep_data => {
            drop(dir);
            println!("demo passed; removed {path}");
            ExitCode::SUCCESS
        }
        Ok(()) => {
            let _ = dir.keep();
            println!("demo passed; certificates, data and logs kept in {path}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            let _ = dir.keep();
            eprintln!("tern demo FAILED: {message}");
            eprintln!("certificates, data and logs kept in {path}");
            ExitCode::from(EXIT_NEGATIVE)
        }
    }
}

/// Everything after the directory exists: certificates, nodes, then the scenario on a glommio
/// executor (the client library runs there).
fn demo(args: &DemoArgs, dir: &Path, stop: Arc<AtomicBool>) -> Result<(), String> {
    let ids: Vec<NodeId> = (1..=NodeId::from(args.nodes)).collect();
    let cert_dir = dir.join("certs");
    tern_net::certs::write_cluster_certificates(&cert_dir, &ids, false)
        .map_err(|error| format!("writing certificates: {error}"))?;
    let credentials = tern_net::certs::load_credentials(&cert_dir, Identity::Client)
        .map_err(|error| format!("reading the client certificate: {error}"))?;
    println!(
        "tern demo: {} nodes on 127.0.0.1 with mutual TLS; certificates, data and logs in {}",
        args.nodes,
        dir.display()
    );
    // Started on this thread, which lives until the end: the nodes' parent-death signal is
    // tied to it.
    let cluster = Cluster::start(dir, &cert_dir, ids.len())?;
    for node in &cluster.nodes {
        println!(
            "  node {}: peers {}, clients {}, log {}",
            node.id,
            node.peer_addr,
            node.client_addr,
            node.log_path().display()
        );
    }
    let shape = Shape {
        clients: usize::from(args.clients),
        duration: Duration::from_secs(args.duration_secs),
        value_bytes: args.value_bytes as usize,
        read_percent: args.read_percent,
    };
    let security = Security::MutualTls(credentials);
    let executor = tern_net::runtime::run_executor("tern-demo", move || async move {
        // The cluster lives in this future: whatever way it ends (error, panic), dropping it
        // kills the nodes still running.
        scenario(cluster, security, shape, stop).await
    })
    .map_err(|error| format!("cannot start the client executor: {error}"))?;
    executor
        .join()
        .map_err(|_| "the demo's client thread panicked (nodes were killed)".to_string())?
}

fn interrupted(stop: &AtomicBool) -> Result<(), String> {
    if stop.load(Ordering::Relaxed) {
        Err("interrupted".to_string())
    } else {
        Ok(())
    }
}

/// The scenario proper. Problems that leave the run meaningful (errors, mismatches) are
/// collected and reported at the end; the others end it at once.
async fn scenario(
    mut cluster: Cluster,
    security: Security,
    shape: Shape,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    let mut problems: Vec<String> = Vec::new();

    let (leader, term, waited) = wait_for_leader(&mut cluster, &security, &stop).await?;
    println!(
        "leader: node {leader} (term {term}), elected {} ms after start",
        waited.as_millis()
    );

    let client_config = KvClientConfig::new(cluster.live_endpoints(), security.clone());
    let client = Rc::new(
        KvClient::connect(client_config)
            .await
            .map_err(|error| format!("connecting to the cluster: {error}"))?,
    );
    println!(
        "workload: {} clients for {} s, {}% gets and {}% puts of {}-byte values over {} keys",
        shape.clients,
        shape.duration.as_secs(),
        shape.read_percent,
        100 - shape.read_percent,
        shape.value_bytes,
        thousands(u64::from(workload::KEY_SPACE))
    );
    let (tally, elapsed) = workload::run(client.clone(), shape, stop.clone()).await;
    interrupted(&stop)?;
    report_workload(&tally, elapsed, &mut problems);
    cluster.check_running()?;

    // Elections may have happened under load (the term says how many); an election may even
    // be under way right now, so wait for a leader as at the start.
    let (leader, term_after, _) = wait_for_leader(&mut cluster, &security, &stop).await?;
    let elections = if term_after > term {
        format!(
            "; {} new term(s) since the start: the leader changed under load",
            term_after - term
        )
    } else {
        String::new()
    };
    println!("leader after the workload: node {leader} (term {term_after}{elections})");
    let probe = failover(&mut cluster, leader, &security, &stop).await?;

    check_keys(&probe, &tally, shape.clients, &mut problems).await;

    client.close();
    probe.close();
    for (id, outcome) in cluster.terminate_all(SHUTDOWN_GRACE) {
        match outcome {
            Ok(status) if status.success() => println!("shutdown: node {id} exited cleanly"),
            Ok(status) => problems.push(format!(
                "node {id} exited with {status} after SIGTERM; see its log"
            )),
            Err(why) => problems.push(format!("node {id} {why}")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} problem(s):\n  {}\nnode logs:\n{}",
            problems.len(),
            problems.join("\n  "),
            cluster.log_paths()
        ))
    }
}

/// Polls every node until one says it leads; returns (leader, term, time waited).
async fn wait_for_leader(
    cluster: &mut Cluster,
    security: &Security,
    stop: &AtomicBool,
) -> Result<(NodeId, u64, Duration), String> {
    let started = Instant::now();
    let mut last_rows = Vec::new();
    while started.elapsed() < LEADER_WAIT {
        interrupted(stop)?;
        cluster.check_running()?;
        let rows = query_all(
            &cluster.live_endpoints(),
            security,
            Duration::from_millis(500),
        )
        .await;
        if let Some((id, term)) = leader_of(&rows) {
            return Ok((id, term, started.elapsed()));
        }
        last_rows = rows;
        tern_net::runtime::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "no leader within {} s. Last status:\n{}node logs:\n{}",
        LEADER_WAIT.as_secs(),
        crate::status::format_table(&last_rows),
        cluster.log_paths()
    ))
}

/// The leader with the highest term among the answers, if any.
fn leader_of(rows: &[crate::status::StatusRow]) -> Option<(NodeId, u64)> {
    rows.iter()
        .filter_map(|(_, answer)| answer.as_ref().ok())
        .filter(|status| status.role == "leader")
        .max_by_key(|status| status.term)
        .map(|status| (status.node_id, status.term))
}

fn report_workload(tally: &Tally, elapsed: Duration, problems: &mut Vec<String>) {
    let ops = tally.gets + tally.puts;
    let seconds = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    let errors = tally.error_count();
    println!(
        "throughput: {} ops/s ({} ops in {:.1} s: {} gets, {} puts), {} errors",
        thousands((ops as f64 / seconds) as u64),
        thousands(ops),
        seconds,
        thousands(tally.gets),
        thousands(tally.puts),
        errors
    );
    let histogram = &tally.latency_us;
    if ops > 0 {
        println!(
            "latency: p50 {}, p90 {}, p99 {}, max {}",
            latency(histogram.value_at_quantile(0.50)),
            latency(histogram.value_at_quantile(0.90)),
            latency(histogram.value_at_quantile(0.99)),
            latency(histogram.max())
        );
    }
    for (kind, (count, first)) in &tally.errors {
        problems.push(format!(
            "{count} {kind} error(s) during the workload, e.g. {first}"
        ));
    }
    if tally.mismatches == 0 {
        println!(
            "reads: every get returned its key's last acknowledged value ({} gets checked)",
            thousands(tally.gets)
        );
    } else {
        problems.push(format!(
            "{} get(s) returned something other than the last acknowledged value, e.g.:\n    {}",
            tally.mismatches,
            tally.mismatch_examples.join("\n    ")
        ));
    }
}

/// Kills the leader and writes until a write commits; returns the probe client (which knows
/// the new leader) for the checks that follow.
async fn failover(
    cluster: &mut Cluster,
    leader: NodeId,
    security: &Security,
    stop: &AtomicBool,
) -> Result<KvClient, String> {
    // The probe knows only the survivors and gives up on an attempt quickly, so what it
    // measures is the cluster electing a leader and committing, not client timeouts.
    let survivors: Vec<SocketAddr> = cluster
        .nodes
        .iter()
        .filter(|node| node.id != leader)
        .map(|node| node.client_addr)
        .filter(|address| cluster.live_endpoints().contains(address))
        .collect();
    let mut config = KvClientConfig::new(survivors, security.clone());
    config.attempt_timeout = PROBE_ATTEMPT_TIMEOUT;
    config.operation_timeout = FAILOVER_WAIT;
    let probe = KvClient::connect(config)
        .await
        .map_err(|error| format!("connecting the failover probe: {error}"))?;

    cluster.kill(leader)?;
    let killed_at = Instant::now();
    let mut last_error = String::new();
    let mut committed = false;
    while killed_at.elapsed() < FAILOVER_WAIT {
        interrupted(stop)?;
        match probe
            .put(
                "demo/failover",
                format!("written after node {leader} was killed"),
            )
            .await
        {
            Ok(()) => {
                committed = true;
                break;
            }
            Err(error) => last_error = error.to_string(),
        }
    }
    let waited = killed_at.elapsed();
    if !committed {
        return Err(format!(
            "leader {leader} killed; no write committed within {} s (last error: {last_error})",
            FAILOVER_WAIT.as_secs()
        ));
    }
    // The term tells whether the election took more than one round (split votes).
    let rows = query_all(&cluster.live_endpoints(), security, Duration::from_secs(1)).await;
    let new_leader = match (leader_of(&rows), probe.leader()) {
        (Some((id, term)), _) => format!("new leader {id}, term {term}"),
        (None, Some(id)) => format!("new leader {id}"),
        (None, None) => "new leader unknown".to_string(),
    };
    println!(
        "leader {leader} killed; next write committed after {} ms ({new_leader})",
        waited.as_millis()
    );
    Ok(probe)
}

/// Reads back up to `CHECK_KEYS_MAX` keys written before the kill, spread over the key space,
/// with `concurrency` reads in flight.
async fn check_keys(
    client: &KvClient,
    tally: &Tally,
    concurrency: usize,
    problems: &mut Vec<String>,
) {
    let written: Vec<(u32, &Possible)> = tally
        .keys
        .iter()
        .filter(|(_, possible)| possible.written())
        .map(|(index, possible)| (*index, possible))
        .collect();
    if written.is_empty() {
        println!("check: no key was written before the kill (--read-percent 100?)");
        return;
    }
    // Evenly spread over the written keys, exactly CHECK_KEYS_MAX of them when there are more.
    let count = written.len().min(CHECK_KEYS_MAX);
    let sample: Vec<(u32, &Possible)> = (0..count)
        .map(|position| written[position * written.len() / count])
        .collect();
    let mut wrong: Vec<String> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    for chunk in sample.chunks(concurrency.max(1)) {
        // One chunk's reads go out together; the client pipelines them on one connection.
        let reads = chunk
            .iter()
            .map(|(index, _)| client.get(workload::key(*index)));
        let answers = join_all(reads.collect()).await;
        for ((index, possible), answer) in chunk.iter().zip(answers) {
            match answer {
                Ok(value) => {
                    let found = value.as_deref().map(write_id);
                    let allowed = match found {
                        Some(Some(write)) => possible.allows(Some(write)),
                        None => possible.allows(None),
                        Some(None) => false,
                    };
                    if !allowed {
                        wrong.push(format!(
                            "demo/{index}: found {}, last acknowledged {}",
                            found.map_or("absent".to_string(), describe),
                            describe(possible.acknowledged)
                        ));
                    }
                }
                Err(error) => failed.push(format!("demo/{index}: {error}")),
            }
        }
    }
    if wrong.is_empty() && failed.is_empty() {
        println!(
            "check: all {} sampled keys (of {} written before the kill) hold their last \
             acknowledged value",
            thousands(sample.len() as u64),
            thousands(written.len() as u64)
        );
        return;
    }
    if !wrong.is_empty() {
        problems.push(format!(
            "{} of {} keys read back wrong after the failover, e.g.:\n    {}",
            wrong.len(),
            sample.len(),
            wrong[..wrong.len().min(5)].join("\n    ")
        ));
    }
    if !failed.is_empty() {
        problems.push(format!(
            "{} of {} reads after the failover failed, e.g. {}",
            failed.len(),
            sample.len(),
            failed[0]
        ));
    }
}

/// Awaits every future, polling them together; results in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|context| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(context) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
