//! Everything that changes the OS network stack. Nothing outside this module creates a device,
//! runs a command or writes a sysctl. One file per OS behind the same small surface:
//! `create_tun`, `RouteBackend`, `route_table`, `RouteChanges`, `Forwarding`. `table` holds the portable
//! parsing and conflict rules for the routing table; `route_cmd` (what macOS `route` printed)
//! and `route_msg` (macOS routing-socket messages) are the macOS decisions, plain functions
//! built and tested on every OS so that `macos.rs` keeps only the calls. `notify` drains a
//! descriptor that only says "something changed" (the route-change socket, the guest's watches).

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod os;
#[cfg(target_os = "macos")]
#[path = "macos.rs"]
mod os;

pub mod notify;
mod route_changes;
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
mod route_cmd;
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
mod route_msg;
pub mod table;

pub use os::{ip_routes, route_table, Forwarding, SystemRoutes, DEFAULT_TUN_NAME};
pub use route_changes::RouteChanges;

/// The macOS decisions' entry points for the fuzz targets (`engine/fuzz`), which run on Linux;
/// not an API.
#[doc(hidden)]
pub mod fuzz_api {
    pub use super::route_cmd::{judge, result, Request, Verdict};
    pub use super::route_msg::{any_matters, matters, parse as parse_route_message, Message, RTM_VERSION};
}

/// What the TUN device should look like when created.
#[derive(Debug, Clone)]
pub struct TunSpec {
    /// None lets the OS pick (macOS: the next free utunN).
    pub name: Option<String>,
    pub mtu: u16,
    /// Our address, prefix length, and the peer's address (point-to-point on macOS).
    pub v4: Option<(Ipv4Addr, u8, Ipv4Addr)>,
    pub v6: Option<(Ipv6Addr, u8)>,
    /// Ask for TSO/USO in and GRO out (Linux). Refused by the kernel → created without.
    pub offload: bool,
}

/// Creates the TUN device; it disappears, with every address and route bound to it, when the
/// returned device is dropped.
pub fn create_tun(spec: &TunSpec) -> io::Result<tun_rs::AsyncDevice> {
    os::create_tun(spec).map_err(|e| io::Error::new(e.kind(), format!("cannot create TUN device: {e}")))
}

/// Sets (or changes) the addresses of an existing TUN device: the guest learns them from the
/// handshake, after the device exists.
pub fn set_tun_addresses(dev: &tun_rs::AsyncDevice, spec: &TunSpec) -> io::Result<()> {
    os::set_tun_addresses(dev, spec)
}

/// Adds and removes routes through one interface. The only place that knows the OS's syntax.
pub trait RouteBackend {
    /// Fails if an identical route exists already (we never take over someone else's route).
    fn add(&mut self, net: IpNet, ifname: &str) -> io::Result<()>;
    /// Succeeds if the route is already gone (removal is idempotent).
    fn remove(&mut self, net: IpNet, ifname: &str) -> io::Result<()>;
}

/// The routes we installed, so that teardown removes exactly those and nothing else.
pub struct Routes<B: RouteBackend> {
    backend: B,
    ifname: String,
    installed: BTreeSet<IpNet>,
}

impl<B: RouteBackend> Routes<B> {
    pub fn new(backend: B, ifname: impl Into<String>) -> Self {
        Routes { backend, ifname: ifname.into(), installed: BTreeSet::new() }
    }

    /// The interface the routes go through.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn installed(&self) -> impl Iterator<Item = &IpNet> {
        self.installed.iter()
    }

    /// Makes the installed set equal to `wanted`, as far as the OS allows. Returns one error
    /// per route that could not be added or removed; the others still take effect.
    pub fn reconcile(&mut self, wanted: &[IpNet]) -> Vec<(IpNet, io::Error)> {
        let wanted: BTreeSet<IpNet> = wanted.iter().map(IpNet::trunc).collect();
        let mut errors = Vec::new();
        let stale: Vec<IpNet> = self.installed.difference(&wanted).copied().collect();
        for net in stale {
            match self.backend.remove(net, &self.ifname) {
                Ok(()) => {
                    self.installed.remove(&net);
                }
                Err(e) => errors.push((net, e)),
            }
        }
        for net in wanted.difference(&self.installed.clone()) {
            match self.backend.add(*net, &self.ifname) {
                Ok(()) => {
                    self.installed.insert(*net);
                }
                Err(e) => errors.push((*net, e)),
            }
        }
        errors
    }

    /// Forgets a route someone else removed (a VPN client rewriting the table), so the next
    /// `reconcile` adds it again instead of believing it is still there.
    pub fn forget(&mut self, net: &IpNet) -> bool {
        self.installed.remove(net)
    }

    /// Removes every route we added. Safe to call twice.
    pub fn clear(&mut self) -> Vec<(IpNet, io::Error)> {
        self.reconcile(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records calls; refuses to add what is in `taken` (a route someone else owns).
    #[derive(Default)]
    struct Recorder {
        calls: Vec<String>,
        taken: Vec<IpNet>,
    }

    impl RouteBackend for Recorder {
        fn add(&mut self, net: IpNet, ifname: &str) -> io::Result<()> {
            if self.taken.contains(&net) {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "File exists"));
            }
            self.calls.push(format!("add {net} {ifname}"));
            Ok(())
        }
        fn remove(&mut self, net: IpNet, ifname: &str) -> io::Result<()> {
            self.calls.push(format!("del {net} {ifname}"));
            Ok(())
        }
    }

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn reconcile_adds_and_removes_only_the_difference_and_clear_removes_only_ours() {
        let mut r = Routes::new(Recorder { taken: nets(&["198.19.9.0/24"]), ..Default::default() }, "tun0");
        let errs = r.reconcile(&nets(&["198.19.1.0/24", "2001:2::/64", "198.19.9.0/24"]));
        assert_eq!(errs.len(), 1, "the taken route is reported");
        assert_eq!(errs[0].0, "198.19.9.0/24".parse::<IpNet>().unwrap());
        r.reconcile(&nets(&["198.19.1.0/24", "198.19.2.0/24"]));
        assert_eq!(
            r.backend.calls,
            ["add 198.19.1.0/24 tun0", "add 2001:2::/64 tun0", "del 2001:2::/64 tun0", "add 198.19.2.0/24 tun0"]
        );
        r.backend.calls.clear();
        r.clear();
        r.clear();
        assert_eq!(
            r.backend.calls,
            ["del 198.19.1.0/24 tun0", "del 198.19.2.0/24 tun0"],
            "never the route we did not add"
        );
    }
}
