//! The wire model (SPEC §2, §3): the JSON the API answers, as types that serialize the answers
//! and describe them in the OpenAPI document (`#[derive(Serialize, ToSchema)]`, built from
//! domain values), the schemas of the request bodies, and strict request-body parsing.
//!
//! Parsers answer [`InvalidBody`]; [`crate::error`] turns it into a 400 problem document.
//!
//! A doc comment on a wire type or member becomes its `description` in `/openapi.json`, so the
//! members that the document leaves undescribed carry `//` comments instead, under
//! `#[allow(missing_docs)]`.

use std::fmt;

use esignsp_domain::events;
use esignsp_domain::process::{self, ProcessRequest};
use esignsp_domain::result::{self, ResultMessage, ResultStatus};
use esignsp_domain::service::{DocumentInput, DocumentUpload};
use esignsp_domain::text::TextDefect;
use esignsp_domain::DocumentId;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::body::{CreationForm, InvalidBody};

/// The base path of the eSignSP v2 API.
pub const API_BASE: &str = "/trustedx-resources/esignsp/v2";

/// Builds the absolute URLs of representations from `server.public_url`.
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
    /// The path of `base` (`/…/trustedx-resources/esignsp/v2`), for links of the signing page
    /// that work on whichever host name the browser used.
    base_path: String,
}

impl Urls {
    /// `public_url` without a trailing slash, plus [`API_BASE`].
    #[must_use]
    pub fn new(public_url: &str) -> Self {
        let base = format!("{}{API_BASE}", public_url.trim_end_matches('/'));
        let base_path = url::Url::parse(&base).map_or_else(|_| API_BASE.to_owned(), |u| u.path().to_owned());
        Self { base, base_path }
    }

    /// The path-absolute link `…/ui/{rest}` (path of `public_url` kept, no scheme or host), for
    /// the signing page's own links, forms and assets: they work under `…/ui` and `…/ui/`
    /// alike.
    #[must_use]
    pub fn ui_path(&self, rest: &str) -> String {
        format!("{}/ui/{rest}", self.base_path.trim_end_matches('/'))
    }

    /// `…/signer_processes/{id}`.
    #[must_use]
    pub fn process(&self, id: &str) -> String {
        format!("{}/signer_processes/{id}", self.base)
    }

    /// `…/webhook_endpoints/{id}` (SPEC §11).
    #[must_use]
    pub fn webhook_endpoint(&self, id: &str) -> String {
        format!("{}/webhook_endpoints/{id}", self.base)
    }

    /// `…/documents/{id}`.
    #[must_use]
    pub fn document(&self, id: &str) -> String {
        format!("{}/documents/{id}", self.base)
    }

    /// `…/documents/{id}/content`.
    #[must_use]
    pub fn document_content(&self, id: &str) -> String {
        format!("{}/documents/{id}/content", self.base)
    }

    /// `…/ui?signerProcessId={id}`: the browser entry point (O12).
    #[must_use]
    pub fn ui(&self, id: &str) -> String {
        format!("{}/ui?signerProcessId={id}", self.base)
    }

    /// `…/ui/login`: the redirect URI of the signer's OpenID Connect login (SPEC §10).
    #[must_use]
    pub fn ui_login(&self) -> String {
        format!("{}/ui/login", self.base)
    }

    /// Whether the public URL is https (cookies are then `Secure`).
    #[must_use]
    pub fn is_https(&self) -> bool {
        self.base.starts_with("https:")
    }
}

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

/// `status` of a process result (eSignSP `SignerProcessResultUpdate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcessResultStatus {
    /// `finished`: all the documents were signed.
    Finished,
    /// `failed`: no document was signed, owing to an error.
    Failed,
    /// `failed_documents`: some documents were signed, not all.
    FailedDocuments,
    /// `canceled`: no document was signed because the process was canceled.
    Canceled,
}

