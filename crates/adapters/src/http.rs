//! HTTP to the authorization server (its metadata, JWK Set and introspection endpoint): one
//! client with bounded time-outs that follows no redirect, bounded reads of answers, and
//! error texts that never carry a URL's secrets ([`crate::redact`]) or a library's URL.

use std::time::Duration;

use crate::redact::redacted_url;

/// Longest wait for a connection to the authorization server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for a whole exchange with the authorization server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP client for the authorization server: [`CONNECT_TIMEOUT`], [`REQUEST_TIMEOUT`], and
/// no redirect followed (an answer is taken from the URL configured or discovered, nowhere else).
///
/// # Panics
/// Never in practice: the TLS back end is compiled in.
#[must_use]
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client with compiled-in TLS builds")
}

/// `GET url`, answering only a 2xx response.
///
/// # Errors
/// `GET <url>: <cause>` with the URL redacted, when the request fails or the status is not 2xx.
pub(crate) async fn get(client: &reqwest::Client, url: &str) -> Result<reqwest::Response, String> {
    let response =
        client.get(url).send().await.map_err(|e| format!("GET {}: {}", redacted_url(url), e.without_url()))?;
    if !response.status().is_success() {
        return Err(format!("GET {}: status {}", redacted_url(url), response.status()));
    }
    Ok(response)
}

/// Reads a response body of at most `limit` bytes.
///
/// # Errors
/// A message when reading fails or the body is longer than `limit`.
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
