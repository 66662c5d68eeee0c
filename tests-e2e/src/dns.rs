//! Asking the helper's DNS server from a namespace: `dig` for the wire (status, flags,
//! answers), glibc's `getent` for what programs see, and the namespace's own resolv.conf
//! (`/etc/netns/<ns>/resolv.conf`, which `ip netns exec` puts over /etc/resolv.conf).

use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::netns::Topology;

type Res<T> = Result<T, String>;

/// One `dig` answer, as dig prints it.
#[derive(Debug, Clone)]
pub struct DigAnswer {
    pub status: String,
    pub flags: Vec<String>,
    /// The answer section's data (addresses), in order.
    pub answers: Vec<String>,
    pub text: String,
}

/// `dig @server name type` from `ns` (one try, one second; `tcp` for TCP).
pub fn dig(topo: &Topology, ns: &str, server: IpAddr, name: &str, qtype: &str, tcp: bool) -> Res<DigAnswer> {
    let at = format!("@{server}");
    let mut args = vec!["dig", &at, "+tries=1", "+time=1", "+nocookie", name, qtype];
    if tcp {
        args.push("+tcp");
    }
    let text = topo.run_timeout(ns, &args, Duration::from_secs(5))?;
    parse_dig(&text).ok_or_else(|| format!("no answer in dig's output:\n{text}"))
}

/// Reads status, flags and answer data from dig's default output.
pub fn parse_dig(text: &str) -> Option<DigAnswer> {
    let header = text.lines().find(|l| l.contains("->>HEADER<<-"))?;
    let status = header.split("status: ").nth(1)?.split(',').next()?.trim().to_string();
    let flags_line = text.lines().find(|l| l.starts_with(";; flags:"))?;
    let flags =
        flags_line.trim_start_matches(";; flags:").split(';').next()?.split_whitespace().map(String::from).collect();
    let mut answers = Vec::new();
    let mut in_answer = false;
    for line in text.lines() {
        if line.starts_with(";; ANSWER SECTION:") {
            in_answer = true;
        } else if in_answer && line.trim().is_empty() {
            in_answer = false;
        } else if in_answer {
            answers.extend(line.split_whitespace().last().map(String::from));
        }
    }
    Some(DigAnswer { status, flags, answers, text: text.to_string() })
}

/// `getent DB name` from `ns`: the addresses of the lines glibc returns, first first (empty if
/// the name does not resolve).
pub fn getent(topo: &Topology, ns: &str, db: &str, name: &str) -> Vec<String> {
    let out = topo.run_timeout(ns, &["getent", db, name], Duration::from_secs(10)).unwrap_or_default();
    let mut seen = Vec::new();
    for addr in out.lines().filter_map(|l| l.split_whitespace().next()) {
        if !seen.iter().any(|s| s == addr) {
            seen.push(addr.to_string());
        }
    }
    seen
}

/// The namespace's resolv.conf, naming `server`; removed (with its directory) when dropped.
pub struct NetnsResolvConf {
    dir: PathBuf,
}

impl NetnsResolvConf {
    pub fn write(ns: &str, server: IpAddr) -> Res<NetnsResolvConf> {
        let dir = PathBuf::from("/etc/netns").join(ns);
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let text = format!("# written by the dockroute e2e test\nnameserver {server}\noptions timeout:1 attempts:1\n");
        fs::write(dir.join("resolv.conf"), text).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(NetnsResolvConf { dir })
    }
}

impl Drop for NetnsResolvConf {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.dir.join("resolv.conf"));
        let _ = fs::remove_dir(&self.dir);
        // /etc/netns itself only if we left it empty (ip netns made it for nobody else).
        let _ = fs::remove_dir("/etc/netns");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digs_output_is_read() {
        let text = "; <<>> DiG 9.18 <<>> @198.18.149.1 web.docker A\n\
            ;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4711\n\
            ;; flags: qr aa rd; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 0\n\n\
            ;; ANSWER SECTION:\nweb.docker.\t\t5\tIN\tA\t198.19.201.2\nweb.docker.\t\t5\tIN\tA\t198.19.201.3\n\n\
            ;; Query time: 0 msec\n";
        let a = parse_dig(text).unwrap();
        assert_eq!((a.status.as_str(), a.flags.clone()), ("NOERROR", vec!["qr".into(), "aa".into(), "rd".into()]));
        assert_eq!(a.answers, ["198.19.201.2", "198.19.201.3"]);
        let refused = ";; ->>HEADER<<- opcode: QUERY, status: REFUSED, id: 1\n;; flags: qr rd; QUERY: 1, ANSWER: 0\n";
        let r = parse_dig(refused).unwrap();
        assert_eq!((r.status.as_str(), r.answers.len()), ("REFUSED", 0));
        assert!(parse_dig(";; communications error to 198.18.149.1#53: timed out\n").is_none());
    }
}
