//! The helper's local API against the real helper on a real socket, with the tunnel, routes
//! and guest of a namespace topology behind it. Needs root.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use dockroute_api::client::{Client, ClientError};
use dockroute_api::{
    Answer, ErrorCode, Event, Op, Redacted, RouteSource, RouteState, SecretSource, Status, TunnelRequest,
};
use dockroute_e2e::netns::{require_root, Topology, SIGTERM};
use dockroute_e2e::rig::{read, Rig, API_CLIENT_PY};
use ipnet::IpNet;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn up(slot: u8) -> Rig {
    let mut rig = Rig::new(slot, |t| vec![t.ctr_subnet()]).unwrap();
    rig.topo.start_udp_echo(rig.topo.ns_ctr(), 7000).unwrap();
    rig.topo.start_udp_echo(rig.topo.ns_ctr2(), 7000).unwrap();
    rig.start_helper().unwrap();
    rig.start_guest().unwrap();
    rig.wait_traffic("first session", Duration::from_secs(5)).unwrap();
    rig
}

fn route<'a>(s: &'a Status, net: &str) -> &'a dockroute_api::RouteStatus {
    let net: IpNet = net.parse().unwrap();
    s.routes.iter().find(|r| r.net == net).unwrap_or_else(|| panic!("{net} not in status: {s:#?}"))
}

fn ctr2_reachable(rig: &Rig) -> bool {
    let t = &rig.topo;
    let to = std::net::SocketAddr::new(t.ctr2_addr().into(), 7000);
    t.udp_exchange(t.ns_mac(), to, b"x", Duration::from_millis(400)).is_ok()
}

