//! The shim's behaviour: token checks that refuse and change nothing, push decoding, and the
//! status each outcome maps to (docs/FAILURES.md#what-the-shim-answers); the verifier's claim checks one by one, its key
//! cache under concurrency, and property tests that no input makes the decoder or the
//! verifier panic (issue 12).

use super::token::CachePolicy;
use super::*;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const AUDIENCE: &str = "https://sync-google-to-company.example.run.app";
const INVOKER: &str = "sync-invoker@demo-project.iam.gserviceaccount.com";
const KEY: &[u8] = include_bytes!("testdata/test-signing-key.pem");
const FOREIGN_KEY: &[u8] = include_bytes!("testdata/foreign-signing-key.pem");
const JWKS: &str = include_str!("testdata/test-jwks.json");

const KID: &str = "casesync-test-key";

/// The claims of a good token; tests remove or change one at a time.
fn claims(aud: &str, email: &str, expires_in: i64) -> serde_json::Map<String, serde_json::Value> {
    let now = chrono::Utc::now().timestamp();
    let serde_json::Value::Object(claims) = serde_json::json!({
        "iss": "https://accounts.google.com",
        "aud": aud,
        "sub": "1234567890",
        "email": email,
        "email_verified": true,
        "iat": now - 10,
        "exp": now + expires_in,
    }) else {
        unreachable!()
    };
    claims
}

fn sign(
    key: &[u8],
    kid: Option<&str>,
    claims: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(key).unwrap(),
    )
    .unwrap()
}

fn token_with(key: &[u8], aud: &str, email: &str, expires_in: i64) -> String {
    sign(key, Some(KID), &claims(aud, email, expires_in))
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
    jwks: JwksServer,
}

/// A key server that counts its requests and really waits `delay` before answering, so
/// that requests arriving meanwhile really contend for the one fetch.
struct JwksServer {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(delay: Duration, cache_control: &'static str, body: String) -> JwksServer {
        Self::start_with_status(delay, cache_control, body, 200).await
    }

