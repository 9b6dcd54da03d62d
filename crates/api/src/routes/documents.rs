//! Handlers of the document resource operations O8–O11.

use std::collections::VecDeque;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};
use esignsp_domain::ports::{DeleteDocumentOutcome, RepositoryError};
use esignsp_domain::process::DocumentContent;
use esignsp_domain::service::READ_CHUNKS;
use esignsp_domain::{ContentId, SignerProcessService};

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
    let current = async || state.service.document_content(&caller, &id).await;
    let (content, body) = ContentBody::open_current(&state.service, current).await?.ok_or(ApiError::NotFound)?;
    let mut response = HttpResponse::Ok();
    if content.media_type != "application/pdf" {
        // Anything but a PDF is a download, never rendered in the API's origin.
        response.insert_header((header::CONTENT_DISPOSITION, "attachment"));
    }
    response.insert_header((header::CONTENT_TYPE, content.media_type.clone()));
    Ok(body.respond(&mut response))
}

/// A document's bytes as a response body streamed from the store, [`READ_CHUNKS`] chunks per
/// read (at most 256 KiB in memory per response), with `Content-Length` its stored size. The
/// first read is made before the answer starts, so that a store failure then is a 503; a
/// failure later, or a content deleted meanwhile (its bytes replaced by a signature, its
/// document deleted), ends the connection before `Content-Length` bytes: the client sees a
/// truncated answer, never a mixture of two contents.
pub(crate) struct ContentBody {
    reading: Reading,
}

struct Reading {
    service: SignerProcessService,
    content: ContentId,
    size: u64,
    next: u32,
    sent: u64,
    pending: VecDeque<Vec<u8>>,
    exhausted: bool,
}

/// How often a download looks up its document's content again when the content it found was
/// replaced (signed) or deleted before its first read.
const OPEN_ATTEMPTS: usize = 3;

impl ContentBody {
    /// Starts reading the content `current` finds (`None`: no such document): when that
    /// content is gone at the first read (a signature replaced it, or the document was deleted,
    /// just then), `current` is asked again, so that the answer is the new bytes or a 404, never
    /// an empty answer.
    ///
    /// # Errors
    /// Storage errors; 503 when the content keeps changing.
    pub(crate) async fn open_current(
        service: &SignerProcessService,
        current: impl AsyncFn() -> Result<Option<DocumentContent>, RepositoryError>,
    ) -> Result<Option<(DocumentContent, Self)>, ApiError> {
        for _ in 0..OPEN_ATTEMPTS {
            let Some(content) = current().await? else { return Ok(None) };
            if let Some(body) = Self::open(service, &content).await? {
                return Ok(Some((content, body)));
            }
        }
        Err(RepositoryError::Unavailable("the document's bytes kept changing while it was opened".into()).into())
    }

    /// Starts reading `content`; `None` when it is gone already.
    async fn open(service: &SignerProcessService, content: &DocumentContent) -> Result<Option<Self>, ApiError> {
        let first = service.content_chunks(&content.content, 0, READ_CHUNKS).await?;
        let read: u64 = first.iter().map(|c| c.len() as u64).sum();
        let exhausted = first.len() < READ_CHUNKS as usize;
        if first.is_empty() || read > content.size || (exhausted && read != content.size) {
            return Ok(None);
        }
        Ok(Some(Self {
            reading: Reading {
                service: service.clone(),
                content: content.content.clone(),
                size: content.size,
                next: u32::try_from(first.len()).unwrap_or(u32::MAX),
                sent: 0,
                exhausted,
                pending: first.into(),
            },
        }))
    }

    /// Whether the bytes start with `prefix` (of at most one chunk's length).
    pub(crate) fn starts_with(&self, prefix: &[u8]) -> bool {
        self.reading.pending.front().is_some_and(|chunk| chunk.starts_with(prefix))
    }

    /// `response` with this body.
    pub(crate) fn respond(self, response: &mut actix_web::HttpResponseBuilder) -> HttpResponse {
        let size = self.reading.size;
        let stream = futures_util::stream::try_unfold(self.reading, |mut reading| async move {
            loop {
                if let Some(chunk) = reading.pending.pop_front() {
                    reading.sent += chunk.len() as u64;
                    if reading.sent > reading.size {
                        return Err(truncated(&reading));
                    }
                    return Ok(Some((Bytes::from(chunk), reading)));
                }
                if reading.exhausted {
                    return if reading.sent == reading.size { Ok(None) } else { Err(truncated(&reading)) };
                }
                let chunks = reading.service.content_chunks(&reading.content, reading.next, READ_CHUNKS).await;
                let chunks = chunks.map_err(|e| {
                    tracing::warn!(content_id = %reading.content, error = %e, "a document download failed in the middle");
                    std::io::Error::other(e)
                })?;
                reading.exhausted = chunks.len() < READ_CHUNKS as usize;
                reading.next += u32::try_from(chunks.len()).unwrap_or(u32::MAX);
                reading.pending.extend(chunks);
            }
        });
        response.no_chunking(size).streaming(stream)
    }
}

/// The error that ends a download whose content changed while it was sent.
fn truncated(reading: &Reading) -> std::io::Error {
    tracing::info!(content_id = %reading.content, "a document's bytes were replaced or deleted during its download");
    std::io::Error::other("the document's bytes changed during the download")
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
