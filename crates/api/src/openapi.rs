//! The OpenAPI 3.1 description of the API (`GET /openapi.json`), generated from the handlers'
//! `#[utoipa::path]` attributes and the schemas below; `GET /docs` renders it (Swagger UI,
//! [`crate::routes::docs`]).
//!
//! The schemas describe the JSON the handlers build (see [`crate::dto`]); they exist for the
//! document only.
#![allow(missing_docs, dead_code)]

use serde::Serialize;
use utoipa::openapi::encoding::EncodingBuilder;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::link::{Link, LinkBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
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
    /// The signature definitions sent with O8, as sent (`[]` when none were).
    pub signers: Vec<SignatureDefinition>,
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

/// `process_type` of a process (SPEC §3.1).
#[derive(Serialize, ToSchema)]
pub enum ProcessType {
    #[serde(rename = "urn:safelayer:eidas:processes:document:sign:esigp")]
    Esigp,
    #[serde(rename = "urn:safelayer:eidas:processes:document:sign")]
    Sign,
}

/// The process JSON of O1 (SPEC §3.1): `process_type` and the members stored and returned by
/// O2; unknown members are ignored.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "process_type": "urn:safelayer:eidas:processes:document:sign:esigp",
    "labels": [["digitalid", "server"]],
    "signer": {"signature_policy_id": "urn:safelayer:eidas:policies:sign:document:pdf",
               "parameters": {"type": "pades", "signature_field": {"name": "Sign1", "page": "1"}}},
    "ui_locales": ["en"],
    "finish_callback_url": "https://relying.example/done"
}))]
pub struct ProcessJson {
    pub process_type: ProcessType,
    /// Labels of the process: an array of arrays of strings.
    #[schema(nullable = false)]
    pub labels: Option<Vec<Vec<String>>>,
    /// How the signer signs (`signature_policy_id`, `parameters`; see `SignatureDefinition`),
    /// stored and returned as sent.
    #[schema(nullable = false)]
    pub signer: Option<serde_json::Map<String, serde_json::Value>>,
    #[schema(nullable = false)]
    pub ui_locales: Option<Vec<String>>,
    /// Absolute URI the browser returns to (custom schemes allowed; not `javascript:`, `data:`,
    /// `vbscript:` or `file:`).
    #[schema(nullable = false, format = "uri")]
    pub finish_callback_url: Option<String>,
    #[schema(nullable = false)]
    pub views: Option<serde_json::Map<String, serde_json::Value>>,
    #[schema(nullable = false)]
    pub timestamp: Option<serde_json::Map<String, serde_json::Value>>,
}

/// O1 multipart body: `process` (the process JSON, a JSON part) and one or more `document`
/// files.
#[derive(Serialize, ToSchema)]
pub struct CreateProcessForm {
    pub process: ProcessJson,
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1)]
    pub document: Vec<Vec<u8>>,
}

/// A page number, as a number or as a string of digits (clients send both, SPEC §3.1).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum PageNumber {
    Number(u32),
    Text(String),
}

/// Where a signature goes in a PDF.
#[derive(Serialize, ToSchema)]
pub struct SignatureField {
    /// Name of the signature field.
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// The page the field is on.
    #[schema(nullable = false)]
    pub page: Option<PageNumber>,
}

/// Parameters of a signature.
#[derive(Serialize, ToSchema)]
pub struct SignatureParameters {
    /// The signature format, e.g. `pades`.
    #[serde(rename = "type")]
    #[schema(nullable = false)]
    pub type_: Option<String>,
    #[schema(nullable = false)]
    pub signature_field: Option<SignatureField>,
}

/// A signature definition: how and where a document is to be signed (an entry of O8's
/// `signers`; the same shape as a process's `signer`). The members below are checked for
/// type (400 otherwise); any other member is stored and returned as sent.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "signature_policy_id": "urn:safelayer:eidas:policies:sign:document:pdf",
    "parameters": {"type": "pades", "signature_field": {"name": "Sign1", "page": "1"}}
}))]
pub struct SignatureDefinition {
    /// The signature policy, e.g. `urn:safelayer:eidas:policies:sign:document:pdf`.
    #[schema(nullable = false)]
    pub signature_policy_id: Option<String>,
    #[schema(nullable = false)]
    pub parameters: Option<SignatureParameters>,
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

/// O8 multipart body: one `document` file and an optional `signers` part, a JSON array of
/// signature definitions.
#[derive(Serialize, ToSchema)]
pub struct DocumentForm {
    #[schema(value_type = String, format = Binary)]
    pub document: Vec<u8>,
    #[schema(nullable = false, example = json!([{
        "signature_policy_id": "urn:safelayer:eidas:policies:sign:document:pdf",
        "parameters": {"type": "pades", "signature_field": {"name": "Sign1", "page": "1"}}
    }]))]
    pub signers: Option<Vec<SignatureDefinition>>,
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

