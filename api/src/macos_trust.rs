//! macOS's `security` tool, as plain logic: the command lines (`add-trusted-cert`,
//! `remove-trusted-cert`) and what their exit codes and messages mean. Only running them is
//! left to the caller, on a Mac, in the user's session: macOS asks for the user's password (or
//! Touch ID) itself, and a daemon without a session cannot get that consent. Two callers: the
//! app's Trust / Remove buttons, and the helper's `ca trust` / `ca untrust` / uninstall.
//!
//! Recorded outputs the tests use, and where they come from:
//! - `SecTrustSettingsSetTrustSettings: errSecInternalComponent`, exit 1: mkcert issue #94
//!   (a locked login keychain) and actions/runner-images issue #4734 (no user session to ask).
//! - `SecTrustSettingsRemoveTrustSettings: No Trust Settings were found.`, exit non-zero
//!   (the recording runs it as `… || true`): actions/runner-images issue #4734.
//! - `SecTrustSettingsSetTrustSettings: The authorization was canceled by the user.`, exit 1:
//!   anchordotdev/cli issue #34 (the user pressed Cancel in macOS's password dialog).
//! - `SecTrustSettingsSetTrustSettings: The authorization was denied since no user interaction
//!   was possible.`: PeculiarVentures/fortify issue #475 (run where macOS cannot ask).
//! - The command forms: `man security` (add-trusted-cert `-d` admin domain, `-r trustRoot`,
//!   `-k keychain`; remove-trusted-cert `-d`), as mkcert's truststore_darwin.go uses them.

use std::path::Path;

/// The user's login keychain (admin `false`: the user's own trust settings, which need no
/// root, only their consent), or the admin domain in the System keychain.
pub fn add_trusted_cert(cert: &Path, admin: bool) -> Vec<String> {
    let mut argv: Vec<String> = vec!["security".into(), "add-trusted-cert".into()];
    if admin {
        argv.extend(["-d".into(), "-k".into(), "/Library/Keychains/System.keychain".into()]);
    }
    // trustRoot: a root the user trusts for everything it may sign (the name constraints are
    // what limits it to our names).
    argv.extend(["-r".into(), "trustRoot".into(), cert.display().to_string()]);
    argv
}

pub fn remove_trusted_cert(cert: &Path, admin: bool) -> Vec<String> {
    let mut argv: Vec<String> = vec!["security".into(), "remove-trusted-cert".into()];
    if admin {
        argv.push("-d".into());
    }
    argv.push(cert.display().to_string());
    argv
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Removing trust that was not there: untrust is idempotent.
    AlreadyGone,
    /// The user said no in macOS's dialog: nothing changed, and nothing is wrong.
    Cancelled,
    Failed(String),
}

/// What `security`'s exit code and stderr mean.
pub fn outcome(code: Option<i32>, stderr: &str) -> Outcome {
    if code == Some(0) {
        return Outcome::Done;
    }
    if stderr.contains("No Trust Settings were found") {
        return Outcome::AlreadyGone;
    }
    let said = stderr.trim();
    if said.contains("canceled by the user") {
        return Outcome::Cancelled;
    }
    if said.contains("errSecInternalComponent") || said.contains("no user interaction was possible") {
        return Outcome::Failed(format!(
            "macOS refused to change the trust settings ({said}): trust it from your own \
             session (the app's Trust button, or `dockroute-helper ca trust` in a Terminal) with the login keychain \
             unlocked, and confirm when macOS asks"
        ));
    }
    let code = code.map_or("a signal".to_string(), |c| format!("exit {c}"));
    Outcome::Failed(format!("security failed ({code}): {said}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_lines_are_securitys_own_forms() {
        let cert = Path::new("/Library/Application Support/Dockroute/dockroute.ca.pem");
        assert_eq!(
            add_trusted_cert(cert, false),
            [
                "security",
                "add-trusted-cert",
                "-r",
                "trustRoot",
                "/Library/Application Support/Dockroute/dockroute.ca.pem"
            ]
        );
        assert_eq!(
            add_trusted_cert(cert, true)[..5],
            ["security", "add-trusted-cert", "-d", "-k", "/Library/Keychains/System.keychain"]
        );
        assert_eq!(
            remove_trusted_cert(cert, true),
            ["security", "remove-trusted-cert", "-d", "/Library/Application Support/Dockroute/dockroute.ca.pem"]
        );
        assert_eq!(remove_trusted_cert(cert, false).len(), 3);
    }

    #[test]
    fn recorded_outputs_mean_done_already_gone_or_a_failure_that_says_what_to_do() {
        assert_eq!(outcome(Some(0), ""), Outcome::Done);
        // actions/runner-images#4734
        let gone = "SecTrustSettingsRemoveTrustSettings: No Trust Settings were found.\n";
        assert_eq!(outcome(Some(1), gone), Outcome::AlreadyGone);
        // mkcert#94, actions/runner-images#4734
        let Outcome::Failed(why) = outcome(Some(1), "SecTrustSettingsSetTrustSettings: errSecInternalComponent\n")
        else {
            panic!()
        };
        assert!(why.contains("your own session") && why.contains("errSecInternalComponent"), "{why}");
        // anchordotdev/cli#34: Cancel in the password dialog.
        let cancel = "SecTrustSettingsSetTrustSettings: The authorization was canceled by the user.\n";
        assert_eq!(outcome(Some(1), cancel), Outcome::Cancelled);
        // PeculiarVentures/fortify#475: run where macOS cannot ask.
        let no_ui =
            "SecTrustSettingsSetTrustSettings: The authorization was denied since no user interaction was possible.";
        assert!(matches!(outcome(Some(1), no_ui), Outcome::Failed(why) if why.contains("your own session")));
        assert_eq!(outcome(None, "").clone(), Outcome::Failed("security failed (a signal): ".into()));
    }
}
