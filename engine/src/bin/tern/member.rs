//! `tern member list|add|promote|remove` and `tern leader transfer`: changing the cluster
//! itself. Changes go to the leader (followed from any endpoint's hint) and the command waits
//! until the change is committed and out of joint consensus, printing the members then.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use tern_net::message::{AdminOp, AdminResponse};
use tern_net::tls::Security;

use crate::addresses::parse_endpoints;
use crate::client_commands::{security, ClientFlags};
use crate::{fail, EXIT_CLUSTER, EXIT_USAGE};

/// Pause between retries of a refused change ("retry shortly" answers, no leader yet).
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Default time a command waits for its change to complete.
const TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// Time one node gets to answer one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// List or change the cluster's members.
///
/// A new machine joins in three steps: `tern member add` records it as a learner (it receives
/// the log but does not vote), `tern serve --join` on the new machine starts it (with --peers
/// naming every member and itself), and once it has caught up, `tern member promote` makes it
/// a voter. `tern member remove` takes a learner or a voter out (the leader may remove
/// itself: it hands over first). Voter changes go through joint consensus; each command
/// returns once its change is committed, or fails with exit code 3 and the reason.
///
/// Examples:
///
///   tern member list --insecure
///   tern member list -w json --insecure
///   tern member add 4=10.0.0.4:7001 --client-addr 10.0.0.4:7101 --tls-dir certs
///   tern member promote 4 --tls-dir certs
///   tern member remove 2 --tls-dir certs
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct MemberArgs {
    #[command(subcommand)]
    action: MemberAction,
}

#[derive(Subcommand, Debug)]
enum MemberAction {
    /// Print the members: id, role (voter, learner, leaving voter) and addresses.
    List {
        #[command(flatten)]
        output: OutputFlags,
        #[command(flatten)]
        flags: ClientFlags,
    },
    /// Add a learner: it receives the log without voting (start it with `tern serve --join`).
    Add {
        /// The new member: ID=PEER_ADDR (its node id, unused in this cluster, and where the
        /// other members reach it, its `tern serve --peers` entry), or ID with --peer-addr.
        #[arg(value_name = "ID=PEER_ADDR")]
        member: String,
        /// Where the other members reach it, when the member is given as a bare ID.
        #[arg(long, value_name = "HOST:PORT")]
        peer_addr: Option<String>,
        /// Where clients reach it (its `tern serve --client-addr`).
        #[arg(long, value_name = "HOST:PORT")]
        client_addr: String,
        #[command(flatten)]
        output: OutputFlags,
        #[command(flatten)]
        flags: ClientFlags,
    },
    /// Make a learner a voter (do it once the learner has caught up: see `tern status`).
    Promote {
        id: u64,
        #[command(flatten)]
        output: OutputFlags,
        #[command(flatten)]
        flags: ClientFlags,
    },
    /// Take a learner or a voter out of the membership (then stop its process).
    Remove {
        id: u64,
        #[command(flatten)]
        output: OutputFlags,
        #[command(flatten)]
        flags: ClientFlags,
    },
}

/// How the members are printed.
#[derive(Args, Debug)]
struct OutputFlags {
    /// Output format: table (aligned columns) or json (one object: members, leader_id,
    /// membership_index, committed, joint).
    #[arg(short = 'w', long = "write-out", value_enum, default_value_t = WriteOut::Table)]
    write_out: WriteOut,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum WriteOut {
    Table,
    Json,
}

/// The id and peer address of `tern member add ID=PEER_ADDR` (or `ID --peer-addr ADDR`),
/// each checked; the error says what was wrong.
fn parse_new_member(member: &str, peer_addr: Option<&str>) -> Result<(u64, String), String> {
    let (id_text, peer) = match (member.split_once('='), peer_addr) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{member:?} names a peer address and --peer-addr gives another: give one"
            ))
        }
        (Some((id, addr)), None) => (id, addr.to_string()),
        (None, Some(addr)) => (member, addr.to_string()),
        (None, None) => {
            return Err(format!(
                "{member:?} has no peer address: give ID=PEER_ADDR, e.g. 4=10.0.0.4:7001"
            ))
        }
    };
    let id = id_text.trim().parse::<u64>().map_err(|error| {
        format!("member id {id_text:?}: {error}; give a positive integer, e.g. 4=10.0.0.4:7001")
    })?;
    if id == 0 {
        return Err("member id 0 is not allowed: node ids start at 1".to_string());
    }
    check_addr("peer address", &peer)?;
    Ok((id, peer))
}

