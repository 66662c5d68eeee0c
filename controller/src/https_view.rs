//! What the dashboard shows of HTTPS for container names (pure): the user's switch, whether the
//! helper serves (and where), and its local CA: id, expiry, what it may sign, where it is
//! trusted. Derived from the helper's `status` and the app's switch.

use dockroute_api::HttpsStatus;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpsView {
    /// The user's switch (the app's preference).
    pub on: bool,
    /// The helper's config allows HTTPS (`https on`, its default); without it the switch can
    /// do nothing.
    pub allowed: bool,
    /// The front serves: container names are `https://` links.
    pub serving: bool,
    /// Where, e.g. `192.168.251.1:443`.
    pub listen: Option<String>,
    /// The state in one sentence.
    pub summary: String,
    pub ca: Option<CaView>,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaView {
    /// Short fingerprint: names its trust-store entries.
    pub id: String,
    /// The certificate (PEM), for a browser import or a container's mount.
    pub path: String,
    /// Its last day, `YYYY-MM-DD` (UTC).
    pub expires: String,
    /// What it may sign, in words.
    pub constraints: String,
    /// Where it is trusted, in words; empty: nowhere yet.
    pub trusted_in: Vec<String>,
}

/// The HTTPS part of the view. `status`: the helper's report (None: its config has `https off`,
/// or it predates HTTPS); `on`: the user's switch.
pub fn https_view(status: Option<&HttpsStatus>, on: bool) -> HttpsView {
    let Some(h) = status else {
        return HttpsView {
            on,
            allowed: false,
            serving: false,
            listen: None,
            summary: "Off in the helper's config (`https off`, or a helper from before HTTPS): the switch does \
                      nothing until it serves"
                .into(),
            ca: None,
            problems: Vec::new(),
        };
    };
    let listen = h.listen.map(|a| a.to_string());
    let summary = match (&listen, on, h.problems.first()) {
        (Some(at), _, _) => format!("Serving container names over HTTPS on {at}"),
        (None, false, _) => "Off: switched off here".to_string(),
        (None, true, Some(why)) => format!("Not serving: {why}"),
        (None, true, None) if h.off_by_app => "Turning on…".to_string(),
        (None, true, None) => "Starts with the tunnel".to_string(),
    };
    HttpsView {
        on,
        allowed: true,
        serving: listen.is_some(),
        listen,
        summary,
        ca: h.ca.as_ref().map(|ca| CaView {
            id: ca.id.clone(),
            path: ca.path.clone(),
            expires: dockroute_stdx::time::utc_date(ca.not_after),
            constraints: ca.constraints.clone(),
            trusted_in: ca.trusted_in.clone(),
        }),
        problems: h.problems.clone(),
    }
}
