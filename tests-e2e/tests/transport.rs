//! The TCP fallback path end to end: UDP to the helper's port blocked with nftables inside the
//! test's "vm" namespace (never the root namespace), the guest moves to TCP and traffic flows;
//! unblocked, it moves back to UDP. And `transport tcp` forced on both ends. Needs root.
//! Measured times are printed as `MEASURED …` lines, each with its target (issue 20) met or
//! missed; the assertions are generous bounds the old mechanism could not meet (it needed
//! three keepalives, 6 s, to notice, and 3 s more to give UDP up), not the targets themselves.

use std::time::{Duration, Instant};

use dockroute_e2e::netns::{require_root, Topology, SIGTERM};
use dockroute_e2e::rig::{read, Rig};

/// The nftables table the tests add in "vm" to drop UDP to the helper's port.
const BLOCK_TABLE: &str = "dockroute_e2e_block";
/// Targets: UDP blocked mid-session → traffic again within this; UDP blocked from the start →
/// first traffic within `START_TARGET`.
const MID_SESSION_TARGET: Duration = Duration::from_secs(3);
const START_TARGET: Duration = Duration::from_secs(1);

fn met(took: Duration, target: Duration) -> &'static str {
    if took <= target {
        "met"
    } else {
        "missed"
    }
}

fn up(slot: u8, config: &str, guest_args: &[&str]) -> Rig {
    let mut rig = Rig::new(slot, |t| vec![t.ctr_subnet()]).unwrap();
    rig.configure(config).unwrap();
    rig.guest_args = guest_args.iter().map(|a| a.to_string()).collect();
    rig.topo.start_http(rig.topo.ns_ctr()).unwrap();
    rig.topo.start_udp_echo(rig.topo.ns_ctr(), 7000).unwrap();
    rig.start_helper().unwrap();
    rig.start_guest().unwrap();
    rig
}

fn block_udp(rig: &Rig) {
    let t = &rig.topo;
    let vm = t.ns_vm();
    t.run(vm, &["nft", "add", "table", "inet", BLOCK_TABLE]).unwrap();
    t.run(vm, &["nft", "add", "chain", "inet", BLOCK_TABLE, "out", "{ type filter hook output priority 0 ; }"])
        .unwrap();
    t.run(vm, &["nft", "add", "rule", "inet", BLOCK_TABLE, "out", "udp", "dport", "2511", "drop"]).unwrap();
}

fn unblock_udp(rig: &Rig) {
    rig.topo.run(rig.topo.ns_vm(), &["nft", "delete", "table", "inet", BLOCK_TABLE]).unwrap();
}

/// Waits until the helper reports a live session over `transport` and a UDP echo crosses.
fn wait_session_over(rig: &Rig, transport: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    Topology::wait_until(&format!("a live session over {transport}"), timeout, || {
        let s = rig.status_text();
        s.contains("alive, established") && s.contains(&format!("over {transport}\n"))
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nstatus:\n{}\nhelper log:\n{}\nguest log:\n{}",
            rig.status_text(),
            read(&rig.helper_log),
            read(&rig.guest_log)
        )
    });
    rig.wait_traffic(&format!("traffic over {transport}"), timeout.saturating_sub(start.elapsed())).unwrap();
    start.elapsed()
}

