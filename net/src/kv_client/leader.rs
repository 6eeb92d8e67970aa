//! Finding the leader and keeping a connection to it.
//!
//! The client starts with addresses only. Every connection tells it the id of the node that
//! answered (from its certificate), so it learns id -> address as it goes. The connection it
//! used last successfully is cached as the leader. On "not leader" it goes where the hint says:
//! the hinted address, else the address it knows for the hinted id, else the next endpoint in
//! turn. After each full round of the endpoints without an answer it backs off
//! ([`ROUND_BACKOFF_MS_MIN`] doubling to [`ROUND_BACKOFF_MS_MAX`]).
//!
//! An address whose last dial failed or never finished, or whose connection was lost, is
//! passed over for [`UNREACHABLE_SKIP_MS`] while another address remains, hints naming it
//! included. Without that, a client chases a dead leader: after a leader dies, the followers
//! name it until their election timeout, and the round of endpoints comes back to it too, so
//! each call spent a whole dial timeout on it, often twice, after the new leader was known.
//!
//! One discovery runs at a time: when 256 calls lose the leader at once, one dials and the
//! others wait for its result.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::message::NodeId;
use crate::runtime;
use crate::tls::Security;
use crate::transport::{Client, Limits, Notify};

use super::connection::{Connection, ConnectionSettings};
use super::security::security_problem;

/// First pause after a full round of endpoints without an answer, in milliseconds.
pub(crate) const ROUND_BACKOFF_MS_MIN: u64 = 10;
/// Longest pause between rounds, in milliseconds.
pub(crate) const ROUND_BACKOFF_MS_MAX: u64 = 200;
/// How long discovery passes over an unreachable address (see the module documentation), in
/// milliseconds. Short, because it is also the longest a node that was unreachable and came
/// back as the leader can be passed over (the others name it, and the hint is not followed).
pub(crate) const UNREACHABLE_SKIP_MS: u64 = 500;

/// Why no connection could be had.
pub(crate) enum RouteError {
    /// The client was closed.
    Closed,
    /// The deadline passed; the text is the last thing that went wrong.
    Deadline(String),
    /// Every endpoint refused this client's TLS (or it refused theirs): retrying cannot help.
    /// The text says what to do.
    Security(String),
}

/// Where to go next, from a "not leader" answer.
#[derive(Clone, Debug)]
struct Hint {
    leader_id: Option<NodeId>,
    leader_addr: Option<SocketAddr>,
}

/// The client's view of the cluster: endpoints, known ids, open connections, the leader.
pub(crate) struct Router {
    security: Security,
    limits: Limits,
    /// Longest wait for one dial (the handshake of an unreachable node would otherwise last
    /// the QUIC idle timeout).
    dial_timeout: Duration,
    settings: Rc<ConnectionSettings>,
    /// Configured endpoints, then addresses learned from hints; tried in turn.
    addrs: RefCell<Vec<SocketAddr>>,
    next_addr: Cell<usize>,
    /// Node id -> client address, for every node this client connected to.
    known: RefCell<HashMap<NodeId, SocketAddr>>,
    /// Open connections (at most one per address; failed ones are dropped lazily).
    connections: RefCell<Vec<Rc<Connection>>>,
    /// The cached leader connection.
    leader: RefCell<Option<Rc<Connection>>>,
    /// The leader as last learned (from a node that answered a request needing the leader, or
    /// a hint).
    leader_id: Cell<Option<NodeId>>,
    hint: RefCell<Option<Hint>>,
    /// Discovery steps since the last answer; a full round of `addrs` means back off.
    steps: Cell<usize>,
    backoff_ms: Cell<u64>,
    discovering: Cell<bool>,
    discovered: Notify,
    last_problem: RefCell<String>,
    /// Addresses whose last dial or connection failed the TLS handshake, with what to do.
    /// When it holds every address in `addrs`, routing stops with [`RouteError::Security`];
    /// an answer from an address removes it. At most one entry per address in `addrs`.
    security_refused: RefCell<HashMap<SocketAddr, String>>,
    /// Addresses whose last dial failed or never finished, or whose connection was lost, and
    /// since when (see [`UNREACHABLE_SKIP_MS`]). A successful dial removes its address. At
    /// most one entry per address in `addrs` (only those are dialled).
    unreachable: RefCell<HashMap<SocketAddr, Instant>>,
    serials: Cell<u64>,
    closed: Cell<bool>,
}

