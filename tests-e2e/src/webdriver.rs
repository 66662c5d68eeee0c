//! The real app on a virtual desktop, driven through WebDriver: Xvfb, a D-Bus session, a fresh
//! kernel session keyring and tauri-driver (with Debian's WebKitWebDriver) all run inside the
//! test's "mac" namespace, and the test talks to tauri-driver over that namespace's loopback.
//! The client is a few W3C WebDriver calls over HTTP/1.1; nothing here reaches another network.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::netns::Topology;

type Res<T> = Result<T, String>;

/// The reply to a new-session request (W3C WebDriver), as far as we read it.
#[derive(Deserialize)]
struct NewSession {
    value: NewSessionValue,
}

#[derive(Deserialize)]
struct NewSessionValue {
    #[serde(rename = "sessionId")]
    session_id: String,
}

/// A found element: W3C's fixed key for an element reference holds its id.
#[derive(Deserialize)]
struct ElementRef {
    #[serde(rename = "element-6066-11e4-a52e-4f735466cecf")]
    id: String,
}
const CLONE_NEWNET: i32 = 0x4000_0000;

mod sys {
    extern "C" {
        pub fn setns(fd: i32, nstype: i32) -> i32;
    }
}

/// tauri-driver: `$TAURI_DRIVER`, else where `scripts/setup.sh` installs it, else PATH.
pub fn tauri_driver() -> Res<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("TAURI_DRIVER") {
        candidates.push(p.into());
    }
    // DOCKROUTE_TOOLS, its default (scripts/lib.sh), then cargo's own home.
    let roots = [
        std::env::var_os("DOCKROUTE_TOOLS"),
        Some(crate::docker::cache_dir().join("tools").into()),
        std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo").into()),
    ];
    candidates.extend(roots.into_iter().flatten().map(|r| Path::new(&r).join("bin/tauri-driver")));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("tauri-driver")));
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| "tauri-driver not found: run scripts/setup.sh".into())
}

/// Xvfb plus tauri-driver in the "mac" namespace. Both are children of the topology, so they
/// end with it.
pub struct Desktop {
    ns: String,
    pub display: u16,
    port: u16,
    pub log: PathBuf,
}

impl Desktop {
    /// `env` reaches the app (tauri-driver → WebKitWebDriver → app inherit it).
    pub fn start(topo: &Topology, display: u16, port: u16, env: &[(&str, String)]) -> Res<Desktop> {
        let ns = topo.ns_mac().to_string();
        let log = topo.dir().join("desktop.log");
        let screen = format!(":{display}");
        topo.spawn(&ns, &["Xvfb", &screen, "-screen", "0", "1280x900x24", "-nolisten", "tcp"], &log)?;
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{display}"));
        Topology::wait_until("Xvfb's socket", Duration::from_secs(10), || socket.exists())?;
        let driver = tauri_driver()?;
        let mut args: Vec<String> = vec!["env".into(), format!("DISPLAY={screen}")];
        // WebKit's GPU paths have no GPU under Xvfb.
        args.push("WEBKIT_DISABLE_COMPOSITING_MODE=1".into());
        args.push("WEBKIT_DISABLE_DMABUF_RENDERER=1".into());
        args.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        // The app's single-instance lock and the desktop portal want a session bus. A session
        // keyring of its own keeps the desktop's keys apart from the caller's (keyring-rs also
        // files them in root's persistent keyring: `KernelKeyringEntry` removes them).
        args.extend(["dbus-run-session", "--", "keyctl", "session", "-"].map(String::from));
        args.push(driver.to_string_lossy().into_owned());
        args.extend(["--port".into(), port.to_string(), "--native-port".into(), (port + 1).to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        topo.spawn(&ns, &args, &log)?;
        let me = Desktop { ns, display, port, log };
        Topology::wait_until("tauri-driver to listen", Duration::from_secs(20), || {
            me.http("GET", "/status", None).is_ok()
        })?;
        Ok(me)
    }

    /// Starts the app with `args` and opens a WebDriver session on its window. WebKitWebDriver
    /// has been seen (once, under CI load) to drop the connection of a new-session request
    /// before the app started: that, and only that, is tried once more.
    pub fn launch(&self, app: &Path, args: &[String]) -> Res<Session<'_>> {
        let caps = json!({"capabilities": {"alwaysMatch": {"tauri:options": {"application": app, "args": args}}}});
        let reply = match self.http("POST", "/session", Some(caps.clone())) {
            Err(e) if e.contains("no HTTP reply") || e.contains("reset") => {
                eprintln!("new WebDriver session failed ({e}); trying once more");
                std::thread::sleep(Duration::from_secs(1));
                self.http("POST", "/session", Some(caps))?
            }
            other => other?,
        };
        let shown = reply.to_string();
        let created: NewSession =
            serde_json::from_value(reply).map_err(|e| format!("no session id in {shown}: {e}"))?;
        Ok(Session { desktop: self, id: created.value.session_id })
    }

    /// One request, tried up to three times when no reply at all comes back. tauri-driver
    /// forwards over pooled keep-alive connections to WebKitWebDriver, and under load it
    /// sometimes picks one WebKitWebDriver is closing: the request is reset before anything
    /// ran ("client error (SendRequest) … Connection reset by peer" in its log) and we get an
    /// empty answer. Any reply, error replies included, is final.
    fn http(&self, method: &str, path: &str, body: Option<Value>) -> Res<Value> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut tries = 0;
        loop {
            tries += 1;
            match self.http_once(method, path, &body) {
                Err(Unanswered(e)) if tries < 3 => {
                    eprintln!("webdriver: {e}; trying again");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(Unanswered(e)) => return Err(e),
                Ok(reply) => return reply,
            }
        }
    }

    /// One request on a fresh connection made inside the namespace.
    fn http_once(&self, method: &str, path: &str, body: &str) -> Result<Res<Value>, Unanswered> {
        let unanswered = |e: &dyn std::fmt::Display| Unanswered(format!("{method} {path}: {e}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = connect_in_namespace(&self.ns, addr).map_err(|e| unanswered(&e))?;
        stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| unanswered(&e))?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        let sent = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes()));
        sent.map_err(|e| unanswered(&e))?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(|e| unanswered(&e))?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| unanswered(&"no HTTP reply"))?;
        Ok(parse_reply(method, path, head, body))
    }
}

