//! Sharing containers with teammates over WireGuard: the seed's `expose`, `route … expose` and
//! `token`, with the standard WireGuard app on the teammate's side.
//!
//! - `core`: the sans-IO core (boringtun `Tunn` per teammate, policy, counters).
//! - `policy`: who may send what where (pure); `flows`: what each teammate opened (pure).
//! - `exposure`: what is exposed, from the config, the app's toggles, the Docker networks and
//!   the routes' states (pure).
//! - `roster`: who the teammates are, from the config's `token` lines and the state's keys.
//! - `budget`: handshakes per source address.
//! - `state`: the state file (our key, teammates' public keys, the app's exposed routes).
//! - `wgconf`: a teammate's wg-quick config and its QR code.
//! - `runtime`: the tokio task around the core (expose socket, the tunnel's side port).
//! - `cli`: `dockroute-helper share add|list|revoke`.
//!
//! `Share` is what the daemon holds: the state, and the core (idle, or inside its task while
//! `expose` is set and the tunnel is up).

pub mod budget;
pub mod cli;
pub mod core;
pub mod exposure;
pub mod flows;
pub mod policy;
pub mod roster;
pub mod runtime;
pub mod state;
pub mod wgconf;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use dockroute_api::share::{
    DockerNetwork, ExposedRoute, ShareAdd, ShareConfig, ShareStatus, TeammateCounters, TeammateInfo,
};
use dockroute_api::{ApiError, ErrorCode, Redacted, RouteSource, RouteState};
use dockroute_engine::config::Config;
use ipnet::IpNet;

use self::core::{Counters, ShareCore, TeammateSpec, TeammateView, HANDSHAKES_BEFORE_COOKIES};
use self::exposure::{Exposure, Routing};
use self::policy::Rules;
use self::roster::{Link, Member};
use self::runtime::{Running, SideEnds};
use self::state::{ExposedNetwork, KeyPair, ShareState, StoredTeammate};

/// App toggles kept at most (networks long gone included: their ids are never reused, so a
/// stale one exposes nothing, but the file must not grow without end).
const MAX_EXPOSED_NETWORKS: usize = 1024;

/// What the share needs to know of the rest of the helper at each change.
pub struct Context<'a> {
    pub config: &'a Config,
    /// The link the tunnel uses (the config's when it is down).
    pub link: Link,
    /// Config and app routes (what may be exposed), and what became of each.
    pub wanted: &'a BTreeMap<IpNet, RouteSource>,
    pub route_states: &'a BTreeMap<IpNet, RouteState>,
    /// The Docker networks the app reported (`set_networks`).
    pub networks: &'a [DockerNetwork],
    /// The tunnel's side port while it is up.
    pub side: Option<SideEnds>,
}

enum Slot {
    Idle(Box<ShareCore>),
    Running(Running),
    /// Only while moving between the two.
    Moving,
}

pub struct Share {
    path: PathBuf,
    state: ShareState,
    server_public: String,
    slot: Slot,
    /// Why the expose socket is not open although it should be.
    error: Option<String>,
    expose: Option<SocketAddr>,
    /// The state file could not be read: sharing stays off and the file untouched.
    unusable: Option<String>,
}

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, m)
}

fn failed(m: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Failed, m)
}

impl Share {
    /// Loads the state beside the config file (a new key when there is none yet).
    pub fn load(config_path: &Path) -> std::io::Result<Share> {
        let path = state::path_for(config_path);
        let (state, _) = state::load_or_new(&path)?;
        if !state.legacy_exposed.is_empty() {
            tracing::warn!(
                "share: {:?} were exposed by subnet by an earlier version; exposure now follows a Docker network: \
                 switch Shared on again for the networks teammates should reach",
                state.legacy_exposed
            );
        }
        let keys = state.key_pair().map_err(std::io::Error::other)?;
        let server_public = keys.public_base64();
        let core = ShareCore::new(keys, HANDSHAKES_BEFORE_COOKIES);
        let slot = Slot::Idle(Box::new(core));
        Ok(Share { path, state, server_public, slot, error: None, expose: None, unusable: None })
    }

