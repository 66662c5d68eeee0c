//! Linux: TUN through tun-rs, routes through iproute2, forwarding through /proc/sys.

use std::io;

use dockroute_stdx::process::{Cmd, CmdError};
use ipnet::IpNet;

use super::{RouteBackend, TunSpec};

pub const DEFAULT_TUN_NAME: &str = "dockroute0";

pub(super) fn create_tun(spec: &TunSpec) -> io::Result<tun_rs::AsyncDevice> {
    if spec.offload {
        match build_tun(spec, true) {
            Ok(dev) => return Ok(dev),
            Err(e) => tracing::warn!("TUN offload unavailable ({e}); creating the device without it"),
        }
    }
    build_tun(spec, false)
}

fn build_tun(spec: &TunSpec, offload: bool) -> io::Result<tun_rs::AsyncDevice> {
    let mut b = tun_rs::DeviceBuilder::new().mtu(spec.mtu).offload(offload);
    if let Some(name) = &spec.name {
        b = b.name(name);
    }
    if let Some((addr, prefix, _peer)) = spec.v4 {
        b = b.ipv4(addr, prefix, None);
    }
    if let Some((addr, prefix)) = spec.v6 {
        b = b.ipv6(addr, prefix);
    }
    b.build_async()
}

pub(super) fn set_tun_addresses(dev: &tun_rs::AsyncDevice, spec: &TunSpec) -> io::Result<()> {
    dev.set_mtu(spec.mtu)?;
    if let Some((addr, prefix, _peer)) = spec.v4 {
        dev.set_network_address(addr, prefix, None)?;
    }
    for old in dev.addresses()? {
        if let std::net::IpAddr::V6(old) = old {
            let keep = spec.v6.is_some_and(|(a, _)| a == old);
            if !keep && !old.is_unicast_link_local() {
                dev.remove_address(old.into())?;
            }
        }
    }
    if let Some((addr, prefix)) = spec.v6 {
        if !dev.addresses()?.contains(&addr.into()) {
            dev.add_address_v6(addr, prefix)?;
        }
    }
    Ok(())
}

/// The main routing table, IPv4 and IPv6, as iproute2 reports it.
pub fn route_table() -> io::Result<Vec<super::table::RouteEntry>> {
    let mut all = Vec::new();
    for v6 in [false, true] {
        all.extend(super::table::parse_ip_json(&ip_route_json(v6, None)?, v6).map_err(io::Error::other)?);
    }
    Ok(all)
}

/// One family's main table as iproute2 reports it, every field `IpRoute` keeps (the guest
/// reads the VM's this way), within `timeout`.
pub fn ip_routes(v6: bool, timeout: std::time::Duration) -> io::Result<Vec<super::table::IpRoute>> {
    super::table::parse_ip_routes(&ip_route_json(v6, Some(timeout))?, v6).map_err(io::Error::other)
}

/// `ip -j -4|-6 route show table main`: the one place it runs.
fn ip_route_json(v6: bool, timeout: Option<std::time::Duration>) -> io::Result<String> {
    let mut cmd = Cmd::new("ip").args(["-j", if v6 { "-6" } else { "-4" }, "route", "show", "table", "main"]);
    if let Some(t) = timeout {
        cmd = cmd.timeout(t);
    }
    Ok(cmd.run()?)
}

/// A non-blocking netlink socket in the IPv4 and IPv6 route groups (and link changes: a device
/// going away takes its routes with it).
pub(super) fn route_change_socket() -> io::Result<i32> {
    // SAFETY: plain socket calls on a descriptor we own; closed again on every error path.
    unsafe {
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            libc::NETLINK_ROUTE,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut sa: libc::sockaddr_nl = std::mem::zeroed();
        sa.nl_family = libc::AF_NETLINK as u16;
        sa.nl_groups = (libc::RTMGRP_IPV4_ROUTE | libc::RTMGRP_IPV6_ROUTE | libc::RTMGRP_LINK) as u32;
        let len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        if libc::bind(fd, (&raw const sa).cast(), len) != 0 {
            let e = io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(fd)
    }
}

/// Netlink's route groups carry only changes that happened (a failed request is not
/// broadcast), so every message counts.
pub(super) fn route_message_matters(_msg: &[u8]) -> bool {
    true
}

pub struct SystemRoutes;

impl RouteBackend for SystemRoutes {
    fn add(&mut self, net: IpNet, ifname: &str) -> io::Result<()> {
        ip(&[family(net), "route", "add", &net.to_string(), "dev", ifname]).map_err(route_error)
    }

    fn remove(&mut self, net: IpNet, ifname: &str) -> io::Result<()> {
        removed(ip(&[family(net), "route", "del", &net.to_string(), "dev", ifname]))
    }
}

/// A route already gone (its interface deleted, or removed by hand) is what removal wanted.
fn removed(r: Result<(), CmdError>) -> io::Result<()> {
    match r {
        Err(e) if e.stderr().contains("No such process") || e.stderr().contains("Cannot find device") => Ok(()),
        other => other.map_err(route_error),
    }
}

fn family(net: IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "-4",
        IpNet::V6(_) => "-6",
    }
}

