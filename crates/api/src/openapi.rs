//! The OpenAPI 3.1 description of the API (`GET /openapi.json`), generated from the handlers'
//! `#[utoipa::path]` attributes and the schemas below, and a Redoc page (`GET /docs`).
//!
//! The schemas describe the JSON the handlers build (see [`crate::dto`]); they exist for the
//! document only.
#![allow(missing_docs, dead_code)]

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// `status` of a process result (eSignSP `SignerProcessResultUpdate`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcessResultStatus {
    Finished,
    Failed,
    FailedDocuments,
    Canceled,
}

/// `status` of a document result.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentResultStatus {
    Finished,
    Failed,
    Canceled,
}

/// `details` of a result: an optional message of at most 4096 characters without NUL.
#[derive(Serialize, ToSchema)]
pub struct ResultDetails {
    #[schema(max_length = 4096)]
    pub message: Option<String>,
}

/// A process result: `{"status": s, "details": {"message": m}}`.
#[derive(Serialize, ToSchema)]
pub struct ProcessResult {
    pub status: ProcessResultStatus,
    pub details: Option<ResultDetails>,
}

/// A document result.
#[derive(Serialize, ToSchema)]
pub struct DocumentResult {
    pub status: DocumentResultStatus,
    pub details: Option<ResultDetails>,
}

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// `urn:esignsp:problem:<kind>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The state-machine rule that refused a transition (409).
    pub rule: Option<String>,
    /// The stored result a 409 conflicts with.
    pub current_result: Option<ProcessResult>,
}

#[derive(Serialize, ToSchema)]
pub struct Task {
    /// `UserBrowserTask`.
    #[serde(rename = "type")]
    pub type_: String,
    pub id: String,
    /// The browser entry point (O12).
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct Tasks {
    pub pending: Vec<Task>,
}

/// A document of a process.
#[derive(Serialize, ToSchema)]
pub struct ProcessDocument {
    pub id: String,
    pub url: String,
    pub content: String,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    pub result: Option<DocumentResult>,
}

/// A signature process (O1, O2).
#[derive(Serialize, ToSchema)]
pub struct SignerProcess {
    pub id: String,
    #[serde(rename = "self")]
    pub self_: String,
    pub process_type: String,
    pub labels: Option<Vec<Vec<String>>>,
    pub signer: Option<serde_json::Map<String, serde_json::Value>>,
    pub ui_locales: Option<Vec<String>>,
    pub finish_callback_url: Option<String>,
    pub views: Option<serde_json::Map<String, serde_json::Value>>,
    pub timestamp: Option<serde_json::Map<String, serde_json::Value>>,
    pub result: Option<ProcessResult>,
    pub tasks: Tasks,
    pub documents: Vec<ProcessDocument>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct ProcessDocuments {
    pub documents: Vec<ProcessDocument>,
}

/// A document resource (O8, O9).
#[derive(Serialize, ToSchema)]
pub struct Document {
    pub id: String,
    #[serde(rename = "self")]
    pub self_: String,
    pub content: String,
    pub signers: Vec<serde_json::Map<String, serde_json::Value>>,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// One audit event (E1).
#[derive(Serialize, ToSchema)]
pub struct AuditEvent {
    /// `created`, `document_result`, `result`, `expired` or `deleted`.
    #[serde(rename = "type")]
    pub type_: String,
    #[schema(format = DateTime)]
    pub at: String,
    pub actor: String,
    pub request_id: String,
    pub document_id: Option<String>,
    pub old_status: Option<String>,
    pub new_status: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEvents {
    pub events: Vec<AuditEvent>,
}

/// O1 multipart body: `process` (the process JSON) and one or more `document` files.
#[derive(Serialize, ToSchema)]
pub struct CreateProcessForm {
    /// The process JSON (`process_type`, `labels`, `signer`, `ui_locales`, `finish_callback_url`, …).
    pub process: String,
    #[schema(value_type = Vec<String>, format = Binary)]
    pub document: Vec<Vec<u8>>,
}

/// A reference to a document created with O8.
#[derive(Serialize, ToSchema)]
pub struct DocumentReference {
    pub id: Option<String>,
    pub url: Option<String>,
}

/// O1 JSON body: the process JSON with `documents` referencing O8 documents.
#[derive(Serialize, ToSchema)]
pub struct CreateProcessJson {
    pub process_type: String,
    pub documents: Vec<DocumentReference>,
    pub labels: Option<Vec<Vec<String>>>,
    pub finish_callback_url: Option<String>,
    pub ui_locales: Option<Vec<String>>,
}

/// O8 multipart body: one `document` file and an optional `signers` JSON array.
#[derive(Serialize, ToSchema)]
pub struct DocumentForm {
    #[schema(value_type = String, format = Binary)]
    pub document: Vec<u8>,
    pub signers: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

struct BearerSecurity;

impl Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "RFC 6750 bearer access token (RFC 9068 JWT) with scope urn:safelayer:eidas:sign:process:document",
                    ))
                    .build(),
            ),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "esignsp — eSignSP v2 document signature process API", version = env!("CARGO_PKG_VERSION")),
    paths(
        crate::routes::processes::create,
        crate::routes::processes::get,
        crate::routes::processes::delete,
        crate::routes::processes::get_result,
        crate::routes::processes::put_result,
        crate::routes::processes::documents,
        crate::routes::processes::put_document_result,
        crate::routes::processes::events,
        crate::routes::documents::create,
        crate::routes::documents::get,
        crate::routes::documents::content,
        crate::routes::documents::delete,
        crate::routes::ui::browser,
        crate::routes::health::healthz,
        crate::routes::health::readyz,
        crate::routes::health::metrics,
    ),
    components(schemas(
        ProcessResult, DocumentResult, Problem, SignerProcess, ProcessDocuments, Document, AuditEvents,
        CreateProcessForm, CreateProcessJson, DocumentForm, Health
    )),
    modifiers(&BearerSecurity),
)]
pub struct ApiDoc;
