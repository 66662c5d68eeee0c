//! Checking the connecting process's code signature, on top of its credentials: on macOS an
//! admin's every process passes the group check, so the config can also require that the
//! caller is a build of the app signed by us (`require-signature`, a code requirement string,
//! e.g. `anchor apple generic and identifier "dev.dockroute.app" and certificate
//! leaf[subject.OU] = "TEAMID"`). A helper inside the app bundle defaults to the bundle's own
//! designated requirement (`bundle_requirement`; the rule is `authz::signature_rule`).
//! Elsewhere there is no such thing: the check refuses.

#[cfg(target_os = "macos")]
#[path = "macos.rs"]
mod os;
#[cfg(not(target_os = "macos"))]
#[path = "other.rs"]
mod os;

/// Ok if the peer of the Unix socket `fd` satisfies `requirement`; the reason otherwise.
pub fn verify(fd: std::os::fd::RawFd, requirement: &str) -> Result<(), String> {
    os::verify(fd, requirement)
}

/// When this helper runs from inside an app bundle (macOS only): the bundle's designated
/// requirement, or why it could not be read. None when not bundled.
pub fn bundle_requirement() -> Option<Result<String, String>> {
    if !cfg!(target_os = "macos") {
        return None;
    }
    let exe = std::env::current_exe().and_then(|e| e.canonicalize());
    let bundle = match exe {
        Ok(exe) => crate::authz::app_bundle(&exe)?,
        Err(e) => return Some(Err(format!("cannot find the helper's own path: {e}"))),
    };
    Some(os::designated_requirement(&bundle).map_err(|e| format!("{}: {e}", bundle.display())))
}
