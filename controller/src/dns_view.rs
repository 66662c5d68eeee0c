//! What the dashboard shows of container names (pure): each container's names as the user
//! types them, which ones clash, which were skipped and why, and where the helper answers.

use dockroute_api::DnsStatus;
use serde::{Deserialize, Serialize};

use crate::names::NameSet;

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
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::names::{Claim, Clash, Skipped};

    /// Names of one container (`id1`): a clash, a plain name, a wildcard; one skipped.
    pub(crate) fn set() -> NameSet {
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
