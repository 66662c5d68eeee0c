//! Who may send what where: a pure function of the packet, the teammate it came from (or is
//! for) and the rules. Enforced here whatever AllowedIPs a teammate writes into their own
//! config: WireGuard only proves who sent a packet, not that they may send it.

use std::net::{IpAddr, Ipv4Addr};

use dockroute_engine::proto::ip;
use ipnet::{IpNet, Ipv4Net};

/// What teammates may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// `route … expose` and the app's exposed routes.
    pub exposed: Vec<IpNet>,
    /// The tunnel's link subnet: the Mac's address, the guest's and the teammates' are all in
    /// it, so nothing in it is ever a destination for a teammate.
    pub link: Option<Ipv4Net>,
}

/// Why a packet was dropped (counted per teammate where one is known).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Drop {
    /// From a teammate, to something not exposed (another route, the Mac, the guest, a teammate).
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
}

impl Drop {
    pub const ALL: [Drop; 12] = [
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
        }
    }
}

impl Rules {
    fn exposes(&self, dst: IpAddr) -> bool {
        let in_link = matches!((dst, self.link), (IpAddr::V4(a), Some(l)) if l.contains(&a));
        !in_link && self.exposed.iter().any(|n| n.contains(&dst))
    }
}

/// A packet a teammate (whose address is `teammate`) sent: may it go into the tunnel?
pub fn inbound(teammate: Ipv4Addr, packet: &[u8], rules: &Rules) -> Result<(), Drop> {
    let info = ip::inspect(packet).map_err(|_| Drop::BadPacket)?;
    // Their only address is an IPv4 one: any other source is not theirs.
    if info.src != IpAddr::V4(teammate) {
        return Err(Drop::SpoofedSource);
    }
    if !rules.exposes(info.dst) {
        return Err(Drop::NotAllowedDestination);
    }
    Ok(())
}

/// A packet from the guest for the link subnet: which teammate it is for (`teammate_at` finds
/// one by address), if it may go to them.
pub fn outbound<T>(
    packet: &[u8],
    rules: &Rules,
    teammate_at: impl Fn(Ipv4Addr) -> Option<T>,
) -> Result<T, (Drop, Option<T>)> {
    let info = ip::inspect(packet).map_err(|_| (Drop::BadPacket, None))?;
    let IpAddr::V4(dst) = info.dst else { return Err((Drop::NoSession, None)) };
    let Some(mate) = teammate_at(dst) else { return Err((Drop::NoSession, None)) };
    if !rules.exposes(info.src) {
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

    fn rules() -> Rules {
        Rules {
            exposed: vec!["198.19.1.0/24".parse().unwrap(), "fd00:19::/64".parse().unwrap()],
            link: Some("198.18.5.1/24".parse().unwrap()),
        }
    }

    const ALICE: [u8; 4] = [198, 18, 5, 3];

    #[test]
    fn a_teammate_reaches_exposed_destinations_from_their_own_address_only() {
        let alice = Ipv4Addr::from(ALICE);
        assert_eq!(inbound(alice, &udp4(ALICE, [198, 19, 1, 10]), &rules()), Ok(()));
        assert_eq!(inbound(alice, &udp4([198, 18, 5, 4], [198, 19, 1, 10]), &rules()), Err(Drop::SpoofedSource));
        assert_eq!(inbound(alice, &udp4([198, 19, 1, 9], [198, 19, 1, 10]), &rules()), Err(Drop::SpoofedSource));
        let mut v6 = vec![0u8; 48];
        (v6[0], v6[5], v6[6]) = (0x60, 8, 17);
        assert_eq!(inbound(alice, &v6, &rules()), Err(Drop::SpoofedSource), "no IPv6 address is theirs");
        assert_eq!(inbound(alice, &[0x45, 0, 0], &rules()), Err(Drop::BadPacket));
    }

    #[test]
    fn nothing_but_exposed_routes_is_reachable_not_the_mac_the_guest_or_other_teammates() {
        let alice = Ipv4Addr::from(ALICE);
        for dst in [
            [198, 18, 5, 1],   // the Mac's link address
            [198, 18, 5, 2],   // the guest's
            [198, 18, 5, 4],   // another teammate
            [198, 18, 5, 255], // the link's broadcast
            [198, 19, 2, 10],  // a route that is not exposed
            [127, 0, 0, 1],
            [192, 168, 1, 1], // the Mac's LAN
        ] {
            assert_eq!(inbound(alice, &udp4(ALICE, dst), &rules()), Err(Drop::NotAllowedDestination), "{dst:?}");
        }
        let mut wide = rules();
        wide.exposed.push("0.0.0.0/0".parse().unwrap());
        assert_eq!(
            inbound(alice, &udp4(ALICE, [198, 18, 5, 1]), &wide),
            Err(Drop::NotAllowedDestination),
            "even exposing everything never exposes the link"
        );
        assert_eq!(inbound(alice, &udp4(ALICE, [192, 168, 1, 1]), &wide), Ok(()));
        assert_eq!(inbound(alice, &udp4(ALICE, [198, 19, 1, 10]), &Rules::default()), Err(Drop::NotAllowedDestination));
    }

    #[test]
    fn replies_go_to_the_teammate_they_are_addressed_to_and_only_from_exposed_sources() {
        let at = |a: Ipv4Addr| (a == Ipv4Addr::from(ALICE)).then_some("alice");
        assert_eq!(outbound(&udp4([198, 19, 1, 10], ALICE), &rules(), at), Ok("alice"));
        assert_eq!(
            outbound(&udp4([198, 19, 2, 10], ALICE), &rules(), at),
            Err((Drop::NotAllowedSource, Some("alice")))
        );
        assert_eq!(outbound(&udp4([198, 18, 5, 1], ALICE), &rules(), at), Err((Drop::NotAllowedSource, Some("alice"))));
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
