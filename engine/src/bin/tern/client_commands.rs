//! `tern put | get | del | cas | scan`: one operation against a cluster through the client
//! library, run on a glommio executor thread (the client is not `Send`).
//!
//! Output is for people and scripts alike: the answer on stdout, problems on stderr, and the
//! exit code says which (0 done, 1 negative answer, 2 usage, 3 the cluster did not answer).

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use clap::{ArgGroup, Args, ValueEnum};
use tern_net::message::ReadConsistency;
use tern_net::tls::{Identity, Security};
use tern_net::{KvClient, KvClientConfig, KvError};

use crate::addresses::parse_endpoints;
use crate::{fail, EXIT_CLUSTER, EXIT_NEGATIVE, EXIT_USAGE};

/// The endpoints a local 3-node cluster started as the README says listens on.
pub const DEFAULT_ENDPOINTS: &str = "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103";

/// Flags every client command takes.
#[derive(Args, Debug, Clone)]
pub struct ClientFlags {
    /// Client addresses of cluster members (HOST:PORT,...).
    ///
    /// Any subset of the members works: one reachable member is enough, the client follows
    /// it to the leader.
    #[arg(long, value_name = "HOST:PORT,...", default_value = DEFAULT_ENDPOINTS)]
    pub endpoints: String,

    /// Directory with the cluster's certificates from `tern certs` (uses ca.pem, client.pem,
    /// client.key).
    ///
    /// For clusters started with --tls-dir. Exactly one of --tls-dir and --insecure is
    /// required.
    #[arg(long, value_name = "DIR", conflicts_with = "insecure")]
    pub tls_dir: Option<PathBuf>,

    /// Talk to a cluster started with --insecure (no authentication).
    #[arg(long)]
    pub insecure: bool,

    /// How long to wait for the answer, retries included (milliseconds).
    ///
    /// Default 10000 (status: 2000 per node). After it, the command fails with exit code 3;
    /// for a write the outcome is then unknown (applied at most once).
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
}

/// `--read-mode` of the read commands.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum ClientReadMode {
    /// Whatever the server was started with (its --read-mode).
    #[default]
    ServerDefault,
    /// A quorum round confirms the leader before it answers.
    Linearizable,
    /// The leader answers within its lease (ReadIndex if the server has leases off).
    Lease,
    /// Whichever node receives the read answers from its state; may be stale.
    Serializable,
}

impl ClientReadMode {
    fn consistency(self) -> ReadConsistency {
        match self {
            ClientReadMode::ServerDefault => ReadConsistency::ServerDefault,
            ClientReadMode::Linearizable => ReadConsistency::Linearizable,
            ClientReadMode::Lease => ReadConsistency::Lease,
            ClientReadMode::Serializable => ReadConsistency::Serializable,
        }
    }
}

/// Set a key to a value.
///
/// Prints OK once a majority has the write. Exit code 3 when the cluster does not answer in
/// time (the write may then have been applied or not, never twice).
///
/// Examples:
///
///   tern put greeting hello --insecure
///   tern put config/mode fast --tls-dir certs --endpoints 10.0.0.1:7101,10.0.0.2:7101
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct PutArgs {
    /// The key (UTF-8 text).
    key: String,
    /// The value (UTF-8 text).
    value: String,
    #[command(flatten)]
    flags: ClientFlags,
}

/// Print the value of a key.
///
/// Prints the value and a newline; when the key does not exist prints "key not found" on
/// stderr and exits with 1.
///
/// Examples:
///
///   tern get greeting --insecure
///   tern get greeting --insecure --read-mode serializable
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct GetArgs {
    /// The key.
    key: String,
    /// How the read is served: server-default, linearizable, lease or serializable.
    ///
    /// serializable is fastest and may return a stale value.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ClientReadMode::ServerDefault)]
    read_mode: ClientReadMode,
    #[command(flatten)]
    flags: ClientFlags,
}

/// Delete a key.
///
/// Prints "deleted", or "not found" (exit code 1) when the key did not exist.
///
/// Example:
///
///   tern del greeting --insecure
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct DelArgs {
    /// The key.
    key: String,
    #[command(flatten)]
    flags: ClientFlags,
}

