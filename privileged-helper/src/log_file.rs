//! The helper's log is root's alone. launchd opens the plist's `StandardErrorPath`
//! (`/Library/Logs/dockroute-helper.log`) before the helper starts, with its own umask, so the
//! file is created 0644: readable by every local user. The helper logs client names, addresses
//! and session fingerprints there, which no other user needs; so at start it takes group and
//! other permissions off whatever regular file its stdout or stderr is. A pipe, a terminal or
//! the journal's socket (systemd, where `journalctl` already needs a group) is left as it is.

use std::os::fd::{AsFd, BorrowedFd};

/// The mode a log file should have instead of `mode`, if it must change: a regular file keeps
/// only its owner's read and write bits.
pub fn private_mode(is_regular_file: bool, mode: u32) -> Option<u32> {
    let private = mode & 0o600;
    (is_regular_file && mode & 0o7777 != private).then_some(private)
}

/// Restricts the regular files behind stdout and stderr; returns what it changed, for the log.
pub fn restrict_std_streams() -> Vec<String> {
    let (out, err) = (std::io::stdout(), std::io::stderr());
    let mut changed = Vec::new();
    for (name, fd) in [("stdout", out.as_fd()), ("stderr", err.as_fd())] {
        match restrict(fd) {
            Ok(Some((from, to))) => changed.push(format!("{name}'s log file: mode {from:o} -> {to:o}")),
            Ok(None) => {}
            Err(e) => changed.push(format!("{name}'s log file: cannot restrict its mode: {e}")),
        }
    }
    changed
}

/// The old and new mode, if `fd` is a regular file whose mode had to change.
pub fn restrict(fd: BorrowedFd<'_>) -> std::io::Result<Option<(u32, u32)>> {
    use std::os::unix::fs::PermissionsExt;
    // A duplicate of the descriptor: the same open file, so no path can be swapped in between
    // (metadata is fstat, set_permissions is fchmod).
    let file = std::fs::File::from(fd.try_clone_to_owned()?);
    let meta = file.metadata()?;
    let mode = meta.permissions().mode();
    let Some(private) = private_mode(meta.file_type().is_file(), mode) else { return Ok(None) };
    file.set_permissions(std::fs::Permissions::from_mode(private))?;
    Ok(Some((mode & 0o7777, private)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_log_file_other_users_could_read_keeps_only_its_owners_read_and_write() {
        assert_eq!(private_mode(true, 0o100644), Some(0o600), "launchd's default");
        assert_eq!(private_mode(true, 0o100640), Some(0o600));
        assert_eq!(private_mode(true, 0o100666), Some(0o600));
        assert_eq!(private_mode(true, 0o100755), Some(0o600), "no execute bit on a log");
        assert_eq!(private_mode(true, 0o100400), None, "already private");
        assert_eq!(private_mode(true, 0o100600), None);
        assert_eq!(private_mode(false, 0o020666), None, "a terminal or a pipe is not ours to change");
    }

    #[test]
    fn the_world_readable_file_behind_a_descriptor_is_made_private_and_a_socket_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dockroute-helper.log");
        let file = std::fs::File::create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(restrict(file.as_fd()).unwrap(), Some((0o644, 0o600)));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777, 0o600);
        assert_eq!(restrict(file.as_fd()).unwrap(), None, "idempotent");
        let (socket, _other) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(restrict(socket.as_fd()).unwrap(), None, "like the journal's socket");
    }
}
