//! Framing: how messages are laid out on a stream, and the decoder that checks every byte.
//!
//! A frame is a 16-byte header, an rkyv archive (the body), and zero padding up to a multiple of
//! 16 bytes. The padding keeps every body 16-byte aligned inside the receive buffer (an
//! [`AlignedVec`]), so archives are validated and read in place with no copy.
//!
//! Header layout (little endian):
//!
//! | bytes  | field                                            |
//! |--------|--------------------------------------------------|
//! | 0..4   | magic `b"tern"`                                  |
//! | 4      | format version ([`FRAME_VERSION`])               |
//! | 5      | kind ([`FrameKind`]): which type the body holds  |
//! | 6..8   | reserved, zero                                   |
//! | 8..12  | body length in bytes (before padding)            |
//! | 12..16 | reserved, zero                                   |
//!
//! The decoder checks the header, and the frame length against `frame_bytes_max`, before it
//! allocates anything for the body. Every error names the peer and what was wrong; the caller
//! closes that connection and nothing else.

use rkyv::api::high::{to_bytes_in_with_alloc, HighSerializer};
use rkyv::rancor;
use rkyv::ser::allocator::{Arena, ArenaHandle};
use rkyv::util::AlignedVec;
use rkyv::{Archive, Serialize};

use crate::message::{
    AdminRequest, AdminResponse, ArchivedAdminRequest, ArchivedAdminResponse,
    ArchivedClientRequestBatch, ArchivedClientResponseBatch, ArchivedNodeStatus, ArchivedNotLeader,
    ArchivedRaftMessage, ArchivedStatusRequest, ClientRequestBatch, ClientResponseBatch,
    NodeStatus, NotLeader, RaftMessage, StatusRequest,
};

/// First four bytes of every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"tern";
/// The frame format this build writes and reads.
pub const FRAME_VERSION: u8 = 1;
/// Size of the frame header.
pub const FRAME_HEADER_BYTES: usize = 16;
/// Every frame (header + body + padding) is a multiple of this, so bodies stay aligned for rkyv.
pub const FRAME_ALIGN_BYTES: usize = 16;
/// Default hard limit on one frame, header and padding included.
pub const FRAME_BYTES_MAX_DEFAULT: usize = 16 << 20;
/// The decoder never asks for a read smaller than this, so tiny reads do not dominate.
const READ_BYTES_MIN: usize = 16 << 10;
/// Receive buffer a [`FrameReader`] starts with; it grows only to fit one large frame.
const READ_BUFFER_BYTES_INITIAL: usize = 256 << 10;
/// The least receive buffer a [`FrameReader`] keeps after a large frame. A buffer of this size
/// never grows while frames are small (it holds the initial buffer plus a read chunk), so
/// releasing down to it cannot make the reader reallocate on every read.
pub const RECEIVE_BUFFER_BYTES_RETAINED_MIN: usize = READ_BUFFER_BYTES_INITIAL + READ_BYTES_MIN;
/// Default receive buffer a [`FrameReader`] keeps after a large frame: frames up to about this
/// size never cause a reallocation, larger ones release their extra memory once handled.
pub const RECEIVE_BUFFER_BYTES_RETAINED_DEFAULT: usize = 1 << 20;

/// Which message type a frame's body holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    Raft = 1,
    ClientRequests = 2,
    ClientResponses = 3,
    NotLeader = 4,
    StatusRequest = 5,
    Status = 6,
    AdminRequest = 7,
    AdminResponse = 8,
}

impl FrameKind {
    fn from_byte(byte: u8) -> Option<FrameKind> {
        match byte {
            1 => Some(FrameKind::Raft),
            2 => Some(FrameKind::ClientRequests),
            3 => Some(FrameKind::ClientResponses),
            4 => Some(FrameKind::NotLeader),
            5 => Some(FrameKind::StatusRequest),
            6 => Some(FrameKind::Status),
            7 => Some(FrameKind::AdminRequest),
            8 => Some(FrameKind::AdminResponse),
            _ => None,
        }
    }

