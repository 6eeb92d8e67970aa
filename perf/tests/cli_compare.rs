//! The `tern-perf` binary end to end: a tiny `compare` of tern and etcd writes its table,
//! results.json and plots; bad flags fail with a message and write nothing.

use std::path::Path;
use std::process::Command;

fn tern_perf() -> Command {
    let executable = Path::new(env!("CARGO_BIN_EXE_tern-perf"));
    let mut command = Command::new(executable);
    // The `tern` that `cargo test --workspace` built beside tern-perf (same profile): without
    // it tern-perf would build a release `tern` first, minutes on a fresh checkout.
    let tern = executable.with_file_name("tern");
    if tern.is_file() {
        command.env("TERN_PERF_TERN_BIN", tern);
    }
    command
}

fn etcd_installed() -> bool {
    Command::new("etcd")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

#[test]
fn a_short_compare_writes_table_json_and_plots() {
    let with_etcd = etcd_installed();
    if !with_etcd {
        eprintln!("etcd is not installed (perf/install-etcd.sh): comparing tern alone");
    }
    let out = tempfile::tempdir().expect("temporary directory");
    let mut command = tern_perf();
    command.args([
        "compare",
        "--nodes",
        "3",
        "--clients",
        "1,4",
        "--duration-secs",
        "0.5",
        "--warmup-secs",
        "0.2",
        "--repeats",
        "1",
        "--key-space",
        "50",
        "--value-bytes",
        "64",
        "--out",
    ]);
    command.arg(out.path());
    if with_etcd {
        command.args(["--with", "etcd"]);
    }
    let output = command.output().expect("tern-perf runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tern-perf failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("tern"), "no table on stdout:\n{stdout}");
    if with_etcd {
        assert!(stdout.contains("etcd"), "no etcd in the table:\n{stdout}");
    }
    let dir = out.path().join("compare");
    let json = std::fs::read_to_string(dir.join("results.json")).expect("results.json written");
    let value: serde_json::Value = serde_json::from_str(&json).expect("results.json parses");
    let records = value["records"].as_array().expect("records array");
    // 2 operations x 2 client counts x systems x 1 repeat.
    let systems = if with_etcd { 2 } else { 1 };
    assert_eq!(records.len(), 4 * systems, "{json}");
    for record in records {
        assert!(record["ops_ok"].as_u64().expect("ops_ok") > 0, "{record}");
        assert_eq!(record["errors"].as_u64(), Some(0), "{record}");
        assert!(
            record["server_cpu_s"].as_f64().expect("server_cpu_s") > 0.0,
            "{record}"
        );
    }
    assert!(value["command_line"]
        .as_str()
        .expect("command line")
        .contains("compare"));
    for stem in ["throughput_vs_clients", "latency_cdf"] {
        assert_plot(&dir, stem);
    }
    let summary = std::fs::read_to_string(dir.join("summary.txt")).expect("summary.txt");
    assert!(
        summary.starts_with("$ cargo run --release -p tern-perf -- compare"),
        "{summary}"
    );
}

fn assert_plot(dir: &Path, stem: &str) {
    let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).expect("svg written");
    assert!(
        svg.contains("<svg") && svg.contains("tern"),
        "{stem}.svg lacks the tern series"
    );
    let png = std::fs::read(dir.join(format!("{stem}.png"))).expect("png written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{stem}.png is not a PNG"
    );
}

#[test]
fn bad_flags_fail_with_a_message_and_write_nothing() {
    let out = tempfile::tempdir().expect("temporary directory");
    let cases: [&[&str]; 4] = [
        &["compare", "--clients", "0"],
        &["compare", "--duration-secs", "-1"],
        &["election", "--timeouts", "300-150"],
        &["compare", "--heartbeat-ms", "100"],
    ];
    for args in cases {
        let output = tern_perf()
            .args(args)
            .arg("--out")
            .arg(out.path())
            .output()
            .expect("tern-perf runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(!stderr.trim().is_empty(), "{args:?} failed silently");
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    }
    let written: Vec<_> = std::fs::read_dir(out.path()).expect("out dir").collect();
    assert!(written.is_empty(), "bad flags wrote {written:?}");
}
