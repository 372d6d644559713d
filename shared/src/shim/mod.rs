//! The HTTP shim every Cloud Run function runs (DESIGN §2, §8, §9): it serves one handler
//! on `$PORT`, in the spirit of `lambda_http::run`. It verifies the caller's OIDC token,
//! turns a Cloud Scheduler request or a Pub/Sub push envelope into an [`Invocation`], and
//! maps the handler's outcome to the status Pub/Sub and Scheduler act on: success → 200;
//! retryable → 503 and systemic → 500 (both retried); permanent, or a message that cannot
//! be decoded → published to the dead-letter topic with its reason, then acked with 200.

mod envelope;
mod token;

pub use envelope::{PushMessage, decode_push};
pub use token::{TokenCheck, TokenError, TokenVerifier};

use crate::error::{ErrorClass, PortResult};
use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tracing::{Instrument, error, info, warn};

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
        })
    }
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
        (Some(p), false) => format!("projects/{p}/traces/{raw}"),
        _ => raw.to_string(),
    }
}

async fn invoke(State(state): State<Arc<ShimState>>, headers: HeaderMap, body: Bytes) -> Response {
    let trace = trace_of(&headers, state.config.project.as_deref());
    let span = tracing::info_span!(
        "request",
        function = %state.config.function,
        trace = %trace,
        case_key = tracing::field::Empty
    );
    async move {
        if let Some(verifier) = &state.verifier {
            let token = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let Some(token) = token else {
                warn!("request without a bearer token: refused");
                return (StatusCode::UNAUTHORIZED, "missing bearer token").into_response();
            };
            if let Err(e) = verifier.verify(token).await {
                warn!(error = %e, "request with an invalid token: refused");
                return (StatusCode::UNAUTHORIZED, "invalid token").into_response();
            }
        }
        let invocation = if looks_like_push(&body) {
            match decode_push(&body) {
                Ok(m) => Invocation::Push(m),
                Err(reason) => {
                    error!(error = %reason, "undecodable push body");
                    let message = PushMessage::undecodable(&body);
                    return dead_letter(&state, &message, ErrorClass::Permanent, &reason).await;
                }
            }
        } else {
            Invocation::Scheduled
        };
        let case_key = match &invocation {
            Invocation::Push(m) => m.attributes.get("case_key").cloned().unwrap_or_default(),
            Invocation::Scheduled => String::new(),
        };
        if !case_key.is_empty() {
            // Every line logged while this delivery runs names its case (DESIGN §8).
            tracing::Span::current().record("case_key", case_key.as_str());
        }
        match (state.handler)(invocation.clone()).await {
            Ok(report) => (StatusCode::OK, axum::Json(report)).into_response(),
            Err(e) => match (e.class, &invocation) {
                (ErrorClass::Permanent, Invocation::Push(m)) => {
                    error!(case_key = %case_key, class = e.class.as_str(), error = %e.message, "permanent failure: dead-lettering the message");
                    dead_letter(&state, m, e.class, &e.message).await
                }
                (ErrorClass::Systemic, _) | (ErrorClass::Permanent, Invocation::Scheduled) => {
                    error!(case_key = %case_key, class = e.class.as_str(), error = %e.message, "failed");
                    (StatusCode::INTERNAL_SERVER_ERROR, e.message).into_response()
                }
                (ErrorClass::Retryable, _) => {
                    warn!(case_key = %case_key, class = e.class.as_str(), error = %e.message, "failed; will be retried");
                    (StatusCode::SERVICE_UNAVAILABLE, e.message).into_response()
                }
            },
        }
    }
    .instrument(span)
    .await
}

fn looks_like_push(body: &[u8]) -> bool {
    // Scheduler bodies are empty or whatever the job sends; a push envelope is JSON with a
    // `message` or `subscription` key. Anything else aimed at a push service still is
    // treated as a (malformed) push, so it is dead-lettered rather than silently run.
    let text = String::from_utf8_lossy(body);
    text.contains("\"message\"") || text.contains("\"subscription\"")
}

async fn dead_letter(
    state: &ShimState,
    message: &PushMessage,
    class: ErrorClass,
    reason: &str,
) -> Response {
    let Some(sink) = &state.dead_letters else {
        // No dead-letter topic configured: never ack what was not kept.
        error!(error = %reason, "no dead-letter topic configured: answering 500 so the message is not lost");
        return (StatusCode::INTERNAL_SERVER_ERROR, reason.to_string()).into_response();
    };
    match sink.dead_letter(message, class, reason).await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"deadLettered": true, "reason": reason})),
        )
            .into_response(),
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
