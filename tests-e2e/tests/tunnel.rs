//! The tunnel end to end: real helper and guest binaries, real TUN devices, real packets,
//! in network namespaces ("mac" ⇄ veth ⇄ "vm" ⇄ bridge ⇄ "ctr"). Needs root.
//!
//! Each test owns a slot (its own namespaces and subnets) so they can run in parallel.
//! Measured times are printed as `MEASURED …` lines (`--no-capture` shows them).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use dockroute_e2e::netns::{require_root, Topology, SIGKILL, SIGTERM};
use dockroute_e2e::rig::{counter, iptables_snapshot, last_handshake_us, net_snapshot, read, Rig};

const UP: Duration = Duration::from_secs(5);

fn up(slot: u8) -> Rig {
    let mut rig = Rig::new(slot, |t| vec![t.ctr_subnet(), t.ctr_subnet6()]).unwrap();
    rig.topo.start_http(rig.topo.ns_ctr()).unwrap();
    rig.topo.start_udp_echo(rig.topo.ns_ctr(), 7000).unwrap();
    rig.start_helper().unwrap();
    rig.start_guest().unwrap();
    rig.wait_traffic("first session", UP).unwrap();
    rig
}

#[test]
fn http_ping_udp_and_ipv6_reach_the_container_through_the_tunnel() {
    if !require_root() {
        return;
    }
    let rig = up(11);
    let t = &rig.topo;
    let mac = t.ns_mac();
    let body =
        t.http_get(mac, &format!("http://{}/", t.ctr_addr()), Duration::from_secs(5)).expect("HTTP GET over IPv4");
    assert_eq!(body.trim(), format!("hello from {}", t.ns_ctr()));
    t.ping(mac, t.ctr_addr().into(), 3, Duration::from_secs(3)).expect("IPv4 ping");
    let echo =
        t.udp_exchange(mac, SocketAddr::new(t.ctr_addr().into(), 7000), b"dockroute udp", Duration::from_secs(2));
    assert_eq!(echo.expect("UDP exchange over IPv4"), b"dockroute udp");

    let v6: IpAddr = t.ctr_addr6().into();
    t.ping(mac, v6, 3, Duration::from_secs(3)).expect("IPv6 ping");
    let body6 = t.http_get(mac, &format!("http://[{v6}]/"), Duration::from_secs(5)).expect("HTTP GET over IPv6");
    assert_eq!(body6.trim(), format!("hello from {}", t.ns_ctr()));
    let echo6 = t.udp_exchange(mac, SocketAddr::new(v6, 7000), b"v6 udp", Duration::from_secs(2));
    assert_eq!(echo6.expect("UDP exchange over IPv6"), b"v6 udp");

    // The container saw the Mac's link address, not some NAT: the path is routed end to end.
    let httpd_log = read(&t.dir().join(format!("httpd-{}.log", t.ns_ctr())));
    assert!(httpd_log.contains(&rig.link_host().to_string()), "httpd log names the client: {httpd_log}");

    // MSS clamp: ctr (MTU 1500) offers MSS 1460 in its SYN-ACK; the guest must rewrite it to
    // 1360 (tunnel MTU 1400 - 40) before it reaches the Mac. Seen on the Mac's TUN device.
    let sniff_log = t.dir().join("synack.log");
    let sniffer = t.spawn(mac, &["python3", "-c", SYNACK_MSS_PY, "dockroute0", "80"], &sniff_log).unwrap();
    Topology::wait_until("SYN-ACK sniffer", Duration::from_secs(5), || read(&sniff_log).contains("ready")).unwrap();
    t.http_get(mac, &format!("http://{}/", t.ctr_addr()), Duration::from_secs(5)).expect("HTTP GET for the MSS check");
    Topology::wait_until("SYN-ACK seen", Duration::from_secs(5), || read(&sniff_log).contains("mss")).unwrap();
    let _ = t.kill(sniffer, SIGTERM);
    assert!(read(&sniff_log).contains("mss 1360"), "SYN-ACK MSS as seen on the Mac: {}", read(&sniff_log));

    // A bulk transfer exercises full-size packets: 2 MB over TCP.
    let big = t.dir().join(format!("www-{}", t.ns_ctr())).join("big.bin");
    std::fs::write(&big, vec![b'x'; 2 << 20]).unwrap();
    let got =
        t.http_get(mac, &format!("http://{}/big.bin", t.ctr_addr()), Duration::from_secs(20)).expect("2 MB over TCP");
    assert_eq!(got.len(), 2 << 20);

    let hs = last_handshake_us(&rig.guest_log).expect("guest logs its handshake time");
    println!("MEASURED handshake (guest Hello → Welcome): {hs} µs");
}

