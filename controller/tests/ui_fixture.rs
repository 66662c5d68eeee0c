//! The dashboard's browser preview (ui/index.html?preview=NAME) shows Views this test makes
//! through the controller's own functions, so the preview cannot drift from what the app sends:
//! `ui/preview/views.js` must equal what is generated here. After a change to the View:
//!
//!     DOCKROUTE_UPDATE_FIXTURES=1 cargo test -p dockroute-controller --test ui_fixture
//!
//! and commit the file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use bollard::models::{
    ContainerSummary, ContainerSummaryNetworkSettings, EndpointSettings, PortSummary, PortSummaryTypeEnum,
};
use dockroute_api::client::ClientError;
use dockroute_api::share::{ExposedBy, ExposedRoute, ShareStatus, TeammateCounters, TeammateInfo};
use dockroute_api::{
    CaStatus, DnsCounters, DnsStatus, HttpsStatus, RouteSource, RouteState, RouteStatus, SessionInfo, StatsReport,
    DEFAULT_API_SOCKET,
};
use dockroute_controller::discovery::BridgeNetwork;
use dockroute_controller::endpoint::DockerEndpoint;
use dockroute_controller::engines::choice::{self, Found, Probed};
use dockroute_controller::engines::EngineKind;
use dockroute_controller::guest::LABEL_OURS;
use dockroute_controller::names::{self, COMPOSE_PROJECT, COMPOSE_SERVICE, LABEL_DOMAINS};
use dockroute_controller::view::derive::Traffic;
use dockroute_controller::view::{self, ProblemKind, RuntimeView, TunnelView, View};
use dockroute_controller::{dns_view, https_view};

const FIXTURE: &str = "../ui/preview/views.js";
const UPDATE_VAR: &str = "DOCKROUTE_UPDATE_FIXTURES";
const APP_VERSION: &str = "0.1.0";
const ENGINE: &str = "unix:///var/run/docker.sock";
/// The drop counters the helper reports: one per engine `DropReason`, by `DropReason::name()`.
const DROP_NAMES: [&str; 11] = [
    "malformed",
    "bad_version",
    "wrong_session",
    "wrong_peer",
    "replay",
    "counter_jump",
    "auth_failed",
    "unexpected_handshake",
    "no_session",
    "bad_inner_packet",
    "oversized",
];
/// 2026-01-01T00:00:00Z: the preview moves the samples to end at the moment it opens.
const T0_MS: u64 = 1_767_225_600_000;

/// A Docker-style id (64 hex digits) that stays the same from run to run (FNV-1a of the name).
fn id(name: &str) -> String {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("{hash:016x}").repeat(4)
}

fn bridge(name: &str, subnets: &[&str]) -> BridgeNetwork {
    BridgeNetwork {
        id: id(name),
        name: name.into(),
        subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
        gateways: Vec::new(),
        internal: false,
    }
}

fn route(net: &str, state: RouteState) -> RouteStatus {
    RouteStatus { net: net.parse().unwrap(), source: RouteSource::App, enabled: true, state }
}

/// A running container as Docker lists it: (network, IPv4, IPv6) per network, ports as
/// (port, udp?).
fn container(
    name: &str,
    labels: &[(&str, &str)],
    nets: &[(&str, &str, &str)],
    ports: &[(u16, bool)],
) -> ContainerSummary {
    let endpoint = |v4: &str, v6: &str| EndpointSettings {
        ip_address: Some(v4.to_string()),
        global_ipv6_address: (!v6.is_empty()).then(|| v6.to_string()),
        ..Default::default()
    };
    let networks: HashMap<String, EndpointSettings> =
        nets.iter().map(|(n, v4, v6)| (n.to_string(), endpoint(v4, v6))).collect();
    let port = |&(p, udp): &(u16, bool)| PortSummary {
        private_port: p,
        typ: Some(if udp { PortSummaryTypeEnum::UDP } else { PortSummaryTypeEnum::TCP }),
        ..Default::default()
    };
    ContainerSummary {
        id: Some(id(name)),
        names: Some(vec![format!("/{name}")]),
        labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        network_settings: Some(ContainerSummaryNetworkSettings { networks: Some(networks) }),
        ports: Some(ports.iter().map(port).collect()),
        ..Default::default()
    }
}

fn tunnel() -> TunnelView {
    TunnelView {
        interface: Some("utun7".into()),
        listen: Some("127.0.0.1:2511".into()),
        host_v4: Some("192.168.251.1/24".into()),
        guest_v4: Some("192.168.251.2".into()),
        host_v6: Some("fdd0:d0c4:2511::1/64".into()),
        guest_v6: Some("fdd0:d0c4:2511::2".into()),
        mtu: Some(1400),
        session: Some(SessionInfo {
            fingerprint: "3b8061cd".into(),
            guest: "192.168.65.3:48500".parse().unwrap(),
            alive: true,
            handshake_age_ms: 1649,
            last_seen_ms: 831,
            transport: dockroute_api::Transport::Udp,
        }),
        error: None,
    }
}

