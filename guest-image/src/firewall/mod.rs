//! The VM's firewall, as the guest agent needs it: traffic from the Mac arrives on the TUN device
//! and must reach containers through Docker's own rules.
//!
//! Why it looks like this (see DESIGN.md, "Lessons from the tools users use today"):
//! - Docker may run on iptables-legacy or iptables-nft (Colima mismatched them, docker-mac-net-connect
//!   #26). Rules put in the other backend are evaluated too, but Docker's DROPs in its own backend
//!   still win, so we detect where `DOCKER-USER` lives, per family, and use that backend only.
//! - Engine 28 drops `-d <ctr> ! -i br-x` in raw PREROUTING, before any filter rule: our ACCEPT must
//!   be first there. `--internal` networks have no route back: MASQUERADE to the bridge address.
//! - dockerd rebuilds its chains on restart: everything of ours lives in our own chains (teardown
//!   removes exactly that), and `ensure()` puts the jumps back at position 1.
//!
//! State is read with `*-save` without `-t`: it lists only the tables that exist, whereas
//! `-S`/`-t <table>` on iptables-legacy instantiates the table in the namespace as a side effect.
//! Changes go through `*-restore --noflush`: one transaction per table, so a chain is never seen
//! half-filled, and a concurrent change makes the restore fail (we then re-read and retry once).

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Output, Stdio};

pub const CHAIN_FWD: &str = "DOCKROUTE-FWD";
pub const CHAIN_PRE: &str = "DOCKROUTE-PRE";
pub const CHAIN_POST: &str = "DOCKROUTE-POST";
const OUR_CHAINS: [&str; 3] = [CHAIN_FWD, CHAIN_PRE, CHAIN_POST];

/// (table, our chain, where to jump from: the first that exists, else the last).
const SLOTS: [(&str, &str, &[&str]); 3] = [
    ("filter", CHAIN_FWD, &["DOCKER-USER", "FORWARD"]),
    ("raw", CHAIN_PRE, &["PREROUTING"]),
    ("nat", CHAIN_POST, &["POSTROUTING"]),
];

/// Runs a program and returns its stdout; Err carries the exit status and stderr.
pub trait Runner {
    fn run(&mut self, program: &str, args: &[&str]) -> Result<String, String>;

    /// Runs with `input` on stdin (for `*-restore`). The default writes a temporary file and
    /// passes it as the last argument (iptables-restore reads a file argument the same way).
    fn run_input(&mut self, program: &str, args: &[&str], input: &str) -> Result<String, String> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "dockroute-fw-{}-{}.rules",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, input).map_err(|e| format!("{}: {e}", path.display()))?;
        let p = path.to_string_lossy().into_owned();
        let mut all: Vec<&str> = args.to_vec();
        all.push(&p);
        let r = self.run(program, &all);
        let _ = std::fs::remove_file(&path);
        r
    }
}

/// Runs commands for real, in the current network namespace or (tests) via `ip netns exec NS`.
#[derive(Debug, Clone, Default)]
pub struct SystemRunner {
    pub netns: Option<String>,
}

impl SystemRunner {
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns.as_str(), program]);
                c
            }
            None => Command::new(program),
        };
        c.args(args).env("LC_ALL", "C");
        c
    }
}

