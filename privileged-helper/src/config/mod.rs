//! The helper's config file (`dockroute.conf`). The engine never reads it: the helper fills
//! the tunnel's parameters (`HostConfig`, `TunSpec`, `DriverConfig`) from it.
//!
//! The format is mac-docker-connector's so its users can reuse their files:
//! one `key value...` directive per line, `#` comments. That project's keys Dockroute does not
//! act on (`hosts`, `proxy`, `loglevel`, `pong`) are recognised and warned about (`seed`), so an
//! old config starts as it is.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

mod seed;
pub use seed::next_free;

pub const DEFAULT_ADDR: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 251, 1), 24);
pub const DEFAULT_ADDR6: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0xfdd0, 0xd0c4, 0x2511, 0, 0, 0, 0, 1), 64);
pub const DEFAULT_SECRET_FILE: &str = "dockroute.secret";
use dockroute_api::pair::{Pair, PairOp};
pub use dockroute_api::{TransportMode, DEFAULT_API_SOCKET, DEFAULT_PORT};
/// Owner and group may connect; the helper checks the caller's credentials on top.
pub const DEFAULT_API_SOCKET_MODE: u32 = 0o660;
/// The suffix dnsdock's and dinghy's users know: `web.docker`.
pub const DEFAULT_DNS_SUFFIX: &str = "docker";

/// Single-value keys; repeating one is legal (last wins) but usually a
/// mistake, hence the warning.
#[rustfmt::skip]
const SCALAR_KEYS: [&str; 15] = [
    "addr", "addr6", "port", "mtu", "host", "secret-file", "keepalive", "expose", "api-socket", "api-socket-mode",
    "require-signature", "dns", "dns-suffix", "transport", "https",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Host's link address with the subnet prefix.
    pub addr: Ipv4Net,
    /// `None` when the file says `addr6 none`.
    pub addr6: Option<Ipv6Net>,
    pub port: u16,
    pub mtu: u16,
    pub host: IpAddr,
    pub routes: Vec<Route>,
    pub secret_file: PathBuf,
    pub keepalive: Duration,
    pub iptables: Vec<IptablesPair>,
    pub expose: Option<SocketAddr>,
    pub tokens: Vec<Token>,
    /// True when the file sets `addr`: then the helper never moves the link subnet
    /// to dodge a conflicting route, it reports the conflict instead.
    pub addr_pinned: bool,
    /// Where the helper serves its local API.
    pub api_socket: PathBuf,
    pub api_socket_mode: u32,
    /// Groups whose members may use the API besides root; empty means the platform's default
    /// (`dockroute` on Linux, `admin` on macOS). Reloads live.
    pub allow_groups: Vec<String>,
    /// macOS: a code requirement non-root callers must also satisfy (`require-signature`).
    pub require_signature: Option<String>,
    /// Groups whose members may also hand out teammate keys, revoke them and expose networks
    /// (`share-group`); empty: root only (and, on macOS, the signed app). Reloads live.
    pub share_groups: Vec<String>,
    /// The DNS server for container names (`dns off`, `dns-suffix`).
    pub dns: DnsConfig,
    /// `transport auto|udp|tcp`: whether the helper also listens on TCP (same address and
    /// port) for guests whose UDP path is broken; the guest is told the same.
    pub transport: TransportMode,
    /// `https on|off`: the HTTPS front on port 443 of the link address, with the local CA
    /// (made on first start). Reloads live: off stops the front, on starts it.
    pub https: bool,
    pub warnings: Vec<Warning>,
}

/// `dns on|off` and `dns-suffix SUFFIX`: whether the helper answers container names on its
/// link address, and below which suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    pub enabled: bool,
    /// Lower case, without a final dot.
    pub suffix: String,
}

