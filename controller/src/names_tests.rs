use std::collections::HashMap;

use bollard::models::{ContainerSummaryNetworkSettings, EndpointSettings};
use dockroute_api::RouteSource;

use super::*;

/// A running container: (network, IPv4, IPv6) per network ("" for none).
fn container(name: &str, labels: &[(&str, &str)], nets: &[(&str, &str, &str)]) -> ContainerSummary {
    let endpoint = |v4: &str, v6: &str| EndpointSettings {
        ip_address: (!v4.is_empty()).then(|| v4.to_string()),
        global_ipv6_address: (!v6.is_empty()).then(|| v6.to_string()),
        ..Default::default()
    };
    let networks: HashMap<String, EndpointSettings> =
        nets.iter().map(|(n, v4, v6)| (n.to_string(), endpoint(v4, v6))).collect();
    ContainerSummary {
        id: Some(format!("id-{name}")),
        names: Some(vec![format!("/{name}")]),
        labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        network_settings: Some(ContainerSummaryNetworkSettings { networks: Some(networks) }),
        ..Default::default()
    }
}

fn networks() -> Vec<BridgeNetwork> {
    vec![
        BridgeNetwork::test("app", &["172.18.0.0/16", "fd00:18::/64"]),
        BridgeNetwork::test("off", &["172.19.0.0/16"]),
        BridgeNetwork::test("vpn", &["10.8.0.0/16"]),
        BridgeNetwork::test("v6", &["fd00:20::/64"]),
    ]
}

