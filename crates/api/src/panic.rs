//! A panic while serving a request answers 500 with a problem document (SPEC §9: no request
//! is dropped unanswered) and is logged with its message, instead of unwinding through the
//! connection's task, which would close the connection without a response.

use std::panic::AssertUnwindSafe;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use futures_util::FutureExt;

use crate::error::ApiError;

/// A request handler (or a middleware inside this one) panicked: 500 `internal-error`, and the
/// connection is closed after the answer, since the request's body may be left half read.
#[derive(Debug, thiserror::Error)]
#[error("a request handler panicked: {0}")]
pub struct Panicked(String);

impl ResponseError for Panicked {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        // Logs the panic's message as the cause, like every other 500.
        let mut response = ApiError::Internal(self.to_string().into()).error_response();
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// The panic's message, when it is a string.
fn message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// The middleware (for `actix_web::middleware::from_fn`): runs the inner services, and turns
/// a panic in them into [`Panicked`] (answered by the server as its problem document; the
/// request id middleware outside adds `X-Request-Id`).
///
/// # Errors
/// Whatever the inner service returns, and [`Panicked`].
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| next.call(req))) {
        Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    outcome.unwrap_or_else(|panic| Err(Panicked(message(panic.as_ref())).into()))
}
