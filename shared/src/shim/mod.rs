//! The HTTP shim every Cloud Run function runs (docs/FAILURES.md#what-the-shim-answers): it serves one handler
//! on `$PORT`, in the spirit of `lambda_http::run`. It verifies the caller's OIDC token,
//! turns a Cloud Scheduler request or a Pub/Sub push envelope into an [`Invocation`], and
//! maps the handler's outcome to the status Pub/Sub and Scheduler act on: success → 200;
//! retryable → 503 and systemic → 500 (both retried); permanent, or a message that cannot
//! be decoded → published to the dead-letter topic with its reason, then acked with 200.
//!
//! Everything a request brings is untrusted: no token, envelope or body can make it panic,
//! each refusal says why in the log and the response, and every value it echoes is capped
//! (`logging::capped`), as Cloud Logging drops lines over 256 KB.

mod envelope;
mod token;

pub use envelope::{PushMessage, decode_push};
pub use token::{GOOGLE_JWKS_URL, TokenCheck, TokenError, TokenVerifier};

use crate::error::{ErrorClass, PortResult};
use crate::logging::capped;
use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tracing::{Instrument, error, info, warn};

/// The largest request body the shim reads. A sync message is a few dozen bytes; a push
/// envelope of one is under 1 KB. A bigger body gets 413 (and a log line), so Pub/Sub
/// retries it and, with the subscription's dead-letter policy, dead-letters it in the end.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The settings the shim reads, each as `CASESYNC_SHIM__{KEY}` (upper case) in the
/// environment; `dead_letter_topic` is read by `function::Function::dead_letter_sink`.
/// Any other `CASESYNC_SHIM__*` variable is a typo and stops start-up.
pub const SETTINGS: &[&str] = &[
    "verify_tokens",
    "audience",
    "invoker",
    "jwks_url",
    "project",
    "dead_letter_topic",
];

const ENV_PREFIX: &str = "CASESYNC_SHIM__";

/// What triggered a function.
#[derive(Debug, Clone)]
pub enum Invocation {
    /// A Cloud Scheduler job (its body is ignored: the schedule is the message).
    Scheduled,
    /// A Pub/Sub push delivery.
    Push(PushMessage),
}

/// A handler's failure, classified.
#[derive(Debug, Clone)]
pub struct HandlerError {
    pub class: ErrorClass,
    pub message: String,
}

pub type HandlerOutcome = Result<serde_json::Value, HandlerError>;

type BoxedHandler =
    Arc<dyn Fn(Invocation) -> Pin<Box<dyn Future<Output = HandlerOutcome> + Send>> + Send + Sync>;

/// Where the shim puts a message it gives up on.
#[async_trait]
pub trait DeadLetterSink: Send + Sync {
    async fn dead_letter(
        &self,
        message: &PushMessage,
        class: ErrorClass,
        reason: &str,
    ) -> PortResult<()>;
}

/// How the shim is set up, from the environment of a Cloud Run service.
#[derive(Clone)]
pub struct ShimConfig {
    /// The function's name, for logs.
    pub function: String,
    pub port: u16,
    /// `None` only when the configuration turns verification off explicitly.
    pub token_check: Option<TokenCheck>,
    /// The GCP project, for trace correlation.
    pub project: Option<String>,
    /// A Pub/Sub push service: every body must be a push envelope, and one that is not is
    /// dead-lettered. Otherwise (Cloud Scheduler) the body is ignored.
    pub push: bool,
}

impl ShimConfig {
    /// `PORT` (default 8080); `CASESYNC_SHIM__VERIFY_TOKENS` (`false` turns verification
    /// off — local use only); `CASESYNC_SHIM__AUDIENCE` and `CASESYNC_SHIM__INVOKER` (the
    /// one service account allowed to call); `CASESYNC_SHIM__JWKS_URL` (tests);
    /// `CASESYNC_SHIM__PROJECT` or `GOOGLE_CLOUD_PROJECT`.
    pub fn from_env(
        function: &str,
        env: &std::collections::HashMap<String, String>,
    ) -> Result<ShimConfig, crate::config::ConfigError> {
        let get = |k: &str| env.get(k).filter(|v| !v.trim().is_empty()).cloned();
        let err = |key: &str, problem: &str| crate::config::ConfigError {
            key: key.to_string(),
            problem: problem.to_string(),
        };
        check_setting_names(env)?;
        let port = match get("PORT") {
            Some(p) => p.parse().map_err(|_| err("PORT", "is not a port number"))?,
            None => 8080,
        };
        let verify = match get("CASESYNC_SHIM__VERIFY_TOKENS").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => {
                return Err(err(
                    "CASESYNC_SHIM__VERIFY_TOKENS",
                    "must be `true` or `false`",
                ));
            }
        };
        let token_check = if verify {
            Some(TokenCheck {
                audience: get("CASESYNC_SHIM__AUDIENCE").ok_or_else(|| {
                    err(
                        "CASESYNC_SHIM__AUDIENCE",
                        "is required while token verification is on",
                    )
                })?,
                invoker_email: get("CASESYNC_SHIM__INVOKER").ok_or_else(|| {
                    err(
                        "CASESYNC_SHIM__INVOKER",
                        "is required while token verification is on",
                    )
                })?,
                jwks_url: get("CASESYNC_SHIM__JWKS_URL"),
            })
        } else {
            None
        };
        Ok(ShimConfig {
            function: function.to_string(),
            port,
            token_check,
            project: get("CASESYNC_SHIM__PROJECT").or_else(|| get("GOOGLE_CLOUD_PROJECT")),
            push: crate::deploy::spec(function)
                .is_some_and(|s| matches!(s.trigger, crate::deploy::Trigger::Push { .. })),
        })
    }

    /// What an operator must know about this set-up, logged at start-up: settings that are
    /// right for tests or local use and dangerous anywhere else.
    pub fn warnings(&self) -> Vec<String> {
        match &self.token_check {
            None => vec![
                "token verification is OFF (CASESYNC_SHIM__VERIFY_TOKENS=false): any caller \
                 that reaches this port can invoke the function; use this locally only"
                    .into(),
            ],
            Some(TokenCheck {
                jwks_url: Some(url),
                ..
            }) => vec![format!(
                "token signing keys come from CASESYNC_SHIM__JWKS_URL = `{}`, not Google's \
                 ({GOOGLE_JWKS_URL}): whoever holds those keys can invoke the function; \
                 use this in tests only",
                capped(url)
            )],
            Some(_) => Vec::new(),
        }
    }
}

