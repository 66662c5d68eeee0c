//! Any containers with any names and labels (images bring their labels: compose's service and
//! project, `dev.dockroute.domains`) through the controller's naming: nothing panics; every
//! name it sends is a hostname in compared form (a `*.` only in front of an absolute one) that
//! fits in 253 characters with the suffix; every absolute name lies inside the suffix or below
//! one of the private-use names, never anywhere else; our guest claims nothing; each claim is
//! sent, and a clash names at least two containers; a container whose name is a valid label
//! has it.
//!
//! Input: the first line is the helper's suffix (empty: not known yet); then containers, each
//! starting with a line `-- NAME` and followed by `key=value` label lines. Each is running on
//! a routed network with one address per family.
#![no_main]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bollard::models::{ContainerSummary, ContainerSummaryNetworkSettings, EndpointSettings};
use dockroute_api::dns_name::{label_problem, name_problem, normalise, MAX_NAME_LEN, PRIVATE_USE};
use dockroute_controller::discovery::BridgeNetwork;
use dockroute_controller::guest::LABEL_OURS;
use dockroute_controller::names::{name_set, Claim, Routed};
use libfuzzer_sys::fuzz_target;

/// Enough for clashes and crowds, few enough to stay fast.
const MAX_CONTAINERS: usize = 32;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.lines();
    let suffix = match lines.next().unwrap_or_default() {
        "" => None,
        s if name_problem(s, false).is_none() => Some(normalise(s)),
        _ => Some("docker".to_string()),
    };
    let mut list: Vec<ContainerSummary> = Vec::new();
    for line in lines {
        if let Some(name) = line.strip_prefix("-- ") {
            if list.len() == MAX_CONTAINERS {
                break;
            }
            list.push(container(list.len(), name));
        } else if let (Some(c), Some((k, v))) = (list.last_mut(), line.split_once('=')) {
            c.labels.get_or_insert_with(HashMap::new).insert(k.to_string(), v.to_string());
        }
    }
    let network = BridgeNetwork {
        id: "id-app".into(),
        name: "app".into(),
        subnets: vec!["172.18.0.0/16".parse().expect("a net"), "fd00:18::/64".parse().expect("a net")],
        gateways: vec!["172.18.0.1".parse().expect("an address")],
        internal: false,
    };
    let routed = Routed::new(&[network], &BTreeSet::new(), &[]);
    let set = name_set(&list, &routed, suffix.as_deref());

    for name in set.names.keys() {
        assert_eq!(name_problem(name, false), None, "{name:?} sent");
        assert_eq!(*name, normalise(name), "{name:?} not in compared form");
        if let Some(s) = &suffix {
            assert!(name.len() + 1 + s.len() <= MAX_NAME_LEN, "{name:?}.{s} sent: longer than {MAX_NAME_LEN}");
        }
    }
    for domain in set.domains.keys() {
        assert_eq!(name_problem(domain, true), None, "{domain:?} sent");
        assert_eq!(*domain, normalise(domain), "{domain:?} not in compared form");
        let zone = domain.strip_prefix("*.").unwrap_or(domain);
        let strictly_below = |z: &str| zone.strip_suffix(z).is_some_and(|head| head.ends_with('.'));
        let in_suffix = suffix.as_deref().is_some_and(|s| zone == s || strictly_below(s));
        assert!(in_suffix || PRIVATE_USE.iter().any(|p| strictly_below(p)), "{domain:?} claimed outside our zones");
    }
    let by_id: BTreeMap<&str, &ContainerSummary> = list.iter().map(|c| (c.id.as_deref().expect("an id"), c)).collect();
    for (id, claims) in &set.claims {
        let c = by_id[id.as_str()];
        assert!(!c.labels.as_ref().is_some_and(|l| l.contains_key(LABEL_OURS)), "our guest claims {claims:?}");
        for claim in claims {
            let sent = match claim {
                Claim::Relative(n) => set.names.contains_key(n),
                Claim::Absolute(n) => set.domains.contains_key(n),
            };
            assert!(sent, "{claim:?} claimed, not sent");
        }
    }
    for clash in &set.clashes {
        assert!(clash.containers.len() >= 2, "{clash:?}");
    }
    for c in list.iter().filter(|c| !c.labels.as_ref().is_some_and(|l| l.contains_key(LABEL_OURS))) {
        let name = c.names.as_ref().and_then(|n| n.first()).map(|n| n.trim_start_matches('/')).unwrap_or_default();
        if !name.is_empty() && label_problem(name).is_none() {
            let claims = &set.claims[c.id.as_deref().expect("an id")];
            assert!(claims.contains(&Claim::Relative(name.to_ascii_lowercase())), "{name:?} lost its name");
        }
    }
});

/// The `i`th running container, named `name`, on the routed network.
fn container(i: usize, name: &str) -> ContainerSummary {
    let endpoint = EndpointSettings {
        ip_address: Some(format!("172.18.{}.{}", i / 200, i % 200 + 2)),
        global_ipv6_address: Some(format!("fd00:18::{:x}", i + 2)),
        ..Default::default()
    };
    ContainerSummary {
        id: Some(format!("id-{i}")),
        names: Some(vec![format!("/{name}")]),
        labels: Some(HashMap::new()),
        network_settings: Some(ContainerSummaryNetworkSettings {
            networks: Some(HashMap::from([("app".to_string(), endpoint)])),
        }),
        ..Default::default()
    }
}
