//! When the controller sends the helper and the guest something again (pure): it remembers what
//! each has from us and compares it with what they should have. The controller only asks and
//! carries the answer out.

use dockroute_api::share::DockerNetwork;
use dockroute_api::TransportMode;
use ipnet::IpNet;

use crate::guest::Ensured;
use crate::names::NameSet;

/// What the helper and the guest have from us; None for what they may have lost.
#[derive(Debug, Default)]
pub struct SyncPolicy {
    routes: Option<Vec<IpNet>>,
    names: Option<NameSet>,
    /// The networks (ids, gateways, containers) the helper's share has from us.
    networks: Option<Vec<DockerNetwork>>,
    rules: Option<String>,
    /// Docker may have rebuilt its firewall chains (network change, new event stream): the
    /// running guest is told to check its rules.
    poke: bool,
}

/// What the running guest needs after `guest::ensure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestStep {
    Nothing,
    /// Its rules file is not the current one.
    UpdateRules,
    /// Its rules are current, but Docker may have rebuilt the chains they live beside.
    Poke,
}

impl SyncPolicy {
    /// A new helper connection: it may have restarted and lost what we sent.
    pub fn helper_reconnected(&mut self) {
        self.routes = None;
        self.names = None;
        self.networks = None;
    }

    /// The guest was removed (to be made again): it has no rules from us.
    pub fn guest_removed(&mut self) {
        self.rules = None;
    }

    /// A new Docker event stream (dockerd may have restarted) or a network changed.
    pub fn docker_may_have_rebuilt_chains(&mut self) {
        self.poke = true;
    }

    pub fn routes_needed(&self, desired: &[IpNet]) -> bool {
        self.routes.as_deref() != Some(desired)
    }

    pub fn routes_sent(&mut self, routes: Vec<IpNet>) {
        self.routes = Some(routes);
    }

    pub fn names_needed(&self, names: &NameSet) -> bool {
        self.names.as_ref().is_none_or(|s| (&s.names, &s.domains) != (&names.names, &names.domains))
    }

    pub fn names_sent(&mut self, names: NameSet) {
        self.names = Some(names);
    }

    pub fn networks_needed(&self, networks: &[DockerNetwork]) -> bool {
        self.networks.as_deref() != Some(networks)
    }

    pub fn networks_sent(&mut self, networks: Vec<DockerNetwork>) {
        self.networks = Some(networks);
    }

    /// After a helper event: a `route` line added or removed in its config changes which public
    /// networks are asked for, so a sync is due when the routes sent are no longer the desired.
    /// Before anything was sent, the next sync sends them anyway.
    pub fn sync_after_helper_event(&self, desired_routes: &[IpNet]) -> bool {
        self.routes.as_deref().is_some_and(|sent| sent != desired_routes)
    }

    /// The helper was reconfigured to another transport: the guest is made again with it.
    pub fn sync_for_transport(guest_has: TransportMode, helper_has: TransportMode) -> bool {
        guest_has != helper_has
    }

    /// The helper's config changed its `iptables` pairs, or what is exposed changed: the guest
    /// gets its rules now. A sleeping guest gets them when it wakes (asking Docker every second
    /// meanwhile is what sleeping is meant to spare); before a guest had any, the next sync
    /// gives them anyway.
    pub fn sync_for_rules(&self, guest_idle: bool, desired_rules: &str) -> bool {
        !guest_idle && self.rules.as_deref().is_some_and(|sent| sent != desired_rules)
    }

    /// What the guest needs after `ensure` made sure it runs: a created guest has the rules; a
    /// started one has those it had when it stopped.
    pub fn guest_step(&self, ensured: &Ensured, rules: &str) -> GuestStep {
        if !matches!(ensured, Ensured::Created { .. }) && self.rules.as_deref() != Some(rules) {
            GuestStep::UpdateRules
        } else if *ensured == Ensured::AlreadyRunning && self.poke {
            GuestStep::Poke
        } else {
            GuestStep::Nothing
        }
    }

