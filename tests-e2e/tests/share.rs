//! Sharing with a teammate, end to end: the real helper and guest, and a "teammate" namespace
//! running Debian's wireguard-go and wg, configured from exactly what `share add` printed.
//! Needs root. Measured times are printed as `MEASURED …` lines.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use dockroute_api::ShareStatus;
use dockroute_e2e::netns::{require_root, Topology, SIGTERM};
use dockroute_e2e::rig::{read, Rig};
use dockroute_e2e::teammate::{self, monotonic_secs, share_cli, Teammate};

// Its own slot: 45 is docker.rs's, and a topology clears whatever its slot had.
const SLOT: u8 = 55;
const WG: &str = "drt45wg";
const STRANGER_WG: &str = "drt45wx";

fn share(rig: &Rig, args: &[&str]) -> Result<String, String> {
    share_cli(&rig.api_socket(), args)
}

fn share_list(rig: &Rig) -> ShareStatus {
    teammate::share_list(&rig.api_socket())
}

fn drops(s: &ShareStatus, name: &str, reason: &str) -> u64 {
    let t = s.teammates.iter().find(|t| t.name == name);
    t.and_then(|t| t.counters.drops.get(reason).copied()).unwrap_or(0)
}

fn http(tm: &Teammate, url: &str, timeout: Duration) -> Result<String, String> {
    tm.run(&["busybox", "wget", "-q", "-Y", "off", "-O", "-", url], timeout)
}

fn ping(tm: &Teammate, args: &[&str]) -> bool {
    let mut a = vec!["busybox", "ping", "-c", "1", "-W", "1"];
    a.extend_from_slice(args);
    tm.run(&a, Duration::from_secs(3)).is_ok_and(|o| o.contains(" 1 packets received"))
}

/// Sends UDP probes to `dst` every 10 ms for `secs` and logs `reply <monotonic time>` per echo.
const PROBER_PY: &str = r#"# dockroute e2e revoke prober
import socket, sys, time
dst, end = (sys.argv[1], int(sys.argv[2])), time.monotonic() + float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.002)
i = 0
while time.monotonic() < end:
    s.sendto(b"p%d" % i, dst); i += 1
    t = time.monotonic() + 0.01
    while time.monotonic() < t:
        try: s.recvfrom(100); print("reply %.6f" % time.monotonic(), flush=True)
        except OSError: pass
print("done", flush=True)
"#;

const GARBAGE_PY: &str = r#"# dockroute e2e garbage sender
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
for n in [0, 1, 4, 32, 148, 92, 64, 1400]:
    s.sendto(os.urandom(n), (sys.argv[1], int(sys.argv[2])))
for t in (1, 2, 3, 4):  # WireGuard's message types with random bodies of their sizes
    s.sendto(bytes([t, 0, 0, 0]) + os.urandom({1: 144, 2: 88, 3: 60, 4: 60}[t]), (sys.argv[1], int(sys.argv[2])))
try: print("answered %d bytes" % len(s.recv(2000)))
except OSError: print("no answer")
"#;

