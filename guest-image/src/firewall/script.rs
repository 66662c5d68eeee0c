//! From the current state (one `*-save`) and a plan to the `*-restore --noflush` script that
//! gets there: one transaction per table, so a chain is never seen half-filled. Only what
//! differs is written, so a state already right gives an empty script and counters survive.

use super::plan::{Plan, OUR_CHAINS};
use super::save::{targets, Ruleset};

/// Brings our chains and jumps to `plan`; empty if already there. Per chain of ours:
/// - created if missing; its contents replaced only when they differ from the plan;
/// - exactly one jump to it, at position 1 of the first parent that exists (DOCKER-USER, else
///   FORWARD; filter OUTPUT; raw PREROUTING; nat POSTROUTING), and none from the other parents
///   (a chain only ours jump to has none).
///
/// One transaction per table, its chains in `SLOTS` order (a chain is created before the chain
/// that jumps to it).
pub fn sync_script(now: &Ruleset, plan: &Plan) -> String {
    let mut tables: Vec<(&str, Vec<String>)> = Vec::new();
    for (slot, want) in plan.chains() {
        let chain = slot.chain;
        let t = now.table(slot.table);
        let mut ops = Vec::new();
        let have: Vec<&str> = t.map(|t| t.rules_of(chain).collect()).unwrap_or_default();
        if !t.is_some_and(|t| t.has_chain(chain)) || have.as_slice() != want {
            ops.push(format!(":{chain} - [0:0]")); // in --noflush mode: create, or flush
            ops.extend(want.iter().map(|r| format!("-A {chain} {r}")));
        }
        let parent = slot.parent(|p| t.is_some_and(|t| t.has_chain(p)));
        let jump = format!("-j {chain}");
        for &p in slot.parents {
            let rules: Vec<&str> = t.map(|t| t.rules_of(p).collect()).unwrap_or_default();
            let at: Vec<usize> = (0..rules.len()).filter(|&i| rules[i] == jump).collect();
            let ok = if Some(p) == parent { at == [0] } else { at.is_empty() };
            if !ok {
                ops.extend(at.iter().map(|_| format!("-D {p} {jump}")));
                if Some(p) == parent {
                    ops.push(format!("-I {p} 1 {jump}"));
                }
            }
        }
        match tables.iter_mut().find(|(name, _)| *name == slot.table) {
            Some((_, all)) => all.extend(ops),
            None => tables.push((slot.table, ops)),
        }
    }
    let mut script = String::new();
    for (table, ops) in tables.into_iter().filter(|(_, ops)| !ops.is_empty()) {
        script.push_str(&format!("*{table}\n{}\nCOMMIT\n", ops.join("\n")));
    }
    script
}

/// Deletes every rule that jumps (or goes) to one of our chains, wherever it is, then our
/// chains; nothing else. Empty if none of ours is there.
pub fn teardown_script(now: &Ruleset) -> String {
    let mut script = String::new();
    for t in &now.tables {
        let mut ops = Vec::new();
        for (chain, rule) in &t.rules {
            if !OUR_CHAINS.contains(&chain.as_str()) && OUR_CHAINS.iter().any(|c| targets(rule, c)) {
                ops.push(format!("-D {chain} {rule}"));
            }
        }
        let ours: Vec<&str> = OUR_CHAINS.into_iter().filter(|c| t.has_chain(c)).collect();
        ops.extend(ours.iter().map(|c| format!("-F {c}")));
        ops.extend(ours.iter().map(|c| format!("-X {c}")));
        if !ops.is_empty() {
            script.push_str(&format!("*{}\n{}\nCOMMIT\n", t.name, ops.join("\n")));
        }
    }
    script
}

