//! Who the teammates are: the config's `token NAME [IP]` lines and the state's keys, combined.
//!
//! - A teammate can connect when the state holds a public key for their name (made by
//!   `share add`), and their address is usable.
//! - Their address: the config's `token NAME IP` if the line gives one (the file is what the
//!   user edits, so it wins), else the address recorded when the key was made.
//! - A `token` line without a key is listed, waiting for `share add NAME`.
//! - `share add NAME` takes the token's address, or `--ip`, or the next free one.
//! - `share revoke NAME` removes the key; a `token` line stays a reservation.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::config::{next_free, Token};

use super::state::StoredTeammate;

use crate::link::Link;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub address: Option<Ipv4Addr>,
    /// Base64; None: a `token` line nobody has a key for yet.
    pub public_key: Option<String>,
    /// Why they cannot connect, if they cannot.
    pub problem: Option<String>,
}

impl Member {
    pub fn active(&self) -> bool {
        self.public_key.is_some() && self.problem.is_none() && self.address.is_some()
    }
}

/// Everyone, sorted by name.
pub fn roster(tokens: &[Token], stored: &[StoredTeammate], link: Link) -> Vec<Member> {
    let given = |name: &str| tokens.iter().find(|t| t.name == name && !t.assigned).and_then(|t| t.ip);
    let mut members: BTreeMap<String, Member> = BTreeMap::new();
    for s in stored {
        let address = given(&s.name).unwrap_or(s.address);
        let problem = (address != s.address).then(|| {
            format!(
                "the config's token line moved them from {} to {address}: their config still says {}",
                s.address, s.address
            )
        });
        let m =
            Member { name: s.name.clone(), address: Some(address), public_key: Some(s.public_key.clone()), problem };
        members.insert(s.name.clone(), m);
    }
    let waiting: Vec<&Token> = tokens.iter().filter(|t| !members.contains_key(&t.name)).collect();
    for t in waiting {
        let problem = Some(format!("no key yet: run `dockroute-helper share add {}`", t.name));
        members.insert(
            t.name.clone(),
            Member { name: t.name.clone(), address: given(&t.name), public_key: None, problem },
        );
    }
    let mut taken: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
    for m in members.values_mut() {
        let Some(ip) = m.address else { continue };
        if let Some(why) = link.refuses(ip) {
            m.problem.get_or_insert(why);
        } else if let Some(other) = taken.get(&ip) {
            m.problem.get_or_insert(format!("{ip} is already {other}'s"));
        } else {
            taken.insert(ip, m.name.clone());
        }
    }
    members.into_values().collect()
}