#[test]
fn a_guest_with_the_wrong_secret_is_refused_and_the_working_session_is_undisturbed() {
    if !require_root() {
        return;
    }
    let rig = up(12);
    let t = &rig.topo;
    let bad_secret = t.dir().join("wrong.secret");
    std::fs::write(&bad_secret, "this-is-not-the-shared-secret-at-all\n").unwrap();
    rig_private(&bad_secret);
    let bad_log = t.dir().join("bad-guest.log");
    let bad = rig.spawn_guest(&bad_secret, "drbad0", &bad_log).unwrap();

    let helper_log = rig.helper_log.clone();
    let stats = rig.helper_stats().unwrap();
    Topology::wait_until("the helper to refuse the wrong secret", Duration::from_secs(5), || {
        rig.helper_stats().is_ok_and(|s| counter(&s, "auth_failed") >= 2)
    })
    .unwrap_or_else(|e| panic!("{e}: {stats}\n{}", read(&helper_log)));
    assert_eq!(rig.session_ups(&helper_log), 1, "the wrong secret never became a session");
    assert!(!read(&bad_log).contains("session up"), "bad guest log: {}", read(&bad_log));
    t.kill(bad, SIGTERM).unwrap();
    rig.wait_traffic("after the wrong-secret guest", Duration::from_secs(1)).unwrap();
    assert_eq!(rig.session_ups(&rig.guest_log), 1, "the good guest never had to reconnect");
}

#[test]
fn garbage_and_replayed_datagrams_change_nothing() {
    if !require_root() {
        return;
    }
    let mut rig = Rig::new(13, |t| vec![t.ctr_subnet()]).unwrap();
    rig.topo.start_udp_echo(rig.topo.ns_ctr(), 7000).unwrap();
    rig.start_helper().unwrap();
    // Capture the guest's real datagrams (handshake, then data) on the vm's veth.
    let t = &rig.topo;
    let capture = t.dir().join("capture.bin");
    let sniffer = t
        .spawn(
            t.ns_vm(),
            &["python3", "-c", SNIFF_PY, "veth-mac", "2511", &capture.to_string_lossy(), "12"],
            &t.dir().join("sniff.log"),
        )
        .unwrap();
    let sniff_log = t.dir().join("sniff.log");
    Topology::wait_until("sniffer ready", Duration::from_secs(5), || read(&sniff_log).contains("ready")).unwrap();
    rig.start_guest().unwrap();
    rig.wait_traffic("first session", UP).unwrap();
    rig.wait_traffic("data for the capture", UP).unwrap();
    let t = &rig.topo;
    Topology::wait_until("capture of 12 datagrams", Duration::from_secs(10), || read(&sniff_log).contains("captured"))
        .unwrap_or_else(|e| panic!("{e}: {}", read(&sniff_log)));
    let _ = t.kill(sniffer, SIGTERM);
    let before = rig.helper_stats().unwrap();

    let guest_before = rig.guest_stats().unwrap();
    // Replay every captured datagram verbatim (same addresses and ports), three times: the
    // guest's to the helper, and the helper's to the guest (sent from the vm to itself).
    let out = t.run(t.ns_vm(), &["python3", "-c", REPLAY_PY, &capture.to_string_lossy(), "3"]).unwrap();
    assert!(out.contains("replayed 36"), "{out}");
    // And garbage: random bytes, and random bodies behind each valid message header.
    let dst = format!("{}:2511", t.mac_addr());
    let out = t.run(t.ns_vm(), &["python3", "-c", GARBAGE_PY, &dst, "1500"]).unwrap();
    assert!(out.contains("sent 1500"), "{out}");

    rig.wait_traffic("after replay and garbage", Duration::from_secs(1)).unwrap();
    let after = rig.helper_stats().unwrap();
    assert_eq!(rig.session_ups(&rig.helper_log), 1, "no new session:\n{}", read(&rig.helper_log));
    assert_eq!(rig.session_ups(&rig.guest_log), 1, "guest undisturbed:\n{}", read(&rig.guest_log));
    let grew = |name: &str| counter(&after, name) - counter(&before, name);
    assert!(grew("replay") >= 3, "replayed data frames counted as replays: {before}\n{after}");
    assert!(grew("unexpected_handshake") >= 3, "replayed Auth finds no challenge: {after}");
    assert!(grew("malformed") > 100, "garbage counted: {after}");
    assert_eq!(counter(&after, "handshakes"), 1);
    let guest_after = rig.guest_stats().unwrap();
    let guest_grew = |name: &str| counter(&guest_after, name) - counter(&guest_before, name);
    assert!(guest_grew("replay") >= 3, "the helper's frames replayed at the guest: {guest_after}");
    assert!(guest_grew("unexpected_handshake") >= 3, "replayed Challenge/Welcome: {guest_after}");
    println!("MEASURED drops after replay+garbage: {after}");
}

