//! `State::apply` and the route checks, the share's operations included.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use dockroute_api::Redacted;

use super::*;

fn n(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn state(config: &str) -> State {
    let config = Config::parse(config, Path::new("/etc/dockroute")).unwrap();
    let secret = Secret::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap();
    State::new(config, secret, share_book())
}

/// A share state with a fixed key and no teammates.
fn share_book() -> Book {
    let keys = crate::share::state::KeyPair::from_private([7; 32]);
    let state = crate::share::state::ShareState {
        private_key: keys.private_base64(),
        teammates: Vec::new(),
        exposed_networks: Vec::new(),
        legacy_exposed: Vec::new(),
    };
    Book::new(state, None)
}

/// Root's calls: the share right granted.
trait AsRoot {
    fn as_root(&mut self, op: Op) -> Result<Effect, ApiError>;
}

impl AsRoot for State {
    fn as_root(&mut self, op: Op) -> Result<Effect, ApiError> {
        self.apply(op, &ShareRight::Granted)
    }
}

/// The OS's side of the seam: records each call in a log the test keeps; refuses to add
/// what is in `taken` (a route someone else owns).
#[derive(Default, Clone)]
struct Os {
    calls: Rc<RefCell<Vec<String>>>,
    taken: Rc<RefCell<Vec<IpNet>>>,
}

impl RouteBackend for Os {
    fn add(&mut self, net: IpNet, ifname: &str) -> io::Result<()> {
        if self.taken.borrow().contains(&net) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "`ip route add` failed: File exists"));
        }
        self.calls.borrow_mut().push(format!("add {net} {ifname}"));
        Ok(())
    }
    fn remove(&mut self, net: IpNet, ifname: &str) -> io::Result<()> {
        self.calls.borrow_mut().push(format!("del {net} {ifname}"));
        Ok(())
    }
}

impl Os {
    fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }
}

fn tunnel() -> (Os, Routes<Os>) {
    let os = Os::default();
    (os.clone(), Routes::new(os, "dockroute0"))
}

fn entry(dest: &str, interface: &str) -> RouteEntry {
    RouteEntry { dest: n(dest), interface: interface.into(), gateway: None }
}

/// A host's table: a LAN, our routes as `routes` believes them installed, and `extra`.
fn table_of(routes: &Routes<Os>, extra: &[RouteEntry]) -> Vec<RouteEntry> {
    let mut t = vec![entry("0.0.0.0/0", "eth0"), entry("192.168.1.0/24", "eth0")];
    t.extend(routes.installed().map(|n| RouteEntry { dest: *n, interface: routes.ifname().into(), gateway: None }));
    t.extend_from_slice(extra);
    t
}

fn check(s: &mut State, routes: &mut Routes<Os>, extra: &[RouteEntry]) -> Checked {
    let table = table_of(routes, extra);
    s.check_routes(Some(routes), || Ok(table))
}

fn refusal(r: Result<Effect, ApiError>) -> (ErrorCode, String) {
    let e = r.unwrap_err();
    (e.code, e.message)
}

#[test]
fn queries_change_nothing_and_hello_and_subscribe_are_the_connections() {
    let mut s = state("route 172.17.0.0/16\n");
    assert_eq!(s.as_root(Op::Status), Ok(Effect::Status));
    assert_eq!(s.as_root(Op::Stats), Ok(Effect::Stats));
    assert_eq!(s.as_root(Op::Subscribe), Ok(Effect::Nothing));
    assert_eq!(s.as_root(Op::Hello { version: 1, client: "t".into() }), Ok(Effect::Nothing));
    assert!(!s.requested && s.app_routes.is_empty() && s.disabled.is_empty());
}

#[test]
fn connect_and_disconnect_record_the_request_and_disconnect_clears_the_error() {
    let mut s = state("");
    assert_eq!(s.as_root(Op::Connect), Ok(Effect::Connect));
    assert_eq!(s.status(None).requested, TunnelRequest::Up);
    s.error = Some("cannot listen on udp 127.0.0.1:2511: Address in use".into());
    assert_eq!(s.as_root(Op::Disconnect), Ok(Effect::Disconnect));
    let status = s.status(None);
    assert_eq!((status.requested, status.error), (TunnelRequest::Down, None));
}

