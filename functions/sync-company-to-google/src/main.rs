//! The `sync-company-to-google` Cloud Run service: a Pub/Sub push subscription delivers one message per
//! case; it runs the sync task body of `shared::tasks` for it. A message that fails
//! permanently is dead-lettered by the shim. This file only wires configuration and adapters.

use shared::domain::Direction;
use shared::function::{Function, install_crypto_provider, run_push};

const NAME: &str = "sync-company-to-google";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    install_crypto_provider();
    shared::logging::init(true);
    let function = Function::load(NAME, std::env::vars().collect())?;
    let engine = function.engine().await?;
    let dead_letters = function.dead_letter_sink().await?;
    let shim = function.shim_config()?;
    shared::shim::run(shim, dead_letters, move |invocation| {
        let engine = engine.clone();
        async move { run_push(&engine, Direction::CompanyToGoogle, invocation).await }
    })
    .await?;
    Ok(())
}
