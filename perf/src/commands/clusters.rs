//! The clusters of one suite step, one per system, running side by side so that their runs can
//! be interleaved (the idle one costs a few heartbeats per second).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tempfile::TempDir;

use crate::driver::{Driver, Progress};
use crate::launch::{self, Cluster, ClusterSpec, ElectionTiming};
use crate::system::System;
use crate::workload::WorkloadSpec;

/// How long a fresh cluster gets to elect a leader and commit a first write.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One system's cluster and the driver connected to it.
pub struct Running {
    pub system: System,
    pub cluster: Box<dyn Cluster>,
    pub driver: Box<dyn Driver>,
    pub timing: ElectionTiming,
    /// (key space, value bytes) loaded so far, so a suite loads once per shape.
    loaded: Option<(u64, usize)>,
}

/// Every system's cluster, under one temporary directory removed at the end.
pub struct SideBySide {
    pub running: Vec<Running>,
    // Dropped last: the clusters stop (their Drop) before their directories go.
    _dir: TempDir,
}

impl SideBySide {
    /// Starts a `nodes`-member cluster of every system in `systems` and waits until each
    /// commits a write.
    pub fn start(
        systems: &[System],
        nodes: usize,
        timing: ElectionTiming,
    ) -> Result<SideBySide, String> {
        let dir = tempfile::Builder::new()
            .prefix("tern-perf-")
            .tempdir()
            .map_err(|error| format!("cannot create a temporary directory: {error}"))?;
        let mut running = Vec::new();
        for &system in systems {
            eprintln!("starting {nodes} {system} nodes ({})", timing.label());
            let spec = ClusterSpec {
                nodes,
                timing,
                base_dir: dir.path().join(system.name()),
                verbose_logs: false,
            };
            std::fs::create_dir_all(&spec.base_dir)
                .map_err(|error| format!("cannot create {}: {error}", spec.base_dir.display()))?;
            let mut cluster = launch::launch(system, &spec)?;
            cluster.wait_ready(READY_TIMEOUT)?;
            let driver = cluster.connect()?;
            running.push(Running {
                system,
                cluster,
                driver,
                timing,
                loaded: None,
            });
        }
        Ok(SideBySide { running, _dir: dir })
    }

    /// The directory holding `system`'s data directories, logs and certificates.
    pub fn system_dir(&self, system: System) -> std::path::PathBuf {
        self._dir.path().join(system.name())
    }

    /// The running cluster of `system`.
    pub fn get(&mut self, system: System) -> Option<&mut Running> {
        self.running
            .iter_mut()
            .find(|running| running.system == system)
    }

    /// Stops every cluster (SIGTERM, then SIGKILL after a grace period).
    pub fn stop(mut self) {
        for running in &mut self.running {
            running.cluster.stop();
        }
    }
}

impl Running {
    /// Loads the key space of `spec` unless this shape is loaded already.
    pub fn ensure_loaded(&mut self, spec: &WorkloadSpec) -> Result<(), String> {
        let shape = (spec.key_space, spec.value_bytes);
        if self
            .loaded
            .is_some_and(|loaded| loaded.0 >= shape.0 && loaded.1 == shape.1)
        {
            return Ok(());
        }
        let bar = ProgressBar::new(spec.key_space);
        bar.set_style(
            ProgressStyle::with_template("  loading {prefix:>5}: {wide_bar} {pos}/{len} keys")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(self.system.name());
        let progress = Progress::default();
        let result = std::thread::scope(|scope| {
            let driver = &mut self.driver;
            let loader = scope.spawn(|| driver.load(spec, &progress));
            while !loader.is_finished() {
                bar.set_position(progress.ops_done.load(std::sync::atomic::Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
            loader
                .join()
                .unwrap_or_else(|_| Err("the loader thread panicked".to_string()))
        });
        bar.finish_and_clear();
        result.map_err(|error| {
            format!(
                "loading {} keys into {}: {error}",
                spec.key_space, self.system
            )
        })?;
        self.loaded = Some(shape);
        Ok(())
    }
}
