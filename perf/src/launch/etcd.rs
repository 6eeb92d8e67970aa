//! etcd clusters: Debian's etcd 3.4 with mutual TLS on client and peer links.
//
// Contract: `EtcdCluster::start(spec: &ClusterSpec) -> Result<EtcdCluster, String>`,
// `impl Cluster for EtcdCluster`, `pub fn etcd_binary() -> Result<PathBuf, String>` (an error
// that says to run perf/install-etcd.sh when it is missing) and `pub fn etcd_version() -> String`.

use super::ClusterSpec;

/// A running etcd cluster.
pub struct EtcdCluster {}

impl EtcdCluster {
    pub fn start(spec: &ClusterSpec) -> Result<EtcdCluster, String> {
        todo!("{spec:?}")
    }
}

impl super::Cluster for EtcdCluster {
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