#[test]
fn set_secret_refuses_a_bad_length_and_keeps_the_old_secret() {
    let mut s = state("");
    let old = s.secret.expose().to_vec();
    let (code, msg) = refusal(s.as_root(Op::SetSecret { secret: Redacted("short".into()) }));
    assert_eq!((code, msg.as_str()), (ErrorCode::InvalidArgument, "secret is 5 bytes; it must be 16..=1024"));
    assert_eq!((s.secret.expose(), s.secret_source), (&old[..], SecretSource::File));
    let new = "a-new-secret-of-enough-length";
    assert_eq!(s.as_root(Op::SetSecret { secret: Redacted(new.into()) }), Ok(Effect::NewSecret));
    assert_eq!((s.secret.expose(), s.secret_source), (new.as_bytes(), SecretSource::Api));
}

#[test]
fn set_routes_replaces_the_apps_set_and_a_bad_set_changes_nothing() {
    let mut s = state("route 172.17.0.0/16\n");
    assert_eq!(s.as_root(Op::SetRoutes { routes: vec![n("172.18.0.9/16")] }), Ok(Effect::Routes));
    assert_eq!(s.app_routes, BTreeSet::from([n("172.18.0.0/16")]));
    let (code, msg) = refusal(s.as_root(Op::SetRoutes { routes: vec![n("172.19.0.0/16"), n("127.0.0.0/8")] }));
    assert_eq!(code, ErrorCode::InvalidArgument);
    assert!(msg.starts_with("route 127.0.0.0/8: loopback"), "{msg}");
    let too_many = vec![n("172.19.0.0/16"); route_policy::MAX_ROUTES + 1];
    assert_eq!(refusal(s.as_root(Op::SetRoutes { routes: too_many })).0, ErrorCode::InvalidArgument);
    assert_eq!(s.app_routes, BTreeSet::from([n("172.18.0.0/16")]), "unchanged by the refused sets");
    let sources: Vec<_> = s.status(None).routes.into_iter().map(|r| (r.net, r.source)).collect();
    assert_eq!(sources, [(n("172.17.0.0/16"), RouteSource::Config), (n("172.18.0.0/16"), RouteSource::App)]);
}

#[test]
fn set_names_replaces_the_names_and_a_bad_set_changes_nothing() {
    let mut s = state("dns-suffix test\n");
    let ip: std::net::IpAddr = "172.18.0.2".parse().unwrap();
    let op = |name: &str| Op::SetNames {
        names: BTreeMap::from([(name.to_string(), vec![ip])]),
        domains: BTreeMap::new(),
        name_ports: BTreeMap::new(),
        domain_ports: BTreeMap::new(),
    };
    assert_eq!(s.as_root(op("Web")), Ok(Effect::Names));
    assert_eq!(s.names.names, BTreeMap::from([("web".to_string(), vec![ip])]));
    let (code, msg) = refusal(s.as_root(op("my_app")));
    assert_eq!(code, ErrorCode::InvalidArgument);
    assert!(msg.starts_with("name \"my_app\""), "{msg}");
    assert_eq!(s.names.names.keys().collect::<Vec<_>>(), ["web"], "unchanged by the refused set");
    assert_eq!(
        s.as_root(Op::SetNames {
            names: BTreeMap::new(),
            domains: BTreeMap::new(),
            name_ports: BTreeMap::new(),
            domain_ports: BTreeMap::new()
        }),
        Ok(Effect::Names)
    );
    assert!(s.names.is_empty());
}

#[test]
fn set_route_enabled_switches_known_routes_only() {
    let mut s = state("route 172.17.0.0/16\n");
    let off = Op::SetRouteEnabled { route: n("172.17.1.1/16"), enabled: false };
    assert_eq!(s.as_root(off), Ok(Effect::Routes));
    assert_eq!(s.disabled, BTreeSet::from([n("172.17.0.0/16")]));
    assert!(!s.status(None).routes[0].enabled);
    let (code, msg) = refusal(s.as_root(Op::SetRouteEnabled { route: n("10.9.0.0/16"), enabled: false }));
    assert_eq!((code, msg.as_str()), (ErrorCode::InvalidArgument, "no route 10.9.0.0/16 is configured"));
    assert_eq!(s.as_root(Op::SetRouteEnabled { route: n("172.17.0.0/16"), enabled: true }), Ok(Effect::Routes));
    assert!(s.disabled.is_empty());
}

