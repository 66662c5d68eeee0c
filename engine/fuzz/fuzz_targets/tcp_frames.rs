//! Any byte stream, cut at any points, through the TCP path's frame decoder: nothing may
//! panic, every message is at most MAX_MESSAGE bytes, the decoder never holds more than one
//! partial frame plus the last piece, and re-encoding the messages and decoding them again in
//! one piece gives the same messages.
#![no_main]

use dockroute_engine::transport::frame::{self, FrameDecoder, LEN_PREFIX, MAX_MESSAGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else { return };
    let piece = usize::from(cut).max(1);
    let mut d = FrameDecoder::default();
    let mut messages = Vec::new();
    for chunk in stream.chunks(piece) {
        d.push(chunk);
        while let Some(m) = d.next_message() {
            assert!(m.len() <= MAX_MESSAGE);
            messages.push(m.to_vec());
        }
        assert!(d.buffered() <= MAX_MESSAGE + LEN_PREFIX + chunk.len());
    }
    let mut again = Vec::new();
    for m in &messages {
        assert!(frame::encode(m, &mut again));
    }
    let mut d2 = FrameDecoder::default();
    d2.push(&again);
    let back: Vec<Vec<u8>> = std::iter::from_fn(|| d2.next_message().map(<[u8]>::to_vec)).collect();
    assert_eq!(back, messages);
    assert_eq!(d2.oversized(), 0);
});
