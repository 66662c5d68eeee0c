//! The daemon's side of the share: its API operations, and bringing it in line whenever the
//! config, the routes or the tunnel change (`Share::sync`).

use std::collections::BTreeMap;

use dockroute_api::share::ShareStatus;
use dockroute_api::{Answer, ApiError, ErrorCode, Op, RouteSource};
use ipnet::IpNet;

use super::ops::State;
use super::tunnel::Tunnel;
use super::Daemon;
use crate::share::roster::Link;
use crate::share::Context;

/// The share's view of the daemon: config, link (the tunnel's, else the config's), routes, side port.
fn context<'a>(state: &'a State, tunnel: &Option<Tunnel>, wanted: &'a BTreeMap<IpNet, RouteSource>) -> Context<'a> {
    let link = match tunnel {
        Some(t) => Link { host: t.link.host_v4, guest: t.link.guest_v4 },
        None => Link { host: state.config.addr, guest: state.config.guest_link_v4() },
    };
    Context {
        config: &state.config,
        link,
        wanted,
        route_states: &state.route_states,
        networks: &state.networks,
        side: tunnel.as_ref().map(|t| t.side.clone()),
    }
}

impl Daemon {
    pub(super) async fn handle_share(&mut self, op: Op) -> Result<Answer, ApiError> {
        let wanted = self.state.wanted();
        let cx = context(&self.state, &self.tunnel, &wanted);
        match op {
            Op::ShareAdd(add) => self.share.add(add, &cx).await.map(Answer::ShareConfig),
            Op::ShareList => Ok(Answer::Share(self.share.status(&cx).await)),
            Op::ShareRevoke { name } => self.share.revoke(&name, &cx).await.map(|()| Answer::Done),
            Op::SetNetworkExposed { network, exposed } => {
                self.share.set_exposed(&network, exposed, &cx).await.map(|()| Answer::Done)
            }
            other => Err(ApiError::new(ErrorCode::Failed, format!("not a share operation: {other:?}"))),
        }
    }

    pub(super) async fn sync_share(&mut self) {
        let wanted = self.state.wanted();
        let cx = context(&self.state, &self.tunnel, &wanted);
        self.share.sync(&cx).await;
    }

    pub(super) async fn share_status(&self) -> ShareStatus {
        let wanted = self.state.wanted();
        self.share.status(&context(&self.state, &self.tunnel, &wanted)).await
    }
}
