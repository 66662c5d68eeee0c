//! mac-docker-connector's keys that Dockroute does not act on the way that project did, and the
//! `token` address rules. A config copied from any of its versions must start: such a key is
//! recognised, answered with a warning that names its line and says what Dockroute does
//! instead, and otherwise ignored.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::Token;
use crate::link::Link;

/// What a recognised seed-only key means here: the warning to give for it. None: not one of them.
pub(super) fn seed_only_key(key: &str, args: &[&str]) -> Option<Result<String, String>> {
    let warning = match (key, args) {
        ("hosts", [_, ..]) => "`hosts` is ignored: Dockroute never edits hosts files; \
            containers are reached by IP, and by name through the helper's DNS server \
            (`<container>.<dns-suffix>`, see `dns-suffix`)"
            .to_string(),
        ("hosts", []) => return Some(Err("expected `hosts FILE SUFFIX...`".into())),
        ("proxy", [addr]) => format!(
            "`proxy {addr}` is ignored: containers reach the Mac through Docker Desktop's \
             host.docker.internal, no proxy needed"
        ),
        ("proxy", _) => return Some(Err("expected `proxy ADDR:PORT`".into())),
        ("loglevel", [level]) => {
            format!("`loglevel {level}` is ignored: set RUST_LOG instead (e.g. RUST_LOG=debug)")
        }
        ("loglevel", _) => return Some(Err("expected `loglevel LEVEL`".into())),
        ("pong", [_]) => "`pong` is ignored: both ends of the tunnel send keepalives on their own".to_string(),
        ("pong", _) => return Some(Err("expected `pong on|off`".into())),
        _ => return None,
    };
    Some(Ok(warning))
}

/// The warning for `expose ADDR:PORT restart`.
pub(super) const EXPOSE_RESTART: &str =
    "`restart` after `expose` is ignored: the helper re-reads `expose` whenever the file changes";

/// Checks the tokens against the final link subnet (the file may set `addr` after them) and
/// gives each token without an address the next free one. Returns the line and message of the
/// first bad token.
pub(super) fn settle_tokens(tokens: &mut [Token], link: Link) -> Result<(), (usize, String)> {
    let (net, reserved) = (link.host, link.reserved());
    for (i, t) in tokens.iter().enumerate() {
        if let Some(first) = tokens[..i].iter().find(|o| o.name == t.name) {
            return Err((t.line, format!("token {:?} is already given on line {}", t.name, first.line)));
        }
        let Some(ip) = t.ip else { continue };
        let why = if !net.contains(&ip) {
            "outside"
        } else if reserved.contains(&ip) {
            "reserved in"
        } else if let Some(first) = tokens[..i].iter().find(|o| o.ip == Some(ip)) {
            return Err((t.line, format!("token {:?}: {ip} is already token {:?}'s", t.name, first.name)));
        } else {
            continue;
        };
        let msg = format!("invalid token \"{} {ip}\": {ip} is {why} subnet {}", t.name, net.trunc());
        return Err((t.line, msg));
    }
    for i in 0..tokens.len() {
        if tokens[i].ip.is_some() {
            continue;
        }
        let taken: Vec<Ipv4Addr> = tokens.iter().filter_map(|t| t.ip).collect();
        let free = next_free(net, &reserved, &taken).ok_or_else(|| {
            (tokens[i].line, format!("no free address left in {} for token {:?}", net.trunc(), tokens[i].name))
        })?;
        tokens[i].ip = Some(free);
        tokens[i].assigned = true;
    }
    Ok(())
}

