//! `ratspost keys adopt`: after the shared keys were replaced on every node on purpose, makes
//! this node's the installation's (see [`crate::shared_keys`]).

use super::actor::{May, prove};
use crate::config::Config;

pub(super) async fn adopt(config: &Config, by: &str) -> anyhow::Result<()> {
    let store = crate::setup::open_store(config).await?;
    let result = async {
        let admin = prove(&store, by, May::Admin, "adopt the shared keys").await?;
        crate::shared_keys::adopt(config, &store, &admin.login).await
    }
    .await;
    store.close().await;
    result
}
