//! The wire format of every op, reply and event, and the text `status` prints.

use super::*;
use crate::{Transport, TransportMode};

fn status() -> Status {
    Status {
        helper_version: "0.1.0".into(),
        requested: TunnelRequest::Up,
        error: None,
        listen: Some("127.0.0.1:2511".parse().unwrap()),
        interface: Some("utun5".into()),
        link: Some(LinkInfo {
            host_v4: "192.168.251.1/24".parse().unwrap(),
            guest_v4: "192.168.251.2".parse().unwrap(),
            host_v6: Some("fdd0:d0c4:2511::1/64".parse().unwrap()),
            guest_v6: Some("fdd0:d0c4:2511::2".parse().unwrap()),
            mtu: 1400,
        }),
        session: Some(SessionInfo {
            fingerprint: "01234567".into(),
            guest: "127.0.0.1:50000".parse().unwrap(),
            alive: true,
            handshake_age_ms: 1200,
            last_seen_ms: 30,
            transport: Transport::Udp,
        }),
        routes: vec![
            RouteStatus {
                net: "172.18.0.0/16".parse().unwrap(),
                source: RouteSource::App,
                enabled: true,
                state: RouteState::Installed,
            },
            RouteStatus {
                net: "10.0.0.0/8".parse().unwrap(),
                source: RouteSource::Config,
                enabled: true,
                state: RouteState::Conflict { interface: "en0".into(), route: "10.0.0.0/8".parse().unwrap() },
            },
        ],
        secret_source: SecretSource::Api,
        dns: Some(Box::new(DnsStatus {
            listen: Some("192.168.251.1:53".parse().unwrap()),
            suffix: "docker".into(),
            zones: vec!["docker".into(), "shop.test".into()],
            names: 3,
            resolver: "/etc/resolver/docker, /etc/resolver/shop.test".into(),
            problems: vec!["/etc/resolver/shop.test was not written by dockroute-helper: left alone".into()],
        })),
        iptables: vec!["198.19.1.0+198.19.2.0".parse().unwrap()],
        share: Default::default(),
        transport: TransportMode::Auto,
        https: Some(Box::new(HttpsStatus {
            listen: Some("192.168.251.1:443".parse().unwrap()),
            ca: Some(CaStatus {
                path: "/etc/dockroute/dockroute.ca.pem".into(),
                id: "ab12cd34".into(),
                not_after: 2_100_000_000,
                constraints: "names *.docker, *.test only".into(),
                trusted_in: vec!["system store".into()],
            }),
            problems: Vec::new(),
            off_by_app: false,
            redirected: 3,
        })),
    }
}

fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(v: &T) -> String {
    let text = serde_json::to_string(v).unwrap();
    let back: T = serde_json::from_str(&text).unwrap();
    assert_eq!(&back, v, "{text}");
    text
}

