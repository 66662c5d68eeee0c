//! The helper's local API: what travels over the Unix socket, shared by server and client so
//! both sides serialise identically.
//!
//! Framing: a 4-byte big-endian length, then one JSON object (at most `MAX_FRAME` bytes).
//! The client's first request must be `hello` with a protocol version the helper speaks.
//!
//! ```text
//! → {"id":1,"op":"hello","version":1,"client":"dockroute-app 0.1.0"}
//! ← {"id":1,"ok":{"kind":"hello","version":1,"server":"dockroute-helper 0.1.0"}}
//! → {"id":2,"op":"set_route_enabled","route":"172.18.0.0/16","enabled":false}
//! ← {"id":2,"ok":{"kind":"done"}}
//! → {"id":3,"op":"frobnicate"}
//! ← {"id":3,"error":{"code":"unknown_op","message":"..."}}
//! ← {"event":{"kind":"status", ...}}          (after "subscribe", whenever state changes)
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::pair::Pair;
use crate::secret::Redacted;
use crate::share::{DockerNetwork, ShareAdd, ShareConfig, ShareStatus, TeammateCounters};

pub const PROTOCOL_VERSION: u32 = 1;
/// Requests and replies are small; a large frame is a bug or an attack.
pub const MAX_FRAME: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Must come first; the helper answers with the version it will speak.
    Hello {
        version: u32,
        client: String,
    },
    Status,
    /// Bring the tunnel up (TUN, UDP listener, routes) / take it down. The helper keeps serving
    /// the API either way.
    Connect,
    Disconnect,
    /// The shared secret (the app keeps it in the keychain). Applies to handshakes from now on.
    SetSecret {
        secret: Redacted,
    },
    /// The app's desired routes, as a whole set; the helper reconciles. The config file's
    /// `route` lines are kept besides them.
    SetRoutes {
        routes: Vec<IpNet>,
    },
    SetRouteEnabled {
        route: IpNet,
        enabled: bool,
    },
    Stats,
    /// From now on this connection also receives `event` frames.
    Subscribe,
    /// The names the helper's DNS server answers, as a whole set (like `set_routes`): `names`
    /// relative to its `dns-suffix` (`web` answers `web.docker`), `domains` absolute (a leading
    /// `*.` answers every name below the rest). Each maps to the addresses of all containers
    /// that claim it.
    SetNames {
        #[serde(default)]
        names: BTreeMap<String, Vec<IpAddr>>,
        #[serde(default)]
        domains: BTreeMap<String, Vec<IpAddr>>,
        /// The HTTPS front's port per name, keyed as in `names` (relative) and `domains`
        /// (absolute); a name without one is served from its port 80. Apps before HTTPS send
        /// neither.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        name_ports: BTreeMap<String, u16>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        domain_ports: BTreeMap<String, u16>,
    },
    /// The Docker networks behind the app's routes, as a whole set (like `set_routes`): what
    /// "the containers of an exposed network" means to the helper (see `DockerNetwork`).
    SetNetworks {
        networks: Vec<DockerNetwork>,
    },
    /// Lets teammates reach the containers of a Docker network (or no longer), by the
    /// network's id: a network that goes takes its exposure along, and a new one on the same
    /// subnet is not exposed until someone says so. Kept in the helper's share state; needs
    /// the right to share (see ARCHITECTURE.md's threat model).
    SetNetworkExposed {
        network: String,
        exposed: bool,
    },
    /// A teammate's key pair and WireGuard config (answer: `share_config`).
    ShareAdd(ShareAdd),
    /// The share: exposed routes, teammates, handshakes, traffic (answer: `share`).
    ShareList,
    /// Cuts a teammate off and forgets their key.
    ShareRevoke {
        name: String,
    },
    /// The app's HTTPS switch (the user's remembered choice): the helper serves HTTPS iff its
    /// config says `https on` (the admin's ceiling) and the app's latest wish is to serve. The
    /// wish starts as "serve", so an app from before the switch changes nothing; the helper
    /// forgets it when it restarts, and the app sends it on every connection.
    SetHttps {
        serve: bool,
    },
    /// Adds the local CA to the system's trust store, where the helper can do it (Linux:
    /// Debian's or p11-kit's store; macOS wants the user's session: see `ca_trusted`). Needs the
    /// right to share: it changes what the whole machine trusts.
    CaTrust,
    /// Removes the CA from every store the helper's record names that the helper can reach
    /// (a macOS login keychain stays: the app removes it there). Needs the right to share.
    CaUntrust,
    /// The app added (`trusted`) or removed the CA in the user's macOS login keychain itself
    /// (macOS asked the user): the helper keeps its record complete, so uninstall knows where
    /// it went. Needs the right to share.
    CaTrusted {
        trusted: bool,
    },
}