#[test]
fn without_a_tunnel_routes_wait_and_no_table_is_read() {
    let mut s = state("route 172.17.0.0/16\n");
    s.disabled.insert(n("172.17.0.0/16"));
    s.app_routes.insert(n("172.18.0.0/16"));
    let checked = s.check_routes::<Os>(None, || panic!("the table is not read while the tunnel is down"));
    assert_eq!(checked, Checked { changed: true, retry_soon: false });
    let states: Vec<_> = s.status(None).routes.into_iter().map(|r| r.state).collect();
    assert_eq!(states, [RouteState::Disabled, RouteState::Pending]);
    assert!(!s.check_routes::<Os>(None, || unreachable!()).changed, "nothing new the second time");
}

#[test]
fn routes_are_installed_switched_off_and_on_through_the_backend() {
    let mut s = state("route 172.17.0.0/16\n");
    let (os, mut routes) = tunnel();
    assert_eq!(check(&mut s, &mut routes, &[]), Checked { changed: true, retry_soon: false });
    s.as_root(Op::SetRoutes { routes: vec![n("172.18.0.0/16")] }).unwrap();
    check(&mut s, &mut routes, &[]);
    s.as_root(Op::SetRouteEnabled { route: n("172.17.0.0/16"), enabled: false }).unwrap();
    assert!(check(&mut s, &mut routes, &[]).changed);
    assert_eq!(s.route_states[&n("172.17.0.0/16")], RouteState::Disabled);
    assert_eq!(s.route_states[&n("172.18.0.0/16")], RouteState::Installed);
    assert_eq!(check(&mut s, &mut routes, &[]), Checked { changed: false, retry_soon: false });
    let calls = ["add 172.17.0.0/16 dockroute0", "add 172.18.0.0/16 dockroute0", "del 172.17.0.0/16 dockroute0"];
    assert_eq!(os.take_calls(), calls);
}

#[test]
fn a_refused_route_is_failed_with_the_reason_and_retried_soon() {
    let mut s = state("route 172.17.0.0/16\n");
    let (os, mut routes) = tunnel();
    os.taken.borrow_mut().push(n("172.17.0.0/16"));
    assert_eq!(check(&mut s, &mut routes, &[]), Checked { changed: true, retry_soon: true });
    let failed = RouteState::Failed { message: "`ip route add` failed: File exists".into() };
    assert_eq!(s.route_states[&n("172.17.0.0/16")], failed);
    os.taken.borrow_mut().clear();
    assert_eq!(check(&mut s, &mut routes, &[]), Checked { changed: true, retry_soon: false });
    assert_eq!(s.route_states[&n("172.17.0.0/16")], RouteState::Installed);
    assert_eq!(os.take_calls(), ["add 172.17.0.0/16 dockroute0"]);
}

#[test]
fn an_unreadable_table_changes_nothing_and_asks_for_a_retry() {
    let mut s = state("route 172.17.0.0/16\n");
    let (os, mut routes) = tunnel();
    check(&mut s, &mut routes, &[]);
    os.take_calls();
    let before = s.route_states.clone();
    s.as_root(Op::SetRoutes { routes: vec![n("172.18.0.0/16")] }).unwrap();
    let checked = s.check_routes(Some(&mut routes), || Err(io::Error::other("`ip -j -4 route` timed out")));
    assert_eq!(checked, Checked { changed: false, retry_soon: true });
    assert_eq!((s.route_states.clone(), os.take_calls()), (before, vec![]));
    assert_eq!(routes.installed().count(), 1, "the installed route is not forgotten");
}

#[test]
fn a_route_removed_by_someone_else_is_added_again() {
    let mut s = state("route 172.17.0.0/16\n");
    let (os, mut routes) = tunnel();
    check(&mut s, &mut routes, &[]);
    // The table no longer has it on our interface (someone ran `ip route del`).
    let table = vec![entry("0.0.0.0/0", "eth0"), entry("192.168.1.0/24", "eth0")];
    let checked = s.check_routes(Some(&mut routes), || Ok(table));
    assert_eq!(checked, Checked { changed: false, retry_soon: false }, "it stays installed");
    assert_eq!(os.take_calls(), ["add 172.17.0.0/16 dockroute0", "add 172.17.0.0/16 dockroute0"]);
}

