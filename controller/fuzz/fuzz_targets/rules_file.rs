//! Any text as the guest's rules file (the controller copies it into the guest container; the
//! guest re-reads it): the guest's reader never panics, an error names a line of the text, and
//! what it reads (internal networks as networks, pairs of one family, exposed routes) the
//! controller's writer writes back into a file that reads as the same rules (the internal
//! networks and the exposed routes once each, in order).
#![no_main]

use std::collections::BTreeSet;

use dockroute_api::share::{ExposedBy, ExposedRoute};
use dockroute_controller::discovery::{guest_rules, BridgeNetwork};
use dockroute_guest::rules::parse;
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let rules = match parse(text) {
        Ok(r) => r,
        Err(e) => {
            let n: usize = e
                .strip_prefix("line ")
                .and_then(|rest| rest.split_once(':'))
                .and_then(|(n, _)| n.parse().ok())
                .unwrap_or_else(|| panic!("{e:?} names no line"));
            assert!(n >= 1 && n <= text.lines().count(), "{e:?} in {} lines", text.lines().count());
            return;
        }
    };
    assert!(rules.internal.iter().all(|n| *n == n.trunc()), "{:?}", rules.internal);
    assert!(rules.pairs.iter().all(|p| p.a.is_ipv4() == p.b.is_ipv4()), "{:?}", rules.pairs);

    let networks: Vec<BridgeNetwork> = rules
        .internal
        .iter()
        .enumerate()
        .map(|(i, net)| BridgeNetwork {
            id: format!("id-{i}"),
            name: format!("n{i}"),
            subnets: vec![*net],
            gateways: Vec::new(),
            internal: true,
        })
        .collect();
    let exposed: Vec<ExposedRoute> =
        rules.exposed.iter().map(|net| ExposedRoute { net: *net, source: ExposedBy::Config, network: None }).collect();
    let written = guest_rules(&networks, &rules.pairs, &exposed);
    let back =
        parse(&written).unwrap_or_else(|e| panic!("the controller wrote what the guest refuses: {e}\n{written}"));
    let once: BTreeSet<IpNet> = rules.internal.iter().copied().collect();
    assert_eq!(back.internal, once.into_iter().collect::<Vec<_>>(), "{written}");
    assert_eq!(back.pairs, rules.pairs, "{written}");
    let exposed_once: BTreeSet<IpNet> = rules.exposed.iter().copied().collect();
    assert_eq!(back.exposed, exposed_once.into_iter().collect::<Vec<_>>(), "{written}");
});
