//! Any text as the share's state file (`<config>.share.json`): parsing never panics; what
//! parses has a usable private key, is written back as text that parses to the same state less
//! the legacy `exposed` list (and the same text again), never shows our private key in its
//! Debug form; and the roster built from its teammates lets a teammate connect only from an
//! address of the link subnet that is not reserved and no one else's.
#![no_main]

use std::collections::BTreeSet;

use dockroute_helper::link::Link;
use dockroute_helper::share::roster::roster;
use dockroute_helper::share::state::{parse, parse_key, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(state) = parse(text) else { return };
    state.key_pair().expect("parse checked the key");
    let written = render(&state).expect("a state serialises");
    let back = parse(&written).unwrap_or_else(|e| panic!("{written} does not parse back: {e}"));
    // An earlier version's `exposed` subnets are read (to be reported) and never written back.
    let mut expected = state.clone();
    expected.legacy_exposed.clear();
    assert!(back == expected, "{written}");
    assert_eq!(render(&back).ok().as_deref(), Some(written.as_str()));
    let shown_elsewhere = state
        .teammates
        .iter()
        .any(|t| t.name.contains(&state.private_key) || t.public_key.contains(&state.private_key));
    if !shown_elsewhere {
        assert!(!format!("{state:?}").contains(&state.private_key), "Debug shows our key");
    }

    let link = Link { host: "198.18.5.1/24".parse().expect("a net"), guest: "198.18.5.2".parse().expect("an address") };
    let mut taken = BTreeSet::new();
    for m in roster(&[], &state.teammates, link).iter().filter(|m| m.active()) {
        let ip = m.address.expect("an active member has an address");
        assert_eq!(link.refuses(ip), None, "{} active at {ip}", m.name);
        assert!(taken.insert(ip), "{ip} given to two active teammates");
        let _ = parse_key(m.public_key.as_deref().expect("an active member has a key"));
    }
});
