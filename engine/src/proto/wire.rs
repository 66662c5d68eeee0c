//! Byte layout of every datagram on the tunnel (the table is in docs/design-notes.md, "Wire format").
//!
//! All messages start with a 4-byte header `[type, version, 0, 0]`; integers are big-endian.
//! Decoding never panics and never allocates: it borrows from the datagram.

use std::net::{Ipv4Addr, Ipv6Addr};

pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 4;
pub const NONCE_LEN: usize = 16;
pub const MAC_LEN: usize = 32;
/// Header + session id + counter; the inner IP packet follows.
pub const DATA_HEADER_LEN: usize = HEADER_LEN + 8 + 8;
/// Hello is padded so that no reply to an unauthenticated message is larger than its request.
pub const HELLO_LEN: usize = 64;
pub const CHALLENGE_LEN: usize = HEADER_LEN + 2 * NONCE_LEN;
pub const AUTH_LEN: usize = HEADER_LEN + 2 * NONCE_LEN + MAC_LEN;
pub const WELCOME_BODY_LEN: usize = NONCE_LEN + 8 + 2 + 4 + 4 + 4 + 1 + 1 + 16 + 16;
pub const WELCOME_LEN: usize = HEADER_LEN + WELCOME_BODY_LEN + MAC_LEN;
pub const STALE_LEN: usize = HEADER_LEN + 8 + MAC_LEN;

// Anti-amplification, checked at compile time: a Challenge is never larger than the Hello
// that asked for it, and a Stale notice stays within ~2x of the smallest data frame.
const _: () = assert!(CHALLENGE_LEN <= HELLO_LEN);
const _: () = assert!(STALE_LEN <= 2 * DATA_HEADER_LEN + 4);

pub type Nonce = [u8; NONCE_LEN];
pub type Mac = [u8; MAC_LEN];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgType {
    Hello = 1,
    Challenge = 2,
    Auth = 3,
    Welcome = 4,
    Data = 5,
    Stale = 6,
}

impl MsgType {
    fn from_u8(b: u8) -> Option<MsgType> {
        Some(match b {
            1 => MsgType::Hello,
            2 => MsgType::Challenge,
            3 => MsgType::Auth,
            4 => MsgType::Welcome,
            5 => MsgType::Data,
            6 => MsgType::Stale,
            _ => return None,
        })
    }
}

/// What the host assigns to a session; carried in Welcome. Its `Debug` shows the session id as
/// a fingerprint only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SessionParams {
    pub session_id: u64,
    pub mtu: u16,
    pub keepalive_ms: u32,
    pub host_v4: Ipv4Addr,
    pub guest_v4: Ipv4Addr,
    pub prefix_v4: u8,
    /// (host, guest, prefix) of the IPv6 link, if the host enabled it.
    pub v6: Option<(Ipv6Addr, Ipv6Addr, u8)>,
}

impl std::fmt::Debug for SessionParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let SessionParams { session_id, mtu, keepalive_ms, host_v4, guest_v4, prefix_v4, v6 } = self;
        f.debug_struct("SessionParams")
            .field("session", &super::Fingerprint(*session_id))
            .field("mtu", mtu)
            .field("keepalive_ms", keepalive_ms)
            .field("host_v4", host_v4)
            .field("guest_v4", guest_v4)
            .field("prefix_v4", prefix_v4)
            .field("v6", v6)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    Hello {
        guest_nonce: &'a Nonce,
    },
    Challenge {
        guest_nonce: &'a Nonce,
        host_nonce: &'a Nonce,
    },
    Auth {
        guest_nonce: &'a Nonce,
        host_nonce: &'a Nonce,
        mac: &'a Mac,
    },
    /// `signed` is the byte range the MAC covers (header + body).
    Welcome {
        guest_nonce: &'a Nonce,
        params: SessionParams,
        signed: &'a [u8],
        mac: &'a Mac,
    },
    Data {
        session_id: u64,
        counter: u64,
        payload: &'a [u8],
    },
    Stale {
        session_id: u64,
        mac: &'a Mac,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    TooShort,
    BadVersion,
    UnknownType,
    BadLength,
    BadField,
}

pub fn header(t: MsgType) -> [u8; HEADER_LEN] {
    [t as u8, VERSION, 0, 0]
}

