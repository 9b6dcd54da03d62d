//! One error type for the whole API, mapped to RFC 9457 problem documents in one place
//! (SPEC §2). Extractor failures, authorization failures and domain errors all end here.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use esignsp_domain::ports::{CreateError, EstablishResultError, RepositoryError};
use esignsp_domain::rules::{ConflictKind, CurrentResult, RuleViolation};
use esignsp_domain::service::CreateProcessError;
use serde_json::{json, Map, Value};

use crate::dto::{document_result_json, result_json};

/// Media type of every error body (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// An authorization failure (RFC 6750 §3): its status and `WWW-Authenticate` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerChallenge {
    /// 400, 401 or 403.
    pub status: StatusCode,
    /// The RFC 6750 `error` code, when there is one.
    pub error: Option<&'static str>,
    /// The fixed `error_description`.
    pub description: &'static str,
    /// The full `WWW-Authenticate` header value.
    pub www_authenticate: String,
}

/// What exceeded a size limit (413), so that the answer names it and the limit that applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversized {
    /// The whole (decoded) request body.
    Body,
    /// A JSON part of a multipart body (`process`, `signers`): `server.max_json_bytes`.
    JsonPart(&'static str),
    /// The document bytes of one request together: `server.max_document_bytes`.
    Documents,
    /// The header lines of one multipart part (RFC 7578 §4.8), or the preamble before the
    /// first boundary: the multipart parser's buffer.
    PartHeaders,
}

