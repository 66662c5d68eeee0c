//! The names the DNS server answers, built once per `set_names` and read by every query: which
//! zones are ours, which names exist in them and with which addresses. Pure; lookups follow
//! RFC 4592's wildcards and keep empty non-terminals (the `shop` of `api.shop.docker`) apart
//! from names that do not exist, since resolvers that see NXDOMAIN for `shop.docker` may
//! assume nothing exists below it (RFC 8020).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::names::{is_below, NameSpec};

/// A name's addresses by family (either may be empty: the name exists, without that family).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addrs {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
}

#[derive(Debug, Clone, Default)]
pub struct NameTable {
    /// Lower case. Only the suffix can lie inside another (a label domain may claim a zone
    /// around it): a name belongs to the innermost zone that holds it, as below a zone cut.
    zones: Vec<String>,
    /// Full lower-case names, wildcard owners (`*.shop.test`) included.
    records: HashMap<String, Addrs>,
    /// Every name that exists in a zone: the records and all their ancestors up to the zone.
    nodes: HashSet<String>,
    /// Changes with every table, for the SOA (so caches see a new zone version).
    serial: u32,
}

/// What the table says about a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'t> {
    /// Not in any of our zones: refuse, never recurse.
    NotOurs,
    /// The name exists (or a wildcard covers it) with these addresses.
    Found {
        zone: &'t str,
        addrs: &'t Addrs,
    },
    /// The name exists without addresses: a zone apex, or a parent of other names.
    Empty {
        zone: &'t str,
        apex: bool,
    },
    NxDomain {
        zone: &'t str,
    },
}

impl NameTable {
    /// The table for `spec`, relative names below `suffix` (lower case, no final dot).
    pub fn new(suffix: &str, spec: &NameSpec, serial: u32) -> NameTable {
        let zones = spec.zones(suffix);
        let mut records: HashMap<String, Addrs> = HashMap::new();
        let relative: HashMap<String, &Vec<IpAddr>> =
            spec.names.iter().map(|(n, a)| (format!("{n}.{suffix}"), a)).collect();
        // A container's own name (relative) is never shared with a label domain that spells
        // it out (`validate` refuses that too).
        let absolute = spec.domains.iter().filter(|(n, _)| !relative.contains_key(*n)).map(|(n, a)| (n.clone(), a));
        for (name, addrs) in relative.clone().into_iter().chain(absolute) {
            let entry = records.entry(name).or_default();
            for a in addrs {
                match a {
                    IpAddr::V4(v4) => entry.v4.push(*v4),
                    IpAddr::V6(v6) => entry.v6.push(*v6),
                }
            }
        }
        let mut nodes = HashSet::new();
        for (name, addrs) in &mut records {
            addrs.v4.sort();
            addrs.v4.dedup();
            addrs.v6.sort();
            addrs.v6.dedup();
            let Some(zone) = zone_of(&zones, name) else { continue };
            let mut n = name.as_str();
            while n.len() > zone.len() {
                nodes.insert(n.to_string());
                n = n.split_once('.').map_or(zone, |(_, parent)| parent);
            }
        }
        NameTable { zones, records, nodes, serial }
    }

    pub fn zones(&self) -> &[String] {
        &self.zones
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Names with a record (wildcards included).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Looks up a name given as its labels, already in lower case. A label that could not be
    /// one of ours (a `.` inside it) makes the name nonexistent, never another name.
    pub fn lookup(&self, labels: &[String]) -> Lookup<'_> {
        let Some(zone) = innermost(self.zones.iter().filter(|z| ends_with_labels(labels, z))) else {
            return Lookup::NotOurs;
        };
        if labels.iter().any(|l| l.is_empty() || l.contains('.')) {
            return Lookup::NxDomain { zone };
        }
        let name = labels.join(".");
        if let Some(addrs) = self.records.get(&name) {
            return Lookup::Found { zone, addrs };
        }
        if name == zone {
            return Lookup::Empty { zone, apex: true };
        }
        if self.nodes.contains(&name) {
            return Lookup::Empty { zone, apex: false };
        }
        // The closest encloser: the nearest ancestor that exists (the zone apex at the latest);
        // its wildcard, if it has one, answers for every name below it that does not exist.
        let mut ancestor = name.as_str();
        while let Some((_, parent)) = ancestor.split_once('.') {
            ancestor = parent;
            if ancestor == zone || self.nodes.contains(ancestor) {
                break;
            }
        }
        match self.records.get(&format!("*.{ancestor}")) {
            Some(addrs) => Lookup::Found { zone, addrs },
            None => Lookup::NxDomain { zone },
        }
    }
}

