//! Which iptables backend to use, per family. Docker may run on iptables-legacy or iptables-nft
//! (Colima mismatched them, docker-mac-net-connect #26). Rules put in the other backend are
//! evaluated too, but Docker's DROPs in its own backend still win, so we use the backend that
//! holds Docker's `DOCKER-USER`. A pure function of what the probes printed.

use super::plan::Family;
use super::save::{targets, Ruleset};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Legacy,
    Nft,
}

impl Backend {
    pub const BOTH: [Backend; 2] = [Backend::Legacy, Backend::Nft];
}

/// The tool of a family: `iptables` or `ip6tables`.
pub fn base_tool(f: Family) -> &'static str {
    match f {
        Family::V4 => "iptables",
        Family::V6 => "ip6tables",
    }
}

/// `iptables-legacy-save`, `ip6tables-nft-restore`, ... (`suffix` is "-save" or "-restore").
pub fn tool(f: Family, b: Backend, suffix: &str) -> String {
    let b = match b {
        Backend::Legacy => "legacy",
        Backend::Nft => "nft",
    };
    format!("{}-{b}{suffix}", base_tool(f))
}

/// What the probes of one family printed; None where the command did not run (not installed,
/// failed, timed out). Reading with `*-save` instantiates nothing, unlike `-S`/`-t` on legacy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    pub legacy_save: Option<String>,
    pub nft_save: Option<String>,
    /// `iptables --version` (which backend the plain name points to).
    pub version: Option<String>,
}

/// Why a backend was chosen (for the log: a default choice deserves a warning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Only this backend has DOCKER-USER.
    OnlyDockerUser,
    /// Both have DOCKER-USER; only this one jumps to it from FORWARD (the other is a leftover).
    OnlyWired,
    /// Neither has DOCKER-USER (Docker not started yet, or none): what the plain tool uses.
    NoDockerUser,
    /// Both have it, equally wired or not: what the plain tool uses.
    Ambiguous,
    /// IPv6's tools do not run: assume nft (IPv6 rules, if asked for, will fail and say why).
    Ipv6Unusable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub backend: Backend,
    pub reason: Reason,
}

/// One family's backend; Err when none of its tools runs at all.
pub fn choose(f: Family, p: &Probe) -> Result<Choice, String> {
    let mut found = Vec::new(); // (backend, FORWARD jumps to DOCKER-USER)
    for (b, out) in [(Backend::Legacy, &p.legacy_save), (Backend::Nft, &p.nft_save)] {
        let Some(out) = out else { continue };
        let rs = Ruleset::parse(out);
        if let Some(t) = rs.table("filter").filter(|t| t.has_chain("DOCKER-USER")) {
            found.push((b, t.rules_of("FORWARD").any(|r| targets(r, "DOCKER-USER"))));
        }
    }
    let default = match p.version.as_deref() {
        Some(v) if v.contains("legacy") => Some(Backend::Legacy),
        Some(v) if v.contains("nf_tables") => Some(Backend::Nft),
        _ => None,
    };
    if p.legacy_save.is_none() && p.nft_save.is_none() && default.is_none() {
        let base = base_tool(f);
        return Err(format!("neither {base}-legacy-save nor {base}-nft-save runs"));
    }
    let default = default.unwrap_or(Backend::Nft);
    let choice = |backend, reason| Choice { backend, reason };
    Ok(match found.as_slice() {
        [(b, _)] => choice(*b, Reason::OnlyDockerUser),
        [(b, true), (_, false)] | [(_, false), (b, true)] => choice(*b, Reason::OnlyWired),
        [] => choice(default, Reason::NoDockerUser),
        _ => choice(default, Reason::Ambiguous),
    })
}

