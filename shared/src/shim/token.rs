//! OIDC token checks for every request (docs/ARCHITECTURE.md#security): an RS256 signature by one of Google's
//! keys, Google's issuer, this service as audience, an unexpired token, and a verified
//! `email` that is the one invoker service account the function accepts.
//!
//! This is our own verifier (`jsonwebtoken` plus the JWKS cache below), not
//! google-cloud-auth's: that one panics on a token without `email` or `email_verified`
//! (which Google mints, e.g. `generateIdToken` without `includeEmail`) and, under
//! `panic = "abort"`, takes the whole instance down; and its key cache answers concurrent
//! requests "failed to obtain lock" while one fetch is under way (issue 12, items 1–2).
//! Every way a token can be wrong is a [`TokenError`] here, never a panic.

use crate::logging::capped;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Where Google publishes the keys that sign its ID tokens.
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// The `iss` of Google-signed ID tokens; both spellings occur.
const ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

/// Clock skew allowed on `exp` (as google-cloud-auth allowed before).
const LEEWAY_SECS: u64 = 10;

/// A Google ID token is about 1 KB; anything much longer is not one, and is refused before
/// any decoding work is spent on it.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Google's JWKS is about 2 KB: a body past this is not a key set we want to parse.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Keys kept from one key set (Google publishes two or three).
const MAX_KEYS: usize = 32;

/// One JWKS request, connect to last byte. Waiting requests wait at most this long too.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCheck {
    /// The service's URL, as the trigger's OIDC token names it.
    pub audience: String,
    /// The only service account allowed to call.
    pub invoker_email: String,
    /// Where the signing keys are (default: Google's).
    pub jwks_url: Option<String>,
}

/// Why a request's token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The caller's token is wrong: 401.
    #[error("token rejected: {0}")]
    Rejected(String),
    /// The signing keys could not be had, so no token can be checked now: the caller is
    /// not at fault and should retry (503).
    #[error("token not checked: signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

impl TokenError {
    fn rejected(reason: impl Into<String>) -> Self {
        TokenError::Rejected(reason.into())
    }
}

/// How long the key set and what it lacks are trusted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CachePolicy {
    /// When the key set's response says nothing about its lifetime.
    pub default_ttl: Duration,
    /// Bounds on the lifetime a response claims: a `max-age=0` must not turn every
    /// request into a fetch, nor a huge one keep a rotated-out key forever.
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    /// A `kid` missing from a key set fetched less than this long ago is refused without a
    /// new fetch. This is the negative cache: it bounds fetches to one per period whatever
    /// kids callers invent, while a key Google has just published is found within it.
    pub unknown_kid_ttl: Duration,
    /// After a failed fetch, requests are refused (503) for this long without fetching
    /// again, so a key server outage is not answered with a fetch per request.
    pub failure_backoff: Duration,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy {
            default_ttl: Duration::from_secs(3600),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            unknown_kid_ttl: Duration::from_secs(60),
            failure_backoff: Duration::from_secs(5),
        }
    }
}

/// One fetched key set.
struct KeySet {
    by_kid: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Instant,
    expires_at: Instant,
}

#[derive(Default)]
struct CacheState {
    keys: Option<KeySet>,
    last_failure: Option<(Instant, String)>,
}

/// What the cache can say about a `kid` without fetching.
enum Lookup {
    Found(Arc<DecodingKey>),
    Unknown,
    Unavailable(String),
    Fetch,
}

impl CacheState {
    fn lookup(&self, kid: &str, now: Instant, policy: &CachePolicy) -> Lookup {
        if let Some(keys) = &self.keys
            && now < keys.expires_at
        {
            if let Some(key) = keys.by_kid.get(kid) {
                return Lookup::Found(key.clone());
            }
            if now.duration_since(keys.fetched_at) < policy.unknown_kid_ttl {
                return Lookup::Unknown;
            }
        }
        if let Some((at, why)) = &self.last_failure
            && now.duration_since(*at) < policy.failure_backoff
        {
            return Lookup::Unavailable(why.clone());
        }
        Lookup::Fetch
    }
}

/// The signing keys, fetched at most once at a time: a request that finds the cache cold
/// or stale waits for the one fetch under way (a queue on an async mutex, not a try-lock
/// that fails), then reads what it brought. The state itself sits behind a plain mutex held
/// only for a lookup or an update, never across an await.
struct JwksCache {
    url: String,
    client: Result<reqwest::Client, String>,
    policy: CachePolicy,
    state: std::sync::Mutex<CacheState>,
    fetching: tokio::sync::Mutex<()>,
    fetches: AtomicUsize,
}

