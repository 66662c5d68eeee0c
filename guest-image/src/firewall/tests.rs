//! The driver against a fake runner that answers with recorded outputs: which commands it runs,
//! with which scripts, and how it retries.

use std::collections::{HashMap, VecDeque};

use super::fixtures::*;
use super::*;

/// Answers `*-save` and `--version` from `outputs` (a program not there "is not installed"),
/// `*-restore` from `restores` (Ok once they run out), and records every call.
#[derive(Default)]
struct Fake {
    outputs: HashMap<String, String>,
    restores: VecDeque<Result<String, String>>,
    calls: Vec<(String, Vec<String>, Option<String>)>,
}

impl Fake {
    fn with(outputs: &[(&str, &str)]) -> Fake {
        Fake { outputs: outputs.iter().map(|(p, o)| (p.to_string(), o.to_string())).collect(), ..Fake::default() }
    }

    /// (program, stdin) of every restore run.
    fn restores_run(&self) -> Vec<(&str, &str)> {
        self.calls.iter().filter_map(|(p, _, i)| Some((p.as_str(), i.as_deref()?))).collect()
    }

    fn ran(&self, line: &str) -> bool {
        self.calls
            .iter()
            .any(|(p, a, _)| std::iter::once(p.clone()).chain(a.iter().cloned()).collect::<Vec<_>>().join(" ") == line)
    }
}

impl Runner for Fake {
    fn run(&mut self, program: &str, args: &[&str]) -> Result<String, String> {
        self.calls.push((program.into(), args.iter().map(|a| a.to_string()).collect(), None));
        if program == "nft" {
            return Ok(String::new());
        }
        self.outputs.get(program).cloned().ok_or_else(|| format!("cannot run `{program}`: not found"))
    }

    fn run_input(&mut self, program: &str, args: &[&str], input: &str) -> Result<String, String> {
        assert_eq!(args, RESTORE_ARGS);
        self.calls.push((program.into(), args.iter().map(|a| a.to_string()).collect(), Some(input.into())));
        self.restores.pop_front().unwrap_or(Ok(String::new()))
    }
}

fn spec_v6() -> FirewallSpec {
    FirewallSpec { link_v6: Some("2001:2:7::/64".parse().unwrap()), ..spec() }
}

#[test]
fn commands_run_bounded_and_inside_the_namespace_when_one_is_given() {
    let plain = SystemRunner::default().command("iptables-nft-restore", &RESTORE_ARGS);
    assert_eq!(plain.line(), "iptables-nft-restore --wait=5 --noflush");
    let inside = SystemRunner { netns: Some("dfw-x".into()) }.command("ip6tables-legacy-save", &[]);
    assert_eq!(inside.line(), "ip netns exec dfw-x ip6tables-legacy-save");
}

#[test]
fn detect_only_reads_and_picks_dockers_backend_per_family() {
    // Engine 20.10 on legacy for IPv4; no ip6tables at all.
    let fake = Fake::with(&[
        ("iptables-legacy-save", ENGINE_20_10_LEGACY),
        ("iptables-nft-save", NFT_SIDE_OF_LEGACY),
        ("iptables", VERSION_NFT),
    ]);
    let fw = Iptables::detect(fake).unwrap();
    assert_eq!((fw.backend(Family::V4), fw.backend(Family::V6)), (Backend::Legacy, Backend::Nft));
    assert!(fw.runner.restores_run().is_empty());
    assert!(
        fw.runner.calls.iter().all(|(p, a, _)| p.ends_with("-save") || a == &["--version"]),
        "{:?}",
        fw.runner.calls
    );
    assert!(Iptables::detect(Fake::default()).is_err(), "no iptables at all");
}

#[test]
fn apply_restores_the_planned_script_and_a_second_apply_finds_nothing_to_do() {
    let mut fw =
        Iptables::with_backends(Fake::with(&[("iptables-nft-save", ENGINE_28_NFT)]), Backend::Nft, Backend::Nft);
    fw.apply(&spec()).unwrap();
    let expected = script::sync_script(&Ruleset::parse(ENGINE_28_NFT), &plan_v4());
    assert_eq!(fw.runner.restores_run(), [("iptables-nft-restore", expected.as_str())]);
    fw.runner.outputs.insert("iptables-nft-save".into(), ENGINE_28_NFT_APPLIED.into());
    fw.apply(&spec()).unwrap();
    assert!(!fw.ensure().unwrap(), "nothing to repair");
    assert_eq!(fw.runner.restores_run().len(), 1, "no restore when the state is as planned");
}