    /// The guest step was carried out: the guest has these rules and checked them.
    pub fn guest_has(&mut self, rules: String) {
        self.poke = false;
        self.rules = Some(rules);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// The step, carried out.
    fn step(p: &mut SyncPolicy, ensured: &Ensured, rules: &str) -> GuestStep {
        let step = p.guest_step(ensured, rules);
        p.guest_has(rules.to_string());
        step
    }

    #[test]
    fn a_failed_guest_step_is_tried_again() {
        let mut p = SyncPolicy::default();
        step(&mut p, &Ensured::AlreadyRunning, "r1");
        assert_eq!(p.guest_step(&Ensured::AlreadyRunning, "r2"), GuestStep::UpdateRules);
        // Updating failed: nothing is recorded, the next sync tries again.
        assert_eq!(p.guest_step(&Ensured::AlreadyRunning, "r2"), GuestStep::UpdateRules);
        assert!(p.sync_for_rules(false, "r2"));
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn routes_are_sent_when_they_differ_and_again_after_the_helper_reconnected() {
        let mut p = SyncPolicy::default();
        let want = nets(&["198.19.1.0/24"]);
        assert!(p.routes_needed(&want), "nothing sent yet");
        p.routes_sent(want.clone());
        assert!(!p.routes_needed(&want));
        assert!(p.routes_needed(&nets(&["198.19.1.0/24", "198.19.2.0/24"])), "a new network");
        p.helper_reconnected();
        assert!(p.routes_needed(&want), "a restarted helper may have lost them");
    }

    #[test]
    fn a_helper_event_syncs_only_when_the_routes_sent_are_no_longer_wanted() {
        let mut p = SyncPolicy::default();
        let want = nets(&["198.19.1.0/24"]);
        assert!(!p.sync_after_helper_event(&want), "nothing sent yet: the next sync sends them");
        p.routes_sent(want.clone());
        assert!(!p.sync_after_helper_event(&want));
        // A config `route` line now covers a public network: it is asked for.
        assert!(p.sync_after_helper_event(&nets(&["198.19.1.0/24", "8.8.0.0/16"])));
    }

    #[test]
    fn a_transport_change_at_the_helper_remakes_the_guest() {
        assert!(SyncPolicy::sync_for_transport(TransportMode::Udp, TransportMode::Tcp));
        assert!(!SyncPolicy::sync_for_transport(TransportMode::Tcp, TransportMode::Tcp));
    }

    #[test]
    fn changed_rules_reach_an_awake_guest_at_once_and_a_sleeping_one_when_it_wakes() {
        let mut p = SyncPolicy::default();
        assert!(!p.sync_for_rules(false, "pair a b\n"), "no guest has rules yet: the next sync gives them");
        assert_eq!(step(&mut p, &Ensured::Created { replaced: 0 }, "pair a b\n"), GuestStep::Nothing);
        assert!(!p.sync_for_rules(false, "pair a b\n"));
        assert!(p.sync_for_rules(false, "pair a c\n"), "the helper's iptables pairs changed");
        assert!(!p.sync_for_rules(true, "pair a c\n"), "a sleeping guest is left alone");
        p.guest_removed();
        assert!(!p.sync_for_rules(false, "pair a c\n"), "a removed guest gets them when made again");
    }

    #[test]
    fn a_created_guest_has_its_rules_a_started_one_gets_the_new_ones() {
        let mut p = SyncPolicy::default();
        assert_eq!(step(&mut p, &Ensured::Created { replaced: 1 }, "r1"), GuestStep::Nothing);
        assert_eq!(step(&mut p, &Ensured::Started, "r1"), GuestStep::Nothing, "it stopped with these");
        assert_eq!(step(&mut p, &Ensured::Started, "r2"), GuestStep::UpdateRules);
        assert_eq!(step(&mut p, &Ensured::AlreadyRunning, "r3"), GuestStep::UpdateRules);
        assert_eq!(step(&mut p, &Ensured::AlreadyRunning, "r3"), GuestStep::Nothing);
    }

    #[test]
    fn a_running_guest_is_poked_once_after_docker_may_have_rebuilt_its_chains() {
        let mut p = SyncPolicy::default();
        step(&mut p, &Ensured::AlreadyRunning, "r");
        p.docker_may_have_rebuilt_chains();
        assert_eq!(step(&mut p, &Ensured::AlreadyRunning, "r"), GuestStep::Poke);
        assert_eq!(step(&mut p, &Ensured::AlreadyRunning, "r"), GuestStep::Nothing, "once");
        p.docker_may_have_rebuilt_chains();
        assert_eq!(step(&mut p, &Ensured::AlreadyRunning, "r2"), GuestStep::UpdateRules, "new rules make it check");
        assert_eq!(step(&mut p, &Ensured::AlreadyRunning, "r2"), GuestStep::Nothing, "the poke was used up");
        p.docker_may_have_rebuilt_chains();
        assert_eq!(step(&mut p, &Ensured::Started, "r2"), GuestStep::Nothing, "a started guest checks anyway");
    }

    #[test]
    fn names_are_sent_when_the_names_or_domains_differ() {
        let mut p = SyncPolicy::default();
        let mut set = NameSet::default();
        assert!(p.names_needed(&set));
        p.names_sent(set.clone());
        assert!(!p.names_needed(&set));
        set.names = BTreeMap::from([("web".to_string(), vec!["198.19.1.2".parse().unwrap()])]);
        assert!(p.names_needed(&set));
        p.names_sent(set.clone());
        p.helper_reconnected();
        assert!(p.names_needed(&set));
    }

    #[test]
    fn networks_are_sent_when_they_differ() {
        let mut p = SyncPolicy::default();
        assert!(p.networks_needed(&[]));
        p.networks_sent(Vec::new());
        assert!(!p.networks_needed(&[]));
        p.helper_reconnected();
        assert!(p.networks_needed(&[]));
    }
}
