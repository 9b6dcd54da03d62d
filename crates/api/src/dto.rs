//! HTTP representations (SPEC §3.1) and strict request-body parsing (SPEC §2).

use std::fmt;

use esignsp_domain::process::{SignerProcess, StoredDocument};
use esignsp_domain::result::{DocumentResult, DocumentResultStatus, ProcessResult, ResultMessage, ResultStatus};
use esignsp_domain::text::TextDefect;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;

use crate::error::ApiError;

/// The base path of the eSignSP v2 API.
pub const API_BASE: &str = "/trustedx-resources/esignsp/v2";

/// Builds the absolute URLs of representations from `server.public_url`.
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
}

impl Urls {
    /// `public_url` without a trailing slash, plus [`API_BASE`].
    #[must_use]
    pub fn new(public_url: &str) -> Self {
        Self { base: format!("{}{API_BASE}", public_url.trim_end_matches('/')) }
    }

    /// `…/signer_processes/{id}`.
    #[must_use]
    pub fn process(&self, id: &str) -> String {
        format!("{}/signer_processes/{id}", self.base)
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
}

fn with_details(status: &str, message: Option<&ResultMessage>) -> Value {
    match message {
        Some(m) => json!({"status": status, "details": {"message": m.as_str()}}),
        None => json!({"status": status}),
    }
}

/// `{"status": s}` plus `"details": {"message": m}` when there is a message (O4, O5).
#[must_use]
pub fn result_json(result: &ProcessResult) -> Value {
    with_details(result.status.as_str(), result.message.as_ref())
}

/// The same shape for a document result (O6, O7).
#[must_use]
pub fn document_result_json(result: &DocumentResult) -> Value {
    with_details(result.status.as_str(), result.message.as_ref())
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The process representation of O1 and O2 (SPEC §3.1): the stored members of the
/// process JSON, then the server's own members.
#[must_use]
pub fn process_json(p: &SignerProcess, urls: &Urls) -> Value {
    let mut body = Map::new();
    let id = p.id.as_str();
    body.insert("id".into(), Value::String(id.to_owned()));
    body.insert("self".into(), Value::String(urls.process(id)));
    body.insert("process_type".into(), Value::String(p.request.process_type().as_str().to_owned()));
    body.extend(p.request.members().iter().map(|(k, v)| (k.clone(), v.clone())));
    let pending: Vec<Value> = if p.result.is_none() {
        vec![json!({"type": "UserBrowserTask", "id": p.task_id.as_str(), "url": urls.ui(id)})]
    } else {
        Vec::new()
    };
    if let Some(result) = &p.result {
        body.insert("result".into(), result_json(result));
    }
    body.insert("tasks".into(), json!({ "pending": pending }));
    body.insert("documents".into(), process_documents_json(p, urls));
    body.insert("created_at".into(), Value::String(rfc3339(p.created_at)));
    body.insert("expires_at".into(), Value::String(rfc3339(p.expires_at)));
    Value::Object(body)
}

/// The document entries of a process representation and of O6:
/// `{id, url, content, media_type, size, sha256, result?}`.
#[must_use]
pub fn process_documents_json(p: &SignerProcess, urls: &Urls) -> Value {
    Value::Array(
        p.documents
            .iter()
            .map(|d| {
                let mut doc = json!({
                    "id": d.id.as_str(),
                    "url": urls.document(d.id.as_str()),
                    "content": urls.document_content(d.id.as_str()),
                    "media_type": d.media_type,
                    "size": d.size,
                    "sha256": d.sha256,
                });
                if let (Some(r), Value::Object(o)) = (&d.result, &mut doc) {
                    o.insert("result".into(), document_result_json(r));
                }
                doc
            })
            .collect(),
    )
}

/// The document resource representation of O8 and O9: `{id, self, content, signers, …}`.
#[must_use]
pub fn document_json(d: &StoredDocument, urls: &Urls) -> Value {
    json!({
        "id": d.id.as_str(),
        "self": urls.document(d.id.as_str()),
        "content": urls.document_content(d.id.as_str()),
        "signers": d.signers.clone().unwrap_or_else(|| json!([])),
        "media_type": d.media_type,
        "size": d.size,
        "sha256": d.sha256,
        "created_at": rfc3339(d.created_at),
    })
}

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
/// [`ApiError::InvalidBody`] with the parser's position and reason.
pub fn parse_strict_json(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize(&mut de).and_then(|StrictValue(v)| de.end().map(|()| v));
    value.map_err(|e| ApiError::InvalidBody(format!("the body is not valid JSON: {e}")))
}

fn message_error(e: TextDefect) -> ApiError {
    ApiError::InvalidBody(e.at("details.message").to_string())
}

/// The `status` string and optional message of a result body
/// `{"status": s, "details": {"message": m}}` (eSignSP `SignerProcessResultUpdate`).
/// `details: null`, a missing `details` and `message: null` mean "no message"; unknown
/// members are ignored.
///
/// # Errors
/// [`ApiError::InvalidBody`] for a non-object body, a missing or non-string `status`, a
/// `details` that is not an object, a `message` that is not a string, or an invalid message.
pub fn parse_result_body(bytes: &[u8]) -> Result<(String, Option<ResultMessage>), ApiError> {
    let Value::Object(mut body) = parse_strict_json(bytes)? else {
        return Err(ApiError::InvalidBody("the body must be a JSON object".to_owned()));
    };
    let status = match body.remove("status") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(ApiError::InvalidBody("status must be a string".to_owned())),
        None => return Err(ApiError::InvalidBody("status is required".to_owned())),
    };
    let message = match body.remove("details") {
        None | Some(Value::Null) => None,
        Some(Value::Object(mut details)) => match details.remove("message") {
            None | Some(Value::Null) => None,
            Some(Value::String(m)) => Some(ResultMessage::new(m).map_err(message_error)?),
            Some(_) => return Err(ApiError::InvalidBody("details.message must be a string".to_owned())),
        },
        Some(_) => return Err(ApiError::InvalidBody("details must be an object".to_owned())),
    };
    Ok((status, message))
}

/// Parses the body of O5 into a process result.
///
/// # Errors
/// [`ApiError::InvalidBody`] as [`parse_result_body`], or for an unknown or miscased status.
pub fn parse_process_result(bytes: &[u8]) -> Result<ProcessResult, ApiError> {
    let (status, message) = parse_result_body(bytes)?;
    let status = ResultStatus::parse(&status).map_err(|e| ApiError::InvalidBody(format!("status: {e}")))?;
    Ok(ProcessResult { status, message })
}

/// Parses the body of O7 into a document result.
///
/// # Errors
/// [`ApiError::InvalidBody`] as [`parse_result_body`], or for a status other than
/// `finished`, `failed`, `canceled`.
pub fn parse_document_result(bytes: &[u8]) -> Result<DocumentResult, ApiError> {
    let (status, message) = parse_result_body(bytes)?;
    let status = DocumentResultStatus::parse(&status).map_err(|e| ApiError::InvalidBody(format!("status: {e}")))?;
    Ok(DocumentResult { status, message })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert!(matches!(parse_process_result(body), Err(ApiError::InvalidBody(_))), "{why}");
        }
    }
}
