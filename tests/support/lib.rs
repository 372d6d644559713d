//! Helpers shared by the integration tests.

pub mod crm_driver;
pub mod emulators;
pub mod rt;
pub mod scenario;

/// A binary of the workspace, as cargo built it beside the running test's `deps/` directory.
/// `make test` builds every binary before the tests run.
pub fn workspace_binary(name: &str) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .context("test binary location")?;
    let path = dir.join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    Ok(path)
}