/// A minute of stats pushes with traffic that rises and falls (every 5 s: the file stays short).
fn push_traffic(v: &mut View) {
    // kB sent and received in each 5 s; integers in, one IEEE division out: the same file on
    // every machine.
    const TX_KB: [u64; 12] = [120, 180, 260, 410, 330, 220, 150, 240, 390, 520, 360, 210];
    const RX_KB: [u64; 12] = [600, 900, 1500, 2600, 2100, 1200, 800, 1400, 2400, 3100, 2200, 1300];
    let (mut tx, mut rx) = (48_213_377u64, 1_302_443_901u64);
    let mut traffic = Traffic { stats: v.stats.take(), throughput: std::mem::take(&mut v.throughput) };
    for i in 0..12 {
        tx += TX_KB[i] * 1000;
        rx += RX_KB[i] * 1000;
        let mut drops: BTreeMap<String, u64> = DROP_NAMES.iter().map(|n| (n.to_string(), 0)).collect();
        drops.insert("malformed".into(), 2);
        let stats = StatsReport {
            tx_packets: tx / 120,
            tx_bytes: tx,
            rx_packets: rx / 1_368,
            rx_bytes: rx,
            keepalives_sent: 41,
            handshakes: 3,
            stale_notices: 0,
            drops,
            dns: Some(DnsCounters {
                queries: 40 * i as u64,
                answered: 37 * i as u64,
                nxdomain: 3 * i as u64,
                refused: 0,
                malformed: 0,
            }),
            teammates: Default::default(),
        };
        traffic.push(stats, T0_MS + i as u64 * 5000);
    }
    (v.stats, v.throughput) = (traffic.stats, traffic.throughput);
}

/// Connected, with three networks (one switched off by the user) and their containers; with
/// `conflict`, also a network whose subnet a VPN's route already covers.
fn connected(conflict: bool) -> View {
    let mut bridges = vec![
        bridge("mynet", &["172.20.0.0/16"]),
        bridge("shop_default", &["172.21.0.0/16", "fd12:3456:789a::/64"]),
        bridge("bridge", &["172.17.0.0/16"]),
    ];
    let mut routes = vec![
        route("172.20.0.0/16", RouteState::Installed),
        route("172.21.0.0/16", RouteState::Installed),
        route("fd12:3456:789a::/64", RouteState::Installed),
    ];
    // Compose's labels give service.project names; a label domain two containers claim clashes,
    // one outside the private-use names is skipped.
    let shop = |service| [(COMPOSE_SERVICE, service), (COMPOSE_PROJECT, "shop")];
    let [api, redis, worker] = [shop("api"), shop("redis"), shop("worker")];
    let api_labels = [api[0], api[1], (LABEL_DOMAINS, "shop.test,*.shop.test")];
    let mut listed = vec![
        container(
            "web",
            &[(LABEL_DOMAINS, "shop.test")],
            &[("mynet", "172.20.0.2", "")],
            &[(80, false), (443, false), (80, false)],
        ),
        container("db", &[(LABEL_DOMAINS, "db.example.com")], &[("mynet", "172.20.0.3", "")], &[(5432, false)]),
        container("shop-api-1", &api_labels, &[("shop_default", "172.21.0.2", "fd12:3456:789a::2")], &[(8080, false)]),
        container("shop-redis-1", &redis, &[("shop_default", "172.21.0.3", "")], &[(6379, false)]),
        container("shop-worker-1", &worker, &[("shop_default", "172.21.0.4", "")], &[]),
        // Our own guest container (host network): never listed.
        container("dockroute-guest", &[(LABEL_OURS, "1")], &[("host", "", "")], &[]),
    ];
    if conflict {
        // A compose network on public space (a documentation range): skipped, with the line.
        bridges.push(bridge("compose_lab", &["203.0.113.0/24"]));
        bridges.push(bridge("vpn_clash", &["10.8.0.0/16"]));
        let covering = RouteState::Conflict { interface: "utun3".into(), route: "10.8.0.0/14".parse().unwrap() };
        routes.push(route("10.8.0.0/16", covering));
        listed.push(container("dns", &[], &[("vpn_clash", "10.8.0.5", "")], &[(53, true)]));
    }
    let disabled: BTreeSet<String> = ["bridge".to_string()].into();
    let mut containers = view::container_views(&listed, &bridges);
    let names = names::name_set(&listed, &names::Routed::new(&bridges, &disabled, &routes), Some("docker"));
    view::derive::with_names(&mut containers, &names, Some("docker"));
    let dns = DnsStatus {
        listen: Some("192.168.251.1:53".parse().unwrap()),
        suffix: "docker".into(),
        zones: vec!["docker".into(), "shop.test".into()],
        names: names.names.len() + names.domains.len(),
        resolver: "/etc/resolver/docker, /etc/resolver/shop.test".into(),
        problems: vec![],
    };
    let mut v = View {
        app_version: APP_VERSION.into(),
        want_connected: true,
        engine: Some(ENGINE.into()),
        helper_socket: DEFAULT_API_SOCKET.into(),
        tunnel: Some(tunnel()),
        networks: view::network_views(&bridges, &disabled, &routes, &containers),
        containers,
        dns: Some(dns_view::dns_view(&dns, &names)),
        https: Some(https_view::https_view(Some(&https()), true)),
        ..Default::default()
    };
    v.problem = v.conflict_warning();
    v.engines = choice::views(&engines_found(), Some(0));
    v.runtime = Some(RuntimeView {
        engine: EngineKind::DockerDesktop.display_name().into(),
        engine_version: Some("28.5.1".into()),
        api_version: Some("1.51".into()),
        host_name: "host.docker.internal".into(),
        firewall: None,
    });
    push_traffic(&mut v);
    let share = share();
    view::mark_exposed(&mut v.networks, &share.exposed);
    v.share = Some(share);
    v
}