/// The address `share add NAME [--ip IP]` gives: the token's, else `ip`, else the next free.
pub fn address_for(
    name: &str,
    ip: Option<Ipv4Addr>,
    tokens: &[Token],
    stored: &[StoredTeammate],
    link: Link,
) -> Result<Ipv4Addr, String> {
    let token = tokens.iter().find(|t| t.name == name && !t.assigned).and_then(|t| t.ip);
    let others: Vec<Ipv4Addr> = stored
        .iter()
        .filter(|s| s.name != name)
        .map(|s| s.address)
        .chain(tokens.iter().filter(|t| t.name != name && !t.assigned).filter_map(|t| t.ip))
        .collect();
    let chosen = match (token, ip) {
        (Some(t), Some(i)) if t != i => {
            return Err(format!("the config's `token {name} {t}` line gives {name} {t}, not {i}"));
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => match stored.iter().find(|s| s.name == name) {
            Some(s) => s.address,
            None => next_free(link.host.trunc(), &link.reserved(), &others)
                .ok_or_else(|| format!("no free address left in {}", link.host.trunc()))?,
        },
    };
    if let Some(why) = link.refuses(chosen) {
        return Err(why);
    }
    if others.contains(&chosen) {
        return Err(format!("{chosen} is already another teammate's"));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Link {
        Link { host: "198.18.5.1/24".parse().unwrap(), guest: "198.18.5.2".parse().unwrap() }
    }

    fn token(name: &str, ip: Option<&str>) -> Token {
        Token { name: name.into(), ip: ip.map(|i| i.parse().unwrap()), assigned: false, line: 1 }
    }

    fn stored(name: &str, ip: &str) -> StoredTeammate {
        StoredTeammate { name: name.into(), address: ip.parse().unwrap(), public_key: format!("key-{name}") }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn keyed_teammates_connect_and_token_lines_without_a_key_wait() {
        let r = roster(&[token("bob", Some("198.18.5.9"))], &[stored("alice", "198.18.5.3")], link());
        assert_eq!(r.len(), 2);
        assert!(r[0].active(), "{:?}", r[0]);
        assert_eq!((r[1].name.as_str(), r[1].address, r[1].active()), ("bob", Some(ip("198.18.5.9")), false));
        assert!(r[1].problem.as_ref().unwrap().contains("share add bob"));
    }

    #[test]
    fn the_config_token_address_wins_and_the_mismatch_is_said() {
        let r = roster(&[token("alice", Some("198.18.5.7"))], &[stored("alice", "198.18.5.3")], link());
        assert_eq!(r[0].address, Some(ip("198.18.5.7")));
        assert!(!r[0].active());
        assert!(r[0].problem.as_ref().unwrap().contains("moved them from 198.18.5.3 to 198.18.5.7"));
        let r = roster(&[token("alice", None)], &[stored("alice", "198.18.5.3")], link());
        assert!(r[0].active(), "a token line without an address keeps the stored one");
    }

    #[test]
    fn addresses_outside_the_link_reserved_or_doubled_cannot_connect() {
        let r = roster(
            &[token("carol", Some("198.18.5.3"))],
            &[stored("alice", "198.18.5.3"), stored("bob", "198.18.5.2"), stored("dan", "10.0.0.3")],
            link(),
        );
        let state: Vec<_> = r.iter().map(|m| (m.name.as_str(), m.active())).collect();
        assert_eq!(state, [("alice", true), ("bob", false), ("carol", false), ("dan", false)]);
        assert!(r[1].problem.as_ref().unwrap().contains("reserved"));
        assert!(r[3].problem.as_ref().unwrap().contains("outside the link subnet 198.18.5.0/24"));
    }

    #[test]
    fn share_add_takes_the_token_address_or_the_given_one_or_the_next_free() {
        let tokens = [token("bob", Some("198.18.5.9")), token("carol", None)];
        let st = [stored("alice", "198.18.5.3")];
        assert_eq!(address_for("bob", None, &tokens, &st, link()), Ok(ip("198.18.5.9")));
        assert!(address_for("bob", Some(ip("198.18.5.10")), &tokens, &st, link()).unwrap_err().contains("token bob"));
        assert_eq!(address_for("carol", None, &tokens, &st, link()), Ok(ip("198.18.5.4")));
        assert_eq!(address_for("dan", Some(ip("198.18.5.20")), &tokens, &st, link()), Ok(ip("198.18.5.20")));
        assert_eq!(address_for("alice", None, &tokens, &st, link()), Ok(ip("198.18.5.3")), "a rotation keeps it");
        assert!(address_for("dan", Some(ip("198.18.5.3")), &tokens, &st, link()).unwrap_err().contains("already"));
        assert!(address_for("dan", Some(ip("198.18.5.9")), &tokens, &st, link()).unwrap_err().contains("already"));
        assert!(address_for("dan", Some(ip("198.18.5.1")), &tokens, &st, link()).unwrap_err().contains("reserved"));
        let tiny = Link { host: "198.18.5.1/30".parse().unwrap(), guest: "198.18.5.2".parse().unwrap() };
        assert!(address_for("dan", None, &[], &[], tiny).unwrap_err().contains("no free address"));
    }
}
