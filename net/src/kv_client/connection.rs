//! One pipelined connection to one node: many calls share it.
//!
//! A call registers its sequence (with a [`Reply`] slot) and queues its request; a writer task
//! takes everything queued (up to `batch_requests_max` requests and the frame size) into one
//! `ClientRequestBatch` frame, so concurrent calls coalesce; a reader task completes the
//! waiting calls as response batches arrive. A `NotLeader` frame ends every waiting call that
//! needs the leader (a per-request "not leader" waits briefly for that frame, which also
//! carries the leader's address); a lost connection ends every waiting call. Nothing here retries: the call
//! decides (see `super::KvClient::execute`).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;

use crate::frame::{FRAME_ALIGN_BYTES, FRAME_HEADER_BYTES};
use crate::message::{
    ClientError, ClientOutcome, ClientRequest, ClientRequestBatch, ClientResponse, NodeId,
    NotLeader, ReadConsistency,
};
use crate::runtime;
use crate::transport::{
    Client, ClientCloser, ClientReceiver, ClientReply, ClientSender, Notify, TransportError,
};

use super::pending::{reply, Reply, ReplySender, Sequences};

/// Bytes a batch frame needs besides its requests (frame header, the batch's fields, padding);
/// an over-estimate, so a batch sized with it always fits `frame_bytes_max`.
const BATCH_OVERHEAD_BYTES: usize = 2 * FRAME_HEADER_BYTES + 4 * FRAME_ALIGN_BYTES;
/// Bytes one request adds to a batch besides its command bytes (sequence, vector header,
/// alignment); an over-estimate.
const REQUEST_OVERHEAD_BYTES: usize = 32;

/// How one attempt of one request ended.
#[derive(Debug)]
pub(crate) enum AttemptEnd {
    /// The node answered.
    Outcome(ClientOutcome),
    /// The node is not the leader (the batch's `NotLeader` frame).
    NotLeader {
        leader_id: Option<NodeId>,
        leader_addr: Option<String>,
    },
    /// The connection failed or was closed; the request may or may not have been applied.
    Lost(String),
    /// The request could not be sent at all (it does not fit a frame): it never will be.
    Unsendable(String),
}

/// What every connection of one client shares.
pub(crate) struct ConnectionSettings {
    pub(crate) client_id: u64,
    pub(crate) read_consistency: ReadConsistency,
    pub(crate) batch_requests_max: usize,
    pub(crate) frame_bytes_max: usize,
    pub(crate) sequences: Rc<RefCell<Sequences>>,
}

struct Waiting {
    /// Which attempt registered this sequence: a later attempt on this connection replaces it.
    attempt: u64,
    reply: ReplySender<AttemptEnd>,
    /// A `NotLeader` frame ends this wait (false only for serializable reads, which any node
    /// may answer).
    needs_leader: bool,
}

struct Queued {
    sequence: u64,
    attempt: u64,
    command: Rc<[u8]>,
}

/// A live (or failed) connection to one node.
pub(crate) struct Connection {
    pub(crate) node: NodeId,
    pub(crate) addr: SocketAddr,
    /// Unique per connection of a client, so stale news about an old connection is ignored.
    pub(crate) serial: u64,
    settings: Rc<ConnectionSettings>,
    /// Requests not yet taken by the writer. Bounded by the client's in-flight limit
    /// (`inflight_requests_max`): a call holds a slot while its request is queued.
    queue: RefCell<VecDeque<Queued>>,
    /// Sequences sent (or queued) and not yet answered, by sequence.
    waiting: RefCell<HashMap<u64, Waiting>>,
    attempts: Cell<u64>,
    filled: Notify,
    /// Per-request "not leader" answers (sequence, hinted id) held back briefly: a node sends
    /// them together with a `NotLeader` frame that also carries the leader's address, which
    /// matters when this client does not know that address. Released when the frame arrives
    /// or when nothing more is buffered to read. At most one entry per waiting call.
    deferred: RefCell<Vec<(u64, Option<NodeId>)>>,
    /// Notified when the connection fails (stops the reader).
    ended: Notify,
    /// Why the connection ended, once it has.
    failed: RefCell<Option<String>>,
    closer: ClientCloser,
    /// Request batch frames written, for tests and diagnostics.
    frames_sent: Cell<u64>,
    /// An attempt on this connection got no answer in time, and nothing was heard from the
    /// node since. QUIC keeps a connection to a crashed (or crashed and restarted) node "open"
    /// until its idle timeout, so without this mark a node's hint ("the leader is node N")
    /// would send the client back to that dead connection again and again.
    unanswered: Cell<bool>,
}

/// A registered attempt; dropping it (the call gave up or moved on) forgets the registration.
pub(crate) struct Attempt {
    connection: Rc<Connection>,
    sequence: u64,
    attempt: u64,
    reply: Option<Reply<AttemptEnd>>,
}

