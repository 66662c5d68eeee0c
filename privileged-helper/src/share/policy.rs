//! Who may send what where: a pure function of the packet, the teammate it came from (or is
//! for) and the rules. Enforced here whatever AllowedIPs a teammate writes into their own
//! config: WireGuard only proves who sent a packet, not that they may send it.
//!
//! A teammate reaches the containers of exposed networks and nothing else (ARCHITECTURE.md,
//! threat model): never the VM (any network's gateway), the link (the Mac, the guest, other
//! teammates), a route that is not exposed, or anything outside. Replies go to a teammate only
//! on a flow they opened (`flows`). The guest's firewall enforces the same a second time.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use dockroute_engine::proto::ip;
use ipnet::{IpNet, Ipv4Net};

/// What teammates may reach (`exposure::decide` makes it from the config, the app's toggles,
/// the Docker networks the app reports and the routes' states).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// The containers of the exposed networks: their addresses on those networks.
    pub containers: BTreeSet<IpAddr>,
    /// Exposed routes no Docker network stands behind (a `route … expose` line without the
    /// app): every address in them but the network's, its broadcast and its first host address
    /// (Docker's gateway by convention; the guest drops whatever else the VM answers itself).
    pub open: Vec<IpNet>,
    /// Every known network's gateways: the VM's own addresses, never a destination.
    pub gateways: BTreeSet<IpAddr>,
    /// The tunnel's link subnet: the Mac's address, the guest's and the teammates' are all in
    /// it, so nothing in it is ever a destination for a teammate.
    pub link: Option<Ipv4Net>,
}

/// Why a packet was dropped (counted per teammate where one is known).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Drop {
    /// From a teammate, to something that is not an exposed network's container (another route,
    /// a gateway of the VM, the Mac, the guest, a teammate, the internet).
    NotAllowedDestination,
    /// From a teammate, with a source that is not their own address.
    SpoofedSource,
    /// To a teammate, from something not exposed.
    NotAllowedSource,
    /// Not a well-formed IP packet.
    BadPacket,
    /// A handshake message that did not check out.
    BadHandshake,
    /// A data message that did not decrypt (wrong key, replay, no session).
    BadData,
    /// A reply for a teammate we cannot reach (no teammate at that address, no endpoint yet).
    NoSession,
    /// A handshake from a key that is no teammate's.
    UnknownKey,
    /// A message for a session index no teammate has (revoked, or from before a restart).
    UnknownIndex,
    /// Not a WireGuard message, or one whose MAC fails with our public key.
    Garbage,
    /// More handshakes from one address than the budget allows.
    RateLimited,
    /// The queue to the tunnel or to the socket was full.
    QueueFull,
    /// To a teammate, on no flow they opened (a container or the VM calling them).
    NotOpenedByTeammate,
    /// From a teammate, a new flow while their flow table is full.
    TooManyFlows,
}

impl Drop {
    pub const ALL: [Drop; 14] = [
        Drop::NotAllowedDestination,
        Drop::SpoofedSource,
        Drop::NotAllowedSource,
        Drop::BadPacket,
        Drop::BadHandshake,
        Drop::BadData,
        Drop::NoSession,
        Drop::UnknownKey,
        Drop::UnknownIndex,
        Drop::Garbage,
        Drop::RateLimited,
        Drop::QueueFull,
        Drop::NotOpenedByTeammate,
        Drop::TooManyFlows,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Drop::NotAllowedDestination => "not_allowed_destination",
            Drop::SpoofedSource => "spoofed_source",
            Drop::NotAllowedSource => "not_allowed_source",
            Drop::BadPacket => "bad_packet",
            Drop::BadHandshake => "bad_handshake",
            Drop::BadData => "bad_data",
            Drop::NoSession => "no_session",
            Drop::UnknownKey => "unknown_key",
            Drop::UnknownIndex => "unknown_index",
            Drop::Garbage => "garbage",
            Drop::RateLimited => "rate_limited",
            Drop::QueueFull => "queue_full",
            Drop::NotOpenedByTeammate => "not_opened_by_teammate",
            Drop::TooManyFlows => "too_many_flows",
        }
    }
}

