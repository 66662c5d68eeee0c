//! Docker's event stream, decided without I/O: what we subscribe to, which events matter, and
//! how long to wait before subscribing again when the stream ends. (Connecting is
//! `endpoint::connect`; the controller's event loop reads the stream.)

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bollard::models::{EventMessage, EventMessageTypeEnum, SystemVersion};
use bollard::query_parameters::{EventsOptions, EventsOptionsBuilder};
use dockroute_stdx::Backoff;

use crate::guest;

/// How far back a new subscription starts: Docker replays what happened since, so nothing
/// falls between subscribing and the listing that follows (sync is idempotent; repeats are
/// harmless).
const REPLAY: Duration = Duration::from_secs(2);

/// Network and container events from a moment before `now`.
pub fn subscription(now: SystemTime) -> EventsOptions {
    let since =
        (now - REPLAY).duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs().to_string()).unwrap_or_default();
    let filters = HashMap::from([("type", vec!["network", "container"])]);
    EventsOptionsBuilder::default().since(&since).filters(&filters).build()
}

/// What a Docker event means for the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventEffect {
    /// Networks changed, or our guest stopped: list again, send routes, make the guest right.
    Sync,
    /// Another container came or went: only the dashboard's list changes.
    RefreshContainers,
    Nothing,
}

pub fn classify(ev: &EventMessage) -> EventEffect {
    if relevant(ev) {
        EventEffect::Sync
    } else if changes_containers(ev) {
        EventEffect::RefreshContainers
    } else {
        EventEffect::Nothing
    }
}

fn relevant(ev: &EventMessage) -> bool {
    let action = ev.action.as_deref().unwrap_or_default();
    match ev.typ {
        Some(EventMessageTypeEnum::NETWORK) => {
            matches!(action, "create" | "destroy" | "remove" | "connect" | "disconnect")
        }
        // Only our guest's container matters here; others' come and go freely.
        Some(EventMessageTypeEnum::CONTAINER) => {
            let ours = ev
                .actor
                .as_ref()
                .and_then(|a| a.attributes.as_ref())
                .is_some_and(|a| a.contains_key(guest::LABEL_OURS));
            ours && matches!(action, "die" | "destroy" | "stop" | "kill")
        }
        _ => false,
    }
}

/// A container other than our guest started: a sleeping guest must wake at once.
pub fn other_container_started(ev: &EventMessage) -> bool {
    ev.typ == Some(EventMessageTypeEnum::CONTAINER)
        && ev.action.as_deref() == Some("start")
        && !ev.actor.as_ref().and_then(|a| a.attributes.as_ref()).is_some_and(|a| a.contains_key(guest::LABEL_OURS))
}

/// Network events: dockerd rewrites its firewall chains, so the guest should check its rules.
pub fn is_network_change(ev: &EventMessage) -> bool {
    ev.typ == Some(EventMessageTypeEnum::NETWORK) && classify(ev) == EventEffect::Sync
}

/// Container events that change the dashboard's list (not the routes).
fn changes_containers(ev: &EventMessage) -> bool {
    ev.typ == Some(EventMessageTypeEnum::CONTAINER)
        && matches!(ev.action.as_deref().unwrap_or_default(), "start" | "die" | "destroy" | "rename")
}

/// How often the networks are listed on an engine whose events do not announce them.
pub const NETWORK_POLL: Duration = Duration::from_millis(500);

/// Whether the engine's event stream announces networks being created and removed. Podman
/// before 5 does not: its Docker-compatible stream carries network `connect`/`disconnect` only
/// (recorded from Podman 4.3.1 here: a `network create`, a container run on it, `network rm`
/// gave no network event but `connect`), so a new network would wait for its first container
/// and a removed one for the 30 s resync; there the networks are listed every `NETWORK_POLL`.
/// Docker and Podman 5 (`create`/`remove`) announce them. Only this is read from the version
/// here: which engine it is, for the view, is decided elsewhere.
pub fn announces_networks(version: &SystemVersion) -> bool {
    let podman = version.components.iter().flatten().find(|c| c.name == "Podman Engine");
    match podman {
        None => true,
        Some(c) => c.version.split('.').next().and_then(|major| major.parse::<u32>().ok()).is_some_and(|m| m >= 5),
    }
}

/// A stream that stayed up this long was fine, even without events.
const HEALTHY_UPTIME: Duration = Duration::from_secs(10);

