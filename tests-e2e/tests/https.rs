//! HTTPS for container names from the "mac" namespace, on real dockerd (Engine 28): the
//! helper's front on port 443 of its link address, reached by the containers' own addresses as
//! DNS answers them (the helper redirects their port 443 there), its local CA trusted through Debian's real
//! `update-ca-certificates` in a mount namespace of the test's own (`src/https/clients.sh`:
//! the machine's store is never touched), then real clients with no `-k` and no `--cacert`:
//! curl, Python's `ssl`, headless Chromium (its NSS database), a WebSocket echo through the front (`src/https/ws_echo.py`, run in a
//! container's network namespace), two ports on one name, the error page for a name with no
//! container, and `ca untrust` taking it all back. Then the attacks on the CA: OpenSSL's
//! verifier rejects a leaf forged for `github.com` with the CA's own key, and the key file is
//! 0600 root. Needs root, the cached Engine 28, curl, openssl, python3, chromium and ca-certificates.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use dockroute_e2e::dns::{dig, NetnsResolvConf};
use dockroute_e2e::docker::Engine;
use dockroute_e2e::docker_rig::*;
use dockroute_e2e::netns::{require_root, Topology};
use dockroute_e2e::rig::bin;

const SLOT: u8 = 62;
const WS_PORT: u16 = 8765;

/// The WebSocket echo server, with the host's python3, inside a container's network namespace.
struct WsEcho(Child);

impl Drop for WsEcho {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The clients' output, by check: (text, exit code).
fn sections(text: &str) -> std::collections::BTreeMap<String, (String, i32)> {
    let mut out = std::collections::BTreeMap::new();
    for part in text.split("== ").skip(1) {
        let (name, rest) = part.split_once('\n').unwrap_or((part, ""));
        let (body, code) = rest.rsplit_once("exit=").unwrap_or((rest, "-1"));
        out.insert(name.trim().to_string(), (body.trim().to_string(), code.trim().parse().unwrap_or(-1)));
    }
    out
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().expect("openssl");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A leaf for `name` signed with the CA's key by OpenSSL itself (what a thief of the key
/// would do: nothing of ours in the way); then `openssl verify` against the CA.
fn forge_and_verify(dir: &Path, ca_cert: &Path, ca_key: &Path, name: &str) -> (bool, String) {
    let (key, csr, leaf) =
        (dir.join(format!("{name}.key")), dir.join(format!("{name}.csr")), dir.join(format!("{name}.pem")));
    let s = |p: &Path| p.display().to_string();
    let san = format!("subjectAltName=DNS:{name}");
    let subj = format!("/CN={name}");
    let (ok, text) = openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &s(&key),
        "-subj",
        &subj,
        "-addext",
        &san,
        "-out",
        &s(&csr),
    ]);
    assert!(ok, "openssl req: {text}");
    let (ok, text) = openssl(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(ca_cert),
        "-CAkey",
        &s(ca_key),
        "-set_serial",
        "4711",
        "-days",
        "1",
        "-copy_extensions",
        "copy",
        "-out",
        &s(&leaf),
    ]);
    assert!(ok, "openssl x509 (signing {name} with the CA key): {text}");
    openssl(&["verify", "-CAfile", &s(ca_cert), "-purpose", "sslserver", &s(&leaf)])
}