#[test]
fn a_conflict_keeps_the_route_out_until_it_clears() {
    let mut s = state("");
    let (os, mut routes) = tunnel();
    s.as_root(Op::SetRoutes { routes: vec![n("10.8.0.0/16")] }).unwrap();
    let vpn = [entry("10.0.0.0/8", "utun4")];
    check(&mut s, &mut routes, &vpn);
    let conflict = RouteState::Conflict { interface: "utun4".into(), route: n("10.0.0.0/8") };
    assert_eq!(s.status(None).routes[0].state, conflict);
    assert!(os.take_calls().is_empty(), "never installed over another interface's route");
    assert!(check(&mut s, &mut routes, &[]).changed, "the VPN disconnected");
    assert_eq!(
        (s.route_states[&n("10.8.0.0/16")].clone(), os.take_calls()),
        (RouteState::Installed, vec!["add 10.8.0.0/16 dockroute0".to_string()])
    );
}

#[test]
fn the_status_carries_the_tunnels_facts_while_it_is_up() {
    let mut s = state("route 172.17.0.0/16\n");
    s.as_root(Op::Connect).unwrap();
    let link = LinkInfo {
        host_v4: "192.168.251.1/24".parse().unwrap(),
        guest_v4: "192.168.251.2".parse().unwrap(),
        host_v6: None,
        guest_v6: None,
        mtu: 1400,
    };
    let facts = TunnelFacts {
        listen: "127.0.0.1:2511".parse().unwrap(),
        interface: "dockroute0".into(),
        link: link.clone(),
        session: None,
    };
    let status = s.status(Some(facts));
    assert_eq!((status.interface.as_deref(), status.link), (Some("dockroute0"), Some(link)));
    assert_eq!(status.listen, Some("127.0.0.1:2511".parse().unwrap()));
    assert_eq!(status.routes[0].state, RouteState::Pending, "not checked yet");
    let down = s.status(None);
    assert_eq!((down.listen, down.interface, down.link), (None, None, None));
    assert_eq!(down.transport, dockroute_api::TransportMode::Auto);
    assert_eq!(state("transport tcp\n").status(None).transport, dockroute_api::TransportMode::Tcp);
}

// The share's operations, through the same core.

const SHARING: &str = "expose 198.18.0.1:2512\nroute 172.30.0.0/16 expose\nroute 172.18.0.0/16\n";

fn network(id: &str, name: &str, subnet: &str) -> DockerNetwork {
    DockerNetwork { id: id.into(), name: name.into(), subnets: vec![n(subnet)], gateways: vec![], containers: vec![] }
}

fn add(name: &str) -> Op {
    Op::ShareAdd(dockroute_api::share::ShareAdd { name: name.into(), ip: None, endpoint: None, rotate: false })
}

/// `share add NAME` carried out as the driver would, with a fixed key, committed.
fn added(s: &mut State, name: &str) {
    let Ok(Effect::MakeKey(plan)) = s.as_root(add(name)) else { panic!("{name} may be added") };
    let save = s.share.keyed(&plan, crate::share::state::KeyPair::from_private([9; 32]).public_base64());
    s.share.commit(save);
}

#[test]
fn a_caller_without_the_share_right_is_refused_every_share_op_and_nothing_changes() {
    let mut s = state(SHARING);
    s.apply(Op::SetNetworks { networks: vec![network("4f1d", "web", "172.18.0.0/16")] }, &ShareRight::Granted).unwrap();
    added(&mut s, "alice");
    let before = s.share.clone();
    let no = ShareRight::Refused("not authorised to share: uid 501".into());
    for op in [
        add("mallory"),
        Op::ShareRevoke { name: "alice".into() },
        Op::SetNetworkExposed { network: "4f1d".into(), exposed: true },
        Op::SetNetworkExposed { network: "4f1d".into(), exposed: false },
    ] {
        let (code, msg) = refusal(s.apply(op.clone(), &no));
        assert_eq!((code, msg.as_str()), (ErrorCode::NotAuthorised, "not authorised to share: uid 501"), "{op:?}");
        assert_eq!(s.share, before, "{op:?} changed the share");
    }
    assert_eq!(s.apply(Op::ShareList, &no), Ok(Effect::ShareList), "listing needs no share right");
    for op in [Op::Status, Op::SetRoutes { routes: vec![] }, Op::SetNetworks { networks: vec![] }] {
        assert!(s.apply(op.clone(), &no).is_ok(), "{op:?} needs no share right");
    }
}