/// `(operation id, parameter, runtime expression)`: the id-taking operations a created process
/// (O1's 201 body) leads to (OpenAPI 3.1 §4.8.20 Link Objects), so that clients and test tools
/// (schemathesis's stateful phase) can follow a created process to every operation on it.
const PROCESS_LINKS: &[(&str, &[(&str, &str)])] = &[
    ("SignerProcessRead", &[("id", "$response.body#/id")]),
    ("SignerProcessResultUpdate", &[("id", "$response.body#/id")]),
    ("SignerProcessResultRead", &[("id", "$response.body#/id")]),
    ("SignerProcessDocumentsRead", &[("id", "$response.body#/id")]),
    (
        "SignerProcessDocumentResultUpdate",
        &[("id", "$response.body#/id"), ("document_id", "$response.body#/documents/0/id")],
    ),
    ("SignerProcessEventsRead", &[("id", "$response.body#/id")]),
    ("UserBrowserTask", &[("signerProcessId", "$response.body#/id")]),
    ("DocumentRead", &[("id", "$response.body#/documents/0/id")]),
    ("DocumentContentRead", &[("id", "$response.body#/documents/0/id")]),
    ("SignerProcessDelete", &[("id", "$response.body#/id")]),
];

/// The operations a created document resource (O8's 201 body) leads to.
const DOCUMENT_LINKS: &[(&str, &[(&str, &str)])] = &[
    ("DocumentRead", &[("id", "$response.body#/id")]),
    ("DocumentContentRead", &[("id", "$response.body#/id")]),
    ("DocumentDelete", &[("id", "$response.body#/id")]),
];

/// The multipart parts that are JSON documents (OpenAPI Encoding Objects).
const JSON_PARTS: &[(&str, &str)] = &[("SignerProcessCreate", "process"), ("DocumentCreate", "signers")];

/// A Link Object to `operation_id` with `parameters` (name → runtime expression).
///
/// utoipa 5.5 serializes `Link`'s fields in snake case (`operation_id`), which no OpenAPI tool
/// reads; the fields go through its flattened extensions instead, spelled as OpenAPI spells them.
fn link(operation_id: &str, parameters: &[(&str, &str)]) -> Link {
    let parameters: serde_json::Map<String, serde_json::Value> =
        parameters.iter().map(|(name, value)| ((*name).to_owned(), (*value).into())).collect();
    LinkBuilder::new()
        .extensions(Some(Extensions::from_iter([
            ("operationId", serde_json::Value::from(operation_id)),
            ("parameters", parameters.into()),
        ])))
        .build()
}

/// Links from the 201 responses of O1 and O8, and the media type of the JSON parts of their
/// multipart bodies: what the `#[utoipa::path]` attributes cannot say.
struct LinksAndEncodings;

impl Modify for LinksAndEncodings {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for path in openapi.paths.paths.values_mut() {
            let Some(operation) = path.post.as_mut() else { continue };
            let id = operation.operation_id.clone().unwrap_or_default();
            let links = match id.as_str() {
                "SignerProcessCreate" => PROCESS_LINKS,
                "DocumentCreate" => DOCUMENT_LINKS,
                _ => continue,
            };
            if let Some(RefOr::T(created)) = operation.responses.responses.get_mut("201") {
                for (target, parameters) in links {
                    created.links.insert((*target).to_owned(), RefOr::T(link(target, parameters)));
                }
            }
            let form = operation.request_body.as_mut().and_then(|body| body.content.get_mut("multipart/form-data"));
            if let Some(form) = form {
                for (_, part) in JSON_PARTS.iter().filter(|(operation, _)| *operation == id) {
                    form.encoding.insert(
                        (*part).to_owned(),
                        EncodingBuilder::new().content_type(Some("application/json")).build(),
                    );
                }
            }
        }
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
        CreateProcessForm, CreateProcessJson, DocumentForm, SignatureDefinition, Health
    )),
    modifiers(&BearerSecurity, &LinksAndEncodings),
)]
pub struct ApiDoc;