/// Parses one datagram. Control messages must have their exact length, so nothing can be
/// smuggled in padding; a data frame is anything from its header on.
pub fn decode(buf: &[u8]) -> Result<Message<'_>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::TooShort);
    }
    let t = MsgType::from_u8(buf[0]).ok_or(DecodeError::UnknownType)?;
    if buf[1] != VERSION {
        return Err(DecodeError::BadVersion);
    }
    if buf[2] != 0 || buf[3] != 0 {
        return Err(DecodeError::BadField);
    }
    let body = &buf[HEADER_LEN..];
    let exact = |n: usize| if buf.len() == n { Ok(()) } else { Err(DecodeError::BadLength) };
    match t {
        MsgType::Hello => {
            exact(HELLO_LEN)?;
            Ok(Message::Hello { guest_nonce: nonce(body, 0) })
        }
        MsgType::Challenge => {
            exact(CHALLENGE_LEN)?;
            Ok(Message::Challenge { guest_nonce: nonce(body, 0), host_nonce: nonce(body, 16) })
        }
        MsgType::Auth => {
            exact(AUTH_LEN)?;
            Ok(Message::Auth { guest_nonce: nonce(body, 0), host_nonce: nonce(body, 16), mac: mac(body, 32) })
        }
        MsgType::Welcome => {
            exact(WELCOME_LEN)?;
            let b = body;
            let v6_prefix = b[39];
            let params = SessionParams {
                session_id: be_u64(b, 16),
                mtu: u16::from_be_bytes([b[24], b[25]]),
                keepalive_ms: u32::from_be_bytes([b[26], b[27], b[28], b[29]]),
                host_v4: Ipv4Addr::new(b[30], b[31], b[32], b[33]),
                guest_v4: Ipv4Addr::new(b[34], b[35], b[36], b[37]),
                prefix_v4: b[38],
                v6: (v6_prefix != 0).then(|| (ipv6(b, 40), ipv6(b, 56), v6_prefix)),
            };
            if params.prefix_v4 > 32 || v6_prefix > 128 || params.session_id == 0 || params.keepalive_ms == 0 {
                return Err(DecodeError::BadField);
            }
            Ok(Message::Welcome {
                guest_nonce: nonce(b, 0),
                params,
                signed: &buf[..HEADER_LEN + WELCOME_BODY_LEN],
                mac: mac(b, WELCOME_BODY_LEN),
            })
        }
        MsgType::Data => {
            if buf.len() < DATA_HEADER_LEN {
                return Err(DecodeError::BadLength);
            }
            Ok(Message::Data {
                session_id: be_u64(body, 0),
                counter: be_u64(body, 8),
                payload: &buf[DATA_HEADER_LEN..],
            })
        }
        MsgType::Stale => {
            exact(STALE_LEN)?;
            Ok(Message::Stale { session_id: be_u64(body, 0), mac: mac(body, 8) })
        }
    }
}

pub fn encode_hello(guest_nonce: &Nonce) -> Vec<u8> {
    let mut v = Vec::with_capacity(HELLO_LEN);
    v.extend_from_slice(&header(MsgType::Hello));
    v.extend_from_slice(guest_nonce);
    v.resize(HELLO_LEN, 0);
    v
}

pub fn encode_challenge(guest_nonce: &Nonce, host_nonce: &Nonce) -> Vec<u8> {
    let mut v = Vec::with_capacity(CHALLENGE_LEN);
    v.extend_from_slice(&header(MsgType::Challenge));
    v.extend_from_slice(guest_nonce);
    v.extend_from_slice(host_nonce);
    v
}

/// Auth without its MAC; the caller appends the MAC over these bytes.
pub fn encode_auth_unsigned(guest_nonce: &Nonce, host_nonce: &Nonce) -> Vec<u8> {
    let mut v = Vec::with_capacity(AUTH_LEN);
    v.extend_from_slice(&header(MsgType::Auth));
    v.extend_from_slice(guest_nonce);
    v.extend_from_slice(host_nonce);
    v
}