#[test]
fn every_operation_works_against_the_real_helper_and_subscribers_see_changes() {
    if !require_root() {
        return;
    }
    let mut rig = up(31);
    let rt = rt();
    let sock = rig.api_socket();
    let ctr2 = rig.topo.ctr2_subnet();
    rt.block_on(async {
        let c = Client::connect(&sock, "e2e").await.unwrap();
        let watcher = Client::connect(&sock, "e2e watcher").await.unwrap();
        let mut events = watcher.subscribe().await.unwrap();

        // status: session, link, the config route installed.
        let s = c.status().await.unwrap();
        assert_eq!(s.requested, TunnelRequest::Up);
        let session = s.session.as_ref().expect("a guest session");
        assert!(session.alive && session.handshake_age_ms < 60_000, "{session:?}");
        assert_eq!(s.interface.as_deref(), Some("dockroute0"));
        assert_eq!(s.link.as_ref().unwrap().host_v4.to_string(), format!("198.18.{}.1/24", 100 + 31));
        assert_eq!(route(&s, &rig.topo.ctr_subnet()).state, RouteState::Installed);
        assert_eq!(route(&s, &rig.topo.ctr_subnet()).source, RouteSource::Config);
        assert_eq!(s.secret_source, SecretSource::File);

        // stats: the traffic of wait_traffic was counted.
        let Answer::Stats(stats) = c.call(Op::Stats).await.unwrap() else { panic!("stats answer") };
        assert!(stats.rx_packets >= 1 && stats.tx_packets >= 1, "{stats:?}");
        assert_eq!(stats.drops.get("auth_failed"), Some(&0));

        // set_routes: the app's set joins the config's.
        c.call(Op::SetRoutes { routes: vec![ctr2.parse().unwrap()] }).await.unwrap();
        let s = c.status().await.unwrap();
        assert_eq!(
            (route(&s, &ctr2).state.clone(), route(&s, &ctr2).source),
            (RouteState::Installed, RouteSource::App)
        );
        assert!(ctr2_reachable(&rig), "ctr2 reachable once the app asked for its route");

        // The subscriber saw that change pushed, without asking.
        let pushed = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                if let Ok(Event::Status(s)) = events.recv().await {
                    if s.routes.iter().any(|r| r.net.to_string() == ctr2 && r.state == RouteState::Installed) {
                        return s;
                    }
                }
            }
        })
        .await
        .expect("a pushed status with the new route");
        assert_eq!(pushed.requested, TunnelRequest::Up);

        // set_route_enabled: off → gone from the table, on → back.
        c.call(Op::SetRouteEnabled { route: ctr2.parse().unwrap(), enabled: false }).await.unwrap();
        assert_eq!(route(&c.status().await.unwrap(), &ctr2).state, RouteState::Disabled);
        assert!(!rig.topo.routes(rig.topo.ns_mac()).contains(&ctr2));
        assert!(!ctr2_reachable(&rig));
        c.call(Op::SetRouteEnabled { route: ctr2.parse().unwrap(), enabled: true }).await.unwrap();
        assert!(rig.topo.routes(rig.topo.ns_mac()).contains(&ctr2));
        let unknown = c.call(Op::SetRouteEnabled { route: "198.19.250.0/24".parse().unwrap(), enabled: true }).await;
        assert!(matches!(unknown, Err(ClientError::Api(ref e)) if e.code == ErrorCode::InvalidArgument), "{unknown:?}");

        // disconnect: device and routes gone, routes pending; connect: back, guest returns.
        c.call(Op::Disconnect).await.unwrap();
        let s = c.status().await.unwrap();
        assert_eq!((s.requested, s.interface.clone(), s.session.clone()), (TunnelRequest::Down, None, None));
        assert_eq!(route(&s, &ctr2).state, RouteState::Pending);
        assert!(!rig.topo.links(rig.topo.ns_mac()).contains("dockroute0"));
        c.call(Op::Connect).await.unwrap();
        c.call(Op::Connect).await.expect("connect is idempotent");
        rig.wait_traffic("after disconnect + connect", Duration::from_secs(5)).unwrap();
        assert!(ctr2_reachable(&rig));

        // set_secret: the live session keeps going; a guest with the old secret is refused,
        // one with the new secret gets in.
        let new_secret = "0123456789abcdef0123456789abcdef-rotated";
        c.call(Op::SetSecret { secret: Redacted(new_secret.into()) }).await.unwrap();
        assert_eq!(c.status().await.unwrap().secret_source, SecretSource::Api);
        let too_short = c.call(Op::SetSecret { secret: Redacted("short".into()) }).await;
        assert!(matches!(too_short, Err(ClientError::Api(ref e)) if e.code == ErrorCode::InvalidArgument));
        rig.wait_traffic("live session after the secret change", Duration::from_secs(1)).unwrap();
        rig.stop_guest(SIGTERM).unwrap();
        let ups = rig.session_ups(&rig.guest_log);
        rig.start_guest().unwrap(); // still the old secret file
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(rig.session_ups(&rig.guest_log), ups, "the old-secret guest got no session");
        let Answer::Stats(stats) = c.call(Op::Stats).await.unwrap() else { panic!() };
        assert!(stats.drops["auth_failed"] >= 1, "old secret refused: {stats:?}");
        rig.stop_guest(SIGTERM).unwrap();
        let new_file = rig.topo.dir().join("rotated.secret");
        std::fs::write(&new_file, new_secret).unwrap();
        dockroute_e2e::rig::copy_private(&new_file, &rig.topo.dir().join("guest.secret")).unwrap();
        let h = rig.spawn_guest(&rig.topo.dir().join("guest.secret"), "dockroute0", &rig.guest_log).unwrap();
        rig.guest = Some(h);
        rig.wait_traffic("guest with the new secret", Duration::from_secs(5)).unwrap();
    });
    assert!(!read(&rig.helper_log).contains("0123456789abcdef0123456789abcdef"), "the secret never reaches the log");
}

/// Raw frames, so the test controls every byte.
struct Raw(UnixStream);

impl Raw {
    fn connect(path: &std::path::Path) -> Raw {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Raw(s)
    }
    fn send(&mut self, body: &[u8]) {
        self.0.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
        self.0.write_all(body).unwrap();
    }
    fn recv(&mut self) -> serde_json::Value {
        let mut len = [0u8; 4];
        self.0.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        self.0.read_exact(&mut body).unwrap();
        serde_json::from_slice(&body).unwrap()
    }
    fn ask(&mut self, body: &str) -> serde_json::Value {
        self.send(body.as_bytes());
        self.recv()
    }
}

fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_else(|| panic!("expected an error reply, got {v}"))
}