impl From<ResultStatus> for ProcessResultStatus {
    fn from(status: ResultStatus) -> Self {
        match status {
            ResultStatus::Finished => Self::Finished,
            ResultStatus::Failed => Self::Failed,
            ResultStatus::FailedDocuments => Self::FailedDocuments,
            ResultStatus::Canceled => Self::Canceled,
        }
    }
}

/// Every document status is also a process status, with the same wire value.
impl From<result::DocumentResultStatus> for ProcessResultStatus {
    fn from(status: result::DocumentResultStatus) -> Self {
        match status {
            result::DocumentResultStatus::Finished => Self::Finished,
            result::DocumentResultStatus::Failed => Self::Failed,
            result::DocumentResultStatus::Canceled => Self::Canceled,
        }
    }
}

/// `status` of a document result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentResultStatus {
    /// `finished`: the document was signed.
    Finished,
    /// `failed`: the document was not signed, owing to an error.
    Failed,
    /// `canceled`: the document was not signed because signing was canceled.
    Canceled,
}

impl From<result::DocumentResultStatus> for DocumentResultStatus {
    fn from(status: result::DocumentResultStatus) -> Self {
        match status {
            result::DocumentResultStatus::Finished => Self::Finished,
            result::DocumentResultStatus::Failed => Self::Failed,
            result::DocumentResultStatus::Canceled => Self::Canceled,
        }
    }
}

/// `details` of a result: an optional message of at most 4096 characters without NUL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs)] // see the module documentation
pub struct ResultDetails {
    // Answers always carry one: without a message there is no `details`.
    #[schema(max_length = 4096)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ResultDetails {
    /// `{"message": m}` when there is a message, else no `details` at all.
    fn of(message: Option<&ResultMessage>) -> Option<Self> {
        message.map(|m| Self { message: Some(m.as_str().to_owned()) })
    }
}

/// A process result: `{"status": s, "details": {"message": m}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs)] // see the module documentation
pub struct ProcessResult {
    pub status: ProcessResultStatus,
    // Only when there is a message (O4, O5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<ResultDetails>,
}

impl From<&result::ProcessResult> for ProcessResult {
    fn from(r: &result::ProcessResult) -> Self {
        Self { status: r.status.into(), details: ResultDetails::of(r.message.as_ref()) }
    }
}

/// A document result in the shape of a process result (every document status is one): the
/// `current_result` of a 409 on O7.
impl From<&result::DocumentResult> for ProcessResult {
    fn from(r: &result::DocumentResult) -> Self {
        Self { status: r.status.into(), details: ResultDetails::of(r.message.as_ref()) }
    }
}

/// A document result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs)] // see the module documentation
pub struct DocumentResult {
    pub status: DocumentResultStatus,
    // Only when there is a message (O6, O7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<ResultDetails>,
}

impl From<&result::DocumentResult> for DocumentResult {
    fn from(r: &result::DocumentResult) -> Self {
        Self { status: r.status.into(), details: ResultDetails::of(r.message.as_ref()) }
    }
}

// A pending task of a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs)] // see the module documentation
pub struct Task {
    /// `UserBrowserTask`.
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub id: String,
    /// The browser entry point (O12).
    pub url: String,
}

// The tasks of a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs)] // see the module documentation
pub struct Tasks {
    // The browser task while the process has no result; empty once it has one.
    pub pending: Vec<Task>,
}

/// A document of a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs)] // see the module documentation
pub struct ProcessDocument {
    pub id: String,
    // Its document resource (O9) and its bytes (O10).
    pub url: String,
    pub content: String,
    pub media_type: String,
    // Bytes.
    pub size: u64,
    // Lowercase hex.
    pub sha256: String,
    // Once set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<DocumentResult>,
}

