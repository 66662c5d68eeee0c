//! What the share's API operations decide, without I/O: the share's persistent state (`Book`)
//! and, per operation, the state to write (`Save`) or the teammate whose key the driver makes
//! (`AddPlan`). The daemon's core (`daemon/ops.rs`, `State::apply`) calls these; making keys
//! (randomness) and writing the state file stay with the driver, which commits a `Save` only
//! once it is written.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use dockroute_api::share::{DockerNetwork, ExposedRoute, ShareAdd, ShareConfig};
use dockroute_api::{ApiError, ErrorCode, Redacted, RouteSource, RouteState};
use ipnet::IpNet;

use super::core::TeammateSpec;
use super::exposure::{self, Exposure, Routing};
use super::policy::Rules;
use super::roster::{self, Member};
use super::state::{self, ExposedNetwork, ShareState, StoredTeammate};
use super::wgconf;
use crate::config::Config;
use crate::link::Link;

/// App toggles kept at most (networks long gone included: their ids are never reused, so a
/// stale one exposes nothing, but the file must not grow without end).
const MAX_EXPOSED_NETWORKS: usize = 1024;

/// The share's persistent part: the state file's content, our public key, and why sharing is
/// off if the file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Book {
    pub state: ShareState,
    pub server_public: String,
    /// The state file could not be read: sharing stays off and the file untouched.
    pub unusable: Option<String>,
}

/// What the share needs to know of the rest of the helper at each change.
pub struct Scene<'a> {
    pub config: &'a Config,
    /// The link the tunnel uses (the config's when it is down).
    pub link: Link,
    /// Config and app routes (what may be exposed), and what became of each.
    pub wanted: &'a BTreeMap<IpNet, RouteSource>,
    pub route_states: &'a BTreeMap<IpNet, RouteState>,
    /// The Docker networks the app reported (`set_networks`).
    pub networks: &'a [DockerNetwork],
}

/// The state file to write for an operation; committed (`Book::commit`) once written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Save {
    pub state: ShareState,
    /// The log line once it is written.
    pub said: String,
}

/// A `share add` that passed every check: the driver makes the key pair, then `Book::keyed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPlan {
    pub name: String,
    pub address: Ipv4Addr,
    pub endpoint: String,
    pub allowed: Vec<IpNet>,
    pub mtu: u16,
    /// Replaces an existing key (`--rotate`).
    pub rotate: bool,
}

impl AddPlan {
    /// The teammate's config with the private half of the key made for them.
    pub fn config(&self, private_key: &str, server_public_key: &str) -> ShareConfig {
        let text = wgconf::render(&wgconf::TeammateConfig {
            name: &self.name,
            private_key,
            address: self.address,
            mtu: self.mtu,
            server_public_key,
            endpoint: &self.endpoint,
            allowed: &self.allowed,
        });
        ShareConfig { name: self.name.clone(), address: self.address, text: Redacted(text) }
    }
}

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, m)
}

impl Book {
    pub fn new(state: ShareState, unusable: Option<String>) -> Book {
        let server_public = match (&unusable, state.key_pair()) {
            (None, Ok(keys)) => keys.public_base64(),
            _ => String::new(),
        };
        Book { state, server_public, unusable }
    }

    fn usable(&self) -> Result<(), ApiError> {
        let failed = |why: &String| ApiError::new(ErrorCode::Failed, format!("sharing is off: {why}"));
        self.unusable.as_ref().map_or(Ok(()), |why| Err(failed(why)))
    }

    /// The written state becomes the one in memory.
    pub fn commit(&mut self, save: Save) {
        self.state = save.state;
    }

    pub fn roster(&self, cx: &Scene<'_>) -> Vec<Member> {
        roster::roster(&cx.config.tokens, &self.state.teammates, cx.link)
    }

    /// The teammates who can connect, for the core.
    pub fn specs(&self, cx: &Scene<'_>) -> Vec<TeammateSpec> {
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
    fn exposure(&self, cx: &Scene<'_>) -> Exposure {
        let routing = Routing { wanted: cx.wanted, states: cx.route_states };
        exposure::decide(&cx.config.exposed_nets(), &self.state.exposed_networks, cx.networks, &routing)
    }

    pub fn exposed(&self, cx: &Scene<'_>) -> Vec<ExposedRoute> {
        self.exposure(cx).routes
    }

    pub fn rules(&self, cx: &Scene<'_>) -> Rules {
        Rules { link: Some(cx.link.host), ..self.exposure(cx).rules }
    }

    /// `share_add`: whether a key may be made for `add.name` (or replaced with `rotate`), and
    /// for which address, endpoint and routes.
    pub fn plan_add(&self, add: ShareAdd, cx: &Scene<'_>) -> Result<AddPlan, ApiError> {
        self.usable()?;
        let name = add.name.trim();
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        {
            return Err(invalid(format!("teammate name {:?}: 1 to 64 letters, digits or -_.@", add.name)));
        }
        let existing = self.state.teammates.iter().any(|t| t.name == name);
        if existing && !add.rotate {
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
        Ok(AddPlan { name: name.to_string(), address, endpoint, allowed, mtu: cx.config.mtu, rotate: existing })
    }

    /// The state with the key made for `plan` (replacing theirs on a rotation).
    pub fn keyed(&self, plan: &AddPlan, public_key: String) -> Save {
        let mut state = self.state.clone();
        let stored = StoredTeammate { name: plan.name.clone(), address: plan.address, public_key };
        match state.teammates.iter().position(|t| t.name == plan.name) {
            Some(i) => state.teammates[i] = stored,
            None => state.teammates.push(stored),
        }
        let how = if plan.rotate { "rotated the key of" } else { "added" };
        Save { state, said: format!("share: {how} {} at {}", plan.name, plan.address) }
    }

    /// `share_revoke`: the state without `name`'s key (their sessions end once it is synced).
    pub fn revoke(&self, name: &str) -> Result<Save, ApiError> {
        self.usable()?;
        let Some(i) = self.state.teammates.iter().position(|t| t.name == name) else {
            return Err(invalid(format!("no teammate named {name:?} has a key")));
        };
        let mut state = self.state.clone();
        state.teammates.remove(i);
        Ok(Save { state, said: format!("share: revoked {name}") })
    }

    /// `set_network_exposed`: the app's toggle, kept in the state by network id (see
    /// docs/design-notes.md for why the state and not the config file). None: nothing to write.
    pub fn set_exposed(&self, id: &str, exposed: bool, cx: &Scene<'_>) -> Result<Option<Save>, ApiError> {
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
        let mut state = self.state.clone();
        state.exposed_networks.retain(|n| n.id != id);
        if exposed {
            let Some(n) = known else {
                return Err(invalid(format!(
                    "no Docker network {id:?} is known (the app reports them with set_networks)"
                )));
            };
            let subnets = n.subnets.iter().map(IpNet::trunc).collect();
            state.exposed_networks.push(ExposedNetwork { id: n.id.clone(), name: n.name.clone(), subnets });
            let excess = state.exposed_networks.len().saturating_sub(MAX_EXPOSED_NETWORKS);
            state.exposed_networks.drain(..excess);
        }
        if state.exposed_networks == self.state.exposed_networks {
            return Ok(None);
        }
        let name = known.map_or(id, |n| n.name.as_str());
        let how = if exposed { "exposed" } else { "no longer exposed" };
        Ok(Some(Save { state, said: format!("share: network {name} ({id}) {how}") }))
    }
}
