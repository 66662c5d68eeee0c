//! Carrying out the share's effects (`State::apply` decided them): making a teammate's key,
//! writing the share's state, and bringing the share in line whenever the config, the routes or
//! the tunnel change (`Share::sync`).

use dockroute_api::share::{ShareConfig, ShareStatus};
use dockroute_api::{ApiError, ErrorCode};

use super::Daemon;
use crate::share::book::{AddPlan, Save};
use crate::share::state::KeyPair;

impl Daemon {
    /// `share_add`: the key pair is made here (randomness), its public half saved, the config
    /// with the private half returned.
    pub(super) async fn add_teammate(&mut self, plan: AddPlan) -> Result<ShareConfig, ApiError> {
        let keys = KeyPair::generate().map_err(|e| ApiError::new(ErrorCode::Failed, e.to_string()))?;
        let save = self.state.share.keyed(&plan, keys.public_base64());
        self.save_share(save).await?;
        Ok(plan.config(&keys.private_base64(), &self.state.share.server_public))
    }

    /// Writes the share's state; only once it is written does it count (a failed write changes
    /// nothing), then the share follows.
    pub(super) async fn save_share(&mut self, save: Save) -> Result<(), ApiError> {
        self.share.save(&save)?;
        tracing::info!("{}", save.said);
        self.state.share.commit(save);
        self.sync_share().await;
        Ok(())
    }

    pub(super) async fn sync_share(&mut self) {
        let wanted = self.state.wanted();
        let side = self.tunnel.as_ref().map(|t| t.side.clone());
        self.share.sync(&self.state.share, &self.state.scene(&wanted), side).await;
    }

    pub(super) async fn share_status(&self) -> ShareStatus {
        let wanted = self.state.wanted();
        self.share.status(&self.state.share, &self.state.scene(&wanted)).await
    }
}
