//! The expose port's datagram handling: any bytes as a datagram from a stranger, as the inner
//! packet of a teammate's live session (so the policy sees arbitrary packets), and as a packet
//! the guest sent to a teammate. Nothing may panic, nothing from a stranger is answered with
//! more than a cookie reply, and the teammate's session must survive.
//! The session is kept across runs (see `Session`): a crash found late in a session may need
//! the inputs before it, which libFuzzer's crash file does not hold.
#![no_main]

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use boringtun::noise::{Tunn, TunnResult};
use dockroute_helper::share::core::{ShareCore, TeammateSpec, HANDSHAKES_BEFORE_COOKIES};
use dockroute_helper::share::policy::Rules;
use dockroute_helper::share::state::KeyPair;
use libfuzzer_sys::fuzz_target;

fn udp4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0u8; 28];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&28u16.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p
}

fn write(r: TunnResult<'_>) -> Vec<u8> {
    match r {
        TunnResult::WriteToNetwork(b) => b.to_vec(),
        other => panic!("expected a datagram, got {other:?}"),
    }
}

/// A core with alice's session up. Building one costs about eight X25519 operations, which
/// would make the handshake, not the input, the whole run (a few hundred runs a second); so one
/// is kept and made anew every `RUNS_PER_SESSION` runs and before boringtun's session ages out.
struct Session {
    core: ShareCore,
    alice: Tunn,
    made: Instant,
    runs: u32,
}

const RUNS_PER_SESSION: u32 = 100_000;
const SESSION_LIFE: Duration = Duration::from_secs(60);
const ALICE_ADDR: &str = "198.18.9.2:40000";

impl Session {
    fn new() -> Session {
        let now = Instant::now();
        let mut core = ShareCore::new(KeyPair::from_private([1; 32]), HANDSHAKES_BEFORE_COOKIES);
        // One exposed network's container, its gateway, and an open `route … expose` line: every
        // branch of the destination policy is reachable from the fuzzer's packets.
        core.set_rules(Rules {
            containers: ["198.19.2.10".parse().unwrap()].into(),
            gateways: ["198.19.2.1".parse().unwrap()].into(),
            open: vec!["198.19.1.0/24".parse().unwrap()],
            link: Some("198.18.5.1/24".parse().unwrap()),
        });
        let alice_keys = KeyPair::from_private([2; 32]);
        core.set_teammates(&[TeammateSpec {
            name: "alice".into(),
            address: [198, 18, 5, 3].into(),
            public_key: *alice_keys.public.as_bytes(),
        }]);
        let mut alice = Tunn::new(alice_keys.private.clone(), *core.public_key(), None, None, 9, None);
        let alice_addr: SocketAddr = ALICE_ADDR.parse().unwrap();
        let mut buf = vec![0u8; 2048];
        let init = write(alice.format_handshake_initiation(&mut buf, false));
        core.handle_datagram(now, alice_addr, &init);
        let response = core.poll_transmit().expect("a handshake response").bytes;
        let keepalive = write(alice.decapsulate(None, &response, &mut buf));
        core.handle_datagram(now, alice_addr, &keepalive);
        Session { core, alice, made: now, runs: 0 }
    }
}

static SESSION: Mutex<Option<Session>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut slot = SESSION.lock().unwrap_or_else(|e| e.into_inner());
    if slot.as_ref().is_none_or(|s| s.runs >= RUNS_PER_SESSION || s.made.elapsed() > SESSION_LIFE) {
        *slot = Some(Session::new());
    }
    let Session { core, alice, runs, .. } = slot.as_mut().unwrap();
    *runs += 1;
    let now = Instant::now();
    let alice_addr: SocketAddr = ALICE_ADDR.parse().unwrap();
    let mut buf = vec![0u8; 70_000];

    // The input as a stranger's datagram: at most a cookie reply may answer it.
    core.handle_datagram(now, "198.18.9.66:5000".parse().unwrap(), data);
    while let Some(t) = core.poll_transmit() {
        assert!(t.bytes.len() <= 92, "a stranger got {} bytes", t.bytes.len());
    }
    // The input inside alice's session: the policy decides, nothing panics.
    if data.len() <= 65_000 {
        let sealed = write(alice.encapsulate(data, &mut buf));
        core.handle_datagram(now, alice_addr, &sealed);
    }
    // And as a packet the guest sent into the link subnet.
    core.handle_diverted(now, data);
    while core.poll_packet().is_some() {}
    while core.poll_transmit().is_some() {}

    // Her session still carries a packet to an exposed container.
    let probe = udp4([198, 18, 5, 3], [198, 19, 1, 10]);
    let sealed = write(alice.encapsulate(&probe, &mut buf));
    core.handle_datagram(now, alice_addr, &sealed);
    assert_eq!(core.poll_packet(), Some(probe));
});
