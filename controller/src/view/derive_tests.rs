use dockroute_api::share::{ExposedBy, ExposedRoute};
use dockroute_api::{
    DnsStatus, RouteSource, RouteState, RouteStatus, SecretSource, SessionInfo, ShareStatus, TunnelRequest,
};

use super::*;
use crate::dns_view::tests::set as names;
use crate::view::{docker_problem, helper_approval_problem, Address, Phase, ProblemKind, RouteShown};

fn status(routes: &[(&str, RouteState)]) -> Status {
    Status {
        helper_version: "0.9.0".into(),
        requested: TunnelRequest::Up,
        error: None,
        listen: Some("127.0.0.1:2511".parse().unwrap()),
        interface: Some("dockroute0".into()),
        link: None,
        session: Some(SessionInfo {
            fingerprint: "0011aabb".into(),
            guest: "127.0.0.1:40000".parse().unwrap(),
            alive: true,
            handshake_age_ms: 10,
            last_seen_ms: 10,
            transport: Default::default(),
        }),
        routes: routes
            .iter()
            .map(|(net, state)| RouteStatus {
                net: net.parse().unwrap(),
                source: RouteSource::App,
                enabled: true,
                state: state.clone(),
            })
            .collect(),
        secret_source: SecretSource::Api,
        transport: Default::default(),
        iptables: Vec::new(),
        share: ShareStatus {
            exposed: vec![ExposedRoute {
                net: "198.19.1.0/24".parse().unwrap(),
                source: ExposedBy::Api,
                network: Some("id-web".into()),
            }],
            ..Default::default()
        },
        dns: Some(Box::new(DnsStatus {
            listen: Some("198.18.0.1:53".parse().unwrap()),
            suffix: "docker".into(),
            zones: vec!["docker".into()],
            names: 2,
            resolver: "resolvectl".into(),
            problems: Vec::new(),
        })),
        https: None,
    }
}

fn container(id: &str, network: &str, ip: &str) -> ContainerView {
    ContainerView {
        id: id.into(),
        name: id.into(),
        addresses: vec![Address { network: network.into(), ip: ip.parse().unwrap() }],
        ports: vec![],
        names: vec![],
    }
}

/// A controller that sees two networks (one switched off), one container, a live session.
fn reported() -> ViewInputs {
    let gathered = Gathered {
        live: true,
        engine: Some("unix:///var/run/docker.sock".into()),
        status: Some(status(&[("198.19.1.0/24", RouteState::Installed)])),
        networks: vec![BridgeNetwork::test("web", &["198.19.1.0/24"]), BridgeNetwork::test("db", &["198.19.2.0/24"])],
        disabled: BTreeSet::from(["db".to_string()]),
        containers: vec![container("id1", "web", "198.19.1.2")],
        names: names(),
        ..Default::default()
    };
    let mut inputs = ViewInputs { app_version: "1.0.0".into(), want_connected: true, ..Default::default() };
    inputs.controller_reports(gathered);
    inputs
}

#[test]
fn a_controllers_report_becomes_rows_marks_names_and_the_tunnel() {
    let v = derive(&reported());
    assert_eq!(v.phase(), Phase::Connected);
    assert_eq!((v.app_version.as_str(), v.helper_version.as_deref()), ("1.0.0", Some("0.9.0")));
    assert_eq!(v.tunnel.as_ref().and_then(|t| t.interface.as_deref()), Some("dockroute0"));
    let rows: Vec<(&str, RouteShown, bool, usize)> =
        v.networks.iter().map(|n| (n.name.as_str(), n.route, n.exposed, n.containers)).collect();
    assert_eq!(rows, [("web", RouteShown::Installed, true, 1), ("db", RouteShown::Disabled, false, 0)]);
    let names: Vec<&str> = v.containers[0].names.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["api.shop.docker", "web.docker", "*.shop.test"], "the helper's suffix");
    assert_eq!(v.dns.as_ref().map(|d| d.clashes.len()), Some(1));
    assert_eq!(v.share.as_ref().map(|s| s.exposed.len()), Some(1));
    assert_eq!(v.problem, None);
}

#[test]
fn the_first_problem_wins_start_then_helper_then_docker_then_sync_then_a_conflict() {
    let problem =
        |title: &str| Problem { kind: ProblemKind::Other, title: title.into(), detail: String::new(), action: None };
    let mut i = reported();
    let conflict = RouteState::Conflict { interface: "utun4".into(), route: "198.19.0.0/16".parse().unwrap() };
    i.gathered.status = Some(status(&[("198.19.1.0/24", conflict)]));
    assert_eq!(derive(&i).problem.map(|p| p.kind), Some(ProblemKind::RouteConflict), "a warning when nothing else");
    i.gathered.sync_problem = Some(problem("sync"));
    assert_eq!(derive(&i).problem.unwrap().title, "sync");
    i.gathered.docker_problem = Some(docker_problem("unix:///x", &"refused"));
    assert_eq!(derive(&i).problem.unwrap().kind, ProblemKind::DockerNotRunning);
    i.gathered.helper_problem = Some(problem("helper"));
    assert_eq!(derive(&i).problem.unwrap().title, "helper");
    i.start_failed(problem("start"));
    let v = derive(&i);
    assert_eq!(v.problem.unwrap().title, "start");
    assert_eq!(v.helper_version, None, "a failed start does not show what answered before");
    i.controller_reports(reported().gathered);
    assert_eq!(derive(&i).problem, None, "a controller that reports ends the start's problem");
}

