use std::collections::HashMap;

use bollard::models::{
    ContainerSummary, ContainerSummaryNetworkSettings, EndpointSettings, PortSummary, PortSummaryTypeEnum,
};
use dockroute_api::client::ClientError;
use dockroute_api::{RouteSource, SessionInfo};

use super::derive::Traffic;
use super::*;

#[test]
fn a_network_is_exposed_when_one_of_its_subnets_is_and_a_config_line_locks_the_toggle() {
    let nets = [
        BridgeNetwork::test("web", &["198.19.1.0/24", "fd00:1::/64"]),
        BridgeNetwork::test("db", &["198.19.2.0/24"]),
        BridgeNetwork::test("x", &[]),
    ];
    let mut views = network_views(&nets, &BTreeSet::new(), &[], &[]);
    let exposed = |net: &str, source, id: Option<&str>| ExposedRoute {
        net: net.parse().unwrap(),
        source,
        network: id.map(str::to_string),
    };
    mark_exposed(
        &mut views,
        &[exposed("fd00:1::/64", ExposedBy::Api, Some("id-web")), exposed("198.19.2.0/24", ExposedBy::Config, None)],
    );
    let got: Vec<(bool, bool)> = views.iter().map(|v| (v.exposed, v.exposed_by_config)).collect();
    assert_eq!(got, [(true, false), (true, true), (false, false)]);
    // The same subnet exposed for a network that is gone: this one is not exposed.
    mark_exposed(&mut views, &[exposed("198.19.1.0/24", ExposedBy::Api, Some("id-gone"))]);
    assert!(!views[0].exposed, "exposure follows the network id, not the subnet");
    mark_exposed(&mut views, &[]);
    assert!(views.iter().all(|v| !v.exposed && !v.exposed_by_config), "taken back when the helper says so");
}

fn route(net: &str, state: RouteState) -> RouteStatus {
    RouteStatus { net: net.parse().unwrap(), source: RouteSource::App, enabled: true, state }
}

fn session(alive: bool) -> TunnelView {
    TunnelView {
        interface: Some("dockroute0".into()),
        listen: None,
        host_v4: None,
        guest_v4: None,
        host_v6: None,
        guest_v6: None,
        mtu: Some(1400),
        session: Some(SessionInfo {
            fingerprint: "00".repeat(4),
            guest: "198.18.0.2:1".parse().unwrap(),
            alive,
            handshake_age_ms: 5,
            last_seen_ms: 1,
            transport: dockroute_api::Transport::Udp,
        }),
        error: None,
    }
}

#[test]
fn phase_follows_wish_problem_and_session() {
    let mut v = View { want_connected: false, tunnel: Some(session(true)), ..Default::default() };
    assert_eq!(v.phase(), Phase::Disconnected, "the user's Disconnect wins over a live session");
    v.want_connected = true;
    assert_eq!(v.phase(), Phase::Connected);
    v.tunnel = Some(session(false));
    assert_eq!(v.phase(), Phase::Connecting);
    v.problem = Some(docker_problem("unix:///x.sock", &"connection refused"));
    assert_eq!(v.phase(), Phase::Error);
    v.tunnel = Some(session(true));
    v.problem = Some(Problem { kind: ProblemKind::RouteConflict, title: "t".into(), detail: "d".into(), action: None });
    assert_eq!(v.phase(), Phase::Connected, "a route conflict is a warning, not a broken tunnel");
}

#[test]
fn an_idle_guest_shows_as_idle_unless_something_is_broken_or_the_user_disconnected() {
    let mut v = View { want_connected: true, idle: true, tunnel: Some(session(false)), ..Default::default() };
    assert_eq!(v.phase(), Phase::Idle);
    assert_eq!(serde_json::to_value(&v).unwrap()["phase"], "idle");
    assert_eq!(serde_json::to_value(&v).unwrap()["idle"], true);
    v.problem = Some(docker_problem("unix:///x.sock", &"connection refused"));
    assert_eq!(v.phase(), Phase::Error);
    v.problem = None;
    v.want_connected = false;
    assert_eq!(v.phase(), Phase::Disconnected);
}

