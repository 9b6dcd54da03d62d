//! Access-token verification (RFC 6750, RFC 9068, RFC 8725, RFC 7662): the verifier that
//! combines the sources of a caller, and the development signing key used by `esignsp token`.
//!
//! A JWT is checked (`jwt::check`) against the static keys of `auth.public_key_files` and the
//! development key ([`crate::keys`]) plus, when configured, the issuer's JWK Set
//! ([`JwksSource`]), refetched once for an unknown `kid`; a token that is not a JWT is
//! introspected ([`Introspector`]) when an introspection endpoint is configured. Both make
//! their [`Caller`] with `claims::caller`. Each key is bound to the algorithms of its
//! family (or to its JWK `alg`), intersected with `auth.algorithms`, so an RSA key never
//! verifies an HMAC token and `none` is never accepted. A claim of the wrong JSON type is
//! refused as malformed: dates are numbers, `iss`, `sub`, `client_id`, `jti` strings, `aud` a
//! string or strings, `scope` one string (RFC 7519 §4.1, RFC 9068 §2.2, RFC 8693 §4.2).
//!
//! Answers are kept in one moka cache keyed by the token's SHA-256, each entry for its own
//! time: a JWT that verified until its `exp` and at most [`VERIFIED_CACHE_SECONDS`]; an
//! introspection answer, active or not, until the token's `exp` and at most
//! `auth.introspection_cache_seconds`. Refusals of a JWT and unreachable servers are not kept.
//! Concurrent requests with the same new token share one verification (single flight).
//!
//! Signatures are checked by jsonwebtoken with its `aws_lc_rs` crypto back end (chosen in
//! the workspace `Cargo.toml`; exactly one back end must be enabled).

mod check;
mod dev;

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use esignsp_domain::auth::{Caller, InvalidTokenReason, TokenRejection};
use esignsp_domain::ports::AccessTokenVerifier;
use jsonwebtoken::Algorithm;
use moka::future::Cache;
use serde_json::{Map, Value};

pub use self::check::Profile;
use self::check::{JwtChecks, TokenHeader};
pub use self::dev::{DevSigningKey, DevTokenRequest};
use crate::claims::{self, ClientClaims};
use crate::introspection::Introspector;
use crate::jwks::JwksSource;
use crate::keys::VerificationKey;

/// The asymmetric algorithms this server can verify (RFC 7518 §3; RFC 8037 for EdDSA).
pub const ASYMMETRIC_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Parses one name of `auth.algorithms`.
///
/// # Errors
/// A message when the name is unknown or is an HMAC or `none` algorithm, which this
/// server never accepts (RFC 8725 §3.1, §3.2).
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    match Algorithm::from_str(name) {
        Ok(alg) if ASYMMETRIC_ALGORITHMS.contains(&alg) => Ok(alg),
        Ok(_) => Err(format!("{name} is symmetric; only asymmetric algorithms are allowed")),
        Err(_) => Err(format!("unknown algorithm {name:?}")),
    }
}

/// What a verifier checks (the `[auth]` configuration).
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// Exact `iss` value (`auth.issuer`).
    pub issuer: String,
    /// Accepted `aud` values (`auth.audience`): the token's `aud` must contain one.
    pub audience: Vec<String>,
    /// Allowed signature algorithms (`auth.algorithms`).
    pub algorithms: Vec<Algorithm>,
    /// Clock skew allowed on `exp`, `nbf`, `iat`, in seconds (`auth.leeway_seconds`).
    pub leeway_seconds: u64,
    /// The scope token every call needs (`auth.required_scope`).
    pub required_scope: String,
    /// Claim strictness (`auth.profile`).
    pub profile: Profile,
    /// Clients that may act on every process (`auth.trusted_clients`).
    pub trusted_clients: HashSet<String>,
}

/// Verifies access tokens: JWTs against static keys (`auth.public_key_files`) and the
/// issuer's JWK Set ([`JwksSource`]), opaque tokens by introspection ([`Introspector`]).
#[derive(Clone)]
pub struct JwtVerifier {
    checks: JwtChecks,
    required_scope: String,
    trusted_clients: HashSet<String>,
    keys: Vec<VerificationKey>,
    jwks: Option<Arc<JwksSource>>,
    introspection: Option<Arc<Introspector>>,
    answers: Cache<[u8; 32], Answer>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("checks", &self.checks)
            .field("required_scope", &self.required_scope)
            .field("trusted_clients", &self.trusted_clients)
            .field("keys", &self.keys)
            .field("jwks", &self.jwks)
            .field("introspection", &self.introspection)
            .finish_non_exhaustive()
    }
}

/// Longest time a verified JWT is remembered (it is never remembered past its `exp`).
pub const VERIFIED_CACHE_SECONDS: u64 = 300;
/// Most remembered answers (verified JWTs and introspection answers together).
pub const ANSWER_CACHE_ENTRIES: u64 = 20_000;

/// What a token was found to be, kept for `keep_for`.
#[derive(Debug, Clone)]
struct Answer {
    caller: Result<Caller, TokenRejection>,
    keep_for: Duration,
}

/// An answer expires after its own `keep_for`.
struct KeepFor;

impl moka::Expiry<[u8; 32], Answer> for KeepFor {
    fn expire_after_create(&self, _: &[u8; 32], answer: &Answer, _: Instant) -> Option<Duration> {
        Some(answer.keep_for)
    }

