//! Finding the `tern` executable the suite starts, built fresh from this checkout.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variable naming the `tern` executable to use instead (no build then).
pub const TERN_BIN_ENV: &str = "TERN_PERF_TERN_BIN";

/// The workspace this crate belongs to (where `cargo build` runs).
const WORKSPACE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The `tern` executable: `$TERN_PERF_TERN_BIN` if set, else `tern` next to this executable
/// (target/release when tern-perf runs from there; tests run from target/<profile>/deps, so
/// its parent too). When cargo is available it first builds it in the workspace
/// (`cargo build --release -p tern-engine -p tern-perf --bin tern`), so a stale binary is
/// never measured (a no-op when it is fresh).
pub fn tern_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(TERN_BIN_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{TERN_BIN_ENV} is set to {}, which is not a file: point it at a tern \
                 executable or unset it",
                path.display()
            ))
        };
    }
    let executable = std::env::current_exe()
        .map_err(|error| format!("cannot find tern-perf's own executable: {error}"))?;
    let under_test = is_test_executable(&executable);
    let built = build_tern(&executable, under_test)?;
    let mut candidates = tern_candidates(&executable);
    if built && !under_test {
        // The build just made the release one: prefer it to a debug build's (stable sort).
        candidates.sort_by_key(|path| !in_release_dir(path));
    }
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "no tern executable at {}: build it with `cargo build --release -p tern-engine \
                 -p tern-perf --bin tern` (in {WORKSPACE_DIR}) or set {TERN_BIN_ENV}",
                candidates
                    .iter()
                    .map(|path| path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        })
}

/// Test executables live in target/<profile>/deps.
fn is_test_executable(executable: &Path) -> bool {
    executable
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|name| name == "deps")
}

/// `tern` in the executable's directory, then in its profile directory (tests run from
/// target/<profile>/deps), then in the release profile's directory (tests of a debug build).
fn tern_candidates(executable: &Path) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    let Some(own_dir) = executable.parent() else {
        return candidates;
    };
    candidates.push(own_dir.join("tern"));
    let profile_dir = match own_dir.file_name() {
        Some(name) if name == "deps" => own_dir.parent().unwrap_or(own_dir),
        _ => own_dir,
    };
    let mut more = vec![profile_dir.join("tern")];
    if let Some(target_dir) = profile_dir.parent() {
        more.push(target_dir.join("release").join("tern"));
    }
    for path in more {
        if !candidates.contains(&path) {
            candidates.push(path);
        }
    }
    candidates
}

/// Whether `dir` is itself named `release`.
fn in_release_dir_itself(dir: &Path) -> bool {
    dir.file_name().is_some_and(|name| name == "release")
}

/// Whether `path` lies directly in a directory named `release`.
fn in_release_dir(path: &Path) -> bool {
    path.parent()
        .and_then(Path::file_name)
        .is_some_and(|name| name == "release")
}

/// Builds the release `tern` if cargo is here (true then); an error (with what to run by
/// hand) if cargo ran and failed. Without cargo (an installed tern-perf): false, and the
/// existing binary is used.
///
/// Under a test, the `tern` that `cargo test --workspace` built beside the test executables
/// (same profile, same features) is used as it is: building it again from inside a test would
/// resolve features differently and rebuild the engine for minutes. Only when it is missing
/// (`cargo test -p tern-perf` alone) is it built, with the test's profile.
fn build_tern(executable: &Path, under_test: bool) -> Result<bool, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let profile_dir = executable.parent().and_then(Path::parent);
    if under_test && profile_dir.is_some_and(|dir| dir.join("tern").is_file()) {
        return Ok(true);
    }
    if under_test {
        let release = executable
            .parent()
            .and_then(Path::parent)
            .is_some_and(in_release_dir_itself);
        let profile: &[&str] = if release {
            &["--release"]
        } else {
            &["--profile", "test"]
        };
        let status = Command::new(&cargo)
            .args(["build", "--quiet", "--workspace", "--bin", "tern"])
            .args(profile)
            .current_dir(WORKSPACE_DIR)
            .status();
        return match status {
            Ok(status) if status.success() => Ok(true),
            Ok(status) => Err(format!(
                "building tern for the test failed ({status}): run `cargo build --workspace \
                 --bin tern` in {WORKSPACE_DIR} and fix what it reports"
            )),
            Err(error) => Err(format!(
                "cannot run cargo to build tern for the test: {error}"
            )),
        };
    }
    eprintln!("building tern (release) ...");
    // `-p tern-perf` too, though only `tern` is built: cargo then resolves the shared
    // dependencies' features as for tern-perf's own build, so the two builds reuse each
    // other's artifacts instead of rebuilding rustls, quinn, tern-net and tern-engine in turn.
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "tern-engine",
            "-p",
            "tern-perf",
        ])
        .args(["--bin", "tern"])
        .current_dir(WORKSPACE_DIR)
        .status();
    match status {
        Ok(status) if status.success() => Ok(true),
        Ok(status) => Err(format!(
            "building tern failed ({status}): run `cargo build --release -p tern-engine --bin \
             tern` in {WORKSPACE_DIR} and fix what it reports, or set {TERN_BIN_ENV}"
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("cargo not found: using the tern executable already built");
            Ok(false)
        }
        Err(error) => Err(format!(
            "cannot run cargo to build tern ({error}): run `cargo build --release -p \
             tern-engine --bin tern` in {WORKSPACE_DIR} by hand, or set {TERN_BIN_ENV}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tern_is_looked_for_next_to_the_executable_and_one_level_up() {
        let candidates = tern_candidates(Path::new("/w/target/release/deps/launch-1234"));
        assert_eq!(
            candidates,
            vec![
                PathBuf::from("/w/target/release/deps/tern"),
                PathBuf::from("/w/target/release/tern"),
            ]
        );
        let mut candidates = tern_candidates(Path::new("/w/target/debug/deps/launch-1234"));
        candidates.sort_by_key(|path| !in_release_dir(path));
        assert_eq!(candidates[0], PathBuf::from("/w/target/release/tern"));
        assert_eq!(
            tern_candidates(Path::new("/w/target/release/tern-perf")),
            vec![PathBuf::from("/w/target/release/tern")]
        );
    }
}
