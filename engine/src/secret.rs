//! The shared secret file: 64 hex characters (32 random bytes), mode 0600.
//!
//! Both ends use the file's trimmed contents as the HMAC key, so any printable secret of at
//! least 16 bytes works; we create a random one when the file is missing.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use dockroute_api::Secret;

/// Loads the secret, creating it (0600, 32 random bytes as hex) if the file does not exist.
/// Returns whether it was created.
pub fn load_or_create(path: &Path) -> io::Result<(Secret, bool)> {
    match create(path) {
        Ok(()) => Ok((load(path)?, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok((load(path)?, false)),
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot create secret file {}: {e}", path.display()))),
    }
}

fn create(path: &Path) -> io::Result<()> {
    // create_new + mode: never follows an attacker's pre-placed file, never world-readable.
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    let secret = Secret::generate()?;
    f.write_all(secret.expose())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// Reads an existing secret. Refuses a file others can read or write: a secret that every
/// local user knows authenticates nobody.
pub fn load(path: &Path) -> io::Result<Secret> {
    let ctx = |e: io::Error| io::Error::new(e.kind(), format!("secret file {}: {e}", path.display()));
    let mut f = OpenOptions::new().read(true).open(path).map_err(ctx)?;
    let mode = f.metadata().map_err(ctx)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("secret file {} has mode {:o}; run chmod 600 on it", path.display(), mode & 0o777),
        ));
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    Read::by_ref(&mut f).take(4096).read_to_end(&mut bytes).map_err(ctx)?;
    Secret::new(bytes.trim_ascii().to_vec())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("secret file {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_secret_is_created_private_and_random_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let (a, created) = load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        assert!(text.trim().bytes().all(|b| b.is_ascii_hexdigit()));
        let (b, created) = load_or_create(&path).unwrap();
        assert!(!created);
        let tag = a.tag(b"t", &[]);
        assert!(b.verify(b"t", &[], &tag), "same key after reload");
        let other = dir.path().join("o");
        let (c, _) = load_or_create(&other).unwrap();
        assert!(!c.verify(b"t", &[], &tag), "two files, two secrets");
    }

    #[test]
    fn group_readable_short_and_missing_secrets_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "0123456789abcdef0123").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && e.contains(&path.display().to_string()), "{e}");
        std::fs::write(&path, "short\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("5 bytes"));
        assert!(load(&dir.path().join("nope")).unwrap_err().to_string().contains("nope"));
    }
}