/// The HTTPS front on the link address, its CA not yet trusted anywhere (the Trust button's
/// moment).
fn https() -> HttpsStatus {
    HttpsStatus {
        listen: Some("192.168.251.1:443".parse().unwrap()),
        ca: Some(CaStatus {
            path: "/Library/Application Support/Dockroute/dockroute.ca.pem".into(),
            id: "3f9a1c07".into(),
            // 2036-11-28
            not_after: 2_111_443_200,
            constraints: "names *.docker, *.test, *.example, *.internal, *.home.arpa and addresses in 10.0.0.0/8, \
                          172.16.0.0/12, 192.168.0.0/16, fc00::/7 only"
                .into(),
            trusted_in: vec![],
        }),
        problems: vec![],
        off_by_app: false,
        redirected: 3,
    }
}

/// One network shared with two teammates over WireGuard: one connected, one never yet.
fn share() -> ShareStatus {
    let drops =
        |spoofed: u64| BTreeMap::from([("not_allowed_destination".to_string(), 0), ("spoofed_source".into(), spoofed)]);
    ShareStatus {
        expose: Some("0.0.0.0:2512".parse().unwrap()),
        listening: true,
        error: None,
        exposed: vec![ExposedRoute {
            net: "172.20.0.0/16".parse().unwrap(),
            source: ExposedBy::Api,
            network: Some(id("mynet")),
        }],
        teammates: vec![
            TeammateInfo {
                name: "alice".into(),
                address: Some("192.168.251.3".parse().unwrap()),
                public_key: Some("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=".into()),
                endpoint: Some("198.18.20.7:51820".parse().unwrap()),
                last_handshake_ms: Some(42_000),
                problem: None,
                counters: TeammateCounters {
                    rx_packets: 1_204,
                    rx_bytes: 96_377,
                    tx_packets: 1_310,
                    tx_bytes: 1_803_245,
                    drops: drops(2),
                },
            },
            TeammateInfo {
                name: "bob".into(),
                address: Some("192.168.251.4".parse().unwrap()),
                public_key: Some("TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=".into()),
                counters: TeammateCounters { drops: drops(0), ..Default::default() },
                ..Default::default()
            },
        ],
        unattributed_drops: BTreeMap::from([("garbage".to_string(), 3), ("unknown_key".into(), 1)]),
    }
}

/// Docker Desktop, Colima and OrbStack on one Mac, as `engines::probe::survey` reports them.
fn engines_found() -> Vec<Found> {
    let found = |path: &str, source: &str, kind, version: &str| Found {
        endpoint: DockerEndpoint { host: format!("unix:///Users/me/{path}"), source: source.into() },
        probed: Ok(Probed {
            kind,
            version: Some(version.into()),
            api_version: Some("1.51".into()),
            announces_networks: true,
        }),
    };
    vec![
        found(
            ".docker/run/docker.sock",
            "context \"desktop-linux\" (config.json currentContext)",
            EngineKind::DockerDesktop,
            "28.5.1",
        ),
        found(".colima/default/docker.sock", "context \"colima\"", EngineKind::Colima, "28.4.0"),
        found(".orbstack/run/docker.sock", "context \"orbstack\"", EngineKind::OrbStack, "28.5.2"),
    ]
}

/// The user follows OrbStack: nothing starts there, the others are offered.
fn orbstack() -> View {
    let found = engines_found();
    View {
        app_version: APP_VERSION.into(),
        want_connected: true,
        helper_socket: DEFAULT_API_SOCKET.into(),
        problem: Some(view::engine_not_needed_problem(&choice::alternatives(&found, Some(2)))),
        engines: choice::views(&found, Some(2)),
        ..Default::default()
    }
}