    /// `load`, or a share that refuses every operation and says why (a damaged state file is
    /// the user's to look at, never overwritten).
    pub fn load_or_unusable(config_path: &Path) -> Share {
        Share::load(config_path).unwrap_or_else(|e| {
            tracing::error!("sharing is off: {e}");
            let keys = KeyPair::from_private([0; 32]);
            let state = ShareState {
                private_key: keys.private_base64(),
                teammates: Vec::new(),
                exposed_networks: Vec::new(),
                legacy_exposed: Vec::new(),
            };
            let slot = Slot::Idle(Box::new(ShareCore::new(keys, HANDSHAKES_BEFORE_COOKIES)));
            let path = state::path_for(config_path);
            Share {
                path,
                state,
                server_public: String::new(),
                slot,
                error: None,
                expose: None,
                unusable: Some(e.to_string()),
            }
        })
    }

    fn usable(&self) -> Result<(), ApiError> {
        self.unusable.as_ref().map_or(Ok(()), |why| Err(failed(format!("sharing is off: {why}"))))
    }

    /// Brings the core and its task in line with the config, the state and the tunnel: the
    /// teammates and rules, and the expose socket (open while `expose` is set and the tunnel up).
    pub async fn sync(&mut self, cx: &Context<'_>) {
        let (specs, rules) = (self.specs(cx), self.rules(cx));
        let want = cx.config.expose.filter(|_| cx.side.is_some() && self.unusable.is_none());
        let running_on = match &self.slot {
            Slot::Running(r) => Some(self.expose.unwrap_or(r.listen)),
            _ => None,
        };
        if running_on != want {
            self.stop().await;
        }
        let (s, r) = (specs.clone(), rules.clone());
        let apply = move |core: &mut ShareCore| {
            core.set_teammates(&s);
            core.set_rules(r);
        };
        match std::mem::replace(&mut self.slot, Slot::Moving) {
            Slot::Idle(mut core) => {
                apply(&mut core);
                self.slot = Slot::Idle(core);
                if let (Some(expose), Some(side)) = (want, cx.side.clone()) {
                    self.start(expose, side).await;
                }
            }
            Slot::Running(run) => {
                let _ = run.query(move |c, _| apply(c)).await;
                self.slot = Slot::Running(run);
            }
            Slot::Moving => {
                let mut core = self.fresh_core();
                apply(&mut core);
                self.slot = Slot::Idle(Box::new(core));
            }
        }
        if want.is_none() {
            self.error = None;
        }
    }

    async fn start(&mut self, expose: SocketAddr, side: SideEnds) {
        let Slot::Idle(core) = std::mem::replace(&mut self.slot, Slot::Moving) else { return };
        match runtime::start(*core, expose, side).await {
            Ok(run) => {
                tracing::info!("share: listening on udp {} (expose)", run.listen);
                self.slot = Slot::Running(run);
                (self.error, self.expose) = (None, Some(expose));
            }
            Err((core, why)) => {
                tracing::error!("share: {why}");
                self.slot = Slot::Idle(core);
                (self.error, self.expose) = (Some(why), None);
            }
        }
    }

    /// Closes the expose socket, keeping the core (sessions, counters) for the next start.
    pub async fn stop(&mut self) {
        self.slot = match std::mem::replace(&mut self.slot, Slot::Moving) {
            Slot::Running(run) => {
                let core = run.stop().await.unwrap_or_else(|| self.fresh_core());
                tracing::info!("share: expose socket closed");
                Slot::Idle(Box::new(core))
            }
            Slot::Idle(core) => Slot::Idle(core),
            Slot::Moving => Slot::Idle(Box::new(self.fresh_core())),
        };
        self.expose = None;
    }

    fn fresh_core(&self) -> ShareCore {
        let keys = self.state.key_pair().unwrap_or_else(|_| KeyPair::from_private([0; 32]));
        ShareCore::new(keys, HANDSHAKES_BEFORE_COOKIES)
    }

    fn roster(&self, cx: &Context<'_>) -> Vec<Member> {
        roster::roster(&cx.config.tokens, &self.state.teammates, cx.link)
    }