#[test]
fn a_killed_guest_comes_back_within_3_seconds_of_its_restart() {
    if !require_root() {
        return;
    }
    let mut rig = up(14);
    rig.stop_guest(SIGKILL).unwrap();
    // kill -9 leaves the TUN to the kernel, which removes it with the process.
    let t = &rig.topo;
    Topology::wait_until("guest TUN gone", Duration::from_secs(3), || {
        !net_snapshot(t, t.ns_vm()).contains("dockroute0")
    })
    .unwrap();
    let restarted = Instant::now();
    rig.start_guest().unwrap();
    let took = rig.wait_traffic("after guest restart", Duration::from_secs(3)).map(|_| restarted.elapsed()).unwrap();
    assert!(took <= Duration::from_secs(3), "{took:?}");
    assert_eq!(rig.session_ups(&rig.helper_log), 2, "the new guest replaced the session");
    println!("MEASURED guest kill -9 + restart → traffic flows: {} ms", took.as_millis());
}

#[test]
fn a_restarted_helper_gets_its_guest_back_within_3_seconds() {
    if !require_root() {
        return;
    }
    let mut rig = up(15);
    rig.stop_helper(SIGTERM).unwrap();
    let restarted = Instant::now();
    rig.start_helper().unwrap();
    let took = rig.wait_traffic("after helper restart", Duration::from_secs(3)).map(|_| restarted.elapsed()).unwrap();
    assert!(took <= Duration::from_secs(3), "{took:?}");
    assert!(read(&rig.guest_log).contains("re-handshaking"), "the guest learnt of the restart from the Stale notice");
    println!("MEASURED helper restart → guest back, traffic flows: {} ms", took.as_millis());
}

