//! Recognition over the recorded answers in `fixtures/` (each file names its sources).

use super::*;

struct Recorded {
    socket: String,
    info: SystemInfo,
    version: SystemVersion,
}

fn recorded(json: &str) -> Recorded {
    let v: serde_json::Value = serde_json::from_str(json).expect("fixture is JSON");
    assert!(v["urls"].as_array().is_some_and(|u| !u.is_empty()), "every fixture names where it came from");
    Recorded {
        socket: v["socket"].as_str().unwrap().to_string(),
        info: serde_json::from_value(v["info"].clone()).unwrap(),
        version: serde_json::from_value(v["version"].clone()).unwrap(),
    }
}

fn docker_desktop() -> Recorded {
    recorded(include_str!("fixtures/docker-desktop.json"))
}
fn orbstack() -> Recorded {
    recorded(include_str!("fixtures/orbstack.json"))
}
fn colima() -> Recorded {
    recorded(include_str!("fixtures/colima.json"))
}
fn rancher_desktop() -> Recorded {
    recorded(include_str!("fixtures/rancher-desktop.json"))
}
fn podman_machine() -> Recorded {
    recorded(include_str!("fixtures/podman-machine.json"))
}

fn kind(r: &Recorded, host: HostOs) -> EngineKind {
    recognise(&r.info, &r.version, &r.socket, host)
}

/// The same answers through a socket that says nothing (a docker context, /var/run/docker.sock).
fn kind_via_plain_socket(r: &Recorded, host: HostOs) -> EngineKind {
    recognise(&r.info, &r.version, "unix:///var/run/docker.sock", host)
}

#[test]
fn each_recorded_engine_is_recognised_from_its_answers_and_socket() {
    assert_eq!(kind(&docker_desktop(), HostOs::Mac), EngineKind::DockerDesktop);
    assert_eq!(kind(&orbstack(), HostOs::Mac), EngineKind::OrbStack);
    assert_eq!(kind(&colima(), HostOs::Mac), EngineKind::Colima);
    assert_eq!(kind(&rancher_desktop(), HostOs::Mac), EngineKind::RancherDesktop);
    assert_eq!(kind(&podman_machine(), HostOs::Mac), EngineKind::PodmanMachine);
}

#[test]
fn the_answers_alone_decide_when_the_socket_path_says_nothing() {
    // OrbStack links /var/run/docker.sock to itself; contexts may point anywhere.
    for (r, want) in [
        (docker_desktop(), EngineKind::DockerDesktop),
        (orbstack(), EngineKind::OrbStack),
        (colima(), EngineKind::Colima),
        (rancher_desktop(), EngineKind::RancherDesktop),
        (podman_machine(), EngineKind::PodmanMachine),
    ] {
        assert_eq!(kind_via_plain_socket(&r, HostOs::Mac), want);
    }
}

#[test]
fn the_api_wins_over_a_misleading_socket_path() {
    // A context named after one engine but answered by another: the answer counts.
    let dd = docker_desktop();
    assert_eq!(recognise(&dd.info, &dd.version, "unix:///Users/x/.colima/default/docker.sock", HostOs::Mac), {
        EngineKind::DockerDesktop
    });
    let orb = orbstack();
    assert_eq!(recognise(&orb.info, &orb.version, "unix:///Users/x/.docker/run/docker.sock", HostOs::Mac), {
        EngineKind::OrbStack
    });
}

#[test]
fn colima_is_known_by_its_socket_when_its_answer_lacks_the_host_name() {
    let mut c = colima();
    c.info.name = Some("some-vm".into());
    assert_eq!(kind(&c, HostOs::Mac), EngineKind::Colima, "the recorded ~/.colima/default/docker.sock");
    assert_eq!(kind_via_plain_socket(&c, HostOs::Mac), EngineKind::Unknown, "nothing left that says Colima");
    // Colima's other profiles are named colima-<profile>.
    c.info.name = Some("colima-work".into());
    assert_eq!(kind_via_plain_socket(&c, HostOs::Mac), EngineKind::Colima);
}

