//! Multipart bodies of O1 and O8 (RFC 7578), their part headers and the `Content-Disposition`
//! parameters `name`, `filename` and `filename*` (RFC 7578 §4.2, RFC 5987 / RFC 8187).

use actix_web::http::header::{Charset, ContentDisposition, HeaderValue, CONTENT_TYPE};
use actix_web::test::TestRequest;
use actix_web::web::{self, Bytes};
use actix_web::FromRequest;
use esignsp_api::body::{read_creation_form, BodyError, CreationForm, FormError, FormLimits, MAX_DOCUMENTS};
use esignsp_domain::content::UploadWriter;
use esignsp_domain::text::TextKind;
use sha2::{Digest, Sha256};

use crate::{assert_client_error, block_on, hex};

/// The boundary of the bodies the fuzzer writes (the seeds use it).
pub const BOUNDARY: &str = "esignsp-fuzz";

/// Small limits, so that the fuzzer reaches every 413.
const LIMITS: FormLimits =
    FormLimits { max_json_bytes: 2048, max_document_bytes: 8192, body_timeout: std::time::Duration::from_secs(5) };

/// Reads `body` as the real handlers do, with `Content-Type: multipart/form-data; boundary=…`.
fn read_form(body: Bytes, boundary: &str) -> Result<CreationForm, BodyError> {
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let (req, mut payload) =
        TestRequest::default().insert_header((CONTENT_TYPE, content_type)).set_payload(body).to_http_parts();
    block_on(async move {
        let payload = web::Payload::from_request(&req, &mut payload).await.expect("a payload");
        let whole = UploadWriter::whole;
        read_creation_form(req.headers(), payload.into_inner(), LIMITS, &whole).await.map_err(|e| match e {
            FormError::Body(e) => e,
            FormError::Store(e) => panic!("a writer without a store failed: {e}"),
        })
    })
}

/// The bytes of a document of a form read without a store (always inline).
fn inline(document: &esignsp_domain::service::DocumentUpload) -> &[u8] {
    document.content().inline().expect("a writer without a store keeps bytes inline")
}