#[test]
fn a_failed_start_is_not_shown_once_the_user_chose_disconnect() {
    let mut i = reported();
    i.start_failed(Problem { kind: ProblemKind::Other, title: "start".into(), detail: String::new(), action: None });
    assert_eq!(derive(&i).problem.unwrap().title, "start");
    // The choice shows at once; the supervisor clears the start's problem only after its
    // teardown, which can take seconds with no helper.
    i.want_connected = false;
    let v = derive(&i);
    assert_eq!((v.phase(), v.problem), (Phase::Disconnected, None));
    i.want_connected = true;
    assert_eq!(derive(&i).problem.unwrap().title, "start", "kept for when the user connects again");
}

#[test]
fn disconnect_hides_the_tunnel_and_keeps_what_was_seen_of_engine_names_and_share() {
    let mut i = reported();
    i.traffic.push(StatsReport::default(), 1_000);
    i.gathered.idle = true;
    i.gathered.docker_problem = Some(docker_problem("unix:///x", &"refused"));
    i.disconnected();
    let v = derive(&i);
    assert_eq!(v.phase(), Phase::Disconnected);
    assert_eq!((v.problem, v.tunnel, v.helper_version), (None, None, None));
    assert!(v.networks.is_empty() && v.containers.is_empty());
    assert!(v.stats.is_none() && v.throughput.is_empty());
    // As before this view was derived: the last engine, names, share and idle stay.
    assert_eq!(v.engine.as_deref(), Some("unix:///var/run/docker.sock"));
    assert!(v.dns.is_some() && v.share.is_some() && v.idle);
}

#[test]
fn the_shells_facts_show_the_approval_in_place_of_the_problem_it_explains() {
    let mut i = reported();
    i.autostart = true;
    i.helper_note = Some(HelperNote::Outdated { helper: "0.9.0".into(), app: "1.0.0".into() });
    let v = derive(&i);
    assert!(v.autostart);
    assert_eq!(v.problem.map(|p| p.kind), Some(ProblemKind::HelperOutdated), "a warning next to a working tunnel");
    i.helper_note = Some(HelperNote::Pending { settings: "Login Items".into() });
    assert_eq!(derive(&i).problem, None, "the helper answers: the approval is old news");
    let socket = std::path::Path::new("/run/dockroute.sock");
    let missing = view::helper_problem(socket, &dockroute_api::ClientError::NotRunning(socket.into()), true);
    i.start_failed(missing);
    assert_eq!(derive(&i).problem, Some(helper_approval_problem("Login Items")));
}

#[test]
fn the_toggles_shown_are_those_the_controller_applied() {
    let mut i = reported();
    i.gathered.disabled.clear();
    let v = derive(&i);
    assert_eq!(v.networks[1].route, RouteShown::Pending, "switched on, not yet routed");
    assert!(v.networks[1].enabled);
}

#[test]
fn containers_get_their_full_names_marked_when_they_clash_or_are_wildcards() {
    let container =
        |id: &str| ContainerView { id: id.into(), name: id.into(), addresses: vec![], ports: vec![], names: vec![] };
    let mut list = [container("id1"), container("id2")];
    with_names(&mut list, &names(), Some("docker"));
    let shown: Vec<(&str, bool, bool)> = list[0].names.iter().map(|n| (n.name.as_str(), n.clash, n.wildcard)).collect();
    assert_eq!(shown, [("api.shop.docker", true, false), ("web.docker", false, false), ("*.shop.test", false, true)]);
    assert!(list[1].names.is_empty(), "a container without claims");
    with_names(&mut list, &names(), None);
    assert!(list[0].names.is_empty(), "no DNS server, no names shown");
}

fn https_status(listen: Option<&str>, off_by_app: bool, problems: &[&str]) -> dockroute_api::HttpsStatus {
    dockroute_api::HttpsStatus {
        listen: listen.map(|a| a.parse().unwrap()),
        ca: Some(dockroute_api::CaStatus {
            path: "/etc/dockroute/dockroute.ca.pem".into(),
            id: "ab12cd34".into(),
            not_after: 2_100_000_000,
            constraints: "names *.docker, *.test, *.example, *.internal, *.home.arpa and addresses in 10.0.0.0/8 only"
                .into(),
            trusted_in: vec!["system store (/usr/local/share/ca-certificates/dockroute-ab12cd34.crt)".into()],
        }),
        problems: problems.iter().map(|p| p.to_string()).collect(),
        off_by_app,
        redirected: 2,
    }
}

