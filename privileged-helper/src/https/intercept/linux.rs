//! Linux: one nftables table of our own, `ip dockroute_https`, whose NAT output chain sends
//! this machine's connections to port 443 of the served addresses to the front. The table is
//! swapped whole in one `nft -f` transaction (made if absent, deleted, made again), so other
//! tables (Docker's, netavark's, the user's) are never read or touched.

use dockroute_stdx::process::Cmd;

use super::{Plan, Redirect};

pub const TABLE: &str = "dockroute_https";

#[derive(Debug, Default)]
pub struct Nftables;

impl Nftables {
    /// Matches by address, whatever the interface.
    pub fn new(_ifname: &str) -> Nftables {
        Nftables
    }
}

/// The transaction that leaves exactly `plan` (None: no table at all).
pub fn script(plan: Option<&Plan>) -> String {
    // `table` alone makes the table if it is absent, so the `delete` never fails.
    let mut s = format!("table ip {TABLE}\ndelete table ip {TABLE}\n");
    let Some(plan) = plan else { return s };
    let (addresses, std::net::SocketAddr::V4(front)) = (plan.v4().collect::<Vec<_>>(), plan.front) else {
        return s;
    };
    if addresses.is_empty() {
        return s;
    }
    let elements = addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ");
    s += &format!(
        "table ip {TABLE} {{\n\
         \tset served {{\n\t\ttype ipv4_addr\n\t\telements = {{ {elements} }}\n\t}}\n\
         \tchain output {{\n\
         \t\ttype nat hook output priority -100; policy accept;\n\
         \t\tip daddr @served tcp dport 443 dnat to {front}\n\
         \t}}\n}}\n"
    );
    s
}

fn nft(script: String) -> Result<(), String> {
    match Cmd::new("nft").args(["-f", "-"]).stdin(script).run() {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Err("nft is not installed (install nftables)".into()),
        Err(e) => Err(e.to_string()),
    }
}

impl Redirect for Nftables {
    fn apply(&mut self, plan: &Plan) -> Result<(), String> {
        nft(script(Some(plan)))
    }

    fn remove(&mut self) -> Result<(), String> {
        nft(script(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_swapped_whole_and_removing_it_never_fails_on_an_absent_table() {
        let plan = Plan {
            front: "198.19.0.1:443".parse().unwrap(),
            addresses: ["172.18.0.3", "172.18.0.2", "fd00::2"].iter().map(|a| a.parse().unwrap()).collect(),
        };
        let s = script(Some(&plan));
        assert!(s.starts_with("table ip dockroute_https\ndelete table ip dockroute_https\ntable ip dockroute_https {"));
        assert!(s.contains("elements = { 172.18.0.2, 172.18.0.3 }"), "IPv4 only, sorted: {s}");
        assert!(s.contains("ip daddr @served tcp dport 443 dnat to 198.19.0.1:443"), "{s}");
        assert_eq!(script(None), "table ip dockroute_https\ndelete table ip dockroute_https\n");
        let empty = Plan { addresses: Default::default(), ..plan };
        assert_eq!(script(Some(&empty)), script(None), "nothing to redirect: no table (nft refuses an empty set)");
    }
}
