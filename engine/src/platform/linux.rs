//! Linux: TUN through tun-rs, routes through iproute2, forwarding through /proc/sys.

use std::io;
use std::process::Command;

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
    for (flag, v6) in [("-4", false), ("-6", true)] {
        let out =
            Command::new("ip").env("LC_ALL", "C").args(["-j", flag, "route", "show", "table", "main"]).output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "ip -j {flag} route: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        all.extend(super::table::parse_ip_json(&text, v6).map_err(io::Error::other)?);
    }
    Ok(all)
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
        ip(&[family(net), "route", "add", &net.to_string(), "dev", ifname])
    }

    fn remove(&mut self, net: IpNet, ifname: &str) -> io::Result<()> {
        match ip(&[family(net), "route", "del", &net.to_string(), "dev", ifname]) {
            // Already gone (interface deleted, or removed by hand): that is what we wanted.
            Err(e) if e.to_string().contains("No such process") || e.to_string().contains("Cannot find device") => {
                Ok(())
            }
            other => other,
        }
    }
}

fn family(net: IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "-4",
        IpNet::V6(_) => "-6",
    }
}

fn ip(args: &[&str]) -> io::Result<()> {
    let out =
        Command::new("ip").args(args).output().map_err(|e| io::Error::new(e.kind(), format!("cannot run ip: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kind = if stderr.contains("File exists") { io::ErrorKind::AlreadyExists } else { io::ErrorKind::Other };
    Err(io::Error::new(kind, format!("ip {}: {}", args.join(" "), stderr.trim())))
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
