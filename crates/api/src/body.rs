//! Request bodies: media-type checks (415), size limits counted after content decoding
//! (413), and the multipart form of O1 in every shape real clients send (SPEC §3.2).
//!
//! Readers and parsers of bodies answer [`BodyError`] (and the JSON parsers of
//! [`crate::dto`] [`InvalidBody`]); [`crate::error`] maps both to problem documents.

use actix_multipart::Field;
use actix_multipart::{Multipart, MultipartError};
use actix_web::dev::{Decompress, Payload};
use actix_web::error::PayloadError;
use actix_web::http::header::{Charset, ExtendedValue};
use actix_web::http::header::{HeaderMap, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::web::{Bytes, BytesMut};
use esignsp_domain::content::UploadWriter;
use esignsp_domain::ports::RepositoryError;
use esignsp_domain::service::DocumentUpload;
use esignsp_domain::text::{InvalidText, Text, TextDefect, TextKind};
use futures_util::{StreamExt, TryStreamExt};

/// A request body that is malformed or has not the expected shape: 400 `invalid-body`, with
/// this text as the problem's `detail` (what is wrong and where, never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidBody(pub String);

impl InvalidBody {
    /// An invalid body with this `detail`.
    #[must_use]
    pub fn new(detail: impl Into<String>) -> Self {
        Self(detail.into())
    }
}

/// What exceeded a size limit (413), so that the answer names it and the limit that applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversized {
    /// The whole (decoded) request body.
    Body,
    /// A JSON part of a multipart body (`process`, `signers`): `server.max_json_bytes`.
    JsonPart(&'static str),
    /// The document bytes of one request together: `server.max_document_bytes`.
    Documents,
    /// The header lines of one multipart part (RFC 7578 §4.8), or the preamble before the
    /// first boundary: the multipart parser's buffer.
    PartHeaders,
}

/// Why a request body was refused, before, while or after it was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// 415: not the media type (or content encoding) the operation takes; names what it takes.
    #[error("the body must be {0}")]
    UnsupportedMediaType(&'static str),
    /// 413: what exceeded which limit, in bytes after content decoding.
    #[error("the body exceeds a limit of {1} bytes")]
    TooLarge(Oversized, usize),
    /// 408: not received within `server.body_timeout_seconds`.
    #[error("the body was not received in time")]
    Timeout,
    /// 400: malformed or of the wrong shape.
    #[error(transparent)]
    Invalid(#[from] InvalidBody),
}

impl BodyError {
    fn invalid(detail: impl Into<String>) -> Self {
        Self::Invalid(InvalidBody::new(detail))
    }
}

/// The body's media type, lowercased without parameters, if there is a parsable one.
fn media_type(headers: &HeaderMap) -> Option<mime::Mime> {
    headers.get(CONTENT_TYPE)?.to_str().ok()?.parse::<mime::Mime>().ok()
}

/// Requires `application/json` (any parameters, any case); `+json` suffixes, `text/plain`,
/// form encodings and a missing header are refused (SPEC §2).
///
/// # Errors
/// [`BodyError::UnsupportedMediaType`].
pub fn require_json(headers: &HeaderMap) -> Result<(), BodyError> {
    match media_type(headers) {
        Some(m) if m.essence_str().eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(BodyError::UnsupportedMediaType("application/json")),
    }
}

/// Whether the body is `application/json` (any parameters, any case).
#[must_use]
pub fn is_json(headers: &HeaderMap) -> bool {
    require_json(headers).is_ok()
}

/// Whether the body is `multipart/form-data`.
#[must_use]
pub fn is_multipart_form(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|m| m.essence_str().eq_ignore_ascii_case("multipart/form-data"))
}

/// The declared length of an unencoded body (with a `Content-Encoding`, only the decoded
/// size counts, so the header says nothing useful).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    if headers.contains_key(CONTENT_ENCODING) {
        return None;
    }
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The body stream, decoded per `Content-Encoding` (`gzip`, `deflate` or `identity`), so that
/// limits count decoded bytes.
///
/// # Errors
/// [`BodyError::UnsupportedMediaType`] for any other or a repeated encoding (RFC 9110 §8.4.1):
/// a body that cannot be decoded is never taken as it is.
fn decoded(headers: &HeaderMap, payload: Payload) -> Result<Decompress<Payload>, BodyError> {
    let mut encodings = headers.get_all(CONTENT_ENCODING);
    if let Some(value) = encodings.next() {
        let supported = value.to_str().is_ok_and(|v| {
            matches!(v.trim().to_ascii_lowercase().as_str(), "gzip" | "x-gzip" | "deflate" | "identity")
        });
        if !supported || encodings.next().is_some() {
            return Err(BodyError::UnsupportedMediaType("sent with Content-Encoding gzip, deflate or identity"));
        }
    }
    Ok(Decompress::from_headers(payload, headers))
}

