//! The `set_names` operation's argument checked and normalised: what the API may hand the DNS
//! server, bounded so a client cannot make the table (or the resolver files) grow without end.
//! The helper decides which zones may be claimed, not only the controller: any API caller can
//! send `set_names`, and each zone becomes a resolver setting (`/etc/resolver/<zone>` on
//! macOS). An absolute name must lie below the suffix or a private-use name, never be the
//! suffix or its wildcard, and never be a relative name's full form (the containers' own
//! names are relative; label domains are absolute and never take one over).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub use dockroute_api::dns_name::is_below;
use dockroute_api::dns_name::{self, MAX_NAME_LEN};

/// Names (relative and absolute together) one `set_names` may carry.
pub const MAX_NAMES: usize = 4096;
/// Addresses one name may have (every container that claims it, each with v4 and v6).
pub const MAX_ADDRS_PER_NAME: usize = 64;
/// Zones outside the suffix (each one a resolver file on macOS).
pub const MAX_ZONES: usize = 64;

/// A checked `set_names`: names in lower case, each with its addresses sorted and unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameSpec {
    /// Relative to the suffix.
    pub names: BTreeMap<String, Vec<IpAddr>>,
    /// Absolute; a key may start with `*.`.
    pub domains: BTreeMap<String, Vec<IpAddr>>,
    /// The HTTPS front's port per full name (`web.docker`, `*.shop.test`); others use 80.
    pub ports: BTreeMap<String, u16>,
}

