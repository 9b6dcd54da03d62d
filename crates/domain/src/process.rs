//! The document signature process, its documents and the process JSON that clients send
//! (eSignSP v2 `signer_processes`, SPEC §3.1).

use serde_json::{Map, Value};
use thiserror::Error;
use time::OffsetDateTime;

use crate::ids::{ClientId, DocumentId, ProcessId, TaskId};
use crate::result::{DocumentResult, ProcessResult};
use crate::text::{check_json, InvalidText, TextKind};

/// `process_type` of a document signature process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessType {
    /// `urn:safelayer:eidas:processes:document:sign:esigp`.
    Esigp,
    /// `urn:safelayer:eidas:processes:document:sign`.
    Sign,
}

impl ProcessType {
    /// Parses the URN.
    ///
    /// # Errors
    /// [`InvalidProcess::ProcessType`] for any other value.
    pub fn parse(s: &str) -> Result<Self, InvalidProcess> {
        match s {
            "urn:safelayer:eidas:processes:document:sign:esigp" => Ok(Self::Esigp),
            "urn:safelayer:eidas:processes:document:sign" => Ok(Self::Sign),
            _ => Err(InvalidProcess::ProcessType),
        }
    }

    /// The URN.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Esigp => "urn:safelayer:eidas:processes:document:sign:esigp",
            Self::Sign => "urn:safelayer:eidas:processes:document:sign",
        }
    }
}

/// Why a process JSON was refused (answered 400 `invalid-body`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidProcess {
    /// The process JSON is not an object.
    #[error("the process must be a JSON object")]
    NotAnObject,
    /// `process_type` is missing or not one of the two accepted URNs.
    #[error("process_type must be urn:safelayer:eidas:processes:document:sign:esigp or urn:safelayer:eidas:processes:document:sign")]
    ProcessType,
    /// A member has the wrong JSON type.
    #[error("{member} must be {expected}")]
    MemberType {
        /// The member's name.
        member: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// `finish_callback_url` is not an absolute URI, or uses a scheme that runs code or embeds
    /// content (`javascript:`, `data:`, `vbscript:`, `file:`).
    #[error("finish_callback_url must be an absolute URI of a web or application scheme")]
    FinishCallbackUrl,
    /// A string or key at any depth fails the text rule of [`crate::text`] (NUL, length);
    /// its `field` is the member's path, e.g. `signer.parameters.signature_field.page`.
    #[error(transparent)]
    Text(#[from] InvalidText),
    /// The process has no document.
    #[error("a process needs at least one document")]
    NoDocument,
}

/// The members of the process JSON that are stored and returned by O2 (SPEC §3.1).
pub const STORED_MEMBERS: [&str; 6] = ["labels", "signer", "ui_locales", "finish_callback_url", "views", "timestamp"];

/// The validated process JSON of O1: its type and the stored members, unknown members dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRequest {
    process_type: ProcessType,
    members: Map<String, Value>,
}

impl ProcessRequest {
    /// Validates the process JSON a client sent (SPEC §3.1): `process_type` required and one
    /// of the two URNs; `labels` an array of arrays of strings; `ui_locales` an array of
    /// strings; `finish_callback_url` an absolute URI (custom schemes allowed); `signer`,
    /// `views`, `timestamp` objects. Unknown members are dropped. Every string and key of a
    /// stored member, at any depth, passes the text rule ([`check_json`]).
    ///
    /// # Errors
    /// [`InvalidProcess`] naming the first offending member.
    pub fn parse(value: Value) -> Result<Self, InvalidProcess> {
        let Value::Object(mut object) = value else {
            return Err(InvalidProcess::NotAnObject);
        };
        let process_type = match object.get("process_type") {
            Some(Value::String(s)) => ProcessType::parse(s)?,
            _ => return Err(InvalidProcess::ProcessType),
        };
        let mut members = Map::new();
        for name in STORED_MEMBERS {
            if let Some(value) = object.remove(name) {
                if value.is_null() {
                    continue;
                }
                check_member(name, &value)?;
                members.insert(name.to_owned(), value);
            }
        }
        Ok(Self { process_type, members })
    }

    /// Rebuilds a request read back from storage, where it was validated on the way in.
    #[must_use]
    pub fn from_stored(process_type: ProcessType, members: Map<String, Value>) -> Self {
        Self { process_type, members }
    }

    /// The process type.
    #[must_use]
    pub fn process_type(&self) -> ProcessType {
        self.process_type
    }

    /// The stored members (a subset of [`STORED_MEMBERS`]).
    #[must_use]
    pub fn members(&self) -> &Map<String, Value> {
        &self.members
    }

