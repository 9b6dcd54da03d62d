//! Verification keys from the issuer's JWK Set (RFC 7517), found at `auth.jwks_url` or through
//! the issuer's metadata (RFC 8414 `/.well-known/oauth-authorization-server`, else OpenID
//! Connect Discovery `/.well-known/openid-configuration`; the metadata's `issuer` must equal
//! the configured issuer exactly).
//!
//! Keys are fresh for the `Cache-Control: max-age` of the answer, bounded to
//! [`MIN_CACHE`]..[`MAX_CACHE`] (default [`DEFAULT_CACHE`]). A token with an unknown `kid`
//! triggers at most one fetch per `auth.jwks_min_refresh_seconds`, shared by every request
//! waiting for it (single flight). A failed refresh keeps the previous keys, which are served
//! past their max-age until a fetch succeeds. Nothing in a token (`jku`, `x5u`, `jwk`, `x5c`)
//! is ever fetched or trusted.
//!
//! The expiry, the rate limit and the single flight are moka's: the last fetch attempt is an
//! entry living `min_refresh` (so [`moka::future::Cache::get_with`] fetches at most once per
//! interval and makes concurrent callers wait for that one fetch), the fetched set an entry
//! expiring at its max-age.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use moka::future::Cache;
use serde_json::Value;

use crate::http::{self, read_bounded};
use crate::keys::{keys_from_jwk_json, VerificationKey};
use crate::redact::redacted_url;

/// Cache lifetime when the answer gives none.
pub const DEFAULT_CACHE: Duration = Duration::from_secs(300);
/// Shortest cache lifetime honoured.
pub const MIN_CACHE: Duration = Duration::from_secs(30);
/// Longest cache lifetime honoured.
pub const MAX_CACHE: Duration = Duration::from_secs(24 * 3600);
/// Largest JWK Set or metadata document read, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Where the JWK Set is.
#[derive(Debug, Clone)]
pub enum JwksLocation {
    /// `auth.jwks_url`.
    Url(String),
    /// The `jwks_uri` of the issuer's metadata.
    Discover {
        /// `auth.issuer`.
        issuer: String,
    },
}

/// The keys of one successful fetch and how long they are fresh.
#[derive(Clone)]
struct KeySet {
    keys: Arc<[VerificationKey]>,
    fresh_for: Duration,
}

/// A fetched key set expires at its own max-age.
struct FreshFor;

impl moka::Expiry<(), KeySet> for FreshFor {
    fn expire_after_create(&self, _: &(), set: &KeySet, _: Instant) -> Option<Duration> {
        Some(set.fresh_for)
    }

    fn expire_after_update(&self, _: &(), set: &KeySet, _: Instant, _: Option<Duration>) -> Option<Duration> {
        Some(set.fresh_for)
    }
}

/// The issuer's keys, fetched and cached.
pub struct JwksSource {
    client: reqwest::Client,
    location: JwksLocation,
    allow_list: Vec<Algorithm>,
    /// The last fetch attempt, successful or not, kept for `min_refresh`: while it is there,
    /// no other fetch starts, and callers during the attempt wait for it.
    attempt: Cache<(), ()>,
    /// The last fetched key set while it is fresh (its max-age).
    fresh: Cache<(), KeySet>,
    /// The last fetched key set, kept past its max-age for when refetching fails.
    kept: RwLock<Arc<[VerificationKey]>>,
    /// Whether a background refresh of stale keys is under way (one at a time).
    refreshing: AtomicBool,
    /// The `jwks_uri` found in the issuer's metadata by the last successful fetch.
    discovered_url: Mutex<Option<String>>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksSource").field("location", &self.location).finish_non_exhaustive()
    }
}

fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    value.split(',').find_map(|d| {
        let (name, seconds) = d.trim().split_once('=')?;
        name.eq_ignore_ascii_case("max-age").then(|| seconds.trim().parse().ok().map(Duration::from_secs))?
    })
}

