//! `X-Request-Id` on every response (SPEC §2), taken from the request when sane, and a
//! tracing span per request carrying it. Query strings are never logged.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::future::{ready, Ready};
use rand::RngCore;
use tracing::Instrument;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// The header name.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// The id [`middleware`] gave `req` (a fresh one outside it).
    #[must_use]
    pub fn of(req: &HttpRequest) -> Self {
        req.extensions().get::<Self>().cloned().unwrap_or_else(|| Self(generate()))
    }
}

/// Accepts a client's id when it is 1 to 128 characters of `[A-Za-z0-9._:-]`.
#[must_use]
pub fn sane(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    ok.then(|| s.to_owned())
}

fn generate() -> String {
    let mut bits = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bits);
    bits.iter().map(|b| format!("{b:02x}")).collect()
}

/// The middleware (for `actix_web::middleware::from_fn`).
///
/// # Errors
/// Whatever the inner service returns.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req.headers().get(&X_REQUEST_ID).and_then(sane).unwrap_or_else(generate);
    req.extensions_mut().insert(RequestId(id.clone()));
    let path: String = req.path().chars().take(200).collect();
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %path);
    let started = Instant::now();
    let mut response = match next.call(req).instrument(span.clone()).await {
        Ok(response) => response,
        // Answered by the server from the error (a panic caught inside, for one): the id goes
        // into that answer too.
        Err(error) => return Err(WithRequestId { id, error }.into()),
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    let status = response.status().as_u16();
    if let Some(metrics) = response.request().app_data::<actix_web::web::Data<Metrics>>() {
        let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
        metrics.observe_request(response.request().method().as_str(), &route, status, started.elapsed().as_secs_f64());
    }
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "request completed"
        );
    });
    Ok(response)
}

/// An error of the inner services, answered with `X-Request-Id`.
#[derive(Debug)]
struct WithRequestId {
    id: String,
    error: actix_web::Error,
}

impl std::fmt::Display for WithRequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl actix_web::ResponseError for WithRequestId {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        let mut response = self.error.error_response();
        if let Ok(value) = HeaderValue::from_str(&self.id) {
            response.headers_mut().insert(X_REQUEST_ID, value);
        }
        response
    }
}

impl FromRequest for RequestId {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}