/// Clears `discovering` however the discovering call ends (it may be dropped mid-dial).
struct Discovering<'a>(&'a Router);

impl Drop for Discovering<'_> {
    fn drop(&mut self) {
        self.0.discovering.set(false);
        self.0.discovered.notify();
    }
}

impl Router {
    pub(crate) fn new(
        endpoints: Vec<SocketAddr>,
        security: Security,
        limits: Limits,
        dial_timeout: Duration,
        settings: Rc<ConnectionSettings>,
    ) -> Router {
        Router {
            security,
            limits,
            dial_timeout,
            settings,
            addrs: RefCell::new(endpoints),
            next_addr: Cell::new(0),
            known: RefCell::new(HashMap::new()),
            connections: RefCell::new(Vec::new()),
            leader: RefCell::new(None),
            leader_id: Cell::new(None),
            hint: RefCell::new(None),
            steps: Cell::new(0),
            backoff_ms: Cell::new(ROUND_BACKOFF_MS_MIN),
            discovering: Cell::new(false),
            discovered: Notify::default(),
            last_problem: RefCell::new("no endpoint tried yet".into()),
            security_refused: RefCell::new(HashMap::new()),
            unreachable: RefCell::new(HashMap::new()),
            serials: Cell::new(0),
            closed: Cell::new(false),
        }
    }

    /// How many nodes this client knows of: its endpoints and hinted addresses, or the ids it
    /// learned if more.
    pub(crate) fn node_count(&self) -> usize {
        self.addrs.borrow().len().max(self.known.borrow().len())
    }

    /// The leader as last learned.
    pub(crate) fn leader_id(&self) -> Option<NodeId> {
        self.leader_id.get()
    }

    /// Request frames written on every open connection (for tests and diagnostics).
    pub(crate) fn frames_sent(&self) -> u64 {
        self.connections
            .borrow()
            .iter()
            .map(|connection| connection.frames_sent())
            .sum()
    }

    /// A connection to send on before `deadline`: the leader's, or for a request any node may
    /// answer (`any_node`), any open one; else one found by discovery.
    pub(crate) async fn connection(
        &self,
        any_node: bool,
        deadline: Instant,
    ) -> Result<Rc<Connection>, RouteError> {
        loop {
            if self.closed.get() {
                return Err(RouteError::Closed);
            }
            if let Some(leader) = self.leader.borrow().as_ref().filter(|c| c.is_alive()) {
                return Ok(leader.clone());
            }
            if any_node {
                let connections = self.connections.borrow();
                if let Some(open) = connections.iter().find(|c| c.is_usable()) {
                    return Ok(open.clone());
                }
            }
            if let Some(problem) = self.refused_everywhere() {
                return Err(RouteError::Security(problem));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(RouteError::Deadline(self.last_problem.borrow().clone()));
            }
            let remaining = deadline - now;
            if self.discovering.get() {
                let discovered = self.discovered.listen();
                futures_lite::future::or(discovered, runtime::sleep(remaining)).await;
                continue;
            }
            self.discovering.set(true);
            let _discovering = Discovering(self);
            let step = async { Some(self.discover_step(deadline).await) };
            let expired = async {
                runtime::sleep(remaining).await;
                None
            };
            match futures_lite::future::or(step, expired).await {
                Some(Ok(connection)) => return Ok(connection),
                Some(Err(problem)) => *self.last_problem.borrow_mut() = problem,
                None => {}
            }
        }
    }

    /// What to do, when every known address failed the TLS handshake with this client.
    fn refused_everywhere(&self) -> Option<String> {
        let refused = self.security_refused.borrow();
        let addrs = self.addrs.borrow();
        if addrs.is_empty() || !addrs.iter().all(|addr| refused.contains_key(addr)) {
            return None;
        }
        addrs.first().and_then(|addr| refused.get(addr)).cloned()
    }