#[test]
fn engine28_https_names_through_a_constrained_local_ca() {
    if !require_root() || !Engine::V28.require() {
        return;
    }
    let d = DockerRig::up(SLOT, Engine::V28);
    let t = &d.rig.topo;
    let server = d.rig.link_host();
    let _resolv = NetnsResolvConf::write(t.ns_mac(), server).unwrap();
    let sock = d.rig.api_socket();
    Topology::wait_until("the HTTPS front in the status", Duration::from_secs(10), || {
        helper_status(&sock).is_some_and(|s| s.contains(&format!("https on {server}:443")))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", helper_status(&sock).unwrap_or_default(), d.logs()));

    // The CA's key: root's alone, beside the config.
    let conf_dir = d.rig.config.parent().unwrap().to_path_buf();
    let (ca_key, ca_cert) = (conf_dir.join("dockroute.ca.key"), conf_dir.join("dockroute.ca.pem"));
    let meta = std::fs::metadata(&ca_key).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o600, 0), "the CA key file is 0600 root");
    assert_eq!(std::fs::metadata(&ca_cert).unwrap().mode() & 0o777, 0o644, "the certificate is public");

    // A container with two web ports (80, and 8081 as admin.web), and one with a WebSocket
    // echo on the port its label names.
    let net = subnet(SLOT, 1);
    d.docker(&["network", "create", "--subnet", &net, "dr-https"]);
    wait_route(&d, &net, true, "route for the https network");
    let two_ports = "busybox mkdir -p /www /admin && echo hello from web > /www/index.html \
        && echo hello from admin > /admin/index.html && httpd -p 8081 -h /admin && exec httpd -f -p 80 -h /www";
    let admin_label = "dev.dockroute.https.admin=8081";
    d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "dr-https",
        "--label",
        admin_label,
        "dr-busybox",
        "sh",
        "-c",
        two_ports,
    ]);
    let ws_label = format!("dev.dockroute.https-port={WS_PORT}");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "ws",
        "--network",
        "dr-https",
        "--label",
        &ws_label,
        "dr-busybox",
        "sleep",
        "600",
    ]);
    // A container with TLS of its own on 443 (here plain HTTP on 443, which shows it all the
    // same): exposing 443 keeps the helper's redirect off its address.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "tls",
        "--network",
        "dr-https",
        "--expose",
        "443",
        "dr-busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo hello from its own 443 > /www/index.html && exec httpd -f -p 443 -h /www",
    ]);
    let pid = d.docker(&["inspect", "-f", "{{.State.Pid}}", "ws"]).trim().to_string();
    let scripts = workspace().join("tests-e2e/src/https");
    let _ws = WsEcho(
        Command::new("nsenter")
            // nsenter execs python itself (no fork for a network namespace alone), so killing
            // the child kills the server; the server also ends itself after 10 minutes.
            .args(["-t", &pid, "-n", "/usr/bin/python3"])
            .arg(scripts.join("ws_echo.py"))
            .arg(WS_PORT.to_string())
            .spawn()
            .unwrap(),
    );
    for name in ["web.docker", "admin.web.docker", "ws.docker", "tls.docker"] {
        Topology::wait_until(&format!("{name} in the helper's DNS"), Duration::from_secs(10), || {
            dig(t, t.ns_mac(), server, name, "A", false).is_ok_and(|a| !a.answers.is_empty())
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
    }

    // DNS answers the containers' own addresses: the helper sends this machine's connections
    // to port 443 of web and ws (not tls) to its front.
    Topology::wait_until("the redirect of port 443 to the front", Duration::from_secs(10), || {
        helper_status(&sock).is_some_and(|s| s.contains("port 443 of 2 container addresses redirected here"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", helper_status(&sock).unwrap_or_default(), d.logs()));

    // Containers can trust it too: the controller puts the certificate in the `dockroute-ca`
    // volume, which a container mounts (here read back by one).
    let pem = std::fs::read_to_string(&ca_cert).unwrap();
    let read_volume = || {
        d.dockerd.docker(&[
            "run",
            "--rm",
            "-v",
            "dockroute-ca:/usr/local/share/ca-certificates/dockroute:ro",
            "dr-busybox",
            "cat",
            "/usr/local/share/ca-certificates/dockroute/dockroute-ca.crt",
        ])
    };
    Topology::wait_until("the CA in the dockroute-ca volume", Duration::from_secs(20), || {
        read_volume().is_ok_and(|got| got == pem)
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", read_volume(), d.logs()));

    // The clients, in a mount namespace with a private copy of the system store.
    let store = t.dir().join("trust-store");
    std::fs::create_dir_all(&store).unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "bash"])
        .arg(scripts.join("clients.sh"))
        .arg(bin("dockroute-helper"))
        .arg(&d.rig.config)
        .arg(t.ns_mac())
        .arg(server.to_string())
        .arg(&store)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let s = sections(&text);
    let check = |name: &str| s.get(name).cloned().unwrap_or_else(|| panic!("no {name} in:\n{text}\n{}", d.logs()));
    let (body, code) = check("curl_before_trust");
    assert!(code != 0 && body.contains("certificate"), "untrusted before `ca trust`: {body}");
    let bundle_count = |body: &str| body.lines().last().and_then(|l| l.trim().parse::<u32>().ok());
    let (body, code) = check("trust");
    assert_eq!(code, 0, "ca trust: {body}");
    assert!(body.contains("trusted in system store (/usr/local/share/ca-certificates/dockroute-"), "{body}");
    let (store_with, code) = check("store_has_it");
    assert!(code == 0 && store_with.contains("dockroute-"), "{store_with}");
    assert_eq!(check("curl_web"), ("hello from web".to_string(), 0), "curl with the system store, no -k");
    assert_eq!(check("curl_admin"), ("hello from admin".to_string(), 0), "the second port of one name");
    let (body, code) = check("curl_gone");
    assert_eq!(code, 0, "{body}");
    assert!(body.contains("no running container is named gone.docker") && body.ends_with("status=404"), "{body}");
    assert_ne!(check("curl_ip_no_sni").1, 0, "an address has no name: no certificate");
    assert_eq!(check("own_443"), ("hello from its own 443".to_string(), 0), "a container's own 443 is left alone");
    assert_eq!(check("python"), ("hello from web".to_string(), 0), "Python's ssl with its default context");
    assert_eq!(check("websocket"), ("hello over wss".to_string(), 0), "a WebSocket echo through the front");
    let (body, code) = check("nss_trust");
    assert!(code == 0 && body.contains("Dockroute local CA") && body.contains("C,,"), "ca trust --nss: {body}");
    // A real browser: headless Chromium resolves web.docker through the helper's DNS, connects
    // to the container's port 443 (redirected to the front) and checks the leaf against the
    // roots in its NSS database; the page's text is the container's.
    let (body, _) = check("chromium_before_trust");
    assert!(!body.contains("hello from web"), "control: untrusted, Chromium shows no page: {body}");
    let (body, code) = check("chromium");
    assert!(code == 0 && body.contains("<body>hello from web"), "Chromium's page load: {body}");
    let (body, code) = check("untrust");
    assert!(code == 0 && body.contains("no longer trusted in system store"), "ca untrust: {body}");
    assert!(body.contains("no longer trusted in NSS database"), "untrust removes it from every store: {body}");
    let (body, code) = check("nss_after_untrust");
    assert!(code == 0 && !body.contains("Dockroute"), "gone from the NSS database: {body}");
    let (body, code) = check("curl_after_untrust");
    assert!(code != 0 && body.contains("certificate"), "untrusted again after `ca untrust`: {body}");
    let (store_after, code) = check("store_after_untrust");
    assert_eq!(code, 0, "{store_after}");
    assert_eq!(
        store_after.lines().count(),
        1,
        "no file, no dangling link left, only the bundle's count: {store_after}"
    );
    assert_eq!(bundle_count(&store_after).map(|n| n + 1), bundle_count(&store_with), "exactly one certificate fewer");
    let status = helper_status(&sock).unwrap();
    assert!(status.contains("trusted in: nowhere yet"), "the record is empty again:\n{status}");

    // The stolen key: OpenSSL signs what it is told, and the verifier refuses github.com.
    let forged = t.dir().join("forged");
    std::fs::create_dir_all(&forged).unwrap();
    let (ok, text) = forge_and_verify(&forged, &ca_cert, &ca_key, "forged.docker");
    assert!(ok, "control: a leaf for one of our names, made the same way, verifies: {text}");
    let (ok, text) = forge_and_verify(&forged, &ca_cert, &ca_key, "github.com");
    assert!(!ok && text.contains("permitted subtree violation"), "github.com under the CA: {text}");
    println!("MEASURED https e2e: curl, python, websocket, two ports, 404 page, forged github.com rejected");
}
