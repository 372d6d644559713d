//! `make run` on a fresh checkout: the all-in-one runner, with no configuration, starts the
//! sandbox and shows cases syncing in both directions within a minute.

use std::time::Duration;

#[tokio::test]
async fn the_local_runner_shows_cases_syncing_on_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(casesync_tests::workspace_binary("casesync-local").unwrap())
            .args(["run", "--for-seconds", "30"])
            .env_remove("CASESYNC_CONFIG")
            .env(
                "CASESYNC_RUNNER__DATABASE",
                dir.path().join("sandbox.sqlite"),
            )
            .env("NO_COLOR", "1")
            .output(),
    )
    .await
    .expect("the runner stops when told")
    .unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "runner failed:\n{log}");
    for expected in [
        "created the CRM counterpart",
        "created the Google counterpart",
        "sandbox: a Google engineer commented",
        "mirrored a comment",
        "stopped",
    ] {
        assert!(
            log.contains(expected),
            "`{expected}` missing from the running log:\n{log}"
        );
    }
    // The status tooling lists what the run left behind.
    let status =
        tokio::process::Command::new(casesync_tests::workspace_binary("casesync-local").unwrap())
            .arg("status")
            .env_remove("CASESYNC_CONFIG")
            .env(
                "CASESYNC_RUNNER__DATABASE",
                dir.path().join("sandbox.sqlite"),
            )
            .output()
            .await
            .unwrap();
    let listing = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success());
    assert!(listing.contains("3 open mapping(s)"), "{listing}");
    assert_eq!(listing.matches("\tactive\t").count(), 3, "{listing}");
}

#[tokio::test]
async fn the_local_runner_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let child =
        tokio::process::Command::new(casesync_tests::workspace_binary("casesync-local").unwrap())
            .arg("run")
            .env_remove("CASESYNC_CONFIG")
            .env(
                "CASESYNC_RUNNER__DATABASE",
                dir.path().join("sandbox.sqlite"),
            )
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-s", "TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the runner stops within 30 s of SIGTERM")
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit status {:?}:\n{log}", out.status);
    assert!(
        log.contains("stopping: letting in-flight work finish") && log.contains("stopped"),
        "{log}"
    );
}