    fn specs(&self, cx: &Context<'_>) -> Vec<TeammateSpec> {
        self.roster(cx)
            .into_iter()
            .filter(Member::active)
            .filter_map(|m| {
                let key = state::parse_key(m.public_key.as_deref()?).ok()?;
                Some(TeammateSpec { name: m.name, address: m.address?, public_key: key })
            })
            .collect()
    }

    /// What is exposed now (`exposure::decide`).
    fn exposure(&self, cx: &Context<'_>) -> Exposure {
        let routing = Routing { wanted: cx.wanted, states: cx.route_states };
        exposure::decide(&cx.config.exposed_nets(), &self.state.exposed_networks, cx.networks, &routing)
    }

    fn exposed(&self, cx: &Context<'_>) -> Vec<ExposedRoute> {
        self.exposure(cx).routes
    }

    fn rules(&self, cx: &Context<'_>) -> Rules {
        Rules { link: Some(cx.link.host), ..self.exposure(cx).rules }
    }

    fn save(&self) -> Result<(), ApiError> {
        state::save(&self.path, &self.state).map_err(|e| failed(e.to_string()))
    }

    /// `share_add`: a new key pair for `name` (or a replacement with `rotate`), its public half
    /// stored, the config with the private half returned.
    pub async fn add(&mut self, add: ShareAdd, cx: &Context<'_>) -> Result<ShareConfig, ApiError> {
        self.usable()?;
        let name = add.name.trim();
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        {
            return Err(invalid(format!("teammate name {:?}: 1 to 64 letters, digits or -_.@", add.name)));
        }
        let existing = self.state.teammates.iter().position(|t| t.name == name);
        if existing.is_some() && !add.rotate {
            return Err(invalid(format!(
                "{name} already has a key; --rotate replaces it (their old config stops working)"
            )));
        }
        let expose = cx.config.expose.ok_or_else(|| invalid("sharing is off: add `expose ADDR:PORT` to the config"))?;
        let endpoint = wgconf::endpoint(add.endpoint.as_deref(), expose).map_err(invalid)?;
        let allowed: Vec<IpNet> = self.exposed(cx).into_iter().map(|r| r.net).filter(|n| n.addr().is_ipv4()).collect();
        if allowed.is_empty() {
            return Err(invalid(
                "nothing is exposed yet: add `route CIDR expose` to the config (or expose a network in the app)",
            ));
        }
        let address =
            roster::address_for(name, add.ip, &cx.config.tokens, &self.state.teammates, cx.link).map_err(invalid)?;
        let keys = KeyPair::generate().map_err(|e| failed(e.to_string()))?;
        let stored = StoredTeammate { name: name.to_string(), address, public_key: keys.public_base64() };
        let before = self.state.teammates.clone();
        match existing {
            Some(i) => self.state.teammates[i] = stored,
            None => self.state.teammates.push(stored),
        }
        if let Err(e) = self.save() {
            self.state.teammates = before;
            return Err(e);
        }
        self.sync(cx).await;
        let text = wgconf::render(&wgconf::TeammateConfig {
            name,
            private_key: &keys.private_base64(),
            address,
            mtu: cx.config.mtu,
            server_public_key: &self.server_public,
            endpoint: &endpoint,
            allowed: &allowed,
        });
        tracing::info!(
            "share: {} {name} at {address}",
            if existing.is_some() { "rotated the key of" } else { "added" }
        );
        Ok(ShareConfig { name: name.to_string(), address, text: Redacted(text) })
    }

    /// `share_revoke`: the key is forgotten and the teammate's sessions end now.
    pub async fn revoke(&mut self, name: &str, cx: &Context<'_>) -> Result<(), ApiError> {
        self.usable()?;
        let Some(i) = self.state.teammates.iter().position(|t| t.name == name) else {
            return Err(invalid(format!("no teammate named {name:?} has a key")));
        };
        let removed = self.state.teammates.remove(i);
        if let Err(e) = self.save() {
            self.state.teammates.insert(i, removed);
            return Err(e);
        }
        self.sync(cx).await;
        tracing::info!("share: revoked {name}");
        Ok(())
    }

