//! The problems the user is told about, in words they can act on: what is missing or refused,
//! and the button that helps.

use dockroute_api::client::ClientError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub title: String,
    pub detail: String,
    pub action: Option<Action>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    DockerNotRunning,
    HelperNotInstalled,
    HelperNotRunning,
    HelperNotAuthorised,
    /// macOS: the helper is registered and waits for the user's switch in Login Items.
    HelperNeedsApproval,
    /// macOS will not run the helper the way it was installed (an ad-hoc signed app and
    /// SMAppService): the administrator-password install is offered.
    HelperRefused,
    /// The running helper is older than the app, and installing it again takes a password.
    HelperOutdated,
    RouteConflict,
    /// A network on public address space is not routed (no `route` line covers it).
    RouteSkipped,
    /// The followed engine routes containers itself (OrbStack): Dockroute starts nothing there.
    EngineNotNeeded,
    Other,
}

impl ProblemKind {
    /// Whether the tunnel cannot work at all while this problem lasts (the phase is `error`),
    /// as opposed to a warning next to a working tunnel.
    pub fn blocks(self) -> bool {
        !matches!(self, ProblemKind::RouteConflict | ProblemKind::RouteSkipped | ProblemKind::HelperOutdated)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    InstallHelper,
    Retry,
    /// macOS: System Settings → General → Login Items, where the helper is allowed.
    OpenLoginItems,
    /// macOS: install the helper with the administrator's password (the other way in).
    InstallHelperWithPassword,
}

/// A failure the user can act on, carried through `anyhow` so the service can show it.
#[derive(Debug)]
pub struct ProblemError(pub Problem);

impl std::fmt::Display for ProblemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.title, self.0.detail)
    }
}

impl std::error::Error for ProblemError {}

/// The followed engine needs no Dockroute (OrbStack); `others` are the engines the user could
/// switch to.
pub fn engine_not_needed_problem(others: &[String]) -> Problem {
    let detail = match others {
        [] => "Its containers are reachable by IP and by name from the Mac already. Dockroute starts nothing on it; \
               when another engine runs, pick it under Engines."
            .to_string(),
        others => format!(
            "Its containers are reachable by IP and by name from the Mac already. Dockroute starts nothing on it. \
             Also running here: {}; pick one under Engines for Dockroute to follow.",
            others.join(", ")
        ),
    };
    Problem { kind: ProblemKind::EngineNotNeeded, title: crate::engines::ORBSTACK_NOTE.into(), detail, action: None }
}

/// macOS: the helper is registered but runs only once the user allows it in `settings`.
pub fn helper_approval_problem(settings: &str) -> Problem {
    Problem {
        kind: ProblemKind::HelperNeedsApproval,
        title: "Allow the helper in System Settings".into(),
        detail: format!(
            "macOS runs Dockroute's helper only after you allow it: in {settings}, switch on “Dockroute” under “Allow \
             in the Background”. Dockroute connects by itself then."
        ),
        action: Some(Action::OpenLoginItems),
    }
}

/// macOS will not run the helper through SMAppService; the password install remains.
pub fn helper_refused_problem(why: &str) -> Problem {
    Problem {
        kind: ProblemKind::HelperRefused,
        title: "macOS does not start the helper".into(),
        detail: format!(
            "{} This happens with a build of Dockroute that is not signed with a Developer ID. Install the helper \
             with your administrator password instead: it runs as the same system service.",
            why.trim_end_matches('.').to_string() + "."
        ),
        action: Some(Action::InstallHelperWithPassword),
    }
}

/// The helper answers with an older version than the app's.
pub fn helper_outdated_problem(helper: &str, app: &str) -> Problem {
    Problem {
        kind: ProblemKind::HelperOutdated,
        title: "The helper is out of date".into(),
        detail: format!(
            "The helper runs version {helper}, the app is {app}. Install the new helper (your administrator password) \
             so both match."
        ),
        action: Some(Action::InstallHelperWithPassword),
    }
}

/// The Docker engine cannot be reached.
pub fn docker_problem(engine: &str, err: &dyn std::fmt::Display) -> Problem {
    Problem {
        kind: ProblemKind::DockerNotRunning,
        title: "Docker is not running".into(),
        detail: format!(
            "Cannot reach the Docker engine at {engine}: {err}. Start Docker Desktop; Dockroute reconnects by itself."
        ),
        action: Some(Action::Retry),
    }
}

/// The helper cannot be reached or refused us. `socket_exists` tells an uninstalled helper
/// from a stopped one.
pub fn helper_problem(socket: &std::path::Path, err: &ClientError, socket_exists: bool) -> Problem {
    match err {
        ClientError::NotRunning(_) if !socket_exists => Problem {
            kind: ProblemKind::HelperNotInstalled,
            title: "Helper not installed".into(),
            detail: format!(
                "Dockroute needs its small privileged helper to create the tunnel interface and the routes \
                 (nothing at {}). Install it once; it runs in the background and asks for nothing else.",
                socket.display()
            ),
            action: Some(Action::InstallHelper),
        },
        ClientError::NotRunning(_) => Problem {
            kind: ProblemKind::HelperNotRunning,
            title: "Helper not running".into(),
            detail: format!(
                "The helper is installed but does not answer at {}. Reinstalling starts it again.",
                socket.display()
            ),
            action: Some(Action::InstallHelper),
        },
        ClientError::NotAuthorised(m) => Problem {
            kind: ProblemKind::HelperNotAuthorised,
            title: "Not allowed to use the helper".into(),
            detail: format!("{m}. Add your user to the helper's group (allow-group in its config) and log in again."),
            action: Some(Action::Retry),
        },
        other => Problem {
            kind: ProblemKind::Other,
            title: "The helper failed".into(),
            detail: other.to_string(),
            action: Some(Action::Retry),
        },
    }
}