impl Default for DnsConfig {
    fn default() -> DnsConfig {
        DnsConfig { enabled: true, suffix: DEFAULT_DNS_SUFFIX.to_string() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Always the network address (host bits cleared).
    pub net: IpNet,
    pub expose: bool,
    pub line: usize,
}

/// `iptables A+B` (insert) / `A-B` (remove): lets two container subnets reach each other. The
/// helper reports the pairs in force (`Config::iptables_pairs`) and the app writes them into the
/// guest's rules. The seed wrote IPv4 addresses; so do we.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IptablesPair {
    pub pair: Pair,
    pub insert: bool,
}

/// `token NAME [IP]`: a teammate's address in the link subnet (see the helper's `share`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub name: String,
    /// Always set after parsing: a line without an address gets the next free one.
    pub ip: Option<Ipv4Addr>,
    /// The address was given by the parser, not the line.
    pub assigned: bool,
    /// Kept so the end-of-file subnet check can point at the right line.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl ConfigError {
    pub fn new(line: usize, message: String) -> ConfigError {
        ConfigError { line, message }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug)]
pub enum LoadError {
    Io(PathBuf, io::Error),
    Parse(PathBuf, ConfigError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(p, e) => write!(f, "cannot read config file {}: {e}", p.display()),
            LoadError::Parse(p, e) => write!(f, "config file {}: {e}", p.display()),
        }
    }
}

/// No `source()`: Display already includes the inner error, and error
/// reporters that walk the chain would print it twice.
impl std::error::Error for LoadError {}

/// What changed between two configs, for hot reload: the routes added and removed, and the
/// keys that need a restart (`applied_live` keeps those at their running values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    pub routes_added: Vec<IpNet>,
    pub routes_removed: Vec<IpNet>,
    /// Non-reloadable keys that changed, always in the order of `diff`'s list.
    pub restart_needed: Vec<&'static str>,
}

pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let (old_nets, new_nets) = (old.route_nets(), new.route_nets());
    let minus = |a: &[IpNet], b: &[IpNet]| a.iter().filter(|n| !b.contains(n)).copied().collect();
    let keys = [
        ("addr", old.addr != new.addr),
        ("addr6", old.addr6 != new.addr6),
        ("port", old.port != new.port),
        ("mtu", old.mtu != new.mtu),
        ("host", old.host != new.host),
        ("secret-file", old.secret_file != new.secret_file),
        ("keepalive", old.keepalive != new.keepalive),
        ("api-socket", old.api_socket != new.api_socket || old.api_socket_mode != new.api_socket_mode),
        ("dns", old.dns != new.dns),
        ("transport", old.transport != new.transport),
    ];
    ConfigDiff {
        routes_added: minus(&new_nets, &old_nets),
        routes_removed: minus(&old_nets, &new_nets),
        restart_needed: keys.iter().filter(|k| k.1).map(|k| k.0).collect(),
    }
}

/// `new` as a running helper applies it: the keys `diff` lists as needing a restart keep their
/// running values, so `status` (and the guest the app builds from it) describes what runs,
/// not what the file will mean after a restart.
pub fn applied_live(running: &Config, new: Config) -> Config {
    Config {
        addr: running.addr,
        addr_pinned: running.addr_pinned,
        addr6: running.addr6,
        port: running.port,
        mtu: running.mtu,
        host: running.host,
        secret_file: running.secret_file.clone(),
        keepalive: running.keepalive,
        api_socket: running.api_socket.clone(),
        api_socket_mode: running.api_socket_mode,
        dns: running.dns.clone(),
        transport: running.transport,
        ..new
    }
}