fn ip(args: &[&str]) -> Result<(), CmdError> {
    Cmd::new("ip").args(args.iter().copied()).run().map(drop)
}

/// "File exists" is a route someone else owns already: callers tell it apart by its kind.
fn route_error(e: CmdError) -> io::Error {
    if e.stderr().contains("File exists") {
        io::Error::new(io::ErrorKind::AlreadyExists, e.to_string())
    } else {
        e.into()
    }
}

/// IP forwarding switched on for as long as this lives; restores only what it changed.
pub struct Forwarding {
    restore: Vec<(&'static str, String)>,
}

const FORWARDING_KNOBS: [&str; 2] = ["/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"];

impl Forwarding {
    /// Switches forwarding on. If a later knob fails, the ones already changed are restored
    /// (the partly built value is dropped). A VM kernel without IPv6 has no IPv6 knob: skipped.
    pub fn enable() -> io::Result<Forwarding> {
        let mut fwd = Forwarding { restore: Vec::new() };
        for knob in FORWARDING_KNOBS {
            let old = match std::fs::read_to_string(knob) {
                Ok(v) => v.trim().to_string(),
                Err(e) if e.kind() == io::ErrorKind::NotFound && knob.contains("ipv6") => continue,
                Err(e) => return Err(io::Error::new(e.kind(), format!("{knob}: {e}"))),
            };
            if old != "1" {
                match std::fs::write(knob, "1") {
                    Ok(()) => fwd.restore.push((knob, old)),
                    // In a container /proc/sys is read-only: IPv4 forwarding is Docker's own
                    // (always on), IPv6 forwarding is on only where the engine enabled IPv6.
                    // Without it v6 networks are unreachable, but v4 still works.
                    Err(e) if knob.contains("ipv6") => {
                        tracing::warn!("IPv6 forwarding is off in this VM and cannot be switched on ({e}): containers are reachable over IPv4 only")
                    }
                    Err(e) => return Err(io::Error::new(e.kind(), format!("{knob}: {e}"))),
                }
            }
        }
        Ok(fwd)
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        for (knob, old) in &self.restore {
            if let Err(e) = std::fs::write(knob, old) {
                tracing::warn!("could not restore {knob} to {old}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use dockroute_stdx::process::{Failure, Output};

    use super::*;

    fn exit(stderr: &str) -> CmdError {
        let out = Output { code: Some(2), stdout: String::new(), stderr: stderr.into() };
        CmdError { command: "ip -4 route add 198.19.1.0/24 dev dockroute0".into(), failure: Failure::Exit(out) }
    }

    #[test]
    fn a_taken_route_is_already_exists_and_other_failures_name_the_command() {
        let e = route_error(exit("RTNETLINK answers: File exists\n"));
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert!(e.to_string().contains("`ip -4 route add 198.19.1.0/24 dev dockroute0` failed"), "{e}");
        let e = route_error(exit("Error: Nexthop device is not up."));
        assert_eq!(e.kind(), io::ErrorKind::Other);
        assert!(e.to_string().contains("Nexthop device is not up"), "{e}");
    }

    #[test]
    fn removing_a_route_that_is_gone_succeeds_and_other_failures_do_not() {
        assert!(removed(Ok(())).is_ok());
        assert!(removed(Err(exit("RTNETLINK answers: No such process"))).is_ok());
        assert!(removed(Err(exit("Cannot find device \"dockroute0\""))).is_ok());
        assert!(removed(Err(exit("RTNETLINK answers: Operation not permitted"))).is_err());
        let missing = CmdError {
            command: "ip".into(),
            failure: Failure::Spawn(io::Error::new(io::ErrorKind::NotFound, "no such file")),
        };
        assert_eq!(removed(Err(missing)).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