/// "off" switched off by the user, "vpn"'s route in conflict with another interface.
fn routed() -> Routed {
    let conflict = RouteStatus {
        net: "10.8.0.0/16".parse().unwrap(),
        source: RouteSource::App,
        enabled: true,
        state: RouteState::Conflict { interface: "utun3".into(), route: "10.8.0.0/14".parse().unwrap() },
    };
    Routed::new(&networks(), &BTreeSet::from(["off".to_string()]), &[conflict])
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn rel(n: &str) -> Claim {
    Claim::Relative(n.into())
}

fn abs(n: &str) -> Claim {
    Claim::Absolute(n.into())
}

#[test]
fn a_container_is_its_name_its_compose_service_and_its_label_domains() {
    let labels = [
        (COMPOSE_SERVICE, "api"),
        (COMPOSE_PROJECT, "shop"),
        (LABEL_DOMAINS, " Shop.Test, *.shop.test ,, admin.internal"),
    ];
    let list = [container("Shop-API-1", &labels, &[("app", "172.18.0.3", "fd00:18::3")])];
    let set = name_set(&list, &routed(), Some("docker"));
    let both = ips(&["172.18.0.3", "fd00:18::3"]);
    assert_eq!(set.names, BTreeMap::from([("api.shop".into(), both.clone()), ("shop-api-1".into(), both.clone())]));
    assert_eq!(
        set.domains,
        BTreeMap::from([
            ("*.shop.test".into(), both.clone()),
            ("admin.internal".into(), both.clone()),
            ("shop.test".into(), both)
        ])
    );
    let claims = &set.claims["id-Shop-API-1"];
    assert_eq!(
        claims,
        &[rel("api.shop"), rel("shop-api-1"), abs("*.shop.test"), abs("admin.internal"), abs("shop.test")]
    );
    assert_eq!(claims[1].full("docker"), "shop-api-1.docker");
    assert!(set.clashes.is_empty() && set.skipped.is_empty(), "{set:?}");
}

#[test]
fn names_dns_cannot_carry_are_skipped_saying_why() {
    let labels = [
        (COMPOSE_SERVICE, "my_worker"),
        (COMPOSE_PROJECT, "shop"),
        (LABEL_DOMAINS, "github.com,*.test,bad_name.test,ok.test"),
    ];
    let list = [container("shop_worker_1", &labels, &[("app", "172.18.0.4", "")])];
    let set = name_set(&list, &routed(), Some("docker"));
    let skipped: Vec<(String, String)> = set.skipped.iter().map(|s| (s.name.clone(), s.reason.clone())).collect();
    let underscore = "'_' is not allowed in DNS names (letters, digits and '-' only)".to_string();
    let outside = "only names below .docker, .test, .example, .internal, .home.arpa are answered".to_string();
    assert_eq!(
        skipped,
        [
            ("shop_worker_1".into(), underscore.clone()),
            ("my_worker.shop".into(), underscore.clone()),
            ("github.com".into(), outside.clone()),
            ("*.test".into(), outside),
            ("bad_name.test".into(), underscore),
        ]
    );
    assert!(set.skipped.iter().all(|s| s.container == "shop_worker_1"));
    assert_eq!(set.names, BTreeMap::new());
    assert_eq!(set.domains.keys().collect::<Vec<_>>(), ["ok.test"], "what can be a name still is");
}

#[test]
fn a_name_two_containers_claim_answers_with_both_and_is_a_clash() {
    let compose = [(COMPOSE_SERVICE, "api"), (COMPOSE_PROJECT, "shop")];
    let list = [
        container("shop-api-1", &compose, &[("app", "172.18.0.3", "")]),
        container("shop-api-2", &compose, &[("app", "172.18.0.4", "")]),
        container("other", &[(LABEL_DOMAINS, "api.shop.docker")], &[("app", "172.18.0.9", "")]),
    ];
    let set = name_set(&list, &routed(), Some("docker"));
    // Two replicas share their compose name; a third container's label may not join them
    // (it used to: the label took a third of the traffic for api.shop.docker).
    assert_eq!(set.names["api.shop"], ips(&["172.18.0.3", "172.18.0.4"]));
    assert_eq!(
        set.clashes,
        [Clash { name: rel("api.shop"), containers: vec!["shop-api-1".into(), "shop-api-2".into()] }],
        "own names of two containers clash"
    );
    assert_eq!(set.names["shop-api-1"], ips(&["172.18.0.3"]), "own names stay apart");
    assert!(set.domains.is_empty(), "{:?}", set.domains);
    let skipped = set.skipped.iter().find(|s| s.container == "other").expect("the label is skipped, saying why");
    assert_eq!(skipped.reason, "api.shop.docker is the name of container shop-api-1, shop-api-2");
    // Before the helper has said its suffix, the label's name waits to be judged.
    let early = name_set(&list, &routed(), None);
    assert_eq!(early.skipped[0].reason, "only names below .test, .example, .internal, .home.arpa are answered");
}

#[test]
fn a_label_cannot_take_a_containers_name_or_the_suffixs_wildcard() {
    let list = [
        container("web", &[], &[("app", "172.18.0.2", "")]),
        container(
            "evil",
            &[(LABEL_DOMAINS, "web.docker,*.docker,docker,com,example.com,evil-admin.docker")],
            &[("app", "172.18.0.66", "")],
        ),
    ];
    let set = name_set(&list, &routed(), Some("docker"));
    assert_eq!(set.names["web"], ips(&["172.18.0.2"]), "web.docker is web's alone");
    assert_eq!(set.domains.keys().collect::<Vec<_>>(), ["evil-admin.docker"], "a name nobody has is fine");
    let why: BTreeMap<&str, &str> = set.skipped.iter().map(|s| (s.name.as_str(), s.reason.as_str())).collect();
    assert_eq!(why["web.docker"], "web.docker is the name of container web");
    assert!(why["*.docker"].contains("the containers' own names"), "{why:?}");
    assert!(why["docker"].contains("the containers' own names"), "{why:?}");
    assert!(why["com"].starts_with("only names below .docker"), "{why:?}");
    assert!(why["example.com"].starts_with("only names below .docker"), "{why:?}");
    assert!(set.clashes.is_empty());
    // A container's own label for its own name is no clash with itself.
    let own = [container("web", &[(LABEL_DOMAINS, "web.docker")], &[("app", "172.18.0.2", "")])];
    let set = name_set(&own, &routed(), Some("docker"));
    assert!(set.skipped.is_empty() && set.clashes.is_empty(), "{set:?}");
}

#[test]
fn a_container_on_a_skipped_public_subnet_gets_no_name() {
    let nets = vec![BridgeNetwork::test("lab", &["203.0.113.0/24"])];
    let list = [container("lab-web", &[], &[("lab", "203.0.113.10", "")])];
    let none = Routed::new(&nets, &BTreeSet::new(), &[]);
    assert!(name_set(&list, &none, Some("docker")).names.is_empty(), "not routed, so no name");
    let line = RouteStatus {
        net: "203.0.113.0/24".parse().unwrap(),
        source: RouteSource::Config,
        enabled: true,
        state: RouteState::Installed,
    };
    let covered = Routed::new(&nets, &BTreeSet::new(), &[line]);
    assert_eq!(name_set(&list, &covered, Some("docker")).names["lab-web"], ips(&["203.0.113.10"]));
}

#[test]
fn only_addresses_on_routed_networks_count() {
    let list = [
        container("both", &[], &[("app", "172.18.0.5", ""), ("off", "172.19.0.5", "")]),
        container("switched-off", &[], &[("off", "172.19.0.6", "")]),
        container("conflicted", &[], &[("vpn", "10.8.0.7", "")]),
        container("host-net", &[], &[("host", "", "")]),
        container("elsewhere", &[], &[("app", "192.0.2.1", "")]),
    ];
    let set = name_set(&list, &routed(), Some("docker"));
    assert_eq!(set.names, BTreeMap::from([("both".into(), ips(&["172.18.0.5"]))]));
    assert_eq!(set.claims.len(), 1, "no names for containers without a reachable address");
}

#[test]
fn an_ipv6_only_container_has_its_v6_address_only() {
    let list = [container("six", &[], &[("v6", "", "fd00:20::6")])];
    let set = name_set(&list, &routed(), Some("docker"));
    assert_eq!(set.names, BTreeMap::from([("six".into(), ips(&["fd00:20::6"]))]));
}

#[test]
fn our_guest_has_no_name() {
    let list = [container("dockroute-guest", &[(crate::guest::LABEL_OURS, "1")], &[("app", "172.18.0.2", "")])];
    assert_eq!(name_set(&list, &routed(), Some("docker")), NameSet::default());
}

/// Found with the `container_names` fuzz target's length property: under a 127-character
/// suffix, compose labels of 63 characters each made a 255-character name, and the helper
/// refuses a `set_names` holding one.
#[test]
fn compose_labels_too_long_with_a_long_suffix_are_skipped_not_sent() {
    let suffix = format!("{}.{}", "a".repeat(63), "b".repeat(63));
    let (service, project) = ("c".repeat(63), "d".repeat(63));
    let labels = [(COMPOSE_SERVICE, service.as_str()), (COMPOSE_PROJECT, project.as_str())];
    let list = [container("web", &labels, &[("app", "172.18.0.3", "")])];
    let set = name_set(&list, &routed(), Some(&suffix));
    assert_eq!(set.names.keys().collect::<Vec<_>>(), ["web"], "the container's own name fits");
    assert_eq!(set.skipped.len(), 1);
    assert_eq!(set.skipped[0].name, format!("{service}.{project}"));
    assert!(set.skipped[0].reason.ends_with("is longer than 253 characters"), "{:?}", set.skipped[0]);
    assert_eq!(name_set(&list, &routed(), Some("docker")).names.len(), 2, "both fit below .docker");
}

#[test]
fn https_ports_come_from_the_label_else_the_only_exposed_port_else_80_and_subs_add_names() {
    use bollard::models::{PortSummary, PortSummaryTypeEnum};
    let port = |p: u16, typ| PortSummary { private_port: p, typ: Some(typ), ..Default::default() };
    let mut one = container("one", &[], &[("app", "172.18.0.2", "")]);
    one.ports = Some(vec![port(3000, PortSummaryTypeEnum::TCP), port(53, PortSummaryTypeEnum::UDP)]);
    let mut two = container("two", &[], &[("app", "172.18.0.3", "")]);
    two.ports = Some(vec![port(3000, PortSummaryTypeEnum::TCP), port(3001, PortSummaryTypeEnum::TCP)]);
    let labelled = container(
        "lab",
        &[
            (LABEL_HTTPS_PORT, "8443"),
            ("dev.dockroute.https.admin", "8081"),
            ("dev.dockroute.https.bad_sub", "1"),
            ("dev.dockroute.https.api", "http"),
            (LABEL_DOMAINS, "lab.test"),
        ],
        &[("app", "172.18.0.4", "")],
    );
    let bad_label = container("bad", &[(LABEL_HTTPS_PORT, "99999")], &[("app", "172.18.0.5", "")]);
    // nginx with its own certificate: 443 among its ports says it speaks TLS itself.
    let mut own_tls = container("tls", &[], &[("app", "172.18.0.6", "")]);
    own_tls.ports = Some(vec![port(80, PortSummaryTypeEnum::TCP), port(443, PortSummaryTypeEnum::TCP)]);
    let set = name_set(&[one, two, labelled, bad_label, own_tls], &routed(), Some("docker"));
    let ports: Vec<(&str, u16)> = set.name_ports.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    assert_eq!(ports, [("admin.lab", 8081), ("bad", 80), ("lab", 8443), ("one", 3000), ("tls", 443), ("two", 80)]);
    assert_eq!(set.domain_ports, BTreeMap::from([("lab.test".to_string(), 8443)]));
    assert_eq!(set.names["admin.lab"], ips(&["172.18.0.4"]), "the sub name resolves to the container too");
    let skipped: Vec<&str> = set.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped, ["dev.dockroute.https.api", "dev.dockroute.https.bad_sub"]);
}
