//! Extractors of the API's handlers: path ids, the audit context and request bodies, so that
//! a handler only extracts, calls the service and maps the outcome (SPEC §2, §3).
//!
//! actix-web starts all extractors of a handler at once and polls them together, answering
//! the first error any of them gives. The extractors of protected operations here therefore
//! first await the request's bearer verification ([`crate::auth::authentication`], run once
//! and shared): an unauthenticated request is answered 401 (400, 403, 503) whatever else is
//! wrong with it, and no body is read before the caller is known (SPEC §2, §6). Once it is
//! verified, the handler's arguments answer in their order: path ids before the body.

use std::future::{ready, Future};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use esignsp_domain::events::AuditContext;
use esignsp_domain::service::SYSTEM_ACTOR;
use esignsp_domain::{ClientId, DocumentId, ProcessId};
use futures_util::future::{FutureExt, LocalBoxFuture};

use crate::auth::authentication;
use esignsp_domain::content::UploadWriter;

use crate::body::{is_json, is_multipart_form, read_creation_form, read_limited, require_json, BodyError, FormLimits};
use crate::dto::{DocumentCreation, FromJsonBody, ProcessCreation};
use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::state::AppState;

/// The `{id}` path segment as a process id; anything that cannot be one of ours is
/// [`ApiError::NotFound`] without a database query (SPEC §2).
///
/// # Errors
/// [`ApiError::NotFound`] for a missing or malformed id.
pub fn process_id(req: &HttpRequest) -> Result<ProcessId, ApiError> {
    req.match_info().get("id").and_then(|s| ProcessId::parse(s).ok()).ok_or(ApiError::NotFound)
}

/// The `{name}` path segment as a document id; like [`process_id`], never a 400.
///
/// # Errors
/// [`ApiError::NotFound`] for a missing or malformed id.
pub fn document_id(req: &HttpRequest, name: &str) -> Result<DocumentId, ApiError> {
    req.match_info().get(name).and_then(|s| DocumentId::parse(s).ok()).ok_or(ApiError::NotFound)
}

/// `value` once the request's caller is verified: the verification's error first.
fn once_authenticated<T: 'static>(
    req: &HttpRequest,
    value: Result<T, ApiError>,
) -> LocalBoxFuture<'static, Result<T, ApiError>> {
    let caller = authentication(req);
    async move {
        caller.await?;
        value
    }
    .boxed_local()
}

/// The `{id}` of a protected process route (O2, O3, O5, O6, E1), read once the caller is
/// verified. An id that cannot be one of ours is 404.
#[derive(Debug, Clone)]
pub struct ProcessPath(pub ProcessId);

impl FromRequest for ProcessPath {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        once_authenticated(req, process_id(req).map(Self))
    }
}

/// The `{id}` of O4 `…/result`: as [`ProcessPath`], but an id that cannot be one of ours is
/// 410, as for any unknown process there.
#[derive(Debug, Clone)]
pub struct ResultPath(pub ProcessId);

impl FromRequest for ResultPath {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        once_authenticated(req, process_id(req).map(Self).map_err(|_| ApiError::ProcessGone))
    }
}

/// The `{id}` and `{document_id}` of O7, read once the caller is verified; 404 for either
/// id that cannot be one of ours.
#[derive(Debug, Clone)]
pub struct ProcessDocumentPath(pub ProcessId, pub DocumentId);

impl FromRequest for ProcessDocumentPath {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ids = process_id(req).and_then(|process| Ok(Self(process, document_id(req, "document_id")?)));
        once_authenticated(req, ids)
    }
}

/// The `{id}` of a document resource route (O9–O11), read once the caller is verified; 404
/// for an id that cannot be one of ours.
#[derive(Debug, Clone)]
pub struct DocumentPath(pub DocumentId);

impl FromRequest for DocumentPath {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        once_authenticated(req, document_id(req, "id").map(Self))
    }
}

/// Who acts in a protected request, for the audit trail: the verified caller and the
/// request's `X-Request-Id` (SPEC §4).
#[derive(Debug, Clone)]
pub struct Audit(pub AuditContext);

impl FromRequest for Audit {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let caller = authentication(req);
        let RequestId(request_id) = RequestId::of(req);
        async move { Ok(Self(AuditContext { actor: caller.await?.client_id, request_id })) }.boxed_local()
    }
}

/// Who acts in a browser request (O12, no bearer token): the service itself
/// ([`SYSTEM_ACTOR`]) and the request's `X-Request-Id`.
#[derive(Debug, Clone)]
pub struct BrowserAudit(pub AuditContext);

impl FromRequest for BrowserAudit {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let RequestId(request_id) = RequestId::of(req);
        ready(
            ClientId::parse(SYSTEM_ACTOR)
                .map(|actor| Self(AuditContext { actor, request_id }))
                .map_err(|e| ApiError::Internal(e.into())),
        )
    }
}

/// The limits of bodies, from the application state.
fn form_limits(req: &HttpRequest) -> Result<FormLimits, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .map(|state| state.form_limits)
        .ok_or_else(|| ApiError::Internal("AppState is not registered".into()))
}

/// The writers of uploaded document bytes, from the application state's service.
fn upload_writers(req: &HttpRequest) -> Result<impl Fn() -> UploadWriter, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("AppState is not registered".into()))?;
    Ok(move || state.service.upload_writer())
}

