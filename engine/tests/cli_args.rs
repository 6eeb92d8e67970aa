//! The `tern` binary's argument handling, without a cluster: every refusal exits 2 with a
//! one-line message naming the flag (or config key), and `tern certs` writes usable files.
//! Nothing here starts a node that could keep running: each invocation fails validation (or,
//! for `certs`, finishes) before anything binds a port.

use std::path::Path;
use std::process::{Command, Output};

fn tern(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(arguments)
        .env_remove("RUST_LOG")
        .output()
        .expect("the tern binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A `serve` command line that is complete except for the TLS choice.
const SERVE: &[&str] = &[
    "serve",
    "--id",
    "1",
    "--peers",
    "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003",
    "--client-addr",
    "127.0.0.1:7101",
    "--data-dir",
    "unused-data-dir",
];

fn serve_with(extra: &[&str]) -> Output {
    let mut arguments = SERVE.to_vec();
    arguments.extend_from_slice(extra);
    tern(&arguments)
}

/// Asserts exit code 2 and a single line on stderr containing every `needle`.
fn assert_usage_error(output: &Output, needles: &[&str]) {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(2), "stderr: {message}");
    assert_eq!(message.trim_end().lines().count(), 1, "one line: {message}");
    for needle in needles {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
}

#[test]
fn serve_without_tls_choice_says_how_to_get_certificates() {
    let output = serve_with(&[]);
    assert_usage_error(
        &output,
        &[
            "tern certs --dir certs --node 1,2,3",
            "--tls-dir certs",
            "--insecure",
        ],
    );
}

#[test]
fn serve_refuses_tls_dir_together_with_insecure() {
    let output = serve_with(&["--insecure", "--tls-dir", "certs"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--insecure"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn serve_names_a_bad_peers_list() {
    let output = tern(&[
        "serve",
        "--id",
        "1",
        "--peers",
        "1=127.0.0.1:7001;2=127.0.0.1:7002",
        "--client-addr",
        "127.0.0.1:7101",
        "--data-dir",
        "unused",
        "--insecure",
    ]);
    assert_usage_error(&output, &["--peers", "ID=HOST:PORT"]);
    let output = tern(&[
        "serve",
        "--id",
        "1",
        "--peers",
        "1=127.0.0.1:7001,1=127.0.0.1:7002",
        "--client-addr",
        "127.0.0.1:7101",
        "--data-dir",
        "unused",
        "--insecure",
    ]);
    assert_usage_error(&output, &["--peers", "appears twice"]);
}

#[test]
fn serve_refuses_an_id_missing_from_peers() {
    let output = tern(&[
        "serve",
        "--id",
        "4",
        "--peers",
        "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003",
        "--client-addr",
        "127.0.0.1:7101",
        "--data-dir",
        "unused",
        "--insecure",
    ]);
    assert_usage_error(&output, &["--id 4", "--peers", "1, 2, 3"]);
}

#[test]
fn serve_names_missing_required_settings() {
    let output = tern(&["serve", "--insecure"]);
    assert_usage_error(&output, &["--id"]);
    let output = tern(&[
        "serve",
        "--id",
        "1",
        "--peers",
        "1=127.0.0.1:7001",
        "--insecure",
    ]);
    assert_usage_error(&output, &["--client-addr"]);
}

#[test]
fn serve_names_an_unknown_config_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(
        &path,
        "id = 1\ninsecure = true\nelection_timeout_min = 150\n",
    )
    .unwrap();
    let output = tern(&["serve", "--config", path.to_str().unwrap()]);
    assert_usage_error(&output, &["election_timeout_min", "line 3", "--config"]);
}

#[test]
fn serve_config_file_values_are_checked_and_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    // A complete file whose peers table lacks the id: refused, naming --id.
    std::fs::write(
        &path,
        "id = 3\ninsecure = true\nclient_addr = \"127.0.0.1:7101\"\ndata_dir = \"unused\"\n\
         [peers]\n1 = \"127.0.0.1:7001\"\n2 = \"127.0.0.1:7002\"\n",
    )
    .unwrap();
    let output = tern(&["serve", "--config", path.to_str().unwrap()]);
    assert_usage_error(&output, &["--id 3", "(1, 2)"]);
    // The command line's --peers replaces the file's table: now the id is missing from it
    // with a different list, which proves the flag won.
    let output = tern(&[
        "serve",
        "--config",
        path.to_str().unwrap(),
        "--peers",
        "1=127.0.0.1:7001,5=127.0.0.1:7005",
    ]);
    assert_usage_error(&output, &["--id 3", "(1, 5)"]);
    // A bad value type in the file is named too.
    std::fs::write(&path, "id = \"one\"\n").unwrap();
    let output = tern(&["serve", "--config", path.to_str().unwrap()]);
    assert_usage_error(&output, &["--config", "line 1"]);
}

#[test]
fn serve_with_a_tls_dir_lacking_certificates_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let output = serve_with(&["--tls-dir", dir.path().to_str().unwrap()]);
    assert_usage_error(&output, &["--tls-dir", "tern certs"]);
}

#[test]
fn bad_flag_values_are_usage_errors() {
    let output = serve_with(&["--insecure", "--election-timeout-ms-min", "soon"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--election-timeout-ms-min"));
    let output = serve_with(&["--insecure", "--read-mode", "eventual"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let output = tern(&["cas", "k", "new", "--insecure"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "cas needs --expect or --absent"
    );
    let output = tern(&["cas", "k", "--expect", "a", "--absent", "new", "--insecure"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "--expect and --absent exclude each other"
    );
    let output = tern(&["scan", "--insecure"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "scan needs a prefix or --range"
    );
    let output = tern(&["scan", "p/", "--limit", "0", "--insecure"]);
    assert_eq!(output.status.code(), Some(2), "a scan limit is at least 1");
    let output = tern(&["demo", "--nodes", "2"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "the demo needs at least 3 nodes"
    );
}

#[test]
fn client_commands_need_a_tls_choice_and_valid_endpoints() {
    let output = tern(&["get", "k"]);
    assert_usage_error(&output, &["--tls-dir", "--insecure"]);
    let output = tern(&["put", "k", "v", "--insecure", "--endpoints", "127.0.0.1"]);
    assert_usage_error(&output, &["--endpoints", "port"]);
    let output = tern(&["status", "--insecure", "--endpoints", ""]);
    assert_usage_error(&output, &["--endpoints"]);
}

#[test]
fn every_subcommand_has_help_with_examples() {
    for subcommand in [
        "serve", "put", "get", "del", "cas", "scan", "status", "certs", "demo",
    ] {
        let output = tern(&[subcommand, "--help"]);
        assert!(output.status.success(), "{subcommand} --help");
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(
            help.contains("Example"),
            "{subcommand} --help has no example:\n{help}"
        );
    }
    // Serve's help shows the node's real defaults.
    let output = tern(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("[default: "), "{help}");
}

fn assert_exists(dir: &Path, names: &[&str]) {
    for name in names {
        assert!(
            dir.join(name).is_file(),
            "{name} missing in {}",
            dir.display()
        );
    }
}

#[test]
fn certs_writes_the_cluster_files_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let certs_arg = certs.to_str().unwrap();
    let output = tern(&["certs", "--dir", certs_arg, "--node", "1,2,3"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_exists(
        &certs,
        &[
            "ca.pem",
            "ca.key",
            "node-1.pem",
            "node-1.key",
            "node-2.pem",
            "node-3.key",
            "client.pem",
            "client.key",
        ],
    );
    let first_ca = std::fs::read(certs.join("ca.pem")).unwrap();
    let output = tern(&["certs", "--dir", certs_arg, "--node", "1,2,3"]);
    assert_usage_error(&output, &["--force"]);
    assert_eq!(std::fs::read(certs.join("ca.pem")).unwrap(), first_ca);
    let output = tern(&["certs", "--dir", certs_arg, "--node", "1,2,3", "--force"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_ne!(std::fs::read(certs.join("ca.pem")).unwrap(), first_ca);
    // The written files are what serve accepts: with them it gets past the TLS check and
    // stops at the next problem (a zero batch bound, checked after the certificates).
    let output = serve_with(&["--tls-dir", certs_arg, "--proposal-batch-commands-max", "0"]);
    assert_usage_error(&output, &["--proposal-batch-commands-max"]);
    // A node id the directory has no certificate for is named.
    let output = tern(&[
        "serve",
        "--id",
        "4",
        "--peers",
        "4=127.0.0.1:7001",
        "--client-addr",
        "127.0.0.1:7101",
        "--data-dir",
        "unused",
        "--tls-dir",
        certs_arg,
    ]);
    assert_usage_error(&output, &["--tls-dir", "node-4"]);
}

#[test]
fn node_config_validation_errors_name_the_flag() {
    let output = serve_with(&["--insecure", "--append-entries-max", "0"]);
    assert_usage_error(&output, &["--append-entries-max"]);
}