impl JwksCache {
    fn new(url: String, policy: CachePolicy) -> Self {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client for the key set: {e}"));
        JwksCache {
            url,
            client,
            policy,
            state: std::sync::Mutex::new(CacheState::default()),
            fetching: tokio::sync::Mutex::new(()),
            fetches: AtomicUsize::new(0),
        }
    }

    fn lookup(&self, kid: &str) -> Lookup {
        // Poisoning needs a panic while the lock is held; no code under it can panic, and
        // the state is consistent after every statement anyway.
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.lookup(kid, Instant::now(), &self.policy)
    }

    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, TokenError> {
        match self.lookup(kid) {
            Lookup::Fetch => {}
            settled => return settle(settled, kid),
        }
        // One fetch at a time; the others queue here. If the fetching request is dropped
        // (its caller went away), the guard goes with it and the next in line fetches.
        let _turn = self.fetching.lock().await;
        // Whoever held the turn before may have fetched what we need (or just failed).
        match self.lookup(kid) {
            Lookup::Fetch => {}
            settled => return settle(settled, kid),
        }
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let fetched = self.fetch().await;
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match fetched {
            Ok((by_kid, ttl)) => {
                let found = by_kid.get(kid).cloned();
                state.keys = Some(KeySet {
                    by_kid,
                    fetched_at: now,
                    expires_at: now + ttl,
                });
                state.last_failure = None;
                found.ok_or_else(|| unknown_kid(kid))
            }
            Err(why) => {
                tracing::error!(jwks_url = %self.url, error = %why, "could not fetch the token signing keys");
                state.last_failure = Some((now, why.clone()));
                Err(TokenError::KeysUnavailable(why))
            }
        }
    }

    async fn fetch(&self) -> Result<(HashMap<String, Arc<DecodingKey>>, Duration), String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let url = &self.url;
        let mut response = client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url} answered HTTP {}", response.status()));
        }
        let ttl = freshness(response.headers(), &self.policy);
        if response
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(format!(
                "GET {url}: the key set is over {MAX_JWKS_BYTES} bytes"
            ));
        }
        // Read chunk by chunk so a server that lies about (or omits) its length still
        // cannot make us buffer more than the cap.
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: reading the key set: {e}"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!(
                    "GET {url}: the key set is over {MAX_JWKS_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let keys = parse_jwks(&body).map_err(|e| format!("GET {url}: {e}"))?;
        Ok((keys, ttl))
    }
}

fn settle(lookup: Lookup, kid: &str) -> Result<Arc<DecodingKey>, TokenError> {
    match lookup {
        Lookup::Found(key) => Ok(key),
        Lookup::Unavailable(why) => Err(TokenError::KeysUnavailable(why)),
        Lookup::Unknown | Lookup::Fetch => Err(unknown_kid(kid)),
    }
}

fn unknown_kid(kid: &str) -> TokenError {
    TokenError::rejected(format!(
        "token is signed with key `{}`, which is not one of the issuer's keys",
        capped(kid)
    ))
}

/// The RS256 signing keys of a JWKS body, by `kid`. Keys of other types or uses are
/// skipped rather than failing the set, as a key set may carry keys we never accept.
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
    #[derive(serde::Deserialize)]
    struct RawSet {
        keys: Vec<Value>,
    }
    let raw: RawSet =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
    let mut keys = HashMap::new();
    for value in raw.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let (Some(kid), AlgorithmParameters::RSA(_)) = (&jwk.common.key_id, &jwk.algorithm) else {
            continue;
        };
        let rs256 = jwk
            .common
            .key_algorithm
            .is_none_or(|a| a == jsonwebtoken::jwk::KeyAlgorithm::RS256);
        let signing = jwk
            .common
            .public_key_use
            .as_ref()
            .is_none_or(|u| *u == PublicKeyUse::Signature);
        if !rs256 || !signing || keys.len() >= MAX_KEYS {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            keys.insert(kid.clone(), Arc::new(key));
        }
    }
    if keys.is_empty() {
        return Err("the key set has no RS256 signing key".into());
    }
    Ok(keys)
}

