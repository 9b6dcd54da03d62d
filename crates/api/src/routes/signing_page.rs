//! The built-in signing page (SPEC §10): O12 while a process is pending and no external
//! signing application is configured. A plain HTML page — it works without JavaScript; a small
//! script only marks the page busy while signing — listing the documents (name, pages, size,
//! each shown inline), with *Sign* and *Decline* forms that carry a CSRF token bound to the
//! task ([`BuiltinSigning::form_token`]).
//!
//! * `POST …/ui/sign` signs every document and establishes the results through the domain
//!   service in one transition ([`SignerProcessService::sign_in_browser`]), then 303 to the
//!   process's callback (as O12 once ended, SPEC §5).
//! * `POST …/ui/decline` establishes `canceled` with `declined by the signer`.
//! * `GET …/ui/document?signerProcessId=…&document=…` shows one document inline.
//!
//! A repeated or late POST changes nothing and redirects like O12 does once ended.
//!
//! [`SignerProcessService::sign_in_browser`]: esignsp_domain::SignerProcessService::sign_in_browser

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use esignsp_domain::{DocumentId, ProcessId, SignerProcess};

use super::ui::{ended_location, html_escape, page, redirect_with, result_page, signer_process_id};
use crate::error::ApiError;
use crate::extract::BrowserAudit;
use crate::signing::BuiltinSigning;
use crate::state::AppState;

/// Largest accepted sign/decline form body, in bytes (two short fields).
const MAX_FORM_BYTES: usize = 4096;

/// The stylesheet of the signing page (`…/ui/assets/signing.css`).
const STYLESHEET: &str = include_str!("signing_page/signing.css");
/// The signing page's script (`…/ui/assets/signing.js`): marks the page busy on submit and
/// keeps a second click from posting again. The page works without it.
const SCRIPT: &str = include_str!("signing_page/signing.js");

/// The page's Content-Security-Policy: its own stylesheet, script and document frames only.
const PAGE_CSP: &str =
    "default-src 'none'; style-src 'self'; script-src 'self'; frame-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} bytes"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

fn pages_text(pdf: &[u8]) -> String {
    match esignsp_adapters::pades::page_count(pdf) {
        Ok(1) => "1 page".to_owned(),
        Ok(n) => format!("{n} pages"),
        Err(e) => format!("cannot be signed: {e}"),
    }
}

/// The signing page of pending `process`.
///
/// # Errors
/// 503 when the database is unavailable.
pub async fn signing_page(
    state: &AppState,
    signing: &BuiltinSigning,
    process: &SignerProcess,
) -> Result<HttpResponse, ApiError> {
    let id = process.id.as_str();
    let token = signing.form_token(&process.id, &process.task_id);
    let system = esignsp_domain::Caller {
        client_id: esignsp_domain::ClientId::parse(esignsp_domain::service::SYSTEM_ACTOR)
            .map_err(|e| ApiError::Internal(e.into()))?,
        trusted: true,
    };
    let mut items = String::new();
    for (n, document) in process.documents.iter().enumerate() {
        let name = document.filename.clone().unwrap_or_else(|| format!("Document {}", n + 1));
        let pages = match state.service.document_content(&system, &document.id).await? {
            Some(content) => pages_text(&content.bytes),
            None => "missing".to_owned(),
        };
        let status = document.result.as_ref().map(|r| format!(" — {}", r.status)).unwrap_or_default();
        let link = format!("ui/document?signerProcessId={id}&document={}", document.id.as_str());
        items.push_str(&format!(
            "<li class=\"document\">\n<h2><a href=\"{link}\" target=\"_blank\" rel=\"noopener\">{name}</a></h2>\n\
             <p class=\"facts\">{pages}, {size}{status}</p>\n\
             <iframe src=\"{link}\" title=\"{name}\" loading=\"lazy\"></iframe>\n</li>\n",
            link = html_escape(&link),
            name = html_escape(&name),
            pages = html_escape(&pages),
            size = html_escape(&human_size(document.size)),
            status = html_escape(&status),
        ));
    }
    let level = signing.signer.level();
    let form = |action: &str, label: &str, class: &str| {
        format!(
            "<form method=\"post\" action=\"ui/{action}\">\n\
             <input type=\"hidden\" name=\"signerProcessId\" value=\"{id}\">\n\
             <input type=\"hidden\" name=\"csrf_token\" value=\"{token}\">\n\
             <button type=\"submit\" class=\"{class}\">{label}</button>\n</form>\n",
            id = html_escape(id),
            token = html_escape(&token),
        )
    };
    let count = process.documents.len();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sign {what}</title>\
         <link rel=\"stylesheet\" href=\"ui/assets/signing.css\">\
         <script src=\"ui/assets/signing.js\" defer></script></head>\n<body>\n<main>\n\
         <h1>Sign {what}</h1>\n\
         <p>Signing applies a PAdES {level} electronic signature to {each}. Read {them} below first.</p>\n\
         <ol class=\"documents\">\n{items}</ol>\n\
         <div class=\"actions\">\n{sign}{decline}</div>\n\
         <p class=\"busy\" hidden>Signing…</p>\n</main>\n</body>\n</html>\n",
        what = if count == 1 { "1 document".to_owned() } else { format!("{count} documents") },
        each = if count == 1 { "the document" } else { "each document" },
        them = if count == 1 { "it" } else { "them" },
        sign = form("sign", "Sign", "sign"),
        decline = form("decline", "Decline", "decline"),
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Content-Security-Policy", PAGE_CSP))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(html))
}

fn not_found() -> HttpResponse {
    page(StatusCode::NOT_FOUND, "Signature process not found", &["There is no such signature process.".to_owned()])
}

