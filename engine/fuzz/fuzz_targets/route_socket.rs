//! Any bytes as macOS routing-socket messages (the helper's route-change watch): reading never
//! panics; a message read as a route, interface or address change is of our version, its type
//! byte, and at least its header long (within its own msglen); and walking a buffer is the
//! same as walking its messages one by one: with the first message's msglen set to its length,
//! `any_matters(first ++ rest) == matters(first) || any_matters(rest)`. Input: one byte says
//! where the first message ends.
#![no_main]

use dockroute_engine::platform::fuzz_api::{any_matters, matters, parse_route_message, Message, RTM_VERSION};
use libfuzzer_sys::fuzz_target;

/// rt_msghdr, if_msghdr, ifa_msghdr (route_msg.rs).
const HEADER_LENS: [usize; 3] = [92, 112, 20];

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else { return };
    check_one(bytes);
    let _ = any_matters(bytes);

    let at = (usize::from(cut) * 2).min(bytes.len());
    let (first, rest) = bytes.split_at(at);
    if first.len() < 4 {
        return;
    }
    let mut first = first.to_vec();
    let len = u16::try_from(first.len()).expect("at most 510 bytes");
    first[..2].copy_from_slice(&len.to_ne_bytes());
    let walked = any_matters(&[first.as_slice(), rest].concat());
    assert_eq!(walked, matters(&parse_route_message(&first)) || any_matters(rest));
});

fn check_one(msg: &[u8]) {
    let m = parse_route_message(msg);
    if msg.len() < 4 {
        assert_eq!(m, Message::Unreadable);
        return;
    }
    let own = usize::from(u16::from_ne_bytes([msg[0], msg[1]])).min(msg.len());
    let kind = msg[3];
    match m {
        Message::Route { kind: k, .. } | Message::Address { kind: k, .. } => {
            assert_eq!(k, kind);
            assert!(msg[2] == RTM_VERSION && own >= HEADER_LENS[2], "{m:?} from {own} bytes");
        }
        Message::Interface { .. } => assert!(msg[2] == RTM_VERSION && own >= HEADER_LENS[1], "{m:?}"),
        Message::Other { kind: k } => assert_eq!(k, kind),
        Message::Unreadable => {}
    }
    if let Message::Route { .. } = m {
        assert!(own >= HEADER_LENS[0], "a route message of {own} bytes");
    }
}