impl JwksSource {
    /// A source for `location`, keeping keys usable with `allow_list`; an unknown `kid`
    /// refetches at most once per `min_refresh`.
    #[must_use]
    pub fn new(location: JwksLocation, allow_list: Vec<Algorithm>, min_refresh: Duration) -> Self {
        Self {
            client: http::client(),
            location,
            allow_list,
            attempt: Cache::builder().max_capacity(1).time_to_live(min_refresh).build(),
            fresh: Cache::builder().max_capacity(1).expire_after(FreshFor).build(),
            kept: RwLock::new(Arc::new([])),
            refreshing: AtomicBool::new(false),
            discovered_url: Mutex::new(None),
            fetches: AtomicU64::new(0),
        }
    }

    /// How many fetches of the JWK Set were attempted (for tests and metrics).
    #[must_use]
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Whether any key is cached, fresh or stale (readiness).
    #[must_use]
    pub fn has_cached_keys(&self) -> bool {
        !self.kept().is_empty()
    }

    fn kept(&self) -> Arc<[VerificationKey]> {
        Arc::clone(&self.kept.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The current keys: cached ones while fresh. Stale keys are still answered at once while
    /// a refresh runs in the background (a slow authorization server never delays requests
    /// that have keys); only when there is no key at all does the caller wait for a fetch.
    pub async fn keys(self: &Arc<Self>) -> Arc<[VerificationKey]> {
        if let Some(set) = self.fresh.get(&()).await {
            return set.keys;
        }
        let kept = self.kept();
        if kept.is_empty() {
            return self.refresh().await;
        }
        if !self.refreshing.swap(true, Ordering::AcqRel) {
            let source = Arc::clone(self);
            tokio::spawn(async move {
                source.refresh().await;
                source.refreshing.store(false, Ordering::Release);
            });
        }
        kept
    }

    /// Refetches for a token whose `kid` is unknown: at most once per `min_refresh`, one
    /// fetch shared by every concurrent caller.
    pub async fn refresh_for_unknown_kid(&self) -> Arc<[VerificationKey]> {
        self.refresh().await
    }

    /// Fetches unless an attempt was made within `min_refresh` (waiting for one under way),
    /// then answers the keys kept.
    async fn refresh(&self) -> Arc<[VerificationKey]> {
        self.attempt.get_with((), self.fetch_and_keep()).await;
        self.kept()
    }

    async fn fetch_and_keep(&self) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.fetch().await {
            Ok((keys, discovered, cache)) => {
                tracing::info!(keys = keys.len(), "fetched the issuer's JWK Set");
                let keys: Arc<[VerificationKey]> = keys.into();
                *self.kept.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&keys);
                *self.discovered_url.lock().unwrap_or_else(PoisonError::into_inner) = discovered;
                let fresh_for = cache.unwrap_or(DEFAULT_CACHE).clamp(MIN_CACHE, MAX_CACHE);
                self.fresh.insert((), KeySet { keys, fresh_for }).await;
            }
            Err(e) => tracing::warn!(error = %e, kept = self.kept().len(), "fetching the issuer's JWK Set failed"),
        }
    }

    async fn fetch(&self) -> Result<(Vec<VerificationKey>, Option<String>, Option<Duration>), String> {
        let (url, discovered) = match &self.location {
            JwksLocation::Url(url) => (url.clone(), None),
            JwksLocation::Discover { issuer } => {
                let known = self.discovered_url.lock().unwrap_or_else(PoisonError::into_inner).clone();
                let url = match known {
                    Some(url) => url,
                    None => discover_jwks_uri(&self.client, issuer).await?,
                };
                (url.clone(), Some(url))
            }
        };
        let response = http::get(&self.client, &url).await?;
        let cache = max_age(response.headers());
        let body = read_bounded(response, MAX_DOCUMENT_BYTES).await?;
        let keys = keys_from_jwk_json(&body, &self.allow_list)?;
        if keys.is_empty() {
            return Err(format!("{}: no usable signing key", redacted_url(&url)));
        }
        Ok((keys, discovered, cache))
    }
}

