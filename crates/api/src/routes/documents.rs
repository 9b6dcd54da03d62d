//! Handlers of the document resource operations O8–O11.

use std::collections::VecDeque;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};
use esignsp_domain::content::{Chunks, ContentReader};
use esignsp_domain::ports::DeleteDocumentOutcome;

use crate::auth::Authenticated;
use crate::dto::{self, DocumentCreation};
use crate::error::{ApiError, BodyErrors, ProtectedErrors};
use crate::extract::DocumentPath;
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
    request_body(content = crate::dto::DocumentForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Created; Location is its self URL", body = crate::dto::Document),
        BodyErrors,
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn create(
    Authenticated(caller): Authenticated,
    DocumentCreation { upload, signers }: DocumentCreation,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let document = state.service.create_document(&caller, upload, signers).await?;
    let body = dto::Document::new(&document, &state.urls);
    Ok(HttpResponse::Created().insert_header((header::LOCATION, body.self_.clone())).json(body))
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
        (status = 200, description = "The document", body = crate::dto::Document),
        (status = 404, description = "No such document", body = crate::error::Problem, content_type = "application/problem+json"),
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn get(
    Authenticated(caller): Authenticated,
    DocumentPath(id): DocumentPath,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let document = state.service.find_document(&caller, &id).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(dto::Document::new(&document, &state.urls)))
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
        (status = 404, description = "No such document", body = crate::error::Problem, content_type = "application/problem+json"),
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn content(
    Authenticated(caller): Authenticated,
    DocumentPath(id): DocumentPath,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let reader = state.service.open_document(&caller, &id).await?.ok_or(ApiError::NotFound)?;
    let mut response = HttpResponse::Ok();
    if reader.content().media_type != "application/pdf" {
        // Anything but a PDF is a download, never rendered in the API's origin.
        response.insert_header((header::CONTENT_DISPOSITION, "attachment"));
    }
    response.insert_header((header::CONTENT_TYPE, reader.content().media_type.clone()));
    Ok(streamed(reader, &mut response))
}

/// A document's bytes as a response body streamed from the store ([`ContentReader`]: at most
/// [`READ_CHUNKS`] chunks, 256 KiB, in memory per response), with `Content-Length` its stored
/// size. The first read is made before the answer starts, so that a store failure then is a
/// 503; a failure later, or a content deleted meanwhile (its bytes replaced by a signature,
/// its document deleted), ends the connection before `Content-Length` bytes: the client sees
/// a truncated answer, never a mixture of two contents.
///
/// [`READ_CHUNKS`]: esignsp_domain::content::READ_CHUNKS
pub(crate) fn streamed(reader: ContentReader, response: &mut actix_web::HttpResponseBuilder) -> HttpResponse {
    let size = reader.content().size;
    let stream = futures_util::stream::try_unfold((reader, VecDeque::new()), |(mut reader, mut pending)| async move {
        loop {
            if let Some(chunk) = pending.pop_front() {
                return Ok(Some((Bytes::from(chunk), (reader, pending))));
            }
            let read = reader.next_chunks().await;
            let content = &reader.content().content;
            match read {
                Ok(Chunks::More(chunks)) => pending.extend(chunks),
                Ok(Chunks::End) => return Ok(None),
                Ok(Chunks::Changed) => {
                    tracing::info!(content_id = %content, "a document's bytes were replaced or deleted during its download");
                    return Err(std::io::Error::other("the document's bytes changed during the download"));
                }
                Err(e) => {
                    tracing::warn!(content_id = %content, error = %e, "a document download failed in the middle");
                    return Err(std::io::Error::other(e));
                }
            }
        }
    });
    response.no_chunking(size).streaming(stream)
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
        (status = 404, description = "No such document", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A process that is not deleted holds it (pending or finished)", body = crate::error::Problem, content_type = "application/problem+json"),
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn delete(
    Authenticated(caller): Authenticated,
    DocumentPath(id): DocumentPath,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    match state.service.delete_document(&caller, &id).await? {
        DeleteDocumentOutcome::Deleted => Ok(HttpResponse::NoContent().finish()),
        DeleteDocumentOutcome::NotFound => Err(ApiError::NotFound),
        DeleteDocumentOutcome::InUse => Err(ApiError::DocumentInUse),
    }
}