    /// The type name a body of this kind must validate as (for error messages).
    pub fn expected_type(self) -> &'static str {
        match self {
            FrameKind::Raft => "RaftMessage",
            FrameKind::ClientRequests => "ClientRequestBatch",
            FrameKind::ClientResponses => "ClientResponseBatch",
            FrameKind::NotLeader => "NotLeader",
            FrameKind::StatusRequest => "StatusRequest",
            FrameKind::Status => "NodeStatus",
            FrameKind::AdminRequest => "AdminRequest",
            FrameKind::AdminResponse => "AdminResponse",
        }
    }
}

/// A message type that can travel in a frame.
pub trait FrameBody:
    Archive + for<'a, 'b> Serialize<HighSerializer<&'b mut Vec<u8>, ArenaHandle<'a>, rancor::Error>>
{
    /// The header kind written for this type.
    const KIND: FrameKind;
}

impl FrameBody for RaftMessage {
    const KIND: FrameKind = FrameKind::Raft;
}
impl FrameBody for ClientRequestBatch {
    const KIND: FrameKind = FrameKind::ClientRequests;
}
impl FrameBody for ClientResponseBatch {
    const KIND: FrameKind = FrameKind::ClientResponses;
}
impl FrameBody for NotLeader {
    const KIND: FrameKind = FrameKind::NotLeader;
}
impl FrameBody for StatusRequest {
    const KIND: FrameKind = FrameKind::StatusRequest;
}
impl FrameBody for NodeStatus {
    const KIND: FrameKind = FrameKind::Status;
}
impl FrameBody for AdminRequest {
    const KIND: FrameKind = FrameKind::AdminRequest;
}
impl FrameBody for AdminResponse {
    const KIND: FrameKind = FrameKind::AdminResponse;
}

/// A validated frame, borrowed in place from the receive buffer.
#[derive(Debug)]
pub enum Frame<'a> {
    Raft(&'a ArchivedRaftMessage),
    ClientRequests(&'a ArchivedClientRequestBatch),
    ClientResponses(&'a ArchivedClientResponseBatch),
    NotLeader(&'a ArchivedNotLeader),
    StatusRequest(&'a ArchivedStatusRequest),
    Status(&'a ArchivedNodeStatus),
    AdminRequest(&'a ArchivedAdminRequest),
    AdminResponse(&'a ArchivedAdminResponse),
}

impl Frame<'_> {
    /// The kind this frame was sent as.
    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::Raft(_) => FrameKind::Raft,
            Frame::ClientRequests(_) => FrameKind::ClientRequests,
            Frame::ClientResponses(_) => FrameKind::ClientResponses,
            Frame::NotLeader(_) => FrameKind::NotLeader,
            Frame::StatusRequest(_) => FrameKind::StatusRequest,
            Frame::Status(_) => FrameKind::Status,
            Frame::AdminRequest(_) => FrameKind::AdminRequest,
            Frame::AdminResponse(_) => FrameKind::AdminResponse,
        }
    }
}

/// Why bytes from a peer are not a valid frame. Each names the peer; the connection is closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame from {peer}: bad magic {found:02x?}, expected \"tern\" (not a tern peer, or the stream lost sync)")]
    BadMagic { peer: String, found: [u8; 4] },
    #[error("frame from {peer}: format version {found}, this build reads version {FRAME_VERSION}")]
    UnsupportedVersion { peer: String, found: u8 },
    #[error("frame from {peer}: unknown frame kind {found}")]
    UnknownKind { peer: String, found: u8 },
    #[error("frame from {peer}: reserved header bytes are not zero")]
    ReservedNotZero { peer: String },
    #[error("frame from {peer}: {frame_bytes} bytes is over frame_bytes_max {frame_bytes_max}")]
    TooLarge {
        peer: String,
        frame_bytes: u64,
        frame_bytes_max: usize,
    },
    #[error(
        "frame from {peer}: {frame_bytes}-byte frame is not a valid {expected} archive ({detail})"
    )]
    InvalidArchive {
        peer: String,
        expected: &'static str,
        frame_bytes: usize,
        detail: String,
    },
    #[error("frame from {peer}: stream ended inside a frame ({have_bytes} of {need_bytes} bytes)")]
    Truncated {
        peer: String,
        have_bytes: usize,
        need_bytes: usize,
    },
    #[error("frame from {peer}: a {kind:?} frame is not allowed on this stream")]
    UnexpectedKind { peer: String, kind: FrameKind },
}

/// Why a message could not be encoded (a local problem, not the peer's).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("message encodes to {frame_bytes} bytes, over frame_bytes_max {frame_bytes_max}")]
    TooLarge {
        frame_bytes: usize,
        frame_bytes_max: usize,
    },
    #[error("rkyv could not serialize the message: {0}")]
    Serialize(String),
}