impl NameSpec {
    pub fn len(&self) -> usize {
        self.names.len() + self.domains.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The zones answered for: `suffix`, and each domain's (the domain without its `*.`) that
    /// is not inside the suffix or another such zone.
    pub fn zones(&self, suffix: &str) -> Vec<String> {
        let mut zones: BTreeSet<String> = BTreeSet::from([suffix.to_string()]);
        let candidates: BTreeSet<&str> =
            self.domains.keys().map(|d| d.strip_prefix("*.").unwrap_or(d.as_str())).collect();
        for z in &candidates {
            let inside_another = candidates.iter().chain([&suffix]).any(|outer| z != outer && is_below(z, outer));
            if !inside_another {
                zones.insert(z.to_string());
            }
        }
        zones.into_iter().collect()
    }
}

/// Checks a `set_names` against `suffix` (relative names must still fit once it is appended).
/// An error changes nothing and says which name is wrong.
pub fn validate(
    names: &BTreeMap<String, Vec<IpAddr>>,
    domains: &BTreeMap<String, Vec<IpAddr>>,
    suffix: &str,
) -> Result<NameSpec, String> {
    if names.len() + domains.len() > MAX_NAMES {
        return Err(format!("{} names; at most {MAX_NAMES}", names.len() + domains.len()));
    }
    let mut spec = NameSpec::default();
    for (name, addrs) in names {
        let full = format!("{name}.{suffix}");
        let why = dns_name::name_problem(name, false)
            .or_else(|| (full.len() > MAX_NAME_LEN).then(|| format!("{full} is longer than {MAX_NAME_LEN}")));
        insert(&mut spec.names, name, addrs, why)?;
    }
    for (domain, addrs) in domains {
        let normal = dns_name::normalise(domain);
        let relative = normal.strip_suffix(suffix).and_then(|head| head.strip_suffix('.'));
        let why = dns_name::name_problem(domain, true)
            .or_else(|| dns_name::domain_problem(&normal, Some(suffix)))
            .or_else(|| {
                relative
                    .filter(|r| spec.names.contains_key(*r))
                    .map(|_| format!("{normal} is a container's own name (sent relative to .{suffix})"))
            });
        insert(&mut spec.domains, domain, addrs, why)?;
    }
    let zones = spec.zones(suffix).len() - 1;
    if zones > MAX_ZONES {
        return Err(format!("{zones} domains outside .{suffix}; at most {MAX_ZONES}"));
    }
    Ok(spec)
}

/// Adds the HTTPS ports of a `set_names` to its checked names: each key must be one of its
/// names (relative in `name_ports`, absolute in `domain_ports`), each port not 0.
pub fn with_ports(
    mut spec: NameSpec,
    name_ports: &BTreeMap<String, u16>,
    domain_ports: &BTreeMap<String, u16>,
    suffix: &str,
) -> Result<NameSpec, String> {
    let relative = name_ports
        .iter()
        .map(|(n, p)| (dns_name::normalise(n), format!("{}.{suffix}", dns_name::normalise(n)), *p, &spec.names));
    let absolute =
        domain_ports.iter().map(|(n, p)| (dns_name::normalise(n), dns_name::normalise(n), *p, &spec.domains));
    let mut ports = BTreeMap::new();
    for (key, full, port, names) in relative.chain(absolute) {
        if !names.contains_key(&key) {
            return Err(format!("port for {key:?}, which is not among the names sent"));
        }
        if port == 0 {
            return Err(format!("name {key:?}: port 0"));
        }
        ports.insert(full, port);
    }
    spec.ports = ports;
    Ok(spec)
}

fn insert(
    into: &mut BTreeMap<String, Vec<IpAddr>>,
    name: &str,
    addrs: &[IpAddr],
    problem: Option<String>,
) -> Result<(), String> {
    if let Some(why) = problem {
        return Err(format!("name {name:?}: {why}"));
    }
    if addrs.len() > MAX_ADDRS_PER_NAME {
        return Err(format!("name {name:?}: {} addresses; at most {MAX_ADDRS_PER_NAME}", addrs.len()));
    }
    // Names differing only in case are one name, bounded together.
    let all = into.entry(dns_name::normalise(name)).or_default();
    all.extend_from_slice(addrs);
    all.sort();
    all.dedup();
    if all.len() > MAX_ADDRS_PER_NAME {
        return Err(format!(
            "name {name:?}: {} addresses with its other spellings; at most {MAX_ADDRS_PER_NAME}",
            all.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<IpAddr>> {
        entries.iter().map(|(n, a)| (n.to_string(), a.iter().map(|a| a.parse().unwrap()).collect())).collect()
    }

    #[test]
    fn https_ports_belong_to_names_sent_and_are_kept_by_full_name() {
        let spec =
            validate(&map(&[("web", &[]), ("admin.web", &[])]), &map(&[("*.shop.test", &[])]), "docker").unwrap();
        let ports =
            |e: &[(&str, u16)]| -> BTreeMap<String, u16> { e.iter().map(|(n, p)| (n.to_string(), *p)).collect() };
        let ok = with_ports(
            spec.clone(),
            &ports(&[("Web", 3000), ("admin.web", 8081)]),
            &ports(&[("*.shop.test", 8443)]),
            "docker",
        );
        assert_eq!(
            ok.unwrap().ports,
            ports(&[("web.docker", 3000), ("admin.web.docker", 8081), ("*.shop.test", 8443)])
        );
        let e = with_ports(spec.clone(), &ports(&[("api", 80)]), &BTreeMap::new(), "docker").unwrap_err();
        assert!(e.contains("not among the names sent"), "{e}");
        let e = with_ports(spec.clone(), &BTreeMap::new(), &ports(&[("web", 80)]), "docker").unwrap_err();
        assert!(e.contains("not among the names sent"), "a relative name is not a domain: {e}");
        assert!(with_ports(spec, &ports(&[("web", 0)]), &BTreeMap::new(), "docker").unwrap_err().contains("port 0"));
    }

    #[test]
    fn names_are_lower_cased_merged_and_their_addresses_deduplicated() {
        let names = map(&[("Web", &["172.18.0.3", "172.18.0.2"]), ("web", &["172.18.0.2"]), ("api.shop", &[])]);
        let spec = validate(&names, &map(&[("*.Shop.Test", &["fd00::2"])]), "docker").unwrap();
        assert_eq!(spec.names, map(&[("web", &["172.18.0.2", "172.18.0.3"]), ("api.shop", &[])]));
        assert_eq!(spec.domains, map(&[("*.shop.test", &["fd00::2"])]));
        assert_eq!(spec.len(), 3);
    }

    #[test]
    fn a_bad_name_or_too_much_is_refused_saying_which() {
        let none = BTreeMap::new();
        let e = validate(&map(&[("my_app", &[])]), &none, "docker").unwrap_err();
        assert!(e.starts_with("name \"my_app\": '_' is not allowed"), "{e}");
        let e = validate(&map(&[("*.web", &[])]), &none, "docker").unwrap_err();
        assert!(e.contains("'*'"), "no wildcards relative to the suffix: {e}");
        let e = validate(&none, &map(&[("shop..test", &[])]), "docker").unwrap_err();
        assert_eq!(e, "name \"shop..test\": an empty label");
        // Fits alone, not with the suffix.
        let long = vec!["a".repeat(63); 4].join(".")[..250].to_string();
        let e = validate(&map(&[(&long, &[])]), &none, "docker").unwrap_err();
        assert!(e.contains("is longer than 253"), "{e}");
        let addrs: Vec<String> = (0..=MAX_ADDRS_PER_NAME).map(|i| format!("10.0.{}.{}", i / 200, i % 200)).collect();
        let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let e = validate(&map(&[("web", &addrs)]), &none, "docker").unwrap_err();
        assert_eq!(e, "name \"web\": 65 addresses; at most 64");
        let many: BTreeMap<String, Vec<IpAddr>> = (0..=MAX_NAMES).map(|i| (format!("c{i}"), vec![])).collect();
        assert_eq!(validate(&many, &none, "docker").unwrap_err(), "4097 names; at most 4096");
        let zones: BTreeMap<String, Vec<IpAddr>> = (0..=MAX_ZONES).map(|i| (format!("z{i}.test"), vec![])).collect();
        assert_eq!(validate(&none, &zones, "docker").unwrap_err(), "65 domains outside .docker; at most 64");
    }

    /// Found while writing the `dns_names` fuzz target's bounds: `Web` and `web` with 64
    /// addresses each were one name with 128.
    #[test]
    fn spellings_of_one_name_are_bounded_together() {
        let addrs = |net: u8| -> Vec<String> { (1..=64).map(|i| format!("10.0.{net}.{i}")).collect() };
        let (a, b) = (addrs(0), addrs(1));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let b: Vec<&str> = b.iter().map(String::as_str).collect();
        let e = validate(&map(&[("Web", &a), ("web", &b)]), &BTreeMap::new(), "docker").unwrap_err();
        assert_eq!(e, "name \"web\": 128 addresses with its other spellings; at most 64");
        let same = validate(&map(&[("Web", &a), ("web", &a)]), &BTreeMap::new(), "docker").unwrap();
        assert_eq!(same.names["web"].len(), 64, "the same addresses twice are 64");
    }

    #[test]
    fn zones_are_the_suffix_and_the_outermost_domains_outside_it() {
        let domains = map(&[
            ("shop.test", &[]),
            ("*.shop.test", &[]),
            ("admin.shop.test", &[]),
            ("*.api.internal", &[]),
            ("extra.docker", &[]),
            ("notshop.test", &[]),
        ]);
        let spec = validate(&BTreeMap::new(), &domains, "docker").unwrap();
        assert_eq!(spec.zones("docker"), ["api.internal", "docker", "notshop.test", "shop.test"]);
        assert!(is_below("a.shop.test", "shop.test") && is_below("shop.test", "shop.test"));
        assert!(!is_below("notshop.test", "shop.test"));
    }

    #[test]
    fn an_api_caller_cannot_claim_a_public_zone_the_suffix_or_its_wildcard() {
        let none = BTreeMap::new();
        for attack in ["com", "*.com", "example.com", "www.example.com", "github.com", "test", "*.test"] {
            let e = validate(&none, &map(&[(attack, &["198.18.0.9"])]), "docker").unwrap_err();
            assert!(e.contains("only names below .docker, .test, .example, .internal, .home.arpa"), "{attack}: {e}");
        }
        for attack in ["docker", "*.docker", "*.Docker."] {
            let e = validate(&none, &map(&[(attack, &["198.18.0.9"])]), "docker");
            assert!(e.is_err(), "{attack}: {e:?}");
        }
        // The first bad name refuses the whole set: nothing of it is answered.
        let mixed = map(&[("shop.test", &["198.18.0.9"]), ("com", &["198.18.0.9"])]);
        assert!(validate(&none, &mixed, "docker").is_err());
    }

    #[test]
    fn a_label_domain_never_takes_a_containers_own_name() {
        let own = map(&[("web", &["172.18.0.2"]), ("api.shop", &["172.18.0.3"])]);
        for attack in ["web.docker", "API.shop.docker"] {
            let e = validate(&own, &map(&[(attack, &["172.18.0.66"])]), "docker").unwrap_err();
            assert!(e.contains("is a container's own name"), "{attack}: {e}");
        }
        // Below a container's name, or a name nobody has, is fine.
        let ok = validate(&own, &map(&[("admin.web.docker", &["172.18.0.66"]), ("extra.docker", &[])]), "docker");
        assert!(ok.is_ok(), "{ok:?}");
    }
}
