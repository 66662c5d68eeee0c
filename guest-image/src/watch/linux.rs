//! Linux's change notifications: the directory of the controller's files (inotify, through the
//! `notify` crate like the helper's config watch), and nftables' netlink notifications (iptables-nft and Docker's own nftables backend cause them;
//! a legacy backend sends none, which the poke and the agent's slow safety-net timer cover).
//! Both only listen; both wake the agent, which then debounces.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use dockroute_engine::platform::notify;
use notify_crate::event::{AccessKind, AccessMode, EventKind};
use notify_crate::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::io::unix::AsyncFd;

/// nfnetlink's multicast group of nf_tables ruleset changes (linux/netfilter/nfnetlink.h).
const NFNLGRP_NFTABLES: u32 = 7;

/// Resolves when the watched descriptor has something, after draining it. Any read counts:
/// both watches are narrow enough that whatever they report is worth a look.
async fn drained(fd: &AsyncFd<OwnedFd>) -> io::Result<()> {
    while !notify::drain(fd, |_| true).await? {}
    Ok(())
}

fn register(fd: i32) -> io::Result<AsyncFd<OwnedFd>> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just created and own from here on; the AsyncFd owns it until it
    // is dropped, so it is never closed while registered.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)
}

/// A watch on the directory of the controller's files: the controller replaces them (a tar
/// upload), so the directory is what to watch, not the old inode.
pub struct ConfigDirWatch {
    /// Kept alive for as long as events are wanted.
    _watcher: RecommendedWatcher,
    /// One stored permit: a burst of events wakes the agent once.
    woken: Arc<tokio::sync::Notify>,
}

impl ConfigDirWatch {
    pub fn open(dir: &Path) -> io::Result<ConfigDirWatch> {
        let woken = Arc::new(tokio::sync::Notify::new());
        let wake = woken.clone();
        let mut watcher = notify_crate::recommended_watcher(move |ev: notify_crate::Result<notify_crate::Event>| {
            if is_change(&ev) {
                wake.notify_one();
            }
        })
        .map_err(io::Error::other)?;
        watcher.watch(dir, RecursiveMode::NonRecursive).map_err(io::Error::other)?;
        Ok(ConfigDirWatch { _watcher: watcher, woken })
    }

    /// Resolves after something in the directory changed.
    pub async fn changed(&self) -> io::Result<()> {
        self.woken.notified().await;
        Ok(())
    }
}

/// Whether an event may mean a file changed: not a read (the agent reads the rules after every
/// wake: counting that would loop); a lost-events notice or a watch error is (a look is cheap).
fn is_change(event: &notify_crate::Result<notify_crate::Event>) -> bool {
    match event {
        Err(_) => true,
        Ok(ev) if ev.need_rescan() => true,
        Ok(ev) => match ev.kind {
            EventKind::Access(a) => a == AccessKind::Close(AccessMode::Write),
            _ => true,
        },
    }
}

/// nftables ruleset changes, from the kernel's nfnetlink notifications.
pub struct RulesetChanges {
    fd: AsyncFd<OwnedFd>,
}

impl RulesetChanges {
    pub fn open() -> io::Result<RulesetChanges> {
        // SAFETY: plain system calls; the descriptor is checked before use.
        let fd = register(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        })?;
        // SAFETY: an all-zero sockaddr_nl is valid; the fields that matter are set below.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = 1 << (NFNLGRP_NFTABLES - 1);
        // SAFETY: a valid descriptor and a sockaddr_nl of the size we pass.
        let bound = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if bound < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(RulesetChanges { fd })
    }

    /// Resolves after the ruleset changed (a burst counts once).
    pub async fn changed(&self) -> io::Result<()> {
        drained(&self.fd).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_file_written_into_the_directory_wakes_the_watch() {
        let dir = std::env::temp_dir().join(format!("dockroute-watch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let watch = ConfigDirWatch::open(&dir).unwrap();
        std::fs::write(dir.join("rules"), "x").unwrap();
        let woken = tokio::time::timeout(Duration::from_secs(5), watch.changed()).await;
        let _ = std::fs::remove_dir_all(&dir);
        woken.expect("woken by the write").unwrap();
    }

    #[test]
    fn reads_are_no_change_and_writes_renames_removals_and_lost_events_are() {
        use notify_crate::event::{CreateKind, Flag, ModifyKind, RemoveKind, RenameMode};
        let ev = |kind| Ok(notify_crate::Event::new(kind).add_path("/dockroute/rules".into()));
        for read in [AccessKind::Open(AccessMode::Read), AccessKind::Close(AccessMode::Read), AccessKind::Read] {
            assert!(!is_change(&ev(EventKind::Access(read))), "{read:?}");
        }
        for kind in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Create(CreateKind::File),
            EventKind::Remove(RemoveKind::File),
        ] {
            assert!(is_change(&ev(kind)), "{kind:?}");
        }
        let rescan = notify_crate::Event::new(EventKind::Other).set_flag(Flag::Rescan);
        assert!(is_change(&Ok(rescan)));
        assert!(is_change(&Err(notify_crate::Error::generic("watch failed"))));
    }
}