/// Most documents one request may carry.
pub const MAX_DOCUMENTS: usize = 100;

fn payload_error(e: &PayloadError, limit: usize) -> BodyError {
    match e {
        PayloadError::Overflow => BodyError::TooLarge(Oversized::Body, limit),
        _ => BodyError::invalid("the request body could not be read"),
    }
}

/// Reads the whole (decoded) body, refusing more than `limit` bytes.
///
/// # Errors
/// [`BodyError::TooLarge`] beyond `limit`; [`BodyError::Invalid`] when the body cannot be
/// read or decoded; [`BodyError::Timeout`] when it takes longer than `timeout`.
pub async fn read_limited(
    headers: &HeaderMap,
    payload: Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, BodyError> {
    tokio::time::timeout(timeout, read_limited_inner(headers, payload, limit)).await.map_err(|_| BodyError::Timeout)?
}

async fn read_limited_inner(headers: &HeaderMap, payload: Payload, limit: usize) -> Result<Bytes, BodyError> {
    if declared_length(headers).is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(Oversized::Body, limit));
    }
    let mut payload = decoded(headers, payload)?;
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| payload_error(&e, limit))?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(Oversized::Body, limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The parts of an O1 or O8 multipart body.
#[derive(Debug)]
pub struct CreationForm {
    /// The bytes of the `process` part (O1).
    pub process: Option<Bytes>,
    /// The bytes of the `signers` part (O8).
    pub signers: Option<Bytes>,
    /// The `document` parts, in order.
    pub documents: Vec<DocumentUpload>,
}

/// Limits of an O1 multipart body.
#[derive(Debug, Clone, Copy)]
pub struct FormLimits {
    /// Largest `process` part (`server.max_json_bytes`).
    pub max_json_bytes: usize,
    /// Most document bytes in one request (`server.max_document_bytes`).
    pub max_document_bytes: usize,
    /// How long a client may take to send a body (`server.body_timeout_seconds`).
    pub body_timeout: std::time::Duration,
}

impl FormLimits {
    /// Largest whole body: documents, process JSON and 64 KiB for part headers.
    #[must_use]
    pub fn max_body_bytes(self) -> usize {
        self.max_document_bytes.saturating_add(self.max_json_bytes).saturating_add(64 * 1024)
    }
}

/// Longest header block of one multipart part: actix-multipart's parser buffer
/// (`MultipartConfig::buffer_limit`, 64 KiB by default, which `Multipart::new` uses). The
/// parser reports a longer one as [`PayloadError::Overflow`], like a body over its limit.
pub const MAX_PART_HEADER_BYTES: usize = 64 * 1024;

/// A multipart failure: a body over `max_body` bytes when `body_overflowed` (our own count),
/// otherwise an overflow is the parser's buffer, i.e. part headers over
/// [`MAX_PART_HEADER_BYTES`].
fn multipart_error(e: &MultipartError, max_body: usize, body_overflowed: bool) -> BodyError {
    match e {
        MultipartError::Payload(PayloadError::Overflow) if !body_overflowed => {
            BodyError::TooLarge(Oversized::PartHeaders, MAX_PART_HEADER_BYTES)
        }
        MultipartError::Payload(p) => payload_error(p, max_body),
        other => BodyError::invalid(format!("the multipart body is malformed: {other}")),
    }
}

/// The value of an RFC 8187 extended parameter (`filename*=UTF-8''…`) as text: its
/// percent-decoded bytes in its charset — ISO-8859-1 mapped byte for byte (RFC 5987 allowed
/// it), any other charset read as UTF-8, the one RFC 8187 §3.2.1 requires.
///
/// # Errors
/// [`TextDefect`] when the bytes are not UTF-8, hold NUL or are too long for `kind`.
pub fn extended_value_text(kind: TextKind, value: &ExtendedValue) -> Result<Text, TextDefect> {
    match value.charset {
        Charset::Iso_8859_1 => Text::new(kind, value.value.iter().map(|&b| char::from(b)).collect::<String>()),
        _ => Text::from_utf8(kind, value.value.clone()),
    }
}

/// The file names a part gives, the one to store first: `filename*` (RFC 6266 §4.3 prefers
/// it), then `filename`; each passes the text rule.
///
/// # Errors
/// [`InvalidText`] naming the parameter.
fn file_names(field: &Field) -> Result<Vec<Text>, InvalidText> {
    let Some(disposition) = field.content_disposition() else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    if let Some(ext) = disposition.get_filename_ext() {
        names.push(extended_value_text(TextKind::FileName, ext).map_err(|d| d.at("filename*"))?);
    }
    if let Some(plain) = disposition.get_filename() {
        names.push(Text::new(TextKind::FileName, plain).map_err(|d| d.at("filename"))?);
    }
    Ok(names)
}

/// Why a multipart body of O1 or O8 was not taken: the body itself ([`BodyError`], 4xx), or
/// the store its document bytes are staged in as they arrive (503, 507).
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    /// The body was refused.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// A document chunk could not be staged.
    #[error(transparent)]
    Store(#[from] RepositoryError),
}

/// Makes the writer of each `document` part's bytes
/// ([`esignsp_domain::SignerProcessService::upload_writer`]).
pub type UploadWriters<'a> = &'a dyn Fn() -> UploadWriter;

/// Reads an O1 or O8 body: JSON parts (`process`, `signers`; each a plain field or a file
/// part with any content type, at most once) and `document` parts (with or without file
/// name or content type). Other parts are read and ignored. Every part name, and the file
/// names and media type of every `document` part, pass the text rule of
/// [`esignsp_domain::text`]; a `document` part becomes a checked [`DocumentUpload`] (not
/// empty; a PDF when declared one), its bytes written by a writer of `writers` as they arrive
/// (staged in the store chunk by chunk beyond one chunk, digest and size counted on the way;
/// the staged bytes of a body refused later are discarded). Which parts are required is the
/// caller's decision.
///
/// # Errors
/// [`BodyError::TooLarge`] beyond the limits, naming which; [`BodyError::Invalid`] for a
/// malformed body, a repeated JSON part, or a part that fails its checks (the detail names
/// the part); [`BodyError::Timeout`] beyond `limits.body_timeout`; [`FormError::Store`] when
/// document bytes cannot be staged.
pub async fn read_creation_form(
    headers: &HeaderMap,
    payload: Payload,
    limits: FormLimits,
    writers: UploadWriters<'_>,
) -> Result<CreationForm, FormError> {
    let store_time = StoreTime::default();
    let reading = read_creation_form_inner(headers, payload, limits, writers, &store_time);
    tokio::pin!(reading);
    let timer = tokio::time::sleep(limits.body_timeout);
    tokio::pin!(timer);
    loop {
        tokio::select! {
            read = &mut reading => return read,
            () = &mut timer => {
                // The time-out is the client's: time spent staging chunks in the store moves it.
                let now = tokio::time::Instant::now();
                let excused = store_time.take(now);
                if excused.is_zero() {
                    return Err(BodyError::Timeout.into());
                }
                timer.as_mut().reset(now + excused);
            }
        }
    }
}

/// Time a body's reading spent waiting for the store (staging chunks), which does not count
/// against `server.body_timeout_seconds`: a slow database answers 503 on its own, never a
/// 408 that blames the client.
#[derive(Debug, Default)]
struct StoreTime {
    total: std::cell::Cell<std::time::Duration>,
    since: std::cell::Cell<Option<tokio::time::Instant>>,
}

impl StoreTime {
    /// Runs `write` (a store write) as store time.
    async fn counted<T>(&self, write: impl std::future::Future<Output = T>) -> T {
        self.since.set(Some(tokio::time::Instant::now()));
        let written = write.await;
        if let Some(since) = self.since.take() {
            self.total.set(self.total.get() + since.elapsed());
        }
        written
    }

    /// The store time until `now` not taken yet (a write in progress counts up to `now`).
    fn take(&self, now: tokio::time::Instant) -> std::time::Duration {
        let running = self.since.get().map_or(std::time::Duration::ZERO, |since| now - since);
        if self.since.get().is_some() {
            self.since.set(Some(now));
        }
        self.total.take() + running
    }
}

async fn read_creation_form_inner(
    headers: &HeaderMap,
    payload: Payload,
    limits: FormLimits,
    writers: UploadWriters<'_>,
    store_time: &StoreTime,
) -> Result<CreationForm, FormError> {
    let max_body = limits.max_body_bytes();
    if declared_length(headers).is_some_and(|n| n > max_body as u64) {
        return Err(BodyError::TooLarge(Oversized::Body, max_body).into());
    }
    let body_overflowed = std::rc::Rc::new(std::cell::Cell::new(false));
    let overflowed = body_overflowed.clone();
    let mut seen = 0usize;
    let counted = decoded(headers, payload)?.map(move |chunk| {
        let chunk = chunk?;
        seen = seen.saturating_add(chunk.len());
        if seen > max_body {
            overflowed.set(true);
            Err(PayloadError::Overflow)
        } else {
            Ok(chunk)
        }
    });
    let failed = |e: &MultipartError| multipart_error(e, max_body, body_overflowed.get());
    let mut multipart = Multipart::new(headers, counted);
    let mut process: Option<Bytes> = None;
    let mut signers: Option<Bytes> = None;
    let mut documents = Vec::new();
    let mut document_bytes = 0usize;
    let mut parts = 0usize;
    while let Some(mut field) = multipart.try_next().await.map_err(|e| failed(&e))? {
        parts += 1;
        let name = field
            .name()
            .map(|n| Text::new(TextKind::PartName, n))
            .transpose()
            .map_err(|d| BodyError::invalid(format!("part #{parts} of the form: {}", d.at("its name"))))?;
        match name.as_deref() {
            Some(part @ ("process" | "signers")) => {
                let slot = if part == "process" { &mut process } else { &mut signers };
                if slot.is_some() {
                    return Err(BodyError::invalid(format!("the `{part}` part is repeated")).into());
                }
                let mut bytes = BytesMut::new();
                while let Some(chunk) = field.try_next().await.map_err(|e| failed(&e))? {
                    if bytes.len() + chunk.len() > limits.max_json_bytes {
                        let part = if part == "process" { "process" } else { "signers" };
                        return Err(BodyError::TooLarge(Oversized::JsonPart(part), limits.max_json_bytes).into());
                    }
                    bytes.extend_from_slice(&chunk);
                }
                *slot = Some(bytes.freeze());
            }
            Some("document") => {
                if documents.len() == MAX_DOCUMENTS {
                    return Err(BodyError::invalid(format!("at most {MAX_DOCUMENTS} documents per request")).into());
                }
                let label = format!("the `document` part #{}", documents.len() + 1);
                let invalid = |e: InvalidText| BodyError::invalid(format!("{label}: {e}"));
                let declared_type = field
                    .content_type()
                    .map(|m| Text::new(TextKind::MediaType, m.to_string()))
                    .transpose()
                    .map_err(|d| invalid(d.at("Content-Type")))?;
                let names = file_names(&field).map_err(invalid)?;
                let mut writer = writers();
                while let Some(chunk) = field.try_next().await.map_err(|e| failed(&e))? {
                    document_bytes += chunk.len();
                    if document_bytes > limits.max_document_bytes {
                        return Err(BodyError::TooLarge(Oversized::Documents, limits.max_document_bytes).into());
                    }
                    store_time.counted(writer.write(&chunk)).await?;
                }
                let upload = store_time
                    .counted(writer.finish(declared_type, names))
                    .await?
                    .map_err(|e| BodyError::invalid(format!("{label} {e}")))?;
                documents.push(upload);
            }
            _ => while field.try_next().await.map_err(|e| failed(&e))?.is_some() {},
        }
    }
    Ok(CreationForm { process, signers, documents })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    /// Reads the first part of a one-part form whose `Content-Disposition` line is padded to
    /// `header_bytes`, as actix-multipart does for [`read_creation_form`].
    async fn first_part_with_headers_of(header_bytes: usize) -> Result<(), MultipartError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("multipart/form-data; boundary=b"));
        let line = "Content-Disposition: form-data; name=\"document\"; filename=\"";
        let padding = "a".repeat(header_bytes - line.len() - "\"\r\n\r\n".len());
        let body = format!("--b\r\n{line}{padding}\"\r\n\r\n%PDF-1.7\r\n--b--\r\n");
        let stream = futures_util::stream::iter([Ok::<_, PayloadError>(Bytes::from(body))]);
        let mut multipart = Multipart::new(&headers, stream);
        let mut field = multipart.try_next().await?.ok_or(MultipartError::Incomplete)?;
        while field.try_next().await?.is_some() {}
        Ok(())
    }

    #[tokio::test]
    async fn the_part_header_limit_is_the_one_actix_multipart_applies() {
        assert!(first_part_with_headers_of(MAX_PART_HEADER_BYTES - 1024).await.is_ok(), "under the limit");
        let over = first_part_with_headers_of(MAX_PART_HEADER_BYTES + 1024).await;
        assert!(matches!(over, Err(MultipartError::Payload(PayloadError::Overflow))), "{over:?}");
        let answer = multipart_error(&over.expect_err("overflow"), 1 << 30, false);
        assert_eq!(answer, BodyError::TooLarge(Oversized::PartHeaders, MAX_PART_HEADER_BYTES));
    }

    #[test]
    fn extended_values_decode_per_their_charset() {
        let ext = |v: &str| actix_web::http::header::parse_extended_value(v).expect("extended value");
        let text = |v: &str| extended_value_text(TextKind::FileName, &ext(v)).map(Text::into_string);
        assert_eq!(text("UTF-8''Vertrag%20%C3%A4.pdf"), Ok("Vertrag ä.pdf".to_owned()));
        assert_eq!(text("iso-8859-1''caf%E9.pdf"), Ok("café.pdf".to_owned()));
        assert_eq!(text("UTF-8''a%00b.pdf"), Err(TextDefect::Nul));
        assert_eq!(text("iso-8859-1''%00"), Err(TextDefect::Nul));
        assert_eq!(text("UTF-8''%FF.pdf"), Err(TextDefect::InvalidUtf8));
    }
}
