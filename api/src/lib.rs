//! Dockroute's shared vocabulary: what the app, the controller, the helper and the guest must
//! agree on, and nothing that only one of them needs.
//!
//! - `types`: the helper API's requests, replies and pushed events (JSON over a Unix socket).
//! - `codec`: its length-prefixed frames, which survive an oversized one.
//! - `client`: the async client the app and `dockroute-helper status` use.
//! - `secret`: the tunnel's shared secret (never printed, wiped when dropped).
//! - `pair`: the seed's `A+B` subnet pair, parsed once.
//! - `share`: teammates over WireGuard (`share_*` operations, their status and counters).
//! - `guest_args`: the guest's command line, rendered by the controller, parsed by the guest.
//! - `dns_name`: what a container's DNS name may be (the controller and the helper check alike).
//! - `address_space`: which subnets are private (routed for the app without a `route` line).
//! - `transport`: the tunnel's path (UDP, or TCP frames when UDP is broken) and its setting.
//! - `launchd`: the helper's job on macOS as both its installer and the app see it (the label,
//!   both ways in, what `launchctl print` says).
//! - `macos_trust`: macOS's `security add-trusted-cert` / `remove-trusted-cert` for the local
//!   CA (command lines, what their outputs mean): the app runs them in the user's session, the
//!   helper's `ca trust` and uninstall too.
//! - the defaults both ends must agree on (port, socket path).
//!
//! API boundary: this crate is what a client of the helper depends on; it never depends on
//! the daemon, the engine or Docker.

pub mod address_space;
pub mod client;
pub mod codec;
pub mod dns_name;
pub mod guest_args;
pub mod launchd;
pub mod macos_trust;
pub mod pair;
mod secret;
pub mod share;
pub mod transport;
pub mod types;

pub use client::{Client, ClientError};
pub use guest_args::GuestArgs;
pub use pair::Pair;
pub use secret::{Redacted, Secret, SecretLengthError, Tag, MAX_SECRET_LEN, MIN_SECRET_LEN};
pub use share::{ShareAdd, ShareConfig, ShareStatus, TeammateCounters, TeammateInfo};
pub use transport::{Transport, TransportMode};
pub use types::*;

/// The UDP port the helper listens on and the guest connects to (mac-docker-connector's).
pub const DEFAULT_PORT: u16 = 2511;
/// Where the helper serves its API.
pub const DEFAULT_API_SOCKET: &str = "/var/run/dockroute.sock";
/// The name the guest resolves to reach the host (Docker Desktop provides it).
pub const HOST_NAME_IN_VM: &str = "host.docker.internal";
/// Tried when `HOST_NAME_IN_VM` does not resolve.
pub const GATEWAY_NAME_IN_VM: &str = "gateway.docker.internal";