impl Rules {
    /// May a teammate send to `dst` (and may `dst` answer them)?
    pub fn allows(&self, dst: IpAddr) -> bool {
        let in_link = matches!((dst, self.link), (IpAddr::V4(a), Some(l)) if l.contains(&a));
        if in_link || self.gateways.contains(&dst) {
            return false;
        }
        self.containers.contains(&dst) || self.open.iter().any(|n| open_host(n, dst))
    }
}

/// An address of an open route that may be a container's: not the network's, not its broadcast,
/// not its first host (where Docker puts the gateway).
fn open_host(net: &IpNet, dst: IpAddr) -> bool {
    let first = match net.network() {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(1))),
        IpAddr::V6(a) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(a).wrapping_add(1))),
    };
    net.contains(&dst) && dst != net.network() && dst != net.broadcast() && dst != first
}

/// A packet a teammate (whose address is `teammate`) sent: may it go into the tunnel?
pub fn inbound(teammate: Ipv4Addr, packet: &[u8], rules: &Rules) -> Result<(), Drop> {
    let info = ip::inspect(packet).map_err(|_| Drop::BadPacket)?;
    // Their only address is an IPv4 one: any other source is not theirs.
    if info.src != IpAddr::V4(teammate) {
        return Err(Drop::SpoofedSource);
    }
    if !rules.allows(info.dst) {
        return Err(Drop::NotAllowedDestination);
    }
    Ok(())
}