/// A checked frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: FrameKind,
    pub body_bytes: usize,
    /// Header + body + padding.
    pub frame_bytes: usize,
}

fn padded(bytes: usize) -> usize {
    bytes.div_ceil(FRAME_ALIGN_BYTES) * FRAME_ALIGN_BYTES
}

/// Checks a header. Nothing is allocated before this passes.
pub fn parse_header(
    header: &[u8; FRAME_HEADER_BYTES],
    frame_bytes_max: usize,
    peer: &str,
) -> Result<FrameHeader, FrameError> {
    let magic: [u8; 4] = [header[0], header[1], header[2], header[3]];
    if magic != FRAME_MAGIC {
        return Err(FrameError::BadMagic {
            peer: peer.to_string(),
            found: magic,
        });
    }
    if header[4] != FRAME_VERSION {
        return Err(FrameError::UnsupportedVersion {
            peer: peer.to_string(),
            found: header[4],
        });
    }
    let kind = FrameKind::from_byte(header[5]).ok_or_else(|| FrameError::UnknownKind {
        peer: peer.to_string(),
        found: header[5],
    })?;
    if header[6..8] != [0, 0] || header[12..16] != [0, 0, 0, 0] {
        return Err(FrameError::ReservedNotZero {
            peer: peer.to_string(),
        });
    }
    let body_bytes = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as u64;
    let frame_bytes = (FRAME_HEADER_BYTES as u64 + body_bytes).div_ceil(FRAME_ALIGN_BYTES as u64)
        * FRAME_ALIGN_BYTES as u64;
    if frame_bytes > frame_bytes_max as u64 {
        return Err(FrameError::TooLarge {
            peer: peer.to_string(),
            frame_bytes,
            frame_bytes_max,
        });
    }
    Ok(FrameHeader {
        kind,
        body_bytes: body_bytes as usize,
        frame_bytes: frame_bytes as usize,
    })
}

fn invalid(peer: &str, kind: FrameKind, frame_bytes: usize, error: rancor::Error) -> FrameError {
    FrameError::InvalidArchive {
        peer: peer.to_string(),
        expected: kind.expected_type(),
        frame_bytes,
        detail: error.to_string(),
    }
}

/// Validates `body` (bytecheck) as the archive `header.kind` says and borrows it in place.
/// `body` must start 16-byte aligned; the reader guarantees that.
fn access_body<'a>(
    header: FrameHeader,
    body: &'a [u8],
    peer: &str,
) -> Result<Frame<'a>, FrameError> {
    let fail = |error| invalid(peer, header.kind, header.frame_bytes, error);
    Ok(match header.kind {
        FrameKind::Raft => {
            Frame::Raft(rkyv::access::<ArchivedRaftMessage, rancor::Error>(body).map_err(fail)?)
        }
        FrameKind::ClientRequests => Frame::ClientRequests(
            rkyv::access::<ArchivedClientRequestBatch, rancor::Error>(body).map_err(fail)?,
        ),
        FrameKind::ClientResponses => Frame::ClientResponses(
            rkyv::access::<ArchivedClientResponseBatch, rancor::Error>(body).map_err(fail)?,
        ),
        FrameKind::NotLeader => {
            Frame::NotLeader(rkyv::access::<ArchivedNotLeader, rancor::Error>(body).map_err(fail)?)
        }
        FrameKind::StatusRequest => Frame::StatusRequest(
            rkyv::access::<ArchivedStatusRequest, rancor::Error>(body).map_err(fail)?,
        ),
        FrameKind::Status => {
            Frame::Status(rkyv::access::<ArchivedNodeStatus, rancor::Error>(body).map_err(fail)?)
        }
        FrameKind::AdminRequest => Frame::AdminRequest(
            rkyv::access::<ArchivedAdminRequest, rancor::Error>(body).map_err(fail)?,
        ),
        FrameKind::AdminResponse => Frame::AdminResponse(
            rkyv::access::<ArchivedAdminResponse, rancor::Error>(body).map_err(fail)?,
        ),
    })
}

