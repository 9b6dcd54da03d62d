//! One error type for the whole API, mapped to RFC 9457 problem documents in one place
//! (SPEC §2). Extractor failures, authorization failures, body errors and domain errors all
//! end here: [`ProblemKind`] is the only place a problem type URN is written, and
//! [`BearerRejection`] the only place an RFC 6750 challenge is.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use esignsp_domain::auth::{InvalidTokenReason, TokenRejection};
use esignsp_domain::ports::{CreateError, EstablishResultError, RepositoryError};
use esignsp_domain::rules::{ConflictKind, CurrentResult, RuleViolation};
use esignsp_domain::service::CreateProcessError;
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

use crate::body::{BodyError, InvalidBody, Oversized};
use crate::dto::ProcessResult;

/// Media type of every error body (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// The realm of every bearer challenge (RFC 6750 §3).
pub const REALM: &str = "esignsp";

/// The kind of a problem document: its `type` is `urn:esignsp:problem:<kind>` ([`Self::urn`]),
/// and the kind fixes the status and the title (SPEC §2, §4, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// 404 `not-found`: no such resource (or one of another client).
    NotFound,
    /// 410 `process-not-found`: O4 for a process that does not exist.
    ProcessNotFound,
    /// 404 `result-not-established`: O4 for a process that has no result yet.
    ResultNotEstablished,
    /// 409 `document-in-use`: O11 while a process holds the document.
    DocumentInUse,
    /// 409 `result-already-established` (SPEC §4 terminal, expiry).
    ResultAlreadyEstablished,
    /// 409 `result-conflicts-with-documents` (SPEC §4 rules).
    ResultConflictsWithDocuments,
    /// 409 `documents-frozen` (SPEC §4 documents frozen).
    DocumentsFrozen,
    /// 409 `webhook-endpoint-limit`: the client has `webhooks.max_endpoints_per_client`
    /// endpoints already (SPEC §11).
    WebhookEndpointLimit,
    /// 405 `method-not-allowed`.
    MethodNotAllowed,
    /// 415 `unsupported-media-type`.
    UnsupportedMediaType,
    /// 413 `payload-too-large`.
    PayloadTooLarge,
    /// 408 `request-timeout`.
    RequestTimeout,
    /// 400 `invalid-body`: syntax or schema of a request body.
    InvalidBody,
    /// 401 `unauthorized`: no bearer credential (RFC 6750 §3.1, no error code).
    Unauthorized,
    /// 400 `invalid-request`: RFC 6750 `invalid_request`.
    InvalidRequest,
    /// 401 `invalid-token`: RFC 6750 `invalid_token`.
    InvalidToken,
    /// 403 `insufficient-scope`: RFC 6750 `insufficient_scope`.
    InsufficientScope,
    /// 503 `service-unavailable`: database or verification keys unavailable, or not ready.
    ServiceUnavailable,
    /// 503 `database-read-only`.
    DatabaseReadOnly,
    /// 507 `insufficient-storage` (RFC 4918 §11.5).
    InsufficientStorage,
    /// 500 `internal-error`.
    InternalError,
}

