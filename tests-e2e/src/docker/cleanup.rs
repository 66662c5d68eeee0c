//! What a daemon leaves behind: its processes (by command line and cgroup), mounts under its
//! directory and cgroup directories. Bounded; never panics.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::sys;
use crate::netns::{SIGKILL, SIGTERM};

/// Stops whatever of a daemon in `dir` still runs, unmounts everything under `dir`, removes
/// its cgroup directories and `dir`. Bounded; never panics. Also used before a start, to clear
/// what a crashed run left.
pub(super) fn cleanup_dir(dir: &Path, ns: &str) {
    let cgroup = format!("dockroute-{ns}");
    for sig in [SIGTERM, SIGKILL] {
        let pids = owned_processes(dir, &cgroup);
        if pids.is_empty() {
            break;
        }
        for &pid in &pids {
            unsafe { sys::kill(pid as i32, sig) };
        }
        let deadline = Instant::now() + Duration::from_secs(if sig == SIGTERM { 3 } else { 2 });
        while Instant::now() < deadline && pids.iter().any(|&p| alive(p)) {
            sleep(Duration::from_millis(20));
        }
    }
    for _ in 0..3 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            break;
        }
        for m in mounts {
            if let Ok(c) = CString::new(m.as_os_str().as_bytes()) {
                unsafe { sys::umount2(c.as_ptr(), sys::MNT_DETACH) };
            }
        }
    }
    remove_cgroups(&cgroup);
    if dir.exists() && mounts_under(dir).is_empty() {
        if let Err(e) = fs::remove_dir_all(dir) {
            eprintln!("docker: removing {}: {e}", dir.display());
        }
    }
}

/// Processes naming `dir/` on their command line or living in cgroup `/<cgroup>/…`.
pub(super) fn owned_processes(dir: &Path, cgroup: &str) -> Vec<u32> {
    let needle = format!("{}/", dir.display()).into_bytes();
    let cg = format!(":/{cgroup}/");
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    let mut pids = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == me || pid <= 1 || !alive(pid) {
            continue;
        }
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let in_cmd = cmdline.windows(needle.len()).any(|w| w == needle.as_slice());
        let in_cg = fs::read_to_string(e.path().join("cgroup"))
            .is_ok_and(|s| s.lines().any(|l| l.contains(&cg) || l.ends_with(&cg[..cg.len() - 1])));
        if in_cmd || in_cg {
            pids.push(pid);
        }
    }
    pids
}

/// True while `pid` exists and is not a zombie (a zombie's parent has yet to reap it; it holds
/// nothing any more).
pub fn alive(pid: u32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // "pid (comm) S ...": the state follows the last ')', as comm may hold anything.
    let state = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next());
    matches!(state, Some(s) if s != "Z" && s != "X")
}

/// Mount points at or under `dir`, deepest first (from /proc/self/mountinfo).
pub(super) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let d = dir.display().to_string();
    let mut v: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount)
        .filter(|m| *m == d || m.starts_with(&format!("{d}/")))
        .map(PathBuf::from)
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v.dedup();
    v
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup directories `<hierarchy>/<name>` (v1 controllers and the v2 root), if any.
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut v = vec![root.join(name)];
    if let Ok(entries) = fs::read_dir(root) {
        v.extend(entries.flatten().map(|e| e.path().join(name)));
    }
    v.into_iter().filter(|p| p.is_dir()).collect()
}

/// rmdir of a cgroup and its children, deepest first (empty cgroups only; bounded depth).
fn remove_cgroups(name: &str) {
    fn rm(dir: &Path, depth: u32) {
        if depth > 8 {
            return;
        }
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rm(&e.path(), depth + 1);
                }
            }
        }
        let _ = fs::remove_dir(dir);
    }
    for d in cgroup_dirs(name) {
        rm(&d, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::unescape_mount;

    #[test]
    fn mountinfo_octal_escapes_are_undone() {
        assert_eq!(unescape_mount(r"/tmp/a\040b\011c\012d\134e"), "/tmp/a b\tc\nd\\e");
        assert_eq!(unescape_mount("/plain/path"), "/plain/path");
        // Not an escape: left as it is.
        assert_eq!(unescape_mount(r"/x\09y\0"), r"/x\09y\0");
    }
}
