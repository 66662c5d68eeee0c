//! Draining a descriptor that only says "something changed": the route-change socket
//! (`RouteChanges`: netlink on Linux, the routing socket on macOS) and the guest's watches
//! (inotify, nftables' netlink). Portable: plain `read` on a non-blocking descriptor.

use std::io;
use std::os::fd::AsRawFd;

use tokio::io::unix::AsyncFd;

/// Reads per wakeup at the most: a flood of messages cannot hold the caller here.
const READS_PER_WAKEUP: usize = 64;

/// Waits until `fd` (non-blocking) is readable, then reads what it has, up to
/// `READS_PER_WAKEUP` reads, and says whether anything relevant came: a read that `matters`,
/// or messages the kernel dropped for us (ENOBUFS: something changed, we only missed what).
/// A burst is one call. Readiness is cleared only once the descriptor is empty (EAGAIN), so
/// whatever the bound left is read by the next call without waiting.
pub async fn drain<T: AsRawFd>(fd: &AsyncFd<T>, mut matters: impl FnMut(&[u8]) -> bool) -> io::Result<bool> {
    let mut buf = [0u8; 8192];
    let mut guard = fd.readable().await?;
    let mut seen = false;
    for _ in 0..READS_PER_WAKEUP {
        // SAFETY: reading into a buffer we own, of the length we pass.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            seen |= matters(&buf[..n as usize]);
            continue;
        }
        if n == 0 {
            // An empty message says nothing; the bound above ends the loop.
            continue;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENOBUFS) => seen = true,
            Some(libc::EAGAIN) => {
                guard.clear_ready();
                break;
            }
            Some(libc::EINTR) => continue,
            _ => return Err(err),
        }
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;

    use super::*;

    /// A non-blocking datagram pair standing in for the kernel's socket: messages come in on
    /// the registered end.
    fn pair() -> (AsyncFd<UnixDatagram>, UnixDatagram) {
        let (ours, kernel) = UnixDatagram::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        // SAFETY: the AsyncFd owns the socket from here on; it stays open while registered.
        (unsafe { AsyncFd::register(ours) }.unwrap(), kernel)
    }

    #[tokio::test]
    async fn only_a_message_that_matters_counts() {
        let (fd, kernel) = pair();
        for m in [&b"a"[..], b"b", b"c"] {
            kernel.send(m).unwrap();
        }
        let mut read = Vec::new();
        let seen = drain(&fd, |m| {
            read.push(m.to_vec());
            false
        })
        .await
        .unwrap();
        assert!(!seen, "nothing mattered");
        assert_eq!(read, [b"a", b"b", b"c"], "one call per message, in order");

        kernel.send(b"x").unwrap();
        kernel.send(b"y").unwrap();
        assert!(drain(&fd, |m| m == b"x").await.unwrap(), "one that matters is enough");
    }

    #[tokio::test]
    async fn a_flood_is_read_in_bounded_wakeups_and_nothing_is_lost() {
        let (fd, kernel) = pair();
        let sent = READS_PER_WAKEUP + 36;
        for i in 0..sent {
            kernel.send(&(i as u32).to_be_bytes()).unwrap();
        }
        let mut reads = 0;
        assert!(drain(&fd, |_| {
            reads += 1;
            true
        })
        .await
        .unwrap());
        assert_eq!(reads, READS_PER_WAKEUP, "bounded");
        // The rest is still there, and readiness was kept: the next call does not wait.
        let mut rest = Vec::new();
        let next = drain(&fd, |m| {
            rest.push(u32::from_be_bytes(m.try_into().unwrap()));
            true
        });
        assert!(tokio::time::timeout(std::time::Duration::from_secs(5), next).await.unwrap().unwrap());
        assert_eq!(rest, (READS_PER_WAKEUP as u32..sent as u32).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn an_empty_message_says_nothing_and_the_reads_go_on() {
        let (fd, kernel) = pair();
        kernel.send(b"").unwrap();
        kernel.send(b"z").unwrap();
        let mut read = Vec::new();
        assert!(drain(&fd, |m| {
            read.push(m.to_vec());
            true
        })
        .await
        .unwrap());
        assert_eq!(read, [b"z"]);
    }
}