#[test]
fn a_failed_restore_is_retried_once_on_a_fresh_read() {
    let mut fw =
        Iptables::with_backends(Fake::with(&[("iptables-nft-save", ENGINE_28_NFT)]), Backend::Nft, Backend::Nft);
    fw.runner.restores.push_back(Err("iptables-nft-restore: line 9 failed".into()));
    fw.apply(&spec()).unwrap();
    assert_eq!(fw.runner.restores_run().len(), 2);
    let saves = fw.runner.calls.iter().filter(|(p, _, _)| p == "iptables-nft-save").count();
    assert_eq!(saves, 1 + 2, "one at start (nft tables present), then one read per try");

    // Failing twice: the last error, and no third try.
    let mut fw =
        Iptables::with_backends(Fake::with(&[("iptables-nft-save", ENGINE_28_NFT)]), Backend::Nft, Backend::Nft);
    fw.runner.restores.extend([Err("first".to_string()), Err("second".to_string())]);
    assert_eq!(fw.apply(&spec()), Err("second".to_string()));
    assert_eq!(fw.runner.restores_run().len(), 2);
    // A save that fails is an error before any restore.
    let mut fw = Iptables::with_backends(Fake::default(), Backend::Legacy, Backend::Legacy);
    assert!(fw.apply(&spec()).unwrap_err().contains("iptables-legacy-save"));
    assert!(fw.runner.restores_run().is_empty());
}

#[test]
fn a_bad_spec_changes_nothing() {
    let mut fw =
        Iptables::with_backends(Fake::with(&[("iptables-nft-save", ENGINE_28_NFT)]), Backend::Nft, Backend::Nft);
    let e = fw.apply(&FirewallSpec { tun: "dock route0; rm".into(), ..spec() }).unwrap_err();
    assert_eq!(e, "invalid interface name \"dock route0; rm\"");
    assert!(fw.runner.restores_run().is_empty());
}

#[test]
fn a_family_the_spec_no_longer_uses_is_torn_down() {
    let v6_applied = "*filter\n:FORWARD ACCEPT [0:0]\n:DOCKROUTE-FWD - [0:0]\n-A FORWARD -j DOCKROUTE-FWD\n\
                      -A DOCKROUTE-FWD -j RETURN\nCOMMIT\n";
    let fake = Fake::with(&[("iptables-nft-save", ENGINE_28_NFT_APPLIED), ("ip6tables-nft-save", v6_applied)]);
    let mut fw = Iptables::with_backends(fake, Backend::Nft, Backend::Nft);
    fw.apply(&spec_v6()).unwrap();
    assert_eq!(fw.runner.restores_run().len(), 1, "v6 chains brought to the plan, v4 already there");
    assert_eq!(fw.runner.restores_run()[0].0, "ip6tables-nft-restore");
    fw.apply(&spec()).unwrap();
    assert_eq!(
        fw.runner.restores_run()[1],
        ("ip6tables-nft-restore", "*filter\n-D FORWARD -j DOCKROUTE-FWD\n-F DOCKROUTE-FWD\n-X DOCKROUTE-FWD\nCOMMIT\n")
    );
    assert_eq!(fw.runner.restores_run().len(), 2);
}

#[test]
fn teardown_cleans_every_backend_that_runs_and_drops_only_the_nft_tables_we_created() {
    // Before: nft had only Docker's filter table; legacy holds a leftover chain of ours.
    let fake = Fake::with(&[
        ("iptables-nft-save", NFT_NO_DOCKER),
        ("iptables-legacy-save", "*raw\n:PREROUTING ACCEPT [0:0]\n:DOCKROUTE-PRE - [0:0]\nCOMMIT\n"),
    ]);
    let mut fw = Iptables::with_backends(fake, Backend::Nft, Backend::Nft);
    // After our teardown script ran, nft holds the raw and nat tables our apply created, empty.
    let emptied =
        format!("{NFT_NO_DOCKER}*raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n");
    fw.runner.outputs.insert("iptables-nft-save".into(), emptied);
    fw.runner.restores.push_back(Err("legacy: resource busy".into()));
    fw.runner.restores.push_back(Err("legacy: resource busy".into()));
    let e = fw.teardown().unwrap_err();
    assert_eq!(e, "legacy: resource busy", "the failing backend is reported");
    assert!(fw.runner.ran("nft delete table ip raw") && fw.runner.ran("nft delete table ip nat"));
    assert!(!fw.runner.ran("nft delete table ip filter"), "it was there before us");
    assert!(!fw.runner.calls.iter().any(|(p, _, _)| p.starts_with("ip6tables-") && p.ends_with("-restore")));
    // Once the leftover is gone, teardown succeeds and is quiet.
    fw.runner.outputs.insert("iptables-legacy-save".into(), String::new());
    fw.teardown().unwrap();
    assert_eq!(fw.runner.restores_run().len(), 2);
}
