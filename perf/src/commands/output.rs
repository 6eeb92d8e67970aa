//! Writes a suite's results: results.json (every run, with the command line and the machine),
//! summary.txt (the table as printed), and the plots.

use std::path::Path;

use serde::Serialize;

use crate::launch::etcd::etcd_version;
use crate::report::record::{write_json, MachineInfo, ResultsFile};
use crate::system::System;

/// The command line as typed (arguments quoted when they need it).
pub fn command_line() -> String {
    let mut words = vec!["cargo run --release -p tern-perf --".to_string()];
    for argument in std::env::args().skip(1) {
        if argument.is_empty() || argument.contains(|c: char| c.is_whitespace() || c == '\'') {
            words.push(format!("'{}'", argument.replace('\'', "'\\''")));
        } else {
            words.push(argument);
        }
    }
    words.join(" ")
}

/// tern's version and the commit it was built from, when known.
pub fn tern_version() -> String {
    let commit = std::process::Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string());
    match commit {
        Some(commit) => format!("{} ({commit})", env!("CARGO_PKG_VERSION")),
        None => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Writes results.json and summary.txt into `dir` and prints the summary.
pub fn write_results<T: Serialize + Clone>(
    dir: &Path,
    systems: &[System],
    records: &[T],
    summary: &str,
) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let command = command_line();
    let file = ResultsFile {
        command_line: command.clone(),
        tern_version: tern_version(),
        etcd_version: if systems.contains(&System::Etcd) {
            etcd_version()
        } else {
            "not run".to_string()
        },
        machine: MachineInfo::detect(),
        records: records.to_vec(),
    };
    write_json(&dir.join("results.json"), &file)?;
    let text = format!("$ {command}\n\n{summary}\n");
    std::fs::write(dir.join("summary.txt"), &text).map_err(|error| {
        format!(
            "cannot write {}: {error}",
            dir.join("summary.txt").display()
        )
    })?;
    println!("\n{summary}");
    println!("results: {}", dir.display());
    Ok(())
}

/// A plot that cannot be drawn (nothing to draw, say) is worth a warning, not the results:
/// call this after `write_results`.
pub fn plot_or_warn(stem: &str, outcome: Result<(), String>) {
    if let Err(error) = outcome {
        eprintln!("warning: no {stem} plot: {error}");
    }
}
