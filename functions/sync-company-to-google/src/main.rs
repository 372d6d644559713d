//! The `sync-company-to-google` Cloud Run service: a Pub/Sub push subscription delivers one message per
//! case, and each delivery runs the sync task body of `shared::tasks` behind the HTTP shim,
//! which dead-letters a message that fails permanently. The wiring is `shared::function`'s.

use shared::domain::Direction;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let result = shared::function::serve_push("sync-company-to-google", |engine, key| async move {
        engine.sync(Direction::CompanyToGoogle, &key).await
    })
    .await;
    // One line, a Cloud Logging JSON one, and never a backtrace.
    shared::logging::exit_status(true, result)
}
