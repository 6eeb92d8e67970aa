//! Member status for the election experiment, which asks every few milliseconds: one status
//! connection per member, kept between calls (a QUIC handshake per question would cost more
//! than the question, and etcd's driver keeps its per-member clients too). A connection that
//! fails or does not answer in time is dropped; the next call dials again.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tern_net::message::{NodeStatus, StatusRequest};
use tern_net::runtime;
use tern_net::tls::Security;
use tern_net::transport::{Client, ClientReply, Limits};

/// Replies that are not our status answer skipped on one question before giving up on the
/// connection (a fresh status connection receives nothing else; this only bounds the loop).
const STRAY_REPLIES_MAX: usize = 16;

/// The status connections, by member index.
pub struct StatusClients {
    clients: Vec<Option<Client>>,
    limits: Limits,
    next_request_id: u64,
}

impl StatusClients {
    pub fn new(members: usize) -> StatusClients {
        StatusClients {
            clients: (0..members).map(|_| None).collect(),
            limits: Limits::default(),
            next_request_id: 1,
        }
    }

    /// Member `member_index`'s own status, dialling it first if needed; all within `timeout`.
    pub async fn status(
        &mut self,
        member_index: usize,
        addr: SocketAddr,
        security: &Security,
        timeout: Duration,
    ) -> Result<NodeStatus, String> {
        let slot = self
            .clients
            .get_mut(member_index)
            .ok_or_else(|| format!("member {member_index} does not exist"))?;
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        let deadline = Instant::now() + timeout;
        // A cached connection taken out: put back only after a complete exchange, since one cut
        // off mid-reply (by the timeout) may hold half a frame.
        let cached = slot.take();
        let limits = &self.limits;
        let exchange = async move {
            let mut client = match cached {
                Some(client) => client,
                None => {
                    let (client, _node) = Client::connect_any(security, addr, limits)
                        .await
                        .map_err(|error| format!("connecting: {error}"))?;
                    client
                }
            };
            match ask(&mut client, request_id).await {
                Ok(status) => Ok((client, status)),
                Err(problem) => {
                    client.close();
                    Err(problem)
                }
            }
        };
        let expired = async {
            runtime::sleep(deadline.saturating_duration_since(Instant::now())).await;
            Err(format!(
                "no answer to a status request within {} ms",
                timeout.as_millis()
            ))
        };
        let (client, status) = futures_lite::future::or(exchange, expired).await?;
        *slot = Some(client);
        Ok(status)
    }

    /// Closes every status connection.
    pub fn close_all(&mut self) {
        for client in self.clients.iter_mut().filter_map(Option::take) {
            client.close();
        }
    }
}

/// One status question on `client` and its answer.
async fn ask(client: &mut Client, request_id: u64) -> Result<NodeStatus, String> {
    client
        .send(&StatusRequest { request_id })
        .await
        .map_err(|error| error.to_string())?;
    for _ in 0..STRAY_REPLIES_MAX {
        match client.receive().await.map_err(|error| error.to_string())? {
            ClientReply::Status(status) if status.request_id == request_id => return Ok(status),
            // An answer to an earlier question that timed out; skip it.
            _ => continue,
        }
    }
    Err(format!(
        "{STRAY_REPLIES_MAX} replies in a row were not the answer to status request {request_id}"
    ))
}
