//! Container names from the "mac" namespace, on real dockerd: the helper's DNS server on its
//! link address answers `dig` and glibc (`getent`, through the namespace's resolv.conf) for
//! `<container>.docker`, the compose name, label domains and wildcards, A and AAAA; a name
//! appears within 1 s of `docker run` and is NXDOMAIN within 1 s of `docker rm` (both
//! measured: `MEASURED dns …` lines); a name outside ours is REFUSED; nothing is left behind.
//! Needs root, the cached Engine 28, `dig` (bind9-dnsutils) and `getent`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dockroute_api::client::Client;
use dockroute_api::{Answer, Op};
use dockroute_e2e::dns::{dig, getent, DigAnswer, NetnsResolvConf};
use dockroute_e2e::docker::Engine;
use dockroute_e2e::docker_rig::*;
use dockroute_e2e::netns::{require_root, Topology, SIGTERM};
use dockroute_e2e::rig::read;

const SLOT: u8 = 49;

struct Names<'a> {
    d: &'a DockerRig,
    server: IpAddr,
}

impl Names<'_> {
    fn ask(&self, name: &str, qtype: &str) -> DigAnswer {
        let t = &self.d.rig.topo;
        dig(t, t.ns_mac(), self.server, name, qtype, false).unwrap_or_else(|e| panic!("{e}\n{}", self.d.logs()))
    }

    fn ask_tcp(&self, name: &str, qtype: &str) -> DigAnswer {
        let t = &self.d.rig.topo;
        dig(t, t.ns_mac(), self.server, name, qtype, true).unwrap_or_else(|e| panic!("{e}\n{}", self.d.logs()))
    }

    /// The addresses of an authoritative NOERROR answer.
    fn addresses(&self, name: &str, qtype: &str) -> Vec<String> {
        let a = self.ask(name, qtype);
        assert_eq!(a.status, "NOERROR", "{name} {qtype}:\n{}", a.text);
        assert!(a.flags.iter().any(|f| f == "aa"), "{name} {qtype}: not authoritative\n{}", a.text);
        a.answers
    }

    fn getent(&self, db: &str, name: &str) -> Vec<String> {
        getent(&self.d.rig.topo, self.d.rig.topo.ns_mac(), db, name)
    }

    /// Polls until `ok` holds for `name`'s A answer; the time it took.
    fn wait(&self, what: &str, name: &str, ok: impl Fn(&DigAnswer) -> bool) -> Duration {
        Topology::wait_until(what, Duration::from_secs(5), || ok(&self.ask(name, "A")))
            .unwrap_or_else(|e| panic!("{e}\nlast answer:\n{}\n{}", self.ask(name, "A").text, self.d.logs()))
    }
}

fn inspect(d: &DockerRig, container: &str, field: &str) -> String {
    d.docker(&[
        "inspect",
        "-f",
        &format!("{{{{range .NetworkSettings.Networks}}}}{{{{.{field}}}}}{{{{end}}}}"),
        container,
    ])
    .trim()
    .to_string()
}

fn dns_counters(d: &DockerRig) -> dockroute_api::DnsCounters {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = Client::connect(&d.rig.api_socket(), "e2e dns").await.unwrap();
        let Answer::Stats(stats) = c.call(Op::Stats).await.unwrap() else { panic!("a stats answer") };
        stats.dns.expect("DNS counters while the tunnel is up")
    })
}

