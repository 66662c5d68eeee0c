//! Any record of our `/etc/resolver` files (read after a crash, or by `uninstall`) and any state
//! of the zones' files: each zone the record names is a hostname, so its file is directly in
//! the resolver directory (never a path elsewhere); the record written for those zones reads
//! back the same; and the plan never writes or removes a file someone else wrote, removes only
//! zones the record names that are no longer wanted, and owns exactly the wanted zones that are
//! not someone else's.
//!
//! Input: the record's text, a NUL, then one zone per line as `<w|-><o|s|f|m> ZONE`: wanted or
//! not, and its file ours and current, ours and stale, foreign, or missing.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

use dockroute_api::dns_name::name_problem;
use dockroute_helper::dns::resolver::files::{content, found_in, parse_record, plan, record_text, Found, MARKER};
use libfuzzer_sys::fuzz_target;

const DIR: &str = "/etc/resolver";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (record, zones) = text.split_once('\0').unwrap_or((text, ""));
    let recorded = parse_record(record);
    for z in &recorded {
        assert_eq!(name_problem(z, false), None, "{z:?} recorded");
        let path = Path::new(DIR).join(z);
        assert_eq!(path.parent(), Some(Path::new(DIR)), "{z:?} is a path");
        assert!(path.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_))), "{z:?}");
    }
    assert_eq!(parse_record(&record_text(Path::new(DIR), &recorded)), recorded);

    let current = content("192.168.251.1".parse().expect("an address"));
    let mut wanted = BTreeSet::new();
    let mut found = BTreeMap::new();
    for line in zones.lines() {
        let (Some(want), Some(state), Some(zone)) = (line.get(..1), line.get(1..2), line.get(3..)) else { continue };
        let file = match state {
            "o" => found_in(current.clone()),
            "s" => found_in(format!("{MARKER}\nnameserver 192.168.252.1\n")),
            "f" => found_in("nameserver 10.0.0.53\n".to_string()),
            _ => Found::Missing,
        };
        found.insert(zone.to_string(), file);
        if want == "w" {
            wanted.insert(zone.to_string());
        }
    }
    let p = plan(&wanted, &current, &found, &recorded);
    let state = |z: &String| found.get(z).cloned().unwrap_or(Found::Missing);
    for z in &p.write {
        assert!(wanted.contains(z) && state(z) != Found::Foreign && state(z) != Found::Ours(current.clone()), "{z}");
    }
    for z in &p.remove {
        assert!(recorded.contains(z) && !wanted.contains(z), "{z} removed");
        assert!(matches!(state(z), Found::Ours(_)), "{z} removed but not ours");
    }
    let foreign: BTreeSet<String> = wanted.iter().filter(|z| state(z) == Found::Foreign).cloned().collect();
    assert_eq!(p.conflicts.iter().cloned().collect::<BTreeSet<_>>(), foreign);
    assert_eq!(p.owned, wanted.difference(&foreign).cloned().collect());
});
