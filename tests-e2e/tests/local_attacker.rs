//! A hostile local process against the real helper and guest (tunnel.rs's topology, real TUN
//! devices, real packets): it knows the session id (read off the wire here, as it would be from
//! an old log) and sends data frames from another port, from the Mac, over another TCP
//! connection, and with counter u64::MAX from the guest's own address (a raw socket: the
//! strongest local attacker); it floods the TCP fallback listener; it asks the helper's API to
//! route public space and to answer for `com`. With a real dockerd: a compose network on a
//! public subnet is skipped and named until a `route` line covers it. Needs root; Engine 28 for
//! the Docker test. 203.0.113.0/24 and 198.51.100.0/24 (documentation ranges, no real host)
//! stand in for public space, inside the test's namespaces only. `MEASURED …` lines print times.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use dockroute_api::client::{Client, ClientError};
use dockroute_api::{Op, RouteSource, RouteState, Status};
use dockroute_e2e::dns::dig;
use dockroute_e2e::docker::Engine;
use dockroute_e2e::docker_rig::{wait_route, DockerRig};
use dockroute_e2e::netns::{require_root, Topology, SIGTERM};
use dockroute_e2e::rig::{counter, read, Rig};

const UP: Duration = Duration::from_secs(5);
/// Where the attacker's injected packets would land on the Mac (a UDP listener on its link
/// address): anything arriving there got through.
const INJECT_PORT: u16 = 9999;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn up(slot: u8, config: &str, guest_args: &[&str]) -> Rig {
    let mut rig = Rig::new(slot, |t| vec![t.ctr_subnet()]).unwrap();
    rig.configure(config).unwrap();
    rig.guest_args = guest_args.iter().map(|a| a.to_string()).collect();
    rig.topo.start_udp_echo(rig.topo.ns_ctr(), 7000).unwrap();
    rig.topo.start_udp_echo(rig.topo.ns_ctr2(), 7000).unwrap();
    rig.start_helper().unwrap();
    rig.start_guest().unwrap();
    rig.wait_traffic("first session", UP).unwrap();
    rig
}

/// A data frame of the guest, as seen on the VM's wire.
struct Seen {
    src: Ipv4Addr,
    port: u16,
    id: [u8; 8],
    counter: u64,
    /// The fingerprint of `id`, computed by the sniffer itself (sha256 in Python).
    fingerprint: String,
}