/// The metadata URLs of `issuer`: RFC 8414 §3 (well-known part inserted before the path),
/// then OpenID Connect Discovery 1.0 §4 (appended).
#[must_use]
pub fn metadata_urls(issuer: &str) -> Vec<String> {
    let mut urls = Vec::new();
    if let Ok(url) = url_parts(issuer) {
        let (origin, path) = url;
        urls.push(format!("{origin}/.well-known/oauth-authorization-server{path}"));
    }
    urls.push(format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')));
    urls
}

fn url_parts(issuer: &str) -> Result<(String, String), ()> {
    let (scheme, rest) = issuer.split_once("://").ok_or(())?;
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
    Ok((format!("{scheme}://{authority}"), path.trim_end_matches('/').to_owned()))
}

async fn discover_jwks_uri(client: &reqwest::Client, issuer: &str) -> Result<String, String> {
    let mut last_error = String::from("no metadata URL");
    for url in metadata_urls(issuer) {
        let response = match http::get(client, &url).await {
            Ok(response) => response,
            Err(e) => {
                last_error = e;
                continue;
            }
        };
        let body = read_bounded(response, MAX_DOCUMENT_BYTES).await?;
        let metadata: Value =
            serde_json::from_slice(&body).map_err(|e| format!("{}: not JSON: {e}", redacted_url(&url)))?;
        if metadata["issuer"].as_str() != Some(issuer) {
            return Err(format!("{}: the metadata's issuer is not exactly auth.issuer", redacted_url(&url)));
        }
        return metadata["jwks_uri"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{}: no jwks_uri", redacted_url(&url)));
    }
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_follow_rfc8414_then_oidc_discovery() {
        assert_eq!(
            metadata_urls("https://as.example/tenant/1"),
            [
                "https://as.example/.well-known/oauth-authorization-server/tenant/1",
                "https://as.example/tenant/1/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            metadata_urls("http://127.0.0.1:9000"),
            [
                "http://127.0.0.1:9000/.well-known/oauth-authorization-server",
                "http://127.0.0.1:9000/.well-known/openid-configuration"
            ]
        );
    }

    /// A server that answers every request 500, counting them.
    async fn failing_server(hits: Arc<AtomicU64>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                hits.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(b"HTTP/1.1 500 X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
            }
        });
        url
    }

    #[tokio::test]
    async fn stale_keys_are_served_at_once_while_refreshes_fail() {
        let hits = Arc::new(AtomicU64::new(0));
        let url = failing_server(Arc::clone(&hits)).await;
        let jwk =
            br#"{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed"}"#;
        let keys: Arc<[VerificationKey]> = keys_from_jwk_json(jwk, &[Algorithm::EdDSA]).expect("JWK").into();
        let source =
            Arc::new(JwksSource::new(JwksLocation::Url(url), vec![Algorithm::EdDSA], Duration::from_millis(200)));
        // As if fetched with a max-age that has just run out.
        *source.kept.write().expect("lock") = Arc::clone(&keys);
        source.fresh.insert((), KeySet { keys, fresh_for: Duration::from_millis(50) }).await;
        assert_eq!(source.keys().await.len(), 1, "fresh");
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        tokio::time::sleep(Duration::from_millis(100)).await;

        let started = Instant::now();
        for _ in 0..10 {
            assert_eq!(source.keys().await.len(), 1, "stale keys answered");
        }
        assert!(started.elapsed() < Duration::from_millis(50), "without waiting for the refresh");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(hits.load(Ordering::SeqCst), 1, "one background refresh for ten stale reads");
        assert!(source.has_cached_keys(), "still ready");
        assert_eq!(source.refresh_for_unknown_kid().await.len(), 1, "within the interval: no fetch, keys kept");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(source.refresh_for_unknown_kid().await.len(), 1, "a failed refetch keeps the keys");
        assert_eq!(source.fetch_count(), 2);
    }

    #[test]
    fn cache_control_max_age_is_read() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::CACHE_CONTROL, "public, max-age=600".parse().expect("value"));
        assert_eq!(max_age(&h), Some(Duration::from_secs(600)));
        h.insert(reqwest::header::CACHE_CONTROL, "no-store".parse().expect("value"));
        assert_eq!(max_age(&h), None);
    }
}
