//! tern clusters: `tern serve` processes with mutual TLS.
//
// Contract: `TernCluster::start(spec: &ClusterSpec) -> Result<TernCluster, String>` and
// `impl Cluster for TernCluster`; `pub fn tern_binary() -> Result<PathBuf, String>`.

use super::ClusterSpec;

/// A running tern cluster.
pub struct TernCluster {}

impl TernCluster {
    pub fn start(spec: &ClusterSpec) -> Result<TernCluster, String> {
        todo!("{spec:?}")
    }
}

impl super::Cluster for TernCluster {
    fn system(&self) -> crate::system::System {
        todo!()
    }
    fn nodes(&self) -> usize {
        todo!()
    }
    fn server_pids(&self) -> Vec<Option<u32>> {
        todo!()
    }
    fn connect(&self) -> Result<Box<dyn crate::driver::Driver>, String> {
        todo!()
    }
    fn wait_ready(&mut self, _timeout: std::time::Duration) -> Result<(), String> {
        todo!()
    }
    fn kill(&mut self, _member_index: usize) -> Result<(), String> {
        todo!()
    }
    fn restart(&mut self, _member_index: usize) -> Result<(), String> {
        todo!()
    }
    fn check_running(&mut self) -> Result<(), String> {
        todo!()
    }
    fn command_line(&self) -> String {
        todo!()
    }
    fn stop(&mut self) {
        todo!()
    }
}
