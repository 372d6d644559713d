//! The full two-way scenario (`casesync_tests::scenario::run_two_way`) between the Cloud
//! Support API emulator and a real Request Tracker 5 (its own instance from
//! `scripts/rt.sh`), through the real adapters, on the local runner's embedded store and
//! queue. The RT side is acted on and observed through `RtDriver`: the agent's own REST2
//! client and a second adapter's reads, not an emulator's state.

use casesync_tests::crm_driver::{RtDriver, check_driver};
use casesync_tests::rt::RtInstance;
use casesync_tests::scenario::{LocalEngine, google_settings, run_two_way};
use csapi_emulator::{Emulator, EmulatorConfig};
use shared::adapters::csapi::{CsapiClient, CsapiConfig};
use shared::adapters::rt::RtCrm;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rt_full_scenario_runs_between_the_csapi_emulator_and_a_real_rt() {
    // Its own RT: the contract checks' tickets on the shared one would be picked up too.
    let rt = tokio::task::spawn_blocking(RtInstance::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("starting RT: {e:#}"));
    let google_config = EmulatorConfig::default();
    let google = Emulator::spawn(google_config.clone()).await.unwrap();
    let support = CsapiClient::connect(CsapiConfig::emulator(google.base_url.clone()))
        .await
        .unwrap();
    let crm = RtCrm::connect(rt.config()).await.unwrap();
    let local = LocalEngine::new(
        Arc::new(support),
        Arc::new(crm),
        google_settings(&google_config),
    )
    .unwrap();
    let driver = RtDriver::new(&rt).await.unwrap();
    run_two_way(&google.emulator, &driver, || local.settle())
        .await
        .unwrap();
    assert_eq!(local.dead_letters().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rt_driver_acts_as_it_says_through_the_adapter() {
    // Its own RT too: the check's ticket would show in the contract checks' searches.
    let rt = tokio::task::spawn_blocking(RtInstance::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("starting RT: {e:#}"));
    let driver = RtDriver::new(&rt).await.unwrap();
    let port = RtCrm::connect(rt.config()).await.unwrap();
    check_driver(&driver, &port).await.unwrap();
}
