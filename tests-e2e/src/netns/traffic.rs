//! Test traffic in the topology: servers (busybox httpd, a Python UDP echo) and clients
//! (wget, ping, one UDP exchange).

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::{Res, Topology};

const UDP_ECHO_PY: &str = include_str!("udp_echo.py");
const UDP_CLIENT_PY: &str = include_str!("udp_client.py");

impl Topology {
    /// busybox httpd on port 80 (v4 and v6) serving "hello from {ns}\n"; returns its handle
    /// once it answers locally.
    pub fn start_http(&self, ns: &str) -> Res<u32> {
        let www = self.dir.join(format!("www-{ns}"));
        let body = format!("hello from {ns}\n");
        let wrote = fs::create_dir_all(&www).and_then(|_| fs::write(www.join("index.html"), body));
        wrote.map_err(|e| format!("docroot {}: {e}", www.display()))?;
        let log = self.dir.join(format!("httpd-{ns}.log"));
        let args = ["busybox", "httpd", "-f", "-vv", "-p", "80", "-h", &www.to_string_lossy()];
        let h = self.spawn(ns, &args, &log)?;
        self.wait_started(h, &format!("httpd in {ns}"), &log, || {
            self.http_get(ns, "http://127.0.0.1/", Duration::from_secs(1)).is_ok()
        })?;
        Ok(h)
    }

    /// python3 UDP echo server on [::]:port (dual stack, so v4 too); returns once bound.
    pub fn start_udp_echo(&self, ns: &str, port: u16) -> Res<u32> {
        let log = self.dir.join(format!("udp-echo-{ns}-{port}.log"));
        let _ = fs::remove_file(&log);
        let h = self.spawn(ns, &["python3", "-c", UDP_ECHO_PY, &port.to_string()], &log)?;
        self.wait_started(h, &format!("UDP echo in {ns} on port {port}"), &log, || {
            fs::read_to_string(&log).is_ok_and(|s| s.contains("ready"))
        })?;
        Ok(h)
    }

    fn wait_started(&self, h: u32, what: &str, log: &Path, ready: impl Fn() -> bool) -> Res<()> {
        let r = Self::wait_until(what, Duration::from_secs(5), || self.status(h).is_some() || ready());
        let why = match (r, self.status(h)) {
            (Ok(_), None) => return Ok(()),
            (_, Some(s)) => s.to_string(),
            (r, None) => r.err().unwrap_or_default(),
        };
        let log_text = fs::read_to_string(log).unwrap_or_default();
        Err(format!("{what} did not start ({why}); {}:\n{log_text}", log.display()))
    }

    /// GET `url` with busybox wget: Ok(body). This busybox's wget has no working `-T` (it
    /// segfaults), so `timeout` is enforced by killing wget.
    pub fn http_get(&self, from: &str, url: &str, timeout: Duration) -> Res<String> {
        self.run_timeout(from, &["busybox", "wget", "-q", "-Y", "off", "-O", "-", url], timeout)
    }

    /// `count` echo requests 0.2 s apart; Ok only if all are answered within `timeout`.
    /// Without a route it fails at once (ENETUNREACH), not after the timeout.
    pub fn ping(&self, from: &str, addr: IpAddr, count: u32, timeout: Duration) -> Res<()> {
        let fam = if addr.is_ipv6() { "-6" } else { "-4" };
        let w = timeout.as_secs_f64().ceil().max(1.0).to_string();
        let (n, a) = (count.to_string(), addr.to_string());
        let args = ["busybox", "ping", fam, "-c", &n, "-i", "0.2", "-W", &w, "-w", &w, &a];
        let out = self.run_timeout(from, &args, timeout + Duration::from_secs(2))?;
        match out.contains(&format!(" {count} packets received")) {
            true => Ok(()),
            false => Err(format!("ping {addr} from {from}: not all {count} replies:\n{out}")),
        }
    }

    /// Sends one datagram from `from` and returns the first reply from `addr`.
    pub fn udp_exchange(&self, from: &str, addr: SocketAddr, data: &[u8], timeout: Duration) -> Res<Vec<u8>> {
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        let (ip, port) = (addr.ip().to_string(), addr.port().to_string());
        let t = timeout.as_secs_f64().to_string();
        let args = ["python3", "-c", UDP_CLIENT_PY, &ip, &port, &hex, &t];
        let out = self.run_timeout(from, &args, timeout + Duration::from_secs(5))?; // + python start-up
        let out = out.trim();
        let byte = |i: usize| out.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
        let bytes: Option<Vec<u8>> = (0..out.len()).step_by(2).map(byte).collect();
        bytes.ok_or_else(|| format!("udp_exchange: bad helper output {out:?}"))
    }
}