impl Seen {
    fn id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Reads one of the guest's data frames off the VM's veth (UDP datagrams or TCP frames).
fn sniff_session(rig: &Rig, proto: &str) -> Seen {
    let t = &rig.topo;
    let log = t.dir().join(format!("sniff-{proto}.log"));
    let sniffer = t.spawn(t.ns_vm(), &["python3", "-c", SNIFF_FRAME_PY, "veth-mac", "2511", proto], &log).unwrap();
    Topology::wait_until("sniffer ready", UP, || read(&log).contains("ready")).unwrap();
    Topology::wait_until("a data frame on the wire", Duration::from_secs(15), || {
        let _ = rig.wait_traffic("traffic for the sniffer", Duration::from_millis(300));
        read(&log).contains("frame ")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", read(&log)));
    let _ = t.kill(sniffer, SIGTERM);
    let text = read(&log);
    let line = text.lines().find(|l| l.starts_with("frame ")).unwrap();
    let w: Vec<&str> = line.split_whitespace().collect();
    let bytes = dockroute_stdx::hex::decode(w[3]).unwrap();
    Seen {
        src: w[1].parse().unwrap(),
        port: w[2].parse().unwrap(),
        id: bytes.try_into().unwrap(),
        counter: w[4].parse().unwrap(),
        fingerprint: w[5].to_string(),
    }
}

/// A data frame of session `id` with `counter`, carrying `packet`.
fn frame(id: &[u8; 8], counter: u64, packet: &[u8]) -> String {
    let mut f = vec![5u8, 1, 0, 0];
    f.extend_from_slice(id);
    f.extend_from_slice(&counter.to_be_bytes());
    f.extend_from_slice(packet);
    dockroute_stdx::hex::encode(&f)
}

/// An IPv4/UDP packet from the guest's link address to the Mac's, port `INJECT_PORT`: what an
/// attacker would slip into the Mac through the tunnel.
fn injected(rig: &Rig, payload: &[u8]) -> Vec<u8> {
    let IpAddr::V4(host) = rig.link_host() else { unreachable!() };
    let guest = Ipv4Addr::from(u32::from(host) + 1);
    let total = 28 + payload.len();
    let mut p = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 17, 0, 0];
    p.extend_from_slice(&guest.octets());
    p.extend_from_slice(&host.octets());
    let sum = p.chunks(2).fold(0u32, |s, w| s + u32::from(u16::from_be_bytes([w[0], w[1]])));
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(&40000u16.to_be_bytes());
    p.extend_from_slice(&INJECT_PORT.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// Sends `frames` (hex) `times` times: `mode` is `udp` (a socket bound to `src`, or any with
/// "-"), `raw` (spoofed from `src`:`sport`) or `tcp` (length-prefixed, one new connection).
fn send(rig: &Rig, ns: &str, mode: &str, src: &str, sport: u16, frames: &[String], times: usize) {
    let dst = rig.topo.mac_addr().to_string();
    let (sport, times, frames) = (sport.to_string(), times.to_string(), frames.join(","));
    let args = ["python3", "-c", SEND_PY, mode, &dst, "2511", src, &sport, &frames, &times];
    let out = rig.topo.run(ns, &args).unwrap();
    assert!(out.starts_with("sent "), "{out}");
}

/// Starts a UDP listener on the Mac's link address; returns its log.
fn listen_for_injections(rig: &Rig) -> std::path::PathBuf {
    let t = &rig.topo;
    let log = t.dir().join("injected.log");
    let (addr, port) = (rig.link_host().to_string(), INJECT_PORT.to_string());
    t.spawn(t.ns_mac(), &["python3", "-c", LISTEN_PY, &addr, &port, "120"], &log).unwrap();
    Topology::wait_until("listener ready", UP, || read(&log).contains("ready")).unwrap();
    log
}

/// Echo round trips through the tunnel, sorted (ms).
struct Echoes {
    sent: usize,
    rtts_ms: Vec<f64>,
}

impl Echoes {
    fn summary(&self) -> String {
        let n = self.rtts_ms.len();
        let at = |q: f64| self.rtts_ms.get(((n.max(1) - 1) as f64 * q) as usize).copied().unwrap_or(f64::NAN);
        format!(
            "{n} of {} answered, round trip p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.sent,
            at(0.5),
            at(0.99),
            at(1.0)
        )
    }
}

/// `n` UDP echoes through the tunnel from one process, `gap_ms` apart, each waiting up to 1 s.
fn echoes(rig: &Rig, n: usize, gap_ms: u64) -> Echoes {
    let t = &rig.topo;
    let (ip, n_arg, gap) = (t.ctr_addr().to_string(), n.to_string(), gap_ms.to_string());
    let args = ["python3", "-c", ECHO_PY, &ip, "7000", &n_arg, &gap];
    let out = t.run_timeout(t.ns_mac(), &args, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let mut rtts_ms: Vec<f64> = out.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    rtts_ms.sort_by(f64::total_cmp);
    Echoes { sent: n, rtts_ms }
}

fn grew(before: &str, after: &str, name: &str) -> u64 {
    counter(after, name) - counter(before, name)
}

#[test]
fn a_local_process_that_knows_the_session_id_cannot_inject_or_stall_the_tunnel() {
    if !require_root() {
        return;
    }
    let rig = up(65, "", &[]);
    let t = &rig.topo;
    let seen = sniff_session(&rig, "udp");
    assert_eq!(seen.src, t.vm_addr());
    // What the helper shows is the fingerprint of the id on the wire, never the id itself.
    let status = rig.status_text();
    assert!(status.contains(&format!("session {} with guest", seen.fingerprint)), "{status}");
    let id_decimal = u64::from_be_bytes(seen.id).to_string();
    for (what, text) in [("helper log", read(&rig.helper_log)), ("guest log", read(&rig.guest_log)), ("status", status)]
    {
        assert!(!text.contains(&seen.id_hex()) && !text.contains(&id_decimal), "the session id in the {what}:\n{text}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&rig.helper_log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the helper's log file is not for other users");

    let heard = listen_for_injections(&rig);
    let before = rig.helper_stats().unwrap();
    let guest_before = rig.guest_stats().unwrap();
    let guest_ups = rig.session_ups(&rig.guest_log);
    let attack = |tag: &str, n: u64| -> Vec<String> {
        (0..n).map(|i| frame(&seen.id, seen.counter + 1000 + i, &injected(&rig, tag.as_bytes()))).collect()
    };
    // From another port: a process on the Mac, and one in the VM on the guest's own address.
    send(&rig, t.ns_mac(), "udp", "-", 0, &attack("from-the-mac", 100), 1);
    send(&rig, t.ns_vm(), "udp", &t.vm_addr().to_string(), 0, &attack("from-another-port", 100), 1);
    // The counter jump of the issue, from the guest's very address and port, and from elsewhere.
    let jump = [frame(&seen.id, u64::MAX, &injected(&rig, b"jump")), frame(&seen.id, u64::MAX, &[])];
    let sent_at = Instant::now();
    send(&rig, t.ns_vm(), "raw", &seen.src.to_string(), seen.port, &jump, 5);
    send(&rig, t.ns_mac(), "udp", "-", 0, &jump, 5);

    // Traffic keeps flowing at once and for the next 10 s (a stalled host would drop it all
    // until the guest re-handshakes), in the same session.
    let after_jump = echoes(&rig, 100, 100);
    println!(
        "MEASURED echoes in the {} ms after the u64::MAX counter jump: {}",
        sent_at.elapsed().as_millis(),
        after_jump.summary()
    );
    assert_eq!(after_jump.rtts_ms.len(), 100, "{}", after_jump.summary());
    let after = rig.helper_stats().unwrap();
    assert!(grew(&before, &after, "wrong_peer") >= 210, "from another port: dropped, counted\n{before}\n{after}");
    assert!(grew(&before, &after, "counter_jump") >= 10, "the jump: refused, counted\n{after}");
    assert_eq!(grew(&before, &after, "replay"), 0, "no real frame was taken for a replay\n{after}");
    assert_eq!(rig.session_ups(&rig.helper_log), 1, "no new session:\n{}", read(&rig.helper_log));
    assert_eq!(rig.session_ups(&rig.guest_log), guest_ups, "the guest never had to re-handshake");
    assert_eq!(grew(&guest_before, &rig.guest_stats().unwrap(), "replay"), 0);
    let got = read(&heard);
    assert!(!got.contains("got "), "nothing the attacker sent reached the Mac: {got}");

    // Control: the same kind of frame from the guest's own address and port is taken (frames
    // carry no MAC: the address is the check), so the listener does hear what gets through.
    // Its counter is far ahead of the guest's: kept apart, the guest's own keep flowing.
    send(
        &rig,
        t.ns_vm(),
        "raw",
        &seen.src.to_string(),
        seen.port,
        &[frame(&seen.id, seen.counter + 50_000, &injected(&rig, b"control"))],
        1,
    );
    Topology::wait_until("the control packet", UP, || read(&heard).contains("got control"))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", read(&heard), rig.helper_stats().unwrap()));
    let after_control = echoes(&rig, 20, 50);
    assert_eq!(after_control.rtts_ms.len(), 20, "{}", after_control.summary());
    assert_eq!(rig.session_ups(&rig.guest_log), guest_ups);
}

#[test]
fn a_flood_of_unauthenticated_tcp_connections_never_drops_an_established_tcp_session() {
    if !require_root() {
        return;
    }
    let rig = up(66, "transport tcp\n", &["--transport", "tcp"]);
    let t = &rig.topo;
    Topology::wait_until("a session over tcp", UP, || rig.status_text().contains("over tcp"))
        .unwrap_or_else(|e| panic!("{e}\n{}", rig.status_text()));
    let seen = sniff_session(&rig, "tcp");
    let status = rig.status_text();
    assert!(status.contains(&format!("session {} with guest", seen.fingerprint)), "{status}");
    let heard = listen_for_injections(&rig);
    let before = rig.helper_stats().unwrap();

    // Two floods of idle connections, bounded in count and time: one from the guest's own
    // address (Docker Desktop's forwarder and a local process look alike), one from the Mac.
    let flood = |ns: &str, src: &str, name: &str| {
        let log = t.dir().join(format!("flood-{name}.log"));
        let dst = t.mac_addr().to_string();
        let args = ["python3", "-c", FLOOD_PY, &dst, "2511", "100000", "15", src, "200"];
        let h = t.spawn(ns, &args, &log).unwrap();
        Topology::wait_until("flood started", UP, || read(&log).contains("ready")).unwrap();
        (h, log)
    };
    let floods = [flood(t.ns_vm(), &t.vm_addr().to_string(), "guest-address"), flood(t.ns_mac(), "-", "mac")];
    let started = Instant::now();
    // Frames of the session over a connection of their own: another relay, another peer.
    let frames: Vec<String> =
        (0..50).map(|i| frame(&seen.id, seen.counter + 1000 + i, &injected(&rig, b"over-tcp"))).collect();
    send(&rig, t.ns_mac(), "tcp", "-", 0, &frames, 1);
    // The session carries traffic all through the floods (15 s; the echoes take about 12).
    let during = echoes(&rig, 120, 100);
    let flooded = started.elapsed();
    assert_eq!(during.rtts_ms.len(), 120, "{}", during.summary());
    for (h, log) in floods {
        Topology::wait_until("the flood to end", Duration::from_secs(20), || read(&log).contains("opened"))
            .unwrap_or_else(|e| panic!("{e}: {}", read(&log)));
        let _ = t.kill(h, SIGTERM);
        let text = read(&log);
        let opened: u64 = text.split_whitespace().skip_while(|w| *w != "opened").nth(1).unwrap().parse().unwrap();
        let done = text.lines().find(|l| l.starts_with("opened")).unwrap_or_default();
        println!("MEASURED tcp flood from {}: {done} connections in 15 s", log.display());
        assert!(opened >= 2000, "the flood did flood: {text}");
    }
    println!(
        "MEASURED echoes through the tcp session in the first {} ms of the floods: {}",
        flooded.as_millis(),
        during.summary()
    );
    let quiet = echoes(&rig, 120, 100);
    println!("MEASURED echoes through the tcp session after the floods: {}", quiet.summary());
    let after = rig.helper_stats().unwrap();
    let status = rig.status_text();
    assert!(
        status.contains(&format!("session {} with guest", seen.fingerprint)) && status.contains("over tcp"),
        "the same session:\n{status}"
    );
    assert_eq!(rig.session_ups(&rig.helper_log), 1, "{}", read(&rig.helper_log));
    assert_eq!(rig.session_ups(&rig.guest_log), 1, "{}", read(&rig.guest_log));
    assert!(grew(&before, &after, "wrong_peer") >= 50, "frames over another connection dropped\n{after}");
    assert!(!read(&heard).contains("got "), "nothing injected: {}", read(&heard));
}

fn status(sock: &std::path::Path) -> Status {
    rt().block_on(async { Client::connect(sock, "e2e attacker").await.unwrap().status().await.unwrap() })
}

fn route_state(s: &Status, net: &str) -> Option<(RouteSource, RouteState)> {
    s.routes.iter().find(|r| r.net.to_string() == net).map(|r| (r.source, r.state.clone()))
}

#[test]
fn an_api_caller_cannot_route_public_space_or_claim_zones_outside_ours() {
    if !require_root() {
        return;
    }
    let rig = up(68, "", &[]);
    let t = &rig.topo;
    let sock = rig.api_socket();
    let public = "198.51.100.0/24";
    let ctr2 = t.ctr2_subnet();
    let rt = rt();
    let c = rt.block_on(Client::connect(&sock, "e2e attacker")).unwrap();

    // Routes: the private one is installed, the public one refused with the line to add.
    let routes = vec![ctr2.parse().unwrap(), public.parse().unwrap()];
    rt.block_on(c.call(Op::SetRoutes { routes })).unwrap();
    let s = status(&sock);
    assert_eq!(route_state(&s, &ctr2), Some((RouteSource::App, RouteState::Installed)));
    let Some((RouteSource::App, RouteState::Failed { message })) = route_state(&s, public) else {
        panic!("{public} not refused: {s:#?}")
    };
    assert!(message.contains(&format!("add `route {public}`")), "{message}");
    assert!(!t.routes(t.ns_mac()).contains(public), "{}", t.routes(t.ns_mac()));
    // The config's line (root's word) routes it.
    rig.configure(&format!("route {public}\n")).unwrap();
    Topology::wait_until("the route line to apply", UP, || t.routes(t.ns_mac()).contains(public))
        .unwrap_or_else(|e| panic!("{e}\n{}", read(&rig.helper_log)));
    assert_eq!(route_state(&status(&sock), public), Some((RouteSource::Config, RouteState::Installed)));

    // Names: zones outside the suffix and the private-use names, and the suffix's own
    // wildcard, are an error that changes nothing.
    let ctr: IpAddr = t.ctr_addr().into();
    let set_names = |domains: &[&str]| {
        let domains: BTreeMap<String, Vec<IpAddr>> = domains.iter().map(|d| (d.to_string(), vec![ctr])).collect();
        let names = BTreeMap::from([("web".to_string(), vec![ctr])]);
        rt.block_on(c.call(Op::SetNames { names, domains, name_ports: BTreeMap::new(), domain_ports: BTreeMap::new() }))
    };
    set_names(&["shop.test"]).expect("a label domain below .test is fine");
    let zones_before = status(&sock).dns.expect("dns runs").zones;
    assert_eq!(zones_before, ["docker", "shop.test"]);
    for attack in ["com", "example.com", "www.example.com", "*.com", "github.com", "docker", "*.docker", "web.docker"] {
        let refused = set_names(&["shop.test", attack]);
        assert!(matches!(refused, Err(ClientError::Api(_))), "{attack}: {refused:?}");
        let dns = status(&sock).dns.unwrap();
        assert_eq!(dns.zones, zones_before, "{attack} changed the zones");
        assert!(!dns.resolver.contains("com"), "{attack} reached the resolver: {}", dns.resolver);
    }
    let server = rig.link_host();
    for name in ["www.example.com", "com"] {
        let answer = dig(t, t.ns_mac(), server, name, "A", false).unwrap();
        assert_eq!(answer.status, "REFUSED", "{name}:\n{}", answer.text);
    }
    assert_eq!(dig(t, t.ns_mac(), server, "web.docker", "A", false).unwrap().answers, [ctr.to_string()]);
}

#[test]
fn a_compose_network_on_a_public_subnet_is_skipped_and_named_until_a_route_line_covers_it() {
    if !require_root() || !Engine::V28.require() {
        return;
    }
    let d = DockerRig::up(67, Engine::V28);
    let public = "203.0.113.0/24";
    let created = Instant::now();
    d.docker(&["network", "create", "--subnet", public, "dr-public"]);
    let ip = d.web("dr-public-web", "dr-public");
    // Shown in the view (the headless app logs the dashboard's warning) and not asked for.
    let warning = format!(
        "Network dr-public is not routed: Skipped: {public} is public address space: add `route {public}` to the helper's config to route it"
    );
    Topology::wait_until("the skipped network in the view", UP, || read(&d.controller_log).contains(&warning))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
    println!("MEASURED public network created → skipped in the view: {} ms", created.elapsed().as_millis());
    std::thread::sleep(Duration::from_secs(2));
    assert!(!d.route_present(public), "{}", d.rig.topo.routes(d.rig.topo.ns_mac()));
    assert!(route_state(&status(&d.rig.api_socket()), public).is_none(), "the app never asked for it");
    let log = read(&d.controller_log);
    let asked: Vec<&str> = log.lines().filter(|l| l.contains("routes for docker networks")).collect();
    assert!(!asked.is_empty() && asked.iter().all(|l| !l.contains("203.0.113")), "{asked:#?}");
    assert!(d.get(&ip).is_err(), "unreachable from the Mac");

    // The user says so in the config: routed, reached, and the warning is gone.
    let added = Instant::now();
    d.rig.configure(&format!("route {public}\n")).unwrap();
    wait_route(&d, public, true, "the public network's route after the line");
    let body = Topology::wait_until("HTTP to the container on the public subnet", UP, || d.get(&ip).is_ok())
        .map(|_| d.get(&ip).unwrap())
        .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
    assert_eq!(body.trim(), "hello from dr-public-web");
    println!("MEASURED route line added → container on the public subnet answers: {} ms", added.elapsed().as_millis());
    Topology::wait_until("the warning solved", UP, || {
        read(&d.controller_log).contains("solved: Network dr-public is not routed")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
    Topology::wait_until("the app asks for it too", UP, || {
        read(&d.controller_log).lines().any(|l| l.contains("routes for docker networks") && l.contains(public))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
}

/// Prints the first data frame of the guest's seen on IFACE towards PORT (UDP datagrams, or the
/// first frame of a TCP segment): source, port, session id, counter and the id's fingerprint.
const SNIFF_FRAME_PY: &str = r#"
import hashlib, socket, struct, sys, time
iface, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((iface, 0)); s.settimeout(0.5)
print("ready", flush=True)
deadline = time.time() + 20
while time.time() < deadline:
    try: frame = s.recv(65535)
    except socket.timeout: continue
    if len(frame) < 14 + 28 or frame[12:14] != b"\x08\x00": continue
    ip = frame[14:]
    ihl = (ip[0] & 15) * 4
    ip = ip[:struct.unpack("!H", ip[2:4])[0]]
    sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
    if dport != port: continue
    if proto == "udp" and ip[9] == 17:
        msg = ip[ihl + 8:]
    elif proto == "tcp" and ip[9] == 6:
        seg = ip[ihl + (ip[ihl + 12] >> 4) * 4:]
        if len(seg) < 2: continue
        n = struct.unpack("!H", seg[:2])[0]
        msg = seg[2:2 + n]
        if len(msg) < n: continue
    else: continue
    if len(msg) < 20 or msg[0] != 5 or msg[1] != 1 or msg[2:4] != b"\0\0": continue
    sid, counter = msg[4:12], struct.unpack("!Q", msg[12:20])[0]
    fp = hashlib.sha256(b"dockroute/1 session fingerprint" + sid).hexdigest()[:8]
    print("frame", socket.inet_ntoa(ip[12:16]), sport, sid.hex(), counter, fp, flush=True)
    sys.exit(0)
print("no data frame seen", flush=True)
"#;

/// Sends frames (hex, comma-separated) K times: `udp` from a socket (bound to SRC unless "-"),
/// `raw` spoofed from SRC:SPORT (UDP checksum 0, the kernel fills in the IP header's), `tcp`
/// length-prefixed over one new connection.
const SEND_PY: &str = r#"
import socket, struct, sys, time
mode, dst, dport, src, sport = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
frames, k = [bytes.fromhex(f) for f in sys.argv[6].split(",")], int(sys.argv[7])
sent = 0
if mode == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if src != "-": s.bind((src, 0))
    for _ in range(k):
        for f in frames: s.sendto(f, (dst, dport)); sent += 1
elif mode == "raw":
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for _ in range(k):
        for f in frames:
            udp = struct.pack("!HHHH", sport, dport, 8 + len(f), 0) + f
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
            s.sendto(ip + udp, (dst, 0)); sent += 1
else:
    s = socket.create_connection((dst, dport), timeout=5)
    for _ in range(k):
        for f in frames: s.sendall(struct.pack("!H", len(f)) + f); sent += 1
    time.sleep(1)
print("sent", sent, flush=True)
"#;

/// Prints every datagram to ADDR:PORT for SECONDS.
const LISTEN_PY: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(0.5)
print("ready", flush=True)
end = time.time() + float(sys.argv[3])
while time.time() < end:
    try: data, peer = s.recvfrom(65535)
    except socket.timeout: continue
    print("got", data.decode(errors="replace"), "from", peer, flush=True)
"#;

/// Opens up to N TCP connections to DST:PORT within SECONDS (from SRC unless "-"), saying
/// nothing, keeping the newest KEEP open.
const FLOOD_PY: &str = r#"
import socket, sys, time
dst, port, n, secs, src, keep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], int(sys.argv[6])
held, opened, failed, end = [], 0, 0, time.time() + secs
print("ready", flush=True)
while opened + failed < n and time.time() < end:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        if src != "-": s.bind((src, 0))
        s.connect((dst, port)); opened += 1; held.append(s)
    except OSError:
        failed += 1; s.close()
    if len(held) > keep: held.pop(0).close()
for s in held: s.close()
print("opened", opened, "failed", failed, flush=True)
"#;

/// Sends N UDP echoes to IP:PORT, GAP ms apart, each waiting up to 1 s for its answer; prints
/// the round trip of each answered one in ms.
const ECHO_PY: &str = r#"
import socket, sys, time
ip, port, n, gap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]) / 1000
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
for i in range(n):
    msg = b"echo %d" % i
    start = time.perf_counter(); s.sendto(msg, (ip, port))
    while time.perf_counter() < start + 1:
        try: data = s.recv(2048)
        except socket.timeout: break
        if data == msg: print("%.3f" % ((time.perf_counter() - start) * 1000), flush=True); break
    time.sleep(gap)
"#;
