//! macOS's pf, as plain logic (tested on Linux): the anchor's rules and what `pfctl -E` says.
//!
//! The rules live in an anchor under `com.apple/`, which macOS's own `/etc/pf.conf` already
//! evaluates (`rdr-anchor "com.apple/*"`, `anchor "com.apple/*"`), so the user's pf.conf is
//! never edited. pf only rewrites packets *arriving* on an interface, so a connection this Mac
//! makes is first routed to lo0 (`route-to`), where the `rdr` sends it to the front.

use std::net::SocketAddr;

use super::Plan;

/// Evaluated by macOS's default pf.conf through its `com.apple/*` anchors.
pub const ANCHOR: &str = "com.apple/dockroute-https";
const TABLE: &str = "dockroute_https";

/// The anchor's whole ruleset for `plan` on the tunnel interface `ifname`; None when there is
/// nothing to redirect (the anchor is flushed instead).
pub fn rules(plan: &Plan, ifname: &str) -> Option<String> {
    let SocketAddr::V4(front) = plan.front else { return None };
    let addresses: Vec<String> = plan.v4().map(|a| a.to_string()).collect();
    if addresses.is_empty() {
        return None;
    }
    let (ip, port) = (front.ip(), front.port());
    Some(format!(
        "table <{TABLE}> {{ {} }}\n\
         rdr pass on lo0 inet proto tcp from any to <{TABLE}> port 443 -> {ip} port {port}\n\
         pass out on {ifname} route-to lo0 inet proto tcp from any to <{TABLE}> port 443 keep state\n",
        addresses.join(" ")
    ))
}

/// The reference `pfctl -E` took, to give back with `pfctl -X` so pf is switched off again
/// only if nobody else needs it. macOS's pfctl prints `pf enabled\nToken : %llu\n` on stderr
/// (the format string, as found in a decompiled macOS pfctl in a public repository).
pub fn enable_token(output: &str) -> Option<u64> {
    output.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == "Token").then(|| value.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(addresses: &[&str]) -> Plan {
        Plan {
            front: "192.168.251.1:443".parse().unwrap(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn the_anchor_routes_this_macs_connections_to_lo0_where_rdr_sends_them_to_the_front() {
        let r = rules(&plan(&["172.18.0.3", "172.18.0.2", "fd00::2"]), "utun5").unwrap();
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(
            lines,
            [
                "table <dockroute_https> { 172.18.0.2 172.18.0.3 }",
                "rdr pass on lo0 inet proto tcp from any to <dockroute_https> port 443 -> 192.168.251.1 port 443",
                "pass out on utun5 route-to lo0 inet proto tcp from any to <dockroute_https> port 443 keep state",
            ],
            "translation before filtering, as pf requires; IPv4 only"
        );
        assert_eq!(rules(&plan(&[]), "utun5"), None);
        assert_eq!(rules(&plan(&["fd00::2"]), "utun5"), None, "nothing of the front's family");
    }

    #[test]
    fn the_enable_token_is_read_from_what_pfctl_prints() {
        // As macOS's pfctl prints it (its format string `pf enabled\nToken : %llu\n`), after
        // the ALTQ lines it prints on every run.
        let out =
            "No ALTQ support in kernel\nALTQ related functions disabled\npf enabled\nToken : 13795467063225858791\n";
        assert_eq!(enable_token(out), Some(13795467063225858791));
        assert_eq!(enable_token("pfctl: /dev/pf: Permission denied\n"), None);
        assert_eq!(enable_token("Token : twelve\n"), None);
    }
}
