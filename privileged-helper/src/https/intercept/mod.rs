//! Why `https://web.docker/` reaches the front: DNS answers a name with its container's
//! address, so a browser connects to port 443 *of the container*. Locally made connections to
//! port 443 of a named container are redirected by the OS's packet filter to the front on the
//! link address (`linux.rs`: an nftables table; `macos.rs`: a pf anchor). Only containers the
//! front serves are redirected; a container whose HTTPS port is 443 (its label, or 443 among
//! its exposed ports) speaks TLS itself and is left alone, and so is every other address.
//! Connections from other machines (a share) are not redirected: only this machine's own.
//!
//! The plan is pure (which addresses, to where); each platform renders it into its filter's
//! language and swaps the whole set at once, so a change never leaves a moment with half a
//! rule set, and removing it is idempotent.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::IpNet;

use crate::dns::names::NameSpec;

use super::route::DEFAULT_PORT;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::Nftables as PlatformRedirect;
#[cfg(target_os = "macos")]
mod macos;
pub mod pf;
#[cfg(target_os = "macos")]
pub use macos::PfAnchor as PlatformRedirect;
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub type PlatformRedirect = NoRedirect;

/// What is redirected: TCP to port 443 of `addresses`, to `front`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub front: SocketAddr,
    pub addresses: BTreeSet<IpAddr>,
}

impl Plan {
    /// The addresses of `spec`'s names served by the front at `front`: IPv4 only while the
    /// front listens on IPv4 (an IPv6 connection is not redirected, so a client's happy eyeballs
    /// fall back to IPv4 at once); addresses of a container that serves 443 itself are left out,
    /// and so is every address outside `routed` (the tunnel's routes): a name may point
    /// anywhere, but only traffic that goes through the tunnel anyway is ever redirected.
    pub fn for_names(spec: &NameSpec, suffix: &str, front: SocketAddr, routed: &[IpNet]) -> Plan {
        let mut served = BTreeSet::new();
        let mut own_tls = BTreeSet::new();
        let named = spec.names.iter().map(|(rel, addrs)| (format!("{rel}.{suffix}"), addrs));
        let domains = spec.domains.iter().map(|(d, addrs)| (d.clone(), addrs));
        for (full, addrs) in named.chain(domains) {
            let port = spec.ports.get(&full).copied().unwrap_or(DEFAULT_PORT);
            let set = if port == super::front::PORT { &mut own_tls } else { &mut served };
            set.extend(addrs.iter().copied().filter(|a| a.is_ipv4() == front.is_ipv4()));
        }
        let addresses = served
            .difference(&own_tls)
            .copied()
            .filter(|a| !a.is_unspecified() && routed.iter().any(|n| n.contains(a)))
            .collect();
        Plan { front, addresses }
    }

    pub fn v4(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.addresses.iter().filter_map(|a| match a {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
    }
}

/// The OS side: set the redirect to exactly `plan`, or remove it (both idempotent).
pub trait Redirect: Send {
    fn apply(&mut self, plan: &Plan) -> Result<(), String>;
    fn remove(&mut self) -> Result<(), String>;
}

/// Where the OS has no packet filter we drive: nothing is redirected (the front still answers
/// on the link address).
#[derive(Debug, Default)]
pub struct NoRedirect;

impl NoRedirect {
    pub fn new(_ifname: &str) -> NoRedirect {
        NoRedirect
    }
}

impl Redirect for NoRedirect {
    fn apply(&mut self, _plan: &Plan) -> Result<(), String> {
        Err("redirecting port 443 is not supported on this OS".into())
    }
    fn remove(&mut self) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