#[test]
fn share_add_plans_the_next_free_address_and_the_routes_exposed_and_changes_nothing_until_saved() {
    let mut s = state(SHARING);
    let r = s.as_root(add(" alice "));
    let Ok(Effect::MakeKey(plan)) = r else { panic!("alice may be added: {r:?}") };
    assert_eq!((plan.name.as_str(), plan.address.to_string()), ("alice", "192.168.251.3".to_string()));
    assert_eq!(
        (plan.endpoint.as_str(), plan.allowed.clone(), plan.rotate),
        ("198.18.0.1:2512", vec![n("172.30.0.0/16")], false)
    );
    assert!(s.share.state.teammates.is_empty(), "no key is stored before the driver made and saved it");
    let save = s.share.keyed(&plan, "cHVibGlj".into());
    assert_eq!(save.said, "share: added alice at 192.168.251.3");
    s.share.commit(save);
    assert_eq!(s.share.state.teammates.len(), 1);
    let config = plan.config("cHJpdmF0ZQ==", &s.share.server_public);
    assert!(config.text.0.contains("PrivateKey = cHJpdmF0ZQ==\n"), "{}", config.text.0);
    assert!(config.text.0.contains("AllowedIPs = 172.30.0.0/16\n"), "{}", config.text.0);
}

#[test]
fn share_add_refuses_a_second_key_without_rotate_a_bad_name_and_nothing_exposed() {
    let mut s = state(SHARING);
    added(&mut s, "alice");
    let before = s.share.clone();
    let (code, msg) = refusal(s.as_root(add("alice")));
    assert_eq!(code, ErrorCode::InvalidArgument);
    assert!(msg.starts_with("alice already has a key"), "{msg}");
    assert!(refusal(s.as_root(add("a#b"))).1.starts_with("teammate name \"a#b\""));
    assert_eq!(s.share, before);
    let rotate = dockroute_api::share::ShareAdd { name: "alice".into(), ip: None, endpoint: None, rotate: true };
    let Ok(Effect::MakeKey(plan)) = s.as_root(Op::ShareAdd(rotate)) else { panic!("--rotate replaces") };
    assert!(plan.rotate);
    assert_eq!(s.share.keyed(&plan, "bmV3".into()).state.teammates.len(), 1, "replaced, not added");
    let mut closed = state("expose 198.18.0.1:2512\n");
    assert!(refusal(closed.as_root(add("bob"))).1.starts_with("nothing is exposed yet"));
    let mut off = state("route 172.30.0.0/16 expose\n");
    assert!(refusal(off.as_root(add("bob"))).1.starts_with("sharing is off"));
}

#[test]
fn share_revoke_saves_the_state_without_the_key_and_an_unknown_name_changes_nothing() {
    let mut s = state(SHARING);
    added(&mut s, "alice");
    let before = s.share.clone();
    let (code, msg) = refusal(s.as_root(Op::ShareRevoke { name: "bob".into() }));
    assert_eq!((code, msg.as_str()), (ErrorCode::InvalidArgument, "no teammate named \"bob\" has a key"));
    let Ok(Effect::SaveShare(save)) = s.as_root(Op::ShareRevoke { name: "alice".into() }) else { panic!() };
    assert!(save.state.teammates.is_empty());
    assert_eq!(s.share, before, "nothing counts until the driver wrote it");
}

