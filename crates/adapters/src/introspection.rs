//! Opaque access tokens through OAuth 2.0 Token Introspection (RFC 7662): the resource server
//! authenticates with its client credentials (HTTP Basic, RFC 6749 §2.3.1); answers are
//! cached, keyed by the token's SHA-256, until the token's `exp` and at most
//! `auth.introspection_cache_seconds`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use esignsp_domain::auth::{Caller, InvalidTokenReason, TokenRejection};
use esignsp_domain::ClientId;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::jwks::{http_client, read_bounded};

/// Largest introspection answer read, in bytes.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Most cached answers; older ones are dropped beyond it.
pub const MAX_CACHED: usize = 10_000;

/// The introspection client.
pub struct Introspector {
    client: reqwest::Client,
    url: String,
    client_id: String,
    client_secret: String,
    cache_for: Duration,
    issuer: String,
    audience: Vec<String>,
    required_scope: String,
    trusted_clients: HashSet<String>,
    cache: Mutex<HashMap<[u8; 32], (Instant, Result<Caller, TokenRejection>)>>,
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
    /// `auth.introspection_cache_seconds`.
    pub cache_for: Duration,
    /// `auth.issuer`: an answer's `iss`, when present, must equal it.
    pub issuer: String,
    /// `auth.audience`: an answer's `aud`, when present, must contain one.
    pub audience: Vec<String>,
    /// `auth.required_scope`.
    pub required_scope: String,
    /// `auth.trusted_clients`.
    pub trusted_clients: HashSet<String>,
}

impl Introspector {
    /// An introspection client.
    #[must_use]
    pub fn new(settings: IntrospectionSettings) -> Self {
        Self {
            client: http_client(),
            url: settings.url,
            client_id: settings.client_id,
            client_secret: settings.client_secret,
            cache_for: settings.cache_for,
            issuer: settings.issuer,
            audience: settings.audience,
            required_scope: settings.required_scope,
            trusted_clients: settings.trusted_clients,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Introspects `token` (or answers from the cache).
    ///
    /// # Errors
    /// [`InvalidTokenReason::Inactive`] for an inactive, expired or foreign token;
    /// [`InvalidTokenReason::Malformed`] for an answer with a member of the wrong JSON type
    /// (RFC 7662 §2.2: e.g. `exp` not a number, `scope` not a string);
    /// [`TokenRejection::InsufficientScope`]; [`TokenRejection::Unavailable`] when the
    /// authorization server cannot be reached or refuses our credentials.
    pub async fn introspect(&self, token: &str) -> Result<Caller, TokenRejection> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Ok(cache) = self.cache.lock() {
            if let Some((until, answer)) = cache.get(&key) {
                if Instant::now() < *until {
                    return answer.clone();
                }
            }
        }
        let (answer, lifetime) = self.ask(token).await?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED {
                let now = Instant::now();
                cache.retain(|_, (until, _)| *until > now);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
            }
            cache.insert(key, (Instant::now() + lifetime.min(self.cache_for), answer.clone()));
        }
        answer
    }

    async fn ask(&self, token: &str) -> Result<(Result<Caller, TokenRejection>, Duration), TokenRejection> {
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

    fn judge(&self, answer: &Value) -> (Result<Caller, TokenRejection>, Duration) {
        let inactive = (Err(TokenRejection::Invalid(InvalidTokenReason::Inactive)), self.cache_for);
        if answer["active"] != Value::Bool(true) {
            return inactive;
        }
        let mistyped = answer.as_object().map_or(Some("the answer"), crate::claims::first_mistyped);
        if let Some(member) = mistyped {
            // RFC 7662 §2.2 types each member; one of the wrong type is never read as absent.
            tracing::warn!(member, "refused an introspection answer with a member of the wrong JSON type");
            return (Err(TokenRejection::Invalid(InvalidTokenReason::Malformed)), self.cache_for);
        }
        let now = jsonwebtoken::get_current_timestamp() as f64;
        let lifetime = match answer["exp"].as_f64() {
            Some(exp) if exp <= now => return inactive,
            Some(exp) => Duration::try_from_secs_f64(exp - now).unwrap_or(self.cache_for),
            None => self.cache_for,
        };
        if answer["iss"].as_str().is_some_and(|iss| iss != self.issuer) {
            return inactive;
        }
        let aud_ok = match &answer["aud"] {
            Value::Null => true,
            Value::String(a) => self.audience.contains(a),
            Value::Array(a) => a.iter().any(|v| v.as_str().is_some_and(|s| self.audience.iter().any(|x| x == s))),
            _ => false,
        };
        if !aud_ok {
            return inactive;
        }
        let client =
            answer["client_id"].as_str().or_else(|| answer["sub"].as_str()).and_then(|c| ClientId::parse(c).ok());
        let Some(client_id) = client else {
            return (Err(TokenRejection::Invalid(InvalidTokenReason::MissingClaim)), lifetime);
        };
        let has_scope = answer["scope"].as_str().is_some_and(|s| s.split(' ').any(|t| t == self.required_scope));
        if !has_scope {
            return (Err(TokenRejection::InsufficientScope), lifetime);
        }
        let trusted = self.trusted_clients.contains(client_id.as_str());
        (Ok(Caller { client_id, trusted }), lifetime)
    }
}
