//! macOS: utun through tun-rs, routes through route(8). The guest never runs here.

use std::io;

use dockroute_stdx::process::Cmd;
use ipnet::IpNet;

use super::route_cmd::{self, Request};
use super::{RouteBackend, TunSpec};

/// utun names are assigned by the kernel; asking for one that exists fails.
pub const DEFAULT_TUN_NAME: &str = "";

pub(super) fn create_tun(spec: &TunSpec) -> io::Result<tun_rs::AsyncDevice> {
    let mut b = tun_rs::DeviceBuilder::new().mtu(spec.mtu);
    if let Some(name) = spec.name.as_deref().filter(|n| !n.is_empty()) {
        b = b.name(name);
    }
    if let Some((addr, prefix, peer)) = spec.v4 {
        // utun is point-to-point: it needs the peer address, and does not route the subnet
        // by itself, hence associate_route.
        b = b.ipv4(addr, prefix, Some(peer)).associate_route(true);
    }
    if let Some((addr, prefix)) = spec.v6 {
        b = b.ipv6(addr, prefix);
    }
    b.build_async()
}

pub(super) fn set_tun_addresses(dev: &tun_rs::AsyncDevice, spec: &TunSpec) -> io::Result<()> {
    dev.set_mtu(spec.mtu)?;
    if let Some((addr, prefix, peer)) = spec.v4 {
        dev.set_network_address(addr, prefix, Some(peer))?;
    }
    if let Some((addr, prefix)) = spec.v6 {
        dev.add_address_v6(addr, prefix)?;
    }
    Ok(())
}

/// iproute2 is Linux's (the guest's VM); macOS has `route_table` from netstat.
pub fn ip_routes(_v6: bool, _timeout: std::time::Duration) -> io::Result<Vec<super::table::IpRoute>> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "`ip -j route` is Linux's"))
}

/// The routing table as `netstat -rn` reports it (both families).
pub fn route_table() -> io::Result<Vec<super::table::RouteEntry>> {
    let text = Cmd::new("/usr/sbin/netstat").arg("-rn").run()?;
    Ok(super::table::parse_netstat(&text))
}

/// A non-blocking routing socket: the kernel copies every routing message (RTM_ADD, RTM_DELETE,
/// interface changes) to it.
pub(super) fn route_change_socket() -> io::Result<i32> {
    // SAFETY: plain socket calls on a descriptor we own; closed again on every error path.
    unsafe {
        let fd = libc::socket(libc::PF_ROUTE, libc::SOCK_RAW, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0
            || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) != 0
            || libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) != 0
        {
            let e = io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(fd)
    }
}

/// Whether a read from the routing socket says the table may have changed (`route_msg`).
pub(super) fn route_message_matters(msg: &[u8]) -> bool {
    super::route_msg::any_matters(msg)
}

pub struct SystemRoutes;

impl RouteBackend for SystemRoutes {
    fn add(&mut self, net: IpNet, ifname: &str) -> io::Result<()> {
        route(Request::Add, &["-n", "add", family(net), &net.to_string(), "-interface", ifname])
    }

    fn remove(&mut self, net: IpNet, ifname: &str) -> io::Result<()> {
        route(Request::Delete, &["-n", "delete", family(net), &net.to_string(), "-interface", ifname])
    }
}

fn family(net: IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "-inet",
        IpNet::V6(_) => "-inet6",
    }
}

/// route(8) exits 0 even when the kernel refused; `route_cmd` reads what it printed.
fn route(request: Request, args: &[&str]) -> io::Result<()> {
    let cmd = Cmd::new("/sbin/route").args(args.iter().copied());
    let out = cmd.output()?;
    route_cmd::result(request, &cmd.line(), &out)
}

/// The guest (Linux only) is the one that forwards; on macOS this is never needed.
pub struct Forwarding;

impl Forwarding {
    pub fn enable() -> io::Result<Forwarding> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "the guest end runs only on Linux"))
    }
}
