//! The shim's behaviour: token checks that refuse and change nothing, push decoding, and the
//! status each outcome maps to (DESIGN §8).

use super::*;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

const AUDIENCE: &str = "https://sync-google-to-company.example.run.app";
const INVOKER: &str = "sync-invoker@demo-project.iam.gserviceaccount.com";
const KEY: &[u8] = include_bytes!("testdata/test-signing-key.pem");
const FOREIGN_KEY: &[u8] = include_bytes!("testdata/foreign-signing-key.pem");
const JWKS: &str = include_str!("testdata/test-jwks.json");

fn token_with(key: &[u8], aud: &str, email: &str, expires_in: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": "https://accounts.google.com",
        "aud": aud,
        "sub": "1234567890",
        "email": email,
        "email_verified": true,
        "iat": now - 10,
        "exp": now + expires_in,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("casesync-test-key".into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(key).unwrap(),
    )
    .unwrap()
}

fn good_token() -> String {
    token_with(KEY, AUDIENCE, INVOKER, 600)
}

#[derive(Default)]
struct RecordingSink {
    fail: bool,
    kept: Mutex<Vec<(PushMessage, String)>>,
}

#[async_trait]
impl DeadLetterSink for RecordingSink {
    async fn dead_letter(
        &self,
        message: &PushMessage,
        _class: ErrorClass,
        reason: &str,
    ) -> PortResult<()> {
        if self.fail {
            return Err(crate::PortError::retryable("publish", "down"));
        }
        self.kept
            .lock()
            .unwrap()
            .push((message.clone(), reason.to_string()));
        Ok(())
    }
}

struct Fixture {
    base: String,
    calls: Arc<AtomicUsize>,
    sink: Arc<RecordingSink>,
    client: reqwest::Client,
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A shim whose handler answers by the first byte of the sync message body:
/// `p` permanent, `r` retryable, `s` systemic, anything else success.
async fn fixture(verify: bool, sink_fails: bool) -> Fixture {
    let jwks = serve(Router::new().route(
        "/certs",
        get(|| async { ([("content-type", "application/json")], JWKS) }),
    ))
    .await;
    let config = ShimConfig {
        function: "sync-google-to-company".into(),
        port: 0,
        token_check: verify.then(|| TokenCheck {
            audience: AUDIENCE.into(),
            invoker_email: INVOKER.into(),
            jwks_url: Some(format!("{jwks}/certs")),
        }),
        project: Some("demo-project".into()),
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let sink = Arc::new(RecordingSink {
        fail: sink_fails,
        ..RecordingSink::default()
    });
    let counted = calls.clone();
    let app = router(
        config,
        Some(sink.clone() as Arc<dyn DeadLetterSink>),
        move |inv| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                let first = match &inv {
                    Invocation::Push(m) => m.data.first().copied(),
                    Invocation::Scheduled => None,
                };
                let fail = |class| {
                    Err(HandlerError {
                        class,
                        message: "it failed".into(),
                    })
                };
                match first {
                    Some(b'p') => fail(ErrorClass::Permanent),
                    Some(b'r') => fail(ErrorClass::Retryable),
                    Some(b's') => fail(ErrorClass::Systemic),
                    _ => Ok(serde_json::json!({"ok": true})),
                }
            }
        },
    );
    Fixture {
        base: serve(app).await,
        calls,
        sink,
        client: reqwest::Client::new(),
    }
}

fn envelope(data: &[u8]) -> String {
    use base64::Engine as _;
    serde_json::json!({
        "message": {"data": base64::engine::general_purpose::STANDARD.encode(data), "attributes": {"case_key": "42"}, "messageId": "m1"},
        "subscription": "projects/demo-project/subscriptions/sync-google-to-company",
    })
    .to_string()
}

impl Fixture {
    async fn post(&self, token: Option<&str>, body: String) -> u16 {
        let mut req = self.client.post(format!("{}/", self.base)).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap().status().as_u16()
    }
}