    async fn start_with_status(
        delay: Duration,
        cache_control: &'static str,
        body: String,
        status: u16,
    ) -> JwksServer {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let app = Router::new().route(
            "/certs",
            get(move || {
                let counted = counted.clone();
                let body = body.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    (
                        StatusCode::from_u16(status).unwrap(),
                        [
                            ("content-type", "application/json"),
                            ("cache-control", cache_control),
                        ],
                        body,
                    )
                }
            }),
        );
        JwksServer {
            url: format!("{}/certs", serve(app).await),
            hits,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A shim whose handler answers by the first byte of the sync message body:
/// `p` permanent, `r` retryable, `s` systemic, `k` permanent with a message quoting the
/// whole `case_key` attribute, anything else success.
async fn fixture(verify: bool, sink_fails: bool) -> Fixture {
    fixture_of(verify, sink_fails, true, Duration::ZERO).await
}

async fn fixture_of(verify: bool, sink_fails: bool, push: bool, jwks_delay: Duration) -> Fixture {
    let jwks = JwksServer::start(jwks_delay, "max-age=3600", JWKS.into()).await;
    let config = ShimConfig {
        function: "sync-google-to-company".into(),
        port: 0,
        token_check: verify.then(|| TokenCheck {
            audience: AUDIENCE.into(),
            invoker_email: INVOKER.into(),
            jwks_url: Some(jwks.url.clone()),
        }),
        project: Some("demo-project".into()),
        push,
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
                    Some(b'k') => Err(HandlerError {
                        class: ErrorClass::Permanent,
                        message: match &inv {
                            Invocation::Push(m) => format!(
                                "`{}` is not a case key",
                                m.attributes.get("case_key").cloned().unwrap_or_default()
                            ),
                            Invocation::Scheduled => String::new(),
                        },
                    }),
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
        jwks,
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
        self.post_reading(token, body).await.0
    }

    async fn post_reading(&self, token: Option<&str>, body: String) -> (u16, String) {
        let mut req = self.client.post(format!("{}/", self.base)).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let response = req.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
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
    // A scheduler request carries no message: it simply runs, whatever its body.
    let scheduled = fixture_of(false, false, false, Duration::ZERO).await;
    assert_eq!(scheduled.post(None, String::new()).await, 200);
    assert_eq!(scheduled.post(None, "{not json".into()).await, 200);
    assert_eq!(scheduled.calls.load(Ordering::SeqCst), 2);
    assert!(scheduled.sink.kept.lock().unwrap().is_empty());
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
    assert!(
        !ShimConfig::from_env("f", &env(&[("CASESYNC_SHIM__VERIFY_TOKENS", "false")]))
            .unwrap()
            .push
    );
    let push = ShimConfig::from_env(
        "sync-google-to-company",
        &env(&[("CASESYNC_SHIM__VERIFY_TOKENS", "false")]),
    )
    .unwrap();
    assert!(
        push.push,
        "a push-triggered function's shim decodes every body"
    );
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

// ---------------------------------------------------------------------------------------
// The verifier, claim by claim (issue 12, item 1): each wrong or missing claim is a
// refusal that names it, never a panic.
// ---------------------------------------------------------------------------------------

fn check(jwks_url: &str) -> TokenCheck {
    TokenCheck {
        audience: AUDIENCE.into(),
        invoker_email: INVOKER.into(),
        jwks_url: Some(jwks_url.into()),
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn without(claim: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut c = claims(AUDIENCE, INVOKER, 600);
    c.remove(claim);
    c
}

fn with(claim: &str, value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    let mut c = claims(AUDIENCE, INVOKER, 600);
    c.insert(claim.into(), value);
    c
}

/// Each bad token with a fragment its refusal must contain.
fn bad_tokens() -> Vec<(&'static str, String, &'static str)> {
    let good = good_token();
    let parts: Vec<&str> = good.split('.').collect();
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some(KID.into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &claims(AUDIENCE, INVOKER, 600),
        &jsonwebtoken::EncodingKey::from_secret(JWKS.as_bytes()),
    )
    .unwrap();
    let alg_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT","kid":"casesync-test-key"}"#),
        parts[1]
    );
    let tampered = {
        let mut c = claims(AUDIENCE, INVOKER, 600);
        c.insert(
            "email".into(),
            "intruder@evil.iam.gserviceaccount.com".into(),
        );
        format!(
            "{}.{}.{}",
            parts[0],
            b64(serde_json::Value::Object(c).to_string().as_bytes()),
            parts[2]
        )
    };
    let now = chrono::Utc::now().timestamp();
    vec![
        ("empty", String::new(), "not a signed JWT"),
        ("garbage", "not.a.jwt".into(), "not a signed JWT"),
        (
            "two parts",
            format!("{}.{}", parts[0], parts[1]),
            "not a signed JWT",
        ),
        (
            "header not JSON",
            format!("{}.{}.{}", b64(b"{nope"), parts[1], parts[2]),
            "header",
        ),
        ("oversized", "a".repeat(20_000), "limit"),
        ("alg none", alg_none, "not a signed JWT"),
        (
            "HS256 with the public key set as secret",
            hs256,
            "only RS256",
        ),
        (
            "no kid",
            sign(KEY, None, &claims(AUDIENCE, INVOKER, 600)),
            "no `kid`",
        ),
        (
            "unknown kid",
            sign(KEY, Some("rotated-away"), &claims(AUDIENCE, INVOKER, 600)),
            "not one of the issuer's keys",
        ),
        (
            "foreign signing key",
            token_with(FOREIGN_KEY, AUDIENCE, INVOKER, 600),
            "signature",
        ),
        ("tampered payload", tampered, "signature"),
        (
            "expired",
            token_with(KEY, AUDIENCE, INVOKER, -120),
            "expired",
        ),
        (
            "not yet valid",
            sign(KEY, Some(KID), &with("nbf", (now + 3600).into())),
            "not valid yet",
        ),
        (
            "no exp",
            sign(KEY, Some(KID), &without("exp")),
            "no `exp` claim",
        ),
        (
            "exp not a number",
            sign(KEY, Some(KID), &with("exp", "tomorrow".into())),
            "`exp` claim",
        ),
        (
            "no iss",
            sign(KEY, Some(KID), &without("iss")),
            "no `iss` claim",
        ),
        (
            "wrong issuer",
            sign(KEY, Some(KID), &with("iss", "https://evil.example".into())),
            "issuer",
        ),
        (
            "no aud",
            sign(KEY, Some(KID), &without("aud")),
            "no `aud` claim",
        ),
        (
            "wrong audience",
            token_with(KEY, "https://other.example", INVOKER, 600),
            "audience",
        ),
        (
            "no email",
            sign(KEY, Some(KID), &without("email")),
            "no `email` claim",
        ),
        (
            "email not a string",
            sign(KEY, Some(KID), &with("email", 42.into())),
            "`email` claim is not a string",
        ),
        (
            "no email_verified",
            sign(KEY, Some(KID), &without("email_verified")),
            "no `email_verified` claim",
        ),
        (
            "email_verified false",
            sign(KEY, Some(KID), &with("email_verified", false.into())),
            "`email_verified` claim is false",
        ),
        (
            "email_verified a string",
            sign(KEY, Some(KID), &with("email_verified", "true".into())),
            "not true",
        ),
        (
            "foreign invoker",
            token_with(KEY, AUDIENCE, "intruder@evil.iam.gserviceaccount.com", 600),
            "not the invoker",
        ),
        (
            "no email and no email_verified",
            sign(KEY, Some(KID), &{
                let mut c = without("email");
                c.remove("email_verified");
                c
            }),
            "no `email",
        ),
    ]
}

#[tokio::test]
async fn every_missing_or_wrong_claim_is_refused_with_its_reason() {
    let jwks = JwksServer::start(Duration::ZERO, "max-age=3600", JWKS.into()).await;
    let verifier = TokenVerifier::new(check(&jwks.url));
    verifier.verify(&good_token()).await.unwrap();
    for (what, token, reason) in bad_tokens() {
        match verifier.verify(&token).await {
            Err(TokenError::Rejected(why)) => {
                assert!(
                    why.contains(reason),
                    "{what}: `{why}` should say `{reason}`"
                );
                assert!(why.len() < 400, "{what}: the reason is capped: {why}");
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
    }
    // Both spellings of Google's issuer, and an `aud` list naming this service, pass.
    for iss in ["accounts.google.com", "https://accounts.google.com"] {
        verifier
            .verify(&sign(KEY, Some(KID), &with("iss", iss.into())))
            .await
            .unwrap();
    }
    verifier
        .verify(&sign(
            KEY,
            Some(KID),
            &with("aud", serde_json::json!(["x", AUDIENCE])),
        ))
        .await
        .unwrap();
    // The invoker is compared without regard to ASCII case.
    verifier
        .verify(&token_with(KEY, AUDIENCE, &INVOKER.to_uppercase(), 600))
        .await
        .unwrap();
    assert_eq!(
        jwks.hits(),
        1,
        "one fetch served every check, the unknown kid included"
    );
}

#[tokio::test]
async fn bad_tokens_through_the_shim_get_401_with_the_reason_and_change_nothing() {
    let f = fixture(true, false).await;
    for (what, token, reason) in bad_tokens() {
        let (status, body) = f.post_reading(Some(&token), envelope(b"ok")).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(body.contains(reason), "{what}: {body}");
    }
    assert_eq!(f.calls.load(Ordering::SeqCst), 0, "the handler never ran");
    assert!(f.sink.kept.lock().unwrap().is_empty());
    // ...and the shim still serves a good one afterwards.
    assert_eq!(f.post(Some(&good_token()), envelope(b"ok")).await, 200);
    let plain = f
        .client
        .post(format!("{}/", f.base))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .body(envelope(b"ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 401);
    assert!(plain.text().await.unwrap().contains("not `Bearer <token>`"));
}

// ---------------------------------------------------------------------------------------
// The key cache (issue 12, item 2).
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_checks_on_a_cold_cache_share_one_slow_fetch() {
    let delay = Duration::from_millis(400);
    let jwks = JwksServer::start(delay, "max-age=3600", JWKS.into()).await;
    let verifier = Arc::new(TokenVerifier::new(check(&jwks.url)));
    let started = Instant::now();
    let checks: Vec<_> = (0..10)
        .map(|_| {
            let verifier = verifier.clone();
            tokio::spawn(async move { verifier.verify(&good_token()).await })
        })
        .collect();
    for check in checks {
        check.await.unwrap().unwrap();
    }
    let took = started.elapsed();
    assert_eq!(jwks.hits(), 1, "exactly one key fetch");
    assert_eq!(verifier.key_fetches(), 1);
    assert!(took >= delay, "the fetch really was slow: {took:?}");
    assert!(
        took < delay * 3,
        "the others waited for that fetch, not each for its own: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_pushes_on_a_cold_instance_are_all_served() {
    let f = fixture_of(true, false, true, Duration::from_millis(400)).await;
    let tokens: Vec<String> = (0..10).map(|_| good_token()).collect();
    let statuses =
        futures::future::join_all(tokens.iter().map(|t| f.post(Some(t), envelope(b"ok")))).await;
    assert_eq!(statuses, vec![200; 10]);
    assert_eq!(f.jwks.hits(), 1);
    assert_eq!(f.calls.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn a_fetch_abandoned_by_its_caller_does_not_block_the_next() {
    let jwks = JwksServer::start(Duration::from_millis(300), "max-age=3600", JWKS.into()).await;
    let verifier = TokenVerifier::new(check(&jwks.url));
    let token = good_token();
    assert!(
        tokio::time::timeout(Duration::from_millis(50), verifier.verify(&token))
            .await
            .is_err(),
        "gave up while the fetch was under way"
    );
    verifier.verify(&token).await.unwrap();
    assert_eq!(verifier.key_fetches(), 2);
}

fn quick_policy() -> CachePolicy {
    CachePolicy {
        default_ttl: Duration::from_secs(3600),
        min_ttl: Duration::ZERO,
        max_ttl: Duration::from_secs(24 * 3600),
        unknown_kid_ttl: Duration::from_millis(300),
        failure_backoff: Duration::from_millis(300),
    }
}

#[tokio::test]
async fn the_key_set_lives_as_long_as_its_cache_control_says() {
    let short = JwksServer::start(Duration::ZERO, "public, max-age=1", JWKS.into()).await;
    let verifier = TokenVerifier::with_policy(check(&short.url), quick_policy());
    verifier.verify(&good_token()).await.unwrap();
    verifier.verify(&good_token()).await.unwrap();
    assert_eq!(short.hits(), 1, "fresh for a second");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    verifier.verify(&good_token()).await.unwrap();
    assert_eq!(short.hits(), 2, "fetched again once max-age passed");

    let long = JwksServer::start(Duration::ZERO, "public, max-age=3600", JWKS.into()).await;
    let verifier = TokenVerifier::with_policy(check(&long.url), quick_policy());
    verifier.verify(&good_token()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    verifier.verify(&good_token()).await.unwrap();
    assert_eq!(long.hits(), 1);
}

#[test]
fn freshness_reads_max_age_less_age_within_bounds() {
    use reqwest::header::{AGE, CACHE_CONTROL, HeaderMap, HeaderValue};
    let policy = CachePolicy::default();
    let of = |pairs: &[(reqwest::header::HeaderName, &'static str)]| {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_static(v));
        }
        super::token::freshness(&h, &policy)
    };
    let secs = Duration::from_secs;
    assert_eq!(
        of(&[(CACHE_CONTROL, "public, max-age=21080, must-revalidate")]),
        secs(21080)
    );
    assert_eq!(
        of(&[(CACHE_CONTROL, "max-age=21080"), (AGE, "80")]),
        secs(21000)
    );
    assert_eq!(of(&[]), secs(3600), "no header: the default");
    assert_eq!(
        of(&[(CACHE_CONTROL, "max-age=0")]),
        secs(60),
        "never below the floor"
    );
    assert_eq!(of(&[(CACHE_CONTROL, "no-store")]), secs(60));
    assert_eq!(of(&[(CACHE_CONTROL, "max-age=99999999")]), secs(24 * 3600));
    assert_eq!(of(&[(CACHE_CONTROL, "max-age=banana")]), secs(3600));
    assert_eq!(
        of(&[(CACHE_CONTROL, "max-age=100"), (AGE, "500")]),
        secs(60)
    );
}

#[tokio::test]
async fn an_unknown_kid_is_cached_negatively_not_fetched_every_time() {
    let jwks = JwksServer::start(Duration::ZERO, "max-age=3600", JWKS.into()).await;
    let verifier = TokenVerifier::with_policy(check(&jwks.url), quick_policy());
    for i in 0..20 {
        let token = sign(
            KEY,
            Some(&format!("made-up-{i}")),
            &claims(AUDIENCE, INVOKER, 600),
        );
        assert!(matches!(
            verifier.verify(&token).await,
            Err(TokenError::Rejected(_))
        ));
    }
    assert_eq!(
        jwks.hits(),
        1,
        "one fetch, then every unknown kid is refused from cache"
    );
    verifier.verify(&good_token()).await.unwrap();
    assert_eq!(jwks.hits(), 1, "a known kid is served from the same set");
    // Once the negative period is over, an unknown kid may fetch again (a key Google has
    // just published is found), once.
    tokio::time::sleep(Duration::from_millis(350)).await;
    for _ in 0..5 {
        let token = sign(KEY, Some("made-up"), &claims(AUDIENCE, INVOKER, 600));
        assert!(verifier.verify(&token).await.is_err());
    }
    assert_eq!(jwks.hits(), 2);
}

#[tokio::test]
async fn a_key_server_failure_is_a_503_kind_of_error_and_is_not_hammered() {
    let down =
        JwksServer::start_with_status(Duration::ZERO, "max-age=3600", "oops".into(), 500).await;
    let verifier = TokenVerifier::with_policy(check(&down.url), quick_policy());
    for _ in 0..5 {
        match verifier.verify(&good_token()).await {
            Err(TokenError::KeysUnavailable(why)) => assert!(why.contains("500"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(down.hits(), 1, "backed off after the failure");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(verifier.verify(&good_token()).await.is_err());
    assert_eq!(down.hits(), 2, "tried again after the back-off");

    // Through the shim: 503, so the delivery is retried rather than refused.
    let f = fixture(true, false).await;
    let broken = ShimConfig {
        function: "f".into(),
        port: 0,
        token_check: Some(check(&down.url)),
        project: None,
        push: true,
    };
    let app = router(broken, None, |_| async { Ok(serde_json::json!({})) });
    let base = serve(app).await;
    let status = f
        .client
        .post(format!("{base}/"))
        .bearer_auth(good_token())
        .body(envelope(b"ok"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 503);
}

#[tokio::test]
async fn key_sets_that_are_too_big_or_not_key_sets_are_refused() {
    let huge = format!(r#"{{"keys": [], "padding": "{}"}}"#, "x".repeat(100_000));
    let cases = [
        (huge, "over"),
        ("not json".to_string(), "not a JSON Web Key Set"),
        (
            r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "casesync-test-key"}]}"#
                .to_string(),
            "no RS256",
        ),
    ];
    for (body, reason) in cases {
        let jwks = JwksServer::start(Duration::ZERO, "max-age=3600", body).await;
        let verifier = TokenVerifier::new(check(&jwks.url));
        match verifier.verify(&good_token()).await {
            Err(TokenError::KeysUnavailable(why)) => assert!(why.contains(reason), "{why}"),
            other => panic!("{reason}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Bodies and echoed values (issue 12, items 6 and 7).
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_body_that_is_no_push_envelope_at_all_is_dead_lettered_with_its_reason() {
    let f = fixture(false, false).await;
    for body in [
        "",
        "hello",
        "{not json",
        "[1,2,3]",
        "\"a string\"",
        "{\"foo\": 1}",
    ] {
        let (status, text) = f.post_reading(None, body.into()).await;
        assert_eq!(status, 200, "{body:?}: {text}");
        assert!(text.contains("\"deadLettered\":true"), "{body:?}: {text}");
    }
    let kept = f.sink.kept.lock().unwrap().clone();
    assert_eq!(kept.len(), 6);
    assert_eq!(kept[1].0.data, b"hello", "the body itself is kept");
    assert!(
        kept[1].1.contains("not a Pub/Sub push envelope"),
        "{}",
        kept[1].1
    );
    assert!(kept[5].1.contains("no `message`"), "{}", kept[5].1);
    assert_eq!(f.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_and_its_reason() {
    let f = fixture(false, false).await;
    let (status, text) = f.post_reading(None, "x".repeat(MAX_BODY_BYTES + 1)).await;
    assert_eq!(status, 413);
    assert!(text.contains("limit"), "{text}");
    assert_eq!(f.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn echoed_case_keys_and_reasons_are_capped() {
    use base64::Engine as _;
    let f = fixture(false, false).await;
    let key = "k".repeat(1_400_000);
    let body = serde_json::json!({
        "message": {
            "data": base64::engine::general_purpose::STANDARD.encode(b"k"),
            "attributes": {"case_key": key},
            "messageId": "m1",
        },
    })
    .to_string();
    let (status, text) = f.post_reading(None, body).await;
    assert_eq!(status, 200, "dead-lettered");
    assert!(text.len() < 1000, "response is {} bytes", text.len());
    assert!(text.contains("bytes in all"), "{text}");
    let kept = f.sink.kept.lock().unwrap().clone();
    assert!(
        kept[0].1.len() < 1000,
        "the dead letter's reason is capped too"
    );
    // A decoding error quoting a huge value is capped the same way.
    let bad = format!(
        r#"{{"message": {{"data": "", "messageId": 1}}, "subscription": "{}"}}"#,
        "s".repeat(1_000_000)
    );
    let (status, text) = f.post_reading(None, bad).await;
    assert_eq!(status, 200);
    assert!(text.len() < 1000, "response is {} bytes", text.len());
}

#[test]
fn a_misspelt_shim_setting_stops_start_up_naming_it_and_risky_ones_warn() {
    let env = |pairs: &[(&str, &str)]| -> std::collections::HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let err = ShimConfig::from_env(
        "f",
        &env(&[
            ("CASESYNC_SHIM__VERIFY_TOKEN", "false"),
            ("CASESYNC_SHIM__AUDIENCE", "a"),
            ("CASESYNC_SHIM__INVOKER", "i"),
        ]),
    )
    .err()
    .unwrap();
    assert_eq!(err.key, "CASESYNC_SHIM__VERIFY_TOKEN");
    assert!(
        err.problem
            .contains("did you mean CASESYNC_SHIM__VERIFY_TOKENS?"),
        "{}",
        err.problem
    );
    let err = ShimConfig::from_env("f", &env(&[("CASESYNC_SHIM__ZZZZZZZZZZZZZZ", "1")]))
        .err()
        .unwrap();
    assert!(!err.problem.contains("did you mean"), "{}", err.problem);
    assert!(
        err.problem.contains("CASESYNC_SHIM__JWKS_URL"),
        "lists what it reads"
    );
    // Every documented setting is accepted, the dead-letter topic included.
    let all = ShimConfig::from_env(
        "f",
        &env(&[
            ("CASESYNC_SHIM__VERIFY_TOKENS", "true"),
            ("CASESYNC_SHIM__AUDIENCE", "a"),
            ("CASESYNC_SHIM__INVOKER", "i"),
            ("CASESYNC_SHIM__PROJECT", "p"),
            ("CASESYNC_SHIM__DEAD_LETTER_TOPIC", "t"),
        ]),
    )
    .unwrap();
    assert!(
        all.warnings().is_empty(),
        "Google's keys, verification on: nothing to say"
    );
    let off =
        ShimConfig::from_env("f", &env(&[("CASESYNC_SHIM__VERIFY_TOKENS", "false")])).unwrap();
    assert!(off.warnings()[0].contains("token verification is OFF"));
    let custom = ShimConfig::from_env(
        "f",
        &env(&[
            ("CASESYNC_SHIM__AUDIENCE", "a"),
            ("CASESYNC_SHIM__INVOKER", "i"),
            ("CASESYNC_SHIM__JWKS_URL", "http://127.0.0.1:1/certs"),
        ]),
    )
    .unwrap();
    assert!(custom.warnings()[0].contains("http://127.0.0.1:1/certs"));
    assert!(custom.warnings()[0].contains("not Google's"));
}

// ---------------------------------------------------------------------------------------
// No input panics (issue 12, "Must show").
// ---------------------------------------------------------------------------------------

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// JSON values of any shape, for claims and envelopes.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            ".{0,40}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::from(AUDIENCE)),
            Just(serde_json::Value::from(INVOKER)),
            Just(serde_json::Value::from("https://accounts.google.com")),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("iss".to_string()),
                        Just("aud".to_string()),
                        Just("exp".to_string()),
                        Just("nbf".to_string()),
                        Just("email".to_string()),
                        Just("email_verified".to_string()),
                        Just("message".to_string()),
                        Just("data".to_string()),
                        Just("attributes".to_string()),
                        Just("deliveryAttempt".to_string()),
                        "[a-z_]{1,8}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_envelope_decoder_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_push(&body);
        }

        #[test]
        fn the_envelope_decoder_never_panics_on_json(value in json()) {
            let _ = decode_push(value.to_string().as_bytes());
            let wrapped = serde_json::json!({"message": value, "subscription": "s"});
            let _ = decode_push(wrapped.to_string().as_bytes());
        }

        #[test]
        fn the_verifier_never_panics_on_any_string(token in ".{0,300}", dots in "[A-Za-z0-9_=.-]{0,300}") {
            let verifier = TokenVerifier::new(check("http://127.0.0.1:9/certs"));
            let rt = runtime();
            for t in [token.as_str(), dots.as_str()] {
                prop_assert!(rt.block_on(verifier.verify(t)).is_err());
            }
        }

        #[test]
        fn the_verifier_never_panics_on_any_signed_claims(
            value in json(),
            extra in prop::collection::btree_map("[a-z_]{1,14}", json(), 0..4),
        ) {
            // Claims of every shape, properly signed with the served key: whatever they
            // hold, the answer is Ok or a refusal.
            let mut c = match value {
                serde_json::Value::Object(m) => m,
                other => {
                    let mut m = serde_json::Map::new();
                    m.insert("email".into(), other);
                    m
                }
            };
            c.extend(extra);
            let token = sign(KEY, Some(KID), &c);
            let rt = runtime();
            let verdict = rt.block_on(async {
                let jwks = JwksServer::start(Duration::ZERO, "max-age=3600", JWKS.into()).await;
                TokenVerifier::new(check(&jwks.url)).verify(&token).await
            });
            if verdict.is_ok() {
                // Accepted only with everything right.
                prop_assert_eq!(c.get("email").and_then(|e| e.as_str()).map(str::to_ascii_lowercase), Some(INVOKER.to_string()));
                prop_assert_eq!(c.get("email_verified"), Some(&serde_json::Value::Bool(true)));
            }
        }
    }
}