fn bad_form(why: &str) -> HttpResponse {
    page(
        StatusCode::FORBIDDEN,
        "This form cannot be used",
        &[why.to_owned(), "Open the link of your signature task again.".to_owned()],
    )
}

/// The fields of a sign or decline form: `signerProcessId` and `csrf_token`.
struct TaskForm {
    process: ProcessId,
    token: String,
}

fn parse_form(body: &[u8]) -> Option<TaskForm> {
    let mut process = None;
    let mut token = None;
    for (key, value) in url::form_urlencoded::parse(body) {
        match &*key {
            "signerProcessId" if process.is_none() => process = ProcessId::parse(&value).ok(),
            "csrf_token" if token.is_none() => token = Some(value.into_owned()),
            _ => {}
        }
    }
    Some(TaskForm { process: process?, token: token? })
}

/// What the two POSTs share: the form read and checked, the process pending or not.
enum Checked {
    Answer(HttpResponse),
    Task(Box<SignerProcess>),
}

async fn check(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    audit: &esignsp_domain::AuditContext,
) -> Result<Checked, ApiError> {
    let Some(signing) = &state.signing else { return Ok(Checked::Answer(not_found())) };
    let body =
        crate::body::read_limited(req.headers(), payload.into_inner(), MAX_FORM_BYTES, state.form_limits.body_timeout)
            .await?;
    let Some(form) = parse_form(&body) else {
        return Ok(Checked::Answer(bad_form("The form is incomplete.")));
    };
    let Some(process) = state.service.find_for_browser(&form.process, audit).await? else {
        return Ok(Checked::Answer(not_found()));
    };
    if !signing.check_form_token(&process.id, &process.task_id, &form.token) {
        return Ok(Checked::Answer(bad_form("The form does not belong to this signature task.")));
    }
    Ok(Checked::Task(Box::new(process)))
}

/// Where the browser goes once `process` has `result`: 303 to its callback, else the result
/// page.
fn after(process: &SignerProcess, result: &esignsp_domain::ProcessResult) -> HttpResponse {
    match ended_location(process, result) {
        Some(location) => redirect_with(StatusCode::SEE_OTHER, &location),
        None => result_page(&process.id, result),
    }
}

/// `POST …/ui/sign`: *Sign*.
///
/// # Errors
/// 503/507 when the database cannot be used; 408/413 for a body that is slow or too large.
#[tracing::instrument(skip_all)]
pub async fn sign(
    req: HttpRequest,
    BrowserAudit(audit): BrowserAudit,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let process = match check(&req, payload, &state, &audit).await? {
        Checked::Answer(answer) => return Ok(answer),
        Checked::Task(process) => process,
    };
    let Some(signing) = &state.signing else { return Ok(not_found()) };
    let outcome = state.service.sign_in_browser(&process.id, signing.signer.as_ref(), None, &audit).await?;
    Ok(after(&process, outcome.result()))
}

/// `POST …/ui/decline`: *Decline*.
///
/// # Errors
/// As [`sign`].
#[tracing::instrument(skip_all)]
pub async fn decline(
    req: HttpRequest,
    BrowserAudit(audit): BrowserAudit,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let process = match check(&req, payload, &state, &audit).await? {
        Checked::Answer(answer) => return Ok(answer),
        Checked::Task(process) => process,
    };
    let outcome = state.service.decline_in_browser(&process.id, &audit).await?;
    Ok(after(&process, outcome.result()))
}

/// `GET …/ui/document?signerProcessId=…&document=…`: one document of a process, inline
/// (`Content-Disposition: inline`, RFC 6266), the signed bytes once signed.
///
/// # Errors
/// 503 when the database is unavailable.
#[tracing::instrument(skip_all)]
pub async fn document(
    req: HttpRequest,
    BrowserAudit(audit): BrowserAudit,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = req.query_string();
    let document = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "document")
        .and_then(|(_, v)| DocumentId::parse(&v).ok());
    let (Some(id), Some(document)) = (signer_process_id(query), document) else { return Ok(not_found()) };
    let Some(process) = state.service.find_for_browser(&id, &audit).await? else { return Ok(not_found()) };
    let Some(held) = process.documents.iter().find(|d| d.id == document) else { return Ok(not_found()) };
    let system = esignsp_domain::Caller { client_id: audit.actor.clone(), trusted: true };
    let Some(content) = state.service.document_content(&system, &held.id).await? else { return Ok(not_found()) };
    let name = held.filename.clone().unwrap_or_else(|| format!("{}.pdf", held.id.as_str()));
    let disposition = header::ContentDisposition {
        disposition: header::DispositionType::Inline,
        parameters: vec![header::DispositionParam::FilenameExt(header::ExtendedValue {
            charset: header::Charset::Ext("UTF-8".to_owned()),
            language_tag: None,
            value: name.into_bytes(),
        })],
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content.media_type))
        .insert_header(disposition)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Content-Security-Policy", "frame-ancestors 'self'"))
        .body(content.bytes))
}

/// `GET …/ui/assets/signing.css`.
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLESHEET)
}

/// `GET …/ui/assets/signing.js`.
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(SCRIPT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_need_both_fields_and_take_the_first_of_each() {
        let id = ProcessId::from_random([7; 20]);
        let form = parse_form(format!("signerProcessId={id}&csrf_token=abc&csrf_token=def").as_bytes()).expect("form");
        assert_eq!((form.process, form.token.as_str()), (id.clone(), "abc"));
        assert!(parse_form(b"csrf_token=abc").is_none());
        assert!(parse_form(format!("signerProcessId={id}").as_bytes()).is_none());
        assert!(parse_form(b"signerProcessId=..%2F&csrf_token=x").is_none());
        assert!(parse_form(&[0xff, 0xfe, b'=', 0x00]).is_none());
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(2048), "2.0 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }
}