/// A request that got no answer at all (connection refused or reset, or closed empty).
struct Unanswered(String);

fn parse_reply(method: &str, path: &str, head: &str, body: &str) -> Res<Value> {
    let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or(format!("bad status line: {head}"))?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)?
    } else {
        body.to_string()
    };
    let value: Value = serde_json::from_str(&body).map_err(|e| format!("{method} {path}: {e}: {body}"))?;
    if !(200..300).contains(&status) {
        return Err(format!("{method} {path}: HTTP {status}: {}", value["value"]));
    }
    Ok(value)
}

fn dechunk(body: &str) -> Res<String> {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or("bad chunk")?;
        let size = usize::from_str_radix(size.trim(), 16).map_err(|e| e.to_string())?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(after.get(..size).ok_or("short chunk")?);
        rest = after.get(size + 2..).ok_or("short chunk")?;
    }
}

/// A socket belongs to the namespace its creating thread was in: connect from a thread that
/// joined the namespace, then hand the socket back.
fn connect_in_namespace(ns: &str, addr: SocketAddr) -> Res<TcpStream> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || -> Res<TcpStream> {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        if unsafe { sys::setns(f.as_raw_fd(), CLONE_NEWNET) } != 0 {
            return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
        }
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| format!("connect {addr} in {path}: {e}"))
    })
    .join()
    .map_err(|_| "connect thread panicked".to_string())?
}

pub struct Session<'d> {
    desktop: &'d Desktop,
    id: String,
}

impl Session<'_> {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Res<Value> {
        Ok(self.desktop.http(method, &format!("/session/{}{path}", self.id), body)?["value"].take())
    }

    /// Runs `script` in the page (a function body; `arguments` holds `args`).
    pub fn js(&self, script: &str, args: Value) -> Res<Value> {
        self.call("POST", "/execute/sync", Some(json!({"script": script, "args": args})))
    }

    /// The first element matching `css`.
    pub fn find(&self, css: &str) -> Res<String> {
        let v = self.call("POST", "/element", Some(json!({"using": "css selector", "value": css})))?;
        let shown = v.to_string();
        let found: ElementRef = serde_json::from_value(v).map_err(|e| format!("no element for {css}: {shown}: {e}"))?;
        Ok(found.id)
    }

    /// A real click, dispatched by WebKit as a user's would be.
    pub fn click(&self, css: &str) -> Res<()> {
        let el = self.find(css)?;
        self.call("POST", &format!("/element/{el}/click"), Some(json!({})))?;
        Ok(())
    }

    pub fn text(&self, css: &str) -> Res<String> {
        let el = self.find(css)?;
        Ok(self.call("GET", &format!("/element/{el}/text"), None)?.as_str().unwrap_or_default().to_string())
    }

    /// `textContent` of the first match, or None when nothing matches (no error round trip).
    pub fn content(&self, css: &str) -> Res<Option<String>> {
        let v =
            self.js("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", json!([css]))?;
        Ok(v.as_str().map(str::to_string))
    }

    pub fn screenshot(&self, to: &Path) -> Res<()> {
        let b64 = self.call("GET", "/screenshot", None)?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().ok_or("screenshot: not a string")?)
            .map_err(|e| e.to_string())?;
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(to, png).map_err(|e| format!("{}: {e}", to.display()))
    }

    /// Polls `check` every 100 ms until it says yes, at most `timeout`; returns the time taken.
    pub fn wait(&self, what: &str, timeout: Duration, mut check: impl FnMut(&Self) -> Res<bool>) -> Res<Duration> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < timeout {
            match check(self) {
                Ok(true) => return Ok(start.elapsed()),
                Ok(false) => {}
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let phase = self.content("#phase").ok().flatten().unwrap_or_default();
        let problem = self.content("#problem").ok().flatten().unwrap_or_default();
        Err(format!("timed out after {timeout:?} waiting for {what} (phase {phase:?}, problem {problem:?}, last error {last:?})"))
    }

    /// Ends the session; WebKitWebDriver stops the app.
    pub fn close(self) -> Res<()> {
        self.call("DELETE", "", None).map(|_| ())
    }
}

