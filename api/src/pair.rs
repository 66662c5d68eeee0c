//! The seed's `iptables A+B`: two container networks (named by an address inside each, without
//! a mask, as mac-docker-connector wrote them) that may reach each other. `A-B` is the seed's
//! "remove" form. Parsed here once for the config file, the app's `--iptables` flag, the guest's
//! rules file and the firewall.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pair {
    pub a: IpAddr,
    pub b: IpAddr,
}

/// `A+B` adds a pair, `A-B` (the seed's syntax) removes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairOp {
    Insert,
    Remove,
}

impl Pair {
    /// `A+B` or `A-B`, surrounding white space allowed.
    pub fn parse_with_op(text: &str) -> Result<(Pair, PairOp), String> {
        let t = text.trim();
        let ((a, b), op) = match (t.split_once('+'), t.split_once('-')) {
            (Some(ab), None) => (ab, PairOp::Insert),
            (None, Some(ab)) => (ab, PairOp::Remove),
            _ => return Err(format!("{t:?}: expected A+B or A-B (two addresses, e.g. 172.0.1.0+172.0.2.0)")),
        };
        let ip = |x: &str| {
            let x = x.trim();
            x.parse::<IpAddr>().map_err(|_| format!("{t:?}: {x:?} is not an IP address (write it without a mask)"))
        };
        let (a, b) = (ip(a)?, ip(b)?);
        if a.is_ipv4() != b.is_ipv4() {
            let family = if a.is_ipv4() { "IPv4" } else { "IPv6" };
            return Err(format!("{t:?}: \"{b}\" is not {family} like \"{a}\""));
        }
        Ok((Pair { a, b }, op))
    }

    pub fn is_ipv4(&self) -> bool {
        self.a.is_ipv4()
    }
}

impl FromStr for Pair {
    type Err = String;

    /// Only the `A+B` form: a pair that is to exist.
    fn from_str(s: &str) -> Result<Pair, String> {
        match Pair::parse_with_op(s)? {
            (pair, PairOp::Insert) => Ok(pair),
            (_, PairOp::Remove) => Err(format!("{:?}: expected A+B (A-B removes a pair)", s.trim())),
        }
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.a, self.b)
    }
}

impl Serialize for Pair {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Pair {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Pair, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_seed_syntax_parses_in_both_families_and_prints_back() {
        let p: Pair = " 198.19.1.0 + 198.19.2.0\n".parse().unwrap();
        assert_eq!(p, Pair { a: ip("198.19.1.0"), b: ip("198.19.2.0") });
        assert_eq!(p.to_string(), "198.19.1.0+198.19.2.0");
        assert_eq!(p.to_string().parse::<Pair>(), Ok(p));
        let v6: Pair = "2001:2:1::+2001:2:2::".parse().unwrap();
        assert!(!v6.is_ipv4());
        assert_eq!(Pair::parse_with_op("172.0.3.0-172.0.4.0").unwrap().1, PairOp::Remove);
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"198.19.1.0+198.19.2.0\"");
        assert_eq!(serde_json::from_str::<Pair>("\"198.19.1.0+198.19.2.0\"").unwrap(), p);
    }

    #[test]
    fn bad_pairs_say_what_is_wrong() {
        let err = |s: &str| s.parse::<Pair>().unwrap_err();
        assert!(err("172.0.1.0").contains("expected A+B or A-B"));
        assert!(err("172.0.1.0+172.0.2.0-172.0.3.0").contains("expected A+B or A-B"));
        assert!(err("172.0.1.0/24+172.0.2.0").contains("\"172.0.1.0/24\" is not an IP address"));
        assert!(err("172.0.1.0+fd00::").contains("\"fd00::\" is not IPv4"));
        assert!(err("fd00::+172.0.1.0").contains("\"172.0.1.0\" is not IPv6"));
        assert!(err("172.0.1.0-172.0.2.0").contains("A-B removes"));
        assert!(err("+").contains("is not an IP address"));
        assert!(serde_json::from_str::<Pair>("\"x+y\"").is_err());
    }
}
