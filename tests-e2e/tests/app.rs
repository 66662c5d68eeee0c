//! The menu-bar app itself, built for Linux and driven through its dashboard the way a user
//! would: WebDriver clicks in the real WebKit window, against the real helper and a real dockerd.
//! Screenshots land in `target/e2e-artifacts/` (or `$DOCKROUTE_ARTIFACTS`); measured times
//! print as `MEASURED …` lines. Needs root, Xvfb, WebKitWebDriver and tauri-driver
//! (`scripts/setup.sh`).

use std::time::Duration;

use dockroute_e2e::docker::Engine;
use dockroute_e2e::docker_rig::{helper_status, httpd_cmd, subnet, wait_route, DockerRig};
use dockroute_e2e::netns::{require_root, Topology};
use dockroute_e2e::rig::{bin, read, Rig};
use dockroute_e2e::webdriver::{app_env, artifacts_dir, keychain_service, Desktop, KernelKeyringEntry, Session};

/// tauri-driver's port inside the test's own "mac" namespace (each test has its own loopback).
const DRIVER_PORT: u16 = 4444;

/// The "mac" namespace's routes that do not go through the tunnel device.
fn other_routes(topo: &Topology) -> Vec<String> {
    topo.routes(topo.ns_mac()).lines().filter(|l| !l.contains("dockroute0")).map(str::to_string).collect()
}

fn prefs_file(topo: &Topology) -> String {
    read(&topo.dir().join("home/.config/dev.dockroute.app/preferences.json"))
}

fn phase_is(s: &Session, want: &str) -> Result<bool, String> {
    Ok(s.content("#phase")?.as_deref() == Some(want))
}

