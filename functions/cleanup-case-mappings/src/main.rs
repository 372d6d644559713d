//! The `cleanup-case-mappings` Cloud Run service: Cloud Scheduler calls it, and each call runs the
//! `cleanup-case-mappings` task body of `shared::tasks` once behind the HTTP shim. The wiring (which
//! adapters this function gets, and so which credentials) is `shared::function`'s.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Its task reads the dead-letter subscriptions of its configuration, so it is built
    // from the started function (shared::function::cleanup_task).
    let result = shared::function::serve_scheduled_with(
        "cleanup-case-mappings",
        shared::function::cleanup_task,
    )
    .await;
    // One line, a Cloud Logging JSON one, and never a backtrace.
    shared::logging::exit_status(true, result)
}
