//! Images made locally (nothing is pulled): a busybox-only image and the guest's Debian base.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dockroute_stdx::process::Cmd;

use super::{cache_dir, run_bounded, scripts_dir, Dockerd, Res};

/// Building the base rootfs (debootstrap) on a machine without the cache.
const BASE_BUILD_TIMEOUT: Duration = Duration::from_secs(900);
/// busybox applets linked in the busybox image (all /bin/busybox).
const BUSYBOX_APPLETS: &str = "sh httpd ping ping6 nc wget sleep ip cat echo ls mkdir rm ps kill hostname ifconfig \
    route true false env id touch printf nslookup traceroute udhcpc sysctl grep timeout";

impl Dockerd {
    /// Imports `tag`: an image holding only /bin/busybox (busybox-static) and symlinks for
    /// sh, httpd, ping, nc, wget, sleep, ip and a few more, /tmp and a minimal /etc;
    /// `CMD ["/bin/sh"]`.
    pub fn import_busybox(&self, tag: &str) -> Res<()> {
        let busybox = Path::new("/bin/busybox");
        let bytes =
            fs::read(busybox).map_err(|e| format!("{}: {e} (apt-get install busybox-static)", busybox.display()))?;
        if has_interpreter(&bytes) {
            return Err("/bin/busybox is dynamically linked: apt-get install busybox-static".into());
        }
        let root = self.dir.join("busybox-rootfs");
        let _ = fs::remove_dir_all(&root);
        let made = (|| -> std::io::Result<()> {
            for d in ["bin", "etc", "tmp", "www"] {
                fs::create_dir_all(root.join(d))?;
            }
            fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;
            fs::write(root.join("bin/busybox"), &bytes)?;
            fs::set_permissions(root.join("bin/busybox"), fs::Permissions::from_mode(0o755))?;
            for a in BUSYBOX_APPLETS.split_whitespace() {
                std::os::unix::fs::symlink("busybox", root.join("bin").join(a))?;
            }
            fs::write(
                root.join("etc/passwd"),
                "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
            )?;
            fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
            Ok(())
        })();
        made.map_err(|e| format!("staging the busybox rootfs in {}: {e}", root.display()))?;
        let tar = self.dir.join("busybox.tar");
        // A short tool that starts nothing: the workspace's runner fits.
        let c = Cmd::new("tar").args(["--numeric-owner", "--owner=0", "--group=0", "-C"]);
        let c = c.arg(root.display().to_string()).arg("-cf").arg(tar.display().to_string()).arg(".");
        c.timeout(Duration::from_secs(30)).run().map_err(|e| e.to_string())?;
        let tar_s = tar.display().to_string();
        let r = self.docker(&["import", "--change", r#"CMD ["/bin/sh"]"#, &tar_s, tag]);
        let _ = fs::remove_file(&tar);
        let _ = fs::remove_dir_all(&root);
        r.map(|_| ())
    }

    /// Imports `tag` from `$DOCKROUTE_CACHE/base-rootfs.tar` (the guest image's base: Debian
    /// bookworm minbase + iptables + iproute2), building it first with base-rootfs.sh if
    /// missing (debootstrap, about 30 s, bounded to 15 min).
    pub fn import_base(&self, tag: &str) -> Res<()> {
        let tar = ensure_base_rootfs()?;
        self.docker_timeout(&["import", &tar.display().to_string(), tag], Duration::from_secs(180)).map(|_| ())
    }
}

/// True for a dynamically linked ELF64 executable (it has a PT_INTERP program header): such a
/// busybox cannot run in an image that holds nothing else.
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| elf.get(o..o + 2).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u64_at = |o: usize| elf.get(o..o + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()) as usize);
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| elf.get(phoff + i * phentsize..phoff + i * phentsize + 4) == Some(&3u32.to_le_bytes()[..]))
}

/// Builds base-rootfs.tar with the script if missing; returns its path.
pub fn ensure_base_rootfs() -> Res<PathBuf> {
    let tar = cache_dir().join("base-rootfs.tar");
    if fs::metadata(&tar).is_ok_and(|m| m.len() > 0) {
        return Ok(tar);
    }
    let mut c = Command::new("bash");
    c.arg(scripts_dir().join("base-rootfs.sh")).env("DOCKROUTE_CACHE", cache_dir());
    run_bounded(c, BASE_BUILD_TIMEOUT)?;
    match tar.is_file() {
        true => Ok(tar),
        false => Err(format!("base-rootfs.sh ran but {} is missing", tar.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::has_interpreter;

    /// A minimal ELF64 header with one program header of type `p_type` at offset 64.
    fn elf(p_type: u32) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56];
        b[..5].copy_from_slice(b"\x7fELF\x02");
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        b[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        b[64..68].copy_from_slice(&p_type.to_le_bytes());
        b
    }

    #[test]
    fn a_dynamic_busybox_is_told_from_a_static_one() {
        assert!(has_interpreter(&elf(3)), "PT_INTERP: dynamically linked");
        assert!(!has_interpreter(&elf(1)), "PT_LOAD only: static");
        assert!(!has_interpreter(b"#!/bin/sh\n"), "not ELF");
        // A header whose program headers lie past the end is read as static, not a panic.
        assert!(!has_interpreter(&elf(3)[..66]));
    }
}