impl ProcessDocument {
    /// The entry of `d` (SPEC §3.1).
    #[must_use]
    pub fn new(d: &process::ProcessDocument, urls: &Urls) -> Self {
        let id = d.id.as_str();
        Self {
            id: id.to_owned(),
            url: urls.document(id),
            content: urls.document_content(id),
            media_type: d.media_type.clone(),
            size: d.size,
            sha256: d.sha256.clone(),
            result: d.result.as_ref().map(DocumentResult::from),
        }
    }

    /// The entries of `p`'s documents, in order.
    #[must_use]
    pub fn all(p: &process::SignerProcess, urls: &Urls) -> Vec<Self> {
        p.documents.iter().map(|d| Self::new(d, urls)).collect()
    }
}

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A signature process (O1, O2).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[allow(missing_docs)] // see the module documentation
pub struct SignerProcess {
    pub id: String,
    #[serde(rename = "self")]
    pub self_: String,
    pub process_type: &'static str,
    // The stored members of the process JSON (SPEC §3.1), as sent; then the server's own.
    #[schema(value_type = Option<Vec<Vec<String>>>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Value>,
    #[schema(value_type = Option<Map<String, Value>>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<Value>,
    #[schema(value_type = Option<Vec<String>>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ui_locales: Option<Value>,
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_callback_url: Option<Value>,
    #[schema(value_type = Option<Map<String, Value>>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub views: Option<Value>,
    #[schema(value_type = Option<Map<String, Value>>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Value>,
    // Once established.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ProcessResult>,
    pub tasks: Tasks,
    pub documents: Vec<ProcessDocument>,
    // RFC 3339; `expires_at` is when a still pending process expires.
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

impl SignerProcess {
    /// The representation of `p`, its URLs from `urls`.
    #[must_use]
    pub fn new(p: &process::SignerProcess, urls: &Urls) -> Self {
        let id = p.id.as_str();
        let member = |name: &str| p.request.members().get(name).cloned();
        let pending = if p.result.is_none() {
            vec![Task { type_: "UserBrowserTask", id: p.task_id.as_str().to_owned(), url: urls.ui(id) }]
        } else {
            Vec::new()
        };
        Self {
            id: id.to_owned(),
            self_: urls.process(id),
            process_type: p.request.process_type().as_str(),
            labels: member("labels"),
            signer: member("signer"),
            ui_locales: member("ui_locales"),
            finish_callback_url: member("finish_callback_url"),
            views: member("views"),
            timestamp: member("timestamp"),
            result: p.result.as_ref().map(ProcessResult::from),
            tasks: Tasks { pending },
            documents: ProcessDocument::all(p, urls),
            created_at: rfc3339(p.created_at),
            expires_at: rfc3339(p.expires_at),
        }
    }
}

// The documents of a process (O6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs)] // see the module documentation
pub struct ProcessDocuments {
    pub documents: Vec<ProcessDocument>,
}

/// A document resource (O8, O9).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[allow(missing_docs)] // see the module documentation
pub struct Document {
    pub id: String,
    #[serde(rename = "self")]
    pub self_: String,
    // Its bytes (O10).
    pub content: String,
    /// The signature definitions sent with O8, as sent (`[]` when none were).
    #[schema(value_type = Vec<SignatureDefinition>)]
    pub signers: Value,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl Document {
    /// The representation of `d`, its URLs from `urls`.
    #[must_use]
    pub fn new(d: &process::StoredDocument, urls: &Urls) -> Self {
        let id = d.id.as_str();
        Self {
            id: id.to_owned(),
            self_: urls.document(id),
            content: urls.document_content(id),
            signers: d.signers.clone().unwrap_or_else(|| Value::Array(Vec::new())),
            media_type: d.media_type.clone(),
            size: d.size,
            sha256: d.sha256.clone(),
            created_at: rfc3339(d.created_at),
        }
    }
}

/// One audit event (E1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs)] // see the module documentation
pub struct AuditEvent {
    /// `created`, `document_result`, `result`, `expired` or `deleted`.
    #[serde(rename = "type")]
    pub type_: &'static str,
    #[schema(format = DateTime)]
    pub at: String,
    // The acting client, and the `X-Request-Id` of its request.
    pub actor: String,
    pub request_id: String,
    // For document results; `null` members are sent as `null`.
    pub document_id: Option<String>,
    pub old_status: Option<String>,
    pub new_status: Option<String>,
    // For a result the built-in signing page established (SPEC §10): the signer, and per
    // document the level and the SHA-256 of the original and of the signed bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, example = json!({"documents": [{"document_id": "…", "level": "B-B", "original_sha256": "…", "signed_sha256": "…"}]}))]
    pub signing: Option<Value>,
}

impl From<&events::AuditEvent> for AuditEvent {
    fn from(e: &events::AuditEvent) -> Self {
        Self {
            type_: e.kind.as_str(),
            at: rfc3339(e.at),
            actor: e.actor.clone(),
            request_id: e.request_id.clone(),
            document_id: e.document_id.as_ref().map(|d| d.as_str().to_owned()),
            old_status: e.old_status.clone(),
            new_status: e.new_status.clone(),
            signing: e.signing.as_ref().and_then(|s| serde_json::to_value(s).ok()),
        }
    }
}

// The audit trail of a process, oldest first (E1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs)] // see the module documentation
pub struct AuditEvents {
    pub events: Vec<AuditEvent>,
}

impl AuditEvents {
    /// The trail of `events`, in their order.
    #[must_use]
    pub fn new(events: &[events::AuditEvent]) -> Self {
        Self { events: events.iter().map(AuditEvent::from).collect() }
    }
}

// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs)] // see the module documentation
pub struct Health {
    // `ok` (alive) or `ready`.
    pub status: &'static str,
}

// ---------------------------------------------------------------------------------------------
// Request bodies: parsed by hand below (strict JSON, SPEC §2), described here for the document
// ---------------------------------------------------------------------------------------------

/// `process_type` of a process (SPEC §3.1).
#[derive(Serialize, ToSchema)]
pub enum ProcessType {
    /// `urn:safelayer:eidas:processes:document:sign:esigp`.
    #[serde(rename = "urn:safelayer:eidas:processes:document:sign:esigp")]
    Esigp,
    /// `urn:safelayer:eidas:processes:document:sign`.
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
#[allow(missing_docs)] // see the module documentation
pub struct ProcessJson {
    pub process_type: ProcessType,
    /// Labels of the process: an array of arrays of strings.
    #[schema(nullable = false)]
    pub labels: Option<Vec<Vec<String>>>,
    /// How the signer signs (`signature_policy_id`, `parameters`; see `SignatureDefinition`),
    /// stored and returned as sent.
    #[schema(nullable = false)]
    pub signer: Option<Map<String, Value>>,
    #[schema(nullable = false)]
    pub ui_locales: Option<Vec<String>>,
    /// Absolute URI the browser returns to (custom schemes allowed; not `javascript:`, `data:`,
    /// `vbscript:` or `file:`).
    #[schema(nullable = false, format = "uri")]
    pub finish_callback_url: Option<String>,
    #[schema(nullable = false)]
    pub views: Option<Map<String, Value>>,
    #[schema(nullable = false)]
    pub timestamp: Option<Map<String, Value>>,
}

/// O1 multipart body: `process` (the process JSON, a JSON part) and one or more `document`
/// files.
#[derive(Serialize, ToSchema)]
#[allow(missing_docs)] // see the module documentation
pub struct CreateProcessForm {
    pub process: ProcessJson,
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1)]
    pub document: Vec<Vec<u8>>,
}

/// A reference to a document created with O8.
#[derive(Serialize, ToSchema)]
#[allow(missing_docs)] // see the module documentation
pub struct DocumentReference {
    pub id: Option<String>,
    pub url: Option<String>,
}

/// O1 JSON body: the process JSON with `documents` referencing O8 documents.
#[derive(Serialize, ToSchema)]
#[allow(missing_docs)] // see the module documentation
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
#[allow(missing_docs)] // see the module documentation
pub struct DocumentForm {
    #[schema(value_type = String, format = Binary)]
    pub document: Vec<u8>,
    #[schema(nullable = false, example = json!([{
        "signature_policy_id": "urn:safelayer:eidas:policies:sign:document:pdf",
        "parameters": {"type": "pades", "signature_field": {"name": "Sign1", "page": "1"}}
    }]))]
    pub signers: Option<Vec<SignatureDefinition>>,
}