#[test]
fn a_teammate_reaches_exposed_containers_through_the_standard_wireguard_client_and_nothing_else() {
    if !require_root() {
        return;
    }
    // ctr's subnet is exposed by repeating its route line with `expose` (the seed's way).
    let mut rig =
        Rig::new(SLOT, |t| vec![t.ctr_subnet(), t.ctr2_subnet(), format!("{} expose", t.ctr_subnet())]).unwrap();
    // The teammate's network first: the helper listens on the Mac's address there.
    let mut tm = Teammate::create(&rig.topo).unwrap();
    let expose = format!("{}:2512", tm.mac_side());
    let mut f = std::fs::OpenOptions::new().append(true).open(&rig.config).unwrap();
    writeln!(f, "expose {expose}\ntoken alice").unwrap();
    drop(f);
    let t = &rig.topo;
    t.start_http(t.ns_ctr()).unwrap();
    t.start_http(t.ns_ctr2()).unwrap();
    t.start_udp_echo(t.ns_ctr(), 7000).unwrap();
    // What the app's controller would write for the guest: the route teammates may reach (the
    // guest lets a teammate's packet reach nothing else).
    let rules = t.dir().join("guest.rules");
    std::fs::write(&rules, format!("expose {}\n", t.ctr_subnet())).unwrap();
    rig.guest_args = vec!["--rules-file".into(), rules.to_string_lossy().into_owned()];
    rig.start_helper().unwrap();
    rig.start_guest().unwrap();
    rig.wait_traffic("first session", Duration::from_secs(5)).unwrap();

    // The config as printed, used as is.
    let printed = share(&rig, &["add", "alice"]).unwrap();
    assert!(printed.contains("[Interface]") && printed.contains("PersistentKeepalive = 25"), "{printed}");
    assert!(printed.contains(&format!("Endpoint = {expose}")), "{printed}");
    let cfg = tm.wireguard_up(WG, &printed).unwrap();
    assert_eq!(cfg.allowed, [rig.topo.ctr_subnet()], "AllowedIPs = the exposed routes");
    assert_eq!(cfg.address, format!("198.18.{}.3/32", 100 + SLOT), "the token's next free address");
    let state = std::fs::read_to_string(rig.config.with_extension("share.json")).unwrap();
    let private = printed.lines().find_map(|l| l.strip_prefix("PrivateKey = ")).unwrap();
    assert!(!state.contains(private), "the helper keeps only the public key");

    // HTTP to the exposed container works.
    let ctr_url = format!("http://{}/", rig.topo.ctr_addr());
    let body = http(&tm, &ctr_url, Duration::from_secs(10)).expect("HTTP through the share");
    assert_eq!(body.trim(), format!("hello from {}", rig.topo.ns_ctr()));
    let status = share_list(&rig);
    let alice = &status.teammates[0];
    let alice_key = alice.public_key.clone().expect("her public key is stored");
    assert!(
        alice.last_handshake_ms.is_some() && alice.counters.rx_bytes > 0 && alice.counters.tx_bytes > 0,
        "{alice:?}"
    );
    let httpd_log = read(&rig.topo.dir().join(format!("httpd-{}.log", rig.topo.ns_ctr())));
    assert!(httpd_log.contains(&format!("198.18.{}.3", 100 + SLOT)), "the container sees alice's address: {httpd_log}");

    // Widening AllowedIPs on her side changes nothing on ours.
    let link = |h: u8| format!("198.18.{}.{h}", 100 + SLOT);
    let mac_veth = rig.topo.mac_addr().to_string();
    let routes = [rig.topo.ctr2_subnet(), format!("198.18.{}.0/24", 100 + SLOT), format!("{mac_veth}/32")];
    tm.widen(WG, &cfg.peer_public_key, &routes).unwrap();
    let ctr2_url = format!("http://{}/", rig.topo.ctr2_addr());
    assert!(http(&tm, &ctr2_url, Duration::from_secs(3)).is_err(), "a route that is not exposed stays unreachable");
    for (what, addr) in [("the Mac's link address", link(1)), ("the guest's", link(2)), ("the Mac's veth", mac_veth)] {
        assert!(!ping(&tm, &[&addr]), "{what} {addr} must stay unreachable");
    }
    let after = share_list(&rig);
    assert!(drops(&after, "alice", "not_allowed_destination") >= 4, "{after:?}");

    // A spoofed source is dropped and counted.
    tm.run(&["ip", "addr", "add", &format!("{}/32", link(9)), "dev", WG], Duration::from_secs(5)).unwrap();
    let ctr = rig.topo.ctr_addr().to_string();
    assert!(!ping(&tm, &["-I", &link(9), &ctr]), "a packet from an address that is not hers goes nowhere");
    let spoofed = drops(&share_list(&rig), "alice", "spoofed_source");
    assert!(spoofed >= 1, "spoofed_source = {spoofed}");
    println!("MEASURED share spoofed_dropped={spoofed}");

    // Garbage and a wrong key at the expose port change nothing.
    let (host, port) = expose.split_once(':').unwrap();
    let answer = tm.run(&["python3", "-c", GARBAGE_PY, host, port], Duration::from_secs(10)).unwrap();
    assert_eq!(answer.trim(), "no answer", "garbage is never answered");
    let stranger = printed.replace(private, &wg_genkey());
    let stranger = stranger.replace(&format!("Address = {}", cfg.address), &format!("Address = {}/32", link(77)));
    let stranger = stranger.replace(&format!("AllowedIPs = {}", rig.topo.ctr_subnet()), "AllowedIPs = 0.0.0.0/0");
    tm.wireguard_up(STRANGER_WG, &stranger).unwrap();
    assert!(!ping(&tm, &["-I", STRANGER_WG, &ctr]), "a key the helper never issued gets nowhere");
    let s = share_list(&rig);
    assert!(s.unattributed_drops.get("garbage").copied().unwrap_or(0) >= 5, "{:?}", s.unattributed_drops);
    assert!(s.unattributed_drops.get("unknown_key").copied().unwrap_or(0) >= 1, "{:?}", s.unattributed_drops);
    let body = http(&tm, &ctr_url, Duration::from_secs(10)).expect("alice still gets through");
    assert!(body.contains("hello"));

    // A restarted helper accepts her again with the same config (her client re-handshakes by
    // itself once its session gets no answers, within WireGuard's 15 s).
    rig.stop_helper(SIGTERM).unwrap();
    rig.start_helper().unwrap();
    rig.wait_traffic("session after the restart", Duration::from_secs(10)).unwrap();
    let restarted = Instant::now();
    Topology::wait_until("alice through the restarted helper", Duration::from_secs(45), || {
        http(&tm, &ctr_url, Duration::from_secs(2)).is_ok()
    })
    .unwrap_or_else(|e| panic!("{e}\nhelper log:\n{}", read(&rig.helper_log)));
    println!("MEASURED share rejoin_after_restart_ms={}", restarted.elapsed().as_millis());

    // Revoke cuts her off within a second, and her key is gone from the state.
    let log = tm.dir().join("prober.log");
    let ctr_port = format!("{}", 7000);
    tm.spawn(&["python3", "-c", PROBER_PY, &ctr, &ctr_port, "4"], &log).unwrap();
    Topology::wait_until("probe replies", Duration::from_secs(3), || read(&log).matches("reply").count() > 20).unwrap();
    let revoked_at = monotonic_secs();
    share(&rig, &["revoke", "alice"]).unwrap();
    let command_ms = (monotonic_secs() - revoked_at) * 1000.0;
    tm.wait_children(Duration::from_secs(6));
    let text = read(&log);
    assert!(text.contains("done"), "{text}");
    let replies: Vec<f64> = text.lines().filter_map(|l| l.strip_prefix("reply ")?.parse().ok()).collect();
    let before = replies.iter().copied().filter(|t| *t <= revoked_at).fold(0.0, f64::max);
    let last_reply = replies.iter().copied().fold(0.0, f64::max);
    // Probes go every 10 ms: replies were still flowing when the revoke started, so their end
    // measures the revoke, not some earlier failure.
    assert!(revoked_at - before < 0.2, "no reply in the {:.0} ms before the revoke", (revoked_at - before) * 1000.0);
    // The last echo after the revoke started (0: none came after it).
    let revoke_ms = ((last_reply - revoked_at) * 1000.0).max(0.0);
    println!("MEASURED share revoke_ms={revoke_ms:.1} (the revoke command took {command_ms:.1} ms)");
    assert!(revoke_ms <= 1000.0, "replies went on for {revoke_ms} ms after the revoke");
    assert!(http(&tm, &ctr_url, Duration::from_secs(3)).is_err());
    let state = std::fs::read_to_string(rig.config.with_extension("share.json")).unwrap();
    assert!(!state.contains(&alice_key), "her key is gone from the state");
    let s = share_list(&rig);
    assert!(s.teammates.iter().all(|t| t.public_key.is_none()), "only the token line is left: {:?}", s.teammates);
}

fn wg_genkey() -> String {
    let out = Command::new("wg").arg("genkey").output().expect("wg genkey");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
