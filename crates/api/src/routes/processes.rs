//! Handlers of the signer-process operations O1–O5, O10 and E1. Each one extracts, converts
//! into a domain call, and maps the outcome; the rules live in the domain crate.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use esignsp_domain::events::{AuditContext, AuditEvent};
use esignsp_domain::process::ProcessRequest;
use esignsp_domain::{Caller, DocumentId, ProcessId};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use crate::auth::Authenticated;
use crate::body::{is_multipart_form, read_creation_form, read_limited, require_json};
use crate::dto::{parse_process_result, parse_strict_json, process_json, result_json};
use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::startup::AppState;

/// The `{id}` path segment as a process id; anything that cannot be one of ours is
/// [`ApiError::NotFound`] without a database query (SPEC §2).
fn process_id(req: &HttpRequest) -> Result<ProcessId, ApiError> {
    req.match_info().get("id").and_then(|s| ProcessId::parse(s).ok()).ok_or(ApiError::NotFound)
}

fn audit(caller: &Caller, request_id: RequestId) -> AuditContext {
    AuditContext { actor: caller.client_id.clone(), request_id: request_id.0 }
}

/// O1 `POST /signer_processes` (multipart): creates a process; 201 with `Location`.
///
/// # Errors
/// 415 unless `multipart/form-data`; 413 beyond the limits; 400 for a malformed form or
/// process JSON; 503 when the database is unavailable.
#[tracing::instrument(skip_all)]
pub async fn create(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    request_id: RequestId,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if !is_multipart_form(req.headers()) {
        return Err(ApiError::UnsupportedMediaType("multipart/form-data"));
    }
    let form = read_creation_form(req.headers(), payload, state.form_limits).await?;
    let request = ProcessRequest::parse(parse_strict_json(&form.process)?)
        .map_err(|e| ApiError::InvalidBody(format!("process: {e}")))?;
    let process = state.service.create(&caller, request, form.documents, &audit(&caller, request_id)).await?;
    let body = process_json(&process, &state.urls);
    Ok(HttpResponse::Created().insert_header((header::LOCATION, state.urls.process(process.id.as_str()))).json(body))
}

/// O2 `GET /signer_processes/{id}`: the process representation.
///
/// # Errors
/// 404 for an unknown or foreign process; 503.
#[tracing::instrument(skip_all)]
pub async fn get(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = process_id(&req)?;
    let process = state.service.find(&caller, &id).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(process_json(&process, &state.urls)))
}

/// O3 `DELETE /signer_processes/{id}`: deletes it and its documents; 204.
///
/// # Errors
/// 404 for an unknown or foreign process; 503.
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
#[tracing::instrument(skip_all)]
pub async fn get_result(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = process_id(&req).map_err(|_| ApiError::ProcessGone)?;
    let process = state.service.find(&caller, &id).await?.ok_or(ApiError::ProcessGone)?;
    let result = process.result.ok_or(ApiError::ResultNotEstablished)?;
    Ok(HttpResponse::Ok().json(result_json(&result)))
}

/// O5 `PUT /signer_processes/{id}/result` — eSignSP `SignerProcessResultUpdate`: establishes
/// the result; 200 with the result as stored. An identical replay answers 200 again.
///
/// # Errors
/// 404 for an unknown or foreign process (PUT does not create); 415 unless
/// `application/json`; 413; 400 for an invalid body; 409 when a rule of SPEC §4 refuses; 503.
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
    let body = read_limited(req.headers(), payload, state.form_limits.max_json_bytes).await?;
    let requested = parse_process_result(&body)?;
    let outcome = state.service.establish_result(&caller, &id, requested, &audit(&caller, request_id)).await?;
    Ok(HttpResponse::Ok().json(result_json(outcome.result())))
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
#[tracing::instrument(skip_all)]
pub async fn events(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = process_id(&req)?;
    let events = state.service.events(&caller, &id).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(json!({ "events": events.iter().map(event_json).collect::<Vec<_>>() })))
}

/// O10 `GET /documents/{id}/content`: the bytes with their stored media type.
///
/// # Errors
/// 404 for an unknown or foreign document; 503.
#[tracing::instrument(skip_all)]
pub async fn document_content(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = req.match_info().get("id").and_then(|s| DocumentId::parse(s).ok()).ok_or(ApiError::NotFound)?;
    let content = state.service.document_content(&caller, &id).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().insert_header((header::CONTENT_TYPE, content.media_type)).body(content.bytes))
}
