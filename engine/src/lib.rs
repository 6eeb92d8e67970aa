//! tern's engine: the Raft consensus core (pure, deterministic), its simulator, and later the
//! node that drives the core on the thread-per-core runtime ([`node`]), and the `tern` binary.

pub mod local_process;
pub mod node;
pub mod raft;
pub mod sim;