/// Where screenshots go: `$DOCKROUTE_ARTIFACTS`, else `target/e2e-artifacts` of this build.
/// The app's environment for a test: its own keychain service, home and config dirs, the
/// test's dockerd, debug logs, and a fake `xdg-open` first on PATH that writes what the app
/// asked to open into the returned file (the desktop's opener is not the test's).
pub fn app_env(topo: &Topology, docker_host: String) -> (Vec<(&'static str, String)>, PathBuf) {
    let home = topo.dir().join("home");
    let opened = topo.dir().join("opened.txt");
    let fakebin = topo.dir().join("fakebin");
    std::fs::create_dir_all(&fakebin).unwrap();
    std::fs::write(fakebin.join("xdg-open"), format!("#!/bin/sh\necho \"$1\" >> {}\n", opened.display())).unwrap();
    std::process::Command::new("chmod").arg("+x").arg(fakebin.join("xdg-open")).status().unwrap();
    let env = vec![
        ("DOCKROUTE_KEYCHAIN_SERVICE", keychain_service(topo)),
        ("HOME", home.display().to_string()),
        ("XDG_CONFIG_HOME", home.join(".config").display().to_string()),
        ("XDG_DATA_HOME", home.join(".local/share").display().to_string()),
        ("DOCKER_HOST", docker_host),
        ("RUST_LOG", "info,dockroute_app=debug,dockroute_controller=debug".to_string()),
        ("PATH", format!("{}:{}", fakebin.display(), std::env::var("PATH").unwrap_or_default())),
    ];
    (env, opened)
}

/// The keychain service each test's app uses, so its secret is its own.
pub fn keychain_service(topo: &Topology) -> String {
    format!("dev.dockroute.e2e.{}", topo.slot)
}

pub fn artifacts_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKROUTE_ARTIFACTS") {
        return d.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors().nth(3).map(|t| t.join("e2e-artifacts")).unwrap_or_else(|| PathBuf::from("e2e-artifacts"))
}

/// The app's secret as the keyring crate files it in the kernel keyring: a `user` key in root's
/// persistent keyring. Removed again on drop (and at creation, in case a killed run left one).
pub struct KernelKeyringEntry {
    description: String,
}

impl KernelKeyringEntry {
    /// For the app's `DOCKROUTE_KEYCHAIN_SERVICE=service`.
    pub fn for_service(service: &str) -> KernelKeyringEntry {
        let me = KernelKeyringEntry { description: format!("keyring-rs:tunnel-secret@{service}") };
        me.forget();
        me
    }

    /// The key's payload, if the key exists.
    pub fn read(&self) -> Option<String> {
        self.keyctl(r#"K=$(keyctl search "$P" user "$1") && keyctl pipe "$K""#)
    }

    fn forget(&self) {
        let _ = self.keyctl(r#"K=$(keyctl search "$P" user "$1") && keyctl invalidate "$K""#);
    }

    /// Runs `script` in a fresh session keyring with the persistent keyring linked in as `$P`
    /// (keys are only searchable through a keyring the caller possesses).
    fn keyctl(&self, script: &str) -> Option<String> {
        let script = format!(r#"P=$(keyctl get_persistent @s) && {script}"#);
        let out = std::process::Command::new("keyctl")
            .args(["session", "-", "sh", "-c", &script, "sh", &self.description])
            .output()
            .ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for KernelKeyringEntry {
    fn drop(&mut self) {
        self.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_id_and_an_element_id_are_read_from_w3c_replies_and_anything_else_is_an_error() {
        let reply = json!({"value": {"sessionId": "4f1c", "capabilities": {"browserName": "wry"}}});
        assert_eq!(serde_json::from_value::<NewSession>(reply).unwrap().value.session_id, "4f1c");
        let found = json!({"element-6066-11e4-a52e-4f735466cecf": "node-7"});
        assert_eq!(serde_json::from_value::<ElementRef>(found).unwrap().id, "node-7");
        let error = json!({"error": "no such element", "message": "", "stacktrace": ""});
        assert!(serde_json::from_value::<ElementRef>(error).is_err());
        assert!(serde_json::from_value::<NewSession>(json!({"value": null})).is_err());
    }
}