fn stats(tx: u64, rx: u64) -> StatsReport {
    StatsReport { tx_bytes: tx, rx_bytes: rx, ..Default::default() }
}

#[test]
fn throughput_is_the_rate_between_pushes() {
    let mut v = Traffic::default();
    v.push(stats(1_000, 0), 10_000);
    assert_eq!(v.throughput.len(), 1);
    assert_eq!(v.throughput[0].tx_bps, 0.0, "the first push is only a baseline");
    v.push(stats(2_000, 500), 10_500);
    let s = v.throughput[1];
    assert_eq!((s.t_ms, s.tx_bps, s.rx_bps), (10_500, 16_000.0, 8_000.0));
    // A restarted helper starts its counters at zero: no negative or huge rate.
    v.push(stats(10, 10), 11_500);
    assert_eq!((v.throughput[2].tx_bps, v.throughput[2].rx_bps), (0.0, 0.0));
    // A push at the same instant adds no point and keeps the counters the last point used.
    v.push(stats(20, 20), 11_500);
    assert_eq!(v.throughput.len(), 3);
    assert_eq!(v.stats.as_ref().unwrap().tx_bytes, 10);
    v.push(stats(1010, 10), 12_500);
    assert_eq!(v.throughput[3].tx_bps, 8_000.0, "1000 bytes over the 1 s since the last point");
    for i in 0..200u64 {
        v.push(stats(2000 + i, 20), 13_000 + i * 1000);
    }
    assert_eq!(v.throughput.len(), THROUGHPUT_SAMPLES);
    assert_eq!(v.throughput.back().unwrap().t_ms, 13_000 + 199 * 1000, "the newest samples are kept");
}

#[test]
fn network_rows_show_toggle_and_route_state() {
    let nets = [
        BridgeNetwork::test("a", &["198.19.1.0/24"]),
        BridgeNetwork::test("b", &["198.19.2.0/24", "2001:2:0:2::/64"]),
        BridgeNetwork::test("c", &["198.19.3.0/24"]),
        BridgeNetwork::test("d", &["198.19.4.0/24"]),
        BridgeNetwork::test("e", &["198.19.5.0/24"]),
    ];
    let routes = [
        route("198.19.1.0/24", RouteState::Installed),
        route("198.19.2.0/24", RouteState::Installed), // the v6 half is not reported yet
        route(
            "198.19.3.0/24",
            RouteState::Conflict { interface: "en0".into(), route: "198.19.0.0/16".parse().unwrap() },
        ),
        route("198.19.4.0/24", RouteState::Failed { message: "boom".into() }),
    ];
    let disabled: BTreeSet<String> = ["e".to_string(), "c".to_string()].into();
    let containers = [ContainerView {
        id: "1".into(),
        name: "web".into(),
        addresses: vec![Address { network: "a".into(), ip: "198.19.1.2".parse().unwrap() }],
        ports: vec![],
        names: vec![],
    }];
    let rows = network_views(&nets, &disabled, &routes, &containers);
    let shown: Vec<(RouteShown, bool, bool, usize)> =
        rows.iter().map(|r| (r.route, r.enabled, r.checkable, r.containers)).collect();
    assert_eq!(
        shown,
        [
            (RouteShown::Installed, true, true, 1),
            (RouteShown::Pending, true, true, 0),
            (RouteShown::Conflict, false, false, 0),
            (RouteShown::Failed, true, true, 0),
            (RouteShown::Disabled, false, true, 0),
        ]
    );
    let conflict = rows[2].conflict.as_deref().unwrap();
    assert!(conflict.contains("198.19.3.0/24") && conflict.contains("en0"), "{conflict}");
    let v = View { networks: rows, ..Default::default() };
    assert_eq!(v.conflict_warning().unwrap().kind, ProblemKind::RouteConflict);
}

