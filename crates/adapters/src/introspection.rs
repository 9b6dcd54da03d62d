//! Opaque access tokens through OAuth 2.0 Token Introspection (RFC 7662): the resource server
//! authenticates with its client credentials (HTTP Basic, RFC 6749 §2.3.1), and an answer is
//! judged here: active, typed as RFC 7662 §2.2 says, unexpired, of our issuer and audience.
//! What the answer's claims make of the caller is `claims::caller`'s, as for a JWT;
//! how long an answer is kept (until the token's `exp`, at most
//! `auth.introspection_cache_seconds`) is said by `Introspection::cache_for` and kept by
//! the verifier's answer cache (`jwt`).

use std::time::Duration;

use esignsp_domain::auth::{InvalidTokenReason, TokenRejection};
use serde_json::{Map, Value};

use crate::http::{self, read_bounded};

/// Largest introspection answer read, in bytes.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The introspection client.
pub struct Introspector {
    client: reqwest::Client,
    url: String,
    client_id: String,
    client_secret: String,
    cache_for: Duration,
    issuer: String,
    audience: Vec<String>,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector").field("url", &self.url).finish_non_exhaustive()
    }
}

/// What the introspector checks.
#[derive(Debug, Clone)]
pub struct IntrospectionSettings {
    /// `auth.introspection_url`.
    pub url: String,
    /// `auth.introspection_client_id`.
    pub client_id: String,
    /// `auth.introspection_client_secret`.
    pub client_secret: String,
    /// `auth.introspection_cache_seconds`: the longest an answer is kept.
    pub cache_for: Duration,
    /// `auth.issuer`: an answer's `iss`, when present, must equal it.
    pub issuer: String,
    /// `auth.audience`: an answer's `aud`, when present, must contain one.
    pub audience: Vec<String>,
}

/// A judged introspection answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Introspection {
    /// The claims of an active token of ours; else why the token is refused:
    /// [`InvalidTokenReason::Inactive`] for an inactive, expired or foreign token,
    /// [`InvalidTokenReason::Malformed`] for an answer with a member of the wrong JSON type.
    pub(crate) claims: Result<Map<String, Value>, InvalidTokenReason>,
    /// How long this answer may be kept: until the token's `exp`, at most
    /// `auth.introspection_cache_seconds` (an inactive or malformed answer: the latter).
    pub(crate) cache_for: Duration,
}

impl Introspector {
    /// An introspection client.
    #[must_use]
    pub fn new(settings: IntrospectionSettings) -> Self {
        Self {
            client: http::client(),
            url: settings.url,
            client_id: settings.client_id,
            client_secret: settings.client_secret,
            cache_for: settings.cache_for,
            issuer: settings.issuer,
            audience: settings.audience,
        }
    }

    /// Introspects `token` and judges the answer.
    ///
    /// # Errors
    /// [`TokenRejection::Unavailable`] when the authorization server cannot be reached,
    /// refuses our credentials or answers no JSON: no answer to keep.
    pub(crate) async fn introspect(&self, token: &str) -> Result<Introspection, TokenRejection> {
        let response = self
            .client
            .post(&self.url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e.without_url(), "introspection endpoint unreachable");
                TokenRejection::Unavailable
            })?;
        if !response.status().is_success() {
            tracing::warn!(status = %response.status(), "introspection endpoint refused the request");
            return Err(TokenRejection::Unavailable);
        }
        let body = read_bounded(response, MAX_ANSWER_BYTES).await.map_err(|_| TokenRejection::Unavailable)?;
        let answer: Value = serde_json::from_slice(&body).map_err(|_| TokenRejection::Unavailable)?;
        Ok(self.judge(&answer))
    }

    fn judge(&self, answer: &Value) -> Introspection {
        let refused = |reason, cache_for| Introspection { claims: Err(reason), cache_for };
        let inactive = refused(InvalidTokenReason::Inactive, self.cache_for);
        let Some(claims) = answer.as_object().filter(|a| a.get("active") == Some(&Value::Bool(true))) else {
            return inactive;
        };
        if let Some(member) = crate::claims::first_mistyped(claims) {
            // RFC 7662 §2.2 types each member; one of the wrong type is never read as absent.
            tracing::warn!(member, "refused an introspection answer with a member of the wrong JSON type");
            return refused(InvalidTokenReason::Malformed, self.cache_for);
        }
        let now = jsonwebtoken::get_current_timestamp() as f64;
        let cache_for = match claims.get("exp").and_then(Value::as_f64) {
            Some(exp) if exp <= now => return inactive,
            Some(exp) => Duration::try_from_secs_f64(exp - now).unwrap_or(self.cache_for).min(self.cache_for),
            None => self.cache_for,
        };
        if claims.get("iss").and_then(Value::as_str).is_some_and(|iss| iss != self.issuer) {
            return inactive;
        }
        let aud_ok = match claims.get("aud") {
            None => true,
            Some(Value::String(a)) => self.audience.contains(a),
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str().is_some_and(|s| self.audience.iter().any(|x| x == s))),
            Some(_) => false,
        };
        if !aud_ok {
            return inactive;
        }
        Introspection { claims: Ok(claims.clone()), cache_for }
    }
}
