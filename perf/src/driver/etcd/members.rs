//! Asking members one at a time, for the election experiment: each member's own status, and
//! probe writes through a chosen set of members.

use std::collections::HashMap;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use super::connect;
use super::errors::OpError;
use crate::driver::MemberStatus;

/// The value every probe write puts (its key is the caller's).
const PROBE_VALUE: &[u8] = b"probe";

/// Probe clients kept at once, one per (member set, timeout): an experiment uses a handful;
/// past this the cache starts over rather than grow.
const PROBE_CLIENTS_MAX: usize = 64;

/// etcd's member ids in member index order, matched by name through the member list.
pub(super) async fn member_ids(client: &mut Client, names: &[String]) -> Result<Vec<u64>, String> {
    let list = client.member_list().await.map_err(|error| {
        let error = OpError::from(error);
        format!(
            "etcd driver: cannot list the cluster's members ({}): {}",
            error.kind, error.message
        )
    })?;
    let members = list.members();
    names
        .iter()
        .map(|name| {
            members
                .iter()
                .find(|member| member.name() == name)
                .map(|member| member.id())
                .ok_or_else(|| {
                    let listed: Vec<&str> = members.iter().map(|member| member.name()).collect();
                    format!(
                        "etcd driver: no member named {name:?} in the cluster's member list \
                         {listed:?} (a member that never started has no name yet)"
                    )
                })
        })
        .collect()
}

/// Clients made lazily for single members and member sets.
pub(super) struct Members {
    urls: Vec<String>,
    /// etcd's member id of each member index.
    ids: Vec<u64>,
    options: ConnectOptions,
    /// A client connected to member i only, once asked for.
    status_clients: Vec<Option<Client>>,
    /// Clients connected to a member set only, by (sorted member indices, request timeout):
    /// connecting per probe is too slow for probes every few milliseconds.
    probe_clients: HashMap<(Vec<usize>, Duration), Client>,
}

impl Members {
    pub fn new(urls: Vec<String>, ids: Vec<u64>, options: ConnectOptions) -> Members {
        let status_clients = urls.iter().map(|_| None).collect();
        Members {
            urls,
            ids,
            options,
            status_clients,
            probe_clients: HashMap::new(),
        }
    }

    /// Member `member_index`'s own term and the leader it knows of.
    pub async fn status(
        &mut self,
        member_index: usize,
        timeout: Duration,
    ) -> Result<MemberStatus, String> {
        self.check_index(member_index)?;
        if self.status_clients[member_index].is_none() {
            let url = self.urls[member_index].clone();
            let client = connect::client(&[url], self.options.clone()).await?;
            self.status_clients[member_index] = Some(client);
        }
        let Some(client) = self.status_clients[member_index].as_mut() else {
            return Err(format!("etcd driver: no client for member {member_index}"));
        };
        let status = match tokio::time::timeout(timeout, client.status()).await {
            Ok(Ok(status)) => status,
            Ok(Err(error)) => {
                let error = OpError::from(error);
                return Err(format!(
                    "etcd driver: member {member_index} status ({}): {}",
                    error.kind, error.message
                ));
            }
            Err(_) => {
                return Err(format!(
                    "etcd driver: member {member_index} gave no status within {timeout:?}"
                ))
            }
        };
        // etcd reports no leader as member id 0.
        let leader_index = match status.leader() {
            0 => None,
            leader_id => Some(self.index_of(leader_id).ok_or_else(|| {
                format!(
                    "etcd driver: member {member_index} names leader id {leader_id:x}, which is \
                     not among the members listed at connect ({:x?})",
                    self.ids
                )
            })?),
        };
        Ok(MemberStatus {
            term: status.raft_term(),
            leader_index,
        })
    }

    /// One put of `key` through a client balanced over `member_indices` only. A follower
    /// forwards the proposal to its leader, so any member may take it.
    pub async fn probe_write(
        &mut self,
        member_indices: &[usize],
        key: &[u8],
        timeout: Duration,
    ) -> Result<(), String> {
        if member_indices.is_empty() {
            return Err("etcd driver: a probe write needs at least one member".to_string());
        }
        for &index in member_indices {
            self.check_index(index)?;
        }
        let mut set = member_indices.to_vec();
        set.sort_unstable();
        set.dedup();
        let cache_key = (set, timeout);
        if !self.probe_clients.contains_key(&cache_key) {
            if self.probe_clients.len() >= PROBE_CLIENTS_MAX {
                self.probe_clients.clear();
            }
            let urls: Vec<String> = cache_key
                .0
                .iter()
                .map(|&index| self.urls[index].clone())
                .collect();
            let options = self
                .options
                .clone()
                .with_timeout(timeout)
                .with_connect_timeout(timeout);
            let client = connect::client(&urls, options).await?;
            self.probe_clients.insert(cache_key.clone(), client);
        }
        let Some(client) = self.probe_clients.get_mut(&cache_key) else {
            return Err(format!(
                "etcd driver: no probe client for members {:?}",
                cache_key.0
            ));
        };
        // The request timeout covers a request sent; this also covers waiting for any member
        // of the set to be connected at all.
        match tokio::time::timeout(timeout, client.put(key, PROBE_VALUE, None)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => {
                let error = OpError::from(error);
                Err(format!(
                    "etcd driver: probe write through members {:?} ({}): {}",
                    cache_key.0, error.kind, error.message
                ))
            }
            Err(_) => Err(format!(
                "etcd driver: probe write through members {:?}: no answer within {timeout:?}",
                cache_key.0
            )),
        }
    }

    fn check_index(&self, member_index: usize) -> Result<(), String> {
        if member_index < self.urls.len() {
            Ok(())
        } else {
            Err(format!(
                "etcd driver: no member {member_index}; the cluster has {} (0-based indices)",
                self.urls.len()
            ))
        }
    }

    fn index_of(&self, member_id: u64) -> Option<usize> {
        self.ids.iter().position(|&id| id == member_id)
    }
}