impl Oversized {
    /// The problem document's `detail` for a limit of `limit` bytes.
    #[must_use]
    pub fn detail(self, limit: usize) -> String {
        match self {
            Self::Body => format!("The request body exceeds {limit} bytes"),
            Self::JsonPart(part) => format!("The `{part}` part exceeds {limit} bytes (server.max_json_bytes)"),
            Self::Documents => {
                format!("The documents of the request exceed {limit} bytes together (server.max_document_bytes)")
            }
            Self::PartHeaders => format!(
                "The headers of a multipart part exceed {limit} bytes (a file name or other header of that part is too long)"
            ),
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
    /// 405 with the `Allow` header.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// 415 with a detail naming what is accepted.
    #[error("unsupported media type")]
    UnsupportedMediaType(&'static str),
    /// 413: part of the body exceeds its limit (bytes after content decoding).
    #[error("payload too large")]
    PayloadTooLarge(Oversized, usize),
    /// 408: the client took longer than `server.body_timeout_seconds` to send its body.
    #[error("request timeout")]
    RequestTimeout,
    /// 400 `invalid-body`: syntax or schema.
    #[error("invalid body: {0}")]
    InvalidBody(String),
    /// 400/401/403 from bearer token handling (RFC 6750).
    #[error("authorization failed")]
    Bearer(BearerChallenge),
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
    NotReady(&'static str, #[source] Option<Box<dyn std::error::Error + Send + Sync>>),
    /// 500: a bug or an unexpected failure; the body says nothing internal.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
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
            CreateProcessError::NoDocument => Self::InvalidBody("a process needs at least one document".to_owned()),
            CreateProcessError::Store(CreateError::Repository(r)) => r.into(),
            CreateProcessError::Store(e) => Self::InvalidBody(e.to_string()),
        }
    }
}

impl ApiError {
    fn kind_title_detail(&self) -> (&'static str, &'static str, String) {
        match self {
            Self::NotFound => ("not-found", "Not Found", "No such resource".to_owned()),
            Self::ProcessGone => ("process-not-found", "Gone", "No such signature process".to_owned()),
            Self::ResultNotEstablished => {
                ("result-not-established", "Not Found", "The signature process has no result yet".to_owned())
            }
            Self::DocumentInUse => (
                "document-in-use",
                "Conflict",
                "A signature process holds this document; it keeps it until the process is deleted".to_owned(),
            ),
            Self::MethodNotAllowed(allow) => {
                ("method-not-allowed", "Method Not Allowed", format!("This resource allows {allow}"))
            }
            Self::UnsupportedMediaType(expected) => {
                ("unsupported-media-type", "Unsupported Media Type", format!("The request body must be {expected}"))
            }
            Self::PayloadTooLarge(what, limit) => ("payload-too-large", "Payload Too Large", what.detail(*limit)),
            Self::InvalidBody(detail) => ("invalid-body", "Invalid Request Body", detail.clone()),
            Self::RequestTimeout => {
                ("request-timeout", "Request Timeout", "The request body was not received in time".to_owned())
            }
            Self::Bearer(c) => {
                let kind = match c.error {
                    Some("invalid_request") => "invalid-request",
                    Some("invalid_token") => "invalid-token",
                    Some("insufficient_scope") => "insufficient-scope",
                    _ => "unauthorized",
                };
                let title = match c.status {
                    StatusCode::BAD_REQUEST => "Bad Request",
                    StatusCode::FORBIDDEN => "Forbidden",
                    _ => "Unauthorized",
                };
                (kind, title, c.description.to_owned())
            }
            Self::Conflict(v) => ("", "Conflict", v.detail.clone()),
            Self::Unavailable(_) => {
                ("service-unavailable", "Service Unavailable", "The service is temporarily unavailable".to_owned())
            }
            Self::ReadOnly(_) => {
                ("database-read-only", "Service Unavailable", "The service's database is read-only".to_owned())
            }
            Self::InsufficientStorage(_) => (
                "insufficient-storage",
                "Insufficient Storage",
                "The service has no storage space left for this request; nothing was stored".to_owned(),
            ),
            Self::NotReady(what, _) => ("service-unavailable", "Service Unavailable", format!("Not ready: {what}")),
            Self::Internal(_) => ("internal-error", "Internal Server Error", "An unexpected error occurred".to_owned()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound | Self::ResultNotEstablished => StatusCode::NOT_FOUND,
            Self::ProcessGone => StatusCode::GONE,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(..) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidBody(_) => StatusCode::BAD_REQUEST,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Bearer(c) => c.status,
            Self::Conflict(_) | Self::DocumentInUse => StatusCode::CONFLICT,
            Self::Unavailable(_) | Self::ReadOnly(_) | Self::NotReady(..) => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            Self::Internal(source) => tracing::error!(error = %source, cause = ?source, "internal error"),
            Self::Unavailable(Some(source)) | Self::NotReady(_, Some(source)) => {
                tracing::warn!(error = %source, "service unavailable");
            }
            Self::ReadOnly(source) => tracing::error!(error = %source, "the database is read-only"),
            Self::InsufficientStorage(source) => tracing::error!(error = %source, "no storage space left"),
            _ => {}
        }
        let (kind, title, detail) = self.kind_title_detail();
        let mut body = Map::new();
        let problem_type = match self {
            Self::Conflict(v) => conflict_type(v.kind).to_owned(),
            _ => format!("urn:esignsp:problem:{kind}"),
        };
        body.insert("type".into(), Value::String(problem_type));
        body.insert("title".into(), Value::String(title.to_owned()));
        body.insert("status".into(), json!(status.as_u16()));
        body.insert("detail".into(), Value::String(detail));
        if let Self::Conflict(v) = self {
            body.insert("rule".into(), Value::String(v.rule.to_owned()));
            match &v.current_result {
                Some(CurrentResult::Process(r)) => {
                    body.insert("current_result".into(), result_json(r));
                }
                Some(CurrentResult::Document(r)) => {
                    body.insert("current_result".into(), document_result_json(r));
                }
                None => {}
            }
        }
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        if matches!(self, Self::RequestTimeout) {
            // The rest of the body may still arrive: do not read it as a next request.
            response.insert_header((header::CONNECTION, "close"));
        }
        match self {
            Self::MethodNotAllowed(allow) => {
                response.insert_header((header::ALLOW, *allow));
            }
            Self::Bearer(c) => {
                if let Ok(v) = HeaderValue::from_str(&c.www_authenticate) {
                    response.insert_header((header::WWW_AUTHENTICATE, v));
                }
            }
            Self::Unavailable(_) | Self::ReadOnly(_) | Self::InsufficientStorage(_) | Self::NotReady(..) => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS));
            }
            _ => {}
        }
        response.body(Value::Object(body).to_string())
    }
}

/// The problem type URI of a refused transition (SPEC §4).
#[must_use]
pub const fn conflict_type(kind: ConflictKind) -> &'static str {
    match kind {
        ConflictKind::AlreadyEstablished => "urn:esignsp:problem:result-already-established",
        ConflictKind::ConflictsWithDocuments => "urn:esignsp:problem:result-conflicts-with-documents",
        ConflictKind::DocumentsFrozen => "urn:esignsp:problem:documents-frozen",
    }
}
