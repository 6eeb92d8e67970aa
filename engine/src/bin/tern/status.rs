//! `tern status`: asks every endpoint for its Raft state, all at once, and prints a table.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tern_net::message::NodeStatus;
use tern_net::tls::Security;

use crate::addresses::parse_endpoints;
use crate::client_commands::{security, ClientFlags};
use crate::{fail, EXIT_CLUSTER, EXIT_NEGATIVE, EXIT_USAGE};

/// Show every node's role, term and log position.
///
/// Asks each endpoint directly (not through the leader), so it also shows followers that lag,
/// nodes without a leader, and nodes that do not answer ("unreachable: <why>"). Exit code 0 if
/// at least one node answered, 3 if none did.
///
/// Columns: ID, ADDRESS (its client address), ROLE, TERM, LAST INDEX (last log entry), COMMIT
/// (highest entry known committed), APPLIED (highest entry applied to its map), LEADER (the
/// leader it follows).
///
/// Examples:
///
///   tern status --insecure
///   tern status --tls-dir certs --endpoints 10.0.0.1:7101,10.0.0.2:7101,10.0.0.3:7101
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct StatusArgs {
    #[command(flatten)]
    flags: ClientFlags,
}

/// One endpoint's answer, or why there was none.
pub type StatusRow = (SocketAddr, Result<NodeStatus, String>);

/// Asks every endpoint at once; rows come back in `endpoints` order. Runs on a glommio
/// executor.
pub async fn query_all(
    endpoints: &[SocketAddr],
    security: &Security,
    timeout: Duration,
) -> Vec<StatusRow> {
    let (sender, receiver) = flume::bounded(endpoints.len().max(1));
    for (index, &endpoint) in endpoints.iter().enumerate() {
        let sender = sender.clone();
        let security = security.clone();
        tern_net::runtime::spawn(async move {
            let answer = tern_net::kv_client::node_status(endpoint, &security, timeout)
                .await
                .map_err(|error| error.to_string());
            // The receiver waits for every endpoint; a send cannot find it gone.
            let _ = sender.send_async((index, answer)).await;
        });
    }
    drop(sender);
    let mut rows: Vec<Option<Result<NodeStatus, String>>> = vec![None; endpoints.len()];
    while let Ok((index, answer)) = receiver.recv_async().await {
        rows[index] = Some(answer);
    }
    endpoints
        .iter()
        .zip(rows)
        .map(|(&endpoint, answer)| {
            (
                endpoint,
                answer.unwrap_or_else(|| Err("no answer (task ended)".to_string())),
            )
        })
        .collect()
}

/// The table, one line per endpoint, columns aligned.
pub fn format_table(rows: &[StatusRow]) -> String {
    let header = [
        "ID",
        "ADDRESS",
        "ROLE",
        "TERM",
        "LAST INDEX",
        "COMMIT",
        "APPLIED",
        "LEADER",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(ToString::to_string).collect()];
    for (endpoint, answer) in rows {
        lines.push(match answer {
            Ok(status) => vec![
                status.node_id.to_string(),
                endpoint.to_string(),
                status.role.clone(),
                status.term.to_string(),
                status.last_index.to_string(),
                status.commit_index.to_string(),
                status.applied_index.to_string(),
                match (&status.leader_id, &status.leader_client_addr) {
                    (Some(id), Some(address)) => format!("{id} ({address})"),
                    (Some(id), None) => id.to_string(),
                    (None, _) => "none".to_string(),
                },
            ],
            Err(why) => vec![
                "?".to_string(),
                endpoint.to_string(),
                format!("unreachable: {why}"),
            ],
        });
    }
    // Widths come from full rows only: an unreachable row's long message is the last column.
    let mut widths = vec![0; header.len()];
    for line in lines.iter().filter(|line| line.len() == header.len()) {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut table = String::new();
    for line in &lines {
        let last = line.len() - 1;
        for (column, cell) in line.iter().enumerate() {
            if column == last {
                table.push_str(cell);
            } else {
                table.push_str(&format!("{cell:<width$}  ", width = widths[column]));
            }
        }
        table.push('\n');
    }
    table
}

/// Runs `tern status`.
pub fn run(args: StatusArgs) -> ExitCode {
    let prepared = parse_endpoints("--endpoints", &args.flags.endpoints)
        .and_then(|endpoints| Ok((endpoints, security(&args.flags)?)));
    let (endpoints, security) = match prepared {
        Ok(prepared) => prepared,
        Err(message) => return fail("status", EXIT_USAGE, message),
    };
    let timeout = match args.flags.timeout_ms {
        Some(0) => return fail("status", EXIT_USAGE, "--timeout-ms must be at least 1"),
        Some(ms) => Duration::from_millis(ms),
        None => Duration::from_secs(2),
    };
    let executor = tern_net::runtime::run_executor("tern-client", move || async move {
        query_all(&endpoints, &security, timeout).await
    });
    let rows = match executor.map(|handle| handle.join()) {
        Ok(Ok(rows)) => rows,
        Ok(Err(_)) => return fail("status", EXIT_NEGATIVE, "the client thread panicked"),
        Err(error) => {
            return fail(
                "status",
                EXIT_NEGATIVE,
                format!("cannot start the client executor: {error}"),
            )
        }
    };
    print!("{}", format_table(&rows));
    if rows.iter().any(|(_, answer)| answer.is_ok()) {
        ExitCode::SUCCESS
    } else {
        fail("status", EXIT_CLUSTER, "no endpoint answered")
    }
}
