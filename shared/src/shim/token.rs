//! OIDC token checks for every request (DESIGN §9): issuer, audience and the one invoker
//! service account a function accepts, with `google-cloud-auth`'s ID-token verifier (Google's
//! keys by default, a configurable key URL for tests).

use google_cloud_auth::credentials::idtoken::verifier::{Builder, Verifier};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCheck {
    /// The service's URL, as the trigger's OIDC token names it.
    pub audience: String,
    /// The only service account allowed to call.
    pub invoker_email: String,
    /// Where the signing keys are (default: Google's).
    pub jwks_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("token rejected: {0}")]
pub struct TokenError(String);

pub struct TokenVerifier {
    verifier: Verifier,
}

impl TokenVerifier {
    pub fn new(check: TokenCheck) -> Self {
        let mut builder = Builder::new([check.audience]).with_email(check.invoker_email);
        if let Some(url) = check.jwks_url {
            builder = builder.with_jwks_url(url);
        }
        TokenVerifier {
            verifier: builder.build(),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<(), TokenError> {
        self.verifier
            .verify(token)
            .await
            .map(|_| ())
            .map_err(|e| TokenError(e.to_string()))
    }
}
