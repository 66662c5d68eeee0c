//! Sharing containers with teammates over WireGuard: the seed's `expose`, `route … expose` and
//! `token`, with the standard WireGuard app on the teammate's side.
//!
//! - `core`: the sans-IO core (boringtun `Tunn` per teammate, policy, counters).
//! - `book`: what the share's API operations decide (no I/O), called by `State::apply`.
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
//! The daemon's `State` holds the `Book` (the state file's content); `Share` is the driver: the
//! core (idle, or inside its task while `expose` is set and the tunnel is up) and the file.

pub mod book;
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

use boringtun::x25519::StaticSecret;
use dockroute_api::share::{ShareStatus, TeammateCounters, TeammateInfo};
use dockroute_api::{ApiError, ErrorCode};

use self::book::{Book, Save, Scene};
use self::core::{Counters, ShareCore, TeammateView, HANDSHAKES_BEFORE_COOKIES};
use self::runtime::{Running, SideEnds};
use self::state::{KeyPair, ShareState};

enum Slot {
    Idle(Box<ShareCore>),
    Running(Running),
    /// Only while moving between the two.
    Moving,
}

/// The share's driver: the state file, and the core with its task.
pub struct Share {
    path: PathBuf,
    server_key: StaticSecret,
    slot: Slot,
    /// Why the expose socket is not open although it should be.
    error: Option<String>,
    expose: Option<SocketAddr>,
}

impl Share {
    /// Loads the state beside the config file (a new key when there is none yet).
    pub fn load(config_path: &Path) -> std::io::Result<(Share, Book)> {
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
        let share = Share::with_key(path, keys);
        Ok((share, Book::new(state, None)))
    }

    /// `load`, or a share that refuses every operation and says why (a damaged state file is
    /// the user's to look at, never overwritten).
    pub fn load_or_unusable(config_path: &Path) -> (Share, Book) {
        Share::load(config_path).unwrap_or_else(|e| {
            tracing::error!("sharing is off: {e}");
            let keys = KeyPair::from_private([0; 32]);
            let state = ShareState {
                private_key: keys.private_base64(),
                teammates: Vec::new(),
                exposed_networks: Vec::new(),
                legacy_exposed: Vec::new(),
            };
            let share = Share::with_key(state::path_for(config_path), keys);
            (share, Book::new(state, Some(e.to_string())))
        })
    }

    fn with_key(path: PathBuf, keys: KeyPair) -> Share {
        let server_key = keys.private.clone();
        let slot = Slot::Idle(Box::new(ShareCore::new(keys, HANDSHAKES_BEFORE_COOKIES)));
        Share { path, server_key, slot, error: None, expose: None }
    }

    /// Writes the state file an operation decided on (the caller commits it once written).
    pub fn save(&self, save: &Save) -> Result<(), ApiError> {
        state::save(&self.path, &save.state).map_err(|e| ApiError::new(ErrorCode::Failed, e.to_string()))
    }

    /// Brings the core and its task in line with the config, the state and the tunnel: the
    /// teammates and rules, and the expose socket (open while `expose` is set and the tunnel up).
    pub async fn sync(&mut self, book: &Book, cx: &Scene<'_>, side: Option<SideEnds>) {
        let (specs, rules) = (book.specs(cx), book.rules(cx));
        let want = cx.config.expose.filter(|_| side.is_some() && book.unusable.is_none());
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
                if let (Some(expose), Some(side)) = (want, side) {
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
        ShareCore::new(KeyPair::from_private(self.server_key.to_bytes()), HANDSHAKES_BEFORE_COOKIES)
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

    pub async fn status(&self, book: &Book, cx: &Scene<'_>) -> ShareStatus {
        let (views, unattributed) = self.views().await;
        let teammates = book
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
            error: book.unusable.clone().or_else(|| self.error.clone()),
            exposed: book.exposed(cx),
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
