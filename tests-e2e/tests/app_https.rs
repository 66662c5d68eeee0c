//! The app's HTTPS section, driven through its dashboard the way a user would (WebDriver in the
//! real WebKit window, the real helper, a real dockerd, Engine 28): the local CA's id, expiry
//! and name constraints are shown; a container's name is an `https://` link the app opens; the
//! switch turns the helper's front off (a TLS connect to port 443 of the link address is then
//! refused), is remembered, and turns it on again; Trust and Remove change where the CA is
//! trusted: the helper runs Debian's real `update-ca-certificates` against a private copy of
//! the system store in a mount namespace of its own (`src/https/helper_private_store.sh`), so
//! the machine's store is never touched. Needs root, Xvfb, WebKitWebDriver, tauri-driver,
//! curl, ca-certificates and the cached Engine 28.

use std::time::Duration;

use dockroute_e2e::docker::Engine;
use dockroute_e2e::docker_rig::{helper_status, subnet, wait_route, workspace, DockerRig};
use dockroute_e2e::netns::{require_root, Topology};
use dockroute_e2e::rig::{bin, read};
use dockroute_e2e::webdriver::{app_env, artifacts_dir, keychain_service, Desktop, KernelKeyringEntry, Session};

// A docker slot (41..=50, 60..=69: `docker_rig::subnet`) no other test uses.
const SLOT: u8 = 64;
/// tauri-driver's port inside the test's own "mac" namespace.
const DRIVER_PORT: u16 = 4444;
const SIGTERM: i32 = 15;

fn text(s: &Session, css: &str) -> String {
    s.content(css).ok().flatten().unwrap_or_default()
}