/// A page number, as a number or as a string of digits (clients send both, SPEC §3.1).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(missing_docs)] // see the module documentation
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
#[allow(missing_docs)] // see the module documentation
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
#[allow(missing_docs)] // see the module documentation
pub struct SignatureDefinition {
    /// The signature policy, e.g. `urn:safelayer:eidas:policies:sign:document:pdf`.
    #[schema(nullable = false)]
    pub signature_policy_id: Option<String>,
    #[schema(nullable = false)]
    pub parameters: Option<SignatureParameters>,
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// A JSON value parsed strictly: a duplicate object key anywhere is an error (SPEC §2).
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            if out.contains_key(&key) {
                let shown: String = key.chars().take(64).collect();
                return Err(de::Error::custom(format!("duplicate key {shown:?}")));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Parses a JSON document strictly: valid UTF-8, no byte-order mark, no lone surrogate,
/// no duplicate key, nothing after the value.
///
/// # Errors
/// [`InvalidBody`] with the parser's position and reason.
pub fn parse_strict_json(bytes: &[u8]) -> Result<Value, InvalidBody> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize(&mut de).and_then(|StrictValue(v)| de.end().map(|()| v));
    value.map_err(|e| InvalidBody(format!("the body is not valid JSON: {e}")))
}

fn message_error(e: TextDefect) -> InvalidBody {
    InvalidBody(e.at("details.message").to_string())
}

/// The `status` string and optional message of a result body
/// `{"status": s, "details": {"message": m}}` (eSignSP `SignerProcessResultUpdate`).
/// `details: null`, a missing `details` and `message: null` mean "no message"; unknown
/// members are ignored.
///
/// # Errors
/// [`InvalidBody`] for a non-object body, a missing or non-string `status`, a
/// `details` that is not an object, a `message` that is not a string, or an invalid message.
pub fn parse_result_body(bytes: &[u8]) -> Result<(String, Option<ResultMessage>), InvalidBody> {
    let Value::Object(mut body) = parse_strict_json(bytes)? else {
        return Err(InvalidBody::new("the body must be a JSON object"));
    };
    let status = match body.remove("status") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(InvalidBody::new("status must be a string")),
        None => return Err(InvalidBody::new("status is required")),
    };
    let message = match body.remove("details") {
        None | Some(Value::Null) => None,
        Some(Value::Object(mut details)) => match details.remove("message") {
            None | Some(Value::Null) => None,
            Some(Value::String(m)) => Some(ResultMessage::new(m).map_err(message_error)?),
            Some(_) => return Err(InvalidBody::new("details.message must be a string")),
        },
        Some(_) => return Err(InvalidBody::new("details must be an object")),
    };
    Ok((status, message))
}

