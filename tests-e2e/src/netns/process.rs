//! Running commands for the harness: every command bounded in time (output through unlinked
//! scratch files, never pipes), every child in its own process group, signalled only while
//! unreaped.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

pub(super) type Res<T> = Result<T, String>;

/// How long a child gets between SIGTERM and SIGKILL.
pub(super) const GRACE: Duration = Duration::from_secs(2);
/// Bound for `run` and the internal `ip` calls: a hung command is killed, never waited on.
pub(super) const RUN_TIMEOUT: Duration = Duration::from_secs(20);
/// Dropped from every command so busybox wget never heads for a proxy outside the namespaces.
pub(super) const PROXY_VARS: [&str; 6] =
    ["http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"];

pub(super) mod sys {
    // std links libc anyway; declaring the two calls avoids a libc crate dependency.
    unsafe extern "C" {
        pub fn kill(pid: i32, sig: i32) -> i32;
        pub fn geteuid() -> u32;
    }
}

/// Runs `c` to completion, killed (its whole process group) after `timeout`: Ok(stdout), or Err
/// naming the command, its status and stderr. Output goes to unlinked scratch files in
/// `scratch_dir`, not pipes, so a stray grandchild holding a pipe open can never keep us
/// waiting past the timeout.
pub fn run_bounded(mut c: Command, timeout: Duration, scratch_dir: &Path) -> Res<String> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let desc = describe(&c);
    let scratch = || -> Res<(File, File)> {
        let name = format!("run-{}-{}.tmp", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let p = scratch_dir.join(name);
        let f = OpenOptions::new().read(true).write(true).create_new(true).open(&p);
        let f = f.map_err(|e| format!("`{desc}`: creating {}: {e}", p.display()))?;
        let _ = fs::remove_file(&p);
        let f2 = f.try_clone().map_err(|e| e.to_string())?;
        Ok((f, f2))
    };
    let ((mut out, out2), (mut err, err2)) = (scratch()?, scratch()?);
    c.stdin(Stdio::null()).stdout(out2).stderr(err2).process_group(0);
    let mut child = c.spawn().map_err(|e| format!("`{desc}`: cannot start: {e}"))?;
    let status = wait_bounded(&mut child, timeout);
    if status.is_none() {
        signal_child(&mut child, SIGKILL);
        let _ = wait_bounded(&mut child, GRACE);
    }
    let (stdout, stderr) = (read_back(&mut out), read_back(&mut err));
    let detail = format!("{}{}", stderr.trim(), tail(&stdout));
    match status {
        Some(s) if s.success() => Ok(stdout),
        Some(s) => Err(format!("`{desc}` failed ({s}): {detail}")),
        None => Err(format!("`{desc}` timed out after {timeout:?}, killed: {detail}")),
    }
}

/// Signals the child's process group, but only while the child is unreaped: once reaped,
/// its pid may belong to someone else.
pub(super) fn signal_child(c: &mut Child, sig: i32) -> bool {
    let pgid = -(c.id() as i32);
    matches!(c.try_wait(), Ok(None)) && pgid < -1 && unsafe { sys::kill(pgid, sig) } == 0
}

pub(crate) fn wait_bounded(c: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match c.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

pub(super) fn read_back(f: &mut File) -> String {
    let mut s = String::new();
    let _ = f.rewind().and_then(|_| f.read_to_string(&mut s));
    s
}

pub(super) fn tail(stdout: &str) -> String {
    let t = stdout.trim();
    let cut = t.char_indices().rev().nth(2000).map_or(0, |(i, _)| i);
    if t.is_empty() {
        String::new()
    } else {
        format!("\nstdout: {}", &t[cut..])
    }
}

/// The command line for messages, with inline scripts cut to their first line.
pub(crate) fn describe(c: &Command) -> String {
    let arg = |a: &std::ffi::OsStr| match a.to_string_lossy().split_once('\n') {
        Some((first, _)) => format!("'{first} ...'"),
        None => a.to_string_lossy().into_owned(),
    };
    std::iter::once(c.get_program()).chain(c.get_args()).map(arg).collect::<Vec<_>>().join(" ")
}