    /// `finish_callback_url`, when the client gave one.
    #[must_use]
    pub fn finish_callback_url(&self) -> Option<&str> {
        self.members.get("finish_callback_url").and_then(Value::as_str)
    }
}

fn check_member(name: &'static str, value: &Value) -> Result<(), InvalidProcess> {
    let kind = if name == "finish_callback_url" { TextKind::Uri } else { TextKind::JsonString };
    check_json(name, kind, value)?;
    let type_error = |expected| InvalidProcess::MemberType { member: name, expected };
    match name {
        "labels" => {
            let ok = value.as_array().is_some_and(|outer| {
                outer.iter().all(|inner| inner.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
            });
            if !ok {
                return Err(type_error("an array of arrays of strings"));
            }
        }
        "ui_locales" => {
            if !value.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                return Err(type_error("an array of strings"));
            }
        }
        "finish_callback_url" => {
            let s = value.as_str().ok_or(type_error("a string"))?;
            let scheme = s.split(':').next().unwrap_or_default().to_ascii_lowercase();
            if !is_absolute_uri(s) || matches!(scheme.as_str(), "javascript" | "data" | "vbscript" | "file") {
                return Err(InvalidProcess::FinishCallbackUrl);
            }
        }
        _ => {
            if !value.is_object() {
                return Err(type_error("an object"));
            }
        }
    }
    Ok(())
}

/// RFC 3986 §4.3 absolute URI, checked by shape: a scheme (`ALPHA *( ALPHA / DIGIT / "+" /
/// "-" / "." )`), a colon, a non-empty rest, and no white space or control characters.
/// Custom schemes such as `com.example.app://done` are allowed.
#[must_use]
pub fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Content of a document sent by a client: bytes plus what is known about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDocument {
    /// The minted document id.
    pub id: DocumentId,
    /// Media type: `application/pdf` when the bytes start with `%PDF-`, else the declared one.
    pub media_type: String,
    /// The file name the client gave, if any.
    pub filename: Option<String>,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// The bytes: whole, or staged in the store while they arrived.
    pub content: crate::content::NewContent,
}

/// The media type to store for a document: `application/pdf` exactly when the bytes start with
/// `%PDF-` (SPEC §3.2); otherwise the declared type when it is a plain `type/subtype` other
/// than `application/pdf`, else `application/octet-stream`.
#[must_use]
pub fn sniff_media_type(bytes: &[u8], declared: Option<&str>) -> String {
    if bytes.starts_with(b"%PDF-") {
        return "application/pdf".to_owned();
    }
    declared
        .map(|d| d.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .filter(|d| d != "application/pdf")
        .filter(|d| {
            d.split_once('/').is_some_and(|(t, s)| {
                !t.is_empty()
                    && !s.is_empty()
                    && d.bytes().all(|b| b.is_ascii_alphanumeric() || b"/.+-_!#$&^".contains(&b))
            })
        })
        .unwrap_or_else(|| "application/octet-stream".to_owned())
}

/// Where a document of a new process comes from (O1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessDocumentSource {
    /// Uploaded with the process (multipart O1): stored now.
    Upload(NewDocument),
    /// A document resource created before with O8, referenced by id or URL (JSON O1); it
    /// must belong to the process's owner.
    Existing(DocumentId),
}

/// A document resource to be created (O8), ids already minted.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStandaloneDocument {
    /// The document and its bytes.
    pub document: NewDocument,
    /// The client that creates, and so owns, it.
    pub owner: ClientId,
    /// The `signers` JSON array (signature definitions), stored and returned as sent.
    pub signers: Option<Value>,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// A stored document resource without its bytes (O8, O9).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDocument {
    /// The document id.
    pub id: DocumentId,
    /// Stored media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// The `signers` JSON array, if one was sent.
    pub signers: Option<Value>,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// Validates the `signers` part of O8: a JSON array of signature definitions, objects whose
/// well-known members have their type (the OpenAPI `SignatureDefinition`):
/// `signature_policy_id` a string, `parameters` an object with `type` a string and
/// `signature_field` an object with `name` a string and `page` a number or a string. Other
/// members are kept as sent; strings and keys pass the text rule ([`check_json`]).
///
/// # Errors
/// [`InvalidProcess::MemberType`] naming the first offending member, or
/// [`InvalidProcess::Text`] naming the path.
pub fn validate_signers(value: &Value) -> Result<(), InvalidProcess> {
    let Some(definitions) = value.as_array() else {
        return Err(InvalidProcess::MemberType { member: "signers", expected: "an array of signature definitions" });
    };
    for definition in definitions {
        check_signature_definition(definition)?;
    }
    check_json("signers", TextKind::JsonString, value)?;
    Ok(())
}