fn with_https(https: Option<dockroute_api::HttpsStatus>, on: bool) -> View {
    let mut inputs = reported();
    inputs.https_wanted = on;
    if let Some(s) = inputs.gathered.status.as_mut() {
        s.https = https.map(Box::new);
    }
    derive(&inputs)
}

#[test]
fn the_https_section_shows_where_it_serves_the_cas_expiry_constraints_and_trust() {
    let v = with_https(Some(https_status(Some("198.18.0.1:443"), false, &[])), true);
    let h = v.https.expect("an HTTPS section while the helper answers");
    assert!(h.on && h.allowed && h.serving, "{h:?}");
    assert_eq!(h.listen.as_deref(), Some("198.18.0.1:443"));
    assert_eq!(h.summary, "Serving container names over HTTPS on 198.18.0.1:443");
    let ca = h.ca.expect("the CA");
    assert_eq!((ca.id.as_str(), ca.expires.as_str()), ("ab12cd34", "2036-07-18"));
    assert!(ca.constraints.starts_with("names *.docker, *.test"), "{}", ca.constraints);
    assert_eq!(ca.trusted_in.len(), 1);
    // The page gets it under `https`.
    let page = serde_json::to_value(with_https(Some(https_status(Some("198.18.0.1:443"), false, &[])), true)).unwrap();
    assert_eq!(page["https"]["ca"]["expires"], "2036-07-18");
    assert_eq!(page["https"]["serving"], true);
}

#[test]
fn the_https_section_tells_off_here_off_in_the_config_starting_and_a_problem_apart() {
    let off = with_https(Some(https_status(None, true, &[])), false).https.unwrap();
    assert!(!off.on && off.allowed && !off.serving);
    assert_eq!(off.summary, "Off: switched off here");
    assert_eq!(off.ca.unwrap().id, "ab12cd34", "the CA is shown (and can be trusted) while the front is off");
    // Switched on here, the helper not yet told.
    let starting = with_https(Some(https_status(None, true, &[])), true).https.unwrap();
    assert_eq!((starting.on, starting.serving, starting.summary.as_str()), (true, false, "Turning on…"));
    let broken = with_https(Some(https_status(None, false, &["cannot listen on 198.18.0.1:443: in use"])), true);
    let broken = broken.https.unwrap();
    assert_eq!(broken.summary, "Not serving: cannot listen on 198.18.0.1:443: in use");
    // `https off` in the helper's config (or a helper before HTTPS): the switch can do nothing.
    let config_off = with_https(None, true).https.unwrap();
    assert!(!config_off.allowed && !config_off.serving && config_off.ca.is_none());
    assert!(config_off.summary.contains("`https off`"), "{}", config_off.summary);
    // Nobody answers: no section at all.
    let mut inputs = reported();
    inputs.gathered.live = false;
    assert_eq!(derive(&inputs).https, None);
}

#[test]
fn the_engines_facts_show_while_a_controller_runs_and_the_list_stays() {
    let mut inputs = reported();
    inputs.gathered.runtime = Some(crate::view::RuntimeView {
        engine: "Colima".into(),
        engine_version: Some("28.4.0".into()),
        api_version: Some("1.51".into()),
        host_name: "host.lima.internal".into(),
        firewall: Some("IPv4 iptables-nft".into()),
    });
    inputs.engines = vec![crate::view::EngineView {
        id: "unix:///x/colima.sock".into(),
        name: "Colima".into(),
        kind: Some(crate::engines::EngineKind::Colima),
        source: "context \"colima\"".into(),
        version: Some("28.4.0".into()),
        reachable: true,
        followed: true,
        note: None,
    }];
    let v = derive(&inputs);
    assert_eq!(v.runtime.as_ref().map(|r| r.host_name.as_str()), Some("host.lima.internal"));
    assert_eq!(v.engines.len(), 1);
    let page = serde_json::to_value(&v).unwrap();
    assert_eq!(page["runtime"]["engine_version"], "28.4.0", "the page gets the facts");
    assert_eq!(page["engines"][0]["kind"], "colima");
    // A switch or a failed start: no controller, so no facts of an engine not followed now.
    inputs.start_failed(crate::view::engine_not_needed_problem(&[]));
    let v = derive(&inputs);
    assert!(v.runtime.is_none(), "facts of the last engine are not shown as current");
    assert_eq!(v.engines.len(), 1, "the list stays, so the user can switch");
    assert_eq!(v.phase(), Phase::Error);
}
