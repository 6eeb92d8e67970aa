//! `tern`: run a node, talk to a cluster, make certificates, or run the demo.
//!
//! One module per subcommand; `addresses` parses the `ID=HOST:PORT` lists they share.
//! Exit codes: 0 success, 1 a negative answer (key not found, compare failed) or a node's fatal
//! error, 2 a usage or configuration error, 3 the cluster did not answer (timeout, refused).

mod addresses;
mod certs;
mod client_commands;
mod config_file;
mod demo;
mod member;
mod serve;
mod status;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Exit code of a negative answer: key not found, compare failed, node failed.
pub const EXIT_NEGATIVE: u8 = 1;
/// Exit code of a usage or configuration error (clap uses it for its own errors too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the cluster did not answer or refused the request.
pub const EXIT_CLUSTER: u8 = 3;

/// tern: a Raft-replicated key-value store.
///
/// Start here: `tern demo` starts a 3-node cluster on loopback in a temporary directory, runs a
/// workload, kills the leader and shows the failover. For a real cluster: `tern certs`, then
/// `tern serve` on every machine, then `tern put/get/del/cas/scan/status` against it.
///
/// Exit codes: 0 success; 1 a negative answer (key not found, compare failed) or a node's fatal
/// error; 2 a usage or configuration error; 3 the cluster did not answer in time or refused.
#[derive(Parser)]
#[command(name = "tern", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Serve(Box<serve::ServeArgs>),
    Put(client_commands::PutArgs),
    Get(client_commands::GetArgs),
    Del(client_commands::DelArgs),
    Cas(client_commands::CasArgs),
    Scan(client_commands::ScanArgs),
    Status(status::StatusArgs),
    Member(member::MemberArgs),
    Leader(member::LeaderArgs),
    Certs(certs::CertsArgs),
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    // `serve` shows the node's real defaults (from `NodeConfig::new`) in its help, so the numbers
    // live in one place; they are added to the generated command before parsing.
    let command = serve::show_defaults(Cli::command());
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Put(args) => client_commands::put(args),
        Command::Get(args) => client_commands::get(args),
        Command::Del(args) => client_commands::del(args),
        Command::Cas(args) => client_commands::cas(args),
        Command::Scan(args) => client_commands::scan(args),
        Command::Status(args) => status::run(args),
        Command::Member(args) => member::run_member(args),
        Command::Leader(args) => member::run_leader(args),
        Command::Certs(args) => certs::run(args),
        Command::Demo(args) => demo::run(args),
    }
}

/// Prints `tern <subcommand>: <message>` on stderr and returns `code`.
pub fn fail(subcommand: &str, code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("tern {subcommand}: {message}");
    ExitCode::from(code)
}