#[test]
fn stopping_helper_and_guest_removes_exactly_what_they_added() {
    if !require_root() {
        return;
    }
    let mut rig = Rig::new(16, |t| vec![t.ctr_subnet(), t.ctr_subnet6()]).unwrap();
    rig.topo.start_udp_echo(rig.topo.ns_ctr(), 7000).unwrap();
    let t = &rig.topo;
    // Forwarding off in the vm, so we see the guest switch it on and back off.
    t.run(t.ns_vm(), &["busybox", "sysctl", "-w", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"]).unwrap();
    let (mac_before, vm_before) = (net_snapshot(t, t.ns_mac()), net_snapshot(t, t.ns_vm()));
    let fw_before = iptables_snapshot(t, t.ns_vm());
    let fwd = |rig: &Rig| {
        rig.topo
            .run(rig.topo.ns_vm(), &["cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"])
            .unwrap()
    };
    rig.start_helper().unwrap();
    rig.start_guest().unwrap();
    rig.wait_traffic("session", UP).unwrap();
    assert_eq!(fwd(&rig), "1\n1\n");
    let t = &rig.topo;
    assert!(net_snapshot(t, t.ns_mac()).contains("dockroute0"));
    assert!(iptables_snapshot(t, t.ns_vm()).contains("DOCKROUTE-FWD"), "the guest set its firewall rules");

    rig.stop_guest(SIGTERM).unwrap();
    rig.stop_helper(SIGTERM).unwrap();
    let t = &rig.topo;
    assert_eq!(net_snapshot(t, t.ns_mac()), mac_before, "mac namespace back to exactly what it was");
    assert_eq!(net_snapshot(t, t.ns_vm()), vm_before, "vm namespace back to exactly what it was");
    assert_eq!(iptables_snapshot(t, t.ns_vm()), fw_before, "the guest's firewall rules are all gone");
    assert_eq!(fwd(&rig), "0\n0\n", "forwarding restored");
    // The secret the helper created stays (it is config, not state), private.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&rig.secret).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn a_route_someone_removes_is_put_back_when_the_table_changes() {
    if !require_root() {
        return;
    }
    let rig = up(18);
    let t = &rig.topo;
    let net = t.ctr_subnet();
    let ours = format!("{net} dev dockroute0");
    assert!(t.routes(t.ns_mac()).contains(&ours));
    // The helper hears of the change (netlink) instead of finding it at its next periodic
    // check: the 10 s this waits are far below that check's interval of 60 s.
    t.run(t.ns_mac(), &["ip", "route", "del", &net, "dev", "dockroute0"]).unwrap();
    let back = Topology::wait_until("the route to be put back", Duration::from_secs(10), || {
        t.routes(t.ns_mac()).contains(&ours)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", read(&rig.helper_log)));
    println!("MEASURED route deleted by hand → put back: {} ms", back.as_millis());
    // Put back by the notification, not by the 5 s polling the helper falls back to without.
    assert!(!read(&rig.helper_log).contains("no route-change notifications"), "{}", read(&rig.helper_log));
    rig.wait_traffic("traffic after the route came back", UP).unwrap();
}

#[test]
fn route_lines_hot_reload_and_a_bad_line_keeps_the_last_good_config() {
    if !require_root() {
        return;
    }
    let rig = up(17);
    let t = &rig.topo;
    t.start_udp_echo(t.ns_ctr2(), 7000).unwrap();
    let ctr2 = SocketAddr::new(t.ctr2_addr().into(), 7000);
    assert!(t.udp_exchange(t.ns_mac(), ctr2, b"x", Duration::from_millis(300)).is_err(), "ctr2 not routed yet");
    let original = std::fs::read_to_string(&rig.config).unwrap();

    std::fs::write(&rig.config, format!("{original}route {}\n", t.ctr2_subnet())).unwrap();
    let added = Instant::now();
    Topology::wait_until("ctr2 reachable after adding its route", Duration::from_secs(3), || {
        t.udp_exchange(t.ns_mac(), ctr2, b"x", Duration::from_millis(200)).is_ok()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", read(&rig.helper_log), t.routes(t.ns_mac())));
    println!("MEASURED route added by hot reload → reachable: {} ms", added.elapsed().as_millis());

    // A bad line: reported with its number, nothing changes.
    let bad = format!("{original}route {}\nroute 10.1.2.3/99\n", t.ctr2_subnet());
    let bad_line = bad.lines().count();
    std::fs::write(&rig.config, &bad).unwrap();
    let log = rig.helper_log.clone();
    Topology::wait_until("the bad line to be reported", Duration::from_secs(3), || {
        read(&log).contains(&format!("line {bad_line}:"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", read(&log)));
    assert!(read(&log).contains("keeping the last good config"));
    assert!(t.udp_exchange(t.ns_mac(), ctr2, b"x", Duration::from_secs(1)).is_ok(), "ctr2 still routed");

    std::fs::write(&rig.config, &original).unwrap();
    Topology::wait_until("ctr2 route removed", Duration::from_secs(3), || {
        !t.routes(t.ns_mac()).contains(&t.ctr2_subnet())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", read(&log)));
    assert!(t.udp_exchange(t.ns_mac(), ctr2, b"x", Duration::from_millis(300)).is_err(), "ctr2 unreachable again");
    rig.wait_traffic("ctr still routed", Duration::from_secs(1)).unwrap();
}

fn rig_private(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Captures the first N IPv4 UDP datagrams from or to PORT seen on IFACE, both directions (the
/// guest's are outgoing there), as raw IP packets, length-prefixed.
const SNIFF_PY: &str = r#"
import socket, struct, sys, time
iface, port, out, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
# ETH_P_ALL: only "all" taps see outgoing packets.
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((iface, 0)); s.settimeout(0.5)
print("ready", flush=True)
got, deadline = [], time.time() + 20
while len(got) < n and time.time() < deadline:
    try: frame, meta = s.recvfrom(65535)
    except socket.timeout: continue
    if len(frame) < 14 + 28 or frame[12:14] != b"\x08\x00": continue
    ip = frame[14:]
    ihl = (ip[0] & 15) * 4
    if ip[9] != 17: continue
    sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
    if port not in (sport, dport): continue
    got.append(ip[:struct.unpack("!H", ip[2:4])[0]])
with open(out, "wb") as f:
    for p in got: f.write(struct.pack("!H", len(p)) + p)
print("captured", len(got), flush=True)
"#;

/// Prints the MSS option of the first SYN-ACK from source port PORT seen on a TUN device
/// (raw IP, no link header).
const SYNACK_MSS_PY: &str = r#"
import socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((sys.argv[1], 0)); s.settimeout(0.5)
print("ready", flush=True)
deadline = time.time() + 15
while time.time() < deadline:
    try: p = s.recv(65535)
    except socket.timeout: continue
    if len(p) < 40 or p[0] >> 4 != 4 or p[9] != 6: continue
    ihl = (p[0] & 15) * 4; tcp = p[ihl:]
    if struct.unpack("!H", tcp[0:2])[0] != int(sys.argv[2]) or tcp[13] & 0x12 != 0x12: continue
    opts, i = tcp[20:(tcp[12] >> 4) * 4], 0
    while i < len(opts):
        if opts[i] == 0: break
        if opts[i] == 1: i += 1; continue
        if opts[i] == 2: print("mss", struct.unpack("!H", opts[i+2:i+4])[0], flush=True); sys.exit(0)
        i += max(opts[i+1], 2)
    print("mss none", flush=True); sys.exit(0)
"#;

/// Re-sends captured raw IPv4 packets verbatim (same source address and port) K times.
const REPLAY_PY: &str = r#"
import socket, struct, sys
data, k = open(sys.argv[1], "rb").read(), int(sys.argv[2])
pkts, i = [], 0
while i + 2 <= len(data):
    n = struct.unpack("!H", data[i:i+2])[0]; pkts.append(data[i+2:i+2+n]); i += 2 + n
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
# A capture on the sender holds the UDP checksum unfinished (offloaded); 0 means "none" in IPv4.
pkts = [p[:(p[0] & 15) * 4 + 6] + b"\0\0" + p[(p[0] & 15) * 4 + 8:] for p in pkts]
sent = 0
for _ in range(k):
    for p in pkts:
        s.sendto(p, (socket.inet_ntoa(p[16:20]), 0)); sent += 1
print("replayed", sent)
"#;

/// N datagrams: random bytes, and random bodies behind each message type's valid header.
const GARBAGE_PY: &str = r#"
import os, random, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
n = int(sys.argv[2]); rnd = random.Random(2511)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(n):
    if i % 2: body = bytes([rnd.randint(1, 6), 1, 0, 0]) + os.urandom(rnd.choice([0, 12, 16, 32, 60, 64, 104, 1400]))
    else: body = os.urandom(rnd.randint(0, 1500))
    s.sendto(body, (host, int(port)))
print("sent", n)
"#;
