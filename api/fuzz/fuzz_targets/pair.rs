//! Any text as a seed pair (`A+B` adds, `A-B` removes; the config file, `--iptables`, the guest's
//! rules file): what parses is two addresses of one family, prints as `A+B` and parses back to
//! the same pair, in either form and through serde; `FromStr` takes exactly the `A+B` form.
//! And any two addresses built from the bytes print and parse back unchanged.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dockroute_api::pair::{Pair, PairOp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_text(text);
    }
    if let Some(pair) = pair_of_bytes(data) {
        check_round_trip(pair);
    }
});

fn check_text(text: &str) {
    match Pair::parse_with_op(text) {
        Ok((pair, op)) => {
            assert_eq!(pair.a.is_ipv4(), pair.b.is_ipv4(), "{text:?}: mixed families accepted");
            assert_eq!(text.parse::<Pair>().is_ok(), op == PairOp::Insert, "{text:?}: FromStr disagrees");
            check_round_trip(pair);
        }
        Err(e) => {
            assert!(!e.is_empty());
            assert!(text.parse::<Pair>().is_err(), "{text:?}: FromStr accepts what parse_with_op refuses");
        }
    }
}

fn check_round_trip(pair: Pair) {
    let shown = pair.to_string();
    assert_eq!(Pair::parse_with_op(&shown), Ok((pair, PairOp::Insert)), "{shown}");
    assert_eq!(shown.parse::<Pair>(), Ok(pair), "{shown}");
    let removed = format!("{}-{}", pair.a, pair.b);
    assert_eq!(Pair::parse_with_op(&removed), Ok((pair, PairOp::Remove)), "{removed}");
    let json = serde_json::to_string(&pair).expect("a pair serialises");
    assert_eq!(serde_json::from_str::<Pair>(&json).ok(), Some(pair), "{json}");
}

/// Two IPv4 addresses from 8 bytes, or two IPv6 ones from 32 (the first byte's low bit picks).
fn pair_of_bytes(data: &[u8]) -> Option<Pair> {
    let (&pick, rest) = data.split_first()?;
    if pick & 1 == 0 {
        let b: [u8; 8] = rest.get(..8)?.try_into().ok()?;
        let ip = |o: &[u8]| IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3]));
        Some(Pair { a: ip(&b[..4]), b: ip(&b[4..]) })
    } else {
        let b: [u8; 32] = rest.get(..32)?.try_into().ok()?;
        let ip = |o: &[u8]| IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(o).expect("16 bytes")));
        Some(Pair { a: ip(&b[..16]), b: ip(&b[16..]) })
    }
}