/// Both families: IPv4 must work; an IPv6 without tools falls back to nft.
pub fn choose_both(v4: &Probe, v6: &Probe) -> Result<[Choice; 2], String> {
    let v4 = choose(Family::V4, v4)?;
    let v6 = choose(Family::V6, v6).unwrap_or(Choice { backend: Backend::Nft, reason: Reason::Ipv6Unusable });
    Ok([v4, v6])
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    fn probe(legacy: Option<&str>, nft: Option<&str>, version: Option<&str>) -> Probe {
        Probe {
            legacy_save: legacy.map(str::to_string),
            nft_save: nft.map(str::to_string),
            version: version.map(str::to_string),
        }
    }

    fn chosen(p: &Probe) -> (Backend, Reason) {
        let c = choose(Family::V4, p).unwrap();
        (c.backend, c.reason)
    }

    #[test]
    fn tool_names() {
        assert_eq!(tool(Family::V4, Backend::Legacy, "-save"), "iptables-legacy-save");
        assert_eq!(tool(Family::V6, Backend::Nft, "-restore"), "ip6tables-nft-restore");
        assert_eq!(base_tool(Family::V6), "ip6tables");
    }

    #[test]
    fn the_only_backend_with_docker_user_wins_whatever_iptables_points_to() {
        // Engine 20.10 on legacy, while `iptables` is the nft variant (the Colima mismatch).
        let legacy_docker = probe(Some(ENGINE_20_10_LEGACY), Some(NFT_SIDE_OF_LEGACY), Some(VERSION_NFT));
        assert_eq!(chosen(&legacy_docker), (Backend::Legacy, Reason::OnlyDockerUser));
        // Engine 28 on nft, while `iptables` is legacy.
        let nft_docker = probe(Some(LEGACY_SIDE_OF_NFT), Some(ENGINE_28_NFT), Some(VERSION_LEGACY));
        assert_eq!(chosen(&nft_docker), (Backend::Nft, Reason::OnlyDockerUser));
        // The other backend's tool missing entirely changes nothing.
        assert_eq!(chosen(&probe(None, Some(ENGINE_28_NFT), None)), (Backend::Nft, Reason::OnlyDockerUser));
    }

    #[test]
    fn with_docker_user_in_both_the_one_wired_from_forward_wins() {
        // A stale DOCKER-USER left in legacy by an earlier Docker, not jumped to any more.
        let stale = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:DOCKER-USER - [0:0]\nCOMMIT\n";
        assert_eq!(
            chosen(&probe(Some(stale), Some(ENGINE_28_NFT), Some(VERSION_LEGACY))),
            (Backend::Nft, Reason::OnlyWired)
        );
        assert_eq!(
            chosen(&probe(Some(ENGINE_20_10_LEGACY), Some(stale), Some(VERSION_NFT))),
            (Backend::Legacy, Reason::OnlyWired)
        );
    }

    #[test]
    fn with_docker_user_wired_in_both_the_plain_tool_decides() {
        let both = |v| probe(Some(ENGINE_20_10_LEGACY), Some(ENGINE_28_NFT), v);
        assert_eq!(chosen(&both(Some(VERSION_LEGACY))), (Backend::Legacy, Reason::Ambiguous));
        assert_eq!(chosen(&both(Some(VERSION_NFT))), (Backend::Nft, Reason::Ambiguous));
        assert_eq!(chosen(&both(None)), (Backend::Nft, Reason::Ambiguous), "unknown: nft, today's default");
    }

    #[test]
    fn without_docker_user_anywhere_the_plain_tool_decides() {
        let none = |v| probe(Some(""), Some(NFT_NO_DOCKER), v);
        assert_eq!(chosen(&none(Some(VERSION_LEGACY))), (Backend::Legacy, Reason::NoDockerUser));
        assert_eq!(chosen(&none(Some(VERSION_NFT))), (Backend::Nft, Reason::NoDockerUser));
        assert_eq!(chosen(&none(Some("iptables v1.4.21\n"))), (Backend::Nft, Reason::NoDockerUser));
        // DOCKER-USER outside filter, or a rule merely naming it, is not Docker's chain.
        let odd = "*nat\n:DOCKER-USER - [0:0]\nCOMMIT\n*filter\n-A FORWARD -j DOCKER-USER\nCOMMIT\n";
        assert_eq!(chosen(&probe(Some(odd), None, Some(VERSION_LEGACY))), (Backend::Legacy, Reason::NoDockerUser));
        // Only the version runs (no save tool): still a choice.
        assert_eq!(chosen(&probe(None, None, Some(VERSION_LEGACY))), (Backend::Legacy, Reason::NoDockerUser));
    }

    #[test]
    fn no_tool_at_all_is_an_error_for_ipv4_and_nft_for_ipv6() {
        let missing = Probe::default();
        assert_eq!(choose(Family::V4, &missing), Err("neither iptables-legacy-save nor iptables-nft-save runs".into()));
        assert_eq!(
            choose(Family::V6, &missing),
            Err("neither ip6tables-legacy-save nor ip6tables-nft-save runs".into())
        );
        let v4 = probe(Some(ENGINE_20_10_LEGACY), Some(""), Some(VERSION_LEGACY));
        let [a, b] = choose_both(&v4, &missing).unwrap();
        assert_eq!((a.backend, a.reason), (Backend::Legacy, Reason::OnlyDockerUser));
        assert_eq!((b.backend, b.reason), (Backend::Nft, Reason::Ipv6Unusable));
        assert!(choose_both(&missing, &v4).is_err(), "IPv4 is required");
        // A version that names neither backend, with no save tool, is no better than none.
        assert!(choose(Family::V4, &probe(None, None, Some("command not found"))).is_err());
    }
}
