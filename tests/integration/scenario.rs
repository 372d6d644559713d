//! The full two-way scenario (`casesync_tests::scenario::run_two_way`) on the local
//! runner's embedded store and queue, with the CSAPI emulator on Google's side, for the
//! in-memory CRM and for the Jira emulator through the real adapter. RT's run is in
//! rt_scenario.rs.

use casesync_tests::crm_driver::{JiraDriver, MemoryCrmDriver, check_driver};
use casesync_tests::scenario::{
    LocalEngine, World, google_settings, run_full_scenario, run_two_way,
};
use csapi_emulator::{Emulator, EmulatorConfig};
use shared::adapters::csapi::{CsapiClient, CsapiConfig};
use shared::clock::SystemClock;
use shared::testing::MemoryCrm;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_scenario_runs_between_the_two_emulators_each_item_mirrored_once() {
    let world = World::start().await.unwrap();
    let (support, crm) = world.adapters().await.unwrap();
    let local = LocalEngine::new(Arc::new(support), Arc::new(crm), world.settings()).unwrap();
    run_full_scenario(&world, || local.settle()).await.unwrap();
    assert_eq!(local.dead_letters().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_scenario_runs_between_the_csapi_emulator_and_the_in_memory_crm() {
    let google_config = EmulatorConfig::default();
    let google = Emulator::spawn(google_config.clone()).await.unwrap();
    let support = CsapiClient::connect(CsapiConfig::emulator(google.base_url.clone()))
        .await
        .unwrap();
    let crm = Arc::new(MemoryCrm::new(Arc::new(SystemClock)));
    let local = LocalEngine::new(
        Arc::new(support),
        crm.clone(),
        google_settings(&google_config),
    )
    .unwrap();
    let driver = MemoryCrmDriver::new(crm);
    run_two_way(&google.emulator, &driver, || local.settle())
        .await
        .unwrap();
    assert_eq!(local.dead_letters().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_and_jira_drivers_act_as_they_say_through_the_adapters() {
    let memory = Arc::new(MemoryCrm::new(Arc::new(SystemClock)));
    check_driver(&MemoryCrmDriver::new(memory.clone()), memory.as_ref())
        .await
        .unwrap();
    let world = World::start().await.unwrap();
    let (_, jira) = world.adapters().await.unwrap();
    check_driver(&JiraDriver::new(world.jira.emulator.clone()), &jira)
        .await
        .unwrap();
}