/// Welcome without its MAC; the caller appends the MAC over these bytes.
pub fn encode_welcome_unsigned(guest_nonce: &Nonce, p: &SessionParams) -> Vec<u8> {
    let mut v = Vec::with_capacity(WELCOME_LEN);
    v.extend_from_slice(&header(MsgType::Welcome));
    v.extend_from_slice(guest_nonce);
    v.extend_from_slice(&p.session_id.to_be_bytes());
    v.extend_from_slice(&p.mtu.to_be_bytes());
    v.extend_from_slice(&p.keepalive_ms.to_be_bytes());
    v.extend_from_slice(&p.host_v4.octets());
    v.extend_from_slice(&p.guest_v4.octets());
    v.push(p.prefix_v4);
    match p.v6 {
        Some((h, g, prefix)) => {
            v.push(prefix);
            v.extend_from_slice(&h.octets());
            v.extend_from_slice(&g.octets());
        }
        None => v.resize(v.len() + 33, 0),
    }
    v
}

pub fn encode_stale_unsigned(session_id: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(STALE_LEN);
    v.extend_from_slice(&header(MsgType::Stale));
    v.extend_from_slice(&session_id.to_be_bytes());
    v
}

/// Writes a data header in place in front of a payload already in `buf[DATA_HEADER_LEN..]`.
pub fn write_data_header(buf: &mut [u8], session_id: u64, counter: u64) {
    buf[..HEADER_LEN].copy_from_slice(&header(MsgType::Data));
    buf[4..12].copy_from_slice(&session_id.to_be_bytes());
    buf[12..20].copy_from_slice(&counter.to_be_bytes());
}