#[test]
fn only_enabled_networks_become_routes() {
    let nets = [
        BridgeNetwork::test("a", &["198.19.1.0/24"]),
        BridgeNetwork::test("b", &["198.19.2.0/24"]),
        BridgeNetwork::test("c", &["198.19.1.0/24"]),
    ];
    let disabled: BTreeSet<String> = ["b".to_string(), "c".to_string()].into();
    let want: Vec<IpNet> = vec!["198.19.1.0/24".parse().unwrap()];
    assert_eq!(crate::discovery::desired_routes(&nets, &disabled, &[]), want);
    assert_eq!(
        crate::discovery::desired_routes(&nets, &BTreeSet::new(), &[]).len(),
        2,
        "a subnet shared by two networks is one route"
    );
}

fn container(name: &str, labels: &[(&str, &str)], nets: &[(&str, &str)], ports: &[u16]) -> ContainerSummary {
    ContainerSummary {
        id: Some(format!("id-{name}")),
        names: Some(vec![format!("/{name}")]),
        labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        network_settings: Some(ContainerSummaryNetworkSettings {
            networks: Some(
                nets.iter()
                    .map(|(n, ip)| {
                        (n.to_string(), EndpointSettings { ip_address: Some(ip.to_string()), ..Default::default() })
                    })
                    .collect::<HashMap<_, _>>(),
            ),
        }),
        ports: Some(
            ports
                .iter()
                .map(|p| PortSummary { private_port: *p, typ: Some(PortSummaryTypeEnum::TCP), ..Default::default() })
                .collect(),
        ),
        ..Default::default()
    }
}

#[test]
fn containers_list_bridge_addresses_without_our_guest() {
    let nets = [BridgeNetwork::test("a", &["198.19.1.0/24"])];
    let list = [
        container("web", &[], &[("a", "198.19.1.2"), ("host", "")], &[8080, 80, 80]),
        container("guest", &[(crate::guest::LABEL_OURS, "1")], &[("a", "198.19.1.3")], &[]),
        container("hostnet", &[], &[("host", "")], &[]),
        container("bad-ip", &[], &[("a", "not an ip")], &[]),
    ];
    let views = container_views(&list, &nets);
    assert_eq!(views.len(), 1, "{views:?}");
    let web = &views[0];
    assert_eq!(web.name, "web");
    assert_eq!(web.addresses, [Address { network: "a".into(), ip: "198.19.1.2".parse().unwrap() }]);
    let ports: Vec<u16> = web.ports.iter().map(|p| p.port).collect();
    assert_eq!(ports, [80, 8080], "deduplicated and sorted");
    assert_eq!(web.ports[0].protocol, "tcp");
}

#[test]
fn helper_problems_say_what_to_do() {
    let path = std::path::Path::new("/run/dockroute.sock");
    let missing = helper_problem(path, &ClientError::NotRunning(path.into()), false);
    assert_eq!((missing.kind, missing.action), (ProblemKind::HelperNotInstalled, Some(Action::InstallHelper)));
    assert_eq!(missing.title, "Helper not installed");
    let stopped = helper_problem(path, &ClientError::NotRunning(path.into()), true);
    assert_eq!(stopped.kind, ProblemKind::HelperNotRunning);
    let refused = helper_problem(path, &ClientError::NotAuthorised("not authorised: group".into()), true);
    assert_eq!(refused.kind, ProblemKind::HelperNotAuthorised);
    assert!(refused.detail.contains("group"));
    let docker = docker_problem("unix:///var/run/docker.sock", &"connection refused");
    assert_eq!(docker.title, "Docker is not running");
    assert!(docker.detail.contains("unix:///var/run/docker.sock") && docker.detail.contains("connection refused"));
}

#[test]
fn the_view_serialises_as_the_dashboard_expects() {
    let mut v = View { want_connected: true, tunnel: Some(session(true)), ..Default::default() };
    assert_eq!(serde_json::to_value(&v).unwrap()["phase"], "connected");
    v.problem = Some(helper_problem(std::path::Path::new("/x"), &ClientError::NotRunning("/x".into()), false));
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["phase"], "error", "the page gets the phase that follows from the problem");
    assert_eq!(json["problem"]["kind"], "helper_not_installed");
    assert_eq!(json["problem"]["action"], "install_helper");
    assert_eq!(json["tunnel"]["session"]["alive"], true);
    let back: View = serde_json::from_value(json).unwrap();
    assert_eq!(back, v);
}

