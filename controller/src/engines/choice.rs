//! Which engine Dockroute follows when several answer, and how the list is shown. Pure: the
//! candidates come probed (`probe::survey`), the user's choice comes from the app's prefs.

use serde::{Deserialize, Serialize};

use super::kind::{EngineKind, ORBSTACK_NOTE};
use crate::endpoint::DockerEndpoint;

/// What one engine said when asked (`probe::probe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    pub kind: EngineKind,
    /// The engine's own version (Podman's for Podman).
    pub version: Option<String>,
    /// The API version both sides agreed on.
    pub api_version: Option<String>,
    /// Whether its events announce networks being created and removed
    /// (`docker_events::announces_networks`): if not, the controller lists them.
    pub announces_networks: bool,
}

/// A candidate endpoint and what asking it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub endpoint: DockerEndpoint,
    pub probed: Result<Probed, String>,
}

/// One engine as the dashboard and the menu list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineView {
    /// The endpoint (`unix:///…`, `tcp://…`): what a switch names and the prefs keep.
    pub id: String,
    /// "Docker Desktop", "Colima", …; the socket's usual owner while it does not answer.
    pub name: String,
    pub kind: Option<EngineKind>,
    /// Why this endpoint is known: DOCKER_HOST, a context, a well-known socket.
    pub source: String,
    pub version: Option<String>,
    pub reachable: bool,
    /// The one Dockroute follows.
    pub followed: bool,
    /// Why Dockroute does nothing there (OrbStack), or why it did not answer.
    pub note: Option<String>,
}

/// The engine to follow: the user's choice while it is among the candidates (answering or
/// not: they chose it, and the view says it is down); else the first that answers, in the
/// docker CLI's order (`endpoint::candidates`); else the first.
pub fn choose(found: &[Found], chosen: Option<&str>) -> Option<usize> {
    if let Some(i) = chosen.and_then(|c| found.iter().position(|f| f.endpoint.host == c)) {
        return Some(i);
    }
    found.iter().position(|f| f.probed.is_ok()).or(if found.is_empty() { None } else { Some(0) })
}

/// The list as shown, with the followed one marked.
pub fn views(found: &[Found], followed: Option<usize>) -> Vec<EngineView> {
    let view = |(i, f): (usize, &Found)| {
        let (name, kind, version, note) = match &f.probed {
            Ok(p) => {
                let note = p.kind.routes_containers_itself().then(|| ORBSTACK_NOTE.to_string());
                (p.kind.display_name().to_string(), Some(p.kind), p.version.clone(), note)
            }
            Err(e) => (f.endpoint.source.clone(), None, None, Some(format!("not answering: {e}"))),
        };
        EngineView {
            id: f.endpoint.host.clone(),
            name,
            kind,
            source: f.endpoint.source.clone(),
            version,
            reachable: f.probed.is_ok(),
            followed: followed == Some(i),
            note,
        }
    };
    found.iter().enumerate().map(view).collect()
}

/// The others the user could switch to (answering, and needing Dockroute), for the OrbStack
/// note.
pub fn alternatives(found: &[Found], followed: Option<usize>) -> Vec<String> {
    let useful = |p: &Probed| !p.kind.routes_containers_itself();
    (found.iter().enumerate())
        .filter(|(i, f)| Some(*i) != followed && f.probed.as_ref().is_ok_and(useful))
        .map(|(_, f)| f.probed.as_ref().map(|p| p.kind.display_name()).unwrap_or_default().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(host: &str, kind: Option<EngineKind>) -> Found {
        Found {
            endpoint: DockerEndpoint { host: host.into(), source: format!("source of {host}") },
            probed: kind
                .map(|kind| Probed { kind, version: Some("1".into()), api_version: None, announces_networks: true })
                .ok_or("refused".into()),
        }
    }

    #[test]
    fn the_users_choice_wins_while_it_exists_even_when_down() {
        let f = [found("a", Some(EngineKind::DockerDesktop)), found("b", None), found("c", Some(EngineKind::Colima))];
        assert_eq!(choose(&f, Some("c")), Some(2));
        assert_eq!(choose(&f, Some("b")), Some(1), "chosen and down: the view says so, no silent switch");
        assert_eq!(choose(&f, Some("gone")), Some(0), "a choice no longer there: the CLI's pick");
    }

    #[test]
    fn without_a_choice_the_first_that_answers_in_the_clis_order() {
        let f = [found("a", None), found("b", Some(EngineKind::Colima)), found("c", Some(EngineKind::DockerDesktop))];
        assert_eq!(choose(&f, None), Some(1));
        assert_eq!(choose(&[found("a", None)], None), Some(0), "none answers: the first, which says why");
        assert_eq!(choose(&[], None), None);
    }

    #[test]
    fn orbstack_is_listed_with_its_note_and_the_others_are_offered() {
        let f = [
            found("orb", Some(EngineKind::OrbStack)),
            found("colima", Some(EngineKind::Colima)),
            found("dead", None),
            found("dd", Some(EngineKind::DockerDesktop)),
        ];
        let chosen = choose(&f, None);
        assert_eq!(chosen, Some(0), "OrbStack is followed when it is the CLI's pick: the user sees why nothing runs");
        let v = views(&f, chosen);
        assert!(v[0].followed && v[0].note.as_deref() == Some(ORBSTACK_NOTE));
        assert_eq!(v[1].name, "Colima");
        assert!(!v[1].followed && v[1].note.is_none());
        assert!(!v[2].reachable && v[2].note.as_deref() == Some("not answering: refused"));
        assert_eq!(v[2].name, "source of dead", "a silent socket is named by where it was found");
        assert_eq!(alternatives(&f, chosen), ["Colima", "Docker Desktop"]);
        assert_eq!(alternatives(&f, Some(1)), ["Docker Desktop"], "OrbStack is no alternative");
    }
}