    fn expire_after_update(&self, _: &[u8; 32], answer: &Answer, _: Instant, _: Option<Duration>) -> Option<Duration> {
        Some(answer.keep_for)
    }
}

impl JwtVerifier {
    /// A verifier for static `keys`.
    #[must_use]
    pub fn new(settings: VerifierSettings, keys: Vec<VerificationKey>) -> Self {
        let checks = JwtChecks {
            issuer: settings.issuer,
            audience: settings.audience,
            algorithms: settings.algorithms,
            leeway_seconds: settings.leeway_seconds,
            profile: settings.profile,
        };
        Self {
            checks,
            required_scope: settings.required_scope,
            trusted_clients: settings.trusted_clients,
            keys,
            jwks: None,
            introspection: None,
            answers: Cache::builder().max_capacity(ANSWER_CACHE_ENTRIES).expire_after(KeepFor).build(),
        }
    }

    /// Also trusts the keys of the issuer's JWK Set.
    #[must_use]
    pub fn with_jwks(mut self, source: Arc<JwksSource>) -> Self {
        self.jwks = Some(source);
        self
    }

    /// Introspects tokens that are not JWTs (RFC 7662).
    #[must_use]
    pub fn with_introspection(mut self, introspector: Arc<Introspector>) -> Self {
        self.introspection = Some(introspector);
        self
    }

    /// Whether any static verification key is loaded.
    #[must_use]
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Fetches the issuer's JWK Set now, if one is configured, so that readiness reflects it.
    pub async fn warm_up(&self) {
        if let Some(jwks) = &self.jwks {
            jwks.keys().await;
        }
    }

    /// Verifies a token with every source configured; a token answered before (and not
    /// expired) answers from the cache, and concurrent requests with one token share one
    /// verification.
    async fn verify_cached(&self, token: &str) -> Result<Caller, TokenRejection> {
        use sha2::Digest;
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let answer = self.answers.try_get_with(key, self.answer(token)).await.map_err(|e| (*e).clone())?;
        answer.caller
    }

    /// What `token` is, and for how long that may be kept; `Err` answers are not kept.
    async fn answer(&self, token: &str) -> Result<Answer, TokenRejection> {
        let profile = self.checks.profile;
        match (check::parse_header(token, profile), &self.introspection) {
            (Err(InvalidTokenReason::Malformed), Some(introspector)) => {
                let answer = introspector.introspect(token).await?;
                let caller = answer
                    .claims
                    .map_err(TokenRejection::Invalid)
                    .and_then(|claims| self.caller(&claims, ClientClaims::INTROSPECTION));
                Ok(Answer { caller, keep_for: answer.cache_for })
            }
            (Err(reason), _) => Err(TokenRejection::Invalid(reason)),
            (Ok(header), _) => {
                let (claims, exp) = self.verify_jwt(token, &header).await?;
                let caller = self.caller(&claims, profile.client_claims())?;
                let now = jsonwebtoken::get_current_timestamp();
                let until = exp.min(now + VERIFIED_CACHE_SECONDS);
                Ok(Answer { caller: Ok(caller), keep_for: Duration::from_secs(until.saturating_sub(now)) })
            }
        }
    }

    /// Checks a JWT with the static keys and the issuer's; when its `kid` is unknown, once
    /// more after refetching the issuer's JWK Set (rate-limited there).
    async fn verify_jwt(&self, token: &str, header: &TokenHeader) -> Result<(Map<String, Value>, u64), TokenRejection> {
        let Some(jwks) = &self.jwks else {
            return self.checks.verify(token, header, &self.keys.iter().collect::<Vec<_>>());
        };
        let fetched = jwks.keys().await;
        let keys: Vec<&VerificationKey> = self.keys.iter().chain(fetched.iter()).collect();
        if keys.is_empty() {
            return Err(TokenRejection::Unavailable);
        }
        match self.checks.verify(token, header, &keys) {
            Err(TokenRejection::Invalid(InvalidTokenReason::UnknownKey)) => {
                let refetched = jwks.refresh_for_unknown_kid().await;
                let keys: Vec<&VerificationKey> = self.keys.iter().chain(refetched.iter()).collect();
                self.checks.verify(token, header, &keys)
            }
            other => other,
        }
    }

    fn caller(&self, claims: &Map<String, Value>, names: ClientClaims) -> Result<Caller, TokenRejection> {
        claims::caller(claims, names, &self.required_scope, &self.trusted_clients)
    }

    /// Checks a JWT with the static keys only, without the cache.
    #[cfg(test)]
    fn verify_sync(&self, token: &str) -> Result<Caller, TokenRejection> {
        let header = check::parse_header(token, self.checks.profile).map_err(TokenRejection::Invalid)?;
        let (claims, _) = self.checks.verify(token, &header, &self.keys.iter().collect::<Vec<_>>())?;
        self.caller(&claims, self.checks.profile.client_claims())
    }
}

#[async_trait]
impl AccessTokenVerifier for JwtVerifier {
    async fn verify(&self, token: &str) -> Result<Caller, TokenRejection> {
        self.verify_cached(token).await
    }

    fn ready(&self) -> bool {
        self.has_keys() || self.introspection.is_some() || self.jwks.as_ref().is_some_and(|j| j.has_cached_keys())
    }
}

#[cfg(test)]
mod tests;