#[test]
fn every_request_round_trips_and_has_the_documented_shape() {
    let ops = [
        Op::Hello { version: 1, client: "t".into() },
        Op::Status,
        Op::Connect,
        Op::Disconnect,
        Op::SetSecret { secret: Redacted("s3cr3t-s3cr3t-s3cr3t".into()) },
        Op::SetRoutes { routes: vec!["172.18.0.0/16".parse().unwrap(), "fd00:1::/64".parse().unwrap()] },
        Op::SetRouteEnabled { route: "172.18.0.0/16".parse().unwrap(), enabled: false },
        Op::Stats,
        Op::Subscribe,
        Op::SetNames {
            names: BTreeMap::from([("web".into(), vec!["172.18.0.2".parse().unwrap(), "fd00::2".parse().unwrap()])]),
            domains: BTreeMap::from([("*.shop.test".into(), vec!["172.18.0.3".parse().unwrap()])]),
            name_ports: BTreeMap::from([("web".into(), 8080)]),
            domain_ports: BTreeMap::new(),
        },
        Op::SetNetworkExposed { network: "4f1d".into(), exposed: true },
        Op::SetNetworks {
            networks: vec![crate::share::DockerNetwork {
                id: "4f1d".into(),
                name: "web".into(),
                subnets: vec!["172.18.0.0/16".parse().unwrap()],
                gateways: vec!["172.18.0.1".parse().unwrap()],
                containers: vec!["172.18.0.2".parse().unwrap()],
            }],
        },
        Op::ShareAdd(ShareAdd { name: "alice".into(), ip: None, endpoint: Some("mac.lan:2512".into()), rotate: false }),
        Op::ShareList,
        Op::ShareRevoke { name: "alice".into() },
        Op::SetHttps { serve: false },
        Op::CaTrust,
        Op::CaUntrust,
        Op::CaTrusted { trusted: true },
    ];
    for (i, op) in ops.into_iter().enumerate() {
        round_trip(&Request { id: i as u64, op });
    }
    let text = round_trip(&Request {
        id: 2,
        op: Op::SetRouteEnabled { route: "172.18.0.0/16".parse().unwrap(), enabled: false },
    });
    assert_eq!(text, r#"{"id":2,"op":"set_route_enabled","route":"172.18.0.0/16","enabled":false}"#);
}

#[test]
fn every_server_frame_round_trips() {
    let frames = [
        ServerFrame::Reply(Reply {
            id: Some(1),
            outcome: Outcome::Ok(Answer::Hello { version: 1, server: "h".into() }),
        }),
        ServerFrame::Reply(Reply { id: Some(2), outcome: Outcome::Ok(Answer::Status(status())) }),
        ServerFrame::Reply(Reply { id: Some(3), outcome: Outcome::Ok(Answer::Stats(StatsReport::default())) }),
        ServerFrame::Reply(Reply { id: Some(4), outcome: Outcome::Ok(Answer::Done) }),
        ServerFrame::Reply(Reply { id: None, outcome: Outcome::Error(ApiError::new(ErrorCode::BadRequest, "x")) }),
        ServerFrame::Event { event: Event::Status(status()) },
        ServerFrame::Event { event: Event::Stats(StatsReport::default()) },
        ServerFrame::Event {
            event: Event::Stats(StatsReport {
                dns: Some(DnsCounters { queries: 9, answered: 5, nxdomain: 2, refused: 1, malformed: 1 }),
                ..Default::default()
            }),
        },
        ServerFrame::Reply(Reply {
            id: Some(5),
            outcome: Outcome::Ok(Answer::ShareConfig(ShareConfig {
                name: "alice".into(),
                address: "198.18.0.3".parse().unwrap(),
                text: Redacted("[Interface]".into()),
            })),
        }),
        ServerFrame::Reply(Reply { id: Some(6), outcome: Outcome::Ok(Answer::Share(ShareStatus::default())) }),
    ];
    for f in &frames {
        round_trip(f);
    }
    let done = serde_json::to_string(&frames[3]).unwrap();
    assert_eq!(done, r#"{"id":4,"ok":{"kind":"done"}}"#);
    let err = serde_json::to_string(&frames[4]).unwrap();
    assert_eq!(err, r#"{"id":null,"error":{"code":"bad_request","message":"x"}}"#);
}

#[test]
fn set_names_has_the_documented_shape_and_an_older_status_still_reads() {
    let text = round_trip(&Request {
        id: 7,
        op: Op::SetNames {
            names: BTreeMap::from([("api.shop".into(), vec!["172.18.0.3".parse().unwrap()])]),
            domains: BTreeMap::new(),
            name_ports: BTreeMap::new(),
            domain_ports: BTreeMap::new(),
        },
    });
    // No ports: exactly what apps before HTTPS sent, so either side may be the older one.
    assert_eq!(text, r#"{"id":7,"op":"set_names","names":{"api.shop":["172.18.0.3"]},"domains":{}}"#);
    let bare = parse_request(br#"{"id":8,"op":"set_names"}"#).unwrap();
    let none = Op::SetNames {
        names: BTreeMap::new(),
        domains: BTreeMap::new(),
        name_ports: BTreeMap::new(),
        domain_ports: BTreeMap::new(),
    };
    assert_eq!(bare.op, none, "all default to empty");
    let ported = parse_request(br#"{"id":9,"op":"set_names","names":{"web":[]},"name_ports":{"web":8080}}"#).unwrap();
    assert!(matches!(ported.op, Op::SetNames { name_ports, .. } if name_ports["web"] == 8080));
    let bad = parse_request(br#"{"id":10,"op":"set_names","name_ports":{"web":70000}}"#).unwrap_err();
    assert_eq!((bad.0, bad.1.code), (Some(10), ErrorCode::InvalidArgument), "a port past 65535 is an error reply");
    // A helper from before DNS sends no `dns`; a stats push without it reads too.
    let mut old = serde_json::to_value(status()).unwrap();
    old.as_object_mut().unwrap().remove("dns");
    old.as_object_mut().unwrap().remove("https");
    let older = serde_json::from_value::<Status>(old).unwrap();
    assert_eq!((older.dns, older.https), (None, None), "a helper from before DNS and HTTPS");
    let stats: StatsReport = serde_json::from_str(
        r#"{"tx_packets":0,"tx_bytes":0,"rx_packets":0,"rx_bytes":0,"keepalives_sent":0,"handshakes":0,"stale_notices":0,"drops":{}}"#,
    )
    .unwrap();
    assert_eq!(stats.dns, None);
}

#[test]
fn rendered_status_names_session_routes_and_conflicts() {
    let text = render_status(&status());
    assert!(text.contains("tunnel connected"), "{text}");
    assert!(text.contains("session 01234567 with guest 127.0.0.1:50000: alive"), "{text}");
    assert!(text.contains("172.18.0.0/16") && text.contains("installed [app]"), "{text}");
    assert!(text.contains("CONFLICT with 10.0.0.0/8 on en0 [config]"), "{text}");
    assert!(text.contains("  dns on 192.168.251.1:53 for docker, shop.test (3 names)\n"), "{text}");
    assert!(text.contains("PROBLEM: /etc/resolver/shop.test was not written"), "{text}");
    assert!(
        text.contains("  https on 192.168.251.1:443, port 443 of 3 container addresses redirected here\n"),
        "{text}"
    );
    assert!(text.contains("local CA ab12cd34 (/etc/dockroute/dockroute.ca.pem), trusted in: system store\n"), "{text}");
}

#[test]
fn status_says_which_transport_the_session_uses_and_old_statuses_still_parse() {
    let mut s = status();
    s.session.as_mut().unwrap().transport = Transport::Tcp;
    let text = render_status(&s);
    assert!(text.contains("last heard 0.0 s ago, over tcp"), "{text}");
    assert!(text.contains("listening on udp and tcp 127.0.0.1:2511"), "{text}");
    s.transport = TransportMode::Udp;
    assert!(render_status(&s).contains("listening on udp 127.0.0.1:2511"), "{}", render_status(&s));
    // A helper from before the transport fields: UDP, auto.
    let mut json = serde_json::to_value(status()).unwrap();
    json.as_object_mut().unwrap().remove("transport");
    json["session"].as_object_mut().unwrap().remove("transport");
    let old: Status = serde_json::from_value(json).unwrap();
    assert_eq!((old.transport, old.session.unwrap().transport), (TransportMode::Auto, Transport::Udp));
}

#[test]
fn the_tunnel_request_is_serialised_as_a_request_and_rendered_as_before() {
    let mut s = status();
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!((&json["requested"], json.get("tunnel")), (&serde_json::json!("up"), None));
    s.requested = TunnelRequest::Down;
    assert_eq!(serde_json::to_value(&s).unwrap()["requested"], "down");
    assert!(render_status(&s).contains(": tunnel disconnected\n"), "{}", render_status(&s));
}

#[test]
fn the_secret_never_shows_in_debug_output() {
    let op = Op::SetSecret { secret: Redacted("hunter2-hunter2-hunter2".into()) };
    assert!(!format!("{op:?}").contains("hunter2"));
}

#[test]
fn parse_tells_the_kinds_of_bad_request_apart() {
    let code = |b: &[u8]| parse_request(b).unwrap_err();
    assert_eq!(code(b"not json").1.code, ErrorCode::BadRequest);
    assert_eq!(code(b"not json").0, None);
    assert_eq!(code(b"[1,2]").1.code, ErrorCode::BadRequest);
    assert_eq!(code(br#"{"op":"status"}"#).1.code, ErrorCode::BadRequest);
    let unknown = code(br#"{"id":4,"op":"frobnicate"}"#);
    assert_eq!((unknown.0, unknown.1.code), (Some(4), ErrorCode::UnknownOp));
    assert!(unknown.1.message.contains("\"frobnicate\"") && unknown.1.message.contains("set_routes"));
    let bad_arg = code(br#"{"id":5,"op":"set_routes","routes":["not a cidr"]}"#);
    assert_eq!((bad_arg.0, bad_arg.1.code), (Some(5), ErrorCode::InvalidArgument));
    assert_eq!(parse_request(br#"{"id":6,"op":"status"}"#).unwrap(), Request { id: 6, op: Op::Status });
    let add = parse_request(br#"{"id":7,"op":"share_add","name":"bob","ip":null,"endpoint":null}"#).unwrap();
    assert_eq!(add.op, Op::ShareAdd(ShareAdd { name: "bob".into(), ip: None, endpoint: None, rotate: false }));
}

#[test]
fn a_status_or_stats_from_a_helper_without_share_fields_still_parses() {
    let mut v = serde_json::to_value(status()).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("iptables");
    o.remove("share");
    let s: Status = serde_json::from_value(v).unwrap();
    assert!(s.iptables.is_empty() && s.share == ShareStatus::default());
    let stats: StatsReport = serde_json::from_str(
        r#"{"tx_packets":1,"tx_bytes":2,"rx_packets":3,"rx_bytes":4,
        "keepalives_sent":0,"handshakes":0,"stale_notices":0,"drops":{}}"#,
    )
    .unwrap();
    assert!(stats.teammates.is_empty());
}

#[test]
fn the_https_ops_have_the_documented_shape_and_a_bad_one_is_an_error_reply() {
    let text = round_trip(&Request { id: 3, op: Op::SetHttps { serve: false } });
    assert_eq!(text, r#"{"id":3,"op":"set_https","serve":false}"#);
    assert_eq!(round_trip(&Request { id: 4, op: Op::CaTrust }), r#"{"id":4,"op":"ca_trust"}"#);
    let text = round_trip(&Request { id: 5, op: Op::CaTrusted { trusted: true } });
    assert_eq!(text, r#"{"id":5,"op":"ca_trusted","trusted":true}"#);
    let bad = parse_request(br#"{"id":6,"op":"set_https","serve":"yes"}"#).unwrap_err();
    assert_eq!((bad.0, bad.1.code), (Some(6), ErrorCode::InvalidArgument));
    let missing = parse_request(br#"{"id":7,"op":"ca_trusted"}"#).unwrap_err();
    assert_eq!((missing.0, missing.1.code), (Some(7), ErrorCode::InvalidArgument));
    // A helper from before the app's switch sends no `off_by_app`.
    let mut v = serde_json::to_value(status()).unwrap();
    v["https"].as_object_mut().unwrap().remove("off_by_app");
    assert!(!serde_json::from_value::<Status>(v).unwrap().https.unwrap().off_by_app);
    let mut off = status();
    let h = off.https.as_mut().unwrap();
    (h.listen, h.off_by_app) = (None, true);
    assert!(render_status(&off).contains("  https switched off in the app\n"), "{}", render_status(&off));
}
