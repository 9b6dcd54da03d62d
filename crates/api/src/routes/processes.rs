//! Handlers of the signer-process operations O1–O5, O10 and E1. Each one extracts, converts
//! into a domain call, and maps the outcome; the rules live in the domain crate.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use esignsp_domain::events::{AuditContext, AuditEvent};
use esignsp_domain::process::ProcessRequest;
use esignsp_domain::service::DocumentInput;
use esignsp_domain::Outcome;
use esignsp_domain::{Caller, DocumentId, ProcessId};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use crate::auth::Authenticated;
use crate::body::{is_json, is_multipart_form, read_creation_form, read_limited, require_json};
use crate::dto::{
    document_result_json, parse_document_result, parse_process_result, parse_strict_json, process_documents_json,
    process_json, result_json,
};
use crate::error::ApiError;
use crate::metrics::Metrics;
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

/// The `{document_id}` path segment; like [`process_id`], never a 400.
///
/// # Errors
/// [`ApiError::NotFound`] for a missing or malformed id.
pub fn document_id(req: &HttpRequest, name: &str) -> Result<DocumentId, ApiError> {
    req.match_info().get(name).and_then(|s| DocumentId::parse(s).ok()).ok_or(ApiError::NotFound)
}

pub(crate) fn audit(caller: &Caller, request_id: RequestId) -> AuditContext {
    AuditContext { actor: caller.client_id.clone(), request_id: request_id.0 }
}

/// The documents of the JSON form of O1: `[{"id": …} | {"url": "…/documents/{id}"}, …]`.
///
/// # Errors
/// [`ApiError::InvalidBody`] when `value` is not such an array, or an entry names no id that
/// can be one of ours.
pub fn referenced_documents(value: Option<serde_json::Value>) -> Result<Vec<DocumentInput>, ApiError> {
    let invalid = |d: &str| ApiError::InvalidBody(format!("documents: {d}"));
    let Some(serde_json::Value::Array(entries)) = value else {
        return Err(invalid("must be an array of {\"id\"} or {\"url\"} objects"));
    };
    entries
        .iter()
        .map(|entry| {
            let reference = match (entry.get("id").and_then(Value::as_str), entry.get("url").and_then(Value::as_str)) {
                (Some(id), _) => id,
                (None, Some(url)) => {
                    let path = url.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/');
                    path.rsplit_once("/documents/").map(|(_, id)| id).unwrap_or_default()
                }
                (None, None) => return Err(invalid("each entry needs an id or a url")),
            };
            DocumentId::parse(reference)
                .map(DocumentInput::Existing)
                .map_err(|_| ApiError::InvalidBody("documents: a referenced document does not exist".to_owned()))
        })
        .collect()
}

/// O1 `POST /signer_processes`: creates a process, from a multipart body (part `process` +
/// parts `document`) or from JSON whose `documents` reference documents created with O8;
/// 201 with `Location`.
///
/// # Errors
/// 415 unless `multipart/form-data` or `application/json`; 413 beyond the limits, naming
/// which; 400 for a malformed form, invalid process JSON, a text that fails the rule of
/// [`esignsp_domain::text`] (naming the part or member), a `document` part declared a PDF
/// whose bytes are not one, or a document that is unknown or another client's; 503 when the
/// database is unavailable.
#[utoipa::path(
    post,
    operation_id = "SignerProcessCreate",
    path = "/trustedx-resources/esignsp/v2/signer_processes",
    request_body(content(
        (crate::openapi::CreateProcessForm = "multipart/form-data"),
        (crate::openapi::CreateProcessJson = "application/json")
    )),
    responses(
        (status = 201, description = "Created; Location is its self URL", body = crate::openapi::SignerProcess),
        (status = 408, description = "The body was not received in time", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported media type or content encoding", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed request or Authorization header", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, invalid or expired access token (RFC 6750)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the required scope", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or verification keys unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn create(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    request_id: RequestId,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (process, documents) = if is_multipart_form(req.headers()) {
        let form = read_creation_form(req.headers(), payload, state.form_limits).await?;
        let process = form.process.ok_or_else(|| ApiError::InvalidBody("the `process` part is missing".to_owned()))?;
        (parse_strict_json(&process)?, form.documents.into_iter().map(DocumentInput::Upload).collect())
    } else if is_json(req.headers()) {
        let body =
            read_limited(req.headers(), payload, state.form_limits.max_json_bytes, state.form_limits.body_timeout)
                .await?;
        let mut process = parse_strict_json(&body)?;
        let documents = referenced_documents(process.as_object_mut().and_then(|o| o.remove("documents")))?;
        (process, documents)
    } else {
        return Err(ApiError::UnsupportedMediaType("multipart/form-data or application/json"));
    };
    let request = ProcessRequest::parse(process).map_err(|e| ApiError::InvalidBody(format!("process: {e}")))?;
    let process = state.service.create(&caller, request, documents, &audit(&caller, request_id)).await?;
    let body = process_json(&process, &state.urls);
    Ok(HttpResponse::Created().insert_header((header::LOCATION, state.urls.process(process.id.as_str()))).json(body))
}

