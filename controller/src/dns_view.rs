//! What the dashboard shows of container names (pure): each container's names as the user
//! types them, which ones clash, which were skipped and why, and where the helper answers.

use dockroute_api::DnsStatus;
use serde::{Deserialize, Serialize};

use crate::names::{Claim, NameSet};
use crate::view::ContainerView;

/// One of a container's names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameView {
    /// Full, e.g. `web.docker`, `*.shop.test`.
    pub name: String,
    /// A `*.` name: shown, nothing to open.
    pub wildcard: bool,
    /// Another container claims it too (it answers with both).
    pub clash: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsView {
    /// Where the helper answers, e.g. `192.168.251.1:53`; None when it could not listen.
    pub listen: Option<String>,
    pub suffix: String,
    /// What the host's resolver was told (or what to add).
    pub resolver: String,
    pub problems: Vec<String>,
    pub clashes: Vec<ClashView>,
    pub skipped: Vec<SkippedView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClashView {
    pub name: String,
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedView {
    pub container: String,
    pub name: String,
    pub reason: String,
}

/// Fills in each container's names; with no DNS server (`suffix` None) they have none.
pub fn with_names(containers: &mut [ContainerView], names: &NameSet, suffix: Option<&str>) {
    for c in containers {
        c.names = match (suffix, names.claims.get(&c.id)) {
            (Some(suffix), Some(claims)) => claims.iter().map(|claim| name_view(claim, names, suffix)).collect(),
            _ => Vec::new(),
        };
    }
}

fn name_view(claim: &Claim, names: &NameSet, suffix: &str) -> NameView {
    let name = claim.full(suffix);
    NameView { wildcard: name.starts_with("*."), clash: names.clashes.iter().any(|c| &c.name == claim), name }
}

/// The DNS part of the view, from the helper's report and the controller's names.
pub fn dns_view(status: &DnsStatus, names: &NameSet) -> DnsView {
    DnsView {
        listen: status.listen.map(|a| a.to_string()),
        suffix: status.suffix.clone(),
        resolver: status.resolver.clone(),
        problems: status.problems.clone(),
        clashes: (names.clashes.iter())
            .map(|c| ClashView { name: c.name.full(&status.suffix), containers: c.containers.clone() })
            .collect(),
        skipped: (names.skipped.iter())
            .map(|s| SkippedView { container: s.container.clone(), name: s.name.clone(), reason: s.reason.clone() })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::names::{Clash, Skipped};

    fn set() -> NameSet {
        NameSet {
            claims: BTreeMap::from([(
                "id1".to_string(),
                vec![
                    Claim::Relative("api.shop".into()),
                    Claim::Relative("web".into()),
                    Claim::Absolute("*.shop.test".into()),
                ],
            )]),
            clashes: vec![Clash { name: Claim::Relative("api.shop".into()), containers: vec!["a".into(), "b".into()] }],
            skipped: vec![Skipped {
                container: "my_db".into(),
                name: "my_db".into(),
                reason: "'_' is not allowed".into(),
            }],
            ..Default::default()
        }
    }

    fn container(id: &str) -> ContainerView {
        ContainerView { id: id.into(), name: id.into(), addresses: vec![], ports: vec![], names: vec![] }
    }

    #[test]
    fn containers_get_their_full_names_marked_when_they_clash_or_are_wildcards() {
        let mut list = [container("id1"), container("id2")];
        with_names(&mut list, &set(), Some("docker"));
        let shown: Vec<(&str, bool, bool)> =
            list[0].names.iter().map(|n| (n.name.as_str(), n.clash, n.wildcard)).collect();
        assert_eq!(
            shown,
            [("api.shop.docker", true, false), ("web.docker", false, false), ("*.shop.test", false, true)]
        );
        assert!(list[1].names.is_empty(), "a container without claims");
        with_names(&mut list, &set(), None);
        assert!(list[0].names.is_empty(), "no DNS server, no names shown");
    }

    #[test]
    fn the_dns_view_says_where_it_answers_what_clashes_and_what_was_skipped() {
        let status = DnsStatus {
            listen: Some("192.168.251.1:53".parse().unwrap()),
            suffix: "test".into(),
            zones: vec!["test".into()],
            names: 3,
            resolver: "/etc/resolver/test".into(),
            problems: vec![],
        };
        let v = dns_view(&status, &set());
        assert_eq!((v.listen.as_deref(), v.suffix.as_str()), (Some("192.168.251.1:53"), "test"));
        assert_eq!(v.clashes, [ClashView { name: "api.shop.test".into(), containers: vec!["a".into(), "b".into()] }]);
        assert_eq!(v.skipped[0].reason, "'_' is not allowed");
    }
}