impl ProblemKind {
    /// The problem type URI (RFC 9457 §3.1.1).
    #[must_use]
    pub const fn urn(self) -> &'static str {
        match self {
            Self::NotFound => "urn:esignsp:problem:not-found",
            Self::ProcessNotFound => "urn:esignsp:problem:process-not-found",
            Self::ResultNotEstablished => "urn:esignsp:problem:result-not-established",
            Self::DocumentInUse => "urn:esignsp:problem:document-in-use",
            Self::WebhookEndpointLimit => "urn:esignsp:problem:webhook-endpoint-limit",
            Self::ResultAlreadyEstablished => "urn:esignsp:problem:result-already-established",
            Self::ResultConflictsWithDocuments => "urn:esignsp:problem:result-conflicts-with-documents",
            Self::DocumentsFrozen => "urn:esignsp:problem:documents-frozen",
            Self::MethodNotAllowed => "urn:esignsp:problem:method-not-allowed",
            Self::UnsupportedMediaType => "urn:esignsp:problem:unsupported-media-type",
            Self::PayloadTooLarge => "urn:esignsp:problem:payload-too-large",
            Self::RequestTimeout => "urn:esignsp:problem:request-timeout",
            Self::InvalidBody => "urn:esignsp:problem:invalid-body",
            Self::Unauthorized => "urn:esignsp:problem:unauthorized",
            Self::InvalidRequest => "urn:esignsp:problem:invalid-request",
            Self::InvalidToken => "urn:esignsp:problem:invalid-token",
            Self::InsufficientScope => "urn:esignsp:problem:insufficient-scope",
            Self::ServiceUnavailable => "urn:esignsp:problem:service-unavailable",
            Self::DatabaseReadOnly => "urn:esignsp:problem:database-read-only",
            Self::InsufficientStorage => "urn:esignsp:problem:insufficient-storage",
            Self::InternalError => "urn:esignsp:problem:internal-error",
        }
    }

    /// The HTTP status of this kind.
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::NotFound | Self::ResultNotEstablished => StatusCode::NOT_FOUND,
            Self::ProcessNotFound => StatusCode::GONE,
            Self::DocumentInUse
            | Self::ResultAlreadyEstablished
            | Self::ResultConflictsWithDocuments
            | Self::DocumentsFrozen
            | Self::WebhookEndpointLimit => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::InvalidBody | Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::ServiceUnavailable | Self::DatabaseReadOnly => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem document's `title` (RFC 9457 §3.1.3): the status's reason phrase, except
    /// for `invalid-body`.
    #[must_use]
    pub const fn title(self) -> &'static str {
        match self {
            Self::NotFound | Self::ResultNotEstablished => "Not Found",
            Self::ProcessNotFound => "Gone",
            Self::DocumentInUse
            | Self::ResultAlreadyEstablished
            | Self::ResultConflictsWithDocuments
            | Self::DocumentsFrozen
            | Self::WebhookEndpointLimit => "Conflict",
            Self::MethodNotAllowed => "Method Not Allowed",
            Self::UnsupportedMediaType => "Unsupported Media Type",
            Self::PayloadTooLarge => "Payload Too Large",
            Self::RequestTimeout => "Request Timeout",
            Self::InvalidBody => "Invalid Request Body",
            Self::InvalidRequest => "Bad Request",
            Self::Unauthorized | Self::InvalidToken => "Unauthorized",
            Self::InsufficientScope => "Forbidden",
            Self::ServiceUnavailable | Self::DatabaseReadOnly => "Service Unavailable",
            Self::InsufficientStorage => "Insufficient Storage",
            Self::InternalError => "Internal Server Error",
        }
    }
}

impl From<ConflictKind> for ProblemKind {
    fn from(kind: ConflictKind) -> Self {
        match kind {
            ConflictKind::AlreadyEstablished => Self::ResultAlreadyEstablished,
            ConflictKind::ConflictsWithDocuments => Self::ResultConflictsWithDocuments,
            ConflictKind::DocumentsFrozen => Self::DocumentsFrozen,
        }
    }
}

/// Why a request has no bearer credential at all: 401 with a challenge without an error
/// code (RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoCredential {
    /// No `Authorization` header.
    Missing,
    /// No `Authorization` header, but an `access_token` in the query (not accepted, SPEC §6).
    OnlyInQuery,
    /// An `Authorization` header of another scheme.
    OtherScheme,
}

/// Why a bearer credential is malformed: 400 `invalid_request` (RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedCredential {
    /// More than one `Authorization` header.
    Repeated,
    /// Not visible ASCII, a TAB, trailing words, or a token outside RFC 6750 `b64token`.
    Malformed,
    /// `Bearer` without a token.
    Empty,
    /// A token in the header and an `access_token` in the query.
    TwoPlaces,
}

/// A refused bearer credential (RFC 6750 §3): its status, problem kind and
/// `WWW-Authenticate` challenge are [`Self::status`], [`Self::kind`] and
/// [`Self::www_authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerRejection {
    /// 401, no error code: the request carries no bearer credential.
    NoCredential(NoCredential),
    /// 400 `invalid_request`.
    InvalidRequest(MalformedCredential),
    /// 401 `invalid_token`.
    InvalidToken(InvalidTokenReason),
    /// 403 `insufficient_scope`, naming the scope the operation requires.
    InsufficientScope {
        /// `auth.required_scope`.
        scope: String,
    },
}