    /// `set_network_exposed`: the app's toggle, kept in the state by network id (see
    /// ARCHITECTURE.md for why the state and not the config file).
    pub async fn set_exposed(&mut self, id: &str, exposed: bool, cx: &Context<'_>) -> Result<(), ApiError> {
        self.usable()?;
        // By id, else by name when only one network has it (the CLI's `share expose NAME`).
        let named: Vec<&DockerNetwork> = cx.networks.iter().filter(|n| n.name == id).collect();
        let known = cx.networks.iter().find(|n| n.id == id).or(if named.len() == 1 { Some(named[0]) } else { None });
        let id = known.map_or(id, |n| n.id.as_str());
        if !exposed {
            let subnets = known.map(|n| n.subnets.as_slice()).unwrap_or_default();
            if let Some(r) = cx.config.routes.iter().find(|r| r.expose && subnets.iter().any(|s| s.trunc() == r.net)) {
                return Err(invalid(format!(
                    "{} is exposed by the config file (`route {} expose`, line {}): change it there",
                    known.map_or(id, |n| n.name.as_str()),
                    r.net,
                    r.line
                )));
            }
        }
        let before = self.state.exposed_networks.clone();
        self.state.exposed_networks.retain(|n| n.id != id);
        if exposed {
            let Some(n) = known else {
                return Err(invalid(format!(
                    "no Docker network {id:?} is known (the app reports them with set_networks)"
                )));
            };
            let subnets = n.subnets.iter().map(IpNet::trunc).collect();
            self.state.exposed_networks.push(ExposedNetwork { id: n.id.clone(), name: n.name.clone(), subnets });
            let excess = self.state.exposed_networks.len().saturating_sub(MAX_EXPOSED_NETWORKS);
            self.state.exposed_networks.drain(..excess);
        }
        if self.state.exposed_networks != before {
            if let Err(e) = self.save() {
                self.state.exposed_networks = before;
                return Err(e);
            }
            let name = known.map_or(id, |n| n.name.as_str());
            tracing::info!("share: network {name} ({id}) {}", if exposed { "exposed" } else { "no longer exposed" });
        }
        self.sync(cx).await;
        Ok(())
    }

    async fn views(&self) -> (Vec<TeammateView>, Counters) {
        match &self.slot {
            Slot::Running(run) => {
                run.query(|c, now| (c.teammates(now), c.unattributed().clone())).await.unwrap_or_default()
            }
            Slot::Idle(core) => (core.teammates(std::time::Instant::now()), core.unattributed().clone()),
            Slot::Moving => Default::default(),
        }
    }

    pub async fn status(&self, cx: &Context<'_>) -> ShareStatus {
        let (views, unattributed) = self.views().await;
        let teammates = self
            .roster(cx)
            .into_iter()
            .map(|m| {
                let view = views.iter().find(|v| v.name == m.name);
                TeammateInfo {
                    endpoint: view.and_then(|v| v.endpoint),
                    last_handshake_ms: view.and_then(|v| v.last_handshake).map(|d| d.as_millis() as u64),
                    counters: view.map(|v| api_counters(&v.counters)).unwrap_or_default(),
                    name: m.name,
                    address: m.address,
                    public_key: m.public_key,
                    problem: m.problem,
                }
            })
            .collect();
        ShareStatus {
            expose: cx.config.expose,
            listening: matches!(self.slot, Slot::Running(_)),
            error: self.unusable.clone().or_else(|| self.error.clone()),
            exposed: self.exposed(cx),
            teammates,
            unattributed_drops: unattributed.drops_by_name(),
        }
    }

    /// Per-teammate counters for `stats`.
    pub async fn counters(&self) -> BTreeMap<String, TeammateCounters> {
        self.views().await.0.into_iter().map(|v| (v.name, api_counters(&v.counters))).collect()
    }
}

fn api_counters(c: &Counters) -> TeammateCounters {
    TeammateCounters {
        rx_packets: c.rx_packets,
        rx_bytes: c.rx_bytes,
        tx_packets: c.tx_packets,
        tx_bytes: c.tx_bytes,
        drops: c.drops_by_name(),
    }
}

/// Whether an operation is the share's (the daemon hands those to `Share`).
pub fn is_share_op(op: &dockroute_api::Op) -> bool {
    use dockroute_api::Op;
    matches!(op, Op::SetNetworkExposed { .. } | Op::ShareAdd(_) | Op::ShareList | Op::ShareRevoke { .. })
}
