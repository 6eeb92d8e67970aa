//! Drivers run a workload against one running cluster through that system's own client
//! library: [`tern`] through tern-net's `KvClient` on glommio, [`etcd`] through the
//! `etcd-client` crate on tokio. Each owns its runtime; the interface is synchronous.

pub mod etcd;
pub mod run_stats;
pub mod tern;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use run_stats::{Progress, RunStats};

use crate::workload::WorkloadSpec;

/// One member's view of the cluster, for the election experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// The member's current term.
    pub term: u64,
    /// The leader it knows of, as a member index (0-based, launch order), if any.
    pub leader_index: Option<usize>,
}

/// What the suite asks of a system's client side.
pub trait Driver: Send {
    /// Writes keys 0 .. spec.key_space with spec.value_bytes values (not measured; pipelined
    /// as the system allows). Progress counts keys written.
    fn load(&mut self, spec: &WorkloadSpec, progress: &Progress) -> Result<(), String>;

    /// Runs the workload: warm-up, then `spec.duration` measured. Errors of single operations
    /// are counted in the stats (a run goes on through them); an `Err` means the run itself
    /// could not happen (no connection at all, bad spec).
    fn run(&mut self, spec: &WorkloadSpec, progress: &Progress) -> Result<RunStats, String>;

    /// Asks member `member_index` directly (not through the leader) for its term and leader,
    /// within `timeout`.
    fn member_status(
        &mut self,
        member_index: usize,
        timeout: Duration,
    ) -> Result<MemberStatus, String>;

    /// One put of `key`, through any of the members in `member_indices`, each attempt bounded
    /// by `timeout`. Ok once one member acknowledged it as committed.
    fn probe_write(
        &mut self,
        member_indices: &[usize],
        key: &[u8],
        timeout: Duration,
    ) -> Result<(), String>;

    /// Every pair whose key starts with `prefix`, in key order, read linearizably in pages of
    /// [`READ_PREFIX_PAGE_KEYS`], the whole read bounded by `timeout`.
    fn read_prefix(&mut self, prefix: &[u8], timeout: Duration) -> Result<Vec<KeyValue>, String>;
}

/// One stored pair, as [`Driver::read_prefix`] returns it.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Keys one page of [`Driver::read_prefix`] asks for: ~300 KB of 256-byte values, well
/// inside either system's response limits.
pub const READ_PREFIX_PAGE_KEYS: u32 = 1000;

/// The first key after `key` in byte order: where the next page of a range starts.
pub fn key_after(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// How to reach a tern cluster.
#[derive(Clone, Debug)]
pub struct TernEndpoints {
    /// Client addresses, member index order.
    pub client_addrs: Vec<SocketAddr>,
    /// The directory `tern certs` wrote (ca.pem, client.pem, client.key, ...).
    pub cert_dir: PathBuf,
}

/// How to reach an etcd cluster.
#[derive(Clone, Debug)]
pub struct EtcdEndpoints {
    /// Client URLs ("https://127.0.0.1:PORT"), member index order.
    pub client_urls: Vec<String>,
    /// Member names, member index order ("n1", "n2", ...).
    pub names: Vec<String>,
    /// PEM files for mutual TLS: the CA, the client certificate and its key.
    pub ca_pem: PathBuf,
    pub client_cert_pem: PathBuf,
    pub client_key_pem: PathBuf,
}