/// After a healthy stream ends (dockerd restarting, Docker Desktop's VM waking), the waits stay
/// at most `QUICK_RETRY` for this long: the first container of a woken VM must not wait out a
/// doubled backoff before we see its start event.
const QUICK_RETRIES_FOR: Duration = Duration::from_secs(60);
const QUICK_RETRY: Duration = Duration::from_secs(1);

/// Waits between event subscriptions: 250 ms doubling to 8 s while streams fail at once, so a
/// broken dockerd is not hammered; from the start again after a healthy stream, and then for a
/// minute at most 1 s apart.
#[derive(Debug, Clone)]
pub struct Resubscribe {
    backoff: Backoff,
    /// Time waited since a healthy stream ended; None when there was none lately.
    since_healthy: Option<Duration>,
}

impl Default for Resubscribe {
    fn default() -> Resubscribe {
        Resubscribe { backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(8)), since_healthy: None }
    }
}

impl Resubscribe {
    /// The stream ended after `up_for`, having delivered events or not: the wait before the
    /// next subscription.
    pub fn stream_ended(&mut self, delivered_events: bool, up_for: Duration) -> Duration {
        if was_healthy(delivered_events, up_for) {
            self.backoff.reset();
            self.since_healthy = Some(Duration::ZERO);
        }
        let mut wait = self.backoff.next_delay();
        if let Some(waited) = self.since_healthy {
            if waited < QUICK_RETRIES_FOR {
                wait = wait.min(QUICK_RETRY);
                self.since_healthy = Some(waited + wait);
            } else {
                self.since_healthy = None;
            }
        }
        wait
    }

    /// The user's Retry cut the wait short: the next failure waits the shortest time again.
    pub fn retried(&mut self) {
        self.backoff.reset();
    }
}

/// A stream that delivered events or stayed up a while was fine; one that failed at once says
/// dockerd is not (yet) usable.
pub fn was_healthy(delivered_events: bool, up_for: Duration) -> bool {
    delivered_events || up_for > HEALTHY_UPTIME
}

#[cfg(test)]
mod tests {
    use bollard::models::EventActor;

    use super::*;