#[test]
fn engine28_container_names_resolve_from_the_mac() {
    if !require_root() || !Engine::V28.require() {
        return;
    }
    let mut d = DockerRig::up(SLOT, Engine::V28);
    let server = d.rig.link_host();
    let names = Names { d: &d, server };
    let t = &d.rig.topo;
    let _resolv = NetnsResolvConf::write(t.ns_mac(), server).unwrap();
    let sock = d.rig.api_socket();
    let status = Topology::wait_until("the DNS server in the status", Duration::from_secs(5), || {
        helper_status(&sock).is_some_and(|s| s.contains(&format!("dns on {server}:53")))
    });
    status.unwrap_or_else(|e| panic!("{e}\n{}", helper_status(&sock).unwrap_or_default()));
    let status = helper_status(&sock).unwrap();
    assert!(status.contains("own network namespace"), "resolved is never told from a test namespace:\n{status}");

    // A network with IPv4 and IPv6, and a container on it with compose's labels and a domain label.
    let (v4net, v6net) = (subnet(SLOT, 1), subnet6(SLOT, 1));
    d.docker(&["network", "create", "--ipv6", "--subnet", &v6net, "--subnet", &v4net, "dr-names"]);
    wait_route(&d, &v4net, true, "route for the names network");
    let labels = [
        "com.docker.compose.service=api",
        "com.docker.compose.project=shop",
        "dev.dockroute.domains=shop.test,*.shop.test",
    ];
    let mut run = vec!["run", "-d", "--name", "dr-named", "--network", "dr-names"];
    labels.iter().for_each(|l| run.extend(["--label", l]));
    run.extend(["dr-busybox", "sleep", "600"]);
    let started = Instant::now();
    d.docker(&run);
    let ran = Instant::now();
    let appear = names.wait("dr-named.docker to resolve", "dr-named.docker", |a| !a.answers.is_empty());
    println!(
        "MEASURED dns appear_ms={} (from `docker run` returning; {} ms from its start)",
        appear.as_millis(),
        ran.duration_since(started).as_millis() + appear.as_millis()
    );
    assert!(appear <= Duration::from_secs(1), "the name took {appear:?} to appear");

    let (ip4, ip6) = (inspect(&d, "dr-named", "IPAddress"), inspect(&d, "dr-named", "GlobalIPv6Address"));
    let (only4, only6) = (vec![ip4.clone()], vec![ip6.clone()]);
    assert!(ip6.starts_with("2001:2:0:d49"), "container v6 address {ip6:?}");
    // dig: every name, A and AAAA, over UDP and TCP.
    for name in ["dr-named.docker", "api.shop.docker", "shop.test", "www.shop.test", "a.b.shop.test"] {
        assert_eq!(names.addresses(name, "A"), only4, "{name} A");
        assert_eq!(names.addresses(name, "AAAA"), only6, "{name} AAAA");
    }
    assert_eq!(names.ask_tcp("DR-Named.Docker", "A").answers, only4, "over TCP, any case");
    // glibc through the namespace's resolv.conf: what curl and browsers see.
    for name in ["dr-named.docker", "api.shop.docker", "shop.test", "www.shop.test"] {
        assert_eq!(names.getent("ahostsv4", name), only4, "getent ahostsv4 {name}");
        assert_eq!(names.getent("hosts", name), only6, "getent hosts {name} (IPv6 first)");
    }

    // Not ours: refused, never resolved. Ours but unknown: NXDOMAIN.
    for name in ["example.com", "docker.com", "test"] {
        let a = names.ask(name, "A");
        assert_eq!((a.status.as_str(), a.answers.len()), ("REFUSED", 0), "{name}:\n{}", a.text);
    }
    assert_eq!(names.ask("nothere.docker", "A").status, "NXDOMAIN");
    assert!(names.getent("ahostsv4", "nothere.docker").is_empty());

    // A second container of the same compose service: the name answers with both.
    let mut second = vec!["run", "-d", "--name", "dr-named-2", "--network", "dr-names"];
    labels[..2].iter().for_each(|l| second.extend(["--label", l]));
    second.extend(["dr-busybox", "sleep", "600"]);
    d.docker(&second);
    let ip4_2 = d.dockerd.container_ip("dr-named-2", "dr-names").unwrap();
    names.wait("api.shop.docker to answer with both", "api.shop.docker", |a| a.answers.len() == 2);
    let mut both = names.addresses("api.shop.docker", "A");
    both.sort();
    let mut want = vec![ip4.clone(), ip4_2];
    want.sort();
    assert_eq!(both, want);

    let counters = dns_counters(&d);
    assert!(counters.queries >= 25 && counters.answered >= 20, "{counters:?}");
    assert!(counters.refused >= 3 && counters.nxdomain >= 1 && counters.malformed == 0, "{counters:?}");
    assert_eq!(counters.queries, counters.answered + counters.nxdomain + counters.refused + counters.malformed);

    // docker rm: NXDOMAIN within a second.
    d.docker(&["rm", "-f", "dr-named"]);
    let removed = Instant::now();
    let vanish = names.wait("dr-named.docker to be gone", "dr-named.docker", |a| a.status == "NXDOMAIN");
    println!("MEASURED dns vanish_ms={} (from `docker rm -f` returning)", vanish.as_millis());
    assert!(vanish <= Duration::from_secs(1), "the name took {vanish:?} to go ({:?} since rm)", removed.elapsed());
    // Nobody claims a name in shop.test any more: the zone is no longer ours.
    assert_eq!(names.ask("shop.test", "A").status, "REFUSED", "its label domains went with it");
    assert_eq!(names.addresses("api.shop.docker", "A").len(), 1, "the other replica stays");

    // Disconnect: the DNS server goes with the tunnel; nothing listens on port 53 any more.
    let h = d.controller.take().unwrap();
    let exit = d.rig.topo.kill(h, SIGTERM).unwrap();
    assert!(exit.success(), "controller exit: {exit}\n{}", read(&d.controller_log));
    let t = &d.rig.topo;
    let listening = t.run(t.ns_mac(), &["ss", "-Hlnut", "sport = :53"]).unwrap();
    assert!(listening.trim().is_empty(), "still listening on :53:\n{listening}");
    assert!(dig(t, t.ns_mac(), server, "dr-named-2.docker", "A", false).is_err(), "no answer after disconnect");
    assert!(read(&d.rig.helper_log).contains("dns: stopped"), "{}", read(&d.rig.helper_log));
}