/// A packet from the guest for the link subnet: which teammate it is for (`teammate_at` finds
/// one by address), if it may go to them (whether they opened the flow is `flows`' to say).
pub fn outbound<T>(
    packet: &[u8],
    rules: &Rules,
    teammate_at: impl Fn(Ipv4Addr) -> Option<T>,
) -> Result<T, (Drop, Option<T>)> {
    let info = ip::inspect(packet).map_err(|_| (Drop::BadPacket, None))?;
    let IpAddr::V4(dst) = info.dst else { return Err((Drop::NoSession, None)) };
    let Some(mate) = teammate_at(dst) else { return Err((Drop::NoSession, None)) };
    if !rules.allows(info.src) {
        return Err((Drop::NotAllowedSource, Some(mate)));
    }
    Ok(mate)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal IPv4 UDP packet from `src` to `dst`.
    pub(crate) fn udp4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&28u16.to_be_bytes());
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p
    }

    fn ip(a: [u8; 4]) -> IpAddr {
        IpAddr::from(a)
    }

    /// Network 198.19.1.0/24 (gateway .1, containers .10 and .11) is exposed; 198.19.2.0/24
    /// (gateway .1, container .10) is not; 198.19.7.0/24 is a config line with no Docker
    /// network behind it.
    fn rules() -> Rules {
        Rules {
            containers: [ip([198, 19, 1, 10]), ip([198, 19, 1, 11])].into(),
            open: vec!["198.19.7.0/24".parse().unwrap()],
            gateways: [ip([198, 19, 1, 1]), ip([198, 19, 2, 1]), ip([198, 19, 7, 254])].into(),
            link: Some("198.18.5.1/24".parse().unwrap()),
        }
    }

    const ALICE: [u8; 4] = [198, 18, 5, 3];

    #[test]
    fn a_teammate_reaches_exposed_containers_from_their_own_address_only() {
        let alice = Ipv4Addr::from(ALICE);
        assert_eq!(inbound(alice, &udp4(ALICE, [198, 19, 1, 10]), &rules()), Ok(()));
        assert_eq!(inbound(alice, &udp4(ALICE, [198, 19, 1, 11]), &rules()), Ok(()));
        assert_eq!(inbound(alice, &udp4([198, 18, 5, 4], [198, 19, 1, 10]), &rules()), Err(Drop::SpoofedSource));
        assert_eq!(inbound(alice, &udp4([198, 19, 1, 9], [198, 19, 1, 10]), &rules()), Err(Drop::SpoofedSource));
        let mut v6 = vec![0u8; 48];
        (v6[0], v6[5], v6[6]) = (0x60, 8, 17);
        assert_eq!(inbound(alice, &v6, &rules()), Err(Drop::SpoofedSource), "no IPv6 address is theirs");
        assert_eq!(inbound(alice, &[0x45, 0, 0], &rules()), Err(Drop::BadPacket));
    }

    #[test]
    fn an_attack_on_the_vm_through_any_gateway_of_an_exposed_network_or_not_is_dropped() {
        let alice = Ipv4Addr::from(ALICE);
        for gw in [[198, 19, 1, 1], [198, 19, 2, 1], [198, 19, 7, 254]] {
            assert_eq!(inbound(alice, &udp4(ALICE, gw), &rules()), Err(Drop::NotAllowedDestination), "{gw:?}");
        }
    }

    #[test]
    fn an_attack_on_an_address_of_an_exposed_subnet_that_is_no_container_is_dropped() {
        // Nothing answers there now, but the VM may (a published port's DNAT needs a local
        // address), and a container started later on another network may not be exposed.
        let alice = Ipv4Addr::from(ALICE);
        for dst in [[198, 19, 1, 0], [198, 19, 1, 12], [198, 19, 1, 255], [198, 19, 2, 10]] {
            assert_eq!(inbound(alice, &udp4(ALICE, dst), &rules()), Err(Drop::NotAllowedDestination), "{dst:?}");
        }
    }

    #[test]
    fn an_attack_on_the_mac_the_guest_other_teammates_or_the_internet_is_dropped() {
        let alice = Ipv4Addr::from(ALICE);
        for dst in [
            [198, 18, 5, 1],   // the Mac's link address (and its DNS)
            [198, 18, 5, 2],   // the guest's
            [198, 18, 5, 4],   // another teammate
            [198, 18, 5, 255], // the link's broadcast
            [127, 0, 0, 1],
            [192, 168, 1, 1], // the Mac's LAN
            [198, 18, 60, 1], // anything else, through the VM's NAT
        ] {
            assert_eq!(inbound(alice, &udp4(ALICE, dst), &rules()), Err(Drop::NotAllowedDestination), "{dst:?}");
        }
        assert_eq!(inbound(alice, &udp4(ALICE, [198, 19, 1, 10]), &Rules::default()), Err(Drop::NotAllowedDestination));
        let mut wide = rules();
        wide.open.push("0.0.0.0/0".parse().unwrap());
        assert_eq!(
            inbound(alice, &udp4(ALICE, [198, 18, 5, 1]), &wide),
            Err(Drop::NotAllowedDestination),
            "even an open route over everything never opens the link"
        );
    }

    #[test]
    fn an_open_route_without_a_docker_network_never_offers_its_first_address_or_a_known_gateway() {
        let alice = Ipv4Addr::from(ALICE);
        assert_eq!(inbound(alice, &udp4(ALICE, [198, 19, 7, 10]), &rules()), Ok(()));
        for dst in [[198, 19, 7, 0], [198, 19, 7, 1], [198, 19, 7, 255], [198, 19, 7, 254]] {
            assert_eq!(inbound(alice, &udp4(ALICE, dst), &rules()), Err(Drop::NotAllowedDestination), "{dst:?}");
        }
        assert!(!rules().allows("fd00:7::1".parse().unwrap()));
        let v6 = Rules { open: vec!["fd00:7::/64".parse().unwrap()], ..Rules::default() };
        assert!(v6.allows("fd00:7::10".parse().unwrap()) && !v6.allows("fd00:7::1".parse().unwrap()));
    }

    #[test]
    fn replies_go_to_the_teammate_they_are_addressed_to_and_only_from_exposed_containers() {
        let at = |a: Ipv4Addr| (a == Ipv4Addr::from(ALICE)).then_some("alice");
        assert_eq!(outbound(&udp4([198, 19, 1, 10], ALICE), &rules(), at), Ok("alice"));
        for src in [[198, 19, 2, 10], [198, 19, 1, 1], [198, 18, 5, 1]] {
            assert_eq!(
                outbound(&udp4(src, ALICE), &rules(), at),
                Err((Drop::NotAllowedSource, Some("alice"))),
                "a packet from {src:?} (not an exposed container) calling alice"
            );
        }
        assert_eq!(outbound(&udp4([198, 19, 1, 10], [198, 18, 5, 4]), &rules(), at), Err((Drop::NoSession, None)));
        assert_eq!(outbound(&[1, 2, 3], &rules(), at), Err((Drop::BadPacket, None)));
    }

    #[test]
    fn every_reason_has_a_distinct_name() {
        let mut names: Vec<&str> = Drop::ALL.iter().map(|d| d.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Drop::ALL.len());
    }
}