    /// Notes a failure at `addr`: a TLS refusal is remembered (see `security_refused`).
    fn note_security(&self, addr: SocketAddr, problem: &str) {
        if let Some(advice) = security_problem(&self.security, problem) {
            self.security_refused.borrow_mut().insert(addr, advice);
        }
    }

    /// One try: the hinted leader, or the next endpoint in turn (after a backoff when a full
    /// round found nothing).
    async fn discover_step(&self, deadline: Instant) -> Result<Rc<Connection>, String> {
        let steps = self.steps.get();
        let round = self.addrs.borrow().len().max(1);
        if steps > 0 && steps % round == 0 {
            let backoff_ms = self.backoff_ms.get();
            self.backoff_ms
                .set((backoff_ms * 2).min(ROUND_BACKOFF_MS_MAX));
            let pause = Duration::from_millis(backoff_ms)
                .min(deadline.saturating_duration_since(Instant::now()));
            runtime::sleep(pause).await;
        }
        self.steps.set(steps + 1);
        let hint = self.hint.borrow_mut().take();
        let hinted = hint.and_then(|hint| {
            hint.leader_addr.or_else(|| {
                hint.leader_id
                    .and_then(|id| self.known.borrow().get(&id).copied())
            })
        });
        let now = Instant::now();
        // A hint naming an address that just failed us is most likely stale (a follower that
        // has not noticed the leader's death yet): go round the others instead.
        let hinted = hinted.filter(|&addr| !self.skip(addr, now));
        let addr = match hinted {
            Some(addr) => addr,
            None => self.next_in_turn(now)?,
        };
        let open = self
            .connections
            .borrow()
            .iter()
            .find(|c| c.addr == addr && c.is_usable())
            .cloned();
        let connection = match open {
            Some(connection) => connection,
            None => self.dial(addr).await?,
        };
        // Presumed the leader until it says otherwise; `leader_id` waits for a confirmation.
        *self.leader.borrow_mut() = Some(connection.clone());
        Ok(connection)
    }

    /// Whether discovery should pass over `addr` now: it was unreachable lately and another
    /// address was not.
    fn skip(&self, addr: SocketAddr, now: Instant) -> bool {
        let unreachable = self.unreachable.borrow();
        let recently = |addr: &SocketAddr| {
            unreachable.get(addr).is_some_and(|since| {
                now.saturating_duration_since(*since) < Duration::from_millis(UNREACHABLE_SKIP_MS)
            })
        };
        recently(&addr) && !self.addrs.borrow().iter().all(recently)
    }

    /// The next address in turn, passing over those to [`Router::skip`].
    fn next_in_turn(&self, now: Instant) -> Result<SocketAddr, String> {
        let addrs = self.addrs.borrow().clone();
        if addrs.is_empty() {
            return Err("no endpoints configured".into());
        }
        let start = self.next_addr.get();
        let offset = (0..addrs.len())
            .find(|offset| !self.skip(addrs[(start + offset) % addrs.len()], now))
            .unwrap_or(0);
        let index = (start + offset) % addrs.len();
        self.next_addr.set(index + 1);
        Ok(addrs[index])
    }

    async fn dial(&self, addr: SocketAddr) -> Result<Rc<Connection>, String> {
        // Marked before the handshake and cleared after it: a dial cut short by the caller's
        // deadline (the future dropped) leaves its address marked too.
        self.unreachable.borrow_mut().insert(addr, Instant::now());
        let connect = async {
            Client::connect_any(&self.security, addr, &self.limits)
                .await
                .map_err(|error| error.to_string())
        };
        let timeout = async {
            runtime::sleep(self.dial_timeout).await;
            Err(format!(
                "no handshake within {} ms",
                self.dial_timeout.as_millis()
            ))
        };
        let (client, node) =
            futures_lite::future::or(connect, timeout)
                .await
                .map_err(|problem| {
                    let problem = format!("connecting to {addr}: {problem}");
                    self.note_security(addr, &problem);
                    problem
                })?;
        if self.closed.get() {
            client.close();
            return Err("client closed".into());
        }
        self.unreachable.borrow_mut().remove(&addr);
        self.known.borrow_mut().insert(node, addr);
        let serial = self.serials.get() + 1;
        self.serials.set(serial);
        let connection = Connection::start(client, node, addr, serial, self.settings.clone());
        let mut connections = self.connections.borrow_mut();
        // An old connection to the same address that stopped answering is replaced: its
        // waiting calls are retried (same sequence: still exactly once) on the new one.
        for old in connections
            .iter()
            .filter(|c| c.addr == addr && !c.is_usable())
        {
            old.fail(format!(
                "connection to {addr} replaced after it stopped answering"
            ));
        }
        connections.retain(|c| c.is_alive());
        connections.push(connection.clone());
        tracing::debug!(node, %addr, "kv client connected");
        Ok(connection)
    }