fn zone_of<'z>(zones: &'z [String], name: &str) -> Option<&'z str> {
    innermost(zones.iter().filter(|z| is_below(name, z)))
}

/// The innermost of zones that all hold one name: the longest.
fn innermost<'z>(holding: impl Iterator<Item = &'z String>) -> Option<&'z str> {
    holding.max_by_key(|z| z.len()).map(String::as_str)
}

/// Whether the labels end with the labels of `zone` (compared label by label, so a label
/// holding a dot cannot pass for two).
fn ends_with_labels(labels: &[String], zone: &str) -> bool {
    let zone: Vec<&str> = zone.split('.').collect();
    labels.len() >= zone.len() && labels[labels.len() - zone.len()..].iter().zip(&zone).all(|(a, b)| a == b)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::dns::names::validate;

    fn labels(name: &str) -> Vec<String> {
        name.split('.').map(str::to_string).collect()
    }

    fn table(names: &[(&str, &[&str])], domains: &[(&str, &[&str])]) -> NameTable {
        let map = |e: &[(&str, &[&str])]| -> BTreeMap<String, Vec<IpAddr>> {
            e.iter().map(|(n, a)| (n.to_string(), a.iter().map(|a| a.parse().unwrap()).collect())).collect()
        };
        NameTable::new("docker", &validate(&map(names), &map(domains), "docker").unwrap(), 7)
    }

    fn found(t: &NameTable, name: &str) -> (Vec<String>, Vec<String>) {
        match t.lookup(&labels(name)) {
            Lookup::Found { addrs, .. } => {
                (addrs.v4.iter().map(ToString::to_string).collect(), addrs.v6.iter().map(ToString::to_string).collect())
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn names_below_the_suffix_and_label_domains_are_found() {
        let t = table(
            &[("web", &["172.18.0.2", "fd00::2"]), ("api.shop", &["172.18.0.3"])],
            &[("shop.test", &["172.18.0.3"]), ("v6only.internal", &["fd00::9"])],
        );
        assert_eq!(found(&t, "web.docker"), (vec!["172.18.0.2".into()], vec!["fd00::2".into()]));
        assert_eq!(found(&t, "api.shop.docker").0, ["172.18.0.3"]);
        assert_eq!(found(&t, "shop.test").0, ["172.18.0.3"]);
        assert_eq!(found(&t, "v6only.internal"), (vec![], vec!["fd00::9".into()]), "IPv6 only: no A");
        assert_eq!(t.zones(), ["docker", "shop.test", "v6only.internal"]);
        assert_eq!((t.len(), t.serial()), (4, 7));
    }

    #[test]
    fn outside_our_zones_is_not_ours_and_inside_them_missing_names_do_not_exist() {
        let t = table(&[("web", &["172.18.0.2"])], &[("shop.test", &["172.18.0.3"])]);
        for name in ["example.com", "docker.com", "test", "other.test", "com"] {
            assert_eq!(t.lookup(&labels(name)), Lookup::NotOurs, "{name}");
        }
        assert_eq!(t.lookup(&[]), Lookup::NotOurs, "the root");
        assert_eq!(t.lookup(&labels("nothere.docker")), Lookup::NxDomain { zone: "docker" });
        assert_eq!(t.lookup(&labels("a.web.docker")), Lookup::NxDomain { zone: "docker" });
        assert_eq!(t.lookup(&labels("x.shop.test")), Lookup::NxDomain { zone: "shop.test" });
        assert_eq!(t.lookup(&labels("docker")), Lookup::Empty { zone: "docker", apex: true });
        // One label "web.docker" is not the two labels web, docker.
        assert_eq!(t.lookup(&["web.docker".into(), "docker".into()]), Lookup::NxDomain { zone: "docker" });
    }

    #[test]
    fn a_parent_of_names_exists_without_addresses() {
        let t = table(&[("api.shop", &["172.18.0.3"])], &[]);
        assert_eq!(t.lookup(&labels("shop.docker")), Lookup::Empty { zone: "docker", apex: false });
        assert_eq!(t.lookup(&labels("db.shop.docker")), Lookup::NxDomain { zone: "docker" });
    }

    #[test]
    fn a_wildcard_covers_missing_names_below_its_closest_encloser_only() {
        let t = table(
            &[],
            &[("*.shop.test", &["172.18.0.4"]), ("shop.test", &["172.18.0.3"]), ("admin.shop.test", &["172.18.0.5"])],
        );
        assert_eq!(found(&t, "shop.test").0, ["172.18.0.3"], "the exact domain");
        assert_eq!(found(&t, "www.shop.test").0, ["172.18.0.4"]);
        assert_eq!(found(&t, "a.b.shop.test").0, ["172.18.0.4"], "any depth below");
        assert_eq!(found(&t, "admin.shop.test").0, ["172.18.0.5"], "an existing name wins");
        // admin.shop.test exists, so it is the closest encloser of x.admin: no wildcard there.
        assert_eq!(t.lookup(&labels("x.admin.shop.test")), Lookup::NxDomain { zone: "shop.test" });
        assert_eq!(found(&t, "*.shop.test").0, ["172.18.0.4"], "the wildcard's own name");
        let only_wild = table(&[], &[("*.api.test", &["172.18.0.6"])]);
        assert_eq!(only_wild.zones(), ["api.test", "docker"]);
        assert_eq!(only_wild.lookup(&labels("api.test")), Lookup::Empty { zone: "api.test", apex: true });
    }

    #[test]
    fn a_label_domain_spelling_out_a_containers_own_name_never_adds_its_addresses() {
        // `validate` refuses such a set; a table built without it still keeps them apart.
        let spec = NameSpec {
            names: [("api.shop".to_string(), vec!["172.18.0.3".parse().unwrap(), "172.18.0.4".parse().unwrap()])]
                .into(),
            domains: [(
                "api.shop.docker".to_string(),
                vec!["172.18.0.66".parse().unwrap(), "fd00::66".parse().unwrap()],
            )]
            .into(),
            ports: Default::default(),
        };
        assert!(validate(&spec.names, &spec.domains, "docker").is_err());
        let t = NameTable::new("docker", &spec, 7);
        assert_eq!(found(&t, "api.shop.docker"), (vec!["172.18.0.3".into(), "172.18.0.4".into()], vec![]));
        assert_eq!(t.zones(), ["docker"], "a domain inside the suffix adds no zone");
    }

    /// Found by the `dns_names` fuzz target: with the suffix `docn.shop.test`, a claimed
    /// `*.shop.test` made a zone around the suffix's. The suffix's names must still be answered
    /// from its own zone, and its wildcard-less gaps must not fall to the outer wildcard.
    #[test]
    fn a_claimed_wildcard_around_the_suffix_does_not_answer_inside_the_suffix() {
        let ip = |a: &str| -> Vec<IpAddr> { vec![a.parse().unwrap()] };
        let around = BTreeMap::from([("*.dev.test".to_string(), ip("172.18.0.9"))]);
        let names = BTreeMap::from([("web".to_string(), ip("172.18.0.2"))]);
        for suffix in ["zz.dev.test", "aa.dev.test"] {
            let t = NameTable::new(suffix, &validate(&names, &around, suffix).unwrap(), 1);
            assert_eq!(found(&t, &format!("web.{suffix}")).0, ["172.18.0.2"]);
            for (name, want) in [
                (format!("web.{suffix}"), suffix),
                (format!("nothere.{suffix}"), suffix),
                (suffix.to_string(), suffix),
                ("other.dev.test".to_string(), "dev.test"),
            ] {
                let zone = match t.lookup(&labels(&name)) {
                    Lookup::Found { zone, .. } | Lookup::Empty { zone, .. } | Lookup::NxDomain { zone } => zone,
                    Lookup::NotOurs => panic!("{name}: not ours"),
                };
                assert_eq!(zone, want, "{name}");
            }
            assert_eq!(t.lookup(&labels(&format!("nothere.{suffix}"))), Lookup::NxDomain { zone: suffix });
            // Without names of its own, the suffix's apex is still its own, not the wildcard's.
            let bare = NameTable::new(suffix, &validate(&BTreeMap::new(), &around, suffix).unwrap(), 1);
            assert_eq!(bare.lookup(&labels(suffix)), Lookup::Empty { zone: suffix, apex: true });
            assert_eq!(bare.lookup(&labels(&format!("x.{suffix}"))), Lookup::NxDomain { zone: suffix });
            assert_eq!(found(&bare, "other.dev.test").0, ["172.18.0.9"]);
        }
    }
}
