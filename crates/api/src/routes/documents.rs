//! Handlers of the document resource operations O8–O11.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use esignsp_domain::ports::DeleteDocumentOutcome;
use esignsp_domain::process::validate_signers;

use crate::auth::Authenticated;
use crate::body::{is_multipart_form, read_creation_form};
use crate::dto::{document_json, parse_strict_json};
use crate::error::ApiError;
use crate::routes::processes::document_id;
use crate::state::AppState;

/// O8 `POST /documents` (multipart part `document`, optional part `signers` = JSON array of
/// signature definitions): 201 with `Location` and `{id, self, content, signers}`.
///
/// # Errors
/// 415 unless `multipart/form-data`; 413 naming what was too large; 400 without exactly one
/// `document` part, with invalid `signers`, a text that fails the rule of
/// [`esignsp_domain::text`], or a `document` declared a PDF whose bytes are not one; 503.
#[utoipa::path(
    post,
    operation_id = "DocumentCreate",
    path = "/trustedx-resources/esignsp/v2/documents",
    request_body(content = crate::openapi::DocumentForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Created; Location is its self URL", body = crate::openapi::Document),
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
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if !is_multipart_form(req.headers()) {
        return Err(ApiError::UnsupportedMediaType("multipart/form-data"));
    }
    let mut form = read_creation_form(req.headers(), payload, state.form_limits).await?;
    if form.documents.len() != 1 {
        return Err(ApiError::InvalidBody("exactly one `document` part is required".to_owned()));
    }
    let signers = form
        .signers
        .map(|bytes| {
            let value = parse_strict_json(&bytes)?;
            validate_signers(&value).map_err(|e| ApiError::InvalidBody(format!("the `signers` part: {e}")))?;
            Ok::<_, ApiError>(value)
        })
        .transpose()?;
    let upload = form.documents.remove(0);
    let document = state.service.create_document(&caller, upload, signers).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, state.urls.document(document.id.as_str())))
        .json(document_json(&document, &state.urls)))
}

/// O9 `GET /documents/{id}`: `{id, self, content, signers}`.
///
/// # Errors
/// 404 for an unknown or foreign document; 503.
#[utoipa::path(
    get,
    operation_id = "DocumentRead",
    path = "/trustedx-resources/esignsp/v2/documents/{id}",
    params(("id" = String, Path, description = "Document id")),
    responses(
        (status = 200, description = "The document", body = crate::openapi::Document),
        (status = 404, description = "No such document", body = crate::openapi::Problem, content_type = "application/problem+json"),
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
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = document_id(&req, "id")?;
    let document = state.service.find_document(&caller, &id).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(document_json(&document, &state.urls)))
}

/// O10 `GET /documents/{id}/content`: the bytes with their stored media type.
///
/// # Errors
/// 404 for an unknown or foreign document; 503.
#[utoipa::path(
    get,
    operation_id = "DocumentContentRead",
    path = "/trustedx-resources/esignsp/v2/documents/{id}/content",
    params(("id" = String, Path, description = "Document id")),
    responses(
        (status = 200, description = "The bytes with their stored media type (application/pdf for PDFs)", content_type = "*/*", body = Vec<u8>),
        (status = 404, description = "No such document", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed request or Authorization header", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, invalid or expired access token (RFC 6750)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the required scope", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or verification keys unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn content(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = document_id(&req, "id")?;
    let content = state.service.document_content(&caller, &id).await?.ok_or(ApiError::NotFound)?;
    let mut response = HttpResponse::Ok();
    if content.media_type != "application/pdf" {
        // Anything but a PDF is a download, never rendered in the API's origin.
        response.insert_header((header::CONTENT_DISPOSITION, "attachment"));
    }
    Ok(response.insert_header((header::CONTENT_TYPE, content.media_type)).body(content.bytes))
}

/// O11 `DELETE /documents/{id}`: 204.
///
/// # Errors
/// 404 for an unknown or foreign document; 409 `document-in-use` while any process that is
/// not deleted holds it, pending or finished (a finished process keeps its record whole); 503.
#[utoipa::path(
    delete,
    operation_id = "DocumentDelete",
    path = "/trustedx-resources/esignsp/v2/documents/{id}",
    params(("id" = String, Path, description = "Document id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such document", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A process that is not deleted holds it (pending or finished)", body = crate::openapi::Problem, content_type = "application/problem+json"),
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
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = document_id(&req, "id")?;
    match state.service.delete_document(&caller, &id).await? {
        DeleteDocumentOutcome::Deleted => Ok(HttpResponse::NoContent().finish()),
        DeleteDocumentOutcome::NotFound => Err(ApiError::NotFound),
        DeleteDocumentOutcome::InUse => Err(ApiError::DocumentInUse),
    }
}
