use dockroute_e2e::netns::{namespaces_with_prefix, require_root, Topology, SIGHUP, SIGTERM};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(3);

#[test]
fn topology_paths_and_teardown() {
    if !require_root() {
        return;
    }
    let t0 = Instant::now();
    let t = Topology::create(91).unwrap();
    eprintln!("create took {:?}", t0.elapsed());
    assert_eq!(namespaces_with_prefix("drt91-").len(), 4);
    let (mac, vm, ctr, ctr2) = (t.ns_mac(), t.ns_vm(), t.ns_ctr(), t.ns_ctr2());
    assert_eq!(t.ctr_subnet(), "198.19.91.0/24");
    assert_eq!(t.ctr2_subnet(), "198.19.191.0/24");
    assert_eq!(t.ctr_subnet6(), "2001:2:0:5b::/64");
    assert_eq!(t.ctr2_subnet6(), "2001:2:0:bf::/64");
    assert_eq!(t.ctr_addr6().to_string(), "2001:2:0:5b::10");
    assert_eq!(t.mac_addr6().to_string(), "2001:2:0:ff5b::1");
    for ns in [mac, vm, ctr, ctr2] {
        assert!(!t.addrs(ns).contains("tentative"), "DAD still running in {ns}:\n{}", t.addrs(ns));
    }
    assert!(t.addrs(ctr2).contains("2001:2:0:bf::10/64") && t.addrs(ctr2).contains("198.19.191.10/24"));
    assert!(t.links(vm).contains("veth-ctr2") && t.links(vm).contains("master br1"), "{}", t.links(vm));
    assert!(t.routes(ctr).contains("default via 2001:2:0:5b::1"), "{}", t.routes(ctr));

    // vm reaches both containers directly over v4 and v6.
    for a in
        [IpAddr::V4(t.ctr_addr()), IpAddr::V4(t.ctr2_addr()), IpAddr::V6(t.ctr_addr6()), IpAddr::V6(t.ctr2_addr6())]
    {
        t.ping(vm, a, 2, T).unwrap_or_else(|e| panic!("{e}\n{}", t.dump()));
    }
    t.start_http(ctr).unwrap();
    t.start_http(ctr2).unwrap();
    let body = t.http_get(vm, &format!("http://{}/", t.ctr_addr()), T).unwrap();
    assert_eq!(body, "hello from drt91-ctr\n");
    let body = t.http_get(vm, &format!("http://[{}]/", t.ctr2_addr6()), T).unwrap();
    assert_eq!(body, "hello from drt91-ctr2\n");
    let echo = t.start_udp_echo(ctr, 7777).unwrap();

    // mac has no route yet: fails fast, not after the timeout.
    assert!(!t.routes(mac).contains("198.19."), "{}", t.routes(mac));
    let s = Instant::now();
    let e = t.ping(mac, IpAddr::V4(t.ctr_addr()), 1, Duration::from_secs(2)).unwrap_err();
    assert!(e.contains("unreachable"), "{e}");
    assert!(t.ping(mac, IpAddr::V6(t.ctr_addr6()), 1, Duration::from_secs(2)).is_err());
    assert!(t.http_get(mac, &format!("http://{}/", t.ctr_addr()), T).is_err());
    assert!(s.elapsed() < Duration::from_secs(1), "unreachable took {:?}", s.elapsed());
    assert!(t.check_direct_path().is_err());

    t.add_direct_routes().unwrap();
    assert!(t.add_direct_routes().is_err(), "second add must not silently replace");
    t.check_direct_path().unwrap_or_else(|e| panic!("{e}\n{}", t.dump()));
    t.ping(mac, IpAddr::V4(t.ctr_addr()), 3, T).unwrap();
    assert_eq!(t.http_get(mac, &format!("http://{}/", t.ctr_addr()), T).unwrap(), "hello from drt91-ctr\n");
    assert_eq!(t.http_get(mac, &format!("http://[{}]/", t.ctr_addr6()), T).unwrap(), "hello from drt91-ctr\n");
    assert_eq!(t.http_get(mac, &format!("http://{}/", t.ctr2_addr()), T).unwrap(), "hello from drt91-ctr2\n");
    for a in [IpAddr::V4(t.ctr_addr()), IpAddr::V6(t.ctr_addr6())] {
        let payload: Vec<u8> = (0..=255u8).collect();
        let got = t.udp_exchange(mac, SocketAddr::new(a, 7777), &payload, T).unwrap();
        assert_eq!(got, payload, "echo via {a}");
    }
    // Nothing listens on ctr2:7777: the ICMP port-unreachable surfaces as an error quickly.
    let e = t.udp_exchange(mac, SocketAddr::new(IpAddr::V4(t.ctr2_addr()), 7777), b"x", T).unwrap_err();
    eprintln!("expected udp error: {e}");

    t.remove_direct_routes().unwrap();
    t.remove_direct_routes().unwrap();
    assert!(t.ping(mac, IpAddr::V4(t.ctr_addr()), 1, Duration::from_secs(1)).is_err());

    // Process control: graceful stop reports the status; a second kill is a no-op Ok.
    assert!(t.status(echo).is_none());
    let st = t.kill(echo, SIGTERM).unwrap();
    assert_eq!(st.code(), None);
    assert!(t.kill(echo, SIGTERM).is_ok());
    assert!(t.signal(echo, SIGHUP).is_err());

    // A child that ignores SIGTERM is escalated to SIGKILL.
    let log = t.dir().join("stubborn.log");
    let h = t.spawn(ctr, &["python3", "-c", "import signal,time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(60)"], &log).unwrap();
    Topology::wait_until("stubborn up", T, || std::fs::read_to_string(&log).unwrap_or_default().contains("up"))
        .unwrap();
    let s = Instant::now();
    assert!(t.kill(h, SIGTERM).unwrap_err().contains("SIGKILL"));
    assert!(s.elapsed() < Duration::from_secs(4));
    assert!(t.status(h).is_some());

    let e = Topology::wait_until("never", Duration::from_millis(100), || false).unwrap_err();
    assert!(e.starts_with("timed out after") && e.ends_with("waiting for never"), "{e}");
    assert!(Topology::wait_until("now", T, || true).unwrap() < Duration::from_millis(5));

    // Spawned-but-still-running children are cleaned up by drop.
    let sleeper = t.spawn(vm, &["sleep", "60"], &t.dir().join("sleep.log")).unwrap();
    let dir = t.dir().to_path_buf();
    let s = Instant::now();
    drop(t);
    eprintln!("drop took {:?}", s.elapsed());
    assert!(namespaces_with_prefix("drt91-").is_empty(), "{:?}", namespaces_with_prefix("drt91-"));
    assert!(!dir.exists());
    assert!(!std::path::Path::new(&format!("/proc/{sleeper}")).exists(), "sleeper survived drop");
}

