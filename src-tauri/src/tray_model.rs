//! The tray menu as data, derived from the `View`: `shell` turns it into Tauri menu items, and
//! rebuilds them only when this model changes. Menu ids name what a click does.

use dockroute_controller::view::{Phase, ProblemKind, RouteShown, View};

pub const CONNECT: &str = "connect";
pub const AUTOSTART: &str = "autostart";
pub const DASHBOARD: &str = "dashboard";
pub const QUIT: &str = "quit";
/// Prefix of a network's checkbox id; the rest is the network's name.
pub const NETWORK_PREFIX: &str = "net:";
/// Prefix of an engine's checkbox id; the rest is its endpoint.
pub const ENGINE_PREFIX: &str = "engine:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A line of text that cannot be clicked.
    Label(String),
    Item {
        id: String,
        text: String,
        enabled: bool,
    },
    Check {
        id: String,
        text: String,
        checked: bool,
        enabled: bool,
    },
    Separator,
}

/// What a click on a menu id asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Click {
    Connect(bool),
    Network(String),
    /// Follow the engine at this endpoint.
    Engine(String),
    Autostart,
    Dashboard,
    Quit,
}

pub fn entries(view: &View) -> Vec<Entry> {
    let mut out = vec![Entry::Label(status_line(view))];
    if let Some(p) = &view.problem {
        out.push(Entry::Label(p.title.clone()));
    }
    let connect = if view.want_connected { "Disconnect" } else { "Connect" };
    out.push(Entry::Item { id: CONNECT.into(), text: connect.into(), enabled: true });
    out.push(Entry::Separator);
    out.push(Entry::Label("Networks".into()));
    if view.networks.is_empty() {
        let why = if view.want_connected { "No bridge networks" } else { "Connect to see networks" };
        out.push(Entry::Label(why.into()));
    }
    for n in &view.networks {
        let subnets: Vec<String> = n.subnets.iter().map(ToString::to_string).collect();
        let count = match n.containers {
            1 => "1 container".to_string(),
            c => format!("{c} containers"),
        };
        let mut text = format!("{} — {} · {count}", n.name, subnets.join(", "));
        if n.route == RouteShown::Conflict {
            text.push_str(" · conflict");
        }
        if n.route == RouteShown::Skipped {
            text.push_str(" · skipped: public subnet");
        }
        out.push(Entry::Check {
            id: format!("{NETWORK_PREFIX}{}", n.name),
            text,
            checked: n.enabled,
            enabled: n.checkable,
        });
    }
    engine_entries(view, &mut out);
    out.push(Entry::Separator);
    out.push(Entry::Check {
        id: AUTOSTART.into(),
        text: "Launch at Login".into(),
        checked: view.autostart,
        enabled: true,
    });
    out.push(Entry::Item { id: DASHBOARD.into(), text: "Open Dashboard…".into(), enabled: true });
    out.push(Entry::Separator);
    out.push(Entry::Item { id: QUIT.into(), text: "Quit Dockroute".into(), enabled: true });
    out
}

/// The engines, when there is more than one to pick from: a check each, the followed one
/// checked; OrbStack says why Dockroute does nothing there.
fn engine_entries(view: &View, out: &mut Vec<Entry>) {
    let label = |e: &dockroute_controller::view::EngineView| match &e.version {
        Some(v) => format!("{} {v}", e.name),
        None => e.name.clone(),
    };
    match view.engines.as_slice() {
        [] => return,
        [only] => return out.push(Entry::Label(format!("Engine: {}", label(only)))),
        _ => {}
    }
    out.push(Entry::Separator);
    out.push(Entry::Label("Engine".into()));
    for e in &view.engines {
        let mut text = label(e);
        if e.kind.is_some_and(|k| k.routes_containers_itself()) {
            text.push_str(" · not needed");
        } else if !e.reachable {
            text.push_str(" · not answering");
        }
        out.push(Entry::Check { id: format!("{ENGINE_PREFIX}{}", e.id), text, checked: e.followed, enabled: true });
    }
}

