//! Server processes on this machine, for local clusters: `tern demo` and the bench suite
//! (tern-perf) start their members with these helpers.
//!
//! [`ports`] picks loopback ports that no client socket will take; [`server`] runs one server
//! as a child process that logs to a file and never outlives its launcher.

pub mod ports;
pub mod server;

pub use ports::free_loopback_ports;
pub use server::{log_tail, terminate_all, ServerProcess};
