//! Where the local CA is trusted, changed through the API: the app's Trust and Remove buttons
//! (`ca_trust`, `ca_untrust`, `ca_trusted`). `State::apply` has checked the caller's right (the
//! same as sharing); this decides what the helper may do itself and carries it out with the
//! steps and the record `ca trust` / `ca untrust` use (`cli`, `trust`).
//!
//! - Linux: the helper adds the CA to the system store (Debian's or p11-kit's) as root, and
//!   removes it from every store its record names. A browser's NSS database is the user's own
//!   directory: only `dockroute-helper ca trust --nss DIR`, never a path the API could name.
//! - macOS: trusting a root needs the user's consent in their session, which a daemon cannot
//!   ask for. The app runs `security add-trusted-cert` itself (`dockroute_api::macos_trust`)
//!   and tells the helper (`ca_trusted`), so the record, and with it uninstall, knows.

use super::ca::{Ca, CaFiles};
use super::cli;
use super::trust::Entry;

/// A change of where the local CA is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaChange {
    /// Into the system store, as the helper can (`ca_trust`).
    Trust,
    /// Out of every store the helper can reach (`ca_untrust`).
    Untrust,
    /// The app trusted it in the user's macOS login keychain (true) or removed it: recorded.
    RecordLoginKeychain(bool),
}

const MACOS_TRUST: &str = "on macOS the CA is trusted in your own session, where macOS can ask you: \
                           use the app's Trust button (or `dockroute-helper ca trust` in a Terminal)";

/// The stores the helper removes the CA from on `ca_untrust`: all but the user's macOS login
/// keychain (only the user's session can change it; the app removes it there).
pub fn helper_may_remove(entry: &Entry) -> bool {
    !matches!(entry, Entry::MacOs { admin: false, .. })
}

/// The user's login keychain entry for this CA, as the record keeps it.
fn login_keychain(files: &CaFiles) -> Entry {
    Entry::MacOs { admin: false, cert: files.cert.clone() }
}

/// Carries out `change` (files and commands: run it off the async workers). `macos`: the
/// platform (a parameter, so both are tested here). Returns what was done, in words.
pub fn carry_out(files: &CaFiles, ca: &Ca, change: CaChange, macos: bool) -> Result<Vec<String>, String> {
    let done = match change {
        CaChange::Trust if macos => return Err(MACOS_TRUST.into()),
        CaChange::Trust => cli::system_plan(files, ca).and_then(|plan| cli::trust_with(files, ca, vec![plan])),
        CaChange::Untrust => cli::untrust_where(files, helper_may_remove),
        CaChange::RecordLoginKeychain(_) if !macos => {
            return Err("a login keychain is macOS's: on this system the helper trusts the CA itself (ca_trust)".into())
        }
        CaChange::RecordLoginKeychain(trusted) => {
            let mut record = cli::read_record(files);
            let entry = login_keychain(files);
            let said = format!("{} {}", if trusted { "trusted in" } else { "no longer trusted in" }, entry.describe());
            if trusted {
                record.add(entry);
            } else {
                record.remove(&entry);
            }
            cli::write_record(files, &record).map(|()| vec![said])
        }
    };
    done.map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn ca_in(dir: &std::path::Path) -> (CaFiles, Ca) {
        let files = CaFiles::for_config(&dir.join("dockroute.conf"));
        let (ca, _) = super::super::ca::load_or_make(&files, "docker", SystemTime::now()).unwrap();
        (files, ca)
    }

    #[test]
    fn the_app_records_its_login_keychain_trust_and_takes_it_back_and_only_on_macos() {
        let dir = tempfile::tempdir().unwrap();
        let (files, ca) = ca_in(dir.path());
        let said = carry_out(&files, &ca, CaChange::RecordLoginKeychain(true), true).unwrap();
        assert_eq!(said, ["trusted in macOS login keychain"]);
        let record = cli::read_record(&files);
        assert_eq!(record.entries, [Entry::MacOs { admin: false, cert: files.cert.clone() }]);
        carry_out(&files, &ca, CaChange::RecordLoginKeychain(true), true).unwrap();
        assert_eq!(cli::read_record(&files).entries.len(), 1, "recorded once");
        carry_out(&files, &ca, CaChange::RecordLoginKeychain(false), true).unwrap();
        assert!(!files.trust_record.exists(), "an empty record is no file");
        let e = carry_out(&files, &ca, CaChange::RecordLoginKeychain(true), false).unwrap_err();
        assert!(e.contains("macOS's"), "{e}");
        assert!(!files.trust_record.exists(), "nothing recorded on Linux");
    }

    #[test]
    fn on_macos_the_helper_refuses_to_trust_and_its_untrust_leaves_the_login_keychain_to_the_app() {
        let dir = tempfile::tempdir().unwrap();
        let (files, ca) = ca_in(dir.path());
        let e = carry_out(&files, &ca, CaChange::Trust, true).unwrap_err();
        assert!(e.contains("your own session") && e.contains("Trust button"), "{e}");
        assert!(!files.trust_record.exists());
        carry_out(&files, &ca, CaChange::RecordLoginKeychain(true), true).unwrap();
        // Nothing the helper may remove: no command runs, the app's entry stays.
        assert_eq!(carry_out(&files, &ca, CaChange::Untrust, true).unwrap(), Vec::<String>::new());
        assert_eq!(cli::read_record(&files).entries.len(), 1);
        assert!(helper_may_remove(&Entry::MacOs { admin: true, cert: files.cert.clone() }));
        assert!(helper_may_remove(&Entry::Debian("/usr/local/share/ca-certificates/x.crt".into())));
    }
}