/// Parses the body of O5 into a process result.
///
/// # Errors
/// [`InvalidBody`] as [`parse_result_body`], or for an unknown or miscased status.
pub fn parse_process_result(bytes: &[u8]) -> Result<result::ProcessResult, InvalidBody> {
    let (status, message) = parse_result_body(bytes)?;
    let status = ResultStatus::parse(&status).map_err(|e| InvalidBody(format!("status: {e}")))?;
    Ok(result::ProcessResult { status, message })
}

/// Parses the body of O7 into a document result.
///
/// # Errors
/// [`InvalidBody`] as [`parse_result_body`], or for a status other than
/// `finished`, `failed`, `canceled`.
pub fn parse_document_result(bytes: &[u8]) -> Result<result::DocumentResult, InvalidBody> {
    let (status, message) = parse_result_body(bytes)?;
    let status = result::DocumentResultStatus::parse(&status).map_err(|e| InvalidBody(format!("status: {e}")))?;
    Ok(result::DocumentResult { status, message })
}

/// A domain value read from a strict JSON request body (O5, O7); the extractor
/// [`crate::extract::StrictJson`] reads the body and parses it with this.
pub trait FromJsonBody: Sized {
    /// Parses the body's bytes.
    ///
    /// # Errors
    /// [`InvalidBody`] naming what is wrong.
    fn from_json_body(bytes: &[u8]) -> Result<Self, InvalidBody>;
}

