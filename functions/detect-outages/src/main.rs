//! The `detect-outages` Cloud Run service: Cloud Scheduler calls it, and each call runs the
//! `detect-outages` task body of `shared::tasks` once behind the HTTP shim. The wiring (which
//! adapters this function gets, and so which credentials) is `shared::function`'s.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let result = shared::function::serve_scheduled("detect-outages", |engine| async move {
        engine.detect_outages().await
    })
    .await;
    // One line, a Cloud Logging JSON one, and never a backtrace.
    shared::logging::exit_status(true, result)
}