fn check_addr(what: &str, text: &str) -> Result<(), String> {
    text.parse::<SocketAddr>()
        .map(|_| ())
        .map_err(|error| format!("{what} {text:?}: {error}; give HOST:PORT, e.g. 10.0.0.4:7001"))
}

/// Hand leadership to another voter.
///
/// The leader stops taking writes, brings the target's log up to date and tells it to start
/// an election at once; the command returns when the target leads (exit 0) or fails with exit
/// code 3.
///
/// Example:
///
///   tern leader transfer 2 --insecure
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct LeaderArgs {
    #[command(subcommand)]
    action: LeaderAction,
}

#[derive(Subcommand, Debug)]
enum LeaderAction {
    /// Make voter ID the leader.
    Transfer {
        id: u64,
        #[command(flatten)]
        flags: ClientFlags,
    },
}

/// Runs `tern member ...`.
pub fn run_member(args: MemberArgs) -> ExitCode {
    let (op, output, flags, change) = match args.action {
        MemberAction::List { output, flags } => (AdminOp::ListMembers, output, flags, false),
        MemberAction::Add {
            member,
            peer_addr,
            client_addr,
            output,
            flags,
        } => {
            let parsed = parse_new_member(&member, peer_addr.as_deref())
                .and_then(|new| check_addr("--client-addr", &client_addr).map(|()| new));
            let (id, peer_addr) = match parsed {
                Ok(new) => new,
                Err(message) => return fail("member add", EXIT_USAGE, message),
            };
            let op = AdminOp::AddLearner {
                id,
                peer_addr,
                client_addr,
            };
            (op, output, flags, true)
        }
        MemberAction::Promote { id, output, flags } => {
            (AdminOp::Promote { id }, output, flags, true)
        }
        MemberAction::Remove { id, output, flags } => (AdminOp::Remove { id }, output, flags, true),
    };
    let name = match op {
        AdminOp::ListMembers => "member list",
        AdminOp::AddLearner { .. } => "member add",
        AdminOp::Promote { .. } => "member promote",
        AdminOp::Remove { .. } => "member remove",
        AdminOp::TransferLeader { .. } => "leader transfer",
    };
    match execute(name, op, &flags, change) {
        Ok(response) => {
            match output.write_out {
                WriteOut::Table => print!("{}", format_members(&response)),
                WriteOut::Json => println!("{}", members_json(&response)),
            }
            ExitCode::SUCCESS
        }
        Err((code, message)) => fail(name, code, message),
    }
}

/// Runs `tern leader transfer`.
pub fn run_leader(args: LeaderArgs) -> ExitCode {
    let LeaderAction::Transfer { id, flags } = args.action;
    let name = "leader transfer";
    let prepared = prepare(&flags);
    let (endpoints, security, timeout) = match prepared {
        Ok(prepared) => prepared,
        Err(message) => return fail(name, EXIT_USAGE, message),
    };
    let outcome = on_client_thread(move || async move {
        let deadline = Instant::now() + timeout;
        send_to_leader(
            &endpoints,
            &security,
            AdminOp::TransferLeader { to: id },
            deadline,
        )
        .await?;
        // Done when the target says it leads.
        loop {
            let view = send_anywhere(&endpoints, &security, AdminOp::ListMembers, deadline).await?;
            if view.leader_id == Some(id) {
                return Ok(view);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "node {id} did not take over within {} ms (the leader is {:?}); the \
                     transfer is abandoned after an election timeout",
                    timeout.as_millis(),
                    view.leader_id
                ));
            }
            tern_net::runtime::sleep(RETRY_PAUSE).await;
        }
    });
    match outcome {
        Ok(_) => {
            println!("node {id} is the leader");
            ExitCode::SUCCESS
        }
        Err(message) => fail(name, EXIT_CLUSTER, message),
    }
}

