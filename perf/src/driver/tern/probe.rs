//! Probe writes of the election experiment: one put through a chosen set of members, every
//! few milliseconds. Dialling QUIC for each probe would cost more than the probe, so each
//! member set keeps its client while it is asked for.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tern_net::tls::Security;
use tern_net::{KvClient, KvClientConfig};

/// A member set's client is closed once no probe asked for that set for this long.
const PROBE_CLIENT_IDLE_MAX: Duration = Duration::from_secs(10);
/// Most probe clients kept at once (least recently used closed first).
const PROBE_CLIENTS_MAX: usize = 8;
/// Longest single attempt of a probe (and longest wait for one handshake), whatever the
/// probe's own timeout. After a leader's crash its followers keep naming it until their
/// election timeout fires, and the client dials the named leader even outside the probe's
/// member set: with the whole probe timeout per attempt, that dial to a dead member held the
/// first write for the QUIC handshake timeout (5 s) although the survivors had elected long
/// before. Far above a healthy write or handshake on loopback (a few ms), below tern's
/// election timeouts by default (150-300 ms). A retried attempt keeps its sequence, so a
/// resend is never applied twice.
const PROBE_ATTEMPT_TIMEOUT_MAX: Duration = Duration::from_millis(50);
/// The value every probe writes.
const PROBE_VALUE: &[u8] = b"probe";

/// What a probe client is for: its members (sorted) and its attempt timeout.
type ProbeKey = (Vec<usize>, Duration);

struct ProbeClient {
    client: Rc<KvClient>,
    last_used: Instant,
}

/// The probe clients, by member set.
#[derive(Default)]
pub struct ProbeClients {
    clients: BTreeMap<ProbeKey, ProbeClient>,
}

impl ProbeClients {
    /// One put of `key` through `members` (indices into `addrs`), bounded by `timeout`; each
    /// attempt by `timeout` or PROBE_ATTEMPT_TIMEOUT_MAX, whichever is shorter.
    pub async fn probe_write(
        &mut self,
        addrs: &[SocketAddr],
        security: &Security,
        members: &[usize],
        key: &[u8],
        timeout: Duration,
    ) -> Result<(), String> {
        let mut members = members.to_vec();
        members.sort_unstable();
        members.dedup();
        if members.is_empty() {
            return Err("probe_write: no member given".to_string());
        }
        let endpoints = members
            .iter()
            .map(|&index| {
                addrs.get(index).copied().ok_or_else(|| {
                    format!(
                        "probe_write: member {index} does not exist (the cluster has {})",
                        addrs.len()
                    )
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if timeout.is_zero() {
            return Err("probe_write: the timeout must be above zero".to_string());
        }
        let now = Instant::now();
        self.forget_idle(now);
        let probe_key = (members, timeout);
        let client = match self.clients.get_mut(&probe_key) {
            Some(cached) => {
                cached.last_used = now;
                cached.client.clone()
            }
            None => {
                let mut config = KvClientConfig::new(endpoints, security.clone());
                config.attempt_timeout = timeout.min(PROBE_ATTEMPT_TIMEOUT_MAX);
                config.operation_timeout = timeout;
                let client = KvClient::connect(config).await.map_err(|error| {
                    format!(
                        "probe_write: no connection to members {:?}: {error}",
                        probe_key.0
                    )
                })?;
                let client = Rc::new(client);
                self.make_room();
                self.clients.insert(
                    probe_key.clone(),
                    ProbeClient {
                        client: client.clone(),
                        last_used: now,
                    },
                );
                client
            }
        };
        client
            .put(Bytes::copy_from_slice(key), Bytes::from_static(PROBE_VALUE))
            .await
            .map_err(|error| format!("probe write through members {:?}: {error}", probe_key.0))
    }

    /// Closes the clients of member sets not asked for lately.
    fn forget_idle(&mut self, now: Instant) {
        self.clients.retain(|_, cached| {
            now.saturating_duration_since(cached.last_used) < PROBE_CLIENT_IDLE_MAX
        });
    }

    /// Closes the least recently used clients until one more fits.
    fn make_room(&mut self) {
        while self.clients.len() >= PROBE_CLIENTS_MAX {
            let oldest = self
                .clients
                .iter()
                .min_by_key(|(_, cached)| cached.last_used)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => {
                    self.clients.remove(&key);
                }
                None => break,
            }
        }
    }

    /// Closes every probe client.
    pub fn close_all(&mut self) {
        self.clients.clear();
    }
}
