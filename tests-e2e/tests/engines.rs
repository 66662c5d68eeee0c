//! Two engines at once, as someone with Docker Desktop and Colima has them: the real app (through
//! WebDriver) finds both through their docker contexts, shows which one it follows with its
//! facts, and on the user's click moves the guest and the routes to the other one: the old
//! engine keeps no guest and its networks lose their routes; a container on the new engine
//! answers. Engine 28.5 and Engine 20.10, each in its own "VM" namespace; the second VM reaches
//! the first one's "Mac" over a veth pair of its own, as a second VM on a Mac would.

use std::time::Duration;

use dockroute_e2e::docker::Engine;
use dockroute_e2e::docker_rig::{subnet, wait_route, DockerRig};
use dockroute_e2e::netns::{require_root, Topology};
use dockroute_e2e::rig::{bin, read};
use dockroute_e2e::webdriver::{artifacts_dir, Desktop, KernelKeyringEntry, Session};

const DRIVER_PORT: u16 = 4444;
/// The link between the second VM and the first Mac: its own /30 in the benchmarking range.
const CROSS_MAC: &str = "198.18.162.1";
const CROSS_VM: &str = "198.18.162.2";

fn guests(d: &DockerRig) -> String {
    d.docker(&["ps", "-aq", "--no-trunc", "--filter", "label=dev.dockroute.guest"]).trim().to_string()
}

fn running_guest(d: &DockerRig) -> bool {
    !d.docker(&["ps", "-q", "--filter", "label=dev.dockroute.guest"]).trim().is_empty()
}

/// A docker context the way `docker context create NAME --docker host=…` writes it.
fn write_context(home: &std::path::Path, name: &str, host: &str) {
    let hash = std::process::Command::new("sh")
        .args(["-c", &format!("printf %s '{name}' | sha256sum | cut -d' ' -f1")])
        .output()
        .unwrap();
    let dir = home.join(".docker/contexts/meta").join(String::from_utf8(hash.stdout).unwrap().trim());
    std::fs::create_dir_all(&dir).unwrap();
    let meta = serde_json::json!({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}});
    std::fs::write(dir.join("meta.json"), meta.to_string()).unwrap();
}

fn shot(s: &Session, name: &str) {
    let path = artifacts_dir().join(name);
    s.screenshot(&path).unwrap();
    println!("SCREENSHOT {}", path.display());
}

/// What the page shows in `css` (its textContent: the details list is not all in view).
fn text_of(s: &Session, css: &str) -> Result<String, String> {
    Ok(s.content(css)?.unwrap_or_default())
}

fn followed(s: &Session) -> Result<Option<String>, String> {
    let v = s.js(
        "const e = document.querySelector('li.engine[data-followed=\"yes\"]'); return e ? e.dataset.engine : null;",
        serde_json::json!([]),
    )?;
    Ok(v.as_str().map(str::to_string))
}