fn check_signature_definition(definition: &Value) -> Result<(), InvalidProcess> {
    fn invalid(member: &'static str, expected: &'static str) -> InvalidProcess {
        InvalidProcess::MemberType { member, expected }
    }
    fn object<'a>(value: &'a Value, member: &'static str) -> Result<&'a Map<String, Value>, InvalidProcess> {
        value.as_object().ok_or(invalid(member, "an object"))
    }
    fn string(value: Option<&Value>, member: &'static str) -> Result<(), InvalidProcess> {
        match value {
            None | Some(Value::String(_)) => Ok(()),
            Some(_) => Err(invalid(member, "a string")),
        }
    }
    let definition = object(definition, "signers[]")?;
    string(definition.get("signature_policy_id"), "signers[].signature_policy_id")?;
    let Some(parameters) = definition.get("parameters") else { return Ok(()) };
    let parameters = object(parameters, "signers[].parameters")?;
    string(parameters.get("type"), "signers[].parameters.type")?;
    let Some(field) = parameters.get("signature_field") else { return Ok(()) };
    let field = object(field, "signers[].parameters.signature_field")?;
    string(field.get("name"), "signers[].parameters.signature_field.name")?;
    match field.get("page") {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(()),
        Some(_) => Err(invalid("signers[].parameters.signature_field.page", "a page number or a string")),
    }
}

/// A process to be created (operation O1), ids already minted.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSignerProcess {
    /// The new process id.
    pub id: ProcessId,
    /// The pending browser task's id.
    pub task_id: TaskId,
    /// The client that creates, and so owns, the process.
    pub owner: ClientId,
    /// The validated process JSON.
    pub request: ProcessRequest,
    /// The documents, in the order the client sent them (at least one).
    pub documents: Vec<ProcessDocumentSource>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// When a still-pending process expires (`created_at + processes.ttl_seconds`).
    pub expires_at: OffsetDateTime,
}

/// A document as part of a process, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessDocument {
    /// The document id.
    pub id: DocumentId,
    /// Stored media type.
    pub media_type: String,
    /// The file name it was uploaded with, if any.
    pub filename: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// The document's result, once set.
    pub result: Option<DocumentResult>,
}

/// A stored document signature process (eSignSP v2 `signer_processes/{id}`).
#[derive(Debug, Clone, PartialEq)]
pub struct SignerProcess {
    /// The process id.
    pub id: ProcessId,
    /// The pending browser task's id.
    pub task_id: TaskId,
    /// The owning client.
    pub owner: ClientId,
    /// The validated process JSON.
    pub request: ProcessRequest,
    /// The documents, in creation order.
    pub documents: Vec<ProcessDocument>,
    /// The result, once established.
    pub result: Option<ProcessResult>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Expiry time of a pending process.
    pub expires_at: OffsetDateTime,
}