/// Encodes messages into frames, reusing its scratch arena between calls.
#[derive(Default)]
pub struct FrameEncoder {
    arena: Arena,
}

impl FrameEncoder {
    /// A new encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one frame holding `value` to `out`, whose length must be a multiple of
    /// [`FRAME_ALIGN_BYTES`] (it is when `out` only ever holds frames). On error `out` is left
    /// as it was. Returns the frame's length.
    pub fn encode<T: FrameBody>(
        &mut self,
        value: &T,
        out: &mut Vec<u8>,
        frame_bytes_max: usize,
    ) -> Result<usize, EncodeError> {
        let start = out.len();
        assert_eq!(
            start % FRAME_ALIGN_BYTES,
            0,
            "frame buffers hold whole frames only"
        );
        out.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
        // Serializing straight into `out` after the header: rkyv aligns relative to the buffer
        // start, and the body starts at a multiple of 16, so the receiver sees the same layout.
        let result =
            to_bytes_in_with_alloc::<_, _, rancor::Error>(value, &mut *out, self.arena.acquire());
        if let Err(error) = result {
            out.truncate(start);
            return Err(EncodeError::Serialize(error.to_string()));
        }
        let body_bytes = out.len() - start - FRAME_HEADER_BYTES;
        let frame_bytes = padded(FRAME_HEADER_BYTES + body_bytes);
        if frame_bytes > frame_bytes_max || body_bytes > u32::MAX as usize {
            out.truncate(start);
            return Err(EncodeError::TooLarge {
                frame_bytes,
                frame_bytes_max,
            });
        }
        let header = &mut out[start..start + FRAME_HEADER_BYTES];
        header[0..4].copy_from_slice(&FRAME_MAGIC);
        header[4] = FRAME_VERSION;
        header[5] = T::KIND as u8;
        header[8..12].copy_from_slice(&(body_bytes as u32).to_le_bytes());
        out.resize(start + frame_bytes, 0);
        Ok(frame_bytes)
    }
}

/// Encodes one message as a standalone frame (convenience; hot paths reuse a [`FrameEncoder`]).
pub fn encode_frame<T: FrameBody>(
    value: &T,
    frame_bytes_max: usize,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    FrameEncoder::new().encode(value, &mut out, frame_bytes_max)?;
    Ok(out)
}

/// Splits a byte stream from one peer into validated frames, read in place.
///
/// Feed it with [`FrameReader::read_space`] + [`FrameReader::filled`] (or [`FrameReader::push`]),
/// then call [`FrameReader::next_frame`] until it returns `Ok(None)`. Memory stays below
/// `frame_bytes_max` plus a small read chunk whatever the peer sends, and falls back to
/// `receive_buffer_bytes_retained` once a large frame has been handled: one large frame must not
/// pin `frame_bytes_max` per stream for the life of the stream.
pub struct FrameReader {
    peer: String,
    buffer: AlignedVec<16>,
    /// First byte not yet consumed; always a multiple of 16.
    start: usize,
    /// One past the last byte received.
    end: usize,
    /// Length of the frame at `start` once its header has been checked.
    pending_frame_bytes: usize,
    frame_bytes_max: usize,
    /// Buffer capacity kept once the bytes held fit in it again (see [`FrameReader::read_space`]).
    receive_buffer_bytes_retained: usize,
}

impl FrameReader {
    /// A reader for frames from `peer` (used in error messages) that keeps
    /// [`RECEIVE_BUFFER_BYTES_RETAINED_DEFAULT`] after a large frame.
    pub fn new(peer: impl Into<String>, frame_bytes_max: usize) -> Self {
        Self::with_retained(peer, frame_bytes_max, RECEIVE_BUFFER_BYTES_RETAINED_DEFAULT)
    }

