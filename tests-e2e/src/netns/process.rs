//! Commands and children in the topology's namespaces: every command bounded in time, every
//! child in its own process group, signalled only while unreaped.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::MutexGuard;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{Res, Topology};

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

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

impl Topology {
    /// `ip netns exec NS program`, without proxy variables; add args and stdio as needed.
    /// Panics if `ns` is not one of ours, so nothing runs in the root namespace by mistake.
    pub fn cmd(&self, ns: &str, program: &str) -> Command {
        assert!(self.ns.iter().any(|n| n == ns), "{ns:?} is not a namespace of slot {}", self.slot);
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        for v in PROXY_VARS {
            c.env_remove(v);
        }
        c
    }

    /// Runs `args` in `ns` to completion (killed after 20 s): Ok(stdout), or Err naming the
    /// command, its exit status and stderr.
    pub fn run(&self, ns: &str, args: &[&str]) -> Res<String> {
        self.run_timeout(ns, args, RUN_TIMEOUT)
    }

    pub fn run_timeout(&self, ns: &str, args: &[&str], timeout: Duration) -> Res<String> {
        let (prog, rest) = args.split_first().ok_or("run: empty command")?;
        let mut c = self.cmd(ns, prog);
        c.args(rest);
        self.exec(c, timeout)
    }

    pub(super) fn exec(&self, c: Command, timeout: Duration) -> Res<String> {
        run_bounded(c, timeout, &self.dir)
    }

    /// `ip -n NS ARGS` (whitespace-separated), to configure our namespaces.
    pub(super) fn ip(&self, ns: &str, args: &str) -> Res<String> {
        let mut c = Command::new("ip");
        c.args(["-n", ns]).args(args.split_whitespace());
        self.exec(c, RUN_TIMEOUT)
    }

    /// Namespaced sysctls, so they are set from inside the namespace.
    pub(super) fn sysctl(&self, ns: &str, settings: &str) -> Res<String> {
        let mut c = self.cmd(ns, "busybox");
        c.args(["sysctl", "-w"]).args(settings.split_whitespace());
        self.exec(c, RUN_TIMEOUT)
    }

    /// Starts `args` in `ns` in the background in its own process group, stdout+stderr
    /// appended to `log`. Returns a handle (the pid); Drop kills it if still running.
    pub fn spawn(&self, ns: &str, args: &[&str], log: &Path) -> Res<u32> {
        let (prog, rest) = args.split_first().ok_or("spawn: empty command")?;
        let out = OpenOptions::new().create(true).append(true).open(log);
        let out = out.map_err(|e| format!("opening log {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut c = self.cmd(ns, prog);
        c.args(rest).stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        let child = c.spawn().map_err(|e| format!("`{}`: cannot start: {e}", describe(&c)))?;
        let pid = child.id();
        self.kids().push(child);
        Ok(pid)
    }

    pub(super) fn kids(&self) -> MutexGuard<'_, Vec<Child>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn with_kid<T>(&self, handle: u32, f: impl FnOnce(&mut Child) -> Res<T>) -> Res<T> {
        let mut kids = self.kids();
        f(kids.iter_mut().find(|c| c.id() == handle).ok_or(format!("no spawned child {handle}"))?)
    }

    /// Sends `sig` to a running child's process group and returns at once (e.g. SIGHUP).
    pub fn signal(&self, handle: u32, sig: i32) -> Res<()> {
        self.with_kid(handle, |c| match signal_child(c, sig) {
            true => Ok(()),
            false => Err(format!("child {handle} is not running")),
        })
    }

    /// Sends `sig` and waits up to 2 s: Ok(exit status), also if it had exited already.
    /// A child still running after that is SIGKILLed and reported as Err.
    pub fn kill(&self, handle: u32, sig: i32) -> Res<ExitStatus> {
        self.with_kid(handle, |c| {
            signal_child(c, sig);
            if let Some(s) = wait_bounded(c, GRACE) {
                return Ok(s);
            }
            signal_child(c, SIGKILL);
            let _ = wait_bounded(c, GRACE);
            Err(format!("child {handle} ignored signal {sig} for {GRACE:?}; sent SIGKILL"))
        })
    }

    /// Exit status once a spawned child has exited; None while it runs (or if unknown).
    pub fn status(&self, handle: u32) -> Option<ExitStatus> {
        self.with_kid(handle, |c| c.try_wait().map_err(|e| e.to_string())).ok().flatten()
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