impl BearerRejection {
    /// The answer to a verifier's refusal (RFC 6750 §3.1); `None` for
    /// [`TokenRejection::Unavailable`], which is no verdict on the token (503).
    #[must_use]
    pub fn of_token(rejection: &TokenRejection, required_scope: &str) -> Option<Self> {
        match rejection {
            TokenRejection::Invalid(reason) => Some(Self::InvalidToken(*reason)),
            TokenRejection::InsufficientScope => Some(Self::InsufficientScope { scope: required_scope.to_owned() }),
            TokenRejection::Unavailable => None,
        }
    }

    /// The problem kind, which fixes the status: 400, 401 or 403.
    #[must_use]
    pub const fn kind(&self) -> ProblemKind {
        match self {
            Self::NoCredential(_) => ProblemKind::Unauthorized,
            Self::InvalidRequest(_) => ProblemKind::InvalidRequest,
            Self::InvalidToken(_) => ProblemKind::InvalidToken,
            Self::InsufficientScope { .. } => ProblemKind::InsufficientScope,
        }
    }

    /// 400, 401 or 403.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        self.kind().status()
    }

    /// The RFC 6750 §3.1 `error` code, when there is one.
    #[must_use]
    pub const fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::NoCredential(_) => None,
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidToken(_) => Some("invalid_token"),
            Self::InsufficientScope { .. } => Some("insufficient_scope"),
        }
    }

    /// The fixed `error_description`, also the problem's `detail`: never the token, a claim
    /// value or a library's text.
    #[must_use]
    pub const fn description(&self) -> &'static str {
        match self {
            Self::NoCredential(NoCredential::Missing) => "An access token is required",
            Self::NoCredential(NoCredential::OnlyInQuery) => {
                "Access tokens are accepted only in the Authorization header"
            }
            Self::NoCredential(NoCredential::OtherScheme) => "The Bearer authentication scheme is required",
            Self::InvalidRequest(MalformedCredential::Repeated) => "The request has more than one Authorization header",
            Self::InvalidRequest(MalformedCredential::Malformed) => "The Authorization header is malformed",
            Self::InvalidRequest(MalformedCredential::Empty) => "The access token is missing",
            Self::InvalidRequest(MalformedCredential::TwoPlaces) => "The access token must be sent in one place only",
            Self::InvalidToken(reason) => reason.description(),
            Self::InsufficientScope { .. } => "The access token lacks the required scope",
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3): the realm, then `error` and
    /// `error_description`, or `error` and `scope` for `insufficient_scope`.
    #[must_use]
    pub fn www_authenticate(&self) -> String {
        let mut value = format!("Bearer realm=\"{REALM}\"");
        if let Some(error) = self.error_code() {
            value.push_str(&format!(", error=\"{error}\""));
        }
        match self {
            Self::NoCredential(_) => {}
            Self::InsufficientScope { scope } => value.push_str(&format!(", scope=\"{scope}\"")),
            Self::InvalidRequest(_) | Self::InvalidToken(_) => {
                value.push_str(&format!(", error_description=\"{}\"", self.description()));
            }
        }
        value
    }
}

/// What `/readyz` found missing (503, saying which).
#[derive(Debug, thiserror::Error)]
#[error("{}", self.what())]
pub enum NotReady {
    /// The token verifier has no keys yet.
    VerificationKeys,
    /// The database does not answer, or cannot take writes.
    Database(#[source] RepositoryError),
}

impl NotReady {
    /// The fixed text of the problem's `detail`, after `Not ready: `.
    #[must_use]
    pub const fn what(&self) -> &'static str {
        match self {
            Self::VerificationKeys => "the verification keys are not loaded",
            Self::Database(RepositoryError::ReadOnly(_)) => "the database is read-only",
            Self::Database(RepositoryError::InsufficientStorage(_)) => "the database has no storage space left",
            Self::Database(RepositoryError::Unavailable(_) | RepositoryError::Unexpected(_)) => {
                "the database is unavailable"
            }
        }
    }