#[test]
fn podman_is_a_machine_on_a_mac_and_by_its_socket_and_native_on_linux_otherwise() {
    let p = podman_machine();
    assert_eq!(kind(&p, HostOs::Linux), EngineKind::PodmanMachine, "the machine's forwarded socket");
    assert_eq!(recognise(&p.info, &p.version, "unix:///run/podman/podman.sock", HostOs::Linux), EngineKind::Podman);
    // Podman 5's socket on macOS lives under $TMPDIR.
    let tmp = "unix:///var/folders/x/T/podman/podman-machine-default-api.sock";
    assert_eq!(recognise(&p.info, &p.version, tmp, HostOs::Linux), EngineKind::PodmanMachine);
    // A Podman answer is never mistaken for Docker Engine, whatever else it says.
    let mut linuxish = p;
    linuxish.info.operating_system = Some("Debian GNU/Linux 12 (bookworm)".into());
    assert_eq!(kind_via_plain_socket(&linuxish, HostOs::Linux), EngineKind::Podman);
}

#[test]
fn a_plain_dockerd_is_docker_engine_on_linux_and_unknown_elsewhere() {
    // What Debian's dockerd says (the end-to-end tests meet the real one).
    let info = SystemInfo {
        name: Some("builder".into()),
        operating_system: Some("Debian GNU/Linux 12 (bookworm)".into()),
        server_version: Some("20.10.24+dfsg1".into()),
        ..Default::default()
    };
    let version = SystemVersion::default();
    assert_eq!(recognise(&info, &version, "unix:///tmp/drd1/docker.sock", HostOs::Linux), EngineKind::DockerEngine);
    assert_eq!(recognise(&info, &version, "tcp://198.18.0.1:2375", HostOs::Linux), EngineKind::Unknown);
    assert_eq!(recognise(&info, &version, "unix:///var/run/docker.sock", HostOs::Mac), EngineKind::Unknown);
}

#[test]
fn docker_desktop_is_also_known_by_its_version_platform_and_labels() {
    let mut dd = docker_desktop();
    dd.info.operating_system = None;
    assert_eq!(kind_via_plain_socket(&dd, HostOs::Mac), EngineKind::DockerDesktop, "Platform: Docker Desktop 4.33.0");
    dd.version.platform = None;
    assert_eq!(kind_via_plain_socket(&dd, HostOs::Mac), EngineKind::Unknown);
    dd.info.labels = Some(vec![
        "com.docker.desktop.address=unix:///Users/x/Library/Containers/com.docker.docker/Data/docker-cli.sock".into(),
    ]);
    assert_eq!(kind_via_plain_socket(&dd, HostOs::Mac), EngineKind::DockerDesktop);
}

#[test]
fn versions_are_podmans_own_or_the_engines() {
    let p = podman_machine();
    assert_eq!(engine_version(&p.info, &p.version).as_deref(), Some("2.1.0"));
    let dd = docker_desktop();
    assert_eq!(engine_version(&dd.info, &dd.version).as_deref(), Some("27.1.1"));
    let orb = orbstack();
    assert_eq!(engine_version(&orb.info, &orb.version), None, "nothing recorded, nothing made up");
}

#[test]
fn each_engine_reaches_the_mac_by_its_own_name() {
    let primary = |k| host_names(k).map(|n| n.primary);
    assert_eq!(primary(EngineKind::DockerDesktop), Some("host.docker.internal"));
    assert_eq!(primary(EngineKind::Colima), Some("host.lima.internal"));
    assert_eq!(primary(EngineKind::Lima), Some("host.lima.internal"));
    assert_eq!(primary(EngineKind::RancherDesktop), Some("host.lima.internal"));
    assert_eq!(primary(EngineKind::PodmanMachine), Some("host.containers.internal"));
    assert_eq!(primary(EngineKind::DockerEngine), Some("host.docker.internal"), "pinned with --host-address");
    assert_eq!(primary(EngineKind::OrbStack), None, "nothing starts on OrbStack");
    assert!(EngineKind::OrbStack.routes_containers_itself());
    assert!(!EngineKind::DockerDesktop.routes_containers_itself());
    assert_eq!(host_names(EngineKind::Colima).unwrap().fallback, "host.docker.internal");
    assert_eq!(host_names(EngineKind::DockerDesktop).unwrap().fallback, "gateway.docker.internal");
}

#[test]
fn the_recorded_engines_get_their_host_names_end_to_end() {
    let name = |r: &Recorded| host_names(kind(r, HostOs::Mac)).map(|n| n.primary);
    assert_eq!(name(&docker_desktop()), Some("host.docker.internal"));
    assert_eq!(name(&colima()), Some("host.lima.internal"));
    assert_eq!(name(&rancher_desktop()), Some("host.lima.internal"));
    assert_eq!(name(&podman_machine()), Some("host.containers.internal"));
    assert_eq!(name(&orbstack()), None);
}