#[test]
fn every_field_reaches_the_page_and_the_phase_is_never_stale() {
    let mut v = View {
        app_version: "1.2.3".into(),
        want_connected: true,
        engine: Some("unix:///d.sock".into()),
        helper_socket: "/run/h.sock".into(),
        helper_version: Some("1.2.2".into()),
        tunnel: Some(session(false)),
        networks: network_views(&[BridgeNetwork::test("a", &["198.19.1.0/24"])], &BTreeSet::new(), &[], &[]),
        stats: Some(stats(1, 2)),
        autostart: true,
        dns: Some(crate::dns_view::DnsView {
            listen: Some("192.168.251.1:53".into()),
            suffix: "docker".into(),
            resolver: "resolvectl".into(),
            problems: vec![],
            clashes: vec![],
            skipped: vec![],
        }),
        ..Default::default()
    };
    v.throughput.push_back(Sample { t_ms: 5, tx_bps: 0.0, rx_bps: 0.0 });
    let json = serde_json::to_value(&v).unwrap();
    let keys: BTreeSet<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = [
        "app_version",
        "phase",
        "want_connected",
        "problem",
        "engine",
        "helper_socket",
        "helper_version",
        "tunnel",
        "networks",
        "containers",
        "stats",
        "throughput",
        "autostart",
        "dns",
        "share",
        "idle",
        "let_docker_sleep",
        "https",
        "engines",
        "runtime",
    ]
    .into();
    assert_eq!(keys, want);
    assert_eq!(json["phase"], "connecting");
    assert_eq!(serde_json::from_value::<View>(json).unwrap(), v, "nothing lost on the way");
    // Whoever changes the view, the phase shown follows.
    v.want_connected = false;
    assert_eq!(serde_json::to_value(&v).unwrap()["phase"], "disconnected");
}

#[test]
fn a_pending_approval_replaces_only_the_helper_problem_it_explains() {
    let socket = std::path::Path::new("/run/dockroute.sock");
    let not_running = ClientError::NotRunning(socket.into());
    for exists in [false, true] {
        let mut v = View { want_connected: true, ..Default::default() };
        v.problem = Some(helper_problem(socket, &not_running, exists));
        v.show_helper_approval("System Settings → General → Login Items & Extensions");
        let p = v.problem.clone().unwrap();
        assert_eq!((p.kind, p.action), (ProblemKind::HelperNeedsApproval, Some(Action::OpenLoginItems)));
        assert!(
            p.detail.contains("in System Settings → General → Login Items & Extensions, switch on"),
            "{}",
            p.detail
        );
        assert_eq!(v.phase(), Phase::Error, "the tunnel cannot work until it is allowed");
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(
            (json["problem"]["kind"].as_str(), json["problem"]["action"].as_str()),
            (Some("helper_needs_approval"), Some("open_login_items"))
        );
    }
    // The helper was reached (Docker is the problem, or there is none): nothing to approve.
    let docker = docker_problem("unix:///d.sock", &"refused");
    for problem in [Some(docker), None] {
        let mut v = View { want_connected: true, problem: problem.clone(), ..Default::default() };
        v.show_helper_approval("Login Items");
        assert_eq!(v.problem, problem);
    }
    let refused = helper_problem(socket, &ClientError::NotAuthorised("group".into()), true);
    let mut v = View { want_connected: true, problem: Some(refused.clone()), ..Default::default() };
    v.show_helper_approval("Login Items");
    assert_eq!(v.problem, Some(refused), "a helper that answers was allowed already");
    // Disconnected: nothing to complain about.
    let mut v = View {
        want_connected: false,
        problem: Some(helper_problem(socket, &not_running, false)),
        ..Default::default()
    };
    v.show_helper_approval("Login Items");
    assert_eq!(v.problem.unwrap().kind, ProblemKind::HelperNotInstalled);
}