/// The nft tables to delete after teardown. Adding a rule to a missing nft table creates it
/// (with its base chains); a table that holds no rule now and was not there before we touched
/// anything is ours, and goes, so teardown leaves the ruleset as it found it. (Legacy tables
/// cannot be removed; they hold nothing then.)
pub fn tables_to_drop<'a>(now: &'a Ruleset, existed_before: &[String]) -> Vec<&'a str> {
    now.tables
        .iter()
        .filter(|t| t.rules.is_empty() && !existed_before.contains(&t.name))
        .map(|t| t.name.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::plan::{CHAIN_FWD, CHAIN_MATE, CHAIN_OUT, CHAIN_POST, CHAIN_PRE};
    use super::*;

    fn rs(text: &str) -> Ruleset {
        Ruleset::parse(text)
    }

    /// The applied Engine 28 state with `edit` made to its text (what someone else did).
    fn applied_with(edit: impl Fn(&str) -> String) -> Ruleset {
        rs(&edit(ENGINE_28_NFT_APPLIED))
    }

    #[test]
    fn engine_28_without_our_chains_gets_all_five_with_jumps_ahead_of_dockers_drops() {
        let script = sync_script(&rs(ENGINE_28_NFT), &plan_v4());
        assert_eq!(
            script,
            "*filter\n\
             :DOCKROUTE-FWD - [0:0]\n\
             -A DOCKROUTE-FWD -i dockroute0 -j ACCEPT\n\
             -A DOCKROUTE-FWD -d 198.18.7.1/32 -o dockroute0 -j ACCEPT\n\
             -A DOCKROUTE-FWD -o dockroute0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
             -A DOCKROUTE-FWD -o dockroute0 -j DROP\n\
             -A DOCKROUTE-FWD -s 172.17.0.0/16 -d 172.18.0.0/16 -j ACCEPT\n\
             -A DOCKROUTE-FWD -s 172.18.0.0/16 -d 172.17.0.0/16 -j ACCEPT\n\
             -A DOCKROUTE-FWD -j RETURN\n\
             -I DOCKER-USER 1 -j DOCKROUTE-FWD\n\
             :DOCKROUTE-OUT - [0:0]\n\
             -A DOCKROUTE-OUT -d 198.18.7.1/32 -o dockroute0 -j ACCEPT\n\
             -A DOCKROUTE-OUT -o dockroute0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
             -A DOCKROUTE-OUT -o dockroute0 -j DROP\n\
             -A DOCKROUTE-OUT -j RETURN\n\
             -I OUTPUT 1 -j DOCKROUTE-OUT\n\
             COMMIT\n\
             *raw\n\
             :DOCKROUTE-MATE - [0:0]\n\
             -A DOCKROUTE-MATE -m addrtype --dst-type LOCAL -j DROP\n\
             -A DOCKROUTE-MATE -m addrtype ! --dst-type UNICAST -j DROP\n\
             -A DOCKROUTE-MATE -d 172.18.0.0/16 -j ACCEPT\n\
             -A DOCKROUTE-MATE -j DROP\n\
             :DOCKROUTE-PRE - [0:0]\n\
             -A DOCKROUTE-PRE -s 198.18.7.1/32 -i dockroute0 -j ACCEPT\n\
             -A DOCKROUTE-PRE -i dockroute0 -j DOCKROUTE-MATE\n\
             -A DOCKROUTE-PRE -s 172.17.0.0/16 -d 172.18.0.0/16 -j ACCEPT\n\
             -A DOCKROUTE-PRE -s 172.18.0.0/16 -d 172.17.0.0/16 -j ACCEPT\n\
             -A DOCKROUTE-PRE -j RETURN\n\
             -I PREROUTING 1 -j DOCKROUTE-PRE\n\
             COMMIT\n\
             *nat\n\
             :DOCKROUTE-POST - [0:0]\n\
             -A DOCKROUTE-POST -s 198.18.7.0/24 -d 172.19.0.0/16 -j MASQUERADE\n\
             -I POSTROUTING 1 -j DOCKROUTE-POST\n\
             COMMIT\n"
        );
        // Run against the recorded state, it gives exactly the recorded applied state.
        assert_eq!(chains(&restore(&rs(ENGINE_28_NFT), &script)), chains(&rs(ENGINE_28_NFT_APPLIED)));
    }

    #[test]
    fn a_state_already_as_planned_gives_an_empty_script() {
        assert_eq!(sync_script(&rs(ENGINE_28_NFT_APPLIED), &plan_v4()), "");
    }

    #[test]
    fn engine_20_10_without_a_raw_table_gets_it_and_the_filter_jump_goes_above_the_return() {
        let now = rs(ENGINE_20_10_LEGACY);
        let script = sync_script(&now, &plan_v4());
        assert!(script.contains("*raw\n:DOCKROUTE-MATE - [0:0]\n"), "{script}");
        assert!(script.contains("\n:DOCKROUTE-PRE - [0:0]\n"), "{script}");
        assert!(script.contains("-I PREROUTING 1 -j DOCKROUTE-PRE\n"), "{script}");
        assert!(script.contains("-I DOCKER-USER 1 -j DOCKROUTE-FWD\n"), "{script}");
        assert!(!script.contains("-D "), "nothing of ours to remove: {script}");
        let after = restore(&now, &script);
        let user = after.table("filter").unwrap().rules_of("DOCKER-USER").collect::<Vec<_>>();
        assert_eq!(user, ["-j DOCKROUTE-FWD", "-j RETURN"]);
        assert_eq!(sync_script(&after, &plan_v4()), "");
    }

    #[test]
    fn an_altered_chain_is_replaced_whole_and_nothing_else_is_touched() {
        let removed = applied_with(|t| t.replace("-A DOCKROUTE-FWD -o dockroute0 -j DROP\n", ""));
        let added = applied_with(|t| {
            t.replace("-A DOCKROUTE-FWD -j RETURN\n", "-A DOCKROUTE-FWD -j RETURN\n-A DOCKROUTE-FWD -j DROP\n")
        });
        let flushed =
            applied_with(|t| t.lines().filter(|l| !l.starts_with("-A DOCKROUTE-FWD")).collect::<Vec<_>>().join("\n"));
        let reordered = applied_with(|t| {
            t.replace(
                "-A DOCKROUTE-FWD -i dockroute0 -j ACCEPT\n-A DOCKROUTE-FWD -d 198.18.7.1/32 -o dockroute0 -j ACCEPT\n",
                "-A DOCKROUTE-FWD -d 198.18.7.1/32 -o dockroute0 -j ACCEPT\n-A DOCKROUTE-FWD -i dockroute0 -j ACCEPT\n",
            )
        });
        let refill = "*filter\n\
             :DOCKROUTE-FWD - [0:0]\n\
             -A DOCKROUTE-FWD -i dockroute0 -j ACCEPT\n\
             -A DOCKROUTE-FWD -d 198.18.7.1/32 -o dockroute0 -j ACCEPT\n\
             -A DOCKROUTE-FWD -o dockroute0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
             -A DOCKROUTE-FWD -o dockroute0 -j DROP\n\
             -A DOCKROUTE-FWD -s 172.17.0.0/16 -d 172.18.0.0/16 -j ACCEPT\n\
             -A DOCKROUTE-FWD -s 172.18.0.0/16 -d 172.17.0.0/16 -j ACCEPT\n\
             -A DOCKROUTE-FWD -j RETURN\n\
             COMMIT\n";
        for (what, now) in [("removed", removed), ("added", added), ("flushed", flushed), ("reordered", reordered)] {
            assert_eq!(sync_script(&now, &plan_v4()), refill, "{what}");
        }
    }

    #[test]
    fn a_changed_plan_replaces_only_the_chains_it_changes() {
        let mut spec = spec();
        spec.internal.push("172.20.0.0/16".parse().unwrap());
        let plan = super::super::plan::plan(&spec).unwrap().remove(0);
        assert_eq!(
            sync_script(&rs(ENGINE_28_NFT_APPLIED), &plan),
            "*nat\n\
             :DOCKROUTE-POST - [0:0]\n\
             -A DOCKROUTE-POST -s 198.18.7.0/24 -d 172.19.0.0/16 -j MASQUERADE\n\
             -A DOCKROUTE-POST -s 198.18.7.0/24 -d 172.20.0.0/16 -j MASQUERADE\n\
             COMMIT\n"
        );
    }

    #[test]
    fn a_missing_jump_is_inserted_first_without_touching_the_chain() {
        // dockerd restarted: it flushed DOCKER-USER, and Engine 28 rebuilt raw PREROUTING.
        let now = applied_with(|t| {
            t.replace("-A DOCKER-USER -j DOCKROUTE-FWD\n", "").replace("-A PREROUTING -j DOCKROUTE-PRE\n", "")
        });
        assert_eq!(
            sync_script(&now, &plan_v4()),
            "*filter\n-I DOCKER-USER 1 -j DOCKROUTE-FWD\nCOMMIT\n*raw\n-I PREROUTING 1 -j DOCKROUTE-PRE\nCOMMIT\n"
        );
    }

    #[test]
    fn a_duplicated_jump_is_removed_and_put_back_once_first() {
        let now = applied_with(|t| {
            t.replace(
                "-A PREROUTING -d 172.17.0.2/32 ! -i docker0 -j DROP\n",
                "-A PREROUTING -d 172.17.0.2/32 ! -i docker0 -j DROP\n-A PREROUTING -j DOCKROUTE-PRE\n",
            )
        });
        assert_eq!(
            sync_script(&now, &plan_v4()),
            "*raw\n-D PREROUTING -j DOCKROUTE-PRE\n-D PREROUTING -j DOCKROUTE-PRE\n\
             -I PREROUTING 1 -j DOCKROUTE-PRE\nCOMMIT\n"
        );
    }

    #[test]
    fn a_jump_no_longer_first_is_moved_back_to_the_top() {
        // dockerd inserted its MASQUERADE above ours.
        let now = applied_with(|t| {
            t.replace(
                "-A POSTROUTING -j DOCKROUTE-POST\n",
                "-A POSTROUTING -s 172.21.0.0/16 ! -o br-0aa1 -j MASQUERADE\n-A POSTROUTING -j DOCKROUTE-POST\n",
            )
        });
        assert_eq!(
            sync_script(&now, &plan_v4()),
            "*nat\n-D POSTROUTING -j DOCKROUTE-POST\n-I POSTROUTING 1 -j DOCKROUTE-POST\nCOMMIT\n"
        );
    }

    #[test]
    fn without_docker_the_jump_is_in_forward_and_moves_to_docker_user_once_it_exists() {
        let plain = rs(NFT_NO_DOCKER);
        let script = sync_script(&plain, &plan_v4());
        assert!(script.contains("-I FORWARD 1 -j DOCKROUTE-FWD\n"), "{script}");
        assert!(script.contains("*raw\n") && script.contains("*nat\n"), "missing tables are created: {script}");
        let ours = restore(&plain, &script);
        assert_eq!(sync_script(&ours, &plan_v4()), "");
        // Then dockerd starts: DOCKER-USER, jumped to from the top of FORWARD.
        let mut docker = ours.clone();
        let filter = docker.tables.iter_mut().find(|t| t.name == "filter").unwrap();
        filter.chains.push("DOCKER-USER".into());
        filter.rules.insert(0, ("FORWARD".into(), "-j DOCKER-USER".into()));
        assert_eq!(
            sync_script(&docker, &plan_v4()),
            "*filter\n-I DOCKER-USER 1 -j DOCKROUTE-FWD\n-D FORWARD -j DOCKROUTE-FWD\nCOMMIT\n"
        );
    }

    #[test]
    fn every_disturbed_state_converges_in_one_script() {
        let disturbed = [
            rs(ENGINE_28_NFT),
            rs(ENGINE_20_10_LEGACY),
            rs(NFT_NO_DOCKER),
            rs(""),
            applied_with(|t| t.replace("-A DOCKER-USER -j DOCKROUTE-FWD\n", "-A FORWARD -j DOCKROUTE-FWD\n")),
            applied_with(|t| t.replace("-A DOCKROUTE-PRE -j RETURN\n", "")),
            applied_with(|t| {
                t.replace("-A POSTROUTING -j DOCKROUTE-POST\n", "").replace(":DOCKROUTE-POST - [0:0]\n", "")
            }),
            applied_with(|t| {
                t.replace("-A DOCKER-USER -j DOCKROUTE-FWD\n", "-A DOCKER-USER -j DOCKROUTE-FWD\n".repeat(3).as_str())
            }),
        ];
        for (i, now) in disturbed.iter().enumerate() {
            let after = restore(now, &sync_script(now, &plan_v4()));
            assert_eq!(sync_script(&after, &plan_v4()), "", "state {i} did not converge");
            for (slot, want) in plan_v4().chains() {
                let t = after.table(slot.table).unwrap();
                assert_eq!(t.rules_of(slot.chain).collect::<Vec<_>>(), want, "state {i}");
                let Some(parent) = slot.parent(|p| t.has_chain(p)) else { continue };
                assert_eq!(t.rules_of(parent).next(), Some(format!("-j {}", slot.chain).as_str()), "state {i}");
            }
        }
    }

    #[test]
    fn teardown_removes_our_jumps_and_chains_and_leaves_dockers_rules() {
        // Ours applied, plus a stray jump from FORWARD and a goto someone added.
        let now = applied_with(|t| {
            t.replace("-A FORWARD -j DOCKER-FORWARD\n", "-A FORWARD -j DOCKER-FORWARD\n-A FORWARD -j DOCKROUTE-FWD\n")
                .replace(
                    "-A DOCKER-BRIDGE -o docker0 -j DOCKER\n",
                    "-A DOCKER-BRIDGE -o docker0 -j DOCKER\n-A DOCKER-BRIDGE -i br-x -g DOCKROUTE-FWD\n",
                )
        });
        let script = teardown_script(&now);
        assert_eq!(
            script,
            "*raw\n-D PREROUTING -j DOCKROUTE-PRE\n-F DOCKROUTE-MATE\n-F DOCKROUTE-PRE\n-X DOCKROUTE-MATE\n\
             -X DOCKROUTE-PRE\nCOMMIT\n\
             *filter\n-D FORWARD -j DOCKROUTE-FWD\n-D OUTPUT -j DOCKROUTE-OUT\n\
             -D DOCKER-BRIDGE -i br-x -g DOCKROUTE-FWD\n-D DOCKER-USER -j DOCKROUTE-FWD\n-F DOCKROUTE-FWD\n\
             -F DOCKROUTE-OUT\n-X DOCKROUTE-FWD\n-X DOCKROUTE-OUT\nCOMMIT\n\
             *nat\n-D POSTROUTING -j DOCKROUTE-POST\n\
             -F DOCKROUTE-POST\n-X DOCKROUTE-POST\nCOMMIT\n"
        );
        let after = restore(&now, &script);
        assert_eq!(chains(&after), chains(&rs(ENGINE_28_NFT)), "Docker's rules, exactly as found");
        assert_eq!(teardown_script(&after), "", "idempotent");
    }

    #[test]
    fn teardown_without_anything_of_ours_is_empty_and_ignores_look_alikes() {
        assert_eq!(teardown_script(&rs(ENGINE_28_NFT)), "");
        assert_eq!(teardown_script(&rs(ENGINE_20_10_LEGACY)), "");
        assert_eq!(teardown_script(&rs("")), "");
        let look_alike = rs("*filter\n:DOCKROUTE-FWD2 - [0:0]\n\
             -A FORWARD -m comment --comment DOCKROUTE-FWD -j ACCEPT\n-A FORWARD -j DOCKROUTE-FWD2\nCOMMIT\n");
        assert_eq!(teardown_script(&look_alike), "");
        // Our chain alone (its jump already gone) still goes.
        let orphan = rs("*raw\n:PREROUTING ACCEPT [0:0]\n:DOCKROUTE-PRE - [0:0]\n-A DOCKROUTE-PRE -j RETURN\nCOMMIT\n");
        assert_eq!(teardown_script(&orphan), "*raw\n-F DOCKROUTE-PRE\n-X DOCKROUTE-PRE\nCOMMIT\n");
        assert_eq!([CHAIN_FWD, CHAIN_OUT, CHAIN_MATE, CHAIN_PRE, CHAIN_POST], OUR_CHAINS);
    }

    #[test]
    fn only_empty_nft_tables_that_were_not_there_before_are_dropped() {
        // After teardown on a plain VM where we had created raw and nat: both are empty now.
        let now = rs("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -i eth9 -j ACCEPT\nCOMMIT\n\
                      *raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n\
                      *mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n");
        let before = ["filter".to_string(), "mangle".to_string()];
        assert_eq!(tables_to_drop(&now, &before), ["raw", "nat"]);
        assert_eq!(tables_to_drop(&now, &["filter".into(), "raw".into(), "nat".into(), "mangle".into()]), [""; 0]);
        // A table someone filled since is not ours to drop, even if it is new.
        let filled = rs("*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -d 10.0.0.1/32 -j DROP\nCOMMIT\n");
        assert!(tables_to_drop(&filled, &[]).is_empty());
    }
}