/// A body read once the caller is verified: `read` gets the request and its payload.
fn body_once_authenticated<T, F, Fut>(
    req: &HttpRequest,
    payload: &mut Payload,
    read: F,
) -> LocalBoxFuture<'static, Result<T, ApiError>>
where
    T: 'static,
    F: FnOnce(HttpRequest, Payload, FormLimits) -> Fut + 'static,
    Fut: Future<Output = Result<T, ApiError>> + 'static,
{
    let caller = authentication(req);
    let (req, payload, limits) = (req.clone(), payload.take(), form_limits(req));
    async move {
        caller.await?;
        read(req, payload, limits?).await
    }
    .boxed_local()
}

/// A strict JSON body (SPEC §2) parsed into `T` (O5, O7): `application/json` (else 415), at
/// most `server.max_json_bytes` after decoding (else 413), within
/// `server.body_timeout_seconds` (else 408), then [`FromJsonBody`] (else 400).
#[derive(Debug, Clone)]
pub struct StrictJson<T>(pub T);

impl<T: FromJsonBody + 'static> FromRequest for StrictJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        body_once_authenticated(req, payload, |req, payload, limits| async move {
            require_json(req.headers())?;
            let bytes = read_limited(req.headers(), payload, limits.max_json_bytes, limits.body_timeout).await?;
            Ok(Self(T::from_json_body(&bytes)?))
        })
    }
}

/// O1's body: `multipart/form-data` (part `process` and parts `document`) or
/// `application/json` (documents referenced by id), else 415; the limits of
/// [`FormLimits`] (413, 408); then [`ProcessCreation::from_form`] or
/// [`ProcessCreation::from_json`] (400).
impl FromRequest for ProcessCreation {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        body_once_authenticated(req, payload, |req, payload, limits| async move {
            let headers = req.headers();
            if is_multipart_form(headers) {
                let writers = upload_writers(&req)?;
                Ok(Self::from_form(read_creation_form(headers, payload, limits, &writers).await?)?)
            } else if is_json(headers) {
                let bytes = read_limited(headers, payload, limits.max_json_bytes, limits.body_timeout).await?;
                Ok(Self::from_json(&bytes)?)
            } else {
                Err(BodyError::UnsupportedMediaType("multipart/form-data or application/json").into())
            }
        })
    }
}

/// O8's body: `multipart/form-data` (else 415) within the limits of [`FormLimits`] (413,
/// 408), then [`DocumentCreation::from_form`] (400).
impl FromRequest for DocumentCreation {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        body_once_authenticated(req, payload, |req, payload, limits| async move {
            if !is_multipart_form(req.headers()) {
                return Err(BodyError::UnsupportedMediaType("multipart/form-data").into());
            }
            let writers = upload_writers(&req)?;
            Ok(Self::from_form(read_creation_form(req.headers(), payload, limits, &writers).await?)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use actix_web::{test, App, HttpResponse};
    use esignsp_domain::auth::{Caller, InvalidTokenReason, TokenRejection};
    use esignsp_domain::ports::AccessTokenVerifier;

    use super::*;
    use crate::auth::{Authenticated, BearerAuth};

    /// A verifier that waits a moment (as one on the network does), counts its calls, and
    /// accepts only `good`.
    #[derive(Default)]
    struct Slow(AtomicUsize);

    // `#[async_trait]` spelled out: the api crate does not depend on async-trait.
    impl AccessTokenVerifier for Slow {
        fn verify<'a, 'b, 'f>(
            &'a self,
            token: &'b str,
        ) -> Pin<Box<dyn Future<Output = Result<Caller, TokenRejection>> + Send + 'f>>
        where
            'a: 'f,
            'b: 'f,
            Self: 'f,
        {
            Box::pin(async move {
                self.0.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                match token {
                    "good" => Ok(Caller { client_id: ClientId::parse("relying-app").expect("id"), trusted: false }),
                    _ => Err(TokenRejection::Invalid(InvalidTokenReason::Inactive)),
                }
            })
        }
    }

    async fn handler(
        Authenticated(caller): Authenticated,
        Audit(audit): Audit,
        ProcessPath(id): ProcessPath,
    ) -> HttpResponse {
        assert_eq!(audit.actor, caller.client_id, "the audit names the caller");
        HttpResponse::Ok().body(id.as_str().to_owned())
    }

    #[actix_web::test]
    async fn the_extractors_share_one_verification_and_answer_after_it() {
        let slow = Arc::new(Slow::default());
        let auth = BearerAuth { verifier: slow.clone(), required_scope: "urn:s".to_owned() };
        let app =
            test::init_service(App::new().app_data(web::Data::new(auth)).route("/p/{id}", web::get().to(handler)))
                .await;
        let call = |token: &str, id: &str| {
            test::TestRequest::get()
                .uri(&format!("/p/{id}"))
                .insert_header(("Authorization", format!("Bearer {token}")))
        };
        let id = "0123456789abcdefghijklmnopqrstuv";
        for (token, path, status, calls, why) in [
            ("good", id, 200, 1, "three extractors, one verification"),
            ("good", "NOTOURS", 404, 2, "the path once the caller is known"),
            ("bad", "NOTOURS", 401, 3, "the token before the path"),
        ] {
            let response = test::call_service(&app, call(token, path).to_request()).await;
            assert_eq!(response.status().as_u16(), status, "{why}");
            assert_eq!(slow.0.load(Ordering::SeqCst), calls, "{why}");
        }
    }
}