#[test]
fn a_refused_helper_is_explained_with_the_other_way_in() {
    let socket = std::path::Path::new("/var/run/dockroute.sock");
    let not_running = ClientError::NotRunning(socket.into());
    // launchd's words (`last exit code = 78: EX_CONFIG`), as the app passes them on.
    let why = "launchd does not start the helper (last exit code = 78: EX_CONFIG, job state = spawn failed)";
    for exists in [false, true] {
        let mut v = View { want_connected: true, ..Default::default() };
        v.problem = Some(helper_problem(socket, &not_running, exists));
        v.show_helper_refused(why);
        let p = v.problem.clone().unwrap();
        assert_eq!((p.kind, p.action), (ProblemKind::HelperRefused, Some(Action::InstallHelperWithPassword)));
        assert!(p.detail.starts_with(why) && p.detail.contains("administrator password"), "{}", p.detail);
        assert_eq!(v.phase(), Phase::Error);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["problem"]["action"], "install_helper_with_password");
    }
    // A helper that answers was not refused, whatever the note says.
    let docker = docker_problem("unix:///d.sock", &"refused");
    let mut v = View { want_connected: true, problem: Some(docker.clone()), ..Default::default() };
    v.show_helper_refused(why);
    assert_eq!(v.problem, Some(docker));
}

#[test]
fn an_outdated_helper_is_a_warning_that_never_hides_a_real_problem() {
    let mut v = View { want_connected: true, ..Default::default() };
    v.show_helper_outdated("0.1.0", "0.2.0");
    let p = v.problem.clone().unwrap();
    assert_eq!((p.kind, p.action), (ProblemKind::HelperOutdated, Some(Action::InstallHelperWithPassword)));
    assert!(p.detail.contains("version 0.1.0, the app is 0.2.0"), "{}", p.detail);
    assert!(!p.kind.blocks(), "the old helper still works");
    // Over a route conflict warning, yes; over an error, no.
    let docker = docker_problem("unix:///d.sock", &"refused");
    let mut v = View { want_connected: true, problem: Some(docker.clone()), ..Default::default() };
    v.show_helper_outdated("0.1.0", "0.2.0");
    assert_eq!(v.problem, Some(docker));
}

#[test]
fn a_compose_network_on_a_public_subnet_is_shown_skipped_with_the_route_line_that_would_route_it() {
    let nets = [
        BridgeNetwork::test("evil", &["8.8.8.0/24"]),
        BridgeNetwork::test("lab", &["203.0.113.0/24"]),
        BridgeNetwork::test("dual", &["198.19.7.0/24", "2a00:1450::/64"]),
    ];
    let line = RouteStatus {
        net: "203.0.113.0/24".parse().unwrap(),
        source: RouteSource::Config,
        enabled: true,
        state: RouteState::Installed,
    };
    let rows = network_views(&nets, &BTreeSet::new(), &[line, route("198.19.7.0/24", RouteState::Installed)], &[]);
    let shown: Vec<(RouteShown, bool, bool)> = rows.iter().map(|r| (r.route, r.enabled, r.checkable)).collect();
    assert_eq!(
        shown,
        [
            (RouteShown::Skipped, false, false),
            (RouteShown::Installed, true, true),
            // Its private half is routed and can still be switched off.
            (RouteShown::Skipped, true, true),
        ]
    );
    assert_eq!(
        rows[0].skipped.as_deref(),
        Some("Skipped: 8.8.8.0/24 is public address space: add `route 8.8.8.0/24` to the helper's config to route it")
    );
    assert_eq!(rows[1].skipped, None, "a route line covers it");
    assert!(rows[2].skipped.as_deref().unwrap().contains("route 2a00:1450::/64"));
    assert_eq!(serde_json::to_value(&rows[0]).unwrap()["route"], "skipped");
    // Said in the banner (and `--headless`'s log), as a warning next to a working tunnel.
    let v = View { want_connected: true, tunnel: Some(session(true)), networks: rows, ..Default::default() };
    let warning = v.conflict_warning().unwrap();
    assert_eq!((warning.kind, warning.title.as_str()), (ProblemKind::RouteSkipped, "Network evil is not routed"));
    assert!(warning.detail.contains("add `route 8.8.8.0/24`"));
    assert!(!warning.kind.blocks());
}
