//! What the load suite (`tests/load.rs`) stands on: its sizes (short for CI, long with
//! `DOCKROUTE_LOAD_LONG=1`), nginx in a namespace, wrk, the load tool, process figures (RSS,
//! descriptors) and percentiles.

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use crate::netns::Topology;
use crate::rig::bin;

type Res<T> = Result<T, String>;

/// How much of everything: `DOCKROUTE_LOAD_LONG=1` for the figures, else a few minutes in all.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub long: bool,
    pub connections: usize,
    pub wrk_seconds: u32,
    pub flood_seconds: u32,
    pub flood_rate: u32,
    pub soak_seconds: u64,
    pub rounds: usize,
    pub stop_seconds: u64,
}

pub fn sizes() -> Sizes {
    let long = std::env::var_os("DOCKROUTE_LOAD_LONG").is_some_and(|v| v == "1");
    if long {
        Sizes {
            long,
            connections: 10_000,
            wrk_seconds: 10,
            flood_seconds: 10,
            flood_rate: 50_000,
            soak_seconds: 600,
            rounds: 20,
            stop_seconds: 30,
        }
    } else {
        Sizes {
            long,
            connections: 2_000,
            wrk_seconds: 3,
            flood_seconds: 4,
            flood_rate: 20_000,
            soak_seconds: 30,
            rounds: 3,
            stop_seconds: 5,
        }
    }
}

/// nginx from Debian in `ns`, on `addr:80`, answering "hello" to everything, sized for tens of
/// thousands of connections. Returns its handle once it answers.
pub fn start_nginx(t: &Topology, ns: &str, addr: Ipv4Addr) -> Res<u32> {
    let dir = t.dir().join(format!("nginx-{ns}"));
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\nworker_rlimit_nofile 65536;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 30000; multi_accept on; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 1000000;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           server {{ listen {addr}:80 backlog=16384; location / {{ return 200 \"hello\\n\"; }} }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    fs::write(&path, conf).map_err(|e| e.to_string())?;
    t.run(ns, &["sysctl", "-qw", "net.core.somaxconn=16384", "net.ipv4.tcp_max_syn_backlog=16384"])?;
    let h =
        t.spawn(ns, &["nginx", "-c", &path.to_string_lossy(), "-e", &format!("{d}/stderr.log")], &dir.join("out.log"))?;
    Topology::wait_until(&format!("nginx in {ns}"), Duration::from_secs(10), || {
        t.http_get(ns, &format!("http://{addr}/"), Duration::from_secs(1)).is_ok_and(|b| b.contains("hello"))
    })
    .map_err(|e| format!("{e}: {}", fs::read_to_string(dir.join("error.log")).unwrap_or_default()))?;
    Ok(h)
}

/// wrk from `ns` against `url` for `seconds` with `connections`: requests per second.
pub fn wrk(t: &Topology, ns: &str, url: &str, seconds: u32, connections: u32) -> Res<f64> {
    let out = t.run_timeout(
        ns,
        &["wrk", "-t2", &format!("-c{connections}"), &format!("-d{seconds}s"), url],
        Duration::from_secs(u64::from(seconds) + 30),
    )?;
    out.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:").and_then(|v| v.trim().parse().ok()))
        .ok_or_else(|| format!("no Requests/sec in wrk's output:\n{out}"))
}

/// Runs the load tool in `ns`; Ok(its `key=value` line) if it exited 0.
pub fn load_tool(t: &Topology, ns: &str, args: &[&str], timeout: Duration) -> Res<String> {
    let tool = bin("dockroute-load").to_string_lossy().into_owned();
    let mut all = vec![tool.as_str()];
    all.extend_from_slice(args);
    t.run_timeout(ns, &all, timeout)
}

/// A `key=value` figure from the load tool's line.
pub fn figure(line: &str, key: &str) -> u64 {
    let k = format!("{key}=");
    line.split_whitespace().find_map(|w| w.strip_prefix(&k)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Resident memory of a process, KiB (0 once it is gone).
pub fn rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmRSS")
}

/// The most resident memory a process ever had, KiB.
pub fn peak_rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmHWM")
}

fn status_kb(pid: u32, key: &str) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim_start_matches(':').split_whitespace().next()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// The `p`-th percentile (0..=100) of `samples`, nearest rank.
pub fn percentile(samples: &[Duration], p: u32) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut s = samples.to_vec();
    s.sort();
    let rank = (u64::from(p) * s.len() as u64).div_ceil(100).max(1) as usize;
    s[rank.min(s.len()) - 1]
}

/// Lines of `ip -o link` in `ns` naming `dev` (to check a device exists exactly once).
pub fn devices_named(t: &Topology, ns: &str, dev: &str) -> usize {
    t.run(ns, &["ip", "-o", "link"]).unwrap_or_default().lines().filter(|l| l.contains(&format!(" {dev}:"))).count()
}

/// Our firewall chains in `ns`, as `iptables-save` of both backends lists them.
pub fn our_chains(t: &Topology, ns: &str) -> Vec<String> {
    let mut chains = Vec::new();
    for tool in ["iptables-legacy-save", "iptables-nft-save"] {
        let text = t.run(ns, &[tool]).unwrap_or_default();
        chains.extend(text.lines().filter(|l| l.starts_with(":DOCKROUTE")).map(|l| format!("{tool} {l}")));
    }
    chains.iter_mut().for_each(|c| {
        if let Some(i) = c.find(" [") {
            c.truncate(i);
        }
    });
    chains.sort();
    chains
}

pub fn write_figure(dir: &Path, name: &str, value: &str) {
    let _ = fs::write(dir.join(name), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let ms = |v: &[u64]| v.iter().map(|m| Duration::from_millis(*m)).collect::<Vec<_>>();
        let s = ms(&[50, 10, 40, 20, 30]);
        assert_eq!(percentile(&s, 50), Duration::from_millis(30));
        assert_eq!(percentile(&s, 99), Duration::from_millis(50));
        assert_eq!(percentile(&s, 0), Duration::from_millis(10));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
        assert_eq!(percentile(&ms(&(1..=100).collect::<Vec<_>>()), 99), Duration::from_millis(99));
    }

    #[test]
    fn figures_come_from_the_tools_line() {
        let line = "opened=10000 answered=9999 failed=1 open_at_once=10000 elapsed_ms=4211";
        assert_eq!((figure(line, "answered"), figure(line, "failed")), (9999, 1));
        assert_eq!(figure(line, "missing"), 0);
    }
}
