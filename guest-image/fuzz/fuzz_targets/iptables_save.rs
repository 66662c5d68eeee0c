//! Any text as `iptables-save`/`ip6tables-save` output (either backend; Docker, other tools and
//! anyone with root in the VM shape it): reading never panics and is a normal form (the
//! ruleset, printed back in the save format, reads the same); and the restore scripts decided
//! from it touch only what is ours: teardown deletes only rules that jump to our chains and
//! then our chains, the sync script creates and fills only our chains and moves only our
//! jumps, in their parent chains. The backend choice takes the text as a backend's.
#![no_main]

use std::fmt::Write;

use dockroute_guest::firewall::fuzz_api::{
    choose, plan, sync_script, tables_to_drop, targets, teardown_script, Probe, Ruleset, OUR_CHAINS,
};
use dockroute_guest::firewall::{Family, FirewallSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let rs = Ruleset::parse(text);
    for t in &rs.tables {
        assert!(!t.name.contains('\n'));
        for c in t.chains.iter().chain(t.rules.iter().map(|(c, _)| c)) {
            assert!(!c.is_empty() && !c.contains(char::is_whitespace), "chain {c:?}");
        }
        assert!(t.rules.iter().all(|(_, r)| !r.contains('\n') && r.trim() == r), "{t:?}");
    }
    let printed = print(&rs);
    assert_eq!(Ruleset::parse(&printed), rs, "printed as {printed}");

    check_teardown(&rs, &teardown_script(&rs));
    let spec = FirewallSpec {
        tun: "dockroute0".into(),
        link_v4: "198.18.7.1/24".parse().expect("a net"),
        link_v6: Some("2001:2:7::1/64".parse().expect("a net")),
        mac_v4: "198.18.7.1".parse().expect("an address"),
        mac_v6: Some("2001:2:7::1".parse().expect("an address")),
        internal: vec!["172.19.0.0/16".parse().expect("a net")],
        pairs: vec![("172.17.0.0/16".parse().expect("a net"), "172.18.0.0/16".parse().expect("a net"))],
        exposed: vec!["172.18.0.0/16".parse().expect("a net")],
    };
    for p in plan(&spec).expect("the spec plans") {
        check_sync(
            &rs,
            &sync_script(&rs, &p),
            &p.chains().map(|(s, _)| (s.table, s.chain, s.parents)).collect::<Vec<_>>(),
        );
    }
    let before: Vec<String> = rs.tables.iter().take(1).map(|t| t.name.clone()).collect();
    for name in tables_to_drop(&rs, &before) {
        assert!(!before.iter().any(|b| b == name));
        assert!(rs.tables.iter().any(|t| t.name == name && t.rules.is_empty()), "{name} dropped");
    }
    let legacy = Probe { legacy_save: Some(text.to_string()), nft_save: None, version: None };
    assert!(choose(Family::V4, &legacy).is_ok(), "a save ran: a backend is chosen");
});

/// The ruleset in `*-save`'s layout: per table, its chain declarations, then its rules.
fn print(rs: &Ruleset) -> String {
    let mut out = String::new();
    for t in &rs.tables {
        let _ = writeln!(out, "*{}", t.name);
        t.chains.iter().for_each(|c| {
            let _ = writeln!(out, ":{c} - [0:0]");
        });
        t.rules.iter().for_each(|(c, r)| {
            let _ = writeln!(out, "-A {c} {r}");
        });
        out.push_str("COMMIT\n");
    }
    out
}

/// `*table` … `COMMIT` blocks of operations, each block a table of `rs`.
fn blocks(script: &str) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in script.lines() {
        if let Some(t) = line.strip_prefix('*') {
            out.push((t, Vec::new()));
        } else if line != "COMMIT" {
            out.last_mut().unwrap_or_else(|| panic!("{line:?} outside a table")).1.push(line);
        }
    }
    out
}

fn ours(chain: &str) -> bool {
    OUR_CHAINS.contains(&chain)
}

fn check_teardown(rs: &Ruleset, script: &str) {
    for (table, ops) in blocks(script) {
        // A table printed twice is read twice: any of them holds what the script names.
        let same_name: Vec<_> = rs.tables.iter().filter(|t| t.name == table).collect();
        assert!(!same_name.is_empty(), "no table {table:?}");
        for op in ops {
            if let Some(rest) = op.strip_prefix("-D ") {
                let (chain, rule) = rest.split_once(' ').unwrap_or((rest, ""));
                assert!(!ours(chain) && OUR_CHAINS.iter().any(|c| targets(rule, c)), "teardown: {op:?}");
                let there = same_name.iter().any(|t| t.rules.iter().any(|(c, r)| c == chain && r == rule));
                assert!(there, "teardown deletes a rule not there: {op:?}");
            } else {
                let chain =
                    op.strip_prefix("-F ").or_else(|| op.strip_prefix("-X ")).unwrap_or_else(|| panic!("{op:?}"));
                assert!(ours(chain) && same_name.iter().any(|t| t.has_chain(chain)), "teardown: {op:?}");
            }
        }
    }
}

fn check_sync(rs: &Ruleset, script: &str, slots: &[(&str, &str, &[&str])]) {
    for (table, ops) in blocks(script) {
        let t = rs.table(table);
        for op in ops {
            let words: Vec<&str> = op.splitn(3, ' ').collect();
            let slot = |chain: &str| slots.iter().find(|(tb, c, _)| *tb == table && *c == chain);
            match words.as_slice() {
                [decl, "-", "[0:0]"] if decl.starts_with(':') => {
                    assert!(slot(&decl[1..]).is_some(), "sync creates {decl} in {table}")
                }
                ["-A", chain, _] => assert!(slot(chain).is_some(), "sync fills {chain} in {table}"),
                ["-D", parent, jump] | ["-I", parent, jump] => {
                    let jump = if words[0] == "-I" { jump.strip_prefix("1 ").expect("-I P 1") } else { jump };
                    let chain = jump.strip_prefix("-j ").expect("a jump");
                    let (_, _, parents) = slot(chain).unwrap_or_else(|| panic!("sync jumps to {chain} in {table}"));
                    assert!(parents.contains(parent), "{op:?}: {parent} is no parent of {chain}");
                    if words[0] == "-D" {
                        let had = t.is_some_and(|t| t.rules.iter().any(|(c, r)| c == parent && r == jump));
                        assert!(had, "sync deletes a rule not there: {op:?}");
                    }
                }
                _ => panic!("sync: {op:?}"),
            }
        }
    }
}
