//! Writing a file whole: a crash, a full disk or a concurrent reader sees the old content or
//! the new, never half of it.

use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically with permissions `mode` (see `write_atomic_then`).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_then(path, bytes, mode, |_| Ok(()))
}

/// Writes `bytes` to a temporary file beside `path` (`.NAME.tmp`), created with `mode` from
/// the start (a secret is never readable by others, not even for a moment) and set to exactly
/// `mode` whatever the umask, synced; runs `prepare` on it (e.g. a chown); then renames it over
/// `path`. On any error `path` is untouched.
pub fn write_atomic_then(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    prepare: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_beside(path);
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        prepare(&tmp)?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn temp_beside(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.tmp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unique_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("stdx-fs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn replaces_the_file_whole_with_exactly_the_mode_and_leaves_no_temporary() {
        let dir = unique_dir("replace");
        let path = dir.join("state.json");
        std::fs::write(&path, "old").unwrap();
        // A stale temporary of a crashed write, readable by all: removed, not reused.
        std::fs::write(dir.join(".state.json.tmp"), "stale").unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["state.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failing_prepare_leaves_the_old_file_and_no_temporary() {
        let dir = unique_dir("prepare");
        let path = dir.join("unit");
        std::fs::write(&path, "old").unwrap();
        let err = write_atomic_then(&path, b"new", 0o644, |_| Err(io::Error::other("chown refused"))).unwrap_err();
        assert_eq!(err.to_string(), "chown refused");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