type Prepared = (Vec<SocketAddr>, Security, Duration);

fn prepare(flags: &ClientFlags) -> Result<Prepared, String> {
    let endpoints = parse_endpoints("--endpoints", &flags.endpoints)?;
    let security = security(flags)?;
    let timeout = match flags.timeout_ms {
        Some(0) => return Err("--timeout-ms must be at least 1".into()),
        Some(ms) => Duration::from_millis(ms),
        None => TIMEOUT_DEFAULT,
    };
    Ok((endpoints, security, timeout))
}

/// Sends `op` (to the leader for a change) and, for a change, waits until it is complete.
fn execute(
    name: &str,
    op: AdminOp,
    flags: &ClientFlags,
    change: bool,
) -> Result<AdminResponse, (u8, String)> {
    let (endpoints, security, timeout) = prepare(flags).map_err(|error| (EXIT_USAGE, error))?;
    let name = name.to_string();
    on_client_thread(move || async move {
        let deadline = Instant::now() + timeout;
        if !change {
            return send_anywhere(&endpoints, &security, op, deadline).await;
        }
        let (leader, accepted) = send_to_leader(&endpoints, &security, op, deadline).await?;
        let mut view = accepted;
        let mut reported = false;
        while !view.membership_committed || view.joint {
            if Instant::now() > deadline {
                return Err(format!(
                    "the change is in the log at index {} but did not complete within {} ms \
                     (a majority may be down); `tern member list` shows its state",
                    view.membership_index,
                    timeout.as_millis()
                ));
            }
            if !reported {
                eprintln!("tern {name}: waiting for the change to commit ...");
                reported = true;
            }
            tern_net::runtime::sleep(RETRY_PAUSE).await;
            // The node that took the change may have stepped down (it removed itself).
            view = match ask(leader, &security, AdminOp::ListMembers).await {
                Ok(view) if view.error.is_none() => view,
                _ => send_anywhere(&endpoints, &security, AdminOp::ListMembers, deadline).await?,
            };
        }
        Ok(view)
    })
    .map_err(|message| (EXIT_CLUSTER, message))
}

async fn ask(
    endpoint: SocketAddr,
    security: &Security,
    op: AdminOp,
) -> Result<AdminResponse, String> {
    tern_net::kv_client::admin_request(endpoint, security, op, REQUEST_TIMEOUT)
        .await
        .map_err(|error| error.to_string())
}