/// Connect was asked for, but the helper is not installed.
fn helper_missing() -> View {
    let socket = Path::new(DEFAULT_API_SOCKET);
    let problem = view::helper_problem(socket, &ClientError::NotRunning(socket.into()), false);
    View {
        app_version: APP_VERSION.into(),
        want_connected: true,
        helper_socket: DEFAULT_API_SOCKET.into(),
        problem: Some(problem),
        ..Default::default()
    }
}

/// macOS will not start the helper an ad-hoc signed app registered: the password way is offered
/// (launchd's words as `launchctl print` gives them, Stack Overflow question 78809259).
fn helper_refused() -> View {
    let mut v = helper_missing();
    v.show_helper_refused(
        "launchd does not start the helper (last exit code = 78: EX_CONFIG, job state = spawn failed)",
    );
    v
}

/// The helper answers, Docker does not.
fn docker_missing() -> View {
    View {
        app_version: APP_VERSION.into(),
        want_connected: true,
        helper_socket: DEFAULT_API_SOCKET.into(),
        problem: Some(view::docker_problem(ENGINE, &"connection refused")),
        ..Default::default()
    }
}

/// The user chose Disconnect.
fn disconnected() -> View {
    View { app_version: APP_VERSION.into(), helper_socket: DEFAULT_API_SOCKET.into(), ..Default::default() }
}

fn views() -> BTreeMap<&'static str, View> {
    BTreeMap::from([
        ("connected", connected(false)),
        ("conflict", connected(true)),
        ("helper_missing", helper_missing()),
        ("helper_refused", helper_refused()),
        ("docker_missing", docker_missing()),
        ("disconnected", disconnected()),
        ("orbstack", orbstack()),
    ])
}

fn render(views: &BTreeMap<&'static str, View>) -> String {
    let json = serde_json::to_string_pretty(views).unwrap();
    format!(
        "// Generated by controller/tests/ui_fixture.rs from the Rust `View`: do not edit. To update:\n\
         // {UPDATE_VAR}=1 cargo test -p dockroute-controller --test ui_fixture\n\
         window.DockroutePreviewViews = {json};\n"
    )
}

#[test]
fn the_preview_shows_what_the_controller_makes() {
    let views = views();
    // Each preview is the state its name says, as the dashboard reads it.
    let json = serde_json::to_value(&views).unwrap();
    let phases: Vec<(&str, &str)> = views.keys().map(|k| (*k, json[k]["phase"].as_str().unwrap())).collect();
    assert_eq!(
        phases,
        [
            ("conflict", "connected"),
            ("connected", "connected"),
            ("disconnected", "disconnected"),
            ("docker_missing", "error"),
            ("helper_missing", "error"),
            ("helper_refused", "error"),
            ("orbstack", "error"),
        ]
    );
    let orb = &views["orbstack"];
    assert_eq!(orb.problem.as_ref().map(|p| p.kind), Some(ProblemKind::EngineNotNeeded));
    assert!(orb.problem.as_ref().unwrap().detail.contains("Docker Desktop, Colima"), "the others are offered");
    assert!(orb.engines[2].followed && orb.tunnel.is_none() && orb.runtime.is_none(), "nothing runs on OrbStack");
    let refused = views["helper_refused"].problem.as_ref().unwrap();
    assert_eq!(
        (refused.kind, refused.action),
        (ProblemKind::HelperRefused, Some(view::Action::InstallHelperWithPassword))
    );
    let conflict = &views["conflict"];
    assert_eq!(conflict.problem.as_ref().map(|p| p.kind), Some(ProblemKind::RouteConflict));
    assert!(views["connected"].problem.is_none());
    assert_eq!(conflict.containers.len(), 6, "five, the dns container, not our guest");
    assert!(conflict.throughput.len() > 1 && conflict.stats.is_some(), "the chart has samples to draw");
    let dns = views["connected"].dns.as_ref().expect("names are shown");
    assert_eq!(dns.clashes.len(), 1, "shop.test, claimed by web and shop-api-1");
    assert_eq!(dns.skipped.len(), 1, "db.example.com is not a private-use name");
    let web = views["connected"].containers.iter().find(|c| c.name == "web").unwrap();
    assert_eq!(web.names.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["web.docker", "shop.test"]);

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let want = render(&views);
    if std::env::var(UPDATE_VAR).is_ok_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(have.lines().count().min(want.lines().count()));
        panic!(
            "{} is not what the Rust View makes now (first difference at line {}). Regenerate it with\n  \
             {UPDATE_VAR}=1 cargo test -p dockroute-controller --test ui_fixture\nand commit it.",
            path.display(),
            line + 1
        );
    }
}
