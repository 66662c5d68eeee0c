//! The dashboard's Trust and Remove buttons for the local CA, as plain steps: who does what on
//! which system, and what each answer means for the next step. Trusting a root is the user's
//! decision, and the OS asks for it:
//!
//! - macOS: the app runs `security add-trusted-cert` / `remove-trusted-cert` itself, in the
//!   user's session, so macOS asks for the password (a root daemon cannot ask); then it tells
//!   the helper (`ca_trusted`), whose record uninstall follows. Remove also asks the helper to
//!   remove what it can reach (`ca_untrust`: an admin-domain entry a `ca trust` made).
//! - Linux: the helper does it as root (`ca_trust` / `ca_untrust`: the system store), if the
//!   app's user has the right to share; otherwise the helper answers `not_authorised` and
//!   nothing changes.
//!
//! `plan` decides, `run` carries a plan out with a command runner (the thin OS call) and the
//! helper's socket.

use std::path::Path;

use dockroute_api::macos_trust::{self, Outcome};
use dockroute_api::{Client, Op};

/// How the CA is trusted from the app on this system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustWay {
    /// macOS: `security` in the user's session, then the helper is told.
    InSession,
    /// Linux: the helper does it.
    ThroughHelper,
}

impl TrustWay {
    pub fn here() -> TrustWay {
        if cfg!(target_os = "macos") {
            TrustWay::InSession
        } else {
            TrustWay::ThroughHelper
        }
    }
}

/// One step of Trust or Remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run `security` with these arguments (argv[0] is the tool's name).
    Security(Vec<String>),
    /// Send the helper this operation.
    Tell(Op),
}

/// The steps for Trust (`trust`) or Remove, with the CA certificate at `cert` (as the helper's
/// status names it).
pub fn plan(way: TrustWay, trust: bool, cert: &Path) -> Vec<Step> {
    match (way, trust) {
        (TrustWay::InSession, true) => vec![
            Step::Security(macos_trust::add_trusted_cert(cert, false)),
            Step::Tell(Op::CaTrusted { trusted: true }),
        ],
        (TrustWay::InSession, false) => vec![
            Step::Security(macos_trust::remove_trusted_cert(cert, false)),
            Step::Tell(Op::CaTrusted { trusted: false }),
            Step::Tell(Op::CaUntrust),
        ],
        (TrustWay::ThroughHelper, true) => vec![Step::Tell(Op::CaTrust)],
        (TrustWay::ThroughHelper, false) => vec![Step::Tell(Op::CaUntrust)],
    }
}

/// What `security`'s answer means for the plan: go on, or stop with what to tell the user.
/// Cancel in macOS's dialog stops quietly: nothing changed, and the helper is told nothing.
pub fn after_security(code: Option<i32>, stderr: &str) -> Result<(), String> {
    match macos_trust::outcome(code, stderr) {
        Outcome::Done | Outcome::AlreadyGone => Ok(()),
        Outcome::Cancelled => Err("Cancelled: nothing changed".into()),
        Outcome::Failed(why) => Err(why),
    }
}

/// How a command ended: exit code (None: a signal) and stderr; Err when it could not run.
pub type RunSecurity<'a> = &'a (dyn Fn(&[String]) -> Result<(Option<i32>, String), String> + Sync);

/// Carries out `steps` in order; the first failure stops them (what was done before stays
/// done, and the helper's record says so).
pub async fn run(steps: &[Step], socket: &Path, security: RunSecurity<'_>) -> Result<(), String> {
    let mut client: Option<Client> = None;
    for step in steps {
        match step {
            Step::Security(argv) => {
                let (code, stderr) = security(argv)?;
                after_security(code, &stderr)?;
            }
            Step::Tell(op) => {
                if client.is_none() {
                    client = Some(Client::connect(socket, "dockroute trust").await.map_err(|e| e.to_string())?);
                }
                let c = client.as_ref().ok_or("no helper connection")?;
                c.call(op.clone()).await.map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "/Library/Application Support/Dockroute/dockroute.ca.pem";

    #[test]
    fn on_macos_the_app_asks_macos_in_the_users_session_then_tells_the_helper() {
        let steps = plan(TrustWay::InSession, true, Path::new(CERT));
        assert_eq!(
            steps,
            [
                Step::Security(["security", "add-trusted-cert", "-r", "trustRoot", CERT].map(String::from).to_vec()),
                Step::Tell(Op::CaTrusted { trusted: true }),
            ]
        );
        let steps = plan(TrustWay::InSession, false, Path::new(CERT));
        assert_eq!(steps[0], Step::Security(["security", "remove-trusted-cert", CERT].map(String::from).to_vec()));
        assert_eq!(steps[1..], [Step::Tell(Op::CaTrusted { trusted: false }), Step::Tell(Op::CaUntrust)]);
    }

    #[test]
    fn on_linux_the_helper_does_it_and_the_app_runs_nothing() {
        assert_eq!(plan(TrustWay::ThroughHelper, true, Path::new(CERT)), [Step::Tell(Op::CaTrust)]);
        assert_eq!(plan(TrustWay::ThroughHelper, false, Path::new(CERT)), [Step::Tell(Op::CaUntrust)]);
    }

    #[test]
    fn securitys_recorded_answers_go_on_stop_quietly_on_cancel_or_say_what_to_do() {
        assert_eq!(after_security(Some(0), ""), Ok(()));
        // actions/runner-images#4734: removing what is not there is no failure.
        assert_eq!(
            after_security(Some(1), "SecTrustSettingsRemoveTrustSettings: No Trust Settings were found.\n"),
            Ok(())
        );
        // anchordotdev/cli#34: Cancel in the password dialog.
        let cancel = "SecTrustSettingsSetTrustSettings: The authorization was canceled by the user.\n";
        assert_eq!(after_security(Some(1), cancel), Err("Cancelled: nothing changed".into()));
        // mkcert#94: a locked login keychain.
        let e = after_security(Some(1), "SecTrustSettingsSetTrustSettings: errSecInternalComponent\n").unwrap_err();
        assert!(e.contains("keychain") && e.contains("errSecInternalComponent"), "{e}");
    }

    #[tokio::test]
    async fn a_cancelled_prompt_tells_the_helper_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // No helper at this path: a step that reached it would fail with "not running".
        let socket = dir.path().join("none.sock");
        let cancelled = |_: &[String]| Ok((Some(1), "… The authorization was canceled by the user.".to_string()));
        let steps = plan(TrustWay::InSession, true, Path::new(CERT));
        assert_eq!(run(&steps, &socket, &cancelled).await, Err("Cancelled: nothing changed".into()));
        let done = |_: &[String]| Ok((Some(0), String::new()));
        let e = run(&steps, &socket, &done).await.unwrap_err();
        assert!(e.contains("not running"), "after macOS said yes, the helper is told: {e}");
    }
}