#[test]
fn a_blocked_udp_path_moves_to_tcp_and_back() {
    if !require_root() {
        return;
    }
    let mut rig = up(57, "", &[]);
    wait_session_over(&rig, "udp", Duration::from_secs(5));
    assert!(rig.status_text().contains("listening on udp and tcp"), "{}", rig.status_text());

    // UDP to the helper's port dropped in the VM (one direction: the guest still hears the
    // helper) while the Mac pings the container, as a user notices a break: the guest probes
    // UDP while data moves, the probes go unanswered for 1.6 s, it connects over TCP. (An idle
    // session is not probed; its break is found by the first traffic or the peer's silence.)
    let t = &rig.topo;
    let pings = t.dir().join("pings-while-blocked.log");
    let ctr = t.ctr_addr().to_string();
    let pinger = t.spawn(t.ns_mac(), &["ping", "-q", "-i", "0.2", "-w", "20", &ctr], &pings).unwrap();
    let blocked = Instant::now();
    block_udp(&rig);
    let to_tcp = wait_session_over(&rig, "tcp", Duration::from_secs(20));
    let _ = t.kill(pinger, 15);
    let target = MID_SESSION_TARGET;
    println!(
        "MEASURED udp blocked → traffic over tcp: {} ms (target ≤ {} ms: {})",
        to_tcp.as_millis(),
        target.as_millis(),
        met(to_tcp, target)
    );
    let body = t.http_get(t.ns_mac(), &format!("http://{}/", t.ctr_addr()), Duration::from_secs(5)).unwrap();
    assert_eq!(body.trim(), format!("hello from {}", t.ns_ctr()), "TCP through the TCP path");
    assert!(to_tcp <= Duration::from_secs(6), "took {to_tcp:?} (blocked at {blocked:?})");

    // Unblocked: the next UDP probe (every 5 s) is answered and the guest moves back.
    unblock_udp(&rig);
    let back = wait_session_over(&rig, "udp", Duration::from_secs(15));
    println!("MEASURED udp unblocked → traffic over udp: {} ms", back.as_millis());
    assert!(back <= Duration::from_secs(8), "took {back:?}");
    let guest_log = read(&rig.guest_log);
    assert!(guest_log.contains("moving to tcp") && guest_log.contains("moving to udp"), "{guest_log}");
    rig.stop_guest(SIGTERM).unwrap();
    rig.stop_helper(SIGTERM).unwrap();
}

#[test]
fn udp_blocked_before_the_guest_starts_moves_to_tcp_within_a_second() {
    if !require_root() {
        return;
    }
    let mut rig = Rig::new(56, |t| vec![t.ctr_subnet()]).unwrap();
    rig.configure("").unwrap();
    rig.topo.start_udp_echo(rig.topo.ns_ctr(), 7000).unwrap();
    rig.start_helper().unwrap();
    Topology::wait_until("the helper listening", Duration::from_secs(10), || {
        rig.status_text().contains("listening on udp and tcp")
    })
    .unwrap();
    block_udp(&rig);
    let started = Instant::now();
    rig.start_guest().unwrap();
    wait_session_over(&rig, "tcp", Duration::from_secs(10));
    let took = started.elapsed();
    println!(
        "MEASURED udp blocked from the start → first traffic over tcp: {} ms after the guest started (target ≤ {} ms: {})",
        took.as_millis(),
        START_TARGET.as_millis(),
        met(took, START_TARGET)
    );
    // The old give-up alone was 3 s.
    assert!(took <= Duration::from_millis(2500), "took {took:?}");
    rig.stop_guest(SIGTERM).unwrap();
    rig.stop_helper(SIGTERM).unwrap();
}

#[test]
fn forced_tcp_carries_everything_and_forced_udp_never_listens_on_tcp() {
    if !require_root() {
        return;
    }
    let mut rig = up(58, "transport tcp\n", &["--transport", "tcp"]);
    let took = wait_session_over(&rig, "tcp", Duration::from_secs(5));
    println!("MEASURED transport tcp: first traffic after {} ms", took.as_millis());
    let t = &rig.topo;
    let body = t.http_get(t.ns_mac(), &format!("http://{}/", t.ctr_addr()), Duration::from_secs(5)).unwrap();
    assert_eq!(body.trim(), format!("hello from {}", t.ns_ctr()));
    t.ping(t.ns_mac(), t.ctr_addr().into(), 3, Duration::from_secs(3)).expect("ping over the TCP path");
    assert!(!read(&rig.guest_log).contains("moving to udp"), "forced tcp never probes: {}", read(&rig.guest_log));
    rig.stop_guest(SIGTERM).unwrap();
    rig.stop_helper(SIGTERM).unwrap();

    // `transport udp`: no TCP listener at all.
    let mut udp = up(59, "transport udp\n", &["--transport", "udp"]);
    wait_session_over(&udp, "udp", Duration::from_secs(5));
    assert!(udp.status_text().contains("listening on udp 198.18."), "{}", udp.status_text());
    let t = &udp.topo;
    let listening = t.run(t.ns_mac(), &["ss", "-Hltn"]).unwrap();
    assert!(!listening.contains(":2511 "), "no TCP on the helper's port: {listening}");
    udp.stop_guest(SIGTERM).unwrap();
    udp.stop_helper(SIGTERM).unwrap();
}
