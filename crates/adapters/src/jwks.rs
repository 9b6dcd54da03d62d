//! Verification keys from the issuer's JWK Set (RFC 7517), found at `auth.jwks_url` or through
//! the issuer's metadata (RFC 8414 `/.well-known/oauth-authorization-server`, else OpenID
//! Connect Discovery `/.well-known/openid-configuration`; the metadata's `issuer` must equal
//! the configured issuer exactly).
//!
//! Keys are cached for the `Cache-Control: max-age` of the answer, bounded to
//! [`MIN_CACHE`]..[`MAX_CACHE`] (default [`DEFAULT_CACHE`]). A token with an unknown `kid`
//! triggers at most one fetch per `auth.jwks_min_refresh_seconds`, shared by every request
//! waiting for it (single flight). A failed refresh keeps the previous keys. Nothing in a
//! token (`jku`, `x5u`, `jwk`, `x5c`) is ever fetched or trusted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};

use crate::jwt::{keys_from_jwk_json, VerificationKey};
use crate::redact::redacted_url;

/// Cache lifetime when the answer gives none.
pub const DEFAULT_CACHE: Duration = Duration::from_secs(300);
/// Shortest cache lifetime honoured.
pub const MIN_CACHE: Duration = Duration::from_secs(30);
/// Longest cache lifetime honoured.
pub const MAX_CACHE: Duration = Duration::from_secs(24 * 3600);
/// Largest JWK Set or metadata document read, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// An HTTP client with bounded time-outs, for the authorization server.
///
/// # Panics
/// Never in practice: the TLS back end is compiled in.
#[must_use]
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client with compiled-in TLS builds")
}

/// Reads a response body of at most `limit` bytes.
pub(crate) async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading the answer: {}", e.without_url()))? {
        if body.len() + chunk.len() > limit {
            return Err(format!("the answer exceeds {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

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

#[derive(Default)]
struct State {
    keys: Vec<VerificationKey>,
    fresh_until: Option<Instant>,
    last_fetch: Option<Instant>,
    discovered_url: Option<String>,
}

/// The issuer's keys, fetched and cached.
pub struct JwksSource {
    client: reqwest::Client,
    location: JwksLocation,
    allow_list: Vec<Algorithm>,
    min_refresh: Duration,
    state: RwLock<State>,
    fetch_lock: Mutex<()>,
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
            client: http_client(),
            location,
            allow_list,
            min_refresh,
            state: RwLock::new(State::default()),
            fetch_lock: Mutex::new(()),
            fetches: AtomicU64::new(0),
        }
    }

    /// How many fetches of the JWK Set were attempted (for tests and metrics).
    #[must_use]
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Whether any key is cached (readiness); true while a refresh holds the cache.
    #[must_use]
    pub fn has_cached_keys(&self) -> bool {
        self.state.try_read().map_or(true, |s| !s.keys.is_empty())
    }

    /// The current keys: cached ones while fresh. Stale keys are still answered at once while
    /// a refresh runs in the background (a slow authorization server never delays requests
    /// that have keys); only when there is no key at all does the caller wait for a fetch.
    pub async fn keys(self: &Arc<Self>) -> Vec<VerificationKey> {
        {
            let state = self.state.read().await;
            let fresh = state.fresh_until.is_some_and(|t| Instant::now() < t);
            if fresh {
                return state.keys.clone();
            }
            if !state.keys.is_empty() {
                if self.fetch_lock.try_lock().is_ok() {
                    let source = Arc::clone(self);
                    tokio::spawn(async move { source.refresh().await });
                }
                return state.keys.clone();
            }
        }
        self.refresh().await;
        self.state.read().await.keys.clone()
    }

    /// Refetches for a token whose `kid` is unknown: at most once per `min_refresh`, one
    /// fetch shared by every concurrent caller.
    pub async fn refresh_for_unknown_kid(&self) -> Vec<VerificationKey> {
        self.refresh().await;
        self.state.read().await.keys.clone()
    }

    async fn refresh(&self) {
        let _single_flight = self.fetch_lock.lock().await;
        {
            let state = self.state.read().await;
            if state.last_fetch.is_some_and(|t| t.elapsed() < self.min_refresh) {
                return;
            }
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.fetch().await;
        let mut state = self.state.write().await;
        state.last_fetch = Some(Instant::now());
        match result {
            Ok((keys, discovered, cache)) => {
                tracing::info!(keys = keys.len(), "fetched the issuer's JWK Set");
                state.keys = keys;
                state.discovered_url = discovered;
                state.fresh_until = Some(Instant::now() + cache.unwrap_or(DEFAULT_CACHE).clamp(MIN_CACHE, MAX_CACHE));
            }
            Err(e) => tracing::warn!(error = %e, kept = state.keys.len(), "fetching the issuer's JWK Set failed"),
        }
    }

    async fn fetch(&self) -> Result<(Vec<VerificationKey>, Option<String>, Option<Duration>), String> {
        let (url, discovered) = match &self.location {
            JwksLocation::Url(url) => (url.clone(), None),
            JwksLocation::Discover { issuer } => {
                let known = self.state.read().await.discovered_url.clone();
                let url = match known {
                    Some(url) => url,
                    None => discover_jwks_uri(&self.client, issuer).await?,
                };
                (url.clone(), Some(url))
            }
        };
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {}: {}", redacted_url(&url), e.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("GET {}: status {}", redacted_url(&url), response.status()));
        }
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
        let response = match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                last_error = format!("GET {}: status {}", redacted_url(&url), r.status());
                continue;
            }
            Err(e) => {
                last_error = format!("GET {}: {}", redacted_url(&url), e.without_url());
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

    #[test]
    fn cache_control_max_age_is_read() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::CACHE_CONTROL, "public, max-age=600".parse().expect("value"));
        assert_eq!(max_age(&h), Some(Duration::from_secs(600)));
        h.insert(reqwest::header::CACHE_CONTROL, "no-store".parse().expect("value"));
        assert_eq!(max_age(&h), None);
    }
}
