//! Fuzz target: arbitrary bytes, delivered in arbitrary chunk sizes, into the frame decoder.
//! It must return frames or errors, never panic, and never hold more than its bound.
//!
//! Run: `cd net/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run frame_decoder`
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_net::frame::FrameReader;

/// Small, so oversized-length paths are reached with short inputs.
const FRAME_BYTES_MAX: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so split frames are explored too.
    let Some((&chunk_byte, bytes)) = data.split_first() else { return };
    let chunk_bytes = usize::from(chunk_byte).max(1);
    let mut reader = FrameReader::new("fuzz", FRAME_BYTES_MAX);
    for chunk in bytes.chunks(chunk_bytes) {
        reader.push(chunk);
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    let _ = frame.kind();
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(reader.buffered_bytes() <= FRAME_BYTES_MAX + bytes.len());
    }
    let _ = reader.finish();
});