impl FromJsonBody for result::ProcessResult {
    fn from_json_body(bytes: &[u8]) -> Result<Self, InvalidBody> {
        parse_process_result(bytes)
    }
}

impl FromJsonBody for result::DocumentResult {
    fn from_json_body(bytes: &[u8]) -> Result<Self, InvalidBody> {
        parse_document_result(bytes)
    }
}

/// The documents of the JSON form of O1: `[{"id": …} | {"url": "…/documents/{id}"}, …]`.
///
/// # Errors
/// [`InvalidBody`] when `value` is not such an array, or an entry names no id that can be one
/// of ours.
pub fn referenced_documents(value: Option<Value>) -> Result<Vec<DocumentInput>, InvalidBody> {
    let invalid = |d: &str| InvalidBody(format!("documents: {d}"));
    let Some(Value::Array(entries)) = value else {
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
                .map_err(|_| InvalidBody::new("documents: a referenced document does not exist"))
        })
        .collect()
}

fn process_request(process: Value) -> Result<ProcessRequest, InvalidBody> {
    ProcessRequest::parse(process).map_err(|e| InvalidBody(format!("process: {e}")))
}

/// The body of O1 as domain input: the validated process JSON and its documents. Its
/// extractor ([`crate::extract`]) reads a multipart or a JSON body.
#[derive(Debug)]
pub struct ProcessCreation {
    /// The process JSON.
    pub request: ProcessRequest,
    /// The uploaded or referenced documents, in order.
    pub documents: Vec<DocumentInput>,
}

impl ProcessCreation {
    /// From the multipart form: part `process` (the process JSON) and parts `document`.
    ///
    /// # Errors
    /// [`InvalidBody`] without a `process` part, or for an invalid process JSON.
    pub fn from_form(form: CreationForm) -> Result<Self, InvalidBody> {
        let process = form.process.ok_or_else(|| InvalidBody::new("the `process` part is missing"))?;
        let process = parse_strict_json(&process)?;
        let documents = form.documents.into_iter().map(DocumentInput::Upload).collect();
        Ok(Self { request: process_request(process)?, documents })
    }

    /// From a JSON body: the process JSON whose `documents` reference documents created with
    /// O8 ([`referenced_documents`]).
    ///
    /// # Errors
    /// [`InvalidBody`] for invalid JSON, invalid `documents` or an invalid process JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, InvalidBody> {
        let mut process = parse_strict_json(bytes)?;
        let documents = referenced_documents(process.as_object_mut().and_then(|o| o.remove("documents")))?;
        Ok(Self { request: process_request(process)?, documents })
    }
}

/// The body of O8 as domain input: one document and its optional signature definitions.
#[derive(Debug)]
pub struct DocumentCreation {
    /// The `document` part.
    pub upload: DocumentUpload,
    /// The `signers` part, checked by [`process::validate_signers`] and kept as sent.
    pub signers: Option<Value>,
}