#[test]
fn create_cleans_up_after_crashed_run() {
    if !require_root() {
        return;
    }
    let t = Topology::create(92).unwrap();
    let echo = t.start_udp_echo(t.ns_ctr(), 9000).unwrap();
    t.add_direct_routes().unwrap();
    std::mem::forget(t); // simulated crash: nothing torn down

    let t = Topology::create(92).unwrap();
    // The orphaned server was killed (it is an unreaped zombie of this process, or gone).
    let state = std::fs::read_to_string(format!("/proc/{echo}/stat")).unwrap_or_default();
    assert!(state.is_empty() || state.contains(") Z "), "old echo still alive: {state}");
    assert!(!t.routes(t.ns_mac()).contains("198.19."), "stale routes survived");
    t.start_udp_echo(t.ns_ctr(), 9000).unwrap();
    t.add_direct_routes().unwrap();
    let got = t.udp_exchange(t.ns_mac(), SocketAddr::new(IpAddr::V6(t.ctr_addr6()), 9000), b"again", T).unwrap();
    assert_eq!(got, b"again");
    drop(t);
    assert!(namespaces_with_prefix("drt92-").is_empty());
}

#[test]
fn parallel_slots_do_not_collide() {
    if !require_root() {
        return;
    }
    let hs: Vec<_> = [93u8, 94, 95]
        .into_iter()
        .map(|slot| {
            std::thread::spawn(move || {
                let t = Topology::create(slot).unwrap();
                t.start_http(t.ns_ctr()).unwrap();
                t.add_direct_routes().unwrap();
                t.check_direct_path().unwrap();
                let body = t.http_get(t.ns_mac(), &format!("http://{}/", t.ctr_addr()), T).unwrap();
                assert_eq!(body, format!("hello from drt{slot}-ctr\n"));
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    for p in ["drt93-", "drt94-", "drt95-"] {
        assert!(namespaces_with_prefix(p).is_empty());
    }
}

#[test]
fn rejects_bad_slot_and_foreign_namespace() {
    assert!(Topology::create(0).is_err());
    assert!(Topology::create(100).is_err());
    if !require_root() {
        return;
    }
    let t = Topology::create(96).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.cmd("drt97-mac", "true")));
    assert!(r.is_err());
    let e = t.run(t.ns_vm(), &["sh", "-c", "echo oops >&2; exit 3"]).unwrap_err();
    assert!(e.contains("oops") && e.contains("exit status: 3") && e.contains("sh -c"), "{e}");
    assert_eq!(t.run(t.ns_vm(), &["busybox", "sysctl", "-n", "net.ipv4.ip_forward"]).unwrap().trim(), "1");
    assert_eq!(t.run(t.ns_mac(), &["busybox", "sysctl", "-n", "net.ipv4.ip_forward"]).unwrap().trim(), "0");
    let s = Instant::now();
    let e = t.run_timeout(t.ns_vm(), &["sleep", "30"], Duration::from_millis(300)).unwrap_err();
    assert!(e.contains("timed out") && s.elapsed() < Duration::from_secs(3), "{e}");
}