/// Refuses a `CASESYNC_SHIM__*` variable the shim does not read: a misspelt
/// `CASESYNC_SHIM__VERIFY_TOKEN=false` would otherwise leave verification on unnoticed, and
/// a misspelt `…__AUDIENCE` would only show as every request refused.
fn check_setting_names(
    env: &std::collections::HashMap<String, String>,
) -> Result<(), crate::config::ConfigError> {
    let mut unknown: Vec<&String> = env
        .keys()
        .filter(|k| {
            k.strip_prefix(ENV_PREFIX)
                .is_some_and(|name| !SETTINGS.contains(&name.to_ascii_lowercase().as_str()))
        })
        .collect();
    unknown.sort();
    let Some(key) = unknown.first() else {
        return Ok(());
    };
    let name = key[ENV_PREFIX.len()..].to_ascii_lowercase();
    let nearest = SETTINGS
        .iter()
        .min_by_key(|s| edit_distance(&name, s))
        .filter(|s| edit_distance(&name, s) <= 3);
    let hint = match nearest {
        Some(s) => format!("did you mean {ENV_PREFIX}{}? ", s.to_ascii_uppercase()),
        None => String::new(),
    };
    Err(crate::config::ConfigError {
        key: capped(key).into_owned(),
        problem: format!(
            "is not a setting of the HTTP shim; {hint}it reads {}",
            SETTINGS
                .iter()
                .map(|s| format!("{ENV_PREFIX}{}", s.to_ascii_uppercase()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// Levenshtein distance, for the "did you mean" of a misspelt setting.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(previous + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

struct ShimState {
    config: ShimConfig,
    verifier: Option<TokenVerifier>,
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
    handler: BoxedHandler,
}

/// Builds the shim's router around `handler`.
pub fn router<F, Fut>(
    config: ShimConfig,
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
    handler: F,
) -> Router
where
    F: Fn(Invocation) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerOutcome> + Send + 'static,
{
    let verifier = config.token_check.clone().map(TokenVerifier::new);
    let handler: BoxedHandler = Arc::new(move |inv| Box::pin(handler(inv)));
    let state = Arc::new(ShimState {
        config,
        verifier,
        dead_letters,
        handler,
    });
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/", post(invoke))
        .route("/{*path}", post(invoke))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves `handler` on `$PORT` until SIGTERM or Ctrl-C, then drains in-flight requests.
pub async fn run<F, Fut>(
    config: ShimConfig,
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
    handler: F,
) -> std::io::Result<()>
where
    F: Fn(Invocation) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerOutcome> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port)).await?;
    for warning in config.warnings() {
        warn!(function = %config.function, "{warning}");
    }
    info!(function = %config.function, port = config.port, token_verification = config.token_check.is_some(), "listening");
    let app = router(config, dead_letters, handler);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = term => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    info!("shutting down: draining in-flight requests");
}

fn trace_of(headers: &HeaderMap, project: Option<&str>) -> String {
    let raw = headers
        .get("x-cloud-trace-context")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split('/').next())
        .unwrap_or("");
    match (project, raw.is_empty()) {
        (Some(p), false) => format!("projects/{p}/traces/{}", capped(raw)),
        _ => capped(raw).into_owned(),
    }
}

async fn invoke(
    State(state): State<Arc<ShimState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let trace = trace_of(&headers, state.config.project.as_deref());
    let span = tracing::info_span!(
        "request",
        function = %state.config.function,
        trace = %trace,
        case_key = tracing::field::Empty
    );
    async move {
        if let Some(verifier) = &state.verifier {
            let header = headers
                .get(axum::http::header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap_or_default());
            // The scheme is case-insensitive (RFC 9110 §11.1); an empty token after it is
            // a bad token, refused as such below.
            let token = header.and_then(|v| {
                let (scheme, token) = v.split_once(' ').unwrap_or((v, ""));
                scheme.eq_ignore_ascii_case("bearer").then_some(token)
            });
            let Some(token) = token else {
                let problem = if header.is_some() {
                    "the Authorization header is not `Bearer <token>`"
                } else {
                    "no Authorization header"
                };
                warn!(error = problem, "request without a bearer token: refused");
                return (
                    StatusCode::UNAUTHORIZED,
                    format!("missing bearer token: {problem}"),
                )
                    .into_response();
            };
            match verifier.verify(token.trim()).await {
                Ok(()) => {}
                Err(e @ TokenError::Rejected(_)) => {
                    warn!(error = %e, "request with an invalid token: refused");
                    return (StatusCode::UNAUTHORIZED, format!("invalid token: {e}"))
                        .into_response();
                }
                Err(e @ TokenError::KeysUnavailable(_)) => {
                    // Not the caller's fault: it retries, and the token may well be good.
                    error!(error = %e, "token not checked: answering 503");
                    return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
                }
            }
        }
        let body = match body {
            Ok(body) => body,
            Err(rejection) => {
                // Too large (413) or cut off: nothing to decode or dead-letter, so this line
                // is the only trace it leaves.
                let status = rejection.status();
                let reason = format!(
                    "request body not read (limit {MAX_BODY_BYTES} bytes): {}",
                    rejection.body_text()
                );
                let reason = capped(&reason).into_owned();
                error!(status = status.as_u16(), error = %reason, "refused a request body");
                return (status, reason).into_response();
            }
        };
        let invocation = if state.config.push {
            match decode_push(&body) {
                Ok(m) => Invocation::Push(m),
                Err(reason) => {
                    error!(error = %capped(&reason), body_bytes = body.len(), "undecodable push body: dead-lettering it");
                    let message = PushMessage::undecodable(&body);
                    return dead_letter(&state, &message, ErrorClass::Permanent, &reason).await;
                }
            }
        } else {
            // Cloud Scheduler: the schedule is the message, whatever the body says.
            Invocation::Scheduled
        };
        let case_key = match &invocation {
            Invocation::Push(m) => m
                .attributes
                .get("case_key")
                .map(|k| capped(k).into_owned())
                .unwrap_or_default(),
            Invocation::Scheduled => String::new(),
        };
        if !case_key.is_empty() {
            // Every line logged while this delivery runs names its case (docs/FAILURES.md#what-the-shim-answers).
            tracing::Span::current().record("case_key", case_key.as_str());
        }
        match (state.handler)(invocation.clone()).await {
            Ok(report) => (StatusCode::OK, axum::Json(report)).into_response(),
            Err(e) => {
                let message = capped(&e.message);
                match (e.class, &invocation) {
                    (ErrorClass::Permanent, Invocation::Push(m)) => {
                        error!(case_key = %case_key, class = e.class.as_str(), error = %message, "permanent failure: dead-lettering the message");
                        dead_letter(&state, m, e.class, &e.message).await
                    }
                    (ErrorClass::Systemic, _) | (ErrorClass::Permanent, Invocation::Scheduled) => {
                        error!(case_key = %case_key, class = e.class.as_str(), error = %message, "failed");
                        (StatusCode::INTERNAL_SERVER_ERROR, message.into_owned()).into_response()
                    }
                    (ErrorClass::Retryable, _) => {
                        warn!(case_key = %case_key, class = e.class.as_str(), error = %message, "failed; will be retried");
                        (StatusCode::SERVICE_UNAVAILABLE, message.into_owned()).into_response()
                    }
                }
            }
        }
    }
    .instrument(span)
    .await
}

async fn dead_letter(
    state: &ShimState,
    message: &PushMessage,
    class: ErrorClass,
    reason: &str,
) -> Response {
    // The reason may quote the input (a key, a body's bad value): capped in the log, the
    // response and the dead letter's attribute alike.
    let reason = capped(reason);
    let reason = reason.as_ref();
    let Some(sink) = &state.dead_letters else {
        // No dead-letter topic configured: never ack what was not kept.
        error!(error = %reason, "no dead-letter topic configured: answering 500 so the message is not lost");
        return (StatusCode::INTERNAL_SERVER_ERROR, reason.to_string()).into_response();
    };
    match sink.dead_letter(message, class, reason).await {
        Ok(()) => {
            info!(class = class.as_str(), error = %reason, "dead-lettered; acking the delivery");
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({"deadLettered": true, "reason": reason})),
            )
                .into_response()
        }
        Err(e) => {
            error!(error = %e, "could not publish to the dead-letter topic: answering 500 so the message is not lost");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "dead-letter publish failed",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests;
