//! Checking the connecting process's code signature, on top of its credentials: on macOS an
//! admin's every process passes the group check, so the config can also require that the
//! caller is a build of the app signed by us (`require-signature`, a code requirement string,
//! e.g. `anchor apple generic and identifier "dev.dockroute.app" and certificate
//! leaf[subject.OU] = "TEAMID"`). Elsewhere there is no such thing: the check refuses.

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
