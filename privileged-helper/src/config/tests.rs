//! The config parser: every key, the seed's templates, errors that name the line.

use super::*;

const BASE: &str = "/etc/dr";

fn ok(text: &str) -> Config {
    Config::parse(text, Path::new(BASE)).unwrap_or_else(|e| panic!("{e}"))
}

fn fail(text: &str) -> String {
    let res = Config::parse(text, Path::new(BASE));
    res.map(|c| panic!("parsed: {c:?}")).unwrap_or_else(|e| e.to_string())
}

fn warns(c: &Config) -> Vec<String> {
    c.warnings.iter().map(|w| w.to_string()).collect()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn nets(c: &Config) -> Vec<String> {
    c.route_nets().iter().map(|n| n.to_string()).collect()
}

#[test]
fn defaults() {
    let c = ok("");
    assert_eq!(c, Config::default_with_base(Path::new(BASE)));
    assert_eq!(c.host_link_v4().to_string(), "192.168.251.1/24");
    assert_eq!(c.guest_link_v4().to_string(), "192.168.251.2");
    let (h6, g6) = (c.host_link_v6().unwrap(), c.guest_link_v6().unwrap());
    assert_eq!(h6.to_string(), "fdd0:d0c4:2511::1/64");
    assert_eq!(g6.to_string(), "fdd0:d0c4:2511::2");
    assert_eq!((c.port, c.mtu, c.keepalive.as_secs()), (2511, 1400, 2));
    assert_eq!(c.listen_addr().to_string(), "127.0.0.1:2511");
    assert_eq!(c.secret_file, Path::new("/etc/dr/dockroute.secret"));
    assert!(c.routes.is_empty() && c.warnings.is_empty() && c.tokens.is_empty());
    assert!(c.https, "HTTPS is on unless the config says `https off`");
    assert!(c.iptables.is_empty() && c.expose.is_none());
}

#[test]
fn transport_is_auto_unless_set_and_needs_a_restart() {
    assert_eq!(ok("").transport, TransportMode::Auto);
    assert_eq!(ok("transport tcp").transport, TransportMode::Tcp);
    assert_eq!(ok("transport udp\n").transport, TransportMode::Udp);
    let d = diff(&ok(""), &ok("transport udp"));
    assert_eq!(d.restart_needed, ["transport"]);
}

#[test]
fn every_key() {
    let c = ok("addr 10.9.0.2/29\naddr6 fd00::1/126\nport 4000\nmtu 9000\n\
        host ::1\nroute 10.1.0.0/16\nsecret-file k/s.key\nkeepalive 10\n\
        iptables 10.1.0.0+10.2.0.0\nexpose [::]:2512\ntoken t1 10.9.0.3\n");
    assert_eq!(c.host_link_v4().to_string(), "10.9.0.2/29");
    assert_eq!(c.guest_link_v4().to_string(), "10.9.0.1");
    assert_eq!(c.guest_link_v6().unwrap().to_string(), "fd00::2");
    assert_eq!((c.port, c.mtu, c.keepalive.as_secs()), (4000, 9000, 10));
    assert_eq!(c.listen_addr().to_string(), "[::1]:4000");
    assert_eq!(nets(&c), ["10.1.0.0/16"]);
    assert_eq!(c.secret_file, Path::new("/etc/dr/k/s.key"));
    assert_eq!(c.expose.unwrap().to_string(), "[::]:2512");
    assert_eq!((c.tokens[0].ip.unwrap().octets(), c.tokens[0].line), ([10, 9, 0, 3], 11));
    assert!(c.warnings.is_empty(), "iptables, expose and token are active: {:?}", c.warnings);
    let c = ok("addr6 none\nsecret-file /var/s k\naddr 192.168.251.2/30");
    assert_eq!((c.host_link_v6(), c.guest_link_v6()), (None, None));
    assert_eq!(c.secret_file, Path::new("/var/s k"));
    assert_eq!(c.guest_link_v4().to_string(), "192.168.251.1");
}

#[test]
fn api_keys_and_addr_pinning() {
    let c = ok("");
    assert!(!c.addr_pinned);
    assert_eq!((c.api_socket.as_path(), c.api_socket_mode), (Path::new(DEFAULT_API_SOCKET), 0o660));
    assert!(c.allow_groups.is_empty());
    let c = ok("addr 192.168.251.1/24\napi-socket run/api.sock\napi-socket-mode 0666\n\
        allow-group staff\nallow-group docker\nallow-group staff\n");
    assert!(c.addr_pinned, "an explicit addr line pins the link subnet, even at its default");
    assert_eq!(c.api_socket, Path::new("/etc/dr/run/api.sock"));
    assert_eq!(c.api_socket_mode, 0o666);
    assert_eq!(c.allow_groups, ["staff", "docker"]);
    for bad in ["api-socket-mode 0777", "api-socket-mode rw", "api-socket", "allow-group"] {
        let e = Config::parse(bad, Path::new(BASE)).unwrap_err();
        assert_eq!(e.line, 1, "{bad}: {e}");
    }
    let c = ok("require-signature anchor apple generic and identifier \"dev.dockroute.app\"\n");
    assert_eq!(c.require_signature.as_deref(), Some("anchor apple generic and identifier \"dev.dockroute.app\""));
    let d = diff(&ok(""), &ok("api-socket-mode 0600"));
    assert_eq!(d.restart_needed, ["api-socket"]);
}

#[test]
fn dns_keys() {
    let c = ok("");
    assert_eq!(c.dns, DnsConfig { enabled: true, suffix: "docker".into() }, "on, below .docker, by default");
    let c = ok("dns-suffix Dev.Internal.\ndns off\n");
    assert_eq!(c.dns, DnsConfig { enabled: false, suffix: "dev.internal".into() });
    assert!(ok("dns off\ndns on").dns.enabled, "last wins");
    for (text, needle) in [
        ("dns maybe", "invalid dns \"maybe\": expected `on` or `off`"),
        ("dns", "missing value"),
        ("dns-suffix my_stuff", "invalid dns-suffix \"my_stuff\": '_' is not allowed"),
        ("dns-suffix -x", "may not start or end with '-'"),
        ("dns-suffix a..b", "an empty label"),
        ("dns-suffix test local", "takes one value"),
    ] {
        let e = fail(&format!("# ok\n{text}\n"));
        assert!(e.starts_with("line 2: ") && e.contains(needle), "{text}: {e}");
    }
    assert_eq!(diff(&ok(""), &ok("dns-suffix test")).restart_needed, ["dns"]);
    assert_eq!(diff(&ok(""), &ok("dns on")).restart_needed, Vec::<&str>::new(), "the default, said out loud");
}

#[test]
fn seed_examples() {
    let c = ok("route 172.56.72.0/24\nroute 172.100.0.0/16 expose\n\
        iptables 172.0.1.0+172.0.2.0\niptables 172.0.3.0-172.0.4.0\n\
        expose 0.0.0.0:2512\ntoken token-name 192.168.251.3\n");
    assert_eq!(nets(&c), ["172.56.72.0/24", "172.100.0.0/16"]);
    let flags: Vec<_> = c.routes.iter().map(|r| (r.expose, r.line)).collect();
    assert_eq!(flags, [(false, 1), (true, 2)]);
    let ipt: Vec<_> = c.iptables.iter().map(|p| (p.pair.to_string(), p.insert)).collect();
    assert_eq!(ipt[0], ("172.0.1.0+172.0.2.0".to_string(), true));
    assert_eq!(ipt[1], ("172.0.3.0+172.0.4.0".to_string(), false));
    assert_eq!(c.expose, Some("0.0.0.0:2512".parse().unwrap()));
    let t = &c.tokens[0];
    assert_eq!((t.name.as_str(), t.ip), ("token-name", Some(ip("192.168.251.3"))));
    assert!(warns(&c).is_empty(), "the seed's keys are all active: {:?}", warns(&c));
}

#[test]
fn ipv6_routes_normalisation_duplicates() {
    let c = ok("route fd00:1::/64\nroute 10.0.0.0/8\nroute 2001:db8::1/48\n\
        route 10.1.2.3/8 # same as line 2\nport 1000\nmtu 1500\nport 2000\n");
    assert_eq!(nets(&c), ["fd00:1::/64", "10.0.0.0/8", "2001:db8::/48"]);
    assert!(matches!(c.routes[0].net, IpNet::V6(_)));
    assert_eq!(c.port, 2000);
    let want = "line 3: route \"2001:db8::1/48\" has host bits set; using 2001:db8::/48\n\
        line 4: route \"10.1.2.3/8\" has host bits set; using 10.0.0.0/8\n\
        line 4: duplicate route 10.0.0.0/8 (first on line 2) ignored\n\
        line 7: `port` set on lines 5 and 7; last wins";
    assert_eq!(warns(&c).join("\n"), want);
    let want = "line 1: route \"172.56.72.5/24\" has host bits set; using 172.56.72.0/24";
    assert_eq!(warns(&ok("route 172.56.72.5/24")), [want]);
}

#[test]
fn errors_name_line_and_text() {
    let e = fail("# header\nport 2511\nroute 10.0.0.0/33\nmtu 1400\n");
    assert_eq!(e, "line 3: invalid route \"10.0.0.0/33\": invalid prefix length");
    let e = fail("route 10.0.0.0/8\n  route 10.0.0.1 # bare\nroute x/8\n");
    assert_eq!(e, "line 2: invalid route \"10.0.0.1\": missing /prefix length");
    let e = fail("port 2511\nAddr 10.0.0.1/24\n");
    assert_eq!(e, "line 2: unknown key \"Addr\" in \"Addr 10.0.0.1/24\"");
    for (text, needle) in [
        ("port 0", "invalid port \"0\""),
        ("port 65536", "invalid port"),
        ("port", "missing value in \"port\""),
        ("port 1 2", "takes one value, got \"port 1 2\""),
        ("mtu 1279", "invalid mtu"),
        ("mtu 9001", "invalid mtu"),
        ("keepalive 0", "invalid keepalive"),
        ("keepalive 11", "invalid keepalive"),
        ("host localhost", "invalid host"),
        ("transport quic", "invalid transport \"quic\": expected auto, udp or tcp"),
        ("addr 10.0.0.1/31", "/30 or shorter"),
        ("addr 10.0.0.0/24", "network or broadcast"),
        ("addr 10.0.0.255/24", "network or broadcast"),
        ("addr fd00::1/64", "not an IPv4 subnet"),
        ("addr6 fd00::1/127", "/126 or shorter"),
        ("addr6 10.0.0.1/24", "not an IPv6 subnet"),
        ("route 10.0.0.0/8 exposed", "expected `route CIDR [expose]`"),
        ("iptables 172.0.1.0", "A+B or A-B"),
        ("iptables 172.0.1.0+fd00::", "\"fd00::\" is not IPv4"),
        ("expose 0.0.0.0", "ADDR:PORT"),
        ("token a b c", "expected `token NAME [IP]`"),
        ("secret-file", "missing value"),
    ] {
        let e = fail(&format!("# ok\n{text}\nport 1"));
        assert!(e.starts_with("line 2: ") && e.contains(needle), "{e}");
    }
}

#[test]
fn crlf_tabs_and_comments() {
    let c = ok("# whole\r\n\t# indented\r\nport\t3000  # trailing\r\n\
        \troute 10.0.0.0/8\texpose \r\n\r\nroute 11.0.0.0/8#tight\r\n\
        #route 12.0.0.0/8\r\nsecret-file  My Keys/s  \r\n");
    assert_eq!(c.port, 3000);
    assert_eq!(nets(&c), ["10.0.0.0/8", "11.0.0.0/8"]);
    assert_eq!((c.routes[0].expose, c.routes[1].line), (true, 6));
    assert_eq!(c.secret_file, Path::new("/etc/dr/My Keys/s"));
}

#[test]
fn token_checked_against_final_addr() {
    assert_eq!(ok("token a 10.5.0.9\naddr 10.5.0.1/16\n").tokens.len(), 1);
    let e = fail("port 2511\ntoken a 10.5.0.9\n");
    let want = "line 2: invalid token \"a 10.5.0.9\": 10.5.0.9 is outside subnet";
    assert_eq!(e, format!("{want} 192.168.251.0/24"));
    assert!(fail("token g 192.168.251.2").contains("is reserved in subnet"));
}

#[test]
fn diff_routes_and_restart() {
    let old = ok("route 10.0.0.0/8\nroute 172.17.0.0/16\n");
    assert_eq!(diff(&old, &old), ConfigDiff::default());
    let new = ok("route 172.17.0.0/16 expose\nroute fd00::/64\nport 1\nmtu 1500\naddr6 none");
    let d = diff(&old, &new);
    assert_eq!(d.routes_added, [new.routes[1].net]);
    assert_eq!(d.routes_removed, [old.routes[0].net]);
    assert_eq!(d.restart_needed, ["addr6", "port", "mtu"]);
    let new = ok("route 10.0.0.0/8\nkeepalive 3\nsecret-file x\nhost ::\naddr 10.0.0.1/24");
    let d = diff(&old, &new);
    let want = ["addr", "host", "secret-file", "keepalive"];
    assert_eq!(d.restart_needed, want);
    assert_eq!((d.routes_added.len(), d.routes_removed.len()), (0, 1));
}

#[test]
fn load_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.conf");
    let e = Config::load(&missing).unwrap_err();
    assert!(matches!(e, LoadError::Io(..)));
    assert!(e.to_string().contains(&*missing.to_string_lossy()), "{e}");
    let path = dir.path().join("dockroute.conf");
    std::fs::write(&path, "secret-file keys/s\nroute 10.0.0.0/8\n").unwrap();
    let secret = Config::load(&path).unwrap().secret_file;
    assert_eq!(secret, dir.path().join("keys/s"));
    std::fs::write(&path, "route 10.0.0.0/8\nbogus 1\n").unwrap();
    let e = Config::load(&path).unwrap_err();
    assert!(matches!(&e, LoadError::Parse(_, ce) if ce.line == 2));
    let want = format!("{}: line 2: unknown key \"bogus\"", path.display());
    assert!(e.to_string().contains(&want), "{e}");
}