    fn event(typ: EventMessageTypeEnum, action: &str, labels: &[&str]) -> EventMessage {
        EventMessage {
            typ: Some(typ),
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(labels.iter().map(|l| (l.to_string(), "1".to_string())).collect()),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn network_changes_mean_a_sync() {
        use EventMessageTypeEnum::NETWORK;
        for action in ["create", "destroy", "remove", "connect", "disconnect"] {
            assert_eq!(classify(&event(NETWORK, action, &[])), EventEffect::Sync, "{action}");
        }
        for action in ["prune", "update", ""] {
            assert_eq!(classify(&event(NETWORK, action, &[])), EventEffect::Nothing, "{action}");
        }
        let no_action = EventMessage { typ: Some(NETWORK), ..Default::default() };
        assert_eq!(classify(&no_action), EventEffect::Nothing);
    }

    #[test]
    fn our_guest_stopping_means_a_sync_other_containers_only_a_new_list() {
        use EventMessageTypeEnum::CONTAINER;
        let ours = [guest::LABEL_OURS, "com.example"];
        for action in ["die", "destroy", "stop", "kill"] {
            assert_eq!(classify(&event(CONTAINER, action, &ours)), EventEffect::Sync, "ours {action}");
        }
        assert_eq!(classify(&event(CONTAINER, "start", &ours)), EventEffect::RefreshContainers);
        for action in ["start", "die", "destroy", "rename"] {
            assert_eq!(
                classify(&event(CONTAINER, action, &["com.example"])),
                EventEffect::RefreshContainers,
                "{action}"
            );
        }
        for action in ["stop", "kill", "create", "exec_start: sh", "health_status: healthy"] {
            assert_eq!(classify(&event(CONTAINER, action, &[])), EventEffect::Nothing, "{action}");
        }
        let no_actor = EventMessage { typ: Some(CONTAINER), action: Some("kill".into()), ..Default::default() };
        assert_eq!(classify(&no_actor), EventEffect::Nothing, "a container without labels is not ours");
    }

    #[test]
    fn after_a_healthy_stream_retries_stay_quick_for_a_minute() {
        let ms = Duration::from_millis;
        let mut r = Resubscribe::default();
        let mut waits = vec![r.stream_ended(true, Duration::from_secs(600))];
        let mut waited = waits[0];
        while waited < Duration::from_secs(70) {
            let w = r.stream_ended(false, ms(1));
            waited += w;
            waits.push(w);
        }
        assert_eq!(waits[..5], [ms(250), ms(500), ms(1000), ms(1000), ms(1000)]);
        let quick = waits.iter().take_while(|w| **w <= ms(1000)).count();
        assert!((60..=62).contains(&quick), "about a minute of quick retries: {waits:?}");
        assert_eq!(*waits.last().unwrap(), ms(8000), "then the full backoff again: {waits:?}");
    }

    #[test]
    fn another_containers_start_wakes_the_guest_ours_does_not() {
        use EventMessageTypeEnum::{CONTAINER, NETWORK};
        assert!(other_container_started(&event(CONTAINER, "start", &["com.example"])));
        assert!(other_container_started(&event(CONTAINER, "start", &[])));
        assert!(!other_container_started(&event(CONTAINER, "start", &[guest::LABEL_OURS])));
        for action in ["create", "die", "restart", "exec_start: sh"] {
            assert!(!other_container_started(&event(CONTAINER, action, &[])), "{action}");
        }
        assert!(!other_container_started(&event(NETWORK, "start", &[])));
        assert!(is_network_change(&event(NETWORK, "connect", &[])));
        assert!(!is_network_change(&event(NETWORK, "prune", &[])));
        assert!(!is_network_change(&event(CONTAINER, "die", &[guest::LABEL_OURS])));
    }

    /// `GET /v1.41/version` answered by `podman system service` (Debian bookworm's 4.3.1 and
    /// sid's 5.8.6) in the end-to-end harness.
    fn recorded(json: &str) -> SystemVersion {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn podman_before_5_is_polled_for_networks_docker_and_podman_5_are_not() {
        assert!(!announces_networks(&recorded(include_str!("recorded/podman-4.3.1-version.json"))));
        assert!(announces_networks(&recorded(include_str!("recorded/podman-5.8.6-version.json"))));
        let one = |name: &str, version: &str| SystemVersion {
            components: Some(vec![bollard::models::SystemVersionComponents {
                name: name.into(),
                version: version.into(),
                details: None,
            }]),
            ..Default::default()
        };
        assert!(announces_networks(&one("Engine", "28.5.2")));
        assert!(announces_networks(&SystemVersion::default()), "no components: Docker's older answers");
        let odd = one("Podman Engine", "dev");
        assert!(!announces_networks(&odd), "a Podman of unknown version is polled: polling is never wrong");
    }

    #[test]
    fn other_kinds_of_event_change_nothing() {
        for typ in [EventMessageTypeEnum::IMAGE, EventMessageTypeEnum::VOLUME, EventMessageTypeEnum::DAEMON] {
            assert_eq!(classify(&event(typ, "destroy", &[guest::LABEL_OURS])), EventEffect::Nothing, "{typ:?}");
        }
        assert_eq!(classify(&EventMessage::default()), EventEffect::Nothing);
    }

    #[test]
    fn the_subscription_replays_two_seconds_of_networks_and_containers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let o = subscription(now);
        assert_eq!(o.since.as_deref(), Some("1699999998"));
        assert_eq!(o.until, None);
        let types = o.filters.unwrap().remove("type").unwrap();
        assert_eq!(types, ["network", "container"]);
    }

    #[test]
    fn failing_streams_back_off_and_healthy_ones_start_over() {
        let ms = Duration::from_millis;
        let mut r = Resubscribe::default();
        let fast: Vec<u128> = (0..8).map(|_| r.stream_ended(false, ms(5)).as_millis()).collect();
        assert_eq!(fast, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(r.stream_ended(true, ms(5)), ms(250), "it delivered events");
        assert_eq!(r.stream_ended(false, ms(5)), ms(500));
        assert_eq!(r.stream_ended(false, Duration::from_secs(11)), ms(250), "it stayed up a while");
        assert_eq!(r.stream_ended(false, Duration::from_secs(10)), ms(500), "10 s is not a while yet");
        r.stream_ended(false, ms(5));
        r.retried();
        assert_eq!(r.stream_ended(false, ms(5)), ms(250), "Retry starts the waits over");
    }
}