    /// A request on `connection` was answered: the node serves us, stop backing off. When the
    /// request needed the leader, `connection`'s node is the leader (as of now).
    pub(crate) fn answered(&self, connection: &Connection, by_leader: bool) {
        self.security_refused.borrow_mut().remove(&connection.addr);
        self.steps.set(0);
        self.backoff_ms.set(ROUND_BACKOFF_MS_MIN);
        if by_leader && self.is_leader(connection) {
            self.leader_id.set(Some(connection.node));
        }
    }

    fn is_leader(&self, connection: &Connection) -> bool {
        self.leader
            .borrow()
            .as_ref()
            .is_some_and(|leader| leader.serial == connection.serial)
    }

    /// `connection`'s node says it is not the leader and names `leader_id` / `leader_addr`.
    pub(crate) fn not_leader(
        &self,
        connection: &Connection,
        leader_id: Option<NodeId>,
        leader_addr: Option<&str>,
        problem: &str,
    ) {
        *self.last_problem.borrow_mut() = problem.to_string();
        let current = self.leader.borrow().clone();
        if current.is_some() && !self.is_leader(connection) {
            // Already moved on (many calls report the same frame); this news is old.
            return;
        }
        *self.leader.borrow_mut() = None;
        // A node naming itself is no help; go round the endpoints instead.
        let leader_id = leader_id.filter(|&id| id != connection.node);
        // A node listening on 0.0.0.0 may name that: it says nothing about where the node is,
        // so the id (or the search) has to do. A name that is not an address is ignored too
        // (no DNS lookups on the executor).
        let leader_addr = leader_addr
            .and_then(|text| text.parse::<SocketAddr>().ok())
            .filter(|&addr| addr != connection.addr && !addr.ip().is_unspecified());
        self.leader_id.set(leader_id);
        if let Some(addr) = leader_addr {
            let mut addrs = self.addrs.borrow_mut();
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        // The hinted leader may be a connection we already have.
        let open = self
            .connections
            .borrow()
            .iter()
            .find(|c| {
                c.is_usable()
                    && (leader_id == Some(c.node) || leader_addr.is_some_and(|addr| addr == c.addr))
            })
            .cloned();
        match open {
            Some(connection) => *self.leader.borrow_mut() = Some(connection),
            None if leader_id.is_some() || leader_addr.is_some() => {
                *self.hint.borrow_mut() = Some(Hint {
                    leader_id,
                    leader_addr,
                })
            }
            None => {}
        }
    }

    /// `connection` failed or did not answer in time: stop treating it as the leader.
    pub(crate) fn trouble(&self, connection: &Connection, problem: &str) {
        *self.last_problem.borrow_mut() = problem.to_string();
        // An insecure client learns that a mutual-TLS node refused it only here: its side of
        // the handshake completes before the node checks its certificate.
        self.note_security(connection.addr, problem);
        if !connection.is_alive() {
            self.unreachable
                .borrow_mut()
                .insert(connection.addr, Instant::now());
        }
        if self.is_leader(connection) {
            *self.leader.borrow_mut() = None;
        }
    }

    /// Closes every connection; waiting calls end.
    pub(crate) fn close(&self) {
        self.closed.set(true);
        *self.leader.borrow_mut() = None;
        let connections: Vec<_> = self.connections.borrow_mut().drain(..).collect();
        for connection in connections {
            connection.fail("client closed".into());
        }
        self.discovered.notify();
    }
}