/// The lowest address of `net` that is neither reserved nor taken.
pub fn next_free(net: Ipv4Net, reserved: &[Ipv4Addr], taken: &[Ipv4Addr]) -> Option<Ipv4Addr> {
    net.hosts().find(|a| !reserved.contains(a) && !taken.contains(a))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    /// mac-docker-connector's `mac/options.conf.template`, every line uncommented, then the
    /// lines its `desktop/options.conf.template` adds.
    const MAC_TEMPLATE: &str = "addr 192.168.251.1/24\nmtu 1400\nhost 127.0.0.1\nport 2511\n\
        route 172.100.0.0/16\nroute 172.18.0.0/16\nroute 172.100.0.0/16\nexpose 0.0.0.0:2512\n\
        token win10 192.168.251.3\ntoken mac 192.168.251.4\n\
        iptables 172.63.79.0+172.21.81.0\niptables 172.21.81.0-172.63.79.0\n";
    const DESKTOP_EXTRA: &str = "hosts C:\\Windows\\System32\\drivers\\etc\\hosts local\n\
        hosts /etc/hosts local\nproxy 127.0.0.1:80\n";

    fn warnings(c: &Config) -> Vec<String> {
        c.warnings.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_key_of_both_templates_starts_and_the_seed_only_ones_are_explained() {
        for text in [MAC_TEMPLATE.to_string(), format!("{MAC_TEMPLATE}{DESKTOP_EXTRA}")] {
            let c = Config::parse(&text, Path::new("/etc/dr")).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.route_nets().len(), 2, "the repeated route is one route");
            assert_eq!(c.expose, Some("0.0.0.0:2512".parse().unwrap()));
            let tokens: Vec<_> = c.tokens.iter().map(|t| (t.name.as_str(), t.ip.unwrap().to_string())).collect();
            assert_eq!(tokens, [("win10", "192.168.251.3".into()), ("mac", "192.168.251.4".into())]);
            assert_eq!(c.iptables_pairs().len(), 0, "the template's second line removes its first pair");
            let w = warnings(&c);
            assert_eq!(w[0], "line 7: duplicate route 172.100.0.0/16 (first on line 5) ignored");
            if text.contains("proxy") {
                assert_eq!(w.len(), 4, "{w:?}");
                assert!(w[1].starts_with("line 13: `hosts` is ignored"), "{w:?}");
                assert!(w[2].starts_with("line 14: `hosts` is ignored"), "{w:?}");
                assert!(
                    w[3].contains("line 15: `proxy 127.0.0.1:80` is ignored") && w[3].contains("host.docker.internal")
                );
            } else {
                assert_eq!(w.len(), 1, "{w:?}");
            }
        }
    }

    #[test]
    fn loglevel_pong_and_expose_restart_are_recognised_with_what_to_do_instead() {
        let c = Config::parse("loglevel debug\npong on\nexpose 0.0.0.0:2512 restart\n", Path::new("/")).unwrap();
        let w = warnings(&c);
        assert!(w[0].starts_with("line 1: `loglevel debug` is ignored: set RUST_LOG"), "{w:?}");
        assert!(w[1].starts_with("line 2: `pong` is ignored"), "{w:?}");
        assert!(w[2].starts_with("line 3: `restart` after `expose` is ignored"), "{w:?}");
        assert_eq!(c.expose, Some("0.0.0.0:2512".parse().unwrap()));
        for (bad, needle) in [
            ("hosts", "expected `hosts FILE SUFFIX...`"),
            ("proxy", "expected `proxy ADDR:PORT`"),
            ("loglevel", "expected `loglevel LEVEL`"),
            ("pong", "expected `pong on|off`"),
            ("expose 0.0.0.0:1 now", "expected `expose ADDR:PORT [restart]`"),
        ] {
            let e = Config::parse(&format!("port 1\n{bad}\n"), Path::new("/")).unwrap_err();
            assert_eq!(e.line, 2, "{bad}: {e}");
            assert!(e.message.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn a_token_without_address_gets_the_next_free_one_and_duplicates_are_refused() {
        let c = Config::parse("token a\ntoken b 192.168.251.3\ntoken c\n", Path::new("/")).unwrap();
        let got: Vec<_> = c.tokens.iter().map(|t| (t.ip.unwrap().to_string(), t.assigned)).collect();
        assert_eq!(
            got,
            [("192.168.251.4".into(), true), ("192.168.251.3".into(), false), ("192.168.251.5".into(), true)]
        );
        let e = Config::parse("token a 192.168.251.3\ntoken a 192.168.251.4\n", Path::new("/")).unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "token \"a\" is already given on line 1"));
        let e = Config::parse("token a 192.168.251.3\ntoken b 192.168.251.3\n", Path::new("/")).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("already token \"a\"'s"), "{e}");
        let e = Config::parse("addr 10.0.0.1/30\ntoken a\n", Path::new("/")).unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "no free address left in 10.0.0.0/30 for token \"a\""));
    }

    #[test]
    fn a_repeated_route_with_expose_adds_the_flag_to_the_first() {
        let c =
            Config::parse("route 10.1.0.0/16\nroute 10.2.0.0/16 expose\nroute 10.1.0.0/16 expose\n", Path::new("/"))
                .unwrap();
        let got: Vec<_> = c.routes.iter().map(|r| (r.net.to_string(), r.expose, r.line)).collect();
        assert_eq!(got, [("10.1.0.0/16".into(), true, 1), ("10.2.0.0/16".into(), true, 2)]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.exposed_nets(), ["10.1.0.0/16".parse().unwrap(), "10.2.0.0/16".parse().unwrap()]);
    }

    #[test]
    fn pairs_a_later_remove_line_cancels_are_not_active() {
        let c = Config::parse(
            "iptables 172.0.1.0+172.0.2.0\niptables 172.0.3.0+172.0.4.0\niptables 172.0.2.0-172.0.1.0\n",
            Path::new("/"),
        )
        .unwrap();
        let pairs: Vec<String> = c.iptables_pairs().iter().map(ToString::to_string).collect();
        assert_eq!(pairs, ["172.0.3.0+172.0.4.0"]);
        assert!(c.warnings.is_empty(), "`iptables` is active now: {:?}", c.warnings);
    }
}
