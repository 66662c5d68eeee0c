//! Wakes when the OS routing table changes, so the helper re-checks its routes then instead of
//! reading the whole table (one `ip`/`netstat` process) every few seconds while idle. Linux: a
//! netlink socket in the route groups; macOS: a routing socket. Both only listen.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

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
        let mut buf = [0u8; 8192];
        loop {
            let mut guard = self.fd.readable().await?;
            let mut seen = false;
            // Bounded: a flood of messages cannot hold the daemon here.
            for _ in 0..64 {
                // SAFETY: reading into a buffer we own, of the length we pass.
                let n =
                    unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
                if n > 0 {
                    seen |= super::os::route_message_matters(&buf[..n as usize]);
                    continue;
                }
                if n == 0 {
                    // An empty message says nothing; the bound above ends the loop.
                    continue;
                }
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    // The kernel dropped messages for us: something changed, we just missed what.
                    Some(libc::ENOBUFS) => seen = true,
                    Some(libc::EAGAIN) => {
                        guard.clear_ready();
                        break;
                    }
                    Some(libc::EINTR) => continue,
                    _ => return Err(err),
                }
            }
            if seen {
                return Ok(());
            }
        }
    }
}
