//! `tern certs`: the certificates a cluster uses for mutual TLS.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tern_net::certs::CertError;

use crate::{fail, EXIT_NEGATIVE, EXIT_USAGE};

/// Generate the certificates a tern cluster uses for mutual TLS.
///
/// Writes into DIR: ca.pem and ca.key (the cluster CA), node-<id>.pem and node-<id>.key for
/// every --node id (each certificate carries its node id, which peers check), and client.pem /
/// client.key for clients (`tern put ... --tls-dir DIR`). Private keys are written mode 0600.
/// Keep ca.key off the nodes: it can mint new members.
///
/// Examples:
///
///   tern certs --dir certs --node 1,2,3
///   tern serve --id 1 ... --tls-dir certs
///   tern get mykey --tls-dir certs
///   tern certs --dir certs --node 4 --add     # a member added later, same CA
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct CertsArgs {
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,

    /// Node ids to issue certificates for (comma-separated or repeated: --node 1,2,3).
    ///
    /// Issue one for every member, present and planned; ids start at 1.
    #[arg(
        long = "node",
        value_name = "ID",
        required = true,
        value_delimiter = ','
    )]
    nodes: Vec<u64>,

    /// Issue only node certificates, with the CA already in DIR (for members added to a
    /// running cluster: `tern member add`); ca.pem, ca.key and the client files stay as they
    /// are.
    #[arg(long)]
    add: bool,

    /// Overwrite existing files.
    ///
    /// Without it nothing is written if any target file exists (a new CA would lock out the
    /// nodes holding the old certificates).
    #[arg(long)]
    force: bool,
}

/// Runs `tern certs`.
pub fn run(args: CertsArgs) -> ExitCode {
    let written = if args.add {
        tern_net::certs::add_node_certificates(&args.dir, &args.nodes, args.force)
    } else {
        tern_net::certs::write_cluster_certificates(&args.dir, &args.nodes, args.force)
    };
    match written {
        Ok(paths) => {
            for path in paths {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        // Refusals that a different command line fixes are usage errors; I/O failures are not.
        Err(
            error @ (CertError::Exists { .. } | CertError::InvalidNodeId | CertError::BadCa { .. }),
        ) => fail("certs", EXIT_USAGE, error),
        Err(error) => fail("certs", EXIT_NEGATIVE, error),
    }
}
