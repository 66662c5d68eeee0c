//! Wakes when the OS routing table changes, so the helper re-checks its routes then instead of
//! reading the whole table (one `ip`/`netstat` process) every few seconds while idle. Linux: a
//! netlink socket in the route groups; macOS: a routing socket. Both only listen.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

pub struct RouteChanges {
    fd: AsyncFd<OwnedFd>,
}

impl RouteChanges {
    pub fn open() -> io::Result<RouteChanges> {
        let fd = super::os::route_change_socket()?;
        // SAFETY: a socket descriptor we just created and own from here on; the AsyncFd owns
        // it until it is dropped, so it is never closed while registered.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(RouteChanges { fd })
    }

    /// Resolves after the next change that matters (`os::route_message_matters`), with the
    /// burst that came with it drained (one check covers them all).
    pub async fn changed(&mut self) -> io::Result<()> {
        while !super::notify::drain(&self.fd, super::os::route_message_matters).await? {}
        Ok(())
    }
}