/// RFC 8187 §3.2.1 `attr-char`, kept as is in an `ext-value`; every other byte is %XX.
fn ext_value(text: &str) -> String {
    let mut out = String::from("UTF-8''");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A canonical multipart body carrying `form`: JSON parts by name, documents with
/// `filename*` (RFC 8187) and their declared type, under a boundary none of the parts holds.
fn encode(form: &CreationForm) -> (Bytes, String) {
    let contents: Vec<&[u8]> = form
        .process
        .iter()
        .chain(form.signers.iter())
        .map(|b| &b[..])
        .chain(form.documents.iter().map(inline))
        .collect();
    let boundary = (0u32..)
        .map(|n| format!("roundtrip-{n}"))
        .find(|b| contents.iter().all(|c| !c.windows(b.len()).any(|w| w == b.as_bytes())))
        .expect("a free boundary");
    let mut body = Vec::new();
    let mut part = |headers: String, content: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    };
    for (name, content) in [("process", &form.process), ("signers", &form.signers)] {
        if let Some(content) = content {
            part(format!("Content-Disposition: form-data; name=\"{name}\"\r\n"), content);
        }
    }
    for document in &form.documents {
        let mut headers = String::from("Content-Disposition: form-data; name=\"document\"");
        if let Some(filename) = document.filename() {
            headers.push_str(&format!("; filename*={}", ext_value(filename)));
        }
        headers.push_str("\r\n");
        if let Some(declared) = document.declared_type() {
            headers.push_str(&format!("Content-Type: {declared}\r\n"));
        }
        part(headers, inline(document));
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (Bytes::from(body), boundary)
}

/// What an accepted form must be, within [`LIMITS`].
fn assert_form(form: &CreationForm) {
    assert!(form.documents.len() <= MAX_DOCUMENTS, "at most {MAX_DOCUMENTS} documents");
    let total: usize = form.documents.iter().map(|d| inline(d).len()).sum();
    assert!(total <= LIMITS.max_document_bytes, "document bytes within the limit");
    for document in &form.documents {
        assert!(!inline(document).is_empty(), "no empty document");
        assert_eq!(document.sha256(), hex(&Sha256::digest(inline(document))), "sha256 of the bytes");
        // The one text rule of every stored text (SPEC §2): no NUL, within its kind's limit.
        for (text, kind) in [(document.filename(), TextKind::FileName), (document.declared_type(), TextKind::MediaType)]
        {
            if let Some(text) = text {
                assert!(!text.contains('\0'), "a stored text has no NUL: {text:?}");
                assert!(text.chars().count() <= kind.max_chars(), "a stored text is within its limit");
            }
        }
        if !inline(document).starts_with(b"%PDF-") {
            let essence = |t: &str| t.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            assert!(
                document.declared_type().is_none_or(|t| essence(t) != "application/pdf"),
                "a document declared application/pdf starts with %PDF-"
            );
            assert!(
                document.filename().is_none_or(|n| !n.to_ascii_lowercase().ends_with(".pdf") || n.len() <= 4),
                "a document named *.pdf starts with %PDF-"
            );
        }
    }
    for part in [&form.process, &form.signers].into_iter().flatten() {
        assert!(part.len() <= LIMITS.max_json_bytes, "JSON parts within the limit");
    }
}

fn assert_same_form(a: &CreationForm, b: &CreationForm) {
    assert_eq!(a.process, b.process, "process part");
    assert_eq!(a.signers, b.signers, "signers part");
    assert_eq!(a.documents, b.documents, "documents");
}

/// A whole O1/O8 multipart body (boundary [`BOUNDARY`]): an accepted form is within the
/// limits and the same form once written canonically and read again; a refused one is a
/// 400 or 413 problem.
pub fn multipart_form(data: &[u8]) {
    match read_form(Bytes::copy_from_slice(data), BOUNDARY) {
        Ok(form) => {
            assert_form(&form);
            let (body, boundary) = encode(&form);
            let again = read_form(body, &boundary).expect("the canonical form of an accepted form is accepted");
            assert_same_form(&form, &again);
        }
        Err(e) => assert_client_error(e, &[400, 413], "multipart body"),
    }
}

/// One `Content-Disposition` value of a `document` part, as actix parses it and as the O1/O8
/// form reader uses it: the stored file name is the parsed `filename*` (RFC 6266 §4.3; its
/// bytes ISO-8859-1 when it says so, else UTF-8), else `filename`; an accepted file name
/// round-trips through `filename*` (UTF-8, RFC 8187); a refused part is a 400 or 413 problem.
pub fn content_disposition(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return; // Not a field value (RFC 9110 §5.5): actix-http answers 400 before any handler.
    };
    // A field value has no leading or trailing white space (RFC 9110 §5.5): the part's header
    // parser drops it, so the value parsed here drops it too.
    let trimmed = HeaderValue::from_bytes(value.as_bytes().trim_ascii()).expect("a part of a field value");
    let parsed = ContentDisposition::from_raw(&trimmed).ok();
    let mut body = format!("--{BOUNDARY}\r\nContent-Disposition: ").into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n\r\n%PDF-1.7 x\r\n--{BOUNDARY}--\r\n").as_bytes());
    let form = match read_form(Bytes::from(body), BOUNDARY) {
        Ok(form) => form,
        Err(e) => return assert_client_error(e, &[400, 413], "part headers"),
    };
    assert_form(&form);
    let Some(document) = form.documents.first() else { return };
    let parsed = parsed.expect("a document part has a Content-Disposition actix can parse");
    assert_eq!(parsed.get_name(), Some("document"));
    // RFC 6266 §4.3: `filename*` wins; its bytes are ISO-8859-1 when it says so, else UTF-8.
    let expected = parsed
        .get_filename_ext()
        .map(|ext| match ext.charset {
            Charset::Iso_8859_1 => ext.value.iter().map(|&b| char::from(b)).collect(),
            _ => String::from_utf8(ext.value.clone()).expect("an accepted filename* is UTF-8"),
        })
        .or_else(|| parsed.get_filename().map(str::to_owned));
    assert_eq!(document.filename(), expected.as_deref(), "the file name is the parsed one");
    let (body, boundary) = encode(&form);
    let again = read_form(body, &boundary).expect("the canonical form of an accepted part is accepted");
    assert_same_form(&form, &again);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_as_clients_send_it_is_read_and_its_canonical_form_is_the_same() {
        let body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=process\r\n\r\n{{}}\r\n--{BOUNDARY}\r\n\
             Content-Disposition: form-data; name=document; filename=a.pdf; filename*=utf-8''%C3%A4%22.pdf\r\n\
             Content-Type: application/pdf\r\n\r\n%PDF-1.7\r\n--{BOUNDARY}--\r\n"
        );
        let form = read_form(Bytes::from(body), BOUNDARY).expect("accepted");
        assert_eq!(form.process.as_deref(), Some(&b"{}"[..]));
        assert_eq!(form.documents[0].filename(), Some("ä\".pdf"), "filename* wins over filename (RFC 6266 §4.3)");
        let (canonical, boundary) = encode(&form);
        assert_same_form(&form, &read_form(canonical, &boundary).expect("accepted"));
        multipart_form(b"garbage");
    }

    #[test]
    fn ext_values_keep_attr_chars_and_percent_encode_the_rest() {
        assert_eq!(ext_value("ä b\"%.pdf"), "UTF-8''%C3%A4%20b%22%25.pdf");
    }
}