impl Attempt {
    /// Waits for this attempt's end.
    pub(crate) async fn end(&mut self) -> AttemptEnd {
        let Some(reply) = self.reply.take() else {
            return AttemptEnd::Lost("attempt already awaited".into());
        };
        match reply.await {
            Some(end) => end,
            None => AttemptEnd::Lost(self.connection.failure()),
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let mut waiting = self.connection.waiting.borrow_mut();
        if waiting
            .get(&self.sequence)
            .is_some_and(|entry| entry.attempt == self.attempt)
        {
            waiting.remove(&self.sequence);
        }
    }
}

impl Connection {
    /// Takes over `client` (connected to `node` at `addr`) and starts its writer and reader.
    pub(crate) fn start(
        client: Client,
        node: NodeId,
        addr: SocketAddr,
        serial: u64,
        settings: Rc<ConnectionSettings>,
    ) -> Rc<Connection> {
        let (sender, receiver) = client.split();
        let connection = Rc::new(Connection {
            node,
            addr,
            serial,
            settings,
            queue: RefCell::new(VecDeque::new()),
            waiting: RefCell::new(HashMap::new()),
            attempts: Cell::new(0),
            filled: Notify::default(),
            ended: Notify::default(),
            deferred: RefCell::new(Vec::new()),
            failed: RefCell::new(None),
            closer: sender.closer(),
            frames_sent: Cell::new(0),
            unanswered: Cell::new(false),
        });
        runtime::spawn(write_requests(connection.clone(), sender));
        runtime::spawn(read_replies(connection.clone(), receiver));
        connection
    }

    /// Whether the connection still works (as far as this client knows).
    pub(crate) fn is_alive(&self) -> bool {
        self.failed.borrow().is_none()
    }

    /// Marks that an attempt timed out here (see `unanswered`).
    pub(crate) fn mark_unanswered(&self) {
        self.unanswered.set(true);
    }

    /// Whether to use this connection for new attempts: open, and not silent since an attempt
    /// on it timed out (then a fresh connection to the node is dialled instead).
    pub(crate) fn is_usable(&self) -> bool {
        self.is_alive() && !self.unanswered.get()
    }

    /// Request batch frames written so far.
    pub(crate) fn frames_sent(&self) -> u64 {
        self.frames_sent.get()
    }

    fn failure(&self) -> String {
        self.failed
            .borrow()
            .clone()
            .unwrap_or_else(|| "connection ended".into())
    }

    /// Queues `command` as `sequence` and registers for its answer; `Err` (why) when the
    /// connection has failed.
    pub(crate) fn submit(
        self: &Rc<Self>,
        sequence: u64,
        command: Rc<[u8]>,
        needs_leader: bool,
    ) -> Result<Attempt, String> {
        if let Some(reason) = self.failed.borrow().clone() {
            return Err(reason);
        }
        let attempt = self.attempts.get() + 1;
        self.attempts.set(attempt);
        let (sender, receiver) = reply();
        self.waiting.borrow_mut().insert(
            sequence,
            Waiting {
                attempt,
                reply: sender,
                needs_leader,
            },
        );
        self.queue.borrow_mut().push_back(Queued {
            sequence,
            attempt,
            command,
        });
        self.filled.notify();
        Ok(Attempt {
            connection: self.clone(),
            sequence,
            attempt,
            reply: Some(receiver),
        })
    }

    /// Ends the connection: every waiting call gets [`AttemptEnd::Lost`] with `reason`.
    pub(crate) fn fail(&self, reason: String) {
        if self.failed.borrow().is_some() {
            return;
        }
        *self.failed.borrow_mut() = Some(reason.clone());
        self.closer.close();
        self.queue.borrow_mut().clear();
        self.deferred.borrow_mut().clear();
        let waiting: Vec<Waiting> = self.waiting.borrow_mut().drain().map(|(_, w)| w).collect();
        for entry in waiting {
            entry.reply.send(AttemptEnd::Lost(reason.clone()));
        }
        self.filled.notify();
        self.ended.notify();
    }

    /// Takes the next batch from the queue: requests whose attempt is still registered, up to
    /// `batch_requests_max` and what fits one frame (at least one request).
    fn take_batch(&self) -> Vec<ClientRequest> {
        let settings = &self.settings;
        let waiting = self.waiting.borrow();
        let mut queue = self.queue.borrow_mut();
        let mut requests = Vec::new();
        let mut bytes = BATCH_OVERHEAD_BYTES;
        while let Some(next) = queue.front() {
            if requests.len() >= settings.batch_requests_max {
                break;
            }
            let request_bytes = next.command.len().next_multiple_of(8) + REQUEST_OVERHEAD_BYTES;
            if !requests.is_empty() && bytes + request_bytes > settings.frame_bytes_max {
                break;
            }
            let Some(next) = queue.pop_front() else {
                break;
            };
            // A call that gave up (or re-registered in a later attempt) needs no copy of this.
            let current = waiting
                .get(&next.sequence)
                .is_some_and(|entry| entry.attempt == next.attempt);
            if current {
                bytes += request_bytes;
                requests.push(ClientRequest {
                    sequence: next.sequence,
                    command: next.command.to_vec(),
                });
            }
        }
        requests
    }