impl Config {
    pub fn default_with_base(base_dir: &Path) -> Config {
        Config {
            addr: DEFAULT_ADDR,
            addr6: Some(DEFAULT_ADDR6),
            port: DEFAULT_PORT,
            mtu: 1400,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            routes: Vec::new(),
            secret_file: base_dir.join(DEFAULT_SECRET_FILE),
            keepalive: Duration::from_secs(2),
            iptables: Vec::new(),
            expose: None,
            tokens: Vec::new(),
            addr_pinned: false,
            api_socket: PathBuf::from(DEFAULT_API_SOCKET),
            api_socket_mode: DEFAULT_API_SOCKET_MODE,
            allow_groups: Vec::new(),
            require_signature: None,
            share_groups: Vec::new(),
            dns: DnsConfig::default(),
            transport: TransportMode::Auto,
            https: true,
            warnings: Vec::new(),
        }
    }

    /// Relative paths in the file resolve against the file's directory, not
    /// the process's working directory.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let owned = || path.to_path_buf();
        let text = std::fs::read_to_string(path).map_err(|e| LoadError::Io(owned(), e))?;
        let base = path.parent().unwrap_or(Path::new(""));
        Config::parse(&text, base).map_err(|e| LoadError::Parse(owned(), e))
    }

    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let mut cfg = Config::default_with_base(base_dir);
        let mut seen = HashMap::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let (key, rest) = content.split_once(char::is_whitespace).unwrap_or((content, ""));
            if let Some(k) = SCALAR_KEYS.iter().find(|k| **k == key) {
                if let Some(prev) = seen.insert(*k, line) {
                    let msg = format!("`{k}` set on lines {prev} and {line}; last wins");
                    cfg.warn(line, msg);
                }
            }
            cfg.directive(key, rest.trim(), content, line, base_dir).map_err(|m| ConfigError::new(line, m))?;
        }
        cfg.check_tokens()?;
        Ok(cfg)
    }

    /// Applies one directive; the caller adds the line number to the error.
    fn directive(&mut self, key: &str, rest: &str, content: &str, line: usize, base_dir: &Path) -> Result<(), String> {
        let args: Vec<&str> = rest.split_whitespace().collect();
        let bad = |val: &str, why: &str| format!("invalid {key} {val:?}: {why}");
        let one = match args.as_slice() {
            [v] => Ok(*v),
            [] => Err(format!("missing value in {content:?}")),
            _ => Err(format!("`{key}` takes one value, got {content:?}")),
        };
        match key {
            "addr" => {
                let v = one?;
                self.addr = match parse_cidr(v).and_then(check_link) {
                    Ok(IpNet::V4(n)) => n,
                    Ok(_) => return Err(bad(v, "not an IPv4 subnet")),
                    Err(m) => return Err(bad(v, &m)),
                };
                self.addr_pinned = true;
            }
            "addr6" => {
                let v = one?;
                self.addr6 = match parse_cidr(v).and_then(check_link) {
                    _ if v == "none" => None,
                    Ok(IpNet::V6(n)) => Some(n),
                    Ok(_) => return Err(bad(v, "not an IPv6 subnet")),
                    Err(m) => return Err(bad(v, &m)),
                };
            }
            "port" => {
                let v = one?;
                self.port = num(v, 1..=65535).ok_or_else(|| bad(v, "must be in 1..=65535"))?;
            }
            "mtu" => {
                let v = one?;
                self.mtu = num(v, 1280..=9000).ok_or_else(|| bad(v, "must be in 1280..=9000"))?;
            }
            "keepalive" => {
                let v = one?;
                let secs = num(v, 1..=10).ok_or_else(|| bad(v, "must be 1..=10 seconds"))?;
                self.keepalive = Duration::from_secs(secs);
            }
            "host" => {
                let v = one?;
                self.host = v.parse().map_err(|_| bad(v, "not an IP address"))?;
            }
            "transport" => {
                let v = one?;
                self.transport = v.parse().map_err(|_| bad(v, "expected auto, udp or tcp"))?;
            }
            // The whole rest of the line, so paths with spaces (macOS
            // "Application Support") work without quoting.
            "secret-file" if rest.is_empty() => return Err(format!("missing value in {content:?}")),
            "secret-file" => self.secret_file = base_dir.join(rest),
            "api-socket" if rest.is_empty() => return Err(format!("missing value in {content:?}")),
            "api-socket" => self.api_socket = base_dir.join(rest),
            "api-socket-mode" => {
                let v = one?;
                let mode = u32::from_str_radix(v.trim_start_matches("0o"), 8).ok().filter(|m| m & !0o666 == 0);
                self.api_socket_mode =
                    mode.ok_or_else(|| bad(v, "expected an octal mode without execute bits, e.g. 0660"))?;
            }
            // The rest of the line: requirement strings contain spaces and quotes.
            "require-signature" if rest.is_empty() => return Err(format!("missing value in {content:?}")),
            "require-signature" => self.require_signature = Some(rest.to_string()),
            "allow-group" => {
                let v = one?;
                if !self.allow_groups.iter().any(|g| g == v) {
                    self.allow_groups.push(v.to_string());
                }
            }
            "share-group" => {
                let v = one?;
                if !self.share_groups.iter().any(|g| g == v) {
                    self.share_groups.push(v.to_string());
                }
            }
            "dns" => {
                self.dns.enabled = match one? {
                    "on" => true,
                    "off" => false,
                    v => return Err(bad(v, "expected `on` or `off`")),
                };
            }
            "https" => {
                self.https = match one? {
                    "on" => true,
                    "off" => false,
                    v => return Err(bad(v, "expected `on` or `off`")),
                };
            }
            "dns-suffix" => {
                let v = one?;
                if let Some(why) = dockroute_api::dns_name::name_problem(v.trim_end_matches('.'), false) {
                    return Err(bad(v, &why));
                }
                self.dns.suffix = dockroute_api::dns_name::normalise(v);
            }
            "route" => {
                let (cidr, expose) = match args.as_slice() {
                    [c] => (*c, false),
                    [c, "expose"] => (*c, true),
                    _ => return Err(format!("expected `route CIDR [expose]`, got {content:?}")),
                };
                let given = parse_cidr(cidr).map_err(|m| bad(cidr, &m))?;
                let net = given.trunc();
                // Such a route is refused for routing; exposing it would hand teammates far more
                // than containers, so the file is refused instead of the line being half-used.
                if let Some(why) = dockroute_engine::platform::table::unroutable(&net).filter(|_| expose) {
                    return Err(bad(cidr, &format!("cannot be exposed: {why}")));
                }
                if net != given {
                    let msg = format!("route {cidr:?} has host bits set; using {net}");
                    self.warn(line, msg);
                }
                if let Some(first) = self.routes.iter_mut().find(|r| r.net == net) {
                    // The seed's way of exposing a route listed earlier: say it again with `expose`.
                    if expose && !first.expose {
                        first.expose = true;
                        return Ok(());
                    }
                    let first = first.line;
                    let msg = format!("duplicate route {net} (first on line {first}) ignored");
                    self.warn(line, msg);
                    return Ok(());
                }
                self.routes.push(Route { net, expose, line });
            }
            "iptables" => {
                let v = one?;
                let (pair, op) = Pair::parse_with_op(v)?;
                if !pair.is_ipv4() {
                    return Err(bad(v, &format!("\"{}\" is not IPv4", pair.a)));
                }
                self.iptables.push(IptablesPair { pair, insert: op == PairOp::Insert });
            }
            "expose" => {
                let v = match args.as_slice() {
                    [v] => *v,
                    [v, "restart"] => {
                        self.warn(line, seed::EXPOSE_RESTART.to_string());
                        *v
                    }
                    [] => return Err(format!("missing value in {content:?}")),
                    _ => return Err(format!("expected `expose ADDR:PORT [restart]`, got {content:?}")),
                };
                self.expose = Some(v.parse().map_err(|_| bad(v, "expected ADDR:PORT"))?);
            }
            "token" => {
                let (name, ip) = match args.as_slice() {
                    [name] => (*name, None),
                    [name, ip] => (*name, Some(ip.parse().map_err(|_| bad(rest, "not an IPv4 address"))?)),
                    _ => return Err(format!("expected `token NAME [IP]`, got {content:?}")),
                };
                self.tokens.push(Token { name: name.to_string(), ip, assigned: false, line });
            }
            _ => match seed::seed_only_key(key, &args) {
                Some(Ok(warning)) => self.warn(line, warning),
                Some(Err(expected)) => return Err(format!("{expected}, got {content:?}")),
                None => return Err(format!("unknown key {key:?} in {content:?}")),
            },
        }
        Ok(())
    }

    /// Run after the whole file because `addr` may come after the tokens.
    fn check_tokens(&mut self) -> Result<(), ConfigError> {
        seed::settle_tokens(&mut self.tokens, crate::link::Link::on(self.addr))
            .map_err(|(line, msg)| ConfigError::new(line, msg))
    }

    /// The `route … expose` subnets: what teammates may reach.
    pub fn exposed_nets(&self) -> Vec<IpNet> {
        self.routes.iter().filter(|r| r.expose).map(|r| r.net).collect()
    }

    /// The `iptables A+B` pairs in force: each insert line, unless a later `A-B` line (either
    /// order) removes it.
    pub fn iptables_pairs(&self) -> Vec<Pair> {
        let same = |x: &Pair, y: &Pair| (x.a, x.b) == (y.a, y.b) || (x.a, x.b) == (y.b, y.a);
        let mut out: Vec<Pair> = Vec::new();
        for p in &self.iptables {
            out.retain(|q| !same(q, &p.pair));
            if p.insert {
                out.push(p.pair);
            }
        }
        out
    }

    fn warn(&mut self, line: usize, message: String) {
        self.warnings.push(Warning { line, message });
    }

    #[cfg(test)]
    pub fn host_link_v4(&self) -> Ipv4Net {
        self.addr
    }

    /// First address after the network address that is not the host's (`Link::on`).
    pub fn guest_link_v4(&self) -> Ipv4Addr {
        crate::link::Link::on(self.addr).guest
    }

    pub fn host_link_v6(&self) -> Option<Ipv6Net> {
        self.addr6
    }

    /// Same rule as `guest_link_v4`.
    pub fn guest_link_v6(&self) -> Option<Ipv6Addr> {
        let n6 = self.addr6?;
        let (net, host) = (u128::from(n6.network()), u128::from(n6.addr()));
        let first = net.wrapping_add(1);
        Some(Ipv6Addr::from(first.wrapping_add(u128::from(first == host))))
    }

    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    pub fn route_nets(&self) -> Vec<IpNet> {
        self.routes.iter().map(|r| r.net).collect()
    }
}

fn num<T: FromStr + PartialOrd>(v: &str, range: RangeInclusive<T>) -> Option<T> {
    v.parse().ok().filter(|n| range.contains(n))
}

/// Own parser instead of `IpNet::from_str` so errors say what is wrong, and
/// a bare address is rejected rather than guessed as a /32.
fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let (a, p) = s.split_once('/').ok_or("missing /prefix length")?;
    let ip: IpAddr = a.parse().map_err(|_| "invalid IP address")?;
    let len: u8 = p.parse().map_err(|_| "invalid prefix length")?;
    IpNet::new(ip, len).map_err(|_| "invalid prefix length".to_string())
}

/// The link needs two assignable addresses: host and guest. The network
/// address (and IPv4 broadcast) cannot be the host's.
fn check_link(n: IpNet) -> Result<IpNet, String> {
    let max = n.max_prefix_len() - 2;
    if n.prefix_len() > max {
        return Err(format!("prefix must be /{max} or shorter (need 2 addresses)"));
    }
    if n.addr() == n.network() || (n.addr().is_ipv4() && n.addr() == n.broadcast()) {
        return Err("host address is the subnet's network or broadcast address".into());
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
