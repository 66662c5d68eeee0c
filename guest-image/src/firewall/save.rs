//! Reading `iptables-save` / `ip6tables-save` output (either backend) into tables, chains and
//! rules. Lenient: a line it does not know (comments, "legacy tables present" warnings,
//! `COMMIT`, junk) is skipped, so odd output can mislead a decision but never stop one.

/// One table: its chains, and its rules as (chain, text after `-A <chain> `) in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    pub chains: Vec<String>,
    pub rules: Vec<(String, String)>,
}

impl Table {
    pub fn has_chain(&self, c: &str) -> bool {
        self.chains.iter().any(|x| x == c)
    }

    pub fn rules_of<'a>(&'a self, c: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.rules.iter().filter(move |(ch, _)| ch == c).map(|(_, r)| r.as_str())
    }
}

/// Every table one `*-save` run printed (only tables that exist are printed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub tables: Vec<Table>,
}

impl Ruleset {
    pub fn parse(text: &str) -> Ruleset {
        let mut tables: Vec<Table> = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('*') {
                tables.push(Table { name: name.trim().to_string(), ..Table::default() });
            } else if let Some(t) = tables.last_mut() {
                if let Some(decl) = line.strip_prefix(':') {
                    if let Some(c) = decl.split_whitespace().next() {
                        t.chains.push(c.to_string());
                    }
                } else if let Some(rest) = line.strip_prefix("-A ") {
                    let rest = rest.trim_start();
                    let (chain, rule) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                    t.rules.push((chain.to_string(), rule.trim().to_string()));
                }
            }
        }
        Ruleset { tables }
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }
}

/// Does this rule send packets to `chain` (`-j` jumps, `-g` goes to)?
pub fn targets(rule: &str, chain: &str) -> bool {
    let w: Vec<&str> = rule.split_whitespace().collect();
    w.windows(2).any(|p| (p[0] == "-j" || p[0] == "-g") && p[1] == chain)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn engine_20_10_legacy_output_gives_its_tables_chains_and_rules_in_order() {
        let rs = Ruleset::parse(ENGINE_20_10_LEGACY);
        let names: Vec<&str> = rs.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["nat", "filter"], "no raw table: Engine 20.10 never creates it");
        let filter = rs.table("filter").unwrap();
        assert!(filter.has_chain("FORWARD") && filter.has_chain("DOCKER-USER"));
        assert!(!filter.has_chain("DOCKROUTE-FWD"));
        let forward: Vec<&str> = filter.rules_of("FORWARD").collect();
        assert_eq!(forward.len(), 10);
        assert_eq!(forward[..2], ["-j DOCKER-USER", "-j DOCKER-ISOLATION-STAGE-1"]);
        assert_eq!(filter.rules_of("DOCKER-USER").collect::<Vec<_>>(), ["-j RETURN"]);
        let nat = rs.table("nat").unwrap();
        assert_eq!(nat.rules_of("POSTROUTING").next(), Some("-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"));
        assert!(rs.table("raw").is_none());
    }

    #[test]
    fn engine_28_nft_output_has_the_raw_drops_in_order() {
        let rs = Ruleset::parse(ENGINE_28_NFT);
        let raw = rs.table("raw").unwrap();
        assert_eq!(
            raw.rules_of("PREROUTING").collect::<Vec<_>>(),
            ["-d 172.18.0.2/32 ! -i br-5c0a1f3e2b71 -j DROP", "-d 172.17.0.2/32 ! -i docker0 -j DROP"]
        );
        assert_eq!(rs.table("filter").unwrap().rules_of("DOCKER-USER").count(), 0);
    }

    #[test]
    fn unknown_lines_are_skipped_and_odd_lines_do_not_panic() {
        let text = "# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n\
                    -A FORWARD -j DROP\n:STRAY - [0:0]\n\
                    *filter\r\n:FORWARD ACCEPT [0:0]\r\n:\n-A\n-A \n-A  FORWARD\t-j\tDOCKROUTE-FWD\r\n\
                    -A DOCKER-USER\nnot a rule\nCOMMIT\n*\n";
        let rs = Ruleset::parse(text);
        assert_eq!(rs.tables.len(), 2, "a rule before any table belongs to none");
        let filter = rs.table("filter").unwrap();
        assert_eq!(filter.chains, ["FORWARD"]);
        assert_eq!(
            filter.rules,
            [("FORWARD".to_string(), "-j\tDOCKROUTE-FWD".to_string()), ("DOCKER-USER".to_string(), String::new())]
        );
        assert_eq!(rs.tables[1], Table::default(), "a bare `*` is a table with no name");
        assert_eq!(Ruleset::parse(""), Ruleset::default());
    }

    #[test]
    fn targets_matches_jumps_and_gotos_to_exactly_that_chain() {
        assert!(targets("-j DOCKROUTE-FWD", "DOCKROUTE-FWD"));
        assert!(targets("-i eth0 -g DOCKROUTE-FWD", "DOCKROUTE-FWD"));
        assert!(targets("-j\tDOCKROUTE-FWD", "DOCKROUTE-FWD"));
        assert!(!targets("-j DOCKROUTE-FWD2", "DOCKROUTE-FWD"));
        assert!(!targets("-m comment --comment DOCKROUTE-FWD -j ACCEPT", "DOCKROUTE-FWD"));
        assert!(!targets("-j", "DOCKROUTE-FWD"));
        assert!(!targets("", "DOCKROUTE-FWD"));
    }
}
