//! The serverless stack end to end, on real parts where they exist here: the official
//! Pub/Sub and Firestore emulators, the six function binaries as processes behind their HTTP
//! shim, the CSAPI and Jira sandbox emulators, topics and push subscriptions with the retry
//! and dead-letter policy of `retry_policy` (its fast profile), and this test ticking the
//! scheduled functions the way Cloud Scheduler would. The function binaries must be built
//! (`make test` builds them first).

use anyhow::{Context, bail, ensure};
use casesync_tests::emulators::{FirestoreEmulator, PubSubEmulator};
use casesync_tests::scenario::{AGENT, World, run_full_scenario};
use jira_emulator::NewIssue;
use shared::adapters::pubsub::{PubSubConfig, PubSubQueue, PubSubRest, PushSubscription};
use shared::deploy::{FUNCTIONS, Trigger};
use shared::domain::Direction;
use shared::ports::SyncQueue;
use shared::retry_policy::FAST_QUEUE;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const PROJECT: &str = "demo-project";
const DATABASE: &str = "casesync";

fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}-dead-letter")
}

fn dead_letter_subscription(topic: &str) -> String {
    format!("{topic}-dead-letter-replay")
}

fn binary(name: &str) -> anyhow::Result<PathBuf> {
    casesync_tests::workspace_binary(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

struct Function {
    port: u16,
    _child: Child,
    log: PathBuf,
}

struct Stack {
    world: World,
    _firestore: FirestoreEmulator,
    pubsub: PubSubEmulator,
    functions: BTreeMap<&'static str, Function>,
    admin: PubSubRest,
    queue: PubSubQueue,
    http: reqwest::Client,
    _logs: tempfile::TempDir,
}

impl Stack {
    async fn start() -> anyhow::Result<Stack> {
        let (firestore, pubsub, world) = tokio::try_join!(
            FirestoreEmulator::start(),
            PubSubEmulator::start(),
            World::start()
        )?;
        let config = PubSubConfig::new(PROJECT).with_emulator_host(&pubsub.host_port());
        let admin = PubSubRest::new(&config)?;
        let queue = PubSubQueue::connect(&config).await?;
        let logs = tempfile::tempdir()?;
        let mut functions = BTreeMap::new();
        for spec in FUNCTIONS.iter().filter(|f| f.trigger != Trigger::Job) {
            let port = free_port();
            let log = logs.path().join(format!("{}.log", spec.name));
            let child = Self::spawn(&world, &firestore, &pubsub, spec.name, port, &log)?;
            functions.insert(
                spec.name,
                Function {
                    port,
                    _child: child,
                    log,
                },
            );
        }
        for topic in [
            Direction::GoogleToCompany.topic(),
            Direction::CompanyToGoogle.topic(),
        ] {
            admin.create_topic(topic).await?;
            admin.create_topic(&dead_letter_topic(topic)).await?;
            admin
                .create_pull_subscription(
                    &dead_letter_subscription(topic),
                    &dead_letter_topic(topic),
                    Duration::from_secs(10),
                    FAST_QUEUE.dead_letter_subscription_retention,
                )
                .await?;
        }
        let stack = Stack {
            world,
            _firestore: firestore,
            pubsub,
            functions,
            admin,
            queue,
            http: reqwest::Client::new(),
            _logs: logs,
        };
        for (name, f) in &stack.functions {
            stack.wait_healthy(name, f.port).await?;
        }
        for spec in FUNCTIONS {
            if let Trigger::Push { topic } = spec.trigger {
                let endpoint = format!("http://127.0.0.1:{}/", stack.functions[spec.name].port);
                let sub = PushSubscription::from_policy(
                    spec.name,
                    topic,
                    &endpoint,
                    Some(&dead_letter_topic(topic)),
                    &FAST_QUEUE,
                );
                stack.admin.create_push_subscription(&sub).await?;
            }
        }
        Ok(stack)
    }

    fn spawn(
        world: &World,
        firestore: &FirestoreEmulator,
        pubsub: &PubSubEmulator,
        name: &str,
        port: u16,
        log: &std::path::Path,
    ) -> anyhow::Result<Child> {
        let mut env: HashMap<&str, String> = HashMap::from([
            ("PORT", port.to_string()),
            ("RUST_LOG", "info".into()),
            ("CASESYNC_SHIM__VERIFY_TOKENS", "false".into()),
            // Read at start-up even with verification off, as on Cloud Run.
            (
                "CASESYNC_SHIM__AUDIENCE",
                format!("http://127.0.0.1:{port}"),
            ),
            (
                "CASESYNC_SHIM__INVOKER",
                format!("{name}-invoker@{PROJECT}.iam.gserviceaccount.com"),
            ),
            ("CASESYNC_SYNC__LEASE", "30s".into()),
        ]);
        env.extend(world.function_env(
            PROJECT,
            DATABASE,
            firestore.host_port(),
            pubsub.host_port(),
        ));
        if let Some(spec) = shared::deploy::spec(name)
            && let Trigger::Push { topic } = spec.trigger
        {
            env.insert("CASESYNC_SHIM__DEAD_LETTER_TOPIC", dead_letter_topic(topic));
        }
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let child = Command::new(binary(name)?)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(child)
    }

    async fn wait_healthy(&self, name: &str, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self
                .http
                .get(format!("http://127.0.0.1:{port}/health"))
                .send()
                .await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{name} did not become healthy:\n{}", self.log_of(name));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log_of(&self, name: &str) -> String {
        self.functions
            .get(name)
            .and_then(|f| std::fs::read_to_string(&f.log).ok())
            .map(|s| {
                s.lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }

    /// What Cloud Scheduler does: an (empty) POST to the function.
    async fn tick(&self, name: &str) -> anyhow::Result<u16> {
        let port = self.functions.get(name).context("no such function")?.port;
        let r = self
            .http
            .post(format!("http://127.0.0.1:{port}/"))
            .body("")
            .send()
            .await?;
        Ok(r.status().as_u16())
    }

    fn activity(&self) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
        (
            self.world.google.emulator.counters(),
            self.world.jira.emulator.counters(),
        )
    }

    /// Ticks both polls, then waits until the push deliveries they caused have run: both
    /// systems have seen no new request for a while.
    async fn settle(&self) -> anyhow::Result<()> {
        for poll in ["poll-google", "poll-company"] {
            let status = self.tick(poll).await?;
            ensure!(
                status == 200,
                "{poll} answered {status}:\n{}",
                self.log_of(poll)
            );
        }
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last = self.activity();
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < Duration::from_millis(2500) {
            ensure!(Instant::now() < deadline, "the stack never settled");
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = self.activity();
            if now != last {
                last = now;
                quiet_since = Instant::now();
            }
        }
        Ok(())
    }

    async fn dead_letters(
        &self,
        topic: &str,
    ) -> anyhow::Result<Vec<shared::adapters::pubsub::PulledMessage>> {
        Ok(self
            .admin
            .pull(&dead_letter_subscription(topic), 50)
            .await?)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_serverless_stack_syncs_both_ways_dead_letters_and_replays() {
    let stack = match Stack::start().await {
        Ok(s) => s,
        Err(e) => panic!("could not start the stack: {e:#}"),
    };

    // The local runner's scenario, on Pub/Sub push, Firestore and the function processes.
    run_full_scenario(&stack.world, || stack.settle()).await.unwrap_or_else(|e| {
        panic!(
            "scenario failed: {e:#}\n--- sync-google-to-company ---\n{}\n--- sync-company-to-google ---\n{}",
            stack.log_of("sync-google-to-company"),
            stack.log_of("sync-company-to-google")
        )
    });

    // A sync that fails permanently is dead-lettered with its reason...
    let jira = &stack.world.jira.emulator;
    jira.inject_failures("createIssue", 400, 1);
    let case =
        stack
            .world
            .google
            .emulator
            .create_case_as_customer(csapi_emulator::NewCustomerCase {
                parent: "projects/demo-project".into(),
                display_name: "Dead letter me".into(),
                description: "first try fails".into(),
                priority: "P3".into(),
                ..csapi_emulator::NewCustomerCase::default()
            });
    let number = case["name"]
        .as_str()
        .and_then(|n| n.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    stack.settle().await.unwrap();
    let topic = Direction::GoogleToCompany.topic();
    let dead = stack.dead_letters(topic).await.unwrap();
    let ours: Vec<_> = dead
        .iter()
        .filter(|m| m.attributes.get("case_key") == Some(&number))
        .collect();
    assert_eq!(ours.len(), 1, "one dead letter for case {number}: {dead:?}");
    assert_eq!(
        ours[0]
            .attributes
            .get("casesync_error_class")
            .map(String::as_str),
        Some("permanent")
    );
    assert!(
        ours[0]
            .attributes
            .get("casesync_error")
            .is_some_and(|e| e.contains("400")),
        "{:?}",
        ours[0].attributes
    );
    assert_eq!(
        ours[0]
            .attributes
            .get("casesync_source_topic")
            .map(String::as_str),
        Some(topic)
    );
    let label = format!("gcp-case-{number}");
    let issues_for = || {
        jira.issues()
            .into_iter()
            .filter(|i| {
                i["labels"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|x| x == label.as_str()))
            })
            .count()
    };
    assert_eq!(issues_for(), 0);
    // The pull left it unacked; let its ack deadline pass so replay sees it.
    tokio::time::sleep(Duration::from_secs(11)).await;

    // ...and after the fault is gone, replay-dead-letters brings it back and it syncs once.
    let out = Command::new(binary("replay-dead-letters").unwrap())
        .env("CASESYNC_PUBSUB__PROJECT", PROJECT)
        .env("CASESYNC_PUBSUB__EMULATOR_HOST", stack.pubsub.host_port())
        .args([
            "--subscriptions",
            &dead_letter_subscription(topic),
            "--case",
            &number,
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("replayed 1 message"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    stack.settle().await.unwrap();
    stack.settle().await.unwrap();
    assert_eq!(issues_for(), 1, "synced once after replay");
    assert!(
        stack
            .dead_letters(topic)
            .await
            .unwrap()
            .iter()
            .all(|m| m.attributes.get("case_key") != Some(&number)),
        "acked after republishing"
    );

    // A malformed message is dead-lettered with a reason naming the problem, not acked silently.
    stack
        .queue
        .publish_raw(
            topic,
            b"{not json".to_vec(),
            HashMap::from([("case_key".to_string(), "garbage".to_string())]),
        )
        .await
        .unwrap();
    let mut found = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(m) = stack
            .dead_letters(topic)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.attributes.get("case_key").map(String::as_str) == Some("garbage"))
        {
            found = Some(m);
            break;
        }
    }
    let m = found.expect("the malformed message reached the dead-letter topic");
    assert!(
        m.attributes
            .get("casesync_error")
            .is_some_and(|e| e.contains("sync message is not")),
        "{:?}",
        m.attributes
    );

    // Two concurrent deliveries of one case produce no duplicate on the Firestore store.
    let issue = jira.create_issue_as(
        AGENT,
        NewIssue {
            summary: "Raced".into(),
            sync_flag: true,
            ..NewIssue::default()
        },
    );
    let id = issue["id"].as_str().unwrap().to_string();
    stack.settle().await.unwrap();
    jira.add_comment_as(
        issue["key"].as_str().unwrap(),
        AGENT,
        "only once, please",
        false,
    );
    let (a, b) = tokio::join!(
        stack.queue.publish(Direction::CompanyToGoogle, &id),
        stack.queue.publish(Direction::CompanyToGoogle, &id)
    );
    a.unwrap();
    b.unwrap();
    stack.settle().await.unwrap();
    let line = format!("casesync: jira case {id}");
    let cases: Vec<_> = stack
        .world
        .google
        .emulator
        .cases()
        .into_iter()
        .filter(|c| {
            c["description"]
                .as_str()
                .is_some_and(|d| d.ends_with(&line))
        })
        .collect();
    assert_eq!(cases.len(), 1, "one Google counterpart");
    let mirrored = cases[0]["comments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["body"].as_str().is_some_and(|b| {
                b.starts_with("[Company Comment") && b.ends_with("only once, please")
            })
        })
        .count();
    assert_eq!(mirrored, 1, "mirrored once despite concurrent deliveries");
}
