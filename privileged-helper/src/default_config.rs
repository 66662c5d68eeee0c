//! The config a helper starts with when there is none: written by `dockroute-helper install`,
//! and by `run` itself when the file is missing. A helper registered through SMAppService is
//! started by launchd with a config path nothing has created yet; without this it would exit,
//! and launchd would restart it for ever.
//!
//! It does not pin `addr`: without an `addr` line the helper takes 192.168.251.1/24 when that
//! is free and the next free /24 otherwise (a Mac still running mac-docker-connector holds
//! exactly 192.168.251.0/24).

use std::fs;
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub const DEFAULT_CONFIG: &str =
    "# Dockroute helper configuration, written by dockroute-helper (install, or its first start).
# One `key value` per line (mac-docker-connector's format). `route`, `expose`, `token`,
# `iptables`, `allow-group` and `require-signature` apply live; other changes need a helper
# restart. The shared secret is created beside this file.
# No `addr` line: the helper takes 192.168.251.1/24, or the next free /24 when that is taken.
port 2511
mtu 1400
host 127.0.0.1
# route 172.17.0.0/16
";

/// Writes `DEFAULT_CONFIG` to `path` (0644) if nothing is there, creating its missing
/// directories (0755). Returns whether it wrote the file. An existing file, even an empty or
/// broken one, is never touched: that is the admin's.
pub fn write_if_missing(path: &Path) -> io::Result<bool> {
    let ctx =
        |what: &str, p: &Path, e: io::Error| io::Error::new(e.kind(), format!("cannot {what} {}: {e}", p.display()));
    if fs::symlink_metadata(path).is_ok() {
        return Ok(false);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dirs(dir).map_err(|e| ctx("create directory", dir, e))?;
    }
    // create_new: two starts racing, or a file placed meanwhile, never get overwritten.
    let mut f = match fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(ctx("create", path, e)),
    };
    let write = |f: &mut fs::File| {
        f.write_all(DEFAULT_CONFIG.as_bytes())?;
        // The mode asked for at open is masked by the umask; the file must be readable by all.
        f.set_permissions(fs::Permissions::from_mode(0o644))?;
        f.sync_all()
    };
    write(&mut f).map_err(|e| ctx("write", path, e))?;
    Ok(true)
}

/// `mkdir -p` with mode 0755 for each directory it creates (and only those).
fn create_dirs(dir: &Path) -> io::Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|a| !a.as_os_str().is_empty() && !a.is_dir()).collect();
    for d in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(0o755).create(d) {
            Ok(()) => fs::set_permissions(d, fs::Permissions::from_mode(0o755))?,
            Err(e) if e.kind() == ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_missing_config_is_written_with_its_directories_and_does_not_pin_the_link_subnet() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("Library/Application Support/Dockroute/dockroute.conf");
        // A umask as tight as any service manager's would be: the modes must not depend on it.
        let old = unsafe { libc::umask(0o077) };
        let wrote = write_if_missing(&path);
        unsafe { libc::umask(old) };
        assert!(wrote.unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), DEFAULT_CONFIG);
        assert_eq!(mode(&path), 0o644);
        for dir in ["Library", "Library/Application Support", "Library/Application Support/Dockroute"] {
            assert_eq!(mode(&root.path().join(dir)), 0o755, "{dir}");
        }
        let config = Config::parse(DEFAULT_CONFIG, path.parent().unwrap()).unwrap();
        assert!(!config.addr_pinned, "the default must leave the link subnet free to move");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!((config.port, config.mtu, config.listen_addr().to_string()), (2511, 1400, "127.0.0.1:2511".into()));
    }

    #[test]
    fn an_existing_file_is_never_touched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dockroute.conf");
        fs::write(&path, "").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!write_if_missing(&path).unwrap());
        assert_eq!((fs::read_to_string(&path).unwrap(), mode(&path)), (String::new(), 0o600));
        std::os::unix::fs::symlink("/nonexistent/elsewhere.conf", dir.path().join("link.conf")).unwrap();
        assert!(!write_if_missing(&dir.path().join("link.conf")).unwrap(), "a dangling link is the admin's");
        assert!(!Path::new("/nonexistent/elsewhere.conf").exists());
    }

    #[test]
    fn an_existing_directory_keeps_its_mode_and_a_file_in_the_way_fails() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert!(write_if_missing(&dir.path().join("dockroute.conf")).unwrap());
        assert_eq!(mode(dir.path()), 0o700);
        fs::write(dir.path().join("file"), "x").unwrap();
        let e = write_if_missing(&dir.path().join("file/sub/dockroute.conf")).unwrap_err();
        assert!(e.to_string().starts_with("cannot create directory"), "{e}");
    }
}
