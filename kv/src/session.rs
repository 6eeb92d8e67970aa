//! Client sessions: remember each client's recent write results so a retried (client id,
//! sequence) gets its first result back and is not applied twice.
//!
//! Everything here is deterministic in the log (no clocks): every replica that applies the same
//! entries holds the same sessions, so a snapshot carries them and a new leader answers a retry
//! exactly as the old one would have.

/// Bounds on session state; every replica must use the same values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Most sessions kept. When a new client would exceed it, the session that applied a write
    /// longest ago (lowest log index) expires; a retry from it then gets `ResultForgotten`
    /// if its sequence is at or below the highest sequence that session had applied.
    pub sessions_max: usize,
    /// Most results one session keeps (the client's pipelining window must stay below it).
    /// Results at or below the client's `answered_through` are dropped earlier.
    pub results_per_session_max: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            sessions_max: 65_536,
            results_per_session_max: 4_096,
        }
    }
}