/// Everything the helper sends: a reply to a request, or a pushed event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerFrame {
    Event { event: Event },
    Reply(Reply),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// None when the request was too broken to have an id.
    pub id: Option<u64>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
// Replies are built once and serialised at once; boxing would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    Ok(Answer),
    Error(ApiError),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// Built once and serialised at once (like `Outcome`); boxing the status would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum Answer {
    Hello { version: u32, server: String },
    Status(Status),
    Stats(StatsReport),
    Done,
    ShareConfig(ShareConfig),
    Share(ShareStatus),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not JSON, or not a request.
    BadRequest,
    UnknownOp,
    UnsupportedVersion,
    HelloRequired,
    NotAuthorised,
    InvalidArgument,
    /// The frame exceeded `MAX_FRAME`; its bytes were skipped and the connection stays usable.
    TooLarge,
    /// Something failed on the helper's side (e.g. the TUN could not be created).
    Failed,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = serde_json::to_value(self.code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        write!(f, "{} ({code})", self.message)
    }
}

impl std::error::Error for ApiError {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// Built once and serialised at once (like `Outcome`); boxing the status would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    Status(Status),
    Stats(StatsReport),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub helper_version: String,
    /// Whether the user asked for the tunnel; it may still be down (see `error`, `interface`).
    pub requested: TunnelRequest,
    /// Why the tunnel is not up although asked (e.g. the port is taken).
    pub error: Option<String>,
    pub listen: Option<SocketAddr>,
    pub interface: Option<String>,
    pub link: Option<LinkInfo>,
    pub session: Option<SessionInfo>,
    pub routes: Vec<RouteStatus>,
    pub secret_source: SecretSource,
    /// The helper's `transport` setting (the controller hands it to the guest).
    #[serde(default)]
    pub transport: crate::TransportMode,
    /// The config file's `iptables A+B` pairs in force: the app adds them to the guest's rules.
    #[serde(default)]
    pub iptables: Vec<Pair>,
    #[serde(default)]
    pub share: ShareStatus,
    /// The DNS server, while it runs (with the tunnel, unless the config says `dns off`).
    /// Boxed: `Status` travels inside enums, which should not all grow by its size.
    #[serde(default)]
    pub dns: Option<Box<DnsStatus>>,
    /// The HTTPS front and the local CA (config `https on`); None from a helper before HTTPS
    /// or with `https off`.
    #[serde(default)]
    pub https: Option<Box<HttpsStatus>>,
}

/// The HTTPS front and its local CA as `status` reports them (what the app shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpsStatus {
    /// Where TLS is served (port 443 of the link address); None while the tunnel is down or
    /// when it could not listen (see `problems`).
    pub listen: Option<SocketAddr>,
    pub ca: Option<CaStatus>,
    pub problems: Vec<String>,
    /// The app switched the front off (`set_https`); the config would allow it. A helper
    /// before the switch sends nothing: false.
    #[serde(default)]
    pub off_by_app: bool,
    /// How many container addresses have this machine's connections to their port 443 sent to
    /// the front (what makes `https://name/` reach it: DNS answers the container's address).
    #[serde(default)]
    pub redirected: usize,
}

/// The local CA: where its certificate is, until when, what it may sign, and where it is
/// trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaStatus {
    /// The certificate (PEM): what `dockroute-helper ca path` prints and a container mounts.
    pub path: String,
    /// Short fingerprint; names its trust-store entries.
    pub id: String,
    /// Unix seconds.
    pub not_after: u64,
    /// The name constraints in words ("names *.docker, *.test, … and addresses in … only").
    pub constraints: String,
    /// Where `ca trust` added it (the record); empty: trusted nowhere yet.
    pub trusted_in: Vec<String>,
}