    /// A reader that releases buffer capacity above `receive_buffer_bytes_retained` (raised to
    /// [`RECEIVE_BUFFER_BYTES_RETAINED_MIN`]) once the bytes it holds fit in that again.
    pub fn with_retained(
        peer: impl Into<String>,
        frame_bytes_max: usize,
        receive_buffer_bytes_retained: usize,
    ) -> Self {
        FrameReader {
            peer: peer.into(),
            buffer: AlignedVec::new(),
            start: 0,
            end: 0,
            pending_frame_bytes: 0,
            frame_bytes_max: frame_bytes_max.max(FRAME_HEADER_BYTES),
            receive_buffer_bytes_retained: receive_buffer_bytes_retained
                .max(RECEIVE_BUFFER_BYTES_RETAINED_MIN),
        }
    }

    /// Memory the receive buffer holds now (its capacity), for tests and metrics.
    pub fn buffer_capacity_bytes(&self) -> usize {
        self.buffer.capacity()
    }

    /// The peer label errors carry.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered_bytes(&self) -> usize {
        self.end - self.start
    }

    /// Free space to receive into; call [`FrameReader::filled`] with how much was written.
    pub fn read_space(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let needed_bytes = self.pending_frame_bytes.max(FRAME_HEADER_BYTES);
        if self.buffer.capacity() > self.receive_buffer_bytes_retained {
            self.release_excess(needed_bytes);
        }
        let free_bytes = self.buffer.len() - self.end;
        if self.start > 0
            && (free_bytes < READ_BYTES_MIN || self.buffer.len() - self.start < needed_bytes)
        {
            // Move the partial frame to the front. `start` is a multiple of 16, so alignment of
            // the bodies that follow is preserved.
            self.buffer
                .as_mut_slice()
                .copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // Grow only to hold one checked frame (<= frame_bytes_max) plus a read chunk.
        let length_bytes = READ_BUFFER_BYTES_INITIAL
            .max(needed_bytes)
            .max(self.end + READ_BYTES_MIN);
        if self.buffer.len() < length_bytes {
            self.buffer.resize(length_bytes, 0);
        }
        &mut self.buffer.as_mut_slice()[self.end..]
    }

    /// After a large frame: moves what is held into a buffer of `receive_buffer_bytes_retained`,
    /// if it and the frame being assembled fit there with a read chunk to spare (so the growth
    /// in `read_space` stays within the new capacity). Otherwise waits for a later call; the
    /// caller checks the capacity first, so the common case costs one comparison.
    #[cold]
    fn release_excess(&mut self, needed_bytes: usize) {
        let held_bytes = self.end - self.start;
        let retained_bytes = self.receive_buffer_bytes_retained;
        if needed_bytes.max(held_bytes) + READ_BYTES_MIN > retained_bytes {
            return;
        }
        // A fresh allocation rather than truncate + shrink_to_fit: one copy of only the held
        // bytes, and the capacity is exactly what is kept. `start` moves to 0, a multiple of 16,
        // so the bodies that follow stay aligned.
        let mut smaller = AlignedVec::with_capacity(retained_bytes);
        smaller.extend_from_slice(&self.buffer[self.start..self.end]);
        self.buffer = smaller;
        self.start = 0;
        self.end = held_bytes;
    }

    /// Records that `bytes` were written at the start of the last [`FrameReader::read_space`].
    pub fn filled(&mut self, bytes: usize) {
        assert!(
            self.end + bytes <= self.buffer.len(),
            "filled more than read_space offered"
        );
        self.end += bytes;
    }

    /// Copies `bytes` in (tests, fuzzing and callers that receive owned chunks).
    pub fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let space = self.read_space();
            let count = space.len().min(bytes.len());
            space[..count].copy_from_slice(&bytes[..count]);
            self.filled(count);
            bytes = &bytes[count..];
        }
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed, or why the stream is bad.
    /// After an error the reader is poisoned in practice: the caller closes the connection.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, FrameError> {
        let available_bytes = self.end - self.start;
        if self.pending_frame_bytes == 0 {
            if available_bytes < FRAME_HEADER_BYTES {
                return Ok(None);
            }
            let mut raw = [0u8; FRAME_HEADER_BYTES];
            raw.copy_from_slice(&self.buffer[self.start..self.start + FRAME_HEADER_BYTES]);
            let header = parse_header(&raw, self.frame_bytes_max, &self.peer)?;
            self.pending_frame_bytes = header.frame_bytes;
        }
        if available_bytes < self.pending_frame_bytes {
            return Ok(None);
        }
        let mut raw = [0u8; FRAME_HEADER_BYTES];
        raw.copy_from_slice(&self.buffer[self.start..self.start + FRAME_HEADER_BYTES]);
        let header = parse_header(&raw, self.frame_bytes_max, &self.peer)?;
        let body_start = self.start + FRAME_HEADER_BYTES;
        self.start += header.frame_bytes;
        self.pending_frame_bytes = 0;
        let body = &self.buffer[body_start..body_start + header.body_bytes];
        access_body(header, body, &self.peer).map(Some)
    }

    /// Call when the stream ended: an error if it ended inside a frame.
    pub fn finish(&self) -> Result<(), FrameError> {
        let have_bytes = self.end - self.start;
        if have_bytes == 0 {
            return Ok(());
        }
        Err(FrameError::Truncated {
            peer: self.peer.clone(),
            have_bytes,
            need_bytes: self.pending_frame_bytes.max(FRAME_HEADER_BYTES),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ClientRequest;

    fn batch_frame(command_bytes: usize) -> Vec<u8> {
        let batch = ClientRequestBatch {
            client_id: 1,
            answered_through: 0,
            read_consistency: crate::message::ReadConsistency::ServerDefault,
            requests: vec![ClientRequest {
                sequence: 1,
                command: vec![7u8; command_bytes],
            }],
        };
        encode_frame(&batch, FRAME_BYTES_MAX_DEFAULT).unwrap()
    }

    fn command_len(reader: &mut FrameReader) -> Option<usize> {
        match reader.next_frame().unwrap()? {
            Frame::ClientRequests(batch) => Some(batch.requests[0].command.len()),
            other => panic!("unexpected {:?}", other.kind()),
        }
    }

    /// Proves a large frame's buffer is released once handled, bytes of the next frame that
    /// arrived with it survive the move, and small frames afterwards reuse the kept buffer
    /// without reallocating.
    #[test]
    fn receive_buffer_is_released_after_a_large_frame() {
        let retained_bytes = RECEIVE_BUFFER_BYTES_RETAINED_MIN;
        let mut reader = FrameReader::with_retained("p", FRAME_BYTES_MAX_DEFAULT, retained_bytes);
        let large = batch_frame(4 << 20);
        let small = batch_frame(100);
        // The large frame plus half of a small one, as one read could deliver them.
        let mut bytes = large.clone();
        bytes.extend_from_slice(&small[..small.len() / 2]);
        reader.push(&bytes);
        assert!(reader.buffer_capacity_bytes() >= large.len());
        assert_eq!(command_len(&mut reader), Some(4 << 20));
        assert_eq!(command_len(&mut reader), None);

        reader.read_space();
        assert!(
            reader.buffer_capacity_bytes() <= retained_bytes,
            "kept {} bytes after the large frame, retained is {retained_bytes}",
            reader.buffer_capacity_bytes()
        );
        reader.push(&small[small.len() / 2..]);
        assert_eq!(command_len(&mut reader), Some(100));

        let kept_bytes = reader.buffer_capacity_bytes();
        for _ in 0..10_000 {
            reader.push(&small);
            assert_eq!(command_len(&mut reader), Some(100));
        }
        assert_eq!(reader.buffer_capacity_bytes(), kept_bytes);
    }

    /// Proves nothing is released while a large frame is still being assembled.
    #[test]
    fn receive_buffer_is_kept_while_a_large_frame_is_incomplete() {
        let mut reader = FrameReader::new("p", FRAME_BYTES_MAX_DEFAULT);
        let large = batch_frame(4 << 20);
        reader.push(&large[..large.len() - 16]);
        assert_eq!(command_len(&mut reader), None);
        let capacity_bytes = reader.buffer_capacity_bytes();
        assert!(capacity_bytes >= large.len());
        reader.read_space();
        assert_eq!(reader.buffer_capacity_bytes(), capacity_bytes);
        reader.push(&large[large.len() - 16..]);
        assert_eq!(command_len(&mut reader), Some(4 << 20));
    }
}