/// Compare and swap: set a key only if it holds an expected value (or is absent).
///
/// Prints "swapped", or "not swapped: current value is "X"" / "not swapped: key is absent"
/// with exit code 1.
///
/// Examples:
///
///   tern cas lock/owner --absent alice --insecure       # take the lock if free
///   tern cas lock/owner --expect alice bob --insecure   # hand it over
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
#[command(group(ArgGroup::new("expected").required(true).args(["expect", "absent"])))]
pub struct CasArgs {
    /// The key.
    key: String,
    /// Swap only if the key currently holds this value.
    #[arg(long, value_name = "OLD")]
    expect: Option<String>,
    /// Swap only if the key does not exist.
    #[arg(long)]
    absent: bool,
    /// The value to set.
    new: String,
    #[command(flatten)]
    flags: ClientFlags,
}

/// List keys with a prefix, or in a range, in key order.
///
/// Prints KEY<TAB>VALUE lines. When the limit cut the list short, prints "(more keys: raise
/// --limit)" on stderr.
///
/// Examples:
///
///   tern scan user/ --insecure               # keys starting with user/
///   tern scan "" --limit 10 --insecure       # the first 10 keys
///   tern scan --range a m --insecure         # keys from a (included) to m (excluded)
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ScanArgs {
    /// List keys starting with PREFIX ("" for all keys).
    #[arg(required_unless_present = "range", conflicts_with = "range")]
    prefix: Option<String>,
    /// List keys from START (included) to END (excluded) instead of a prefix.
    #[arg(long, num_args = 2, value_names = ["START", "END"])]
    range: Option<Vec<String>>,
    /// Most pairs to print (pairs, at least 1).
    ///
    /// A server refuses a limit above its --range-limit-max (default 10000): page through
    /// larger ranges with --range, starting after the last key printed.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
    /// How the read is served: server-default, linearizable, lease or serializable.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ClientReadMode::ServerDefault)]
    read_mode: ClientReadMode,
    #[command(flatten)]
    flags: ClientFlags,
}

/// The client certificate named by `--tls-dir`, or insecure; exactly one must be chosen.
pub fn security(flags: &ClientFlags) -> Result<Security, String> {
    match (&flags.tls_dir, flags.insecure) {
        (Some(dir), _) => tern_net::certs::load_credentials(dir, Identity::Client)
            .map(Security::MutualTls)
            .map_err(|error| format!("--tls-dir {}: {error}", dir.display())),
        (None, true) => Ok(Security::Insecure),
        (None, false) => Err(
            "pass --tls-dir DIR (the directory from `tern certs`, with ca.pem, \
                              client.pem and client.key), or --insecure for a cluster started \
                              with --insecure"
                .to_string(),
        ),
    }
}

/// The client's settings from the flags; `default_timeout` when --timeout-ms is absent.
pub fn client_config(
    flags: &ClientFlags,
    default_timeout: Duration,
) -> Result<KvClientConfig, String> {
    let endpoints = parse_endpoints("--endpoints", &flags.endpoints)?;
    let security = security(flags)?;
    let timeout = match flags.timeout_ms {
        Some(0) => return Err("--timeout-ms must be at least 1".to_string()),
        Some(ms) => Duration::from_millis(ms),
        None => default_timeout,
    };
    let mut config = KvClientConfig::new(endpoints, security);
    config.operation_timeout = timeout;
    // One attempt never outlasts the whole operation.
    config.attempt_timeout = config.attempt_timeout.min(timeout);
    Ok(config)
}

/// The exit code and message for a failed operation.
fn cluster_failure(subcommand: &str, error: KvError) -> ExitCode {
    match error {
        KvError::Config(_) => fail(subcommand, EXIT_USAGE, error),
        _ => fail(subcommand, EXIT_CLUSTER, error),
    }
}