fn network_row(name: &str) -> String {
    format!(r#"li.network[data-network="{name}"]"#)
}

fn route_state(s: &Session, net: &str) -> Result<String, String> {
    Ok(s.content(&format!("{} .route-state", network_row(net)))?.unwrap_or_default())
}

fn checked(s: &Session, css: &str) -> Result<bool, String> {
    let v =
        s.js("const e = document.querySelector(arguments[0]); return e ? e.checked : null;", serde_json::json!([css]))?;
    v.as_bool().ok_or(format!("no checkbox {css}"))
}

fn guest_id(d: &DockerRig) -> String {
    d.docker(&["ps", "-q", "--no-trunc", "--filter", "label=dev.dockroute.guest"]).trim().to_string()
}

fn http_ok(d: &DockerRig, ip: &str, who: &str) -> bool {
    d.get(ip).is_ok_and(|body| body.contains(&format!("hello from {who}")))
}

#[test]
fn dashboard_connects_lists_and_toggles_real_routes() {
    let slot = 47;
    if !require_root() || !Engine::V28.require() {
        return;
    }
    let d = DockerRig::prepare(slot, Engine::V28);
    let topo = &d.rig.topo;
    let secret = KernelKeyringEntry::for_service(&keychain_service(topo));
    let routes_before = other_routes(topo);
    let (env, opened) = app_env(topo, format!("unix://{}", d.dockerd.socket.display()));
    let desktop = Desktop::start(topo, 100 + u16::from(slot), DRIVER_PORT, &env).unwrap();
    let args = d.app_args();
    let fail = |e: String| -> ! { panic!("{e}\ndesktop log:\n{}\n{}", read(&desktop.log), d.logs()) };
    let s = desktop.launch(&bin("dockroute"), &args).unwrap_or_else(|e| fail(e));

    // First start: no preferences yet, so it connects; the guest is loaded from the tarball.
    let t = s
        .wait("the tunnel to connect", Duration::from_secs(60), |s| phase_is(s, "connected"))
        .unwrap_or_else(|e| fail(e));
    println!("MEASURED app start → dashboard shows connected: {t:?}");
    let stored = secret.read().expect("the app stored its secret in the kernel keyring");
    assert_eq!(stored.len(), 64, "a 32-byte secret in hex");
    let home = topo.dir().join("home");
    let leaks =
        std::process::Command::new("grep").arg("-rlF").arg(&stored).arg(&home).arg(&desktop.log).output().unwrap();
    assert!(leaks.stdout.is_empty(), "the secret was written to disk: {}", String::from_utf8_lossy(&leaks.stdout));
    assert_eq!(s.text("#connect-button").unwrap(), "Disconnect");

    // A network created now appears with its container, and its route works.
    let (net1, net2) = (subnet(slot, 1), subnet(slot, 2));
    d.docker(&["network", "create", "--subnet", &net1, "dr-app1"]);
    let t = s
        .wait("dr-app1 installed", Duration::from_secs(15), |s| Ok(route_state(s, "dr-app1")?.contains("installed")))
        .unwrap_or_else(|e| fail(e));
    println!("MEASURED docker network create → dashboard shows the route installed: {t:?}");
    let ip1 = d.web("web1", "dr-app1");
    s.wait("web1 listed with its IP", Duration::from_secs(15), |s| {
        Ok(s.content(&format!(r#"li.container[data-container="web1"] button.ip[data-ip="{ip1}"]"#))?.is_some())
    })
    .unwrap_or_else(|e| fail(e));
    assert!(d.route_present(&net1));
    assert!(http_ok(&d, &ip1, "web1"), "web1 unreachable through the tunnel\n{}", d.logs());
    // Clicking an address puts it on the clipboard (read back through X, as another app would).
    s.click(&format!(r#"button.ip[data-ip="{ip1}"]"#)).unwrap();
    let display = format!("DISPLAY=:{}", desktop.display);
    Topology::wait_until("the address on the clipboard", Duration::from_secs(5), || {
        topo.run(topo.ns_mac(), &["env", &display, "xclip", "-selection", "clipboard", "-o"])
            .is_ok_and(|t| t.trim() == ip1)
    })
    .unwrap_or_else(|e| fail(e));
    s.wait("dr-app1 counting its container", Duration::from_secs(10), |s| {
        Ok(s.content(&format!("{} .network-containers", network_row("dr-app1")))?.as_deref() == Some("1 container"))
    })
    .unwrap_or_else(|e| fail(e));
    // An exposed port opens in the browser at the container's address.
    let web2 = ["run", "-d", "--name", "web2", "--network", "dr-app1", "--expose", "80", "dr-busybox", "sh", "-c"];
    d.docker(&[&web2[..], &[httpd_cmd("web2").as_str()]].concat());
    let ip2 = d.dockerd.container_ip("web2", "dr-app1").unwrap();
    let port_link = r#"li.container[data-container="web2"] a.port[data-port="80"]"#;
    s.wait("web2's port listed", Duration::from_secs(15), |s| Ok(s.content(port_link)?.is_some()))
        .unwrap_or_else(|e| fail(e));
    s.click(port_link).unwrap();
    Topology::wait_until("the browser to be asked for web2", Duration::from_secs(5), || {
        read(&opened).trim() == format!("http://{ip2}:80/")
    })
    .unwrap_or_else(|e| fail(format!("{e}: opener got {:?}", read(&opened))));

    // The helper's pushed stats reach the page: the packets that request just sent are counted.
    let count = |s: &Session, css: &str| -> Result<u64, String> {
        let text = s.content(css)?.unwrap_or_default();
        Ok(text.chars().filter(char::is_ascii_digit).collect::<String>().parse().unwrap_or(0))
    };
    s.wait("traffic counted on the dashboard", Duration::from_secs(10), |s| {
        Ok(count(s, "#tx-packets")? > 0 && count(s, "#rx-packets")? > 0)
    })
    .unwrap_or_else(|e| fail(e));
    shot(&s, "dashboard-connected.png");

    // Toggle off: the route leaves the "mac" namespace and the container is out of reach.
    let toggle1 = format!("{} input.network-toggle", network_row("dr-app1"));
    s.click(&toggle1).unwrap();
    let t = wait_route(&d, &net1, false, "dr-app1's route to go after the toggle");
    println!("MEASURED dashboard toggle off → route gone in mac: {t:?}");
    assert!(!http_ok(&d, &ip1, "web1"), "web1 still reachable with its network switched off");
    s.wait("dr-app1 shown disabled", Duration::from_secs(5), |s| Ok(route_state(s, "dr-app1")?.contains("disabled")))
        .unwrap_or_else(|e| fail(e));
    assert!(prefs_file(topo).contains("dr-app1"), "the choice is saved: {}", prefs_file(topo));

    // Toggle on: back, and the container answers.
    s.click(&toggle1).unwrap();
    let t = wait_route(&d, &net1, true, "dr-app1's route to come back");
    let reach = Topology::wait_until("web1 to answer again", Duration::from_secs(5), || http_ok(&d, &ip1, "web1"))
        .unwrap_or_else(|e| fail(e));
    println!("MEASURED dashboard toggle on → route back: {t:?}, container answers after {reach:?}");
    assert!(checked(&s, &toggle1).unwrap());

    // A network whose subnet another interface already routes (a VPN, say) is shown, left
    // alone and cannot be switched on; the problem box says why.
    let net3 = subnet(slot, 3);
    topo.run(topo.ns_mac(), &["ip", "route", "add", &net3, "dev", "veth-vm"]).unwrap();
    d.docker(&["network", "create", "--subnet", &net3, "dr-app3"]);
    s.wait("dr-app3 in conflict", Duration::from_secs(15), |s| Ok(route_state(s, "dr-app3")?.contains("conflict")))
        .unwrap_or_else(|e| fail(e));
    let row3 = network_row("dr-app3");
    let conflict = s.content(&format!("{row3} .conflict")).unwrap().unwrap_or_default();
    assert!(conflict.contains(&net3) && conflict.contains("veth-vm"), "{conflict}");
    let disabled = s.js(
        "return document.querySelector(arguments[0]).disabled;",
        serde_json::json!([format!("{row3} input.network-toggle")]),
    );
    assert_eq!(disabled.unwrap(), serde_json::json!(true), "a conflicting network cannot be switched on");
    assert_eq!(s.content("#problem-title").unwrap().as_deref(), Some("Network dr-app3 is not routed"));
    shot(&s, "dashboard-conflict.png");
    assert!(topo.routes(topo.ns_mac()).contains(&format!("{net3} dev veth-vm")), "the other route was left alone");
    d.docker(&["network", "rm", "dr-app3"]);
    topo.run(topo.ns_mac(), &["ip", "route", "del", &net3, "dev", "veth-vm"]).unwrap();
    s.wait("the conflict warning to go", Duration::from_secs(15), |s| {
        Ok(s.js("return document.getElementById('problem').hidden;", serde_json::json!([]))? == serde_json::json!(true))
    })
    .unwrap_or_else(|e| fail(e));

    // A second network, switched off before the app restarts: the choice must survive.
    d.docker(&["network", "create", "--subnet", &net2, "dr-app2"]);
    s.wait("dr-app2 installed", Duration::from_secs(15), |s| Ok(route_state(s, "dr-app2")?.contains("installed")))
        .unwrap_or_else(|e| fail(e));
    s.click(&format!("{} input.network-toggle", network_row("dr-app2"))).unwrap();
    wait_route(&d, &net2, false, "dr-app2's route to go");

    // Restart the app (WebDriver ends the process; nothing is torn down). The secret comes back
    // from the kernel keyring, so the running guest is adopted, not replaced.
    let guest_before = guest_id(&d);
    assert!(!guest_before.is_empty());
    s.close().unwrap();
    let s = desktop.launch(&bin("dockroute"), &args).unwrap_or_else(|e| fail(e));
    let t = s
        .wait("connected after a restart", Duration::from_secs(30), |s| phase_is(s, "connected"))
        .unwrap_or_else(|e| fail(e));
    println!("MEASURED app restart → connected: {t:?}");
    s.wait("both networks listed", Duration::from_secs(15), |s| {
        Ok(route_state(s, "dr-app1")?.contains("installed") && route_state(s, "dr-app2")?.contains("disabled"))
    })
    .unwrap_or_else(|e| fail(e));
    assert_eq!(guest_id(&d), guest_before, "the guest was replaced although the keyring kept the secret");
    assert_eq!(secret.read().as_deref(), Some(stored.as_str()), "the same secret, from the keyring");
    assert!(d.route_present(&net1) && !d.route_present(&net2), "{}", topo.routes(topo.ns_mac()));
    assert!(!checked(&s, &format!("{} input.network-toggle", network_row("dr-app2"))).unwrap());

    // Disconnect tears down exactly what the app added; Connect brings it back.
    s.click("#connect-button").unwrap();
    s.wait("disconnected", Duration::from_secs(15), |s| phase_is(s, "disconnected")).unwrap_or_else(|e| fail(e));
    Topology::wait_until("the guest to be removed", Duration::from_secs(15), || guest_id(&d).is_empty())
        .unwrap_or_else(|e| fail(e));
    wait_route(&d, &net1, false, "routes withdrawn on disconnect");
    // The teardown withdraws routes, then names, then the tunnel: the last step may land a
    // moment after the routes are gone.
    Topology::wait_until("the helper's tunnel down", Duration::from_secs(5), || {
        helper_status(&d.rig.api_socket()).is_some_and(|s| s.contains("tunnel disconnected"))
    })
    .unwrap_or_else(|e| fail(format!("{e}: {}", helper_status(&d.rig.api_socket()).unwrap_or_default())));
    assert_eq!(other_routes(topo), routes_before, "Disconnect touched routes that are not its own");
    assert_eq!(s.text("#connect-button").unwrap(), "Connect");
    assert!(prefs_file(topo).contains(r#""connect": false"#));
    s.click("#connect-button").unwrap();
    let t =
        s.wait("connected again", Duration::from_secs(60), |s| phase_is(s, "connected")).unwrap_or_else(|e| fail(e));
    println!("MEASURED dashboard Connect → connected: {t:?}");
    Topology::wait_until("web1 to answer after reconnecting", Duration::from_secs(10), || http_ok(&d, &ip1, "web1"))
        .unwrap_or_else(|e| fail(e));
    s.close().unwrap();
}

#[test]
fn dashboard_says_what_is_missing_and_recovers() {
    let slot = 48;
    if !require_root() {
        return;
    }
    // A topology and a helper config, but no helper running yet and no Docker at all.
    let mut rig = Rig::new(slot, |_| Vec::new()).unwrap();
    let topo = &rig.topo;
    let _secret = KernelKeyringEntry::for_service(&keychain_service(topo));
    let (env, _) = app_env(topo, format!("unix://{}", topo.dir().join("no-docker.sock").display()));
    let desktop = Desktop::start(topo, 100 + u16::from(slot), DRIVER_PORT, &env).unwrap();
    let args: Vec<String> =
        vec!["--show-dashboard".into(), "--helper-socket".into(), rig.api_socket().display().to_string()];
    let s = desktop.launch(&bin("dockroute"), &args).unwrap_or_else(|e| panic!("{e}\n{}", read(&desktop.log)));
    let title = |s: &Session| -> Result<String, String> { Ok(s.content("#problem-title")?.unwrap_or_default()) };

    s.wait("the helper problem", Duration::from_secs(20), |s| Ok(title(s)? == "Helper not installed"))
        .unwrap_or_else(|e| panic!("{e}\n{}", read(&desktop.log)));
    assert!(phase_is(&s, "error").unwrap());
    assert!(s.text("#problem-action").unwrap().contains("Install"), "an install button is offered");
    assert!(s.text("#problem-detail").unwrap().contains(&rig.api_socket().display().to_string()));
    shot(&s, "dashboard-helper-missing.png");

    // The helper appears (installed by hand): the app notices by itself and moves on to the
    // next thing that is missing.
    rig.start_helper().unwrap();
    let t = s
        .wait("the docker problem", Duration::from_secs(30), |s| Ok(title(s)? == "Docker is not running"))
        .unwrap_or_else(|e| panic!("{e}\n{}", read(&desktop.log)));
    println!("MEASURED helper started → dashboard moves on to the Docker problem: {t:?}");
    assert!(s.text("#problem-detail").unwrap().contains("no-docker.sock"));
    assert_eq!(s.text("#problem-action").unwrap(), "Retry");
    // Retry tries at once (the backoff has grown to several seconds by now) and still says why.
    let attempts = || read(&desktop.log).matches("cannot connect: Docker is not running").count();
    let before = attempts();
    s.click("#problem-action").unwrap();
    Topology::wait_until("Retry to try again", Duration::from_millis(1500), || attempts() > before)
        .unwrap_or_else(|e| panic!("{e}\n{}", read(&desktop.log)));
    assert_eq!(title(&s).unwrap(), "Docker is not running");
    shot(&s, "dashboard-docker-missing.png");
    s.close().unwrap();
}

/// Saves a screenshot among the artefacts and says where, for the CI log.
fn shot(s: &Session, name: &str) {
    let path = artifacts_dir().join(name);
    s.screenshot(&path).unwrap();
    println!("SCREENSHOT {}", path.display());
}