#[test]
fn the_app_shows_the_engine_and_moves_the_guest_and_routes_when_the_user_switches() {
    let (slot_a, slot_b) = (77, 78);
    if !require_root() || !Engine::V28.require() || !Engine::V20.require() {
        return;
    }
    let a = DockerRig::prepare(slot_a, Engine::V28);
    let b = DockerRig::prepare(slot_b, Engine::V20);
    let topo = &a.rig.topo;
    let (ta, tb) = (&a.rig.topo, &b.rig.topo);
    // The second VM reaches the first Mac (where the app and its helper run) by its own link.
    ta.run(
        ta.ns_mac(),
        &["ip", "link", "add", "veth-vm2", "type", "veth", "peer", "name", "veth-mac2", "netns", tb.ns_vm()],
    )
    .unwrap();
    ta.run(ta.ns_mac(), &["ip", "addr", "add", &format!("{CROSS_MAC}/30"), "dev", "veth-vm2"]).unwrap();
    ta.run(ta.ns_mac(), &["ip", "link", "set", "veth-vm2", "up"]).unwrap();
    tb.run(tb.ns_vm(), &["ip", "addr", "add", &format!("{CROSS_VM}/30"), "dev", "veth-mac2"]).unwrap();
    tb.run(tb.ns_vm(), &["ip", "link", "set", "veth-mac2", "up"]).unwrap();
    let mac = ta.mac_addr().to_string();
    tb.run(tb.ns_vm(), &["ip", "route", "add", &format!("{mac}/32"), "via", CROSS_MAC]).unwrap();

    // The app knows both engines only from the user's docker contexts; the CLI's current one
    // is Engine 28.
    let home = topo.dir().join("home");
    let (host_a, host_b) =
        (format!("unix://{}", a.dockerd.socket.display()), format!("unix://{}", b.dockerd.socket.display()));
    write_context(&home, "engine28", &host_a);
    write_context(&home, "engine20", &host_b);
    std::fs::write(home.join(".docker/config.json"), r#"{"currentContext": "engine28"}"#).unwrap();
    let service = format!("dev.dockroute.e2e.{}", topo.slot);
    let _secret = KernelKeyringEntry::for_service(&service);
    let env = vec![
        ("DOCKROUTE_KEYCHAIN_SERVICE", service.clone()),
        ("HOME", home.display().to_string()),
        ("XDG_CONFIG_HOME", home.join(".config").display().to_string()),
        ("XDG_DATA_HOME", home.join(".local/share").display().to_string()),
        ("RUST_LOG", "info,dockroute_app=debug,dockroute_controller=debug".to_string()),
    ];
    let desktop = Desktop::start(topo, 100 + u16::from(slot_a), DRIVER_PORT, &env).unwrap();
    let args: Vec<String> = vec![
        "--show-dashboard".into(),
        "--helper-socket".into(),
        a.rig.api_socket().display().to_string(),
        "--host-address".into(),
        mac.clone(),
        "--guest-image-tar".into(),
        // Built on Engine 20.10: both engines load it.
        b.tar.display().to_string(),
        "--keep-guest-running".into(),
    ];
    let fail = |e: String| -> ! {
        panic!("{e}\ndesktop log:\n{}\nengine 28:\n{}\nengine 20:\n{}", read(&desktop.log), a.logs(), b.logs())
    };
    let s = desktop.launch(&bin("dockroute"), &args).unwrap_or_else(|e| fail(e));
    s.wait("the tunnel to connect", Duration::from_secs(90), |s| {
        Ok(s.content("#phase")?.as_deref() == Some("connected"))
    })
    .unwrap_or_else(|e| fail(e));

    // Both engines listed, the CLI's followed, its facts where a user debugging would look.
    s.wait("both engines listed", Duration::from_secs(10), |s| {
        Ok(s.js("return document.querySelectorAll('li.engine').length;", serde_json::json!([]))?
            == serde_json::json!(2))
    })
    .unwrap_or_else(|e| fail(e));
    assert_eq!(followed(&s).unwrap().as_deref(), Some(host_a.as_str()));
    let kind = text_of(&s, "#engine-kind").unwrap();
    assert!(kind.starts_with("Docker Engine 28."), "the engine and its version: {kind:?}");
    let api = text_of(&s, "#api-version").unwrap();
    assert!(api.starts_with("API 1."), "{api:?}");
    let reach = text_of(&s, "#host-name").unwrap();
    assert_eq!(reach, format!("host.docker.internal → {mac} (--host-address)"));
    // The guest's firewall backend, as its log says, once the session is up.
    s.wait("the guest's firewall backend shown", Duration::from_secs(15), |s| {
        Ok(text_of(s, "#firewall")?.starts_with("IPv4 iptables-"))
    })
    .unwrap_or_else(|e| fail(e));
    println!("VM firewall shown: {}", text_of(&s, "#firewall").unwrap());
    let other = text_of(&s, &format!(r#"li.engine[data-engine="{host_b}"] .engine-name"#)).unwrap();
    assert!(other.starts_with("Docker Engine 20.10"), "{other:?}");
    assert!(running_guest(&a) && guests(&b).is_empty(), "the guest runs on the followed engine only");
    shot(&s, "engines-two.png");

    // A network on each engine: only the followed one's is routed.
    let (net_a, net_b) = (subnet(slot_a, 1), subnet(slot_b, 1));
    a.docker(&["network", "create", "--subnet", &net_a, "dr-eng-a"]);
    b.docker(&["network", "create", "--subnet", &net_b, "dr-eng-b"]);
    wait_route(&a, &net_a, true, "engine 28's network routed");
    let ip_b = b.web("webb", "dr-eng-b");
    assert!(!a.route_present(&net_b), "the other engine's network is not routed");

    // The user follows Engine 20.10: its guest starts, Engine 28's is removed, the routes move.
    let started = std::time::Instant::now();
    s.click(&format!(r#"li.engine[data-engine="{host_b}"] button.follow-engine"#)).unwrap();
    // The old guest goes first (Disconnect's teardown), then the new one is loaded and started.
    let t = Topology::wait_until("engine 20.10's network routed after the switch", Duration::from_secs(60), || {
        a.route_present(&net_b)
    })
    .unwrap_or_else(|e| fail(e));
    println!("MEASURED switch click → new engine's network routed: {t:?}");
    assert!(!a.route_present(&net_a), "engine 28's network is no longer routed");
    Topology::wait_until("the old engine's guest removed", Duration::from_secs(30), || guests(&a).is_empty())
        .unwrap_or_else(|e| fail(e));
    // The routes go to the helper before the guest image is loaded into the new engine.
    let t = Topology::wait_until("the guest running on the new engine", Duration::from_secs(60), || running_guest(&b))
        .unwrap_or_else(|e| fail(e));
    println!("MEASURED switch click → guest running on the new engine: {t:?}");
    let answered = Topology::wait_until("webb on the new engine to answer", Duration::from_secs(20), || {
        a.get(&ip_b).is_ok_and(|body| body.contains("hello from webb"))
    })
    .unwrap_or_else(|e| fail(e));
    println!("MEASURED switch click → container on the new engine answers: {:?}", started.elapsed());
    let _ = answered;
    s.wait("the dashboard to follow Engine 20.10", Duration::from_secs(10), |s| {
        Ok(followed(s)?.as_deref() == Some(host_b.as_str())
            && text_of(s, "#engine-kind")?.starts_with("Docker Engine 20.10"))
    })
    .unwrap_or_else(|e| fail(e));
    let prefs = read(&home.join(".config/dev.dockroute.app/preferences.json"));
    assert!(prefs.contains(&host_b), "the choice is remembered: {prefs}");
    // Nothing of ours is left on the old engine: no container, running or stopped.
    assert_eq!(guests(&a), "", "a guest container stayed on the old engine");
    shot(&s, "engines-switched.png");
    s.close().unwrap();
}
