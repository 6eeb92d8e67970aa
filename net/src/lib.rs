//! The wire: rkyv messages, framing, QUIC endpoints with mutual TLS, and peer links.
//!
//! Layers, bottom up:
//! - [`message`]: the Raft and client message types (rkyv archives).
//! - [`frame`]: length-prefixed, versioned frames and the validating decoder.
//! - [`runtime`]: the only glommio-specific code: quinn's `Runtime` on a glommio executor.
//! - [`tls`] and [`certs`]: mutual TLS with a cluster CA; node ids carried in certificates.
//! - [`transport`]: one QUIC endpoint per node, peer links with batching and backpressure, and
//!   client sessions.
//! - [`kv_client`]: the Rust client library ([`KvClient`]): leader discovery, pipelining,
//!   exactly-once retries.

pub mod certs;
pub mod frame;
pub mod kv_client;
pub mod message;
pub mod runtime;
pub mod tls;
pub mod transport;

pub use frame::{Frame, FrameError, FrameKind, FrameReader, FRAME_BYTES_MAX_DEFAULT};
pub use kv_client::{KvClient, KvClientConfig, KvError};
pub use message::NodeId;
