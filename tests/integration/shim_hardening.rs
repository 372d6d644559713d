//! Bad input against a real function process (issue 12): `sync-google-to-company` built
//! with `panic = "abort"` (the `abort` profile of the root Cargo.toml, as release is: under
//! `unwind`, tokio would catch a request's panic and hide it), with token verification on
//! against a key server of this test, wired to the official Firestore and Pub/Sub
//! emulators and the sandbox CSAPI and Jira emulators as in e2e.rs.
//!
//! The first test is the one google-cloud-auth's verifier failed: a signed token without
//! `email` killed the process, so the valid token after it was never served. The second
//! sends a table of bad tokens and bodies, each row with its expected status and, for a
//! dead-lettered one, the reason found on the dead-letter topic itself.

use anyhow::{Context, bail, ensure};
use base64::Engine as _;
use casesync_tests::emulators::{FirestoreEmulator, PubSubEmulator};
use casesync_tests::scenario::World;
use serde_json::{Map, Value, json};
use shared::adapters::pubsub::{ERROR_ATTRIBUTE, PubSubConfig, PubSubRest};
use shared::domain::Direction;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const FUNCTION: &str = "sync-google-to-company";
const PROJECT: &str = "demo-project";
const INVOKER: &str = "sync-google-to-company-invoker@demo-project.iam.gserviceaccount.com";
const KID: &str = "casesync-test-key";
const KEY: &[u8] = include_bytes!("../../shared/src/shim/testdata/test-signing-key.pem");
const FOREIGN_KEY: &[u8] = include_bytes!("../../shared/src/shim/testdata/foreign-signing-key.pem");
const JWKS: &str = include_str!("../../shared/src/shim/testdata/test-jwks.json");

/// The two tests start their own emulators (two JVMs each); one at a time on 2 cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Builds the function with the `abort` profile (once per test run) and returns its path.
async fn abort_binary() -> anyhow::Result<PathBuf> {
    static BUILT: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_try_init(|| async {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
            let out = Command::new(cargo)
                .args(["build", "--profile", "abort", "-p", FUNCTION])
                .args([
                    "--message-format",
                    "json-render-diagnostics",
                    "--manifest-path",
                ])
                .arg(&manifest)
                .stderr(std::process::Stdio::inherit())
                .output()
                .await
                .context("running cargo build --profile abort")?;
            ensure!(
                out.status.success(),
                "cargo build --profile abort -p {FUNCTION} failed"
            );
            // The artifact message names the executable, wherever the target dir is.
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == FUNCTION)
                .find_map(|m| m["executable"].as_str().map(PathBuf::from))
                .context("cargo named no executable for the function")
        })
        .await
        .cloned()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The key server the function is pointed at; counts its requests.