fn nonce(b: &[u8], at: usize) -> &Nonce {
    b[at..at + NONCE_LEN].try_into().expect("length checked by caller")
}
fn mac(b: &[u8], at: usize) -> &Mac {
    b[at..at + MAC_LEN].try_into().expect("length checked by caller")
}
fn be_u64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("length checked by caller"))
}
fn ipv6(b: &[u8], at: usize) -> Ipv6Addr {
    let o: [u8; 16] = b[at..at + 16].try_into().expect("length checked by caller");
    Ipv6Addr::from(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> SessionParams {
        SessionParams {
            session_id: 0x0102_0304_0506_0708,
            mtu: 1400,
            keepalive_ms: 2000,
            host_v4: Ipv4Addr::new(198, 18, 0, 1),
            guest_v4: Ipv4Addr::new(198, 18, 0, 2),
            prefix_v4: 24,
            v6: Some(("2001:2::1".parse().unwrap(), "2001:2::2".parse().unwrap(), 64)),
        }
    }

    #[test]
    fn every_message_round_trips_with_the_documented_length() {
        let (g, h) = ([7u8; 16], [9u8; 16]);
        let hello = encode_hello(&g);
        assert_eq!(hello.len(), HELLO_LEN);
        assert_eq!(decode(&hello), Ok(Message::Hello { guest_nonce: &g }));
        let ch = encode_challenge(&g, &h);
        assert_eq!(ch.len(), CHALLENGE_LEN);
        assert_eq!(decode(&ch), Ok(Message::Challenge { guest_nonce: &g, host_nonce: &h }));
        let mut auth = encode_auth_unsigned(&g, &h);
        auth.extend_from_slice(&[3u8; 32]);
        assert_eq!(decode(&auth), Ok(Message::Auth { guest_nonce: &g, host_nonce: &h, mac: &[3u8; 32] }));
        for v6 in [params().v6, None] {
            let p = SessionParams { v6, ..params() };
            let mut w = encode_welcome_unsigned(&g, &p);
            w.extend_from_slice(&[4u8; 32]);
            assert_eq!(w.len(), WELCOME_LEN);
            match decode(&w) {
                Ok(Message::Welcome { guest_nonce, params: got, signed, mac }) => {
                    assert_eq!(guest_nonce, &g);
                    assert_eq!(got, p);
                    assert_eq!(signed, &w[..WELCOME_LEN - MAC_LEN]);
                    assert_eq!(mac, &[4u8; 32]);
                }
                other => panic!("welcome decoded as {other:?}"),
            }
        }
        let mut data = vec![0u8; DATA_HEADER_LEN + 3];
        data[DATA_HEADER_LEN..].copy_from_slice(b"abc");
        write_data_header(&mut data, 42, 7);
        assert_eq!(decode(&data), Ok(Message::Data { session_id: 42, counter: 7, payload: b"abc" }));
        let mut stale = encode_stale_unsigned(42);
        stale.extend_from_slice(&[5u8; 32]);
        assert_eq!(decode(&stale), Ok(Message::Stale { session_id: 42, mac: &[5u8; 32] }));
    }

    #[test]
    fn truncated_and_padded_frames_are_rejected() {
        let hello = encode_hello(&[1; 16]);
        assert_eq!(decode(&hello[..HELLO_LEN - 1]), Err(DecodeError::BadLength));
        let mut long = hello.clone();
        long.push(0);
        assert_eq!(decode(&long), Err(DecodeError::BadLength));
        assert_eq!(decode(&hello[..3]), Err(DecodeError::TooShort));
        assert_eq!(decode(&[MsgType::Data as u8, VERSION, 0, 0, 1]), Err(DecodeError::BadLength));
    }

    #[test]
    fn wrong_version_type_and_reserved_bits_are_rejected() {
        let mut hello = encode_hello(&[1; 16]);
        hello[1] = 2;
        assert_eq!(decode(&hello), Err(DecodeError::BadVersion));
        hello[1] = VERSION;
        hello[3] = 1;
        assert_eq!(decode(&hello), Err(DecodeError::BadField));
        hello[3] = 0;
        hello[0] = 0x7f;
        assert_eq!(decode(&hello), Err(DecodeError::UnknownType));
    }

    #[test]
    fn welcome_with_impossible_fields_is_rejected() {
        let mut p = params();
        p.prefix_v4 = 33;
        let mut w = encode_welcome_unsigned(&[0; 16], &p);
        w.extend_from_slice(&[0; 32]);
        assert_eq!(decode(&w), Err(DecodeError::BadField));
        p = SessionParams { session_id: 0, ..params() };
        let mut w = encode_welcome_unsigned(&[0; 16], &p);
        w.extend_from_slice(&[0; 32]);
        assert_eq!(decode(&w), Err(DecodeError::BadField));
    }

    fn type_of(m: &Message<'_>) -> MsgType {
        match m {
            Message::Hello { .. } => MsgType::Hello,
            Message::Challenge { .. } => MsgType::Challenge,
            Message::Auth { .. } => MsgType::Auth,
            Message::Welcome { .. } => MsgType::Welcome,
            Message::Data { .. } => MsgType::Data,
            Message::Stale { .. } => MsgType::Stale,
        }
    }

    proptest::proptest! {
        /// Only a known type, version 1 and zero reserved bytes get past the header, and what
        /// decodes is of the type its first byte names.
        #[test]
        fn random_bytes_decode_only_behind_a_valid_header(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1600)) {
            let header_ok = bytes.len() >= HEADER_LEN
                && MsgType::from_u8(bytes[0]).is_some()
                && bytes[1] == VERSION
                && bytes[2..4] == [0, 0];
            if let Ok(m) = decode(&bytes) {
                proptest::prop_assert!(header_ok);
                proptest::prop_assert_eq!(type_of(&m) as u8, bytes[0]);
            }
            if !header_ok {
                proptest::prop_assert!(decode(&bytes).is_err());
            }
        }

        /// Behind a valid header the length decides: control messages only at their exact
        /// length, data frames from their header on, with the payload being the rest.
        #[test]
        fn behind_a_valid_header_the_length_decides(t in 1u8..=6, body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut b = vec![t, VERSION, 0, 0];
            b.extend_from_slice(&body);
            let t = MsgType::from_u8(t).unwrap();
            let length_ok = match t {
                MsgType::Hello => b.len() == HELLO_LEN,
                MsgType::Challenge => b.len() == CHALLENGE_LEN,
                MsgType::Auth => b.len() == AUTH_LEN,
                MsgType::Welcome => b.len() == WELCOME_LEN,
                MsgType::Data => b.len() >= DATA_HEADER_LEN,
                MsgType::Stale => b.len() == STALE_LEN,
            };
            match decode(&b) {
                Err(DecodeError::BadLength) => proptest::prop_assert!(!length_ok),
                // Only a Welcome has fields that can be impossible (prefix > 32, session 0).
                Err(e) => proptest::prop_assert!(length_ok && t == MsgType::Welcome && e == DecodeError::BadField, "{:?}", e),
                Ok(Message::Data { payload, .. }) => proptest::prop_assert_eq!(payload, &b[DATA_HEADER_LEN..]),
                Ok(m) => proptest::prop_assert!(length_ok && type_of(&m) == t),
            }
        }
    }
}