/// O2 `GET /signer_processes/{id}`: the process representation.
///
/// # Errors
/// 404 for an unknown or foreign process; 503.
#[utoipa::path(
    get,
    operation_id = "SignerProcessRead",
    path = "/trustedx-resources/esignsp/v2/signer_processes/{id}",
    params(("id" = String, Path, description = "Signature process id")),
    responses(
        (status = 200, description = "The process", body = crate::openapi::SignerProcess),
        (status = 404, description = "No such process", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed request or Authorization header", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, invalid or expired access token (RFC 6750)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the required scope", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or verification keys unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn get(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    request_id: RequestId,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = process_id(&req)?;
    let process = state.service.find(&caller, &id, &audit(&caller, request_id)).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(process_json(&process, &state.urls)))
}

/// O3 `DELETE /signer_processes/{id}`: deletes it and its documents; 204.
///
/// # Errors
/// 404 for an unknown or foreign process; 503.
#[utoipa::path(
    delete,
    operation_id = "SignerProcessDelete",
    path = "/trustedx-resources/esignsp/v2/signer_processes/{id}",
    params(("id" = String, Path, description = "Signature process id")),
    responses(
        (status = 204, description = "Deleted with its documents"),
        (status = 404, description = "No such process", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed request or Authorization header", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, invalid or expired access token (RFC 6750)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the required scope", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or verification keys unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn delete(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    request_id: RequestId,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = process_id(&req)?;
    if state.service.delete(&caller, &id, &audit(&caller, request_id)).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}

/// O4 `GET /signer_processes/{id}/result`.
///
/// # Errors
/// 404 while the process has no result; 410 for an unknown or foreign process; 503.
#[utoipa::path(
    get,
    operation_id = "SignerProcessResultRead",
    path = "/trustedx-resources/esignsp/v2/signer_processes/{id}/result",
    params(("id" = String, Path, description = "Signature process id")),
    responses(
        (status = 200, description = "The result", body = crate::openapi::ProcessResult),
        (status = 404, description = "The process has no result yet", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 410, description = "No such process", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed request or Authorization header", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, invalid or expired access token (RFC 6750)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the required scope", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or verification keys unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn get_result(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    request_id: RequestId,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = process_id(&req).map_err(|_| ApiError::ProcessGone)?;
    let process = state.service.find(&caller, &id, &audit(&caller, request_id)).await?.ok_or(ApiError::ProcessGone)?;
    let result = process.result.ok_or(ApiError::ResultNotEstablished)?;
    Ok(HttpResponse::Ok().json(result_json(&result)))
}

/// O5 `PUT /signer_processes/{id}/result` — eSignSP `SignerProcessResultUpdate`: establishes
/// the result; 200 with the result as stored. An identical replay answers 200 again.
///
/// # Errors
/// 404 for an unknown or foreign process (PUT does not create); 415 unless
/// `application/json`; 413; 400 for an invalid body; 409 when a rule of SPEC §4 refuses; 503.
#[utoipa::path(
    put,
    operation_id = "SignerProcessResultUpdate",
    path = "/trustedx-resources/esignsp/v2/signer_processes/{id}/result",
    params(("id" = String, Path, description = "Signature process id")),
    request_body(content = crate::openapi::ProcessResult, content_type = "application/json"),
    responses(
        (status = 200, description = "The result as stored", body = crate::openapi::ProcessResult),
        (status = 404, description = "No such process", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A rule of the result state machine refuses it", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body was not received in time", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported media type or content encoding", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed request or Authorization header", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, invalid or expired access token (RFC 6750)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the required scope", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or verification keys unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn put_result(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    request_id: RequestId,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = process_id(&req)?;
    require_json(req.headers())?;
    let body =
        read_limited(req.headers(), payload, state.form_limits.max_json_bytes, state.form_limits.body_timeout).await?;
    let requested = parse_process_result(&body)?;
    let outcome = state.service.establish_result(&caller, &id, requested, &audit(&caller, request_id)).await?;
    if let (Outcome::Established(result), Some(metrics)) = (&outcome, req.app_data::<web::Data<Metrics>>()) {
        metrics.results.with_label_values(&[result.status.as_str()]).inc();
    }
    Ok(HttpResponse::Ok().json(result_json(outcome.result())))
}

/// O6 `GET /signer_processes/{id}/documents`: `{"documents": [{id, url, content, result?}]}`.
///
/// # Errors
/// 404 for an unknown or foreign process; 503.
#[utoipa::path(
    get,
    operation_id = "SignerProcessDocumentsRead",
    path = "/trustedx-resources/esignsp/v2/signer_processes/{id}/documents",
    params(("id" = String, Path, description = "Signature process id")),
    responses(
        (status = 200, description = "The documents", body = crate::openapi::ProcessDocuments),
        (status = 404, description = "No such process", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed request or Authorization header", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, invalid or expired access token (RFC 6750)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the required scope", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or verification keys unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn documents(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    request_id: RequestId,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = process_id(&req)?;
    let process = state.service.find(&caller, &id, &audit(&caller, request_id)).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(json!({ "documents": process_documents_json(&process, &state.urls) })))
}

/// O7 `PUT /signer_processes/{id}/documents/{document_id}/result`: sets one document's result
/// (`finished` | `failed` | `canceled`); 200 echoing it as stored.
///
/// # Errors
/// 404 for an unknown or foreign process or a document not in it; 415; 413; 400; 409 when a
/// rule of SPEC §4 refuses (terminal, documents frozen, expiry); 503.
#[utoipa::path(
    put,
    operation_id = "SignerProcessDocumentResultUpdate",
    path = "/trustedx-resources/esignsp/v2/signer_processes/{id}/documents/{document_id}/result",
    params(("id" = String, Path, description = "Signature process id"), ("document_id" = String, Path, description = "Document id")),
    request_body(content = crate::openapi::DocumentResult, content_type = "application/json"),
    responses(
        (status = 200, description = "The document result as stored", body = crate::openapi::DocumentResult),
        (status = 404, description = "No such process or document", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A rule of the result state machine refuses it", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body was not received in time", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported media type or content encoding", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed request or Authorization header", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, invalid or expired access token (RFC 6750)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the required scope", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or verification keys unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn put_document_result(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    request_id: RequestId,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = process_id(&req)?;
    let document = document_id(&req, "document_id")?;
    require_json(req.headers())?;
    let body =
        read_limited(req.headers(), payload, state.form_limits.max_json_bytes, state.form_limits.body_timeout).await?;
    let requested = parse_document_result(&body)?;
    let outcome =
        state.service.set_document_result(&caller, &id, &document, requested, &audit(&caller, request_id)).await?;
    Ok(HttpResponse::Ok().json(document_result_json(outcome.result())))
}

fn event_json(e: &AuditEvent) -> Value {
    json!({
        "type": e.kind.as_str(),
        "at": e.at.format(&Rfc3339).unwrap_or_default(),
        "actor": e.actor,
        "request_id": e.request_id,
        "document_id": e.document_id.as_ref().map(DocumentId::as_str),
        "old_status": e.old_status,
        "new_status": e.new_status,
    })
}

/// E1 `GET /signer_processes/{id}/events` (extension): the audit trail, oldest first.
///
/// # Errors
/// 404 for an unknown or foreign process; 503.
#[utoipa::path(
    get,
    operation_id = "SignerProcessEventsRead",
    path = "/trustedx-resources/esignsp/v2/signer_processes/{id}/events",
    params(("id" = String, Path, description = "Signature process id")),
    responses(
        (status = 200, description = "The audit trail, oldest first", body = crate::openapi::AuditEvents),
        (status = 404, description = "No such process", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed request or Authorization header", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, invalid or expired access token (RFC 6750)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the required scope", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or verification keys unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn events(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    request_id: RequestId,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = process_id(&req)?;
    // Reading through `find` materialises a due expiry, so the trail shows it.
    state.service.find(&caller, &id, &audit(&caller, request_id)).await?.ok_or(ApiError::NotFound)?;
    let events = state.service.events(&caller, &id).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(json!({ "events": events.iter().map(event_json).collect::<Vec<_>>() })))
}