#[test]
fn malformed_oversized_unknown_and_out_of_order_requests_get_errors_and_the_connection_survives() {
    if !require_root() {
        return;
    }
    let rig = up(32);
    let mut raw = Raw::connect(&rig.api_socket());
    assert_eq!(code(&raw.ask(r#"{"id":1,"op":"status"}"#)), "hello_required");
    let v = raw.ask(r#"{"id":2,"op":"hello","version":99,"client":"t"}"#);
    assert_eq!(code(&v), "unsupported_version");
    assert!(v["error"]["message"].as_str().unwrap().contains("version 1"), "{v}");
    let v = raw.ask(r#"{"id":3,"op":"hello","version":1,"client":"t"}"#);
    assert_eq!(v["ok"]["version"], 1, "{v}");
    assert_eq!(code(&raw.ask("this is not json")), "bad_request");
    assert_eq!(code(&raw.ask(r#"{"op":"status"}"#)), "bad_request");
    let v = raw.ask(r#"{"id":5,"op":"frobnicate"}"#);
    assert_eq!((code(&v), v["id"].as_u64()), ("unknown_op", Some(5)));
    assert_eq!(code(&raw.ask(r#"{"id":6,"op":"set_routes","routes":["10.0.0.0/33"]}"#)), "invalid_argument");
    assert_eq!(code(&raw.ask(r#"{"id":7,"op":"set_route_enabled","route":"198.19.1.0/24"}"#)), "invalid_argument");
    // 100 KiB, over the 64 KiB limit: refused, and the stream stays in step.
    let big = format!(r#"{{"id":8,"op":"set_routes","routes":[],"pad":"{}"}}"#, "x".repeat(100 * 1024));
    assert_eq!(code(&raw.ask(&big)), "too_large");
    let v = raw.ask(r#"{"id":9,"op":"status"}"#);
    assert_eq!(v["id"], 9);
    assert_eq!(v["ok"]["kind"], "status", "the same connection still works: {v}");
    // And the helper as a whole: a fresh client and the tunnel.
    rt().block_on(async { Client::connect(&rig.api_socket(), "after").await.unwrap().status().await.unwrap() });
    rig.wait_traffic("after the bad requests", Duration::from_secs(1)).unwrap();
}

#[test]
fn a_route_overlapping_someone_elses_is_reported_as_conflict_and_left_alone() {
    if !require_root() {
        return;
    }
    let mut rig = Rig::new(33, |t| vec![t.ctr_subnet(), t.ctr2_subnet()]).unwrap();
    let t = &rig.topo;
    // ctr2's subnet is already routed by the "LAN" (the veth), before the helper starts.
    let theirs = format!("{} via {}", t.ctr2_subnet(), t.vm_addr());
    t.run(t.ns_mac(), &["ip", "route", "add", &t.ctr2_subnet(), "via", &t.vm_addr().to_string()]).unwrap();
    rig.topo.start_udp_echo(rig.topo.ns_ctr(), 7000).unwrap();
    rig.start_helper().unwrap();
    rig.start_guest().unwrap();
    rig.wait_traffic("session", Duration::from_secs(5)).unwrap();
    let s = rt().block_on(async { Client::connect(&rig.api_socket(), "e2e").await.unwrap().status().await.unwrap() });
    match &route(&s, &rig.topo.ctr2_subnet()).state {
        RouteState::Conflict { interface, route } => {
            assert_eq!(interface, "veth-vm");
            assert_eq!(route.to_string(), rig.topo.ctr2_subnet());
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(route(&s, &rig.topo.ctr_subnet()).state, RouteState::Installed, "the other route is unaffected");
    let routes = rig.topo.routes(rig.topo.ns_mac());
    assert!(routes.contains(&theirs), "their route untouched: {routes}");
    assert!(!routes.contains(&format!("{} dev dockroute0", rig.topo.ctr2_subnet())), "{routes}");
    rig.stop_helper(SIGTERM).unwrap();
    let routes = rig.topo.routes(rig.topo.ns_mac());
    assert!(routes.contains(&theirs), "their route survives our teardown: {routes}");
}

#[test]
fn a_pinned_link_subnet_that_collides_is_reported_and_nothing_is_created() {
    if !require_root() {
        return;
    }
    let rig = Rig::new(34, |t| vec![t.ctr_subnet()]).unwrap();
    let t = &rig.topo;
    // The link subnet (pinned by the test config's addr line) is routed elsewhere already.
    t.run(t.ns_mac(), &["ip", "route", "add", "198.18.134.0/24", "via", &t.vm_addr().to_string()]).unwrap();
    let mut rig = rig;
    rig.start_helper_no_wait().unwrap();
    let sock = rig.api_socket();
    let s = rt().block_on(async {
        let mut last = None;
        for _ in 0..50 {
            if let Ok(c) = Client::connect(&sock, "e2e").await {
                last = Some(c.status().await.unwrap());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        last.expect("the helper serves its API even though the tunnel cannot come up")
    });
    let err = s.error.clone().expect("the collision is reported");
    assert!(err.contains("198.18.134.0/24") && err.contains("pinned"), "{err}");
    assert!(s.interface.is_none());
    assert!(!rig.topo.links(rig.topo.ns_mac()).contains("dockroute0"), "no device was created");
}

#[test]
fn the_status_command_reports_the_helper_or_says_it_is_not_running() {
    if !require_root() {
        return;
    }
    let rig = up(35);
    let helper = dockroute_e2e::rig::bin("dockroute-helper");
    let out = std::process::Command::new(&helper).args(["status", "--socket"]).arg(rig.api_socket()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("tunnel connected") && text.contains("installed [config]"), "{text}");
    let out = std::process::Command::new(&helper)
        .args(["status", "--json", "--socket"])
        .arg(rig.api_socket())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["requested"], "up");
    let missing = rig.topo.dir().join("nobody-here.sock");
    let out = std::process::Command::new(&helper).args(["status", "--socket"]).arg(&missing).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("helper not running at") && err.contains("nobody-here.sock"), "{err}");
}

/// After `API_CLIENT_PY`: says hello, then waits (bounded) for whatever the helper sends next
/// and prints it.
const HOLD_PY: &str = r#"
send({"id": 1, "op": "hello", "version": 1, "client": "holder"})
print("hello ok" if "ok" in recv() else "hello failed", flush=True)
try:
    print(json.dumps(recv()), flush=True)
except Exception as e:
    print("ended:", e, flush=True)
"#;

/// A real unprivileged user, and a real group, made for this test and removed after it.
struct TempAccount {
    user: String,
    group: String,
}

impl TempAccount {
    fn create() -> TempAccount {
        let (user, group) = ("drtest-user".to_string(), "drtest-api".to_string());
        let _ = std::process::Command::new("userdel").arg(&user).output();
        let _ = std::process::Command::new("groupdel").arg(&group).output();
        run(&["groupadd", &group]);
        run(&["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", &user]);
        TempAccount { user, group }
    }
}

impl Drop for TempAccount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("userdel").arg(&self.user).output();
        let _ = std::process::Command::new("groupdel").arg(&self.group).output();
    }
}

fn run(args: &[&str]) -> String {
    let out = std::process::Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_unprivileged_user_is_refused_and_logged_and_a_member_of_the_allowed_group_is_served() {
    if !require_root() {
        return;
    }
    let acct = TempAccount::create();
    let mut rig = Rig::new(36, |t| vec![t.ctr_subnet()]).unwrap();
    // The socket must be reachable by the test user: a directory everyone may traverse.
    let dir = rig.topo.dir().to_path_buf();
    run(&["chmod", "755", &dir.to_string_lossy()]);
    let cfg = std::fs::read_to_string(&rig.config).unwrap();
    // 0666 so that the helper's own check (not the file mode) is what refuses the stranger.
    std::fs::write(&rig.config, format!("{cfg}allow-group {}\napi-socket-mode 0666\n", acct.group)).unwrap();
    rig.start_helper().unwrap();
    let sock = rig.api_socket().to_string_lossy().into_owned();
    let helper = dockroute_e2e::rig::bin("dockroute-helper").to_string_lossy().into_owned();
    let as_user = |acct: &TempAccount| {
        std::process::Command::new("runuser")
            .args(["-u", &acct.user, "--", &helper, "status", "--socket", &sock])
            .output()
            .unwrap()
    };
    let out = as_user(&acct);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "a stranger was served: {}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("not authorised") && err.contains(&acct.group), "{err}");
    let log = rig.helper_log.clone();
    Topology::wait_until("the refusal in the helper log", Duration::from_secs(3), || {
        read(&log).contains("API connection refused")
    })
    .unwrap();

    run(&["usermod", "-aG", &acct.group, &acct.user]);
    let out = as_user(&acct);
    assert!(out.status.success(), "a group member was refused: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("dockroute-helper"));

    // The default mode: 0660, group-owned by the allowed group.
    rig.stop_helper(SIGTERM).unwrap();
    std::fs::write(&rig.config, format!("{cfg}allow-group {}\n", acct.group)).unwrap();
    rig.start_helper().unwrap();
    let meta = run(&["stat", "-c", "%a %U %G", &sock]);
    assert_eq!(meta.trim(), format!("660 root {}", acct.group));
    assert!(as_user(&acct).status.success(), "members reach a 0660 socket");

    // A connection the user holds open is closed when a reload drops the user's group, and
    // the socket file follows the allowed group as it changes.
    let holder_log = rig.topo.dir().join("holder.log");
    let mut holder = std::process::Command::new("runuser")
        .args(["-u", &acct.user, "--", "python3", "-c", &format!("{API_CLIENT_PY}{HOLD_PY}"), &sock])
        .stdout(std::fs::File::create(&holder_log).unwrap())
        .spawn()
        .unwrap();
    Topology::wait_until("the user's connection to say hello", Duration::from_secs(5), || {
        read(&holder_log).contains("hello ok")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", read(&holder_log)));
    std::fs::write(&rig.config, format!("{cfg}allow-group root\n")).unwrap();
    Topology::wait_until("the open connection to be refused after the reload", Duration::from_secs(5), || {
        read(&holder_log).contains("not_authorised")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", read(&holder_log)));
    let _ = holder.wait();
    assert_eq!(run(&["stat", "-c", "%G", &sock]).trim(), "root", "the socket's group follows allow-group");

    // A required code signature (macOS) applies to non-root callers; where signatures do not
    // exist it refuses rather than let everyone in. Reloaded live.
    std::fs::write(
        &rig.config,
        format!("{cfg}allow-group {}\nrequire-signature identifier \"dev.dockroute.app\"\n", acct.group),
    )
    .unwrap();
    Topology::wait_until("the signature policy to be refused", Duration::from_secs(5), || {
        let out = as_user(&acct);
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("code signatures exist only on macOS")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&as_user(&acct).stderr)));
    let root = std::process::Command::new(&helper).args(["status", "--socket", &sock]).output().unwrap();
    assert!(root.status.success(), "root is not subject to the signature check");
    drop(acct);
}

/// The HTTPS redirect of port 443 is bounded by the routes installed on the tunnel, whatever
/// names an API caller sends: a name pointing at a LAN address (10.99.0.5, routed nowhere
/// near the tunnel) never takes that address's port 443 from this machine's other users; a
/// route switched off takes its addresses out of the redirect; the helper's stop removes the
/// table.
#[test]
fn a_name_outside_the_installed_routes_never_has_its_port_443_redirected() {
    if !require_root() {
        return;
    }
    let mut rig = up(37);
    let rt = rt();
    let sock = rig.api_socket();
    let t = &rig.topo;
    let (ctr, ctr2, ctr2_net) = (t.ctr_addr().to_string(), t.ctr2_addr().to_string(), t.ctr2_subnet());
    let table = |rig: &Rig| rig.topo.run(rig.topo.ns_mac(), &["nft", "list", "table", "ip", "dockroute_https"]);
    let redirected = |c: &Client| rt.block_on(c.status()).unwrap().https.map(|h| h.redirected);
    let c = rt.block_on(Client::connect(&sock, "e2e")).unwrap();
    rt.block_on(c.call(Op::SetRoutes { routes: vec![ctr2_net.parse().unwrap()] })).unwrap();
    let ip = |a: &str| vec![a.parse::<std::net::IpAddr>().unwrap()];
    let names = std::collections::BTreeMap::from([
        ("web".to_string(), ip(&ctr)),
        ("two".to_string(), ip(&ctr2)),
        ("lan".to_string(), ip("10.99.0.5")),
    ]);
    let set = Op::SetNames {
        names,
        domains: Default::default(),
        name_ports: Default::default(),
        domain_ports: Default::default(),
    };
    rt.block_on(c.call(set)).unwrap();
    Topology::wait_until("two addresses redirected", Duration::from_secs(5), || redirected(&c) == Some(2))
        .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", redirected(&c), read(&rig.helper_log)));
    let rules = table(&rig).unwrap();
    assert!(rules.contains(&ctr) && rules.contains(&ctr2), "{rules}");
    assert!(!rules.contains("10.99.0.5"), "a name's address outside the tunnel's routes: {rules}");

    // The route switched off: its container's port 443 is its own again.
    rt.block_on(c.call(Op::SetRouteEnabled { route: ctr2_net.parse().unwrap(), enabled: false })).unwrap();
    Topology::wait_until("one address redirected", Duration::from_secs(5), || redirected(&c) == Some(1))
        .unwrap_or_else(|e| panic!("{e}: {:?}", redirected(&c)));
    assert!(!table(&rig).unwrap().contains(&ctr2), "{:?}", table(&rig));

    drop(c);
    rig.stop_helper(SIGTERM).unwrap();
    assert!(table(&rig).is_err(), "the helper's stop leaves no redirect: {:?}", table(&rig));
}
