//! Any `set_names` argument (the API's, from any allowed local caller) through the helper's
//! check: what it accepts is only hostnames (a leading `*.` for absolute names only), lower
//! case, each fitting in 253 characters with the suffix, with at most 64 sorted, unique
//! addresses (all spellings of a name together), at most 4096 names and 64 zones outside the
//! suffix, none inside another (only the suffix may lie inside a claimed zone); every name given
//! is in it; and the DNS table built from it answers each name with exactly its addresses, and
//! every name in the suffix from the suffix's own zone. HTTPS ports (`with_ports`) are kept only
//! for names sent, never 0, and the front's route for such a name uses its port; the local CA
//! would sign (`issuable`) only names strictly below the suffix or a private-use zone.
//!
//! Input: the first line is the suffix (used when the config would accept it, else `docker`),
//! then one name per line: `n NAME ADDR…` (relative to the suffix) or `d NAME ADDR…` (absolute),
//! or a port: `p NAME PORT` (relative) or `q NAME PORT` (absolute).
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use dockroute_api::dns_name::{name_problem, normalise, MAX_NAME_LEN};
use dockroute_api::dns_name::PRIVATE_USE;
use dockroute_helper::dns::names::{is_below, validate, with_ports, MAX_ADDRS_PER_NAME, MAX_NAMES, MAX_ZONES};
use dockroute_helper::https::ca::issuable;
use dockroute_helper::https::route::{Routes, Target};
use dockroute_helper::dns::table::{Lookup, NameTable};
use libfuzzer_sys::fuzz_target;

type Names = BTreeMap<String, Vec<IpAddr>>;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.lines();
    let suffix = lines.next().unwrap_or_default();
    let suffix = match name_problem(suffix.trim_end_matches('.'), false) {
        None => normalise(suffix),
        Some(_) => "docker".to_string(),
    };
    let (mut names, mut domains) = (Names::new(), Names::new());
    let (mut name_ports, mut domain_ports) = (BTreeMap::<String, u16>::new(), BTreeMap::<String, u16>::new());
    for line in lines {
        let mut words = line.split(' ');
        let into = match words.next() {
            Some("n") => &mut names,
            Some("d") => &mut domains,
            Some(kind @ ("p" | "q")) => {
                let (Some(name), Some(Ok(port))) = (words.next(), words.next().map(str::parse::<u16>)) else { continue };
                let ports = if kind == "p" { &mut name_ports } else { &mut domain_ports };
                ports.insert(name.to_string(), port);
                continue;
            }
            _ => continue,
        };
        let Some(name) = words.next() else { continue };
        into.entry(name.to_string()).or_default().extend(words.filter_map(|w| w.parse::<IpAddr>().ok()));
    }
    for name in names.keys().chain(domains.keys()) {
        if let Ok(signed) = issuable(name, &suffix) {
            let strictly = |zone: &str| signed != zone && is_below(&signed, zone);
            assert!(strictly(&suffix) || PRIVATE_USE.iter().any(|z| strictly(z)), "the CA would sign {signed:?}");
        }
    }
    let Ok(spec) = validate(&names, &domains, &suffix) else { return };
    if let Ok(ported) = with_ports(spec.clone(), &name_ports, &domain_ports, &suffix) {
        let routes = Routes::new(&suffix, &ported);
        for (full, port) in &ported.ports {
            assert_ne!(*port, 0, "{full}");
            let sent = spec.names.keys().map(|n| format!("{n}.{suffix}")).chain(spec.domains.keys().cloned());
            assert!(sent.clone().any(|n| n == *full), "a port for {full}, which was not sent");
            if !full.starts_with("*.") {
                if let Target::Container(at) = routes.target(full) {
                    assert_eq!(at.port(), *port, "{full}");
                }
            }
        }
    }

    for (relative, (given, checked)) in [(true, (&names, &spec.names)), (false, (&domains, &spec.domains))] {
        for (name, addrs) in checked {
            assert_eq!(name_problem(name, !relative), None, "{name:?} accepted");
            assert_eq!(*name, normalise(name), "{name:?} not in its compared form");
            let full = if relative { format!("{name}.{suffix}") } else { name.clone() };
            assert!(full.len() <= MAX_NAME_LEN, "{full:?} accepted");
            assert!(addrs.windows(2).all(|w| w[0] < w[1]), "{name:?}: {addrs:?} not sorted and unique");
            assert!(addrs.len() <= MAX_ADDRS_PER_NAME, "{name:?} accepted with {} addresses", addrs.len());
        }
        for (name, addrs) in given {
            let have = checked.get(&normalise(name)).unwrap_or_else(|| panic!("{name:?} accepted and lost"));
            assert!(addrs.iter().all(|a| have.contains(a)), "{name:?} lost addresses");
        }
    }
    assert!(spec.len() <= MAX_NAMES);
    let zones = spec.zones(&suffix);
    assert!(zones.len() - 1 <= MAX_ZONES, "{} zones", zones.len());
    for z in zones.iter().filter(|z| **z != suffix) {
        assert!(!zones.iter().any(|outer| outer != z && is_below(z, outer)), "zone {z} inside another");
    }

    // Every full name, with the addresses of all its entries (a relative name and an absolute
    // one may be the same name).
    let mut want: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
    let relative = spec.names.iter().map(|(n, a)| (format!("{n}.{suffix}"), a));
    for (full, addrs) in relative.chain(spec.domains.iter().map(|(n, a)| (n.clone(), a))) {
        want.entry(full).or_default().extend(addrs.iter().copied());
    }
    let table = NameTable::new(&suffix, &spec, 1);
    for (full, addrs) in &want {
        match table.lookup(&labels(full)) {
            Lookup::Found { addrs: found, zone } => {
                let found: BTreeSet<IpAddr> =
                    found.v4.iter().map(|a| IpAddr::V4(*a)).chain(found.v6.iter().map(|a| IpAddr::V6(*a))).collect();
                assert_eq!(&found, addrs, "{full}");
                assert!(!is_below(full, &suffix) || zone == suffix, "{full} answered from {zone}");
            }
            other => panic!("{full} looked up as {other:?}"),
        }
    }
    // The suffix's apex and a name in it that nobody claimed are the suffix's, whatever zone a
    // label domain made around it.
    for probe in [suffix.clone(), format!("nobody-claims-this.{suffix}")] {
        match table.lookup(&labels(&probe)) {
            Lookup::Found { zone, .. } | Lookup::Empty { zone, .. } | Lookup::NxDomain { zone } => {
                assert_eq!(zone, suffix, "{probe}")
            }
            Lookup::NotOurs => panic!("{probe} is not ours"),
        }
    }
});

fn labels(name: &str) -> Vec<String> {
    name.split('.').map(str::to_string).collect()
}