fn outcome(program: &str, args: &[&str], out: std::io::Result<Output>) -> Result<String, String> {
    let out = out.map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{program} {}: {}: {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Runner for SystemRunner {
    fn run(&mut self, program: &str, args: &[&str]) -> Result<String, String> {
        let out = self.command(program, args).stdin(Stdio::null()).output();
        outcome(program, args, out)
    }

    fn run_input(&mut self, program: &str, args: &[&str], input: &str) -> Result<String, String> {
        let child =
            self.command(program, args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
        let out = child.and_then(|mut c| {
            // Input is small (a few KiB), far below the pipe buffer: no deadlock writing first.
            let w = c.stdin.take().map_or(Ok(()), |mut s| s.write_all(input.as_bytes()));
            let out = c.wait_with_output()?;
            // A child that failed early broke the pipe: its own stderr is the better error.
            if out.status.success() {
                w.map(|_| out)
            } else {
                Ok(out)
            }
        });
        outcome(program, args, out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallSpec {
    /// TUN device carrying the Mac's traffic (e.g. `dockroute0`).
    pub tun: String,
    /// Link subnet of the tunnel (the Mac's side addresses come from here).
    pub link_v4: Ipv4Net,
    pub link_v6: Option<Ipv6Net>,
    /// `--internal` networks: no default route back, so MASQUERADE traffic from the link to them.
    pub internal: Vec<IpNet>,
    /// Container subnets allowed to reach each other (both directions).
    pub pairs: Vec<(IpNet, IpNet)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Legacy,
    Nft,
}

/// `iptables-legacy-save`, `ip6tables-nft-restore`, ... (`kind` is "", "-save" or "-restore").
fn tool(f: Family, b: Backend, kind: &str) -> String {
    let base = if f == Family::V4 { "iptables" } else { "ip6tables" };
    let b = if b == Backend::Legacy { "legacy" } else { "nft" };
    format!("{base}-{b}{kind}")
}

/// One table of `*-save` output: chain names, and rules as (chain, text after `-A <chain> `).
#[derive(Debug, Default)]
struct Table {
    name: String,
    chains: Vec<String>,
    rules: Vec<(String, String)>,
}

impl Table {
    fn has_chain(&self, c: &str) -> bool {
        self.chains.iter().any(|x| x == c)
    }
    fn rules_of<'a>(&'a self, c: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.rules.iter().filter(move |(ch, _)| ch == c).map(|(_, r)| r.as_str())
    }
}

/// Lenient: unknown lines are skipped (comments, warnings, "incompatible table" notes).
fn parse_save(s: &str) -> Vec<Table> {
    let mut tables: Vec<Table> = Vec::new();
    for line in s.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('*') {
            tables.push(Table { name: name.trim().to_string(), ..Table::default() });
        } else if let Some(t) = tables.last_mut() {
            if let Some(decl) = line.strip_prefix(':') {
                if let Some(c) = decl.split_whitespace().next() {
                    t.chains.push(c.to_string());
                }
            } else if let Some(rest) = line.strip_prefix("-A ") {
                let rest = rest.trim_start();
                let (chain, rule) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                t.rules.push((chain.to_string(), rule.trim().to_string()));
            }
        }
    }
    tables
}

fn table<'a>(ts: &'a [Table], name: &str) -> Option<&'a Table> {
    ts.iter().find(|t| t.name == name)
}

/// Does this rule send packets to `chain` (`-j`/`-g`)?
fn targets(rule: &str, chain: &str) -> bool {
    let w: Vec<&str> = rule.split_whitespace().collect();
    w.windows(2).any(|p| (p[0] == "-j" || p[0] == "-g") && p[1] == chain)
}

/// Desired contents of our chains for one family: rules per slot, in SLOTS order.
#[derive(Debug, Clone)]
struct Plan {
    family: Family,
    rules: [Vec<String>; 3],
}

fn push_unique(v: &mut Vec<String>, r: String) {
    if !v.contains(&r) {
        v.push(r);
    }
}

fn plans(spec: &FirewallSpec) -> Result<Vec<Plan>, String> {
    let tun_ok = !spec.tun.is_empty()
        && spec.tun.len() <= 15
        && spec.tun.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if !tun_ok {
        return Err(format!("invalid interface name {:?}", spec.tun));
    }
    for (a, b) in &spec.pairs {
        if a.addr().is_ipv4() != b.addr().is_ipv4() {
            return Err(format!("pair {a}+{b} mixes IPv4 and IPv6"));
        }
    }
    let fam = |n: &IpNet| if n.addr().is_ipv4() { Family::V4 } else { Family::V6 };
    let mut out = Vec::new();
    for f in [Family::V4, Family::V6] {
        let link: Option<IpNet> = match f {
            Family::V4 => Some(spec.link_v4.trunc().into()),
            Family::V6 => spec.link_v6.map(|n| n.trunc().into()),
        };
        let internal: Vec<IpNet> = spec.internal.iter().filter(|n| fam(n) == f).map(IpNet::trunc).collect();
        let pairs: Vec<(IpNet, IpNet)> =
            spec.pairs.iter().filter(|(a, _)| fam(a) == f).map(|(a, b)| (a.trunc(), b.trunc())).collect();
        if link.is_none() && internal.is_empty() && pairs.is_empty() {
            continue; // no v6 at all: leave ip6tables alone
        }
        let t = &spec.tun;
        let (mut fwd, mut pre, mut post) = (
            vec![format!("-i {t} -j ACCEPT"), format!("-o {t} -j ACCEPT")],
            vec![format!("-i {t} -j ACCEPT")],
            Vec::new(),
        );
        // Written in the order iptables prints options (-s -d -i -o -j), so that the chain's
        // `*-save` output compares equal to the plan and `ensure()` sees no false difference.
        for (a, b) in pairs {
            for (s, d) in [(a, b), (b, a)] {
                push_unique(&mut fwd, format!("-s {s} -d {d} -j ACCEPT"));
                push_unique(&mut pre, format!("-s {s} -d {d} -j ACCEPT"));
            }
        }
        if let Some(l) = link {
            for n in internal {
                push_unique(&mut post, format!("-s {l} -d {n} -j MASQUERADE"));
            }
        }
        fwd.push("-j RETURN".into());
        pre.push("-j RETURN".into());
        out.push(Plan { family: f, rules: [fwd, pre, post] });
    }
    Ok(out)
}

pub struct Firewall<R: Runner> {
    runner: R,
    v4: Backend,
    v6: Backend,
    plans: Vec<Plan>,
    /// nft tables that existed before we touched anything: the only empty ones teardown keeps.
    nft_tables_before: Vec<(Family, String)>,
}

impl<R: Runner> Firewall<R> {
    /// Chooses, per family, the backend that holds Docker's `DOCKER-USER`; if neither or both do,
    /// the one `iptables`/`ip6tables` points to (both: unless only one has it wired from FORWARD).
    pub fn detect(mut runner: R) -> Result<Firewall<R>, String> {
        let v4 = detect_family(&mut runner, Family::V4)?;
        let v6 = detect_family(&mut runner, Family::V6).unwrap_or_else(|e| {
            tracing::debug!("ip6tables unusable ({e}); IPv6 rules will fail if asked for");
            Backend::Nft
        });
        Ok(Self::with_backends(runner, v4, v6))
    }

    /// Skips detection (tests, or an operator's override).
    pub fn with_backends(mut runner: R, v4: Backend, v6: Backend) -> Self {
        let mut nft_tables_before = Vec::new();
        for f in [Family::V4, Family::V6] {
            if let Ok(out) = runner.run(&tool(f, Backend::Nft, "-save"), &[]) {
                nft_tables_before.extend(parse_save(&out).into_iter().map(|t| (f, t.name)));
            }
        }
        Firewall { runner, v4, v6, plans: Vec::new(), nft_tables_before }
    }

    pub fn backend(&self, f: Family) -> Backend {
        if f == Family::V4 {
            self.v4
        } else {
            self.v6
        }
    }

    /// Idempotent: creates our chains if missing, replaces their contents with exactly the rules
    /// for `spec` (a chain already equal is left alone: its counters survive), and makes sure each
    /// jump exists exactly once, at position 1. A family `spec` no longer uses is torn down.
    pub fn apply(&mut self, spec: &FirewallSpec) -> Result<(), String> {
        let plans = plans(spec)?;
        for f in [Family::V4, Family::V6] {
            if self.plans.iter().any(|p| p.family == f) && !plans.iter().any(|p| p.family == f) {
                self.teardown_backend(f, self.backend(f))?;
            }
        }
        self.plans = plans;
        self.sync().map(|_| ())
    }

    /// Repairs what dockerd's restart (or anyone) changed: jumps gone or no longer first, chains
    /// gone or altered. One `*-save` per family when nothing is wrong. True if it repaired.
    pub fn ensure(&mut self) -> Result<bool, String> {
        self.sync()
    }

    /// Removes our jumps and chains, nothing else, from both backends and both families (so that
    /// leftovers from an earlier run on another backend go too). Idempotent.
    pub fn teardown(&mut self) -> Result<(), String> {
        self.plans.clear();
        let all = [Family::V4, Family::V6].map(|f| [Backend::Legacy, Backend::Nft].map(|b| (f, b)));
        let errs: Vec<String> =
            all.as_flattened().iter().filter_map(|&(f, b)| self.teardown_backend(f, b).err()).collect();
        self.drop_tables_we_created();
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }

    fn save(&mut self, f: Family, b: Backend) -> Result<Vec<Table>, String> {
        self.runner.run(&tool(f, b, "-save"), &[]).map(|s| parse_save(&s))
    }

    /// Builds a restore script from the current state; runs it; on failure (someone changed the
    /// rules between our read and our write) re-reads and retries once.
    fn transact(&mut self, f: Family, b: Backend, script: impl Fn(&[Table]) -> String) -> Result<bool, String> {
        let mut last = String::new();
        for _ in 0..2 {
            let s = script(&self.save(f, b)?);
            if s.is_empty() {
                return Ok(false);
            }
            tracing::debug!(family = ?f, backend = ?b, script = %s, "restore");
            match self.runner.run_input(&tool(f, b, "-restore"), &["--wait=5", "--noflush"], &s) {
                Ok(_) => return Ok(true),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn sync(&mut self) -> Result<bool, String> {
        let mut changed = false;
        for plan in self.plans.clone() {
            let b = self.backend(plan.family);
            if self.transact(plan.family, b, |ts| sync_script(ts, &plan))? {
                tracing::info!(family = ?plan.family, backend = ?b, "firewall rules (re)installed");
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Adding a rule to a missing nft table creates it (with its base chains); where there was
    /// no such table before us and it holds no rule now, it goes too, so teardown leaves the
    /// ruleset as it found it. (Legacy tables cannot be removed; they hold nothing then.)
    fn drop_tables_we_created(&mut self) {
        for f in [Family::V4, Family::V6] {
            let Ok(out) = self.runner.run(&tool(f, Backend::Nft, "-save"), &[]) else { continue };
            for t in parse_save(&out) {
                if !t.rules.is_empty() || self.nft_tables_before.iter().any(|(ff, n)| *ff == f && *n == t.name) {
                    continue;
                }
                let family = if f == Family::V4 { "ip" } else { "ip6" };
                if let Err(e) = self.runner.run("nft", &["delete", "table", family, &t.name]) {
                    tracing::debug!("could not remove the empty {family} table {} we created: {e}", t.name);
                }
            }
        }
    }

    fn teardown_backend(&mut self, f: Family, b: Backend) -> Result<(), String> {
        // A backend whose save tool does not run cannot hold rules of ours.
        if self.runner.run(&tool(f, b, "-save"), &[]).is_err() {
            return Ok(());
        }
        self.transact(f, b, teardown_script).map(|_| ())
    }
}

fn detect_family<R: Runner>(r: &mut R, f: Family) -> Result<Backend, String> {
    let mut found = Vec::new(); // (backend, FORWARD jumps to DOCKER-USER)
    let mut runs = 0;
    for b in [Backend::Legacy, Backend::Nft] {
        let Ok(out) = r.run(&tool(f, b, "-save"), &[]) else { continue };
        runs += 1;
        let ts = parse_save(&out);
        if let Some(t) = table(&ts, "filter").filter(|t| t.has_chain("DOCKER-USER")) {
            let wired = t.rules_of("FORWARD").any(|r| targets(r, "DOCKER-USER"));
            found.push((b, wired));
        }
    }
    let base = if f == Family::V4 { "iptables" } else { "ip6tables" };
    let default = match r.run(base, &["--version"]) {
        Ok(v) if v.contains("legacy") => Some(Backend::Legacy),
        Ok(v) if v.contains("nf_tables") => Some(Backend::Nft),
        _ => None,
    };
    if runs == 0 && default.is_none() {
        return Err(format!("neither {base}-legacy-save nor {base}-nft-save runs"));
    }
    let default = default.unwrap_or(Backend::Nft);
    let chosen = match found.as_slice() {
        [(b, _)] => *b,
        [(a, true), (_, false)] | [(_, false), (a, true)] => *a,
        [] => {
            tracing::warn!(family = ?f, backend = ?default, "no DOCKER-USER chain in either backend; using {base}'s default");
            default
        }
        _ => default,
    };
    tracing::info!(family = ?f, backend = ?chosen, "firewall backend chosen");
    Ok(chosen)
}

/// Restore script bringing our chains and jumps to `plan`; empty if already there.
fn sync_script(ts: &[Table], plan: &Plan) -> String {
    let mut script = String::new();
    for ((tname, chain, parents), want) in SLOTS.iter().zip(&plan.rules) {
        let t = table(ts, tname);
        let mut ops = Vec::new();
        let have: Vec<&str> = t.map(|t| t.rules_of(chain).collect()).unwrap_or_default();
        if !t.is_some_and(|t| t.has_chain(chain)) || have != *want {
            ops.push(format!(":{chain} - [0:0]")); // in --noflush mode: create, or flush
            ops.extend(want.iter().map(|r| format!("-A {chain} {r}")));
        }
        let exists = |p: &str| t.is_some_and(|t| t.has_chain(p));
        let parent = parents.iter().copied().find(|p| exists(p)).unwrap_or(parents[parents.len() - 1]);
        let jump = format!("-j {chain}");
        for p in parents.iter().copied() {
            let rules: Vec<&str> = t.map(|t| t.rules_of(p).collect()).unwrap_or_default();
            let at: Vec<usize> = (0..rules.len()).filter(|&i| rules[i] == jump).collect();
            let ok = if p == parent { at == [0] } else { at.is_empty() };
            if !ok {
                ops.extend(at.iter().map(|_| format!("-D {p} {jump}")));
                if p == parent {
                    ops.push(format!("-I {p} 1 {jump}"));
                }
            }
        }
        if !ops.is_empty() {
            script.push_str(&format!("*{tname}\n{}\nCOMMIT\n", ops.join("\n")));
        }
    }
    script
}

/// Restore script deleting every rule that jumps to one of our chains, then our chains.
fn teardown_script(ts: &[Table]) -> String {
    let mut script = String::new();
    for t in ts {
        let mut ops = Vec::new();
        for (chain, rule) in &t.rules {
            if !OUR_CHAINS.contains(&chain.as_str()) && OUR_CHAINS.iter().any(|c| targets(rule, c)) {
                ops.push(format!("-D {chain} {rule}"));
            }
        }
        let ours: Vec<&str> = OUR_CHAINS.into_iter().filter(|c| t.has_chain(c)).collect();
        ops.extend(ours.iter().map(|c| format!("-F {c}")));
        ops.extend(ours.iter().map(|c| format!("-X {c}")));
        if !ops.is_empty() {
            script.push_str(&format!("*{}\n{}\nCOMMIT\n", t.name, ops.join("\n")));
        }
    }
    script
}

/// Parses the seed's pair syntax `A+B` (`172.0.1.0+172.0.2.0`): two addresses of one family, no masks.
pub fn parse_pair(s: &str) -> Result<(IpAddr, IpAddr), String> {
    let (a, b) = s.trim().split_once('+').ok_or_else(|| format!("{s:?}: expected A+B"))?;
    let ip = |x: &str| x.trim().parse::<IpAddr>().map_err(|_| format!("{s:?}: {x:?} is not an IP address (no mask)"));
    let (a, b) = (ip(a)?, ip(b)?);
    if a.is_ipv4() != b.is_ipv4() {
        return Err(format!("{s:?}: mixes IPv4 and IPv6"));
    }
    Ok((a, b))
}

/// The subnet of the most specific connected route (no gateway, unicast) in `ip -j route` /
/// `ip -6 -j route` output that contains `addr`. None if there is none or the JSON is bad.
pub fn resolve_subnet(addr: IpAddr, ip_route_json: &str) -> Option<IpNet> {
    let mut p = JsonParser { b: ip_route_json.as_bytes(), i: 0, depth: 0 };
    let Some(Json::Arr(routes)) = p.value() else { return None };
    let mut best: Option<IpNet> = None;
    for r in &routes {
        let Json::Obj(kv) = r else { continue };
        let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        let str_of = |k: &str| match get(k) {
            Some(Json::Str(s)) => Some(s.as_str()),
            _ => None,
        };
        if ["gateway", "via", "nexthops"].iter().any(|k| get(k).is_some())
            || str_of("type").is_some_and(|t| t != "unicast")
        {
            continue;
        }
        let Some(dst) = str_of("dst") else { continue };
        let net = match dst.parse::<IpNet>() {
            Ok(n) => n.trunc(),
            Err(_) => match dst.parse::<IpAddr>() {
                Ok(a) => IpNet::from(a), // host route: ip prints it without a mask
                Err(_) => continue,      // "default", junk
            },
        };
        if net.contains(&addr) && best.is_none_or(|b| net.prefix_len() > b.prefix_len()) {
            best = Some(net);
        }
    }
    best
}

/// Just enough JSON for `ip -j route` (no serde in this crate's dependencies).
#[derive(Debug)]
enum Json {
    Other,
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

struct JsonParser<'a> {
    b: &'a [u8],
    i: usize,
    depth: u32,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.b.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let ok = self.b.get(self.i) == Some(&c);
        self.i += ok as usize;
        ok
    }
    fn value(&mut self) -> Option<Json> {
        self.ws();
        self.depth += 1;
        if self.depth > 64 {
            return None; // hostile nesting: refuse instead of overflowing the stack
        }
        let v = match *self.b.get(self.i)? {
            b'"' => Json::Str(self.string()?),
            open @ (b'[' | b'{') => {
                let (obj, close) = (open == b'{', if open == b'{' { b'}' } else { b']' });
                self.i += 1;
                let (mut arr, mut map) = (Vec::new(), Vec::new());
                if !self.eat(close) {
                    loop {
                        if obj {
                            self.ws();
                            let k = self.string()?;
                            if !self.eat(b':') {
                                return None;
                            }
                            map.push((k, self.value()?));
                        } else {
                            arr.push(self.value()?);
                        }
                        if self.eat(close) {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                if obj {
                    Json::Obj(map)
                } else {
                    Json::Arr(arr)
                }
            }
            _ => {
                // Numbers, true, false, null: their value is never needed.
                let start = self.i;
                while self.b.get(self.i).is_some_and(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c)) {
                    self.i += 1;
                }
                if self.i == start {
                    return None;
                }
                Json::Other
            }
        };
        self.depth -= 1;
        Some(v)
    }
    fn string(&mut self) -> Option<String> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let c = *self.b.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let e = *self.b.get(self.i)?;
                    self.i += 1;
                    // \n, \t... never occur in the values we read: only \uXXXX needs decoding.
                    let ch = if e == b'u' {
                        let hex = std::str::from_utf8(self.b.get(self.i..self.i + 4)?).ok()?;
                        self.i += 4;
                        char::from_u32(u32::from_str_radix(hex, 16).ok()?).unwrap_or('\u{fffd}')
                    } else {
                        e as char
                    };
                    out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }
}