/// Connects, runs `operation` (which prints its answer and returns the exit code), closes.
fn with_client<F, Fut>(
    subcommand: &'static str,
    flags: &ClientFlags,
    read_mode: ClientReadMode,
    operation: F,
) -> ExitCode
where
    F: FnOnce(Rc<KvClient>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<u8, KvError>> + 'static,
{
    let mut config = match client_config(flags, Duration::from_secs(10)) {
        Ok(config) => config,
        Err(message) => return fail(subcommand, EXIT_USAGE, message),
    };
    config.read_consistency = read_mode.consistency();
    let executor = tern_net::runtime::run_executor("tern-client", move || async move {
        let client = Rc::new(KvClient::connect(config).await?);
        let outcome = operation(client.clone()).await;
        client.close();
        outcome
    });
    let outcome = match executor.map(|handle| handle.join()) {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => return fail(subcommand, EXIT_NEGATIVE, "the client thread panicked"),
        Err(error) => {
            return fail(
                subcommand,
                EXIT_NEGATIVE,
                format!("cannot start the client executor: {error}"),
            )
        }
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => cluster_failure(subcommand, error),
    }
}

fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Runs `tern put`.
pub fn put(args: PutArgs) -> ExitCode {
    let PutArgs { key, value, flags } = args;
    with_client(
        "put",
        &flags,
        ClientReadMode::ServerDefault,
        |client| async move {
            client.put(key, value).await?;
            println!("OK");
            Ok(0)
        },
    )
}

/// Runs `tern get`.
pub fn get(args: GetArgs) -> ExitCode {
    let GetArgs {
        key,
        read_mode,
        flags,
    } = args;
    with_client("get", &flags, read_mode, |client| async move {
        match client.get(key).await? {
            Some(value) => {
                println!("{}", text(&value));
                Ok(0)
            }
            None => {
                eprintln!("key not found");
                Ok(EXIT_NEGATIVE)
            }
        }
    })
}

/// Runs `tern del`.
pub fn del(args: DelArgs) -> ExitCode {
    let DelArgs { key, flags } = args;
    with_client(
        "del",
        &flags,
        ClientReadMode::ServerDefault,
        |client| async move {
            if client.delete(key).await? {
                println!("deleted");
                Ok(0)
            } else {
                println!("not found");
                Ok(EXIT_NEGATIVE)
            }
        },
    )
}

/// Runs `tern cas`.
pub fn cas(args: CasArgs) -> ExitCode {
    let CasArgs {
        key,
        expect,
        absent: _,
        new,
        flags,
    } = args;
    // The group makes exactly one of --expect and --absent present: no --expect means absent.
    let expected = expect.map(Bytes::from);
    with_client(
        "cas",
        &flags,
        ClientReadMode::ServerDefault,
        |client| async move {
            let compared = client.compare_and_swap(key, expected, new).await?;
            if compared.succeeded {
                println!("swapped");
                return Ok(0);
            }
            match compared.current {
                Some(current) => println!("not swapped: current value is {:?}", text(&current)),
                None => println!("not swapped: key is absent"),
            }
            Ok(EXIT_NEGATIVE)
        },
    )
}

/// Runs `tern scan`.
pub fn scan(args: ScanArgs) -> ExitCode {
    let ScanArgs {
        prefix,
        range,
        limit,
        read_mode,
        flags,
    } = args;
    with_client("scan", &flags, read_mode, move |client| async move {
        let (pairs, more) = match (range, prefix) {
            (Some(bounds), _) if bounds.len() == 2 => {
                let end = Bytes::from(bounds[1].clone());
                client.range(bounds[0].clone(), Some(end), limit).await?
            }
            (_, Some(prefix)) => client.scan_prefix(prefix, limit).await?,
            // clap requires a prefix or exactly two range bounds.
            _ => return Ok(EXIT_USAGE),
        };
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        for (key, value) in &pairs {
            // A closed pipe (`| head`) is not an error worth reporting.
            if writeln!(out, "{}\t{}", text(key), text(value)).is_err() {
                break;
            }
        }
        let _ = out.flush();
        if more {
            eprintln!("(more keys: raise --limit)");
        }
        Ok(0)
    })
}
