//! One way to run a command: with a deadline, its output captured, and the command line named
//! in every error. Platform code (`ip`, `route`, `netstat`), install (`systemctl`,
//! `launchctl`), the guest's firewall (`iptables-*`) and the app (`pkexec`) all go through it,
//! so a hung tool can stall none of them and every failure says which command it was.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Long enough for any system tool we run on a loaded machine; short enough that a hung one
/// does not hold a daemon for ever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A command to run. `LC_ALL=C` is set so that output and messages parse the same everywhere.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

/// How a command ended, whatever its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit code; None when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

#[derive(Debug)]
pub enum Failure {
    /// The program could not be started (not installed, not executable).
    Spawn(io::Error),
    /// It ran longer than allowed and was killed (with everything it started).
    Timeout(Duration),
    /// It ran and exited non-zero (or was killed by a signal).
    Exit(Output),
}

/// What went wrong, with the command line it concerns.
#[derive(Debug)]
pub struct CmdError {
    pub command: String,
    pub failure: Failure,
}

impl CmdError {
    /// The failed command's stderr, if it ran.
    pub fn stderr(&self) -> &str {
        match &self.failure {
            Failure::Exit(o) => &o.stderr,
            _ => "",
        }
    }

    /// The program is not installed.
    pub fn is_not_found(&self) -> bool {
        matches!(&self.failure, Failure::Spawn(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

impl std::fmt::Display for CmdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.command;
        match &self.failure {
            Failure::Spawn(e) => write!(f, "cannot run `{c}`: {e}"),
            Failure::Timeout(d) => write!(f, "`{c}` did not finish within {d:?} and was killed"),
            Failure::Exit(o) => {
                match o.code {
                    Some(code) => write!(f, "`{c}` failed with exit code {code}")?,
                    None => write!(f, "`{c}` was killed by a signal")?,
                }
                let why = if o.stderr.trim().is_empty() { o.stdout.trim() } else { o.stderr.trim() };
                if !why.is_empty() {
                    write!(f, ": {why}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CmdError {}

impl From<CmdError> for io::Error {
    fn from(e: CmdError) -> io::Error {
        let kind = match &e.failure {
            Failure::Spawn(s) => s.kind(),
            Failure::Timeout(_) => io::ErrorKind::TimedOut,
            Failure::Exit(_) => io::ErrorKind::Other,
        };
        io::Error::new(kind, e.to_string())
    }
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: vec![("LC_ALL".into(), "C".into())],
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Cmd {
        self.args.push(a.into());
        self
    }

    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Cmd {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Cmd {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Bytes for its standard input (otherwise it reads nothing: /dev/null).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(input.into());
        self
    }

    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = t;
        self
    }

    /// The command line as a user would type it, for logs and errors.
    pub fn line(&self) -> String {
        std::iter::once(self.program.as_str()).chain(self.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
    }

    /// Runs it; Ok(stdout) only when it exits 0.
    pub fn run(&self) -> Result<String, CmdError> {
        let out = self.output()?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(CmdError { command: self.line(), failure: Failure::Exit(out) })
        }
    }

    /// Runs it and returns how it ended, whatever the exit status (for tools whose exit
    /// status lies, such as macOS `route`). Err only when it could not run or timed out.
    pub fn output(&self) -> Result<Output, CmdError> {
        let err = |failure| CmdError { command: self.line(), failure };
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills what it started too.
            .process_group(0);
        let mut child = command.spawn().map_err(|e| err(Failure::Spawn(e)))?;
        let pid = child.id() as libc::pid_t;
        let writer = match (child.stdin.take(), self.stdin.clone()) {
            // A child that exits without reading makes the write fail: its exit status and
            // stderr say more than the broken pipe, so the write's result is not used.
            (Some(mut pipe), Some(input)) => Some(thread::spawn(move || {
                let _ = pipe.write_all(&input);
            })),
            _ => None,
        };
        let stdout = child.stdout.take().map(reader);
        let stderr = child.stderr.take().map(reader);
        let (done_tx, done) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let _ = done_tx.send(child.wait());
        });
        let status = match done.recv_timeout(self.timeout) {
            Ok(status) => status,
            Err(_) => {
                // SAFETY: signalling the process group we created; it cannot be reused before
                // the waiter below has reaped its leader.
                unsafe { libc::killpg(pid, libc::SIGKILL) };
                let _ = waiter.join();
                for t in [stdout, stderr].into_iter().flatten() {
                    let _ = t.join();
                }
                return Err(err(Failure::Timeout(self.timeout)));
            }
        };
        let _ = waiter.join();
        if let Some(w) = writer {
            let _ = w.join();
        }
        let text = |t: Option<thread::JoinHandle<Vec<u8>>>| {
            t.and_then(|t| t.join().ok()).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
        };
        let status = status.map_err(|e| err(Failure::Spawn(e)))?;
        let (stdout, stderr) = (text(stdout), text(stderr));
        Ok(Output { code: status.code(), stdout, stderr })
    }
}

/// Reads a pipe to its end on a thread of its own (two pipes read in turn could deadlock).
fn reader(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn sh(script: &str) -> Cmd {
        Cmd::new("sh").args(["-c", script])
    }

    #[test]
    fn stdout_on_success_and_stderr_named_with_the_command_on_failure() {
        assert_eq!(sh("echo hello").run().unwrap(), "hello\n");
        let e = sh("echo out; echo oops >&2; exit 3").run().unwrap_err();
        let text = e.to_string();
        assert_eq!(text, "`sh -c echo out; echo oops >&2; exit 3` failed with exit code 3: oops");
        assert_eq!(e.stderr().trim(), "oops");
        // With nothing on stderr, stdout explains (macOS tools print errors there).
        assert!(sh("echo only-out; exit 1").run().unwrap_err().to_string().ends_with(": only-out"));
    }

    #[test]
    fn output_reports_any_exit_and_the_environment_is_c() {
        let o = sh("echo $LC_ALL; exit 7").output().unwrap();
        assert_eq!((o.code, o.stdout.as_str(), o.success()), (Some(7), "C\n", false));
        let o = sh("kill -9 $$").output().unwrap();
        assert_eq!(o.code, None, "killed by a signal");
        assert!(sh("kill -9 $$").run().unwrap_err().to_string().contains("killed by a signal"));
    }

    #[test]
    fn a_missing_program_is_a_spawn_error_naming_it() {
        let e = Cmd::new("dockroute-no-such-program").arg("x").run().unwrap_err();
        assert!(e.is_not_found());
        assert!(e.to_string().starts_with("cannot run `dockroute-no-such-program x`"), "{e}");
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_hung_command_and_its_children_are_killed_at_the_deadline() {
        let start = Instant::now();
        // The grandchild holds stdout open: without killing the group, reading would hang.
        let e = sh("sleep 30 & sleep 30").timeout(Duration::from_millis(200)).run().unwrap_err();
        assert!(matches!(e.failure, Failure::Timeout(_)), "{e}");
        assert!(e.to_string().contains("did not finish within 200ms"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn stdin_is_fed_and_large_outputs_on_both_pipes_do_not_deadlock() {
        assert_eq!(Cmd::new("cat").stdin("line 1\nline 2\n").run().unwrap(), "line 1\nline 2\n");
        let big = "x".repeat(1 << 20);
        let out = Cmd::new("sh").args(["-c", "cat; cat /dev/null; head -c 1048576 /dev/zero >&2"]).stdin(big.clone());
        let o = out.output().unwrap();
        assert_eq!((o.stdout.len(), o.stderr.len()), (big.len(), 1 << 20));
        // A child that ignores its input still ends normally.
        assert_eq!(sh("exit 0").stdin(big).run().unwrap(), "");
    }
}
