//! The etcd driver: the `etcd-client` crate (tonic, etcd's v3 gRPC API) over mutual TLS, on a
//! current-thread tokio runtime the driver owns.
//!
//! One client thread on purpose: tern's driver runs one glommio executor thread, so both
//! systems get the same client-side CPU budget on a machine whose cores the servers share.

mod closed_loop;
mod connect;
mod errors;
mod load;
mod members;
mod open_loop;
mod ops;
mod progress_relay;
mod recorder;
mod run;

use std::time::Duration;

use etcd_client::Client;
use tokio::runtime::Runtime;

use super::{
    key_after, Driver, EtcdEndpoints, KeyValue, MemberStatus, Progress, RunStats,
    READ_PREFIX_PAGE_KEYS,
};
use crate::workload::WorkloadSpec;

pub use load::LOAD_INFLIGHT_MAX;

/// Bound on connecting to the cluster and listing its members in [`EtcdDriver::connect`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A driver connected to one etcd cluster.
pub struct EtcdDriver {
    /// Runs every request; only driven inside the driver's methods (block_on).
    runtime: Runtime,
    /// Balanced over all members: the load goes through it, and runs when no leader is known.
    client: Client,
    /// Per-member clients and the member id -> index map, for the election experiment.
    members: members::Members,
    /// The client runs go through: connected to the leader only (member index, client).
    leader_client: Option<(usize, Client)>,
    urls: Vec<String>,
    options: etcd_client::ConnectOptions,
}

/// How long each member gets to say who leads before a run.
const LEADER_QUERY_TIMEOUT: Duration = Duration::from_secs(1);

impl EtcdDriver {
    /// Connects to all members in `endpoints` (mutual TLS with its PEM files) and maps etcd's
    /// member ids to member indices through the member list.
    pub fn connect(endpoints: EtcdEndpoints) -> Result<EtcdDriver, String> {
        if endpoints.client_urls.is_empty() {
            return Err("etcd driver: no client URLs to connect to".to_string());
        }
        if endpoints.client_urls.len() != endpoints.names.len() {
            return Err(format!(
                "etcd driver: {} client URLs but {} member names; they must pair up in member order",
                endpoints.client_urls.len(),
                endpoints.names.len()
            ));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| format!("etcd driver: cannot start a tokio runtime: {error}"))?;
        let options = connect::base_options(&endpoints)?;
        let (client, members) = runtime.block_on(async {
            let mut client = connect::client(&endpoints.client_urls, options.clone()).await?;
            let ids = tokio::time::timeout(
                CONNECT_TIMEOUT,
                members::member_ids(&mut client, &endpoints.names),
            )
            .await
            .map_err(|_| {
                format!(
                    "etcd driver: no member list from {:?} within {CONNECT_TIMEOUT:?}; is the \
                     cluster up and does it accept this client certificate?",
                    endpoints.client_urls
                )
            })??;
            let members =
                members::Members::new(endpoints.client_urls.clone(), ids, options.clone());
            Ok::<_, String>((client, members))
        })?;
        Ok(EtcdDriver {
            runtime,
            client,
            members,
            leader_client: None,
            urls: endpoints.client_urls,
            options,
        })
    }

    /// A client connected to the current leader only, so that etcd's requests take the same
    /// route as tern's (whose client sends everything to the leader): no follower forwarding
    /// a put or a read-index request. Falls back to the balanced client when no member names
    /// a leader. A leader change mid-run still works: followers forward.
    fn run_client(&mut self) -> Result<Client, String> {
        let members = &mut self.members;
        let count = self.urls.len();
        let leader = self.runtime.block_on(async {
            for member in 0..count {
                if let Ok(status) = members.status(member, LEADER_QUERY_TIMEOUT).await {
                    if let Some(leader) = status.leader_index {
                        return Some(leader);
                    }
                }
            }
            None
        });
        let Some(leader) = leader.filter(|&leader| leader < count) else {
            return Ok(self.client.clone());
        };
        if let Some((cached, client)) = &self.leader_client {
            if *cached == leader {
                return Ok(client.clone());
            }
        }
        let urls = [self.urls[leader].clone()];
        let client = self
            .runtime
            .block_on(connect::client(&urls, self.options.clone()))?;
        self.leader_client = Some((leader, client.clone()));
        Ok(client)
    }
}

impl Driver for EtcdDriver {
    fn load(&mut self, spec: &WorkloadSpec, progress: &Progress) -> Result<(), String> {
        self.runtime
            .block_on(load::load(&self.client, spec, progress))
    }

    fn run(&mut self, spec: &WorkloadSpec, progress: &Progress) -> Result<RunStats, String> {
        let client = self.run_client()?;
        self.runtime.block_on(run::run(&client, spec, progress))
    }

    fn member_status(
        &mut self,
        member_index: usize,
        timeout: Duration,
    ) -> Result<MemberStatus, String> {
        let members = &mut self.members;
        self.runtime.block_on(members.status(member_index, timeout))
    }

    fn probe_write(
        &mut self,
        member_indices: &[usize],
        key: &[u8],
        timeout: Duration,
    ) -> Result<(), String> {
        let members = &mut self.members;
        self.runtime
            .block_on(members.probe_write(member_indices, key, timeout))
    }

    fn read_prefix(&mut self, prefix: &[u8], timeout: Duration) -> Result<Vec<KeyValue>, String> {
        let mut client = self.client.clone();
        let read = async move {
            let mut pairs = Vec::new();
            let mut start = prefix.to_vec();
            loop {
                // Every page ends at the prefix's end; later pages start after the last key.
                let options = etcd_client::GetOptions::new()
                    .with_range(prefix_end(prefix))
                    .with_limit(i64::from(READ_PREFIX_PAGE_KEYS));
                let response = client
                    .get(start.clone(), Some(options))
                    .await
                    .map_err(|error| format!("etcd driver: range read failed: {error}"))?;
                for kv in response.kvs() {
                    pairs.push((kv.key().to_vec(), kv.value().to_vec()));
                }
                match pairs.last() {
                    Some((last, _)) if response.more() => start = key_after(last),
                    _ => return Ok(pairs),
                }
            }
        };
        self.runtime.block_on(async {
            tokio::time::timeout(timeout, read).await.map_err(|_| {
                format!("etcd driver: reading the keys under a prefix took over {timeout:?}")
            })?
        })
    }
}

/// The smallest key above every key starting with `prefix` (etcd's range end for a prefix;
/// "\0" when every byte is 0xff, meaning no end).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