#[tokio::test]
async fn a_valid_token_from_the_invoker_is_accepted() {
    let f = fixture(true, false).await;
    assert_eq!(f.post(Some(&good_token()), envelope(b"ok")).await, 200);
    assert_eq!(f.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bad_tokens_get_401_and_change_nothing() {
    let f = fixture(true, false).await;
    let cases = [
        ("no token", None),
        ("expired", Some(token_with(KEY, AUDIENCE, INVOKER, -120))),
        (
            "wrong audience",
            Some(token_with(KEY, "https://other.example", INVOKER, 600)),
        ),
        (
            "foreign service account",
            Some(token_with(
                KEY,
                AUDIENCE,
                "intruder@evil.iam.gserviceaccount.com",
                600,
            )),
        ),
        (
            "foreign signing key",
            Some(token_with(FOREIGN_KEY, AUDIENCE, INVOKER, 600)),
        ),
        ("garbage", Some("not.a.jwt".to_string())),
    ];
    for (what, token) in cases {
        assert_eq!(
            f.post(token.as_deref(), envelope(b"ok")).await,
            401,
            "{what}"
        );
    }
    assert_eq!(f.calls.load(Ordering::SeqCst), 0, "the handler never ran");
    assert!(f.sink.kept.lock().unwrap().is_empty());
}

#[tokio::test]
async fn outcomes_map_to_the_statuses_of_design_section_8() {
    let f = fixture(false, false).await;
    assert_eq!(f.post(None, envelope(b"ok")).await, 200);
    assert_eq!(f.post(None, envelope(b"r")).await, 503);
    assert_eq!(f.post(None, envelope(b"s")).await, 500);
    assert!(
        f.sink.kept.lock().unwrap().is_empty(),
        "retryable and systemic are never dead-lettered"
    );
    assert_eq!(
        f.post(None, envelope(b"p")).await,
        200,
        "dead-lettered, then acked"
    );
    let kept = f.sink.kept.lock().unwrap().clone();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0.data, b"p");
    assert_eq!(
        kept[0].0.attributes.get("case_key").map(String::as_str),
        Some("42")
    );
    assert_eq!(kept[0].1, "it failed");
    // A scheduler request carries no message: it simply runs.
    assert_eq!(f.post(None, String::new()).await, 200);
}

#[tokio::test]
async fn a_malformed_push_body_is_dead_lettered_with_a_reason_not_acked_silently() {
    let f = fixture(false, false).await;
    assert_eq!(
        f.post(None, r#"{"message": {"data": "%%%not base64"}}"#.into())
            .await,
        200
    );
    assert_eq!(f.post(None, r#"{"subscription": "s"}"#.into()).await, 200);
    let kept = f.sink.kept.lock().unwrap().clone();
    assert_eq!(kept.len(), 2);
    assert!(kept[0].1.contains("not base64"), "{}", kept[0].1);
    assert!(kept[1].1.contains("no `message`"), "{}", kept[1].1);
    assert_eq!(f.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn when_the_dead_letter_topic_is_down_the_message_is_not_acked() {
    let f = fixture(false, true).await;
    assert_eq!(f.post(None, envelope(b"p")).await, 500);
    assert_eq!(f.post(None, "{\"message\": 5}".into()).await, 500);
}

#[tokio::test]
async fn health_answers_without_a_token() {
    let f = fixture(true, false).await;
    let status = f
        .client
        .get(format!("{}/health", f.base))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

#[test]
fn configuration_names_the_missing_key_and_verification_is_on_unless_turned_off() {
    let env = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let err = ShimConfig::from_env("f", &env(&[])).err().unwrap();
    assert_eq!(err.key, "CASESYNC_SHIM__AUDIENCE");
    let err = ShimConfig::from_env("f", &env(&[("CASESYNC_SHIM__AUDIENCE", "a")]))
        .err()
        .unwrap();
    assert_eq!(err.key, "CASESYNC_SHIM__INVOKER");
    let c = ShimConfig::from_env(
        "f",
        &env(&[("CASESYNC_SHIM__VERIFY_TOKENS", "false"), ("PORT", "9090")]),
    )
    .unwrap();
    assert!(c.token_check.is_none());
    assert_eq!(c.port, 9090);
    assert!(ShimConfig::from_env("f", &env(&[("CASESYNC_SHIM__VERIFY_TOKENS", "no")])).is_err());
}
