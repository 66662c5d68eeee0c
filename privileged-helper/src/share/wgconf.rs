//! A teammate's WireGuard config in wg-quick's format, which every official WireGuard app
//! imports (as a file or a QR code), and its QR code for a terminal.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use dockroute_api::dns_name::name_problem;
use ipnet::IpNet;

/// What goes into a teammate's config.
pub struct TeammateConfig<'a> {
    pub name: &'a str,
    pub private_key: &'a str,
    pub address: Ipv4Addr,
    /// The tunnel MTU: the largest packet the helper can carry to the containers.
    pub mtu: u16,
    pub server_public_key: &'a str,
    pub endpoint: &'a str,
    pub allowed: &'a [IpNet],
}

/// Keeps NAT mappings and stateful firewalls on the teammate's side open while idle.
pub const PERSISTENT_KEEPALIVE: u16 = 25;

pub fn render(c: &TeammateConfig<'_>) -> String {
    let allowed: Vec<String> = c.allowed.iter().map(ToString::to_string).collect();
    let mut o = String::new();
    let _ = writeln!(o, "# Dockroute: {}'s access to the containers of {}", c.name, c.endpoint);
    let _ = writeln!(o, "[Interface]");
    let _ = writeln!(o, "PrivateKey = {}", c.private_key);
    let _ = writeln!(o, "Address = {}/32", c.address);
    let _ = writeln!(o, "MTU = {}", c.mtu);
    let _ = writeln!(o);
    let _ = writeln!(o, "[Peer]");
    let _ = writeln!(o, "PublicKey = {}", c.server_public_key);
    let _ = writeln!(o, "Endpoint = {}", c.endpoint);
    let _ = writeln!(o, "AllowedIPs = {}", allowed.join(", "));
    let _ = writeln!(o, "PersistentKeepalive = {PERSISTENT_KEEPALIVE}");
    o
}

/// The endpoint to print: `--endpoint`, else the expose address when it names one host.
/// A given one is HOST:PORT with a port above 0 and a host that is an IPv4 address, an IPv6
/// address in brackets or a hostname: anything else (a `#` would start a comment for wg-quick
/// and cut the line short) is refused here rather than by the teammate's WireGuard app.
pub fn endpoint(given: Option<&str>, expose: SocketAddr) -> Result<String, String> {
    if let Some(e) = given {
        let bad = || format!("endpoint {e:?}: expected HOST:PORT (a hostname, an IPv4 address or [an IPv6 address])");
        let (host, port) = e.rsplit_once(':').ok_or_else(bad)?;
        let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
            None => {
                host.parse::<Ipv4Addr>().is_ok()
                    || name_problem(host.strip_suffix('.').unwrap_or(host), false).is_none()
            }
        };
        if !host_ok || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad());
        }
        return Ok(e.to_string());
    }
    if expose.ip().is_unspecified() || expose.ip().is_loopback() {
        return Err(format!(
            "`expose {expose}` does not say where teammates reach this machine: \
             pass --endpoint HOST:PORT (e.g. your-mac.lan:{})",
            expose.port()
        ));
    }
    Ok(expose.to_string())
}

/// The config as a QR code drawn with Unicode half blocks, for `share add --qr`.
pub fn qr_for_terminal(text: &str) -> Result<String, String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| format!("cannot make a QR code: {e}"))?;
    Ok(code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).quiet_zone(true).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_has_what_wg_quick_needs_in_its_format() {
        let nets: Vec<IpNet> = vec!["198.19.1.0/24".parse().unwrap(), "198.19.3.0/24".parse().unwrap()];
        let text = render(&TeammateConfig {
            name: "alice",
            private_key: "cHJpdmF0ZQ==",
            address: "198.18.5.3".parse().unwrap(),
            mtu: 1400,
            server_public_key: "cHVibGlj",
            endpoint: "mac.lan:2512",
            allowed: &nets,
        });
        let want = "[Interface]\nPrivateKey = cHJpdmF0ZQ==\nAddress = 198.18.5.3/32\nMTU = 1400\n\n[Peer]\n\
            PublicKey = cHVibGlj\nEndpoint = mac.lan:2512\nAllowedIPs = 198.19.1.0/24, 198.19.3.0/24\n\
            PersistentKeepalive = 25\n";
        assert!(text.starts_with("# Dockroute: alice's access"), "{text}");
        assert!(text.ends_with(want), "{text}");
    }

    #[test]
    fn the_endpoint_is_given_or_a_specific_expose_address() {
        let wild: SocketAddr = "0.0.0.0:2512".parse().unwrap();
        assert_eq!(endpoint(Some("mac.lan:2512"), wild), Ok("mac.lan:2512".into()));
        assert_eq!(endpoint(Some("[2001:db8::1]:2512"), wild), Ok("[2001:db8::1]:2512".into()));
        assert_eq!(endpoint(None, "198.18.7.1:2512".parse().unwrap()), Ok("198.18.7.1:2512".into()));
        assert!(endpoint(None, wild).unwrap_err().contains("--endpoint"));
        for bad in ["mac.lan", ":2512", "mac.lan:0", "mac.lan:x", "a b:1"] {
            assert!(endpoint(Some(bad), wild).is_err(), "{bad}");
        }
        assert_eq!(endpoint(Some("mac.lan.:2512"), wild), Ok("mac.lan.:2512".into()), "a final dot is a hostname");
    }

    /// Found by the `wg_endpoint` fuzz target: `[2001:db8::1_:2512` was taken (no closing
    /// bracket, a `_`) and printed into the teammate's config, where WireGuard cannot use it.
    #[test]
    fn endpoint_hosts_that_are_no_address_or_hostname_are_refused() {
        let wild: SocketAddr = "0.0.0.0:2512".parse().unwrap();
        for bad in [
            "[2001:db8::1_:2512",
            "2001:db8::1:2512",
            "[mac.lan]:2512",
            "mac#lan:2512",
            "mac.lan#:2512",
            "café.lan:2512",
            "my_mac.lan:2512",
            "-mac.lan:2512",
            "mac..lan:2512",
        ] {
            let e = endpoint(Some(bad), wild).unwrap_err();
            assert!(e.contains("expected HOST:PORT"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_qr_code_is_drawn_in_half_blocks() {
        let qr = qr_for_terminal("[Interface]\nPrivateKey = x\n").unwrap();
        assert!(qr.lines().count() > 10 && qr.contains('▀'), "{qr}");
    }
}
