//! Raw IPv4/IPv6 packet checks and TCP MSS clamping for packets crossing the tunnel.
//!
//! Everything here works on borrowed byte slices with explicit bounds checks, because the
//! input comes straight from a TUN device or the network and may be arbitrary garbage.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    V4,
    V6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    pub version: IpVersion,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub total_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// Zero-length buffer.
    Empty,
    /// Version nibble is neither 4 nor 6.
    BadVersion(u8),
    /// The buffer ends before the header, or before the length the header declares.
    Truncated,
    /// IPv4 IHL < 5, or IPv4 total_length smaller than the header itself.
    BadHeaderLength,
    /// Declared length is shorter than the buffer (trailing bytes), or an IPv6 jumbogram.
    LengthMismatch,
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Empty => f.write_str("empty packet"),
            PacketError::BadVersion(v) => write!(f, "unsupported IP version {v}"),
            PacketError::Truncated => f.write_str("packet truncated"),
            PacketError::BadHeaderLength => f.write_str("bad IP header length"),
            PacketError::LengthMismatch => f.write_str("IP length field does not match packet size"),
        }
    }
}

impl std::error::Error for PacketError {}

const IPV4_MIN_HDR: usize = 20;
const IPV6_HDR: usize = 40;
const PROTO_TCP: u8 = 6;
const TCP_MIN_HDR: usize = 20;
const TCP_FLAG_SYN: u8 = 0x02;
const TCP_OPT_MSS: u8 = 2;
/// Bound on the IPv6 extension-header walk so a crafted chain cannot make us loop long.
const MAX_V6_EXT_HEADERS: usize = 8;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Validate an IP packet as read from / about to be written to a TUN device.
///
/// A TUN read yields exactly one packet, so the declared length must equal the buffer length:
/// declared > buffer is `Truncated`, declared < buffer is `LengthMismatch`.
pub fn inspect(buf: &[u8]) -> Result<PacketInfo, PacketError> {
    let first = *buf.first().ok_or(PacketError::Empty)?;
    let (version, src, dst, total_len) = match first >> 4 {
        4 => {
            if buf.len() < IPV4_MIN_HDR {
                return Err(PacketError::Truncated);
            }
            let hdr_len = usize::from(first & 0x0f) * 4;
            if hdr_len < IPV4_MIN_HDR {
                return Err(PacketError::BadHeaderLength);
            }
            if hdr_len > buf.len() {
                return Err(PacketError::Truncated);
            }
            let total = usize::from(be16(buf, 2));
            if total < hdr_len {
                return Err(PacketError::BadHeaderLength);
            }
            let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
            let dst = Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]);
            (IpVersion::V4, src.into(), dst.into(), total)
        }
        6 => {
            if buf.len() < IPV6_HDR {
                return Err(PacketError::Truncated);
            }
            let payload = usize::from(be16(buf, 4));
            // payload_length 0 means a Hop-by-Hop jumbo payload; a TUN MTU never needs one.
            if payload == 0 {
                return Err(PacketError::LengthMismatch);
            }
            let addr = |at: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&buf[at..at + 16]);
                IpAddr::from(Ipv6Addr::from(a))
            };
            (IpVersion::V6, addr(8), addr(24), IPV6_HDR + payload)
        }
        v => return Err(PacketError::BadVersion(v)),
    };
    check_len(total_len, buf.len())?;
    Ok(PacketInfo { version, src, dst, total_len })
}

fn check_len(declared: usize, actual: usize) -> Result<(), PacketError> {
    match declared.cmp(&actual) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(PacketError::Truncated),
        std::cmp::Ordering::Less => Err(PacketError::LengthMismatch),
    }
}

/// Largest MSS that fits an inner MTU: mtu - 40 for IPv4, mtu - 60 for IPv6 (saturating).
pub fn max_mss(mtu: u16, version: IpVersion) -> u16 {
    match version {
        IpVersion::V4 => mtu.saturating_sub(40),
        IpVersion::V6 => mtu.saturating_sub(60),
    }
}

/// If `packet` is a TCP SYN or SYN-ACK carrying an MSS option larger than `max_mss(mtu, _)`,
/// lower the MSS to that value and patch the TCP checksum incrementally (RFC 1624).
/// Returns true if it rewrote anything. Packets that fail [`inspect`] are never touched.
pub fn clamp_mss(packet: &mut [u8], mtu: u16) -> bool {
    let Ok(info) = inspect(packet) else {
        return false;
    };
    let Some(tcp_off) = tcp_offset(packet, info.version) else {
        return false;
    };
    // inspect guarantees total_len == packet.len(), so the segment is the rest of the buffer;
    // an extension-header chain may still claim to run past it.
    let Some(tcp) = packet.get_mut(tcp_off..) else {
        return false;
    };
    clamp_tcp(tcp, max_mss(mtu, info.version))
}