#[test]
fn dashboard_https_switch_turns_the_front_off_and_on_and_trust_changes_only_a_private_store() {
    if !require_root() || !Engine::V28.require() {
        return;
    }
    let mut d = DockerRig::prepare(SLOT, Engine::V28);
    // The helper runs with a system trust store of its own from the start: Trust and Remove
    // below change only that (the rig's helper is replaced by one in a mount namespace).
    d.rig.stop_helper(SIGTERM).unwrap();
    let topo = &d.rig.topo;
    let store = topo.dir().join("trust-store");
    let script = workspace().join("tests-e2e/src/https/helper_private_store.sh");
    let (helper, config, socket) = (bin("dockroute-helper"), d.rig.config.clone(), d.rig.api_socket());
    let argv: Vec<String> = ["unshare", "--mount", "--propagation", "private", "bash"]
        .into_iter()
        .map(String::from)
        .chain([&script, &helper, &config, &socket, &store].map(|p| p.display().to_string()))
        .collect();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let private_log = topo.dir().join("helper-private-store.log");
    let pid = topo.spawn(topo.ns_mac(), &argv, &private_log).unwrap();
    Topology::wait_until("the helper in its private store to answer", Duration::from_secs(10), || {
        helper_status(&socket).is_some()
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}
{}",
            read(&private_log)
        )
    });
    let link = d.rig.link_host();
    let _secret = KernelKeyringEntry::for_service(&keychain_service(topo));
    let home = topo.dir().join("home");
    let (env, opened) = app_env(topo, format!("unix://{}", d.dockerd.socket.display()));
    let desktop = Desktop::start(topo, 100 + u16::from(SLOT), DRIVER_PORT, &env).unwrap();
    let args = d.app_args();
    let fail = |e: String| -> ! {
        panic!("{e}\ndesktop log:\n{}\n{}\nhelper log:\n{}", read(&desktop.log), d.logs(), read(&private_log))
    };
    let s = desktop.launch(&bin("dockroute"), &args).unwrap_or_else(|e| fail(e));
    s.wait("connected", Duration::from_secs(60), |s| Ok(s.content("#phase")?.as_deref() == Some("connected")))
        .unwrap_or_else(|e| fail(e));

    // The CA as the helper's own `ca show` names it, with what it may sign, in words.
    let conf_dir = d.rig.config.parent().unwrap().to_path_buf();
    let ca_pem = conf_dir.join("dockroute.ca.pem");
    let show = std::process::Command::new(bin("dockroute-helper"))
        .args(["ca", "show", "--config"])
        .arg(&d.rig.config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&show.stderr).into_owned();
    let ca_id = said.split_whitespace().nth(2).unwrap_or_default().trim_end_matches(':').to_string();
    assert!(said.starts_with("local CA ") && ca_id.len() >= 8, "ca show: {said}");
    s.wait("the CA in the HTTPS section", Duration::from_secs(20), |s| Ok(text(s, "#https-ca-id") == ca_id))
        .unwrap_or_else(|e| fail(format!("{e}: page shows {:?}, ca show says {said}", text(&s, "#https-ca-id"))));
    let constraints = text(&s, "#https-ca-constraints");
    assert!(constraints.starts_with("names *.docker, *.test") && constraints.contains("only"), "{constraints}");
    let expires = text(&s, "#https-ca-expires");
    assert!(expires.len() == 10 && expires.starts_with("20"), "a date: {expires:?}");
    assert!(text(&s, "#https-ca-trusted").starts_with("Not trusted yet"), "{}", text(&s, "#https-ca-trusted"));
    assert!(text(&s, "#https-summary").contains(&format!("{link}:443")), "{}", text(&s, "#https-summary"));

    // A container's name is an https:// link, and the app opens exactly that.
    let net = subnet(SLOT, 1);
    d.docker(&["network", "create", "--subnet", &net, "dr-apphttps"]);
    wait_route(&d, &net, true, "the network's route");
    d.web("web", "dr-apphttps");
    let name_link = r#"li.container[data-container="web"] a.https-link[data-name="web.docker"]"#;
    s.wait("web.docker as an https:// link", Duration::from_secs(20), |s| Ok(s.content(name_link)?.is_some()))
        .unwrap_or_else(|e| fail(e));
    assert_eq!(text(&s, name_link), "https://web.docker");
    s.click(name_link).unwrap();
    Topology::wait_until("the browser to be asked for https://web.docker/", Duration::from_secs(5), || {
        read(&opened).trim() == "https://web.docker/"
    })
    .unwrap_or_else(|e| fail(format!("{e}: opener got {:?}", read(&opened))));
    shot(&s, "dashboard-https.png");

    // Through the front with the CA (no -k): the container's page, by the container's own
    // address as DNS answers it (the helper redirects its port 443 to the front).
    let web_ip = d.docker(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "web"]);
    let resolve = format!("web.docker:443:{}", web_ip.trim());
    let redirect_table = || topo.run(topo.ns_mac(), &["nft", "list", "table", "ip", "dockroute_https"]);
    let cacert = ca_pem.display().to_string();
    let curl = |extra: &[&str]| {
        let mut a = vec!["curl", "-sS", "--max-time", "5", "--resolve", &resolve];
        a.extend_from_slice(extra);
        a.push("https://web.docker/");
        topo.run(topo.ns_mac(), &a)
    };
    Topology::wait_until("web.docker over HTTPS", Duration::from_secs(15), || {
        curl(&["--cacert", &cacert]).is_ok_and(|b| b.contains("hello from web"))
    })
    .unwrap_or_else(|e| fail(format!("{e}: {:?}", curl(&["--cacert", &cacert]))));

    // The switch off: the front and the redirect stop (connect refused), the names are plain again, remembered.
    s.click("#https-switch").unwrap();
    let t = Topology::wait_until("the front to stop", Duration::from_secs(10), || {
        // The redirect is gone: the connection reaches the container's own port 443, where
        // nothing listens (curl's "Couldn't connect to server", exit 7).
        curl(&["--cacert", &cacert]).is_err_and(|e| e.contains("exit status: 7"))
    })
    .unwrap_or_else(|e| fail(format!("{e}: {:?}", curl(&["--cacert", &cacert]))));
    println!("MEASURED dashboard HTTPS switch off → TLS connect refused: {t:?}");
    assert!(redirect_table().is_err(), "switching off removes the redirect of port 443: {:?}", redirect_table());
    s.wait("the section says off", Duration::from_secs(10), |s| {
        Ok(text(s, "#https-summary") == "Off: switched off here")
    })
    .unwrap_or_else(|e| fail(e));
    s.wait("web.docker no longer a link", Duration::from_secs(10), |s| Ok(s.content(name_link)?.is_none()))
        .unwrap_or_else(|e| fail(e));
    assert_eq!(text(&s, "#https-ca-id"), ca_id, "the CA is still shown while the front is off");
    let prefs = read(&home.join(".config/dev.dockroute.app/preferences.json"));
    assert!(prefs.contains(r#""https": false"#), "the switch is remembered: {prefs}");
    shot(&s, "dashboard-https-off.png");

    // And on again.
    s.click("#https-switch").unwrap();
    let t = Topology::wait_until("the front to serve again", Duration::from_secs(10), || {
        curl(&["--cacert", &cacert]).is_ok_and(|b| b.contains("hello from web"))
    })
    .unwrap_or_else(|e| fail(format!("{e}: {:?}", curl(&["--cacert", &cacert]))));
    println!("MEASURED dashboard HTTPS switch on → served again: {t:?}");
    assert!(redirect_table().is_ok_and(|t| t.contains(web_ip.trim())), "{:?}", redirect_table());
    s.wait("web.docker a link again", Duration::from_secs(10), |s| Ok(s.content(name_link)?.is_some()))
        .unwrap_or_else(|e| fail(e));

    // Trust and Remove: curl as the helper's mount namespace sees the world (its private
    // store), with no --cacert.
    let pid_s = pid.to_string();
    let private_curl = || {
        topo.run(
            topo.ns_mac(),
            &[
                "nsenter",
                "-t",
                &pid_s,
                "-m",
                "curl",
                "-sS",
                "--max-time",
                "5",
                "--resolve",
                &resolve,
                "https://web.docker/",
            ],
        )
    };
    let before = private_curl();
    assert!(before.as_ref().is_err_and(|e| e.contains("certificate")), "untrusted before Trust: {before:?}");

    s.click("#https-trust").unwrap();
    s.wait("trusted in the system store", Duration::from_secs(30), |s| {
        Ok(text(s, "#https-ca-trusted").starts_with("system store (/usr/local/share/ca-certificates/dockroute-"))
    })
    .unwrap_or_else(|e| fail(e));
    let after = private_curl();
    assert!(after.as_ref().is_ok_and(|b| b.contains("hello from web")), "trusted, no --cacert: {after:?}");
    let ours = format!("dockroute-{ca_id}.crt");
    let machine = std::fs::read_dir("/usr/local/share/ca-certificates")
        .map(|r| r.filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy() == ours.as_str()));
    assert!(!machine.unwrap_or(false), "the machine's own store was touched");
    shot(&s, "dashboard-https-trusted.png");

    // Remove (the page asks first; the test says yes).
    s.js("window.confirm = () => true; return true;", serde_json::json!([])).unwrap();
    s.click("#https-untrust").unwrap();
    s.wait("no longer trusted", Duration::from_secs(30), |s| {
        Ok(text(s, "#https-ca-trusted").starts_with("Not trusted yet"))
    })
    .unwrap_or_else(|e| fail(e));
    let removed = private_curl();
    assert!(removed.as_ref().is_err_and(|e| e.contains("certificate")), "untrusted again after Remove: {removed:?}");
    s.close().unwrap();
    let _ = topo.kill(pid, SIGTERM);
}

/// Saves a screenshot among the artefacts and says where, for the CI log.
fn shot(s: &Session, name: &str) {
    let path = artifacts_dir().join(name);
    s.screenshot(&path).unwrap();
    println!("SCREENSHOT {}", path.display());
}