#[test]
fn set_network_exposed_by_id_or_name_and_the_configs_lines_stay_the_configs() {
    let mut s = state(SHARING);
    let networks = vec![network("4f1d", "web", "172.18.0.0/16"), network("9a2b", "cfg", "172.30.0.0/16")];
    s.as_root(Op::SetNetworks { networks }).unwrap();
    let Ok(Effect::SaveShare(save)) = s.as_root(Op::SetNetworkExposed { network: "web".into(), exposed: true }) else {
        panic!("a known network may be exposed by name")
    };
    assert_eq!(save.said, "share: network web (4f1d) exposed");
    s.share.commit(save);
    let again = s.as_root(Op::SetNetworkExposed { network: "4f1d".into(), exposed: true });
    assert_eq!(again, Ok(Effect::Share), "unchanged: nothing to write, the share only follows");
    let before = s.share.clone();
    let (code, msg) = refusal(s.as_root(Op::SetNetworkExposed { network: "9a2b".into(), exposed: false }));
    assert_eq!(code, ErrorCode::InvalidArgument);
    assert!(msg.starts_with("cfg is exposed by the config file (`route 172.30.0.0/16 expose`, line 2)"), "{msg}");
    let unknown = refusal(s.as_root(Op::SetNetworkExposed { network: "ffff".into(), exposed: true }));
    assert!(unknown.1.starts_with("no Docker network \"ffff\" is known"), "{}", unknown.1);
    assert_eq!(s.share, before);
}

#[test]
fn an_unreadable_share_state_refuses_every_share_change() {
    let mut s = state(SHARING);
    s.share.unusable = Some("share state: mode 0644".into());
    for op in [
        add("alice"),
        Op::ShareRevoke { name: "alice".into() },
        Op::SetNetworkExposed { network: "x".into(), exposed: true },
    ] {
        let (code, msg) = refusal(s.as_root(op));
        assert_eq!((code, msg.as_str()), (ErrorCode::Failed, "sharing is off: share state: mode 0644"));
    }
}

#[test]
fn only_the_operations_that_hand_out_or_take_back_access_need_the_share_right() {
    use dockroute_api::share::ShareAdd;
    // Moved from authz.rs with the list it checked: the core's match now says which
    // operations need the right (a refusal is NotAuthorised, before any check of its own).
    let needs_share_right = |op: &Op| {
        let refused = state("").apply(op.clone(), &ShareRight::Refused("no".into()));
        matches!(refused, Err(ApiError { code: ErrorCode::NotAuthorised, .. }))
    };
    let add = ShareAdd { name: "a".into(), ip: None, endpoint: None, rotate: false };
    for op in [
        Op::ShareAdd(add),
        Op::ShareRevoke { name: "a".into() },
        Op::SetNetworkExposed { network: "4f1d".into(), exposed: false },
        Op::CaTrust,
        Op::CaUntrust,
        Op::CaTrusted { trusted: true },
    ] {
        assert!(needs_share_right(&op), "{op:?}");
    }
    for op in [
        Op::ShareList,
        Op::Status,
        Op::SetRoutes { routes: vec![] },
        Op::SetNetworks { networks: vec![] },
        Op::SetHttps { serve: false },
    ] {
        assert!(!needs_share_right(&op), "{op:?}");
    }
}

#[test]
fn a_caller_without_the_share_right_is_refused_changing_where_the_ca_is_trusted() {
    let mut s = state("");
    let no = ShareRight::Refused("not authorised to share: uid 501".into());
    // A refusal is an error before any effect: the daemon runs no command, writes no record.
    for op in [Op::CaTrust, Op::CaUntrust, Op::CaTrusted { trusted: true }, Op::CaTrusted { trusted: false }] {
        let (code, msg) = refusal(s.apply(op.clone(), &no));
        assert_eq!((code, msg.as_str()), (ErrorCode::NotAuthorised, "not authorised to share: uid 501"), "{op:?}");
    }
    assert_eq!(s.as_root(Op::CaTrust), Ok(Effect::CaTrust(CaChange::Trust)));
    assert_eq!(s.as_root(Op::CaUntrust), Ok(Effect::CaTrust(CaChange::Untrust)));
    assert_eq!(s.as_root(Op::CaTrusted { trusted: false }), Ok(Effect::CaTrust(CaChange::RecordLoginKeychain(false))));
}

#[test]
fn the_apps_https_switch_is_kept_and_needs_no_share_right() {
    let mut s = state("");
    assert!(s.https_wanted, "serving until an app says otherwise (apps before the switch never do)");
    let no = ShareRight::Refused("no".into());
    assert_eq!(s.apply(Op::SetHttps { serve: false }, &no), Ok(Effect::Https));
    assert!(!s.https_wanted);
    assert_eq!(s.apply(Op::SetHttps { serve: true }, &no), Ok(Effect::Https));
    assert!(s.https_wanted);
}