struct KeyServer {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl KeyServer {
    async fn start() -> anyhow::Result<KeyServer> {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().route(
            "/certs",
            axum::routing::get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async {
                    (
                        [
                            ("content-type", "application/json"),
                            ("cache-control", "public, max-age=3600"),
                        ],
                        JWKS,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(KeyServer {
            url: format!("http://{addr}/certs"),
            hits,
        })
    }
}

/// The running function and everything it talks to.
struct Harness {
    _world: World,
    _firestore: FirestoreEmulator,
    _pubsub: PubSubEmulator,
    keys: KeyServer,
    admin: PubSubRest,
    child: Child,
    base: String,
    audience: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

fn dead_letter_topic() -> String {
    format!("{}-dead-letter", Direction::GoogleToCompany.topic())
}

fn dead_letter_subscription() -> String {
    format!("{}-dead-letter-check", Direction::GoogleToCompany.topic())
}

impl Harness {
    async fn start() -> anyhow::Result<Harness> {
        let binary = abort_binary().await?;
        let (firestore, pubsub, world) = tokio::try_join!(
            FirestoreEmulator::start(),
            PubSubEmulator::start(),
            World::start()
        )?;
        let keys = KeyServer::start().await?;
        let admin =
            PubSubRest::new(&PubSubConfig::new(PROJECT).with_emulator_host(&pubsub.host_port()))?;
        admin.create_topic(&dead_letter_topic()).await?;
        admin
            .create_pull_subscription(
                &dead_letter_subscription(),
                &dead_letter_topic(),
                Duration::from_secs(60),
                Duration::from_secs(3600),
            )
            .await?;
        let port = free_port()?;
        let audience = format!("http://127.0.0.1:{port}");
        let mut env: HashMap<&str, String> = HashMap::from([
            ("PORT", port.to_string()),
            ("RUST_LOG", "info".into()),
            ("CASESYNC_SHIM__VERIFY_TOKENS", "true".into()),
            ("CASESYNC_SHIM__AUDIENCE", audience.clone()),
            ("CASESYNC_SHIM__INVOKER", INVOKER.into()),
            ("CASESYNC_SHIM__JWKS_URL", keys.url.clone()),
            ("CASESYNC_SHIM__DEAD_LETTER_TOPIC", dead_letter_topic()),
        ]);
        env.extend(world.function_env(
            PROJECT,
            "casesync",
            firestore.host_port(),
            pubsub.host_port(),
        ));
        let dir = tempfile::tempdir()?;
        let log = dir.path().join(format!("{FUNCTION}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(&binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // A backtrace in the log would only make a crash easier to read; the test
            // fails on the crash itself.
            .env("RUST_BACKTRACE", "1")
            .envs(env)
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut harness = Harness {
            _world: world,
            _firestore: firestore,
            _pubsub: pubsub,
            keys,
            admin,
            child,
            base: audience.clone(),
            audience,
            log,
            _dir: dir,
            // A fresh connection per request: the server closes one after refusing a body
            // it did not read (413), and a pooled connection would then fail the next row.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()?,
        };
        harness.wait_healthy().await?;
        Ok(harness)
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{FUNCTION} exited with {status}:\n{}", self.log_text());
            }
            if let Ok(r) = self.http.get(format!("{}/health", self.base)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "{FUNCTION} did not become healthy:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails if the process is gone, quoting the end of its log.
    fn assert_alive(&mut self, after: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "{FUNCTION} died ({status}) after {after}:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }

    async fn post(&self, auth: Auth, body: Vec<u8>) -> anyhow::Result<(u16, String)> {
        let mut request = self.http.post(format!("{}/", self.base)).body(body);
        match auth {
            Auth::None => {}
            Auth::Header(value) => request = request.header("authorization", value),
            Auth::Bearer(token) => request = request.bearer_auth(token),
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }

    /// The dead letters published since the last call (acked, so the next call sees only
    /// newer ones).
    async fn take_dead_letters(
        &self,
    ) -> anyhow::Result<Vec<shared::adapters::pubsub::PulledMessage>> {
        let mut all = Vec::new();
        let mut empty_pulls = 0;
        while empty_pulls < 3 {
            let batch = self.admin.pull(&dead_letter_subscription(), 50).await?;
            if batch.is_empty() {
                empty_pulls += 1;
                tokio::time::sleep(Duration::from_millis(150)).await;
                continue;
            }
            let ids: Vec<String> = batch.iter().map(|m| m.ack_id.clone()).collect();
            self.admin
                .acknowledge(&dead_letter_subscription(), &ids)
                .await?;
            all.extend(batch);
        }
        Ok(all)
    }
}

enum Auth {
    None,
    Header(String),
    Bearer(String),
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn claims(audience: &str) -> Map<String, Value> {
    let now = chrono::Utc::now().timestamp();
    let Value::Object(claims) = json!({
        "iss": "https://accounts.google.com",
        "aud": audience,
        "sub": "1234567890",
        "email": INVOKER,
        "email_verified": true,
        "iat": now - 10,
        "exp": now + 600,
    }) else {
        unreachable!("a JSON object")
    };
    claims
}

fn sign_with(key: &[u8], kid: Option<&str>, claims: &Map<String, Value>) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = kid.map(str::to_string);
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key).expect("the test key");
    jsonwebtoken::encode(&header, claims, &key).expect("signing")
}

fn sign(claims: &Map<String, Value>) -> String {
    sign_with(KEY, Some(KID), claims)
}

fn changed(audience: &str, f: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut c = claims(audience);
    f(&mut c);
    sign(&c)
}

/// A push envelope around `data`, with `attributes`.
fn envelope_with(data: &[u8], attributes: Value) -> Vec<u8> {
    json!({
        "message": {
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "attributes": attributes,
            "messageId": "1",
            "publishTime": "2026-01-01T00:00:00Z",
        },
        "subscription": format!("projects/{PROJECT}/subscriptions/{FUNCTION}"),
        "deliveryAttempt": 1,
    })
    .to_string()
    .into_bytes()
}

fn envelope(data: &[u8], case_key: &str) -> Vec<u8> {
    envelope_with(data, json!({"case_key": case_key}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_email_is_refused_and_the_process_serves_the_next_one() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut h = Harness::start()
        .await
        .unwrap_or_else(|e| panic!("could not start {FUNCTION}: {e:#}"));
    assert!(
        h.log_text().contains("not Google's"),
        "a custom key URL is warned about at start-up:\n{}",
        h.log_text()
    );

    // google-cloud-auth indexed `email_verified` and `email` on a map: a panic, and under
    // `panic = "abort"` the end of the process.
    for (what, token) in [
        (
            "no email",
            changed(&h.audience, |c| {
                c.remove("email");
            }),
        ),
        (
            "no email_verified",
            changed(&h.audience, |c| {
                c.remove("email_verified");
            }),
        ),
        (
            "neither",
            changed(&h.audience, |c| {
                c.remove("email");
                c.remove("email_verified");
            }),
        ),
    ] {
        let (status, body) = h
            .post(
                Auth::Bearer(token),
                envelope(b"{\"v\":1,\"key\":\"1\"}", "1"),
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer ({e:#}); log:\n{}", h.log_text()));
        assert_eq!(status, 401, "{what}: {body}");
        assert!(
            body.contains("email"),
            "{what}: the reason names the claim: {body}"
        );
        h.assert_alive(what);
    }

    let (status, body) = h
        .post(
            Auth::Bearer(sign(&claims(&h.audience))),
            envelope(b"{\"v\":1,\"key\":\"10000001\"}", "10000001"),
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the valid token got no answer ({e:#}); log:\n{}",
                h.log_text()
            )
        });
    assert!(
        (200..300).contains(&status),
        "the valid token is served: {status} {body}"
    );
    h.assert_alive("the valid token");
    assert!(!h.log_text().contains("panicked"), "{}", h.log_text());
}

/// What a row must lead to.
enum Expect {
    /// Refused before the handler, with this fragment in the answer.
    Status(u16, &'static str),
    /// Acked (200) after publishing to the dead-letter topic with a reason containing this.
    DeadLettered(&'static str),
    /// Run by the handler (the sync finds no mapping for the case: 200).
    Served,
}

struct Row {
    what: &'static str,
    auth: Auth,
    body: Vec<u8>,
    expect: Expect,
}

fn rows(audience: &str) -> Vec<Row> {
    let good = || Auth::Bearer(sign(&claims(audience)));
    let ok_body = || envelope(b"{\"v\":1,\"key\":\"10000001\"}", "10000001");
    let token_row = |what, auth, reason| Row {
        what,
        auth,
        body: ok_body(),
        expect: Expect::Status(401, reason),
    };
    let body_row = |what, body, reason| Row {
        what,
        auth: good(),
        body,
        expect: Expect::DeadLettered(reason),
    };
    let good_token = sign(&claims(audience));
    let parts: Vec<&str> = good_token.split('.').collect();
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some(KID.into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &claims(audience),
        &jsonwebtoken::EncodingKey::from_secret(JWKS.as_bytes()),
    )
    .expect("signing");
    let alg_none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT","kid":"casesync-test-key"}"#),
        parts[1]
    );
    let tampered = {
        let mut c = claims(audience);
        c.insert("aud".into(), "https://elsewhere.example".into());
        format!(
            "{}.{}.{}",
            parts[0],
            b64url(Value::Object(c).to_string().as_bytes()),
            parts[2]
        )
    };
    let now = chrono::Utc::now().timestamp();
    let over_limit = 3 * 1024 * 1024;
    let mut huge_key = "-".repeat(1_100_000);
    huge_key.insert(0, '!');
    vec![
        // Tokens: refused with 401 before the body is looked at.
        token_row(
            "missing Authorization header",
            Auth::None,
            "no Authorization header",
        ),
        token_row(
            "not Bearer",
            Auth::Header("Basic dXNlcjpwYXNz".into()),
            "not `Bearer <token>`",
        ),
        token_row(
            "empty bearer token",
            Auth::Header("Bearer ".into()),
            "not a signed JWT",
        ),
        token_row(
            "garbage",
            Auth::Bearer("not.a.jwt".into()),
            "not a signed JWT",
        ),
        token_row("oversized token", Auth::Bearer("a".repeat(20_000)), "limit"),
        token_row(
            "wrong signature",
            Auth::Bearer(sign_with(FOREIGN_KEY, Some(KID), &claims(audience))),
            "signature",
        ),
        token_row("tampered payload", Auth::Bearer(tampered), "signature"),
        token_row(
            "expired",
            Auth::Bearer(changed(audience, |c| {
                c.insert("exp".into(), (now - 3600).into());
            })),
            "expired",
        ),
        token_row(
            "not yet valid",
            Auth::Bearer(changed(audience, |c| {
                c.insert("nbf".into(), (now + 3600).into());
            })),
            "not valid yet",
        ),
        token_row(
            "no exp",
            Auth::Bearer(changed(audience, |c| {
                c.remove("exp");
            })),
            "`exp`",
        ),
        token_row(
            "wrong audience",
            Auth::Bearer(changed(audience, |c| {
                c.insert("aud".into(), "https://other.example".into());
            })),
            "audience",
        ),
        token_row(
            "no audience",
            Auth::Bearer(changed(audience, |c| {
                c.remove("aud");
            })),
            "`aud`",
        ),
        token_row(
            "wrong issuer",
            Auth::Bearer(changed(audience, |c| {
                c.insert("iss".into(), "https://evil.example".into());
            })),
            "issuer",
        ),
        token_row(
            "no email",
            Auth::Bearer(changed(audience, |c| {
                c.remove("email");
            })),
            "no `email` claim",
        ),
        token_row(
            "email_verified false",
            Auth::Bearer(changed(audience, |c| {
                c.insert("email_verified".into(), false.into());
            })),
            "`email_verified`",
        ),
        token_row(
            "no email_verified",
            Auth::Bearer(changed(audience, |c| {
                c.remove("email_verified");
            })),
            "no `email_verified` claim",
        ),
        token_row(
            "foreign invoker",
            Auth::Bearer(changed(audience, |c| {
                c.insert(
                    "email".into(),
                    "intruder@evil.iam.gserviceaccount.com".into(),
                );
            })),
            "not the invoker",
        ),
        token_row(
            "unknown kid",
            Auth::Bearer(sign_with(KEY, Some("rotated-away"), &claims(audience))),
            "not one of the issuer's keys",
        ),
        token_row(
            "no kid",
            Auth::Bearer(sign_with(KEY, None, &claims(audience))),
            "no `kid`",
        ),
        token_row("alg none", Auth::Bearer(alg_none), "not a signed JWT"),
        token_row("alg HS256", Auth::Bearer(hs256), "only RS256"),
        // Bodies, with a good token: each dead-lettered with its reason.
        body_row(
            "not JSON",
            b"{this is not json".to_vec(),
            "not a Pub/Sub push envelope",
        ),
        body_row("empty body", Vec::new(), "not a Pub/Sub push envelope"),
        body_row(
            "JSON but an array",
            b"[1, 2, 3]".to_vec(),
            "not a Pub/Sub push envelope",
        ),
        body_row(
            "JSON but not an envelope",
            br#"{"hello": "world"}"#.to_vec(),
            "no `message`",
        ),
        body_row(
            "missing message",
            br#"{"subscription": "projects/p/subscriptions/s"}"#.to_vec(),
            "no `message`",
        ),
        body_row(
            "message not an object",
            br#"{"message": 5}"#.to_vec(),
            "not a Pub/Sub push envelope",
        ),
        body_row(
            "data not base64",
            br#"{"message": {"data": "%%% not base64", "messageId": "1"}}"#.to_vec(),
            "not base64",
        ),
        body_row(
            "deliveryAttempt not a number",
            br#"{"message": {"data": "", "messageId": "1"}, "deliveryAttempt": "first"}"#.to_vec(),
            "not a Pub/Sub push envelope",
        ),
        body_row(
            "payload not JSON",
            envelope(b"hello", "p1"),
            "sync message is not",
        ),
        body_row(
            "payload without key",
            envelope(br#"{"v":1}"#, "p2"),
            "sync message is not",
        ),
        body_row(
            "payload of another version",
            envelope(br#"{"v":2,"key":"1"}"#, "p3"),
            "version 2",
        ),
        body_row(
            "payload with an empty key",
            envelope(br#"{"v":1,"key":"  "}"#, "p4"),
            "empty key",
        ),
        body_row(
            "key not a case name",
            envelope(br#"{"v":1,"key":"projects/p/comments/1"}"#, "p5"),
            "is not a Google case name",
        ),
        body_row(
            "key over 1 MB",
            envelope(format!(r#"{{"v":1,"key":"{huge_key}"}}"#).as_bytes(), "p6"),
            "bytes in all",
        ),
        body_row(
            "case_key attribute over 1 MB",
            envelope_with(b"hello", json!({"case_key": "k".repeat(1_100_000)})),
            "sync message is not",
        ),
        Row {
            what: "body over the size limit",
            auth: good(),
            body: vec![b'x'; over_limit],
            expect: Expect::Status(413, "limit"),
        },
        Row {
            what: "a good token and a good message (control)",
            auth: good(),
            body: ok_body(),
            expect: Expect::Served,
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_and_body_gets_its_status_and_the_process_lives() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut h = Harness::start()
        .await
        .unwrap_or_else(|e| panic!("could not start {FUNCTION}: {e:#}"));
    let rows = rows(&h.audience);
    assert!(rows.len() >= 25, "{} rows", rows.len());
    let mut failures = Vec::new();
    for row in rows {
        let what = row.what;
        let body_bytes = row.body.len();
        let body_copy = if body_bytes < 4096 {
            Some(row.body.clone())
        } else {
            None
        };
        let (status, text) = match h.post(row.auth, row.body).await {
            Ok(answer) => answer,
            Err(e) => {
                failures.push(format!("{what}: no answer: {e:#}"));
                h.assert_alive(what);
                continue;
            }
        };
        h.assert_alive(what);
        if text.len() > 2048 {
            failures.push(format!(
                "{what}: a {}-byte answer: echoes are capped",
                text.len()
            ));
        }
        match row.expect {
            Expect::Status(expected, fragment) => {
                if status != expected || !text.contains(fragment) {
                    failures.push(format!(
                        "{what}: expected {expected} with `{fragment}`, got {status}: {text}"
                    ));
                }
            }
            Expect::Served => {
                if status != 200 || text.contains("deadLettered") {
                    failures.push(format!(
                        "{what}: expected to be served, got {status}: {text}"
                    ));
                }
            }
            Expect::DeadLettered(fragment) => {
                let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if status != 200 || answer["deadLettered"] != true {
                    failures.push(format!(
                        "{what}: expected dead-lettered and acked, got {status}: {text}"
                    ));
                    continue;
                }
                if !answer["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains(fragment))
                {
                    failures.push(format!(
                        "{what}: the reason should say `{fragment}`: {text}"
                    ));
                }
                // ...and it really is on the dead-letter topic, with that reason.
                let dead = match h.take_dead_letters().await {
                    Ok(d) => d,
                    Err(e) => {
                        failures.push(format!("{what}: pulling the dead letters: {e:#}"));
                        continue;
                    }
                };
                let reasons: Vec<&str> = dead
                    .iter()
                    .filter_map(|m| m.attributes.get(ERROR_ATTRIBUTE).map(String::as_str))
                    .collect();
                if dead.len() != 1 || !reasons.first().is_some_and(|r| r.contains(fragment)) {
                    failures.push(format!(
                        "{what}: expected one dead letter saying `{fragment}`, got {reasons:?}"
                    ));
                }
                if let (Some(m), Some(body)) = (dead.first(), &body_copy)
                    && serde_json::from_slice::<Value>(body)
                        .ok()
                        .is_none_or(|v| v.get("message").is_none())
                    && m.data.as_ref() != body.as_slice()
                {
                    failures.push(format!(
                        "{what}: an undecodable body is dead-lettered whole"
                    ));
                }
            }
        }
    }
    let log = h.log_text();
    if !log.contains("refused a request body") {
        failures.push("the body over the limit left no log line".into());
    }
    if log.lines().any(|l| l.len() > 16 * 1024) {
        failures.push("a log line over 16 KB: echoes are capped".into());
    }
    if log.contains("panicked") {
        failures.push(format!("a panic in the log:\n{log}"));
    }
    assert_eq!(
        h.keys.hits.load(Ordering::SeqCst),
        1,
        "one key fetch for the whole table, the unknown kid included"
    );
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