/// The first endpoint's answer that is not an error.
async fn send_anywhere(
    endpoints: &[SocketAddr],
    security: &Security,
    op: AdminOp,
    deadline: Instant,
) -> Result<AdminResponse, String> {
    let mut last = String::from("no endpoint given");
    loop {
        for &endpoint in endpoints {
            match ask(endpoint, security, op.clone()).await {
                Ok(response) if response.error.is_none() => return Ok(response),
                Ok(response) => last = response.error.unwrap_or_default(),
                Err(error) => last = error,
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no endpoint answered: {last}"));
        }
        tern_net::runtime::sleep(RETRY_PAUSE).await;
    }
}

/// Sends `op` to the leader, following "not the leader" hints and retrying answers that say
/// to retry, until `deadline`; returns the leader's address and its answer. A refusal that a
/// retry cannot change (an unknown member, the last voter) fails at once.
async fn send_to_leader(
    endpoints: &[SocketAddr],
    security: &Security,
    op: AdminOp,
    deadline: Instant,
) -> Result<(SocketAddr, AdminResponse), String> {
    let mut candidates: Vec<SocketAddr> = endpoints.to_vec();
    let mut next = 0;
    let mut last = String::from("no endpoint given");
    while Instant::now() <= deadline {
        let endpoint = candidates[next % candidates.len()];
        next += 1;
        let response = match ask(endpoint, security, op.clone()).await {
            Ok(response) => response,
            Err(error) => {
                last = error;
                continue;
            }
        };
        let Some(error) = response.error.clone() else {
            return Ok((endpoint, response));
        };
        last = format!("{endpoint}: {error}");
        if error.starts_with("not the leader") {
            let hint = response
                .leader_client_addr
                .as_deref()
                .and_then(|addr| addr.parse::<SocketAddr>().ok());
            if let Some(leader) = hint.filter(|leader| *leader != endpoint) {
                candidates.insert(next % (candidates.len() + 1), leader);
                continue;
            }
        } else if !error.contains("retry") {
            return Err(last);
        }
        if next % candidates.len() == 0 {
            tern_net::runtime::sleep(RETRY_PAUSE).await;
        }
    }
    Err(format!("no leader took the request in time: {last}"))
}

/// Runs `work` on a glommio client executor and returns its result.
fn on_client_thread<F, Fut, T>(work: F) -> Result<T, String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, String>> + 'static,
    T: Send + 'static,
{
    match tern_net::runtime::run_executor("tern-client", work).map(|handle| handle.join()) {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err("the client thread panicked".into()),
        Err(error) => Err(format!("cannot start the client executor: {error}")),
    }
}

/// The members as one JSON object (for scripts): the same facts as the table.
fn members_json(response: &AdminResponse) -> serde_json::Value {
    let members: Vec<serde_json::Value> = response
        .members
        .iter()
        .map(|member| {
            serde_json::json!({
                "id": member.id,
                "role": member.role.to_string(),
                "is_leader": response.leader_id == Some(member.id),
                "peer_addr": member.peer_addr,
                "client_addr": member.client_addr,
            })
        })
        .collect();
    serde_json::json!({
        "members": members,
        "leader_id": response.leader_id,
        "membership_index": response.membership_index,
        "committed": response.membership_committed,
        "joint": response.joint,
    })
}

/// The members as a table, and where the membership stands.
fn format_members(response: &AdminResponse) -> String {
    let mut rows = vec![[
        "ID".to_string(),
        "ROLE".to_string(),
        "PEER ADDRESS".to_string(),
        "CLIENT ADDRESS".to_string(),
    ]];
    for member in &response.members {
        let leader = if response.leader_id == Some(member.id) {
            " (leader)"
        } else {
            ""
        };
        rows.push([
            member.id.to_string(),
            format!("{}{leader}", member.role),
            member.peer_addr.clone(),
            member.client_addr.clone(),
        ]);
    }
    let mut widths = [0; 4];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let state = match (response.membership_committed, response.joint) {
        (true, false) => "committed",
        (true, true) => "committed, joint (the leader is leaving it)",
        (false, _) => "not yet committed",
    };
    out.push_str(&format!(
        "membership at log index {}: {state}\n",
        response.membership_index
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_member_is_given_as_id_equals_peer_address_or_with_the_flag() {
        assert_eq!(
            parse_new_member("4=127.0.0.1:7004", None),
            Ok((4, "127.0.0.1:7004".to_string()))
        );
        assert_eq!(
            parse_new_member("4", Some("127.0.0.1:7004")),
            Ok((4, "127.0.0.1:7004".to_string()))
        );
    }

    #[test]
    fn a_bad_new_member_says_what_is_wrong() {
        let error = |member: &str, flag: Option<&str>| parse_new_member(member, flag).unwrap_err();
        assert!(error("4", None).contains("no peer address"));
        assert!(error("4=127.0.0.1:1", Some("127.0.0.1:2")).contains("give one"));
        assert!(error("x=127.0.0.1:1", None).contains("member id \"x\""));
        assert!(error("0=127.0.0.1:1", None).contains("id 0"));
        assert!(error("4=nowhere", None).contains("peer address \"nowhere\""));
    }
}
