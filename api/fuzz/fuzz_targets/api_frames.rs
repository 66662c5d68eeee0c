//! Any byte stream on the API socket: the frame decoder (fed in two chunks, split where the
//! input says) and the request parser must never panic; every accepted request re-serialises
//! to something that parses to the same request.
#![no_main]

use bytes::BytesMut;
use dockroute_api::{parse_request, MAX_FRAME};
use dockroute_api::codec::{Frame, FrameCodec};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b) % (data.len() + 1));
    let mut codec = FrameCodec::new(MAX_FRAME);
    let mut buf = BytesMut::new();
    for chunk in [&data[..split], &data[split..]] {
        buf.extend_from_slice(chunk);
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            if let Frame::Data(bytes) = frame {
                check(&bytes);
            }
        }
    }
    // The raw input as one frame body, too: most interesting inputs are JSON.
    check(data);
});

fn check(bytes: &[u8]) {
    if let Ok(req) = parse_request(bytes) {
        let text = serde_json::to_vec(&req).expect("a parsed request serialises");
        assert_eq!(parse_request(&text).ok(), Some(req));
    }
}