/// Odd configs either parse or are refused naming one of their lines (never a panic,
/// never an error pointing elsewhere).
#[test]
fn odd_input_is_refused_naming_its_line() {
    let long = "route ".to_string() + &"9".repeat(100_000);
    let odd = "#\n\u{feff}port 1\nroute /\nroute 1.2.3.4/\nroute /8\niptables +\n\
        iptables -\niptables 1.2.3.4+-5.6.7.8\ntoken a b c\naddr ::/0\naddr6 ::/0\n\
        addr 0.0.0.0/0\nexpose :\nkeepalive -1\nmtu 99999999999999999999\n\r\n\
        route 1.2.3.4/255\naddr6 ::1/0\ntoken x 255.255.255.255";
    let extra = [long.as_str(), "\r", "addr 1.1.1.1/8\ntoken x 1.0.0.0"];
    let mut refused = 0;
    for text in odd.lines().chain(extra) {
        if let Err(e) = Config::parse(text, Path::new("")) {
            assert!((1..=text.lines().count().max(1)).contains(&e.line), "{text:?}: {e}");
            refused += 1;
        }
    }
    assert!(refused >= 15, "only {refused} of the odd lines were refused");
}

#[test]
fn a_reload_applies_the_live_keys_and_keeps_the_rest_until_a_restart() {
    let running = ok("port 2511\nroute 10.1.0.0/16\n");
    let edited = ok("port 2600\nmtu 1300\naddr 10.9.0.1/24\naddr6 none\nhost 10.0.0.5\nkeepalive 5\n\
        secret-file other.secret\napi-socket /run/x.sock\ndns-suffix test\ntransport tcp\n\
        route 10.2.0.0/16 expose\nexpose 0.0.0.0:2512\ntoken alice\niptables 10.1.0.1+10.2.0.1\n\
        allow-group staff\n");
    let changed = diff(&running, &edited).restart_needed;
    assert_eq!(changed.len(), 10, "every restart key was edited: {changed:?}");
    let applied = applied_live(&running, edited.clone());
    assert_eq!(diff(&running, &applied).restart_needed, Vec::<&str>::new(), "a key diff lists was not kept");
    assert_eq!((applied.port, applied.transport), (running.port, running.transport));
    assert_eq!(applied.routes, edited.routes);
    assert_eq!((applied.expose, &applied.tokens, &applied.iptables), (edited.expose, &edited.tokens, &edited.iptables));
    assert_eq!(applied.allow_groups, edited.allow_groups);
}

