//! tern's engine: the Raft consensus core (pure, deterministic), its simulator, and later the
//! node that drives the core on the thread-per-core runtime.

pub mod raft;
pub mod sim;
