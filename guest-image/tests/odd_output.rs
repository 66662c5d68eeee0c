//! No panics on odd command output: a fake Runner answers every command with junk.
use dockroute_guest::firewall::{Backend, FirewallSpec, Iptables, Runner};

const JUNK: &[&str] = &[
    "",
    "\0\0\u{fffd}",
    "*",
    "*\n:\n-A\n-A \n-A  \nCOMMIT",
    "*filter\n:DOCKER-USER",
    "*filter\n:DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-USER\n-A DOCKER-USER\n-A DOCKER-USER -j",
    "*filter\n:DOCKROUTE-FWD - [0:0]\n-A DOCKER-USER -j DOCKROUTE-FWD -j\n-A DOCKROUTE-FWD -g DOCKROUTE-PRE",
    "*raw\n:DOCKROUTE-PRE\n-A PREROUTING -j DOCKROUTE-PRE\n-A PREROUTING -j DOCKROUTE-PRE\n*nat\n*nat",
    "iptables v1.8.9 (legacy)",
    "iptables v1.8.9 (nf_tables)",
    "# Warning: iptables-legacy tables present\n# Table `filter' is incompatible, use 'nft' tool.",
    "ééé\r\n\r\n*filter\r\n:FORWARD ACCEPT [0:0]\r\n-A FORWARD\t-j\tDOCKROUTE-FWD\r\n",
];

struct Junk {
    seed: u64,
    calls: std::rc::Rc<std::cell::Cell<usize>>,
}

impl Runner for Junk {
    fn run(&mut self, _program: &str, _args: &[&str]) -> Result<String, String> {
        self.calls.set(self.calls.get() + 1);
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let n = (self.seed >> 33) as usize % (JUNK.len() + 2);
        match JUNK.get(n) {
            Some(s) => Ok(s.to_string()),
            None if n == JUNK.len() => Err("exit status: 1".into()),
            None => Ok(JUNK.concat()),
        }
    }
}

#[test]
fn junk_output_never_panics() {
    let spec = FirewallSpec {
        tun: "dockroute0".into(),
        link_v4: "198.18.7.1/24".parse().unwrap(),
        link_v6: Some("2001:2:7::/64".parse().unwrap()),
        mac_v4: "198.18.7.1".parse().unwrap(),
        mac_v6: Some("2001:2:7::1".parse().unwrap()),
        internal: vec!["198.19.3.0/24".parse().unwrap(), "2001:2:3::/64".parse().unwrap()],
        pairs: vec![("198.19.1.0/24".parse().unwrap(), "198.19.2.0/24".parse().unwrap())],
        exposed: vec!["198.19.1.0/24".parse().unwrap()],
    };
    for seed in 0..2000u64 {
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let runner = Junk { seed, calls: calls.clone() };
        let mut fw = match Iptables::detect(runner) {
            Ok(fw) => fw,
            Err(_) => Iptables::with_backends(Junk { seed, calls: calls.clone() }, Backend::Legacy, Backend::Nft),
        };
        let _ = fw.apply(&spec);
        let _ = fw.ensure();
        let _ = fw.apply(&spec);
        let _ = fw.teardown();
        let _ = fw.ensure();
        assert!(calls.get() < 200, "bounded work");
    }
}
