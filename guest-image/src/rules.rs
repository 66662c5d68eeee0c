//! The rules file the controller copies into the guest container: which networks are
//! `--internal` and which subnet pairs may reach each other. Same line format as the config
//! file (`key value`, `#` comments), so one habit serves both.
//!
//! ```text
//! internal 198.19.2.0/24
//! iptables 198.19.1.0+198.19.3.0
//! ```

use std::net::IpAddr;

use ipnet::IpNet;

use crate::firewall;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub internal: Vec<IpNet>,
    /// Seed syntax, as addresses; resolved to subnets against the VM's routes when applied.
    pub pairs: Vec<(IpAddr, IpAddr)>,
}

/// Parses the file; an error names the line and the previous rules stay in force.
pub fn parse(text: &str) -> Result<Rules, String> {
    let mut rules = Rules::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |m: String| format!("line {}: {m} in {line:?}", i + 1);
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["internal", cidr] => {
                let net: IpNet = cidr.parse().map_err(|_| err(format!("{cidr:?} is not a subnet")))?;
                rules.internal.push(net.trunc());
            }
            // `-` pairs (the seed's "remove") need no rule: absence is removal here.
            ["iptables", pair] if pair.contains('-') && !pair.contains('+') => {}
            ["iptables", pair] => rules.pairs.push(firewall::parse_pair(pair).map_err(err)?),
            _ => return Err(err("expected `internal CIDR` or `iptables A+B`".into())),
        }
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_networks_and_pairs_parse_and_bad_lines_name_their_number() {
        let r = parse("# c\ninternal 198.19.2.5/24\niptables 198.19.1.0+198.19.3.0\niptables 198.19.4.0-198.19.5.0\n")
            .unwrap();
        assert_eq!(r.internal, ["198.19.2.0/24".parse::<IpNet>().unwrap()]);
        assert_eq!(r.pairs, [("198.19.1.0".parse().unwrap(), "198.19.3.0".parse().unwrap())]);
        let e = parse("internal 198.19.2.0/24\nroute 1.2.3.0/24\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        assert!(parse("internal nope").unwrap_err().contains("line 1"));
        assert_eq!(parse("").unwrap(), Rules::default());
    }
}