    /// The cause to log, when there is one.
    fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync)> {
        match self {
            Self::VerificationKeys => None,
            Self::Database(
                RepositoryError::ReadOnly(source)
                | RepositoryError::InsufficientStorage(source)
                | RepositoryError::Unavailable(source)
                | RepositoryError::Unexpected(source),
            ) => Some(source.as_ref()),
        }
    }
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404: no such resource (or one of another client).
    #[error("not found")]
    NotFound,
    /// 410: O4 for a process that does not exist.
    #[error("no such process")]
    ProcessGone,
    /// 404: O4 for a process that has no result yet.
    #[error("no result yet")]
    ResultNotEstablished,
    /// 409: O11 while a process that is not deleted holds the document.
    #[error("document in use")]
    DocumentInUse,
    /// 409: the client has the most webhook endpoints it may have.
    #[error("webhook endpoint limit")]
    WebhookEndpointLimit(u32),
    /// 405 with the `Allow` header.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// 415, 413, 408 or 400 `invalid-body`: the request body.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// 400/401/403 from bearer token handling (RFC 6750).
    #[error("authorization failed")]
    Bearer(BearerRejection),
    /// 409 from the state machine.
    #[error("{}", .0.detail)]
    Conflict(RuleViolation),
    /// 503 with `Retry-After`: database or key source unavailable.
    #[error("service unavailable")]
    Unavailable(#[source] Option<Box<dyn std::error::Error + Send + Sync>>),
    /// 503 with `Retry-After`: the database is read-only (file, directory or file system).
    #[error("database read-only")]
    ReadOnly(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 507 (RFC 4918 §11.5) with `Retry-After`: no storage space left; nothing was stored.
    #[error("insufficient storage")]
    InsufficientStorage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 503 from `/readyz`, saying what is missing (fixed text, no internal detail).
    #[error("not ready: {0}")]
    NotReady(#[source] NotReady),
    /// 500: a bug or an unexpected failure; the body says nothing internal.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// The answer to a verifier's refusal of a token: its RFC 6750 challenge, or 503 when
    /// the token could not be checked at all; `required_scope` goes into a 403's challenge.
    #[must_use]
    pub fn token_rejected(rejection: &TokenRejection, required_scope: &str) -> Self {
        BearerRejection::of_token(rejection, required_scope).map_or(Self::Unavailable(None), Self::Bearer)
    }

    /// The problem kind, which fixes status and title.
    #[must_use]
    pub fn kind(&self) -> ProblemKind {
        match self {
            Self::NotFound => ProblemKind::NotFound,
            Self::ProcessGone => ProblemKind::ProcessNotFound,
            Self::ResultNotEstablished => ProblemKind::ResultNotEstablished,
            Self::DocumentInUse => ProblemKind::DocumentInUse,
            Self::WebhookEndpointLimit(_) => ProblemKind::WebhookEndpointLimit,
            Self::MethodNotAllowed(_) => ProblemKind::MethodNotAllowed,
            Self::Body(BodyError::UnsupportedMediaType(_)) => ProblemKind::UnsupportedMediaType,
            Self::Body(BodyError::TooLarge(..)) => ProblemKind::PayloadTooLarge,
            Self::Body(BodyError::Timeout) => ProblemKind::RequestTimeout,
            Self::Body(BodyError::Invalid(_)) => ProblemKind::InvalidBody,
            Self::Bearer(rejection) => rejection.kind(),
            Self::Conflict(violation) => violation.kind.into(),
            Self::Unavailable(_) | Self::NotReady(_) => ProblemKind::ServiceUnavailable,
            Self::ReadOnly(_) => ProblemKind::DatabaseReadOnly,
            Self::InsufficientStorage(_) => ProblemKind::InsufficientStorage,
            Self::Internal(_) => ProblemKind::InternalError,
        }
    }

    /// The problem document's `detail`: fixed text, or what the request did wrong; never
    /// anything internal.
    fn detail(&self) -> String {
        match self {
            Self::NotFound => "No such resource".to_owned(),
            Self::ProcessGone => "No such signature process".to_owned(),
            Self::ResultNotEstablished => "The signature process has no result yet".to_owned(),
            Self::DocumentInUse => {
                "A signature process holds this document; it keeps it until the process is deleted".to_owned()
            }
            Self::WebhookEndpointLimit(limit) => {
                format!("A client may register at most {limit} webhook endpoints; delete one first")
            }
            Self::MethodNotAllowed(allow) => format!("This resource allows {allow}"),
            Self::Body(BodyError::UnsupportedMediaType(expected)) => format!("The request body must be {expected}"),
            Self::Body(BodyError::TooLarge(what, limit)) => oversized_detail(*what, *limit),
            Self::Body(BodyError::Invalid(InvalidBody(detail))) => detail.clone(),
            Self::Body(BodyError::Timeout) => "The request body was not received in time".to_owned(),
            Self::Bearer(rejection) => rejection.description().to_owned(),
            Self::Conflict(violation) => violation.detail.clone(),
            Self::Unavailable(_) => "The service is temporarily unavailable".to_owned(),
            Self::ReadOnly(_) => "The service's database is read-only".to_owned(),
            Self::InsufficientStorage(_) => {
                "The service has no storage space left for this request; nothing was stored".to_owned()
            }
            Self::NotReady(what) => format!("Not ready: {}", what.what()),
            Self::Internal(_) => "An unexpected error occurred".to_owned(),
        }
    }

    /// The problem document of this error.
    #[must_use]
    pub fn problem(&self) -> Problem {
        let kind = self.kind();
        let (rule, current_result) = match self {
            Self::Conflict(violation) => (
                Some(violation.rule),
                violation.current_result.as_ref().map(|current| match current {
                    CurrentResult::Process(r) => ProcessResult::from(r),
                    CurrentResult::Document(r) => ProcessResult::from(r),
                }),
            ),
            _ => (None, None),
        };
        Problem {
            type_: kind.urn(),
            title: kind.title(),
            status: kind.status().as_u16(),
            detail: self.detail(),
            rule,
            current_result,
        }
    }

    fn log(&self) {
        match self {
            Self::Internal(source) => tracing::error!(error = %source, cause = ?source, "internal error"),
            Self::Unavailable(Some(source)) => tracing::warn!(error = %source, "service unavailable"),
            Self::NotReady(not_ready) => {
                if let Some(source) = not_ready.cause() {
                    tracing::warn!(error = %source, "service unavailable");
                }
            }
            Self::ReadOnly(source) => tracing::error!(error = %source, "the database is read-only"),
            Self::InsufficientStorage(source) => tracing::error!(error = %source, "no storage space left"),
            _ => {}
        }
    }
}

/// The problem document's `detail` of a 413 for a limit of `limit` bytes.
fn oversized_detail(what: Oversized, limit: usize) -> String {
    match what {
        Oversized::Body => format!("The request body exceeds {limit} bytes"),
        Oversized::JsonPart(part) => format!("The `{part}` part exceeds {limit} bytes (server.max_json_bytes)"),
        Oversized::Documents => {
            format!("The documents of the request exceed {limit} bytes together (server.max_document_bytes)")
        }
        Oversized::PartHeaders => format!(
            "The headers of a multipart part exceed {limit} bytes (a file name or other header of that part is too long)"
        ),
    }
}

impl From<crate::body::FormError> for ApiError {
    fn from(e: crate::body::FormError) -> Self {
        match e {
            crate::body::FormError::Body(b) => b.into(),
            crate::body::FormError::Store(r) => r.into(),
        }
    }
}

impl From<RepositoryError> for ApiError {
    fn from(e: RepositoryError) -> Self {
        match e {
            RepositoryError::Unavailable(source) => Self::Unavailable(Some(source)),
            RepositoryError::ReadOnly(source) => Self::ReadOnly(source),
            RepositoryError::InsufficientStorage(source) => Self::InsufficientStorage(source),
            RepositoryError::Unexpected(source) => Self::Internal(source),
        }
    }
}

impl From<EstablishResultError> for ApiError {
    fn from(e: EstablishResultError) -> Self {
        match e {
            EstablishResultError::NotFound => Self::NotFound,
            EstablishResultError::Rule(v) => Self::Conflict(v),
            EstablishResultError::Repository(r) => r.into(),
        }
    }
}

impl From<CreateProcessError> for ApiError {
    fn from(e: CreateProcessError) -> Self {
        match e {
            CreateProcessError::NoDocument => InvalidBody::new("a process needs at least one document").into(),
            CreateProcessError::Store(CreateError::Repository(r)) => r.into(),
            CreateProcessError::Store(e) => InvalidBody::new(e.to_string()).into(),
        }
    }
}

impl From<InvalidBody> for ApiError {
    fn from(e: InvalidBody) -> Self {
        Self::Body(BodyError::Invalid(e))
    }
}

impl From<BearerRejection> for ApiError {
    fn from(e: BearerRejection) -> Self {
        Self::Bearer(e)
    }
}

impl From<NotReady> for ApiError {
    fn from(e: NotReady) -> Self {
        Self::NotReady(e)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind().status()
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        match self {
            // The rest of the body may still arrive: do not read it as a next request.
            Self::Body(BodyError::Timeout) => {
                // A `Connection` header alone is not enough: actix-http keeps a connection
                // whose chunked body is unfinished open to drain it; force_close ends it.
                response.force_close();
            }
            Self::MethodNotAllowed(allow) => {
                response.insert_header((header::ALLOW, *allow));
            }
            Self::Bearer(rejection) => {
                if let Ok(v) = HeaderValue::from_str(&rejection.www_authenticate()) {
                    response.insert_header((header::WWW_AUTHENTICATE, v));
                }
            }
            Self::Unavailable(_) | Self::ReadOnly(_) | Self::InsufficientStorage(_) | Self::NotReady(_) => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS));
            }
            _ => {}
        }
        response.body(serde_json::to_string(&self.problem()).unwrap_or_default())
    }
}

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs)] // a member's doc comment would become its description in /openapi.json
pub struct Problem {
    /// `urn:esignsp:problem:<kind>`.
    #[serde(rename = "type")]
    pub type_: &'static str,
    // The kind's title, its status, and what went wrong with this request.
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// The state-machine rule that refused a transition (409).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    /// The stored result a 409 conflicts with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_result: Option<ProcessResult>,
}