/// The helper's DNS server as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsStatus {
    /// Where it answers (UDP and TCP); None when it could not listen (see `error`).
    pub listen: Option<SocketAddr>,
    /// `dns-suffix`: relative names are answered below it.
    pub suffix: String,
    /// The zones it answers for: the suffix and the label domains outside it.
    pub zones: Vec<String>,
    /// Names in the table (relative and absolute).
    pub names: usize,
    /// What was set up on the host so its resolver asks us (or what the user should add).
    pub resolver: String,
    /// What could not be done: a port taken, a resolver file someone else wrote.
    pub problems: Vec<String>,
}

/// The DNS server's counters (every query counts once, in `queries` and one outcome).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsCounters {
    pub queries: u64,
    /// NOERROR: addresses, or none of the asked type (NODATA).
    pub answered: u64,
    pub nxdomain: u64,
    /// Names outside our zones, opcodes we do not serve, zone transfers.
    pub refused: u64,
    /// Dropped (unreadable, or a response) or answered FORMERR/BADVERS.
    pub malformed: u64,
}

/// What the user asked of the tunnel through `connect` / `disconnect`: a wish, not the
/// tunnel's state (a requested tunnel may have failed to come up, and a live session is
/// `Status::session`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TunnelRequest {
    Up,
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    File,
    Api,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    pub host_v4: Ipv4Net,
    pub guest_v4: Ipv4Addr,
    pub host_v6: Option<Ipv6Net>,
    pub guest_v6: Option<Ipv6Addr>,
    pub mtu: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// 8 hex digits of a hash of the session id. The id itself is never shown: data frames
    /// carry no MAC, so whoever knows it and can send from the guest's address could forge them.
    pub fingerprint: String,
    /// The guest's UDP address as the helper sees it.
    pub guest: SocketAddr,
    pub alive: bool,
    pub handshake_age_ms: u64,
    pub last_seen_ms: u64,
    /// The path the session's messages take.
    #[serde(default)]
    pub transport: crate::Transport,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStatus {
    pub net: IpNet,
    pub source: RouteSource,
    pub enabled: bool,
    #[serde(flatten)]
    pub state: RouteState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteSource {
    Config,
    App,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RouteState {
    Installed,
    Disabled,
    /// Waiting for the tunnel to be connected.
    Pending,
    /// Overlaps a route the helper does not own; not installed.
    Conflict {
        interface: String,
        route: IpNet,
    },
    Failed {
        message: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReport {
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub keepalives_sent: u64,
    pub handshakes: u64,
    pub stale_notices: u64,
    pub drops: BTreeMap<String, u64>,
    /// The DNS server's counters, while it runs.
    #[serde(default)]
    pub dns: Option<DnsCounters>,
    /// Per teammate (by name), when sharing.
    #[serde(default)]
    pub teammates: BTreeMap<String, TeammateCounters>,
}

/// Parses a request, telling apart "not JSON / no id" from "unknown op" from "bad arguments".
pub fn parse_request(bytes: &[u8]) -> Result<Request, (Option<u64>, ApiError)> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| (None, ApiError::new(ErrorCode::BadRequest, format!("not JSON: {e}"))))?;
    let id = value.get("id").and_then(serde_json::Value::as_u64);
    let Some(id) = id else {
        return Err((None, ApiError::new(ErrorCode::BadRequest, "a request is an object with a numeric \"id\"")));
    };
    let Some(op) = value.get("op").and_then(serde_json::Value::as_str).map(str::to_owned) else {
        return Err((Some(id), ApiError::new(ErrorCode::BadRequest, "missing \"op\"")));
    };
    const OPS: [&str; 19] = [
        "hello",
        "status",
        "connect",
        "disconnect",
        "set_secret",
        "set_routes",
        "set_route_enabled",
        "stats",
        "subscribe",
        "set_names",
        "set_networks",
        "set_network_exposed",
        "share_add",
        "share_list",
        "share_revoke",
        "set_https",
        "ca_trust",
        "ca_untrust",
        "ca_trusted",
    ];
    if !OPS.contains(&op.as_str()) {
        return Err((
            Some(id),
            ApiError::new(ErrorCode::UnknownOp, format!("unknown op {op:?}; known: {}", OPS.join(", "))),
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| (Some(id), ApiError::new(ErrorCode::InvalidArgument, format!("{op}: {e}"))))
}

/// Human-readable status for `dockroute-helper status` and support requests.
pub fn render_status(s: &Status) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    // The words `dockroute-helper status` has always printed (scripts look for them).
    let state = match s.requested {
        TunnelRequest::Up => "connected",
        TunnelRequest::Down => "disconnected",
    };
    let _ = writeln!(o, "dockroute-helper {}: tunnel {state}", s.helper_version);
    if let Some(e) = &s.error {
        let _ = writeln!(o, "  error: {e}");
    }
    if let (Some(listen), Some(ifname), Some(link)) = (&s.listen, &s.interface, &s.link) {
        let _ = writeln!(
            o,
            "  listening on {} {listen}, device {ifname}, link {} (guest {}), mtu {}",
            if s.transport.allows_tcp() { "udp and tcp" } else { "udp" },
            link.host_v4,
            link.guest_v4,
            link.mtu
        );
        if let (Some(h6), Some(g6)) = (link.host_v6, link.guest_v6) {
            let _ = writeln!(o, "  link v6 {h6} (guest {g6})");
        }
    }
    match &s.session {
        Some(x) => {
            let alive = if x.alive { "alive" } else { "DEAD" };
            let _ = writeln!(
                o,
                "  session {} with guest {}: {alive}, established {:.1} s ago, last heard {:.1} s ago, over {}",
                x.fingerprint,
                x.guest,
                x.handshake_age_ms as f64 / 1000.0,
                x.last_seen_ms as f64 / 1000.0,
                x.transport
            );
        }
        None => {
            let _ = writeln!(o, "  no guest connected");
        }
    }
    let _ = writeln!(o, "  routes:{}", if s.routes.is_empty() { " none" } else { "" });
    for r in &s.routes {
        let state = match &r.state {
            RouteState::Installed => "installed".to_string(),
            RouteState::Disabled => "disabled".to_string(),
            RouteState::Pending => "pending (tunnel down)".to_string(),
            RouteState::Conflict { interface, route } => format!("CONFLICT with {route} on {interface}"),
            RouteState::Failed { message } => format!("FAILED: {message}"),
        };
        let source = match r.source {
            RouteSource::Config => "config",
            RouteSource::App => "app",
        };
        let _ = writeln!(o, "    {:<24} {state} [{source}]", r.net.to_string());
    }
    if let Some(d) = &s.dns {
        let listen = d.listen.map_or("not listening".to_string(), |a| format!("on {a}"));
        let _ = writeln!(o, "  dns {listen} for {} ({} names)", d.zones.join(", "), d.names);
        let _ = writeln!(o, "    host resolver: {}", d.resolver);
        for p in &d.problems {
            let _ = writeln!(o, "    PROBLEM: {p}");
        }
    }
    if let Some(h) = &s.https {
        let listen = match (h.listen, h.off_by_app) {
            (Some(a), _) => format!("on {a}, port 443 of {} container addresses redirected here", h.redirected),
            (None, true) => "switched off in the app".to_string(),
            (None, false) => "not listening".to_string(),
        };
        let _ = writeln!(o, "  https {listen}");
        if let Some(ca) = &h.ca {
            let trusted = if ca.trusted_in.is_empty() { "nowhere yet".to_string() } else { ca.trusted_in.join(", ") };
            let _ = writeln!(o, "    local CA {} ({}), trusted in: {trusted}", ca.id, ca.path);
            let _ = writeln!(o, "    signs {}", ca.constraints);
        }
        for p in &h.problems {
            let _ = writeln!(o, "    PROBLEM: {p}");
        }
    }
    o
}

#[cfg(test)]
mod tests;
