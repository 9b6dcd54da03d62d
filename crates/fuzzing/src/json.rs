//! JSON bodies: the result bodies of O5 and O7, the process JSON of O1 (multipart part
//! `process` or JSON body with `documents`), and the `signers` part of O8 (SPEC §2, §3).

use esignsp_api::dto::{
    parse_document_result, parse_process_result, parse_strict_json, referenced_documents, DocumentResult, ProcessResult,
};
use esignsp_domain::process::{is_absolute_uri, validate_signers, InvalidProcess, ProcessRequest, STORED_MEMBERS};
use esignsp_domain::result::{ResultMessage, MESSAGE_MAX_CHARS};
use esignsp_domain::service::DocumentInput;
use serde_json::{Map, Value};

use crate::assert_client_error;

fn assert_message(message: Option<&ResultMessage>) {
    if let Some(m) = message {
        assert!(!m.as_str().contains('\0'), "an accepted message has no NUL");
        assert!(m.as_str().chars().count() <= MESSAGE_MAX_CHARS, "an accepted message is at most 4096 characters");
    }
}

/// O5 and O7 bodies (`{"status": s, "details": {"message": m}}`): an accepted body's status
/// is its `status` member, its message the valid `details.message`; the result as answered
/// parses back to the same result; a document status is also a process status; a refused
/// body is a 400 `invalid-body`.
pub fn result_body(data: &[u8]) {
    let process = parse_process_result(data);
    let document = parse_document_result(data);
    match &process {
        Ok(result) => {
            assert_message(result.message.as_ref());
            let body = parse_strict_json(data).expect("an accepted body is strict JSON");
            assert_eq!(body["status"], result.status.as_str(), "the status is the body's");
            let answered = serde_json::to_string(&ProcessResult::from(result)).expect("an answer");
            assert_eq!(parse_process_result(answered.as_bytes()).ok().as_ref(), Some(result), "round trip");
        }
        Err(e) => assert_client_error(e.clone(), &[400], "process result"),
    }
    match &document {
        Ok(result) => {
            assert_message(result.message.as_ref());
            let answered = serde_json::to_string(&DocumentResult::from(result)).expect("an answer");
            assert_eq!(parse_document_result(answered.as_bytes()).ok().as_ref(), Some(result), "round trip");
            let process = process.as_ref().expect("a document result body is a process result body");
            assert_eq!(process.status.as_str(), result.status.as_str());
            assert_eq!(process.message, result.message);
        }
        Err(e) => assert_client_error(e.clone(), &[400], "document result"),
    }
}

fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(contains_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

/// The process JSON of O1 and the `signers` of O8. Strict JSON re-serialised parses to the
/// same value. An accepted process keeps only stored members, none null, none holding NUL,
/// each of its type (`finish_callback_url` an absolute URI), and parses back from its stored
/// form to the same request; a refusal names a stored member. The `documents` of the JSON
/// form are ids of our shape or a 400; accepted `signers` are an array of objects without
/// NUL.
pub fn process_json(data: &[u8]) {
    let value = match parse_strict_json(data) {
        Ok(v) => v,
        Err(e) => return assert_client_error(e, &[400], "process JSON"),
    };
    let reparsed = parse_strict_json(value.to_string().as_bytes()).expect("re-serialised strict JSON parses");
    assert_eq!(reparsed, value, "strict JSON round trip");

    match ProcessRequest::parse(value.clone()) {
        Ok(request) => {
            let members = request.members();
            for (name, member) in members {
                assert!(STORED_MEMBERS.contains(&name.as_str()), "only stored members are kept: {name}");
                assert!(!member.is_null(), "null members are dropped");
                assert!(!contains_nul(member), "no stored string holds NUL");
                let expected_object = matches!(name.as_str(), "signer" | "views" | "timestamp");
                assert!(!expected_object || member.is_object(), "{name} is an object");
            }
            if let Some(url) = members.get("finish_callback_url") {
                assert!(url.as_str().is_some_and(is_absolute_uri), "finish_callback_url is an absolute URI");
            }
            let mut stored = Map::new();
            stored.insert("process_type".into(), Value::String(request.process_type().as_str().to_owned()));
            stored.extend(members.iter().map(|(k, v)| (k.clone(), v.clone())));
            assert_eq!(ProcessRequest::parse(Value::Object(stored)).as_ref(), Ok(&request), "stored form round trip");
        }
        Err(InvalidProcess::MemberType { member, .. }) => {
            assert!(STORED_MEMBERS.contains(&member), "a type error names a stored member: {member}");
        }
        Err(_) => {}
    }

    match referenced_documents(value.get("documents").cloned()) {
        Ok(documents) => {
            let entries = value["documents"].as_array().expect("accepted documents are an array");
            assert_eq!(entries.len(), documents.len(), "one document per entry");
            for document in documents {
                let DocumentInput::Existing(id) = document else { panic!("JSON documents are references") };
                assert_eq!(id.as_str().len(), 32);
            }
        }
        Err(e) => assert_client_error(e, &[400], "documents"),
    }

    if validate_signers(&value).is_ok() {
        let signers = value.as_array().expect("accepted signers are an array");
        assert!(signers.iter().all(Value::is_object) && !contains_nul(&value), "signers: objects without NUL");
    }
}