/// Offset of the TCP header within an already-inspected packet, or None if the packet is not
/// a first (offset 0) fragment of a TCP segment.
fn tcp_offset(p: &[u8], version: IpVersion) -> Option<usize> {
    match version {
        IpVersion::V4 => {
            // Non-first fragments carry no TCP header. A first fragment with MF set may; the
            // header-in-buffer checks in clamp_tcp decide whether it is whole.
            let frag_off = be16(p, 6) & 0x1fff;
            (frag_off == 0 && p[9] == PROTO_TCP).then(|| usize::from(p[0] & 0x0f) * 4)
        }
        IpVersion::V6 => {
            let mut next = p[6];
            let mut off = IPV6_HDR;
            for _ in 0..=MAX_V6_EXT_HEADERS {
                match next {
                    PROTO_TCP => return (off <= p.len()).then_some(off),
                    // Hop-by-hop, routing, destination options: length in 8-octet units, minus 1.
                    0 | 43 | 60 => {
                        let h = p.get(off..off + 2)?;
                        next = h[0];
                        off += (usize::from(h[1]) + 1) * 8;
                    }
                    44 => {
                        let h = p.get(off..off + 8)?;
                        if be16(h, 2) >> 3 != 0 {
                            return None;
                        }
                        next = h[0];
                        off += 8;
                    }
                    // AH, ESP, no-next-header, anything unknown: we cannot safely reach TCP.
                    _ => return None,
                }
            }
            None
        }
    }
}

/// Clamp the MSS option(s) in a TCP segment (header + payload). Any malformed option makes
/// the whole segment untouched, so we never "fix" a packet whose layout we misread.
fn clamp_tcp(tcp: &mut [u8], limit: u16) -> bool {
    if tcp.len() < TCP_MIN_HDR || tcp[13] & TCP_FLAG_SYN == 0 {
        return false;
    }
    let hdr_len = usize::from(tcp[12] >> 4) * 4;
    if hdr_len < TCP_MIN_HDR || hdr_len > tcp.len() {
        return false;
    }
    // 40 option bytes hold at most 10 four-byte MSS options; collect first, write after the
    // whole list validated.
    let mut mss_at = [0usize; 10];
    let mut n = 0;
    let mut i = TCP_MIN_HDR;
    while i < hdr_len {
        match tcp[i] {
            0 => break,
            1 => i += 1,
            kind => {
                if i + 1 >= hdr_len {
                    return false; // kind byte with no room for its length byte
                }
                let len = usize::from(tcp[i + 1]);
                if len < 2 || i + len > hdr_len {
                    return false;
                }
                if kind == TCP_OPT_MSS && len == 4 && n < mss_at.len() {
                    mss_at[n] = i + 2;
                    n += 1;
                }
                i += len;
            }
        }
    }
    let mut changed = false;
    for &at in &mss_at[..n] {
        let old = be16(tcp, at);
        if old <= limit {
            continue;
        }
        tcp[at..at + 2].copy_from_slice(&limit.to_be_bytes());
        // The checksum sums 16-bit words aligned to the segment start; a field at an odd
        // offset straddles two words, which is equivalent to summing it byte-swapped.
        let (old_w, new_w) = if at % 2 == 1 { (old.swap_bytes(), limit.swap_bytes()) } else { (old, limit) };
        let csum = csum_update(be16(tcp, 16), old_w, new_w);
        tcp[16..18].copy_from_slice(&csum.to_be_bytes());
        changed = true;
    }
    changed
}

/// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
fn csum_update(hc: u16, old: u16, new: u16) -> u16 {
    let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(new);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found in review: a destination-options header whose length runs past the packet used to
    /// make clamp_mss slice out of bounds (a panic any VM process could trigger over IPv6).
    #[test]
    fn an_extension_header_running_past_the_packet_is_left_alone() {
        let mut p = vec![0x60, 0, 0, 0, 0, 8, 60, 64];
        p.extend_from_slice(&[0u8; 32]);
        p.extend_from_slice(&[6, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(p.len(), 48);
        assert!(inspect(&p).is_ok());
        let before = p.clone();
        assert!(!clamp_mss(&mut p, 1400));
        assert_eq!(p, before);
    }
    use proptest::prelude::*;

    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const S4: [u8; 4] = [10, 0, 0, 1];
    const D4: [u8; 4] = [192, 168, 65, 2];
    const S6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const D6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    fn ones_sum(data: &[u8], mut sum: u32) -> u32 {
        for c in data.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        sum
    }
    fn fold(mut sum: u32) -> u16 {
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }
    fn pseudo_sum(src: &[u8], dst: &[u8], proto: u8, len: usize) -> u32 {
        let s = ones_sum(dst, ones_sum(src, 0));
        s + u32::from(proto) + (len as u32 & 0xffff) + (len as u32 >> 16)
    }

    /// TCP header with `options` zero-padded to a 4-byte multiple, checksum left 0.
    fn tcp_seg(flags: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut opts = options.to_vec();
        while !opts.len().is_multiple_of(4) {
            opts.push(0);
        }
        let doff = (20 + opts.len()) / 4;
        let mut t = vec![0x30, 0x39, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0];
        t.extend_from_slice(&[(doff as u8) << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(&opts);
        t.extend_from_slice(payload);
        t
    }

    fn v4(proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0];
        p[2..4].copy_from_slice(&(20 + l4.len() as u16).to_be_bytes());
        p.extend_from_slice(&S4);
        p.extend_from_slice(&D4);
        let c = !fold(ones_sum(&p, 0));
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(l4);
        if proto == PROTO_TCP {
            let c = !fold(ones_sum(l4, pseudo_sum(&S4, &D4, proto, l4.len())));
            p[36..38].copy_from_slice(&c.to_be_bytes());
        }
        p
    }

    /// IPv6 packet; `exts` are 8-byte extension headers (0/43/60 as padding-only, 44 as an
    /// offset-0 fragment header) placed in order before the upper-layer `l4`.
    fn v6(exts: &[u8], proto: u8, l4: &[u8]) -> Vec<u8> {
        let payload = (exts.len() * 8 + l4.len()) as u16;
        let mut p = vec![0x60, 0, 0, 0, 0, 0, *exts.first().unwrap_or(&proto), 64];
        p[4..6].copy_from_slice(&payload.to_be_bytes());
        p.extend_from_slice(&S6);
        p.extend_from_slice(&D6);
        for (k, &t) in exts.iter().enumerate() {
            let nh = *exts.get(k + 1).unwrap_or(&proto);
            match t {
                44 => p.extend_from_slice(&[nh, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef]),
                _ => p.extend_from_slice(&[nh, 0, 1, 4, 0, 0, 0, 0]), // PadN(4)
            }
        }
        let l4_at = p.len();
        p.extend_from_slice(l4);
        if proto == PROTO_TCP {
            let c = !fold(ones_sum(l4, pseudo_sum(&S6, &D6, proto, l4.len())));
            p[l4_at + 16..l4_at + 18].copy_from_slice(&c.to_be_bytes());
        }
        p
    }

    /// Full recomputation over pseudo-header + segment; returns (checksum ok, MSS option values).
    fn verify(p: &[u8]) -> (bool, Vec<u16>) {
        let (off, sum) = if p[0] >> 4 == 4 {
            let off = usize::from(p[0] & 0xf) * 4;
            (off, pseudo_sum(&p[12..16], &p[16..20], 6, p.len() - off))
        } else {
            let (mut nh, mut off) = (p[6], 40);
            // A fragment header's reserved second byte is 0, so the same formula yields 8.
            while nh != 6 {
                (nh, off) = (p[off], off + (usize::from(p[off + 1]) + 1) * 8);
            }
            (off, pseudo_sum(&p[8..24], &p[24..40], 6, p.len() - off))
        };
        let t = &p[off..];
        let ok = fold(ones_sum(t, sum)) == 0xffff;
        let (mut i, mut mss) = (20, vec![]);
        while i < usize::from(t[12] >> 4) * 4 && t[i] != 0 {
            if t[i] == 1 {
                i += 1;
                continue;
            }
            if t[i] == 2 {
                mss.push(be16(t, i + 2));
            }
            i += usize::from(t[i + 1]);
        }
        (ok, mss)
    }

    fn mss_opt(v: u16) -> [u8; 4] {
        [2, 4, (v >> 8) as u8, v as u8]
    }

    fn assert_clamped(mut p: Vec<u8>, mtu: u16, want: u16) {
        assert!(verify(&p).0, "builder made a bad checksum");
        assert!(clamp_mss(&mut p, mtu));
        assert_eq!(verify(&p), (true, vec![want]));
        assert!(inspect(&p).is_ok());
    }

    fn assert_untouched(p: Vec<u8>, mtu: u16) {
        let mut q = p.clone();
        assert!(!clamp_mss(&mut q, mtu));
        assert_eq!(p, q);
    }

    #[test]
    fn v4_syn_clamped() {
        assert_clamped(v4(6, &tcp_seg(SYN, &mss_opt(1460), &[])), 1400, 1360);
    }

    #[test]
    fn v4_syn_ack_clamped() {
        assert_clamped(v4(6, &tcp_seg(SYN | ACK, &mss_opt(1460), b"x")), 1400, 1360);
    }

    #[test]
    fn v6_syn_clamped() {
        assert_clamped(v6(&[], 6, &tcp_seg(SYN, &mss_opt(1440), &[])), 1400, 1340);
    }

    #[test]
    fn v6_extension_headers_followed() {
        assert_clamped(v6(&[0], 6, &tcp_seg(SYN, &mss_opt(1440), &[])), 1400, 1340);
        assert_clamped(v6(&[0, 60, 44], 6, &tcp_seg(SYN, &mss_opt(1440), &[])), 1400, 1340);
    }

    #[test]
    fn v6_non_first_fragment_untouched() {
        let mut p = v6(&[44], 6, &tcp_seg(SYN, &mss_opt(1440), &[]));
        p[43] = 0x08; // fragment offset 1 (8 octets)
        assert_untouched(p, 1400);
    }

    #[test]
    fn v4_fragments() {
        let mut p = v4(6, &tcp_seg(SYN, &mss_opt(1460), &[]));
        p[6] = 0x20; // MF, offset 0: TCP header is whole in this buffer, so clamp
        assert_clamped(p.clone(), 1400, 1360);
        p[7] = 1; // offset 8
        assert_untouched(p, 1400);
    }

    #[test]
    fn mss_below_limit_untouched() {
        assert_untouched(v4(6, &tcp_seg(SYN, &mss_opt(1360), &[])), 1400);
        assert_untouched(v6(&[], 6, &tcp_seg(SYN, &mss_opt(1200), &[])), 1400);
    }

    #[test]
    fn non_syn_untouched() {
        assert_untouched(v4(6, &tcp_seg(ACK, &mss_opt(1460), &[])), 1400);
    }

    #[test]
    fn mss_after_nops_and_timestamp() {
        let mut o = vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0];
        o.extend_from_slice(&mss_opt(1460));
        o.extend_from_slice(&[1, 3, 3, 7]); // NOP, window scale
        assert_clamped(v4(6, &tcp_seg(SYN, &o, &[])), 1400, 1360);
        // A single NOP puts the MSS value at an odd offset, straddling checksum words.
        let mut o = vec![1];
        o.extend_from_slice(&mss_opt(1460));
        assert_clamped(v4(6, &tcp_seg(SYN, &o, b"abc")), 1400, 1360);
        assert_clamped(v6(&[], 6, &tcp_seg(SYN, &o, &[])), 1400, 1340);
    }

    #[test]
    fn malformed_options_untouched() {
        let mut zero_len = mss_opt(1460).to_vec();
        zero_len.extend_from_slice(&[8, 0]);
        assert_untouched(v4(6, &tcp_seg(SYN, &zero_len, &[])), 1400);
        let mut past_end = mss_opt(1460).to_vec();
        past_end.extend_from_slice(&[1, 1, 8, 10]); // timestamp runs past the 28-byte header
        assert_untouched(v4(6, &tcp_seg(SYN, &past_end, &[0; 20])), 1400);
        let mut no_len = mss_opt(1460).to_vec();
        no_len.extend_from_slice(&[1, 1, 1, 30]); // kind in the header's last byte, no length
        assert_untouched(v6(&[], 6, &tcp_seg(SYN, &no_len, &[])), 1400);
        let mut big_doff = v4(6, &tcp_seg(SYN, &mss_opt(1460), &[]));
        big_doff[32] = 0xf0; // data offset 60 > segment length
        assert_untouched(big_doff, 1400);
    }

    #[test]
    fn udp_untouched() {
        let udp = [0x30, 0x39, 0, 53, 0, 12, 0, 0, 2, 4, 5, 180];
        assert_untouched(v4(17, &udp), 1400);
        assert_untouched(v6(&[], 17, &udp), 1400);
    }

    #[test]
    fn inspect_valid() {
        let i = inspect(&v4(6, &tcp_seg(SYN, &[], &[]))).unwrap();
        let want = (IpVersion::V4, IpAddr::from(S4), IpAddr::from(D4), 40);
        assert_eq!((i.version, i.src, i.dst, i.total_len), want);
        let i = inspect(&v6(&[0], 17, &[0; 9])).unwrap();
        let want = (IpVersion::V6, IpAddr::from(S6), IpAddr::from(D6), 57);
        assert_eq!((i.version, i.src, i.dst, i.total_len), want);
    }

    #[test]
    fn inspect_errors() {
        use PacketError::*;
        let p4 = v4(6, &tcp_seg(SYN, &[], &[]));
        let p6 = v6(&[], 6, &tcp_seg(SYN, &[], &[]));
        assert_eq!(inspect(&[]), Err(Empty));
        assert_eq!(inspect(&[0x50; 40]), Err(BadVersion(5)));
        assert_eq!(inspect(&[0; 40]), Err(BadVersion(0)));
        assert_eq!(inspect(&p4[..19]), Err(Truncated));
        assert_eq!(inspect(&p4[..39]), Err(Truncated)); // total_length 40 > 39
        assert_eq!(inspect(&p6[..39]), Err(Truncated));
        assert_eq!(inspect(&p6[..59]), Err(Truncated));
        let mut q = p4.clone();
        q[0] = 0x44;
        assert_eq!(inspect(&q), Err(BadHeaderLength));
        q[0] = 0x4f; // 60-byte header in a 40-byte buffer
        assert_eq!(inspect(&q), Err(Truncated));
        let mut q = p4.clone();
        q[3] = 16; // total_length below the 20-byte header
        assert_eq!(inspect(&q), Err(BadHeaderLength));
        let mut q = p4.clone();
        q.push(0);
        assert_eq!(inspect(&q), Err(LengthMismatch));
        let mut q = p6.clone();
        q.push(0);
        assert_eq!(inspect(&q), Err(LengthMismatch));
        let mut q = p6[..40].to_vec();
        q[4..6].copy_from_slice(&[0, 0]); // jumbogram: 40 + 0 would otherwise match
        assert_eq!(inspect(&q), Err(LengthMismatch));
        assert_eq!(BadVersion(7).to_string(), "unsupported IP version 7");
    }

    #[test]
    fn max_mss_saturates() {
        assert_eq!(max_mss(1500, IpVersion::V4), 1460);
        assert_eq!(max_mss(1500, IpVersion::V6), 1440);
        assert_eq!(max_mss(50, IpVersion::V6), 0);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(mut buf in prop::collection::vec(any::<u8>(), 0..2000), mtu: u16) {
            let _ = inspect(&buf);
            let _ = clamp_mss(&mut buf, mtu);
        }

        #[test]
        fn mutated_syn_never_panics(
            is_v6: bool, flips in prop::collection::vec((0usize..200, any::<u8>()), 1..6), mtu: u16,
        ) {
            let seg = tcp_seg(SYN, &[1, 2, 4, 0xff, 0xff, 1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0], b"data");
            let mut p = if is_v6 { v6(&[0, 44], 6, &seg) } else { v4(6, &seg) };
            for (at, b) in flips {
                let n = p.len();
                p[at % n] = b;
            }
            let _ = clamp_mss(&mut p, mtu);
        }

        #[test]
        fn valid_syn_clamps_to_min(
            is_v6: bool, ext_hbh: bool, mss: u16, mtu in 1280u16..=9000, nops in 0usize..4,
            ack: bool, payload in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut o = vec![1; nops];
            o.extend_from_slice(&mss_opt(mss));
            let seg = tcp_seg(SYN | if ack { ACK } else { 0 }, &o, &payload);
            let (mut p, ver) = if is_v6 {
                (v6(if ext_hbh { &[0] } else { &[] }, 6, &seg), IpVersion::V6)
            } else {
                (v4(6, &seg), IpVersion::V4)
            };
            let limit = max_mss(mtu, ver);
            prop_assert_eq!(clamp_mss(&mut p, mtu), mss > limit);
            prop_assert_eq!(verify(&p), (true, vec![mss.min(limit)]));
        }
    }
}