/// The first line of the menu, also the tray tooltip.
pub fn status_line(view: &View) -> String {
    match view.phase() {
        Phase::Disconnected => "Dockroute: disconnected".into(),
        Phase::Connecting => "Dockroute: connecting…".into(),
        Phase::Error if view.problem.as_ref().is_some_and(|p| p.kind == ProblemKind::EngineNotNeeded) => {
            "Dockroute: not needed for OrbStack".into()
        }
        Phase::Error => "Dockroute: not working".into(),
        Phase::Idle => "Dockroute: idle · no containers".into(),
        Phase::Connected => {
            let routed = view.networks.iter().filter(|n| n.route == RouteShown::Installed).count();
            match routed {
                1 => "Dockroute: connected · 1 network".into(),
                n => format!("Dockroute: connected · {n} networks"),
            }
        }
    }
}

/// What a click on `id` means, given the view the menu was built from.
pub fn click(id: &str, view: &View) -> Option<Click> {
    match id {
        CONNECT => Some(Click::Connect(!view.want_connected)),
        AUTOSTART => Some(Click::Autostart),
        DASHBOARD => Some(Click::Dashboard),
        QUIT => Some(Click::Quit),
        _ => (id.strip_prefix(NETWORK_PREFIX).map(|name| Click::Network(name.to_string())))
            .or_else(|| id.strip_prefix(ENGINE_PREFIX).map(|e| Click::Engine(e.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use dockroute_controller::engines::EngineKind;
    use dockroute_controller::view::{EngineView, NetworkView, TunnelView};

    use super::*;

    fn network(name: &str, route: RouteShown, enabled: bool, containers: usize) -> NetworkView {
        NetworkView {
            id: format!("id-{name}"),
            name: name.into(),
            subnets: vec!["198.19.1.0/24".parse().unwrap()],
            containers,
            enabled,
            route,
            conflict: (route == RouteShown::Conflict).then(|| "conflicts with en0".into()),
            skipped: None,
            checkable: route != RouteShown::Conflict,
            exposed: false,
            exposed_by_config: false,
        }
    }

    fn live_tunnel() -> TunnelView {
        TunnelView {
            interface: Some("dockroute0".into()),
            listen: None,
            host_v4: None,
            guest_v4: None,
            host_v6: None,
            guest_v6: None,
            mtu: Some(1400),
            session: Some(dockroute_api::SessionInfo {
                fingerprint: "00".repeat(4),
                guest: "198.18.0.2:1".parse().unwrap(),
                alive: true,
                handshake_age_ms: 5,
                last_seen_ms: 1,
                transport: dockroute_api::Transport::Udp,
            }),
            error: None,
        }
    }

    #[test]
    fn the_menu_follows_the_view() {
        let mut view = View { want_connected: true, tunnel: Some(live_tunnel()), ..Default::default() };
        assert_eq!(view.phase(), Phase::Connected);
        view.networks = vec![
            network("app", RouteShown::Installed, true, 1),
            network("vpnclash", RouteShown::Conflict, false, 3),
            network("off", RouteShown::Disabled, false, 0),
        ];
        let menu = entries(&view);
        assert_eq!(menu[0], Entry::Label("Dockroute: connected · 1 network".into()));
        assert!(menu.contains(&Entry::Item { id: CONNECT.into(), text: "Disconnect".into(), enabled: true }));
        let checks: Vec<(&str, bool, bool)> = menu
            .iter()
            .filter_map(|e| match e {
                Entry::Check { id, checked, enabled, .. } => Some((id.as_str(), *checked, *enabled)),
                _ => None,
            })
            .collect();
        assert_eq!(
            checks,
            [
                ("net:app", true, true),
                ("net:vpnclash", false, false),
                ("net:off", false, true),
                (AUTOSTART, false, true)
            ]
        );
        let texts: Vec<String> = menu
            .iter()
            .filter_map(|e| match e {
                Entry::Check { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(texts[0], "app — 198.19.1.0/24 · 1 container");
        assert_eq!(texts[1], "vpnclash — 198.19.1.0/24 · 3 containers · conflict");
    }

    #[test]
    fn a_network_on_a_public_subnet_says_it_is_skipped_and_cannot_be_checked() {
        let mut public = network("compose", RouteShown::Skipped, false, 1);
        public.checkable = false;
        let view = View { want_connected: true, networks: vec![public], ..Default::default() };
        let check = entries(&view).into_iter().find(|e| matches!(e, Entry::Check { id, .. } if id == "net:compose"));
        let Some(Entry::Check { text, checked, enabled, .. }) = check else { panic!("no entry for the network") };
        assert_eq!(text, "compose — 198.19.1.0/24 · 1 container · skipped: public subnet");
        assert!(!checked && !enabled);
    }

    #[test]
    fn a_problem_and_an_empty_list_are_said() {
        let mut view = View { want_connected: false, ..Default::default() };
        let menu = entries(&view);
        assert!(menu.contains(&Entry::Label("Connect to see networks".into())));
        assert!(menu.contains(&Entry::Item { id: CONNECT.into(), text: "Connect".into(), enabled: true }));
        view.want_connected = true;
        view.problem = Some(dockroute_controller::view::docker_problem("unix:///x", &"refused"));
        let menu = entries(&view);
        assert_eq!(menu[0], Entry::Label("Dockroute: not working".into()));
        assert_eq!(menu[1], Entry::Label("Docker is not running".into()));
    }

    #[test]
    fn an_idle_guest_is_said_in_the_first_line() {
        let view = View { want_connected: true, idle: true, ..Default::default() };
        assert_eq!(entries(&view)[0], Entry::Label("Dockroute: idle · no containers".into()));
        assert!(entries(&view).contains(&Entry::Item { id: CONNECT.into(), text: "Disconnect".into(), enabled: true }));
    }

    fn engine(id: &str, kind: EngineKind, followed: bool) -> EngineView {
        EngineView {
            id: id.into(),
            name: kind.display_name().into(),
            kind: Some(kind),
            source: "context".into(),
            version: Some("28.5.1".into()),
            reachable: true,
            followed,
            note: None,
        }
    }

    #[test]
    fn several_engines_are_offered_and_orbstack_says_it_is_not_needed() {
        let mut view = View { want_connected: true, ..Default::default() };
        view.engines = vec![engine("unix:///a.sock", EngineKind::DockerDesktop, true)];
        assert!(!entries(&view).contains(&Entry::Label("Engine".into())), "one engine: nothing to pick");
        assert!(entries(&view).contains(&Entry::Label("Engine: Docker Desktop 28.5.1".into())), "but it is named");
        view.engines.push(engine("unix:///orb.sock", EngineKind::OrbStack, false));
        let mut dead = engine("unix:///colima.sock", EngineKind::Colima, false);
        dead.reachable = false;
        view.engines.push(dead);
        let menu = entries(&view);
        let engines: Vec<(&str, &str, bool)> = menu
            .iter()
            .filter_map(|e| match e {
                Entry::Check { id, text, checked, .. } if id.starts_with(ENGINE_PREFIX) => {
                    Some((id.as_str(), text.as_str(), *checked))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            engines,
            [
                ("engine:unix:///a.sock", "Docker Desktop 28.5.1", true),
                ("engine:unix:///orb.sock", "OrbStack 28.5.1 · not needed", false),
                ("engine:unix:///colima.sock", "Colima 28.5.1 · not answering", false),
            ]
        );
        assert_eq!(click("engine:unix:///orb.sock", &view), Some(Click::Engine("unix:///orb.sock".into())));
        view.problem = Some(dockroute_controller::view::engine_not_needed_problem(&["Colima".into()]));
        assert_eq!(status_line(&view), "Dockroute: not needed for OrbStack");
    }

    #[test]
    fn clicks_mean_what_the_menu_said() {
        let view = View { want_connected: true, ..Default::default() };
        assert_eq!(click(CONNECT, &view), Some(Click::Connect(false)));
        assert_eq!(click("net:my net", &view), Some(Click::Network("my net".into())));
        assert_eq!(click(QUIT, &view), Some(Click::Quit));
        assert_eq!(click("something-else", &view), None);
    }
}