/// The answers every protected operation may give besides its own (SPEC §6, §8), declared
/// once for the OpenAPI document (`responses(…, ProtectedErrors)`).
#[derive(IntoResponses)]
pub enum ProtectedErrors {
    /// Malformed request or Authorization header
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No, invalid or expired access token (RFC 6750)
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The token lacks the required scope
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// Database or verification keys unavailable; retry after Retry-After
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The answers every operation with a request body may give about the body (SPEC §2),
/// declared once for the OpenAPI document (`responses(…, BodyErrors)`).
#[derive(IntoResponses)]
pub enum BodyErrors {
    /// The body was not received in time
    #[response(status = 408, content_type = "application/problem+json")]
    Timeout(Problem),
    /// The body is too large
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// Unsupported media type or content encoding
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_rfc6750_section_3() {
        let scope = ApiError::token_rejected(&TokenRejection::InsufficientScope, "urn:s");
        let ApiError::Bearer(c) = &scope else { panic!("bearer: {scope:?}") };
        assert_eq!(c.www_authenticate(), r#"Bearer realm="esignsp", error="insufficient_scope", scope="urn:s""#);
        assert_eq!(scope.status_code(), StatusCode::FORBIDDEN);
        let expired = BearerRejection::InvalidToken(InvalidTokenReason::Expired);
        assert_eq!(
            expired.www_authenticate(),
            r#"Bearer realm="esignsp", error="invalid_token", error_description="The access token expired""#
        );
        assert_eq!(
            BearerRejection::NoCredential(NoCredential::Missing).www_authenticate(),
            r#"Bearer realm="esignsp""#
        );
        assert_eq!(
            BearerRejection::InvalidRequest(MalformedCredential::Empty).www_authenticate(),
            r#"Bearer realm="esignsp", error="invalid_request", error_description="The access token is missing""#
        );
        assert!(matches!(ApiError::token_rejected(&TokenRejection::Unavailable, "urn:s"), ApiError::Unavailable(None)));
    }

    #[test]
    fn problem_documents_keep_their_member_order() {
        let body = |e: ApiError| {
            let response = e.error_response();
            let bytes = actix_web::body::to_bytes(response.into_body());
            let bytes = futures_util::FutureExt::now_or_never(bytes).and_then(Result::ok).expect("a body");
            String::from_utf8(bytes.to_vec()).expect("UTF-8")
        };
        assert_eq!(
            body(ApiError::NotFound),
            r#"{"type":"urn:esignsp:problem:not-found","title":"Not Found","status":404,"detail":"No such resource"}"#
        );
        let violation = RuleViolation::conflicts_with_documents("finished", "a document failed");
        assert_eq!(
            body(ApiError::Conflict(violation)),
            r#"{"type":"urn:esignsp:problem:result-conflicts-with-documents","title":"Conflict","status":409,"detail":"rule 'finished': a document failed","rule":"finished"}"#
        );
    }
}