impl DocumentCreation {
    /// From the multipart form: exactly one part `document`, an optional part `signers`.
    ///
    /// # Errors
    /// [`InvalidBody`] without exactly one `document`, or with invalid `signers`.
    pub fn from_form(mut form: CreationForm) -> Result<Self, InvalidBody> {
        if form.documents.len() != 1 {
            return Err(InvalidBody::new("exactly one `document` part is required"));
        }
        let signers = form
            .signers
            .map(|bytes| {
                let value = parse_strict_json(&bytes)?;
                process::validate_signers(&value).map_err(|e| InvalidBody(format!("the `signers` part: {e}")))?;
                Ok::<_, InvalidBody>(value)
            })
            .transpose()?;
        Ok(Self { upload: form.documents.remove(0), signers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_statuses_are_the_domain_values() {
        for s in ResultStatus::ALL {
            assert_eq!(serde_json::to_value(ProcessResultStatus::from(s)).ok(), Some(Value::from(s.as_str())));
        }
        for s in result::DocumentResultStatus::ALL {
            assert_eq!(serde_json::to_value(DocumentResultStatus::from(s)).ok(), Some(Value::from(s.as_str())));
            assert_eq!(serde_json::to_value(ProcessResultStatus::from(s)).ok(), Some(Value::from(s.as_str())));
        }
    }

    #[test]
    fn results_answer_details_only_with_a_message() {
        let plain = result::ProcessResult { status: ResultStatus::Canceled, message: None };
        assert_eq!(
            serde_json::to_string(&ProcessResult::from(&plain)).ok().as_deref(),
            Some(r#"{"status":"canceled"}"#)
        );
        let message = ResultMessage::new("expired").ok();
        let with = result::DocumentResult { status: result::DocumentResultStatus::Failed, message };
        assert_eq!(
            serde_json::to_string(&DocumentResult::from(&with)).ok().as_deref(),
            Some(r#"{"status":"failed","details":{"message":"expired"}}"#)
        );
    }

    #[test]
    fn valid_result_bodies_parse() {
        for (body, message) in [
            (r#"{"status":"finished"}"#, None),
            (r#"{"status":"finished","details":null}"#, None),
            (r#"{"status":"finished","details":{}}"#, None),
            (r#"{"status":"finished","details":{"message":null}}"#, None),
            (r#"{"status":"finished","details":{"message":"ok"},"extra":[1]}"#, Some("ok")),
        ] {
            let r = parse_process_result(body.as_bytes()).expect(body);
            assert_eq!(r.status, ResultStatus::Finished, "{body}");
            assert_eq!(r.message.as_ref().map(ResultMessage::as_str), message, "{body}");
        }
    }

    #[test]
    fn invalid_result_bodies_are_refused() {
        for (body, why) in [
            (&b"{\"status\":\"finished\""[..], "truncated"),
            (b"{\"status\":\"finished\",\"status\":\"failed\"}", "duplicate key"),
            (b"{\"status\":\"finished\",\"details\":{\"message\":\"a\",\"message\":\"b\"}}", "nested duplicate key"),
            (b"\xef\xbb\xbf{\"status\":\"finished\"}", "byte-order mark"),
            (b"{\"status\":\"fini\xffshed\"}", "invalid UTF-8"),
            (b"{\"status\":\"finished\",\"details\":{\"message\":\"\\ud800\"}}", "lone surrogate"),
            (b"{\"status\":\"finished\",\"details\":{\"message\":\"a\\u0000b\"}}", "NUL"),
            (b"{\"status\":\"Finished\"}", "miscased status"),
            (b"{\"status\":\"done\"}", "unknown status"),
            (b"{\"status\":1}", "wrong type"),
            (b"{\"details\":{}}", "missing status"),
            (b"{\"status\":\"finished\",\"details\":\"x\"}", "details not an object"),
            (b"{\"status\":\"finished\"} x", "trailing data"),
            (b"[]", "not an object"),
            (b"", "empty"),
        ] {
            assert!(parse_process_result(body).is_err(), "{why}");
        }
    }
}
