//! `tern-certs`: writes a cluster CA, node certificates and a client certificate.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Generate the certificates a tern cluster uses for mutual TLS.
///
/// Writes into DIR: ca.pem and ca.key (the cluster CA), node-<id>.pem and node-<id>.key for
/// every --node id (each certificate carries its node id as the name node-<id>.tern, which
/// peers check), and client.pem / client.key for clients. Private keys are written mode 0600.
/// Keep ca.key off the nodes: it can mint new members.
///
/// Example: tern-certs --dir ./certs --node 1 --node 2 --node 3
#[derive(Parser)]
#[command(name = "tern-certs", version)]
struct Arguments {
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// A node id to issue a certificate for (repeat, or comma-separate: --node 1,2,3).
    #[arg(
        long = "node",
        value_name = "ID",
        required = true,
        value_delimiter = ','
    )]
    nodes: Vec<u64>,
    /// Overwrite existing files. Without it nothing is written if any target file exists.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    match tern_net::certs::write_cluster_certificates(
        &arguments.dir,
        &arguments.nodes,
        arguments.force,
    ) {
        Ok(paths) => {
            for path in paths {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("tern-certs: {error}");
            ExitCode::FAILURE
        }
    }
}