    fn answer(&self, sequence: u64, end: AttemptEnd) {
        let entry = self.waiting.borrow_mut().remove(&sequence);
        if let Some(entry) = entry {
            entry.reply.send(end);
        }
    }

    /// Answers the per-request "not leader" answers held back for a `NotLeader` frame that did
    /// not come (yet): with the id they carried and no address.
    fn release_deferred(&self) {
        for (sequence, leader_id) in self.deferred.take() {
            self.answer(
                sequence,
                AttemptEnd::NotLeader {
                    leader_id,
                    leader_addr: None,
                },
            );
        }
    }

    /// Answers a response batch; a per-request "not leader" is held back (see `deferred`).
    fn responses(&self, responses: Vec<ClientResponse>) {
        for response in responses {
            match response.outcome {
                ClientOutcome::Error(ClientError::NotLeader { leader_id })
                    if self.waiting.borrow().contains_key(&response.sequence) =>
                {
                    self.deferred
                        .borrow_mut()
                        .push((response.sequence, leader_id));
                }
                outcome => self.answer(response.sequence, AttemptEnd::Outcome(outcome)),
            }
        }
    }

    fn not_leader(&self, not_leader: NotLeader) {
        let mut ended: Vec<u64> = self
            .waiting
            .borrow()
            .iter()
            .filter(|(_, entry)| entry.needs_leader)
            .map(|(&sequence, _)| sequence)
            .collect();
        ended.extend(
            self.deferred
                .take()
                .into_iter()
                .map(|(sequence, _)| sequence),
        );
        for sequence in ended {
            self.answer(
                sequence,
                AttemptEnd::NotLeader {
                    leader_id: not_leader.leader_id,
                    leader_addr: not_leader.leader_addr.clone(),
                },
            );
        }
    }
}

/// The writer: one batch frame per wake-up with everything queued meanwhile.
async fn write_requests(connection: Rc<Connection>, mut sender: ClientSender) {
    loop {
        let filled = connection.filled.listen();
        if !connection.is_alive() {
            return;
        }
        if connection.queue.borrow().is_empty() {
            filled.await;
            continue;
        }
        // Let the other ready calls queue theirs first: one frame for all of them.
        runtime::yield_now().await;
        let requests = connection.take_batch();
        if requests.is_empty() {
            continue;
        }
        let settings = &connection.settings;
        let batch = ClientRequestBatch {
            client_id: settings.client_id,
            answered_through: settings.sequences.borrow().answered_through(),
            read_consistency: settings.read_consistency,
            requests,
        };
        match sender.send(&batch).await {
            Ok(()) => connection.frames_sent.set(connection.frames_sent.get() + 1),
            Err(TransportError::Encode(error)) => {
                // Only an estimate was wrong (each request alone was checked to fit): these
                // requests cannot go in this batch; their calls report it.
                for request in &batch.requests {
                    connection.answer(
                        request.sequence,
                        AttemptEnd::Unsendable(format!("request batch does not fit: {error}")),
                    );
                }
            }
            Err(error) => {
                connection.fail(format!("sending to node {}: {error}", connection.node));
                return;
            }
        }
    }
}

/// The reader: completes waiting calls until the connection ends.
async fn read_replies(connection: Rc<Connection>, mut receiver: ClientReceiver) {
    loop {
        if !connection.deferred.borrow().is_empty() {
            // Held-back "not leader" answers wait for a NotLeader frame only while more frames
            // are already here to read; a stream cancelled while pending loses nothing.
            match futures_lite::future::poll_once(receiver.receive()).await {
                Some(reply) => {
                    if !handle_reply(&connection, reply) {
                        return;
                    }
                    continue;
                }
                None => connection.release_deferred(),
            }
        }
        let reply = futures_lite::future::or(async { Some(receiver.receive().await) }, async {
            // Stop reading once the connection was failed from this side.
            loop {
                let ended = connection.ended.listen();
                if !connection.is_alive() {
                    return None;
                }
                ended.await;
            }
        })
        .await;
        let Some(reply) = reply else {
            return;
        };
        if !handle_reply(&connection, reply) {
            return;
        }
    }
}

/// Handles one reply; false when the connection failed.
fn handle_reply(connection: &Connection, reply: Result<ClientReply, TransportError>) -> bool {
    if reply.is_ok() {
        // The node answers: whatever timed out before, the connection works.
        connection.unanswered.set(false);
    }
    match reply {
        Ok(ClientReply::Responses(batch)) => {
            if batch.client_id == connection.settings.client_id {
                connection.responses(batch.responses);
            } else {
                tracing::debug!(
                    node = connection.node,
                    client_id = batch.client_id,
                    "ignoring responses for another client id"
                );
            }
        }
        Ok(ClientReply::NotLeader(not_leader)) => connection.not_leader(not_leader),
        Ok(ClientReply::Status(_) | ClientReply::Admin(_)) => {
            tracing::debug!(
                node = connection.node,
                "ignoring an unrequested status or admin reply"
            );
        }
        Err(error) => {
            connection.fail(format!(
                "connection to node {} ({}): {error}",
                connection.node, connection.addr
            ));
            return false;
        }
    }
    true
}