#[test]
fn an_attack_by_exposing_everything_is_refused_at_load_with_the_line() {
    for (text, line) in [
        ("route 172.18.0.0/16 expose\nroute 0.0.0.0/0 expose\n", 2),
        ("route 0.0.0.0/0\nroute 0.0.0.0/0 expose\n", 2),
        ("route 127.0.0.0/8 expose\n", 1),
        ("# c\nroute ::/0 expose\n", 2),
        ("route 169.254.0.0/16 expose\n", 1),
        ("route 10.0.0.0/7 expose\n", 1),
    ] {
        let e = Config::parse(text, Path::new(BASE)).unwrap_err();
        assert_eq!(e.line, line, "{text}: {e}");
        assert!(e.to_string().contains("cannot be exposed"), "{e}");
    }
    // Routing such a line alone stays what it was: refused for routing, shown in the status.
    assert_eq!(nets(&ok("route 0.0.0.0/0\n")), ["0.0.0.0/0"]);
    assert_eq!(ok("route 10.0.0.0/8 expose\n").exposed_nets(), ["10.0.0.0/8".parse::<IpNet>().unwrap()]);
}

#[test]
fn share_groups_are_listed_once_and_apply_live() {
    assert!(ok("").share_groups.is_empty(), "root only unless the file names a group");
    let c = ok("share-group dockroute-share\nshare-group wheel\nshare-group wheel\n");
    assert_eq!(c.share_groups, ["dockroute-share", "wheel"]);
    assert_eq!(Config::parse("share-group\n", Path::new(BASE)).unwrap_err().line, 1);
    assert!(diff(&ok(""), &c).restart_needed.is_empty());
    assert_eq!(applied_live(&ok(""), c.clone()).share_groups, c.share_groups);
}

#[test]
fn https_is_on_or_off_live_and_a_bad_value_names_its_line() {
    assert!(!ok("https off").https);
    assert!(ok("https off\nhttps on").https);
    let e = fail("# comment\nhttps yes");
    assert!(e.starts_with("line 2:") && e.contains("expected `on` or `off`"), "{e}");
    assert!(diff(&ok(""), &ok("https off")).restart_needed.is_empty(), "applies without a restart");
    assert!(!applied_live(&ok(""), ok("https off")).https);
}
