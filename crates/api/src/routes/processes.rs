//! Handlers of the signer-process operations O1–O7 and E1. Each one extracts
//! ([`crate::extract`]), calls the domain service, and maps the outcome to the wire model
//! ([`crate::dto`]); the rules live in the domain crate, the errors' answers in
//! [`crate::error`].

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use esignsp_domain::result::{DocumentResult, ProcessResult};
use esignsp_domain::Outcome;

use crate::auth::Authenticated;
use crate::dto::{self, ProcessCreation};
use crate::error::{ApiError, BodyErrors, ProtectedErrors};
use crate::extract::{Audit, ProcessDocumentPath, ProcessPath, ResultPath, StrictJson};
use crate::metrics::Metrics;
use crate::state::AppState;

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
        (crate::dto::CreateProcessForm = "multipart/form-data"),
        (crate::dto::CreateProcessJson = "application/json")
    )),
    responses(
        (status = 201, description = "Created; Location is its self URL", body = crate::dto::SignerProcess),
        BodyErrors,
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn create(
    Authenticated(caller): Authenticated,
    Audit(audit): Audit,
    ProcessCreation { request, documents }: ProcessCreation,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let process = state.service.create(&caller, request, documents, &audit).await?;
    let body = dto::SignerProcess::new(&process, &state.urls);
    Ok(HttpResponse::Created().insert_header((header::LOCATION, body.self_.clone())).json(body))
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
        (status = 200, description = "The process", body = crate::dto::SignerProcess),
        (status = 404, description = "No such process", body = crate::error::Problem, content_type = "application/problem+json"),
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn get(
    Authenticated(caller): Authenticated,
    ProcessPath(id): ProcessPath,
    Audit(audit): Audit,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let process = state.service.find(&caller, &id, &audit).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(dto::SignerProcess::new(&process, &state.urls)))
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
        (status = 404, description = "No such process", body = crate::error::Problem, content_type = "application/problem+json"),
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn delete(
    Authenticated(caller): Authenticated,
    ProcessPath(id): ProcessPath,
    Audit(audit): Audit,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if state.service.delete(&caller, &id, &audit).await? {
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
        (status = 200, description = "The result", body = crate::dto::ProcessResult),
        (status = 404, description = "The process has no result yet", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 410, description = "No such process", body = crate::error::Problem, content_type = "application/problem+json"),
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn get_result(
    Authenticated(caller): Authenticated,
    ResultPath(id): ResultPath,
    Audit(audit): Audit,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let process = state.service.find(&caller, &id, &audit).await?.ok_or(ApiError::ProcessGone)?;
    let result = process.result.ok_or(ApiError::ResultNotEstablished)?;
    Ok(HttpResponse::Ok().json(dto::ProcessResult::from(&result)))
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
    request_body(content = crate::dto::ProcessResult, content_type = "application/json"),
    responses(
        (status = 200, description = "The result as stored", body = crate::dto::ProcessResult),
        (status = 404, description = "No such process", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A rule of the result state machine refuses it", body = crate::error::Problem, content_type = "application/problem+json"),
        BodyErrors,
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn put_result(
    Authenticated(caller): Authenticated,
    ProcessPath(id): ProcessPath,
    Audit(audit): Audit,
    StrictJson(requested): StrictJson<ProcessResult>,
    state: web::Data<AppState>,
    metrics: Option<web::Data<Metrics>>,
) -> Result<HttpResponse, ApiError> {
    let outcome = state.service.establish_result(&caller, &id, requested, &audit).await?;
    if let (Outcome::Established(result), Some(metrics)) = (&outcome, &metrics) {
        metrics.results.with_label_values(&[result.status.as_str()]).inc();
    }
    Ok(HttpResponse::Ok().json(dto::ProcessResult::from(outcome.result())))
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
        (status = 200, description = "The documents", body = crate::dto::ProcessDocuments),
        (status = 404, description = "No such process", body = crate::error::Problem, content_type = "application/problem+json"),
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn documents(
    Authenticated(caller): Authenticated,
    ProcessPath(id): ProcessPath,
    Audit(audit): Audit,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let process = state.service.find(&caller, &id, &audit).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(dto::ProcessDocuments { documents: dto::ProcessDocument::all(&process, &state.urls) }))
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
    request_body(content = crate::dto::DocumentResult, content_type = "application/json"),
    responses(
        (status = 200, description = "The document result as stored", body = crate::dto::DocumentResult),
        (status = 404, description = "No such process or document", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A rule of the result state machine refuses it", body = crate::error::Problem, content_type = "application/problem+json"),
        BodyErrors,
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn put_document_result(
    Authenticated(caller): Authenticated,
    ProcessDocumentPath(id, document): ProcessDocumentPath,
    Audit(audit): Audit,
    StrictJson(requested): StrictJson<DocumentResult>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let outcome = state.service.set_document_result(&caller, &id, &document, requested, &audit).await?;
    Ok(HttpResponse::Ok().json(dto::DocumentResult::from(outcome.result())))
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
        (status = 200, description = "The audit trail, oldest first", body = crate::dto::AuditEvents),
        (status = 404, description = "No such process", body = crate::error::Problem, content_type = "application/problem+json"),
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn events(
    Authenticated(caller): Authenticated,
    ProcessPath(id): ProcessPath,
    Audit(audit): Audit,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // Reading through `find` materialises a due expiry, so the trail shows it.
    state.service.find(&caller, &id, &audit).await?.ok_or(ApiError::NotFound)?;
    let events = state.service.events(&caller, &id).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(dto::AuditEvents::new(&events)))
}
