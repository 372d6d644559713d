//! The `poll-company` Cloud Run service: Cloud Scheduler calls it; it runs the `poll-company` task body
//! of `shared::tasks` once per call. This file only wires configuration and adapters.

use shared::function::{Function, install_crypto_provider, run_scheduled};

const NAME: &str = "poll-company";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    install_crypto_provider();
    shared::logging::init(true);
    let function = Function::load(NAME, std::env::vars().collect())?;
    let engine = function.engine().await?;
    let shim = function.shim_config()?;
    shared::shim::run(shim, None, move |_scheduled| {
        let engine = engine.clone();
        async move { run_scheduled(&engine, NAME).await }
    })
    .await?;
    Ok(())
}
