//! The wire: rkyv messages and validated framing (QUIC endpoints and TLS follow).
pub mod frame;
pub mod message;
pub use frame::{Frame, FrameError, FrameKind, FrameReader, FRAME_BYTES_MAX_DEFAULT};
pub use message::NodeId;