/// How long a key set response may be used: its `Cache-Control: max-age` less its `Age`,
/// within the policy's bounds; `no-store`/`no-cache` count as the shortest lifetime.
pub(crate) fn freshness(headers: &reqwest::header::HeaderMap, policy: &CachePolicy) -> Duration {
    let directives: Vec<String> = headers
        .get_all(reqwest::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .collect();
    if directives
        .iter()
        .any(|d| d == "no-store" || d == "no-cache")
    {
        return policy.min_ttl;
    }
    let max_age = directives.iter().find_map(|d| {
        d.strip_prefix("max-age=")
            .and_then(|n| n.trim_matches('"').parse::<u64>().ok())
    });
    let Some(max_age) = max_age else {
        return policy.default_ttl.clamp(policy.min_ttl, policy.max_ttl);
    };
    let age = headers
        .get(reqwest::header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_secs(max_age.saturating_sub(age)).clamp(policy.min_ttl, policy.max_ttl)
}

/// Checks the ID tokens of a function's callers.
pub struct TokenVerifier {
    check: TokenCheck,
    keys: JwksCache,
}

impl TokenVerifier {
    pub fn new(check: TokenCheck) -> Self {
        Self::with_policy(check, CachePolicy::default())
    }

    pub(crate) fn with_policy(check: TokenCheck, policy: CachePolicy) -> Self {
        let url = check
            .jwks_url
            .clone()
            .unwrap_or_else(|| GOOGLE_JWKS_URL.to_string());
        TokenVerifier {
            check,
            keys: JwksCache::new(url, policy),
        }
    }

    /// How many times the key set was fetched (for tests and their assertions).
    pub fn key_fetches(&self) -> usize {
        self.keys.fetches.load(Ordering::SeqCst)
    }

    /// Accepts `token` only if every check passes; the error names the first that failed.
    pub async fn verify(&self, token: &str) -> Result<(), TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::rejected(format!(
                "token is {} bytes, over the {MAX_TOKEN_BYTES}-byte limit",
                token.len()
            )));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            TokenError::rejected(format!(
                "not a signed JWT: {}",
                capped(&describe(&e, "header"))
            ))
        })?;
        // Only RS256, whatever the header asks: `none`, HMAC with a public key as secret
        // and the like never reach a key.
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::rejected(format!(
                "token is signed with {:?}; only RS256 is accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| TokenError::rejected("token header has no `kid`"))?;
        let key = self.keys.key(&kid).await?;

        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&ISSUERS);
        validation.set_audience(&[self.check.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<serde_json::Map<String, Value>>(
            token,
            key.as_ref(),
            &validation,
        )
        .map_err(|e| TokenError::rejected(capped(&describe(&e, "claims")).into_owned()))?
        .claims;

        // Looked up, never indexed: a missing claim is a refusal, not a panic.
        let email = match claims.get("email") {
            Some(Value::String(email)) => email,
            Some(_) => return Err(TokenError::rejected("the `email` claim is not a string")),
            None => {
                return Err(TokenError::rejected(
                    "token has no `email` claim (mint it with includeEmail / format=full)",
                ));
            }
        };
        match claims.get("email_verified") {
            Some(Value::Bool(true)) => {}
            Some(other) => {
                return Err(TokenError::rejected(format!(
                    "the `email_verified` claim is {}, not true",
                    capped(&other.to_string())
                )));
            }
            None => return Err(TokenError::rejected("token has no `email_verified` claim")),
        }
        // E-mail addresses of service accounts are lower case, but a configured invoker
        // may not be: the domain part is case-insensitive anyway.
        if !email.eq_ignore_ascii_case(&self.check.invoker_email) {
            return Err(TokenError::rejected(format!(
                "token is for `{}`, not the invoker this function accepts",
                capped(email)
            )));
        }
        Ok(())
    }
}

/// A sentence for each of jsonwebtoken's errors a caller's token can cause.
fn describe(e: &jsonwebtoken::errors::Error, part: &str) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidToken => "token is not three base64url parts".into(),
        K::InvalidSignature => "signature does not verify with the issuer's key".into(),
        K::ExpiredSignature => "token has expired".into(),
        K::ImmatureSignature => "token is not valid yet (`nbf`)".into(),
        K::InvalidIssuer => "the issuer (`iss`) is not Google".into(),
        K::InvalidAudience => "the audience (`aud`) is not this service".into(),
        K::MissingRequiredClaim(claim) => format!("token has no `{claim}` claim"),
        K::InvalidClaimFormat(claim) => format!("the `{claim}` claim is malformed"),
        K::InvalidAlgorithm | K::InvalidAlgorithmName | K::UnsupportedAlgorithm => {
            "token is not signed with RS256".into()
        }
        K::Base64(err) => format!("the {part} is not base64url: {err}"),
        K::Json(err) => format!("the {part} is not the expected JSON: {err}"),
        K::Utf8(err) => format!("the {part} is not UTF-8: {err}"),
        other => format!("token cannot be checked: {other:?}"),
    }
}