/// Where a document's bytes are, with their media type and size (operation O10): the bytes
/// themselves are read chunk by chunk
/// ([`crate::ports::SignerProcessRepository::content_chunks`]), from this content, which a
/// later signature replaces by another without changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentContent {
    /// Stored media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// The stored bytes.
    pub content: crate::ids::ContentId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const ESIGP: &str = "urn:safelayer:eidas:processes:document:sign:esigp";

    #[test]
    fn a_typical_client_process_is_accepted_and_unknown_members_dropped() {
        let request = ProcessRequest::parse(json!({
            "process_type": ESIGP,
            "labels": [["digitalid", "server"]],
            "signer": {"signature_policy_id": "urn:safelayer:eidas:policies:sign:document:pdf",
                       "parameters": {"type": "pades", "signature_field": {"page": "1"}}},
            "ui_locales": ["en"],
            "finish_callback_url": "https://app.example/done?x=1",
            "views": {"ui": {}},
            "unknown": 42
        }))
        .expect("valid process");
        assert_eq!(request.process_type(), ProcessType::Esigp);
        assert!(request.members().get("unknown").is_none(), "unknown members are dropped");
        assert_eq!(request.finish_callback_url(), Some("https://app.example/done?x=1"));
    }

    #[test]
    fn signature_definitions_are_checked_for_the_types_of_their_well_known_members() {
        let pdf = "urn:safelayer:eidas:policies:sign:document:pdf";
        for valid in [
            json!([]),
            json!([{"signature_policy_id": pdf, "parameters": {"type": "pades",
                    "signature_field": {"name": "Sign1", "page": "1"}}, "extra": [1, 2]}]),
            json!([{"parameters": {"signature_field": {"page": 2}}}, {}]),
        ] {
            assert_eq!(validate_signers(&valid), Ok(()), "{valid}");
        }
        let wrong = |member, expected| Err(InvalidProcess::MemberType { member, expected });
        for (value, expected) in [
            (json!({}), wrong("signers", "an array of signature definitions")),
            (json!(["x"]), wrong("signers[]", "an object")),
            (json!([{"signature_policy_id": 5}]), wrong("signers[].signature_policy_id", "a string")),
            (json!([{"signature_policy_id": null}]), wrong("signers[].signature_policy_id", "a string")),
            (json!([{"parameters": []}]), wrong("signers[].parameters", "an object")),
            (json!([{"parameters": {"type": true}}]), wrong("signers[].parameters.type", "a string")),
            (
                json!([{"parameters": {"signature_field": "Sign1"}}]),
                wrong("signers[].parameters.signature_field", "an object"),
            ),
            (
                json!([{"parameters": {"signature_field": {"name": 1}}}]),
                wrong("signers[].parameters.signature_field.name", "a string"),
            ),
            (
                json!([{"parameters": {"signature_field": {"page": 1.5}}}]),
                wrong("signers[].parameters.signature_field.page", "a page number or a string"),
            ),
            (
                json!([{"parameters": {"signature_field": {"page": -1}}}]),
                wrong("signers[].parameters.signature_field.page", "a page number or a string"),
            ),
        ] {
            assert_eq!(validate_signers(&value), expected, "{value}");
        }
        let nul = json!([{"note": "a\u{0}b"}]);
        assert!(matches!(validate_signers(&nul), Err(InvalidProcess::Text(_))), "strings pass the text rule");
    }

    #[test]
    fn invalid_processes_are_rejected_with_the_member_named() {
        for (value, expected) in [
            (json!([]), InvalidProcess::NotAnObject),
            (json!({}), InvalidProcess::ProcessType),
            (json!({"process_type": "urn:other"}), InvalidProcess::ProcessType),
            (
                json!({"process_type": ESIGP, "labels": ["a"]}),
                InvalidProcess::MemberType { member: "labels", expected: "an array of arrays of strings" },
            ),
            (
                json!({"process_type": ESIGP, "ui_locales": "en"}),
                InvalidProcess::MemberType { member: "ui_locales", expected: "an array of strings" },
            ),
            (json!({"process_type": ESIGP, "finish_callback_url": "/relative"}), InvalidProcess::FinishCallbackUrl),
            (
                json!({"process_type": ESIGP, "finish_callback_url": "JavaScript:alert(1)//"}),
                InvalidProcess::FinishCallbackUrl,
            ),
            (
                json!({"process_type": ESIGP, "finish_callback_url": "data:text/html,x"}),
                InvalidProcess::FinishCallbackUrl,
            ),
            (
                json!({"process_type": ESIGP, "signer": {"x": "a\u{0}b"}}),
                InvalidProcess::Text(crate::text::TextDefect::Nul.at("signer.x")),
            ),
        ] {
            assert_eq!(ProcessRequest::parse(value.clone()), Err(expected.clone()), "{value}");
        }
    }

    #[test]
    fn custom_schemes_are_absolute_uris() {
        assert!(is_absolute_uri("com.example.app://done"));
        assert!(is_absolute_uri("https://a.example/x?y=z"));
        assert!(!is_absolute_uri("1http://a"));
        assert!(!is_absolute_uri("https://a b"));
        assert!(!is_absolute_uri("nocolon"));
        assert!(!is_absolute_uri("https:"));
    }

    #[test]
    fn pdf_bytes_are_sniffed_whatever_the_client_declared() {
        assert_eq!(sniff_media_type(b"%PDF-1.7\n", Some("application/octet-stream")), "application/pdf");
        assert_eq!(sniff_media_type(b"%PDF-1.7\n", None), "application/pdf");
        assert_eq!(sniff_media_type(b"hello", Some("Text/Plain; charset=utf-8")), "text/plain");
        assert_eq!(sniff_media_type(b"hello", Some("bad value\r\n")), "application/octet-stream");
        assert_eq!(sniff_media_type(b"hello", None), "application/octet-stream");
        assert_eq!(sniff_media_type(b"{}", Some("application/pdf")), "application/octet-stream", "not a PDF");
    }

    proptest! {
        #[test]
        fn process_parse_never_panics_and_keeps_only_known_members(
            keys in proptest::collection::vec("[a-z_]{1,20}", 0..8),
            strings in proptest::collection::vec("\\PC{0,10}", 0..8),
        ) {
            let mut object = Map::new();
            object.insert("process_type".into(), Value::String(ESIGP.into()));
            for (k, v) in keys.iter().zip(strings.iter()) {
                object.insert(k.clone(), Value::String(v.clone()));
            }
            if let Ok(request) = ProcessRequest::parse(Value::Object(object)) {
                prop_assert!(request.members().keys().all(|k| STORED_MEMBERS.contains(&k.as_str())));
            }
        }
    }
}
