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
//! With `signing.signer_authentication = "oidc"` the signer logs in first ([`SignerLogin`]):
//! O12 without a session for the task redirects (302) to the provider; its callback
//! `GET …/ui/login` sets the session cookie (`esignsp_signer_{process id}`, HttpOnly,
//! SameSite=Lax, the path of `…/ui`, Secure behind an https public URL, 30 minutes) and
//! redirects back to the task URL. The page names who is logged in; *Sign* and *Decline*
//! need that session (else 403) and a CSRF token bound to it
//! ([`BuiltinSigning::signer_form_token`]); *Sign* records the signer's identity.
//!
//! [`SignerProcessService::sign_in_browser`]: esignsp_domain::SignerProcessService::sign_in_browser

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use esignsp_domain::{DocumentId, ProcessId, SignerProcess};

use super::ui::{ended_location, html_escape, page, redirect_with, result_page, signer_process_id};
use crate::dto::API_BASE;
use crate::error::ApiError;
use crate::extract::BrowserAudit;
use crate::signer_login::{LoginError, SignerLogin, PENDING_LOGIN_TTL};
use crate::signing::{BuiltinSigning, SignerSession, SIGNER_SESSION_TTL};
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

/// Whether a stored media type is a PDF's (stored only for bytes that start with `%PDF-`).
fn is_pdf(media_type: &str) -> bool {
    media_type == "application/pdf"
}

fn pages_text(pdf: &[u8]) -> String {
    match esignsp_adapters::pades::page_count(pdf) {
        Ok(0) => "cannot be signed: it has no pages".to_owned(),
        Ok(1) => "1 page".to_owned(),
        Ok(n) => format!("{n} pages"),
        Err(e) => format!("cannot be signed: {e}"),
    }
}

/// Seconds since the Unix epoch.
fn now_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The path the signing page's cookies are sent to: `…/ui` and below.
fn cookie_path() -> String {
    format!("{API_BASE}/ui")
}

/// The name of the session cookie of `process`'s signer.
fn session_cookie_name(process: &ProcessId) -> String {
    format!("esignsp_signer_{process}")
}

/// The name of the cookie that binds a started login of `process` to this browser.
fn login_cookie_name(process: &ProcessId) -> String {
    format!("esignsp_login_{process}")
}

/// A cookie of the signing page: HttpOnly, SameSite=Lax (sent on the provider's redirect
/// back, a top-level GET), path `…/ui`, Secure behind an https public URL.
fn cookie(state: &AppState, name: String, value: String, max_age: std::time::Duration) -> Cookie<'static> {
    Cookie::build(name, value)
        .path(cookie_path())
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.urls.is_https())
        .max_age(actix_web::cookie::time::Duration::seconds(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX)))
        .finish()
}

/// The signer session of `process`'s current task in this request's cookies, if valid now.
fn session_of(req: &HttpRequest, signing: &BuiltinSigning, process: &SignerProcess) -> Option<SignerSession> {
    let value = req.cookie(&session_cookie_name(&process.id))?;
    signing
        .open_session(value.value(), now_seconds())
        .filter(|session| session.process == process.id && session.task == process.task_id)
}

/// The page for an answer of the provider or a callback that cannot be used.
fn login_failed(error: &LoginError) -> HttpResponse {
    let again = "Open the link of your signature task again to log in anew.".to_owned();
    match error {
        LoginError::Unavailable(_) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Login unavailable",
            &["The login service cannot be reached right now. Try again in a few minutes.".to_owned()],
        ),
        LoginError::Refused(why) => {
            page(StatusCode::BAD_REQUEST, "Login failed", &[format!("The login did not succeed: {why}."), again])
        }
        LoginError::UnknownState => page(
            StatusCode::BAD_REQUEST,
            "Login expired",
            &["This login is unknown or has expired (or was already used).".to_owned(), again],
        ),
    }
}

/// O12 while `process` is pending: the signing page, or first the login when signers log
/// in (`signing.signer_authentication = "oidc"`) and this browser has no session for the
/// task: 302 to the provider's authorization endpoint, with a cookie binding the login's
/// `state` to the browser (RFC 6749 §10.12).
///
/// # Errors
/// 503 when the database is unavailable (the provider's unavailability is a 503 page).
pub async fn entry(
    req: &HttpRequest,
    state: &AppState,
    signing: &BuiltinSigning,
    process: &SignerProcess,
) -> Result<HttpResponse, ApiError> {
    let Some(login) = &signing.login else { return signing_page(state, signing, process, None).await };
    if let Some(session) = session_of(req, signing, process) {
        return signing_page(state, signing, process, Some(&session)).await;
    }
    let (location, login_state) = match login.start(&process.id, &process.task_id, &state.urls.ui_login()).await {
        Ok(started) => started,
        Err(e) => return Ok(login_failed(&e)),
    };
    let mut answer = redirect_with(StatusCode::FOUND, location.as_str());
    answer
        .add_cookie(&cookie(state, login_cookie_name(&process.id), login_state, PENDING_LOGIN_TTL))
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(answer)
}

/// The built-in signing application and its signer login, when signers log in.
fn login_of(state: &AppState) -> Option<(&BuiltinSigning, &SignerLogin)> {
    match state.signing.as_deref() {
        Some(signing @ BuiltinSigning { login: Some(login), .. }) => Some((signing, login)),
        _ => None,
    }
}

/// `GET …/ui/login?code=…&state=…` (or `?error=…&state=…`): the redirect URI of the signer's
/// login (OpenID Connect Core 1.0 §3.1.2.5, §3.1.2.6). Exchanges the code, verifies the ID
/// token, sets the session cookie and redirects (302) to the task URL. A provider's `error`,
/// an unknown `state`, a `state` not started in this browser, or a code or ID token that does
/// not verify is a 400 page; the provider unreachable a 503 page.
///
/// # Errors
/// None of its own: every failure is a page.
#[tracing::instrument(skip_all)]
pub async fn login_callback(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let Some((signing, login)) = login_of(&state) else { return Ok(not_found()) };
    let mut params = std::collections::HashMap::<String, String>::new();
    for (key, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        params.entry(key.into_owned()).or_insert_with(|| value.into_owned());
    }
    let Some(login_state) = params.get("state") else {
        return Ok(login_failed(&LoginError::UnknownState));
    };
    if let Some(error) = params.get("error") {
        login.forget(login_state).await;
        let description = params.get("error_description").map(|d| format!(" ({d})")).unwrap_or_default();
        tracing::info!(error = %error, "the OpenID Provider answered the login with an error");
        return Ok(login_failed(&LoginError::Refused(format!("the login service answered {error}{description}"))));
    }
    // RFC 9207: an `iss` on the callback must be our provider (mix-up attacks).
    if params.get("iss").is_some_and(|iss| iss != login.issuer()) {
        login.forget(login_state).await;
        return Ok(login_failed(&LoginError::Refused("the answer came from another issuer".to_owned())));
    }
    let Some(process) = login.pending_process(login_state).await else {
        return Ok(login_failed(&LoginError::UnknownState));
    };
    let bound = req.cookie(&login_cookie_name(&process)).is_some_and(|c| c.value() == login_state.as_str());
    if !bound {
        login.forget(login_state).await;
        return Ok(login_failed(&LoginError::Refused("the login was started in another browser".to_owned())));
    }
    let Some(code) = params.get("code") else {
        login.forget(login_state).await;
        return Ok(login_failed(&LoginError::Refused("the answer has no authorization code".to_owned())));
    };
    let logged_in = match login.finish(login_state, code, &state.urls.ui_login()).await {
        Ok(logged_in) => logged_in,
        Err(e) => return Ok(login_failed(&e)),
    };
    tracing::info!(process = %logged_in.process, issuer = %logged_in.identity.issuer, "signer logged in");
    let session = SignerSession {
        process: logged_in.process.clone(),
        task: logged_in.task,
        identity: logged_in.identity,
        expires_at: now_seconds() + SIGNER_SESSION_TTL.as_secs(),
    };
    let mut answer = redirect_with(StatusCode::FOUND, &state.urls.ui(logged_in.process.as_str()));
    let sealed = signing.seal_session(&session);
    let mut used = cookie(&state, login_cookie_name(&process), String::new(), std::time::Duration::ZERO);
    used.make_removal();
    for c in [cookie(&state, session_cookie_name(&process), sealed, SIGNER_SESSION_TTL), used] {
        answer.add_cookie(&c).map_err(|e| ApiError::Internal(e.into()))?;
    }
    Ok(answer)
}

/// The signing page of pending `process`, for the logged-in signer of `session` when signers
/// log in.
///
/// # Errors
/// 503 when the database is unavailable.
pub async fn signing_page(
    state: &AppState,
    signing: &BuiltinSigning,
    process: &SignerProcess,
    session: Option<&SignerSession>,
) -> Result<HttpResponse, ApiError> {
    let id = process.id.as_str();
    let token = match session {
        Some(session) => signing.signer_form_token(session),
        None => signing.form_token(&process.id, &process.task_id),
    };
    let signer = session
        .map(|s| {
            let identity = &s.identity;
            let who = match (&identity.name, &identity.email) {
                (Some(name), Some(email)) => format!("{name} <{email}>"),
                _ => identity.display_name().to_owned(),
            };
            let who = html_escape(&who);
            format!(
                "<p class=\"signer\">Logged in as <strong>{who}</strong> (at {issuer}). Your signature will name you.</p>\n",
                issuer = html_escape(&identity.issuer)
            )
        })
        .unwrap_or_default();
    let mut items = String::new();
    for (n, document) in process.documents.iter().enumerate() {
        let name = document.filename.clone().unwrap_or_else(|| format!("Document {}", n + 1));
        let pages = match signing.pages.get(&document.sha256).await {
            Some(pages) => pages,
            None => {
                let pages = match state.service.document_bytes_for_browser(&document.id).await? {
                    Some(bytes) => pages_text(&bytes),
                    None => "missing".to_owned(),
                };
                signing.pages.insert(document.sha256.clone(), pages.clone()).await;
                pages
            }
        };
        let status = document.result.as_ref().map(|r| format!(" — {}", r.status)).unwrap_or_default();
        let link = state.urls.ui_path(&format!("document?signerProcessId={id}&document={}", document.id.as_str()));
        // Only a PDF is shown inline: anything else is a download (it could be HTML that
        // scripts the page it is framed in).
        let view = if is_pdf(&document.media_type) {
            format!(
                "<iframe src=\"{link}\" title=\"{name}\" loading=\"lazy\"></iframe>\n",
                link = html_escape(&link),
                name = html_escape(&name)
            )
        } else {
            "<p class=\"facts\">Not a PDF: open the link to download it.</p>\n".to_owned()
        };
        items.push_str(&format!(
            "<li class=\"document\">\n<h2><a href=\"{link}\" target=\"_blank\" rel=\"noopener\">{name}</a></h2>\n\
             <p class=\"facts\">{pages}, {size}{status}</p>\n{view}</li>\n",
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
            "<form method=\"post\" action=\"{action}\">\n\
             <input type=\"hidden\" name=\"signerProcessId\" value=\"{id}\">\n\
             <input type=\"hidden\" name=\"csrf_token\" value=\"{token}\">\n\
             <button type=\"submit\" class=\"{class}\">{label}</button>\n</form>\n",
            action = html_escape(&state.urls.ui_path(action)),
            id = html_escape(id),
            token = html_escape(&token),
        )
    };
    let count = process.documents.len();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sign {what}</title>\
         <link rel=\"stylesheet\" href=\"{css}\">\
         <script src=\"{js}\" defer></script></head>\n<body>\n<main>\n\
         <h1>Sign {what}</h1>\n{signer}\
         <p>Signing applies a PAdES {level} electronic signature to {each}. Read {them} below first.</p>\n\
         <ol class=\"documents\">\n{items}</ol>\n\
         <div class=\"actions\">\n{sign}{decline}</div>\n\
         <p class=\"busy\" hidden>Signing…</p>\n</main>\n</body>\n</html>\n",
        what = if count == 1 { "1 document".to_owned() } else { format!("{count} documents") },
        each = if count == 1 { "the document" } else { "each document" },
        them = if count == 1 { "it" } else { "them" },
        sign = form("sign", "Sign", "sign"),
        decline = form("decline", "Decline", "decline"),
        css = html_escape(&state.urls.ui_path("assets/signing.css")),
        js = html_escape(&state.urls.ui_path("assets/signing.js")),
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
    /// The process, and the signer's session when signers log in.
    Task(Box<SignerProcess>, Option<SignerSession>),
}

fn not_logged_in() -> HttpResponse {
    page(
        StatusCode::FORBIDDEN,
        "You are not logged in for this signature task",
        &[
            "Your login for this signature task is missing or has expired.".to_owned(),
            "Open the link of your signature task again to log in.".to_owned(),
        ],
    )
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
    let session = if signing.login.is_some() {
        let Some(session) = session_of(req, signing, &process) else { return Ok(Checked::Answer(not_logged_in())) };
        if !signing.check_signer_form_token(&session, &form.token) {
            return Ok(Checked::Answer(bad_form("The form does not belong to this signature task.")));
        }
        Some(session)
    } else {
        if !signing.check_form_token(&process.id, &process.task_id, &form.token) {
            return Ok(Checked::Answer(bad_form("The form does not belong to this signature task.")));
        }
        None
    };
    Ok(Checked::Task(Box::new(process), session))
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
    let (process, session) = match check(&req, payload, &state, &audit).await? {
        Checked::Answer(answer) => return Ok(answer),
        Checked::Task(process, session) => (process, session),
    };
    let Some(signing) = &state.signing else { return Ok(not_found()) };
    let identity = session.map(|s| s.identity);
    let lock = signing.in_flight.get_with(process.id.clone(), async { Default::default() }).await;
    let _one_at_a_time = lock.lock().await;
    let outcome = state.service.sign_in_browser(&process.id, signing.signer.as_ref(), identity, &audit).await?;
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
        Checked::Task(process, _) => process,
    };
    let outcome = state.service.decline_in_browser(&process.id, &audit).await?;
    Ok(after(&process, outcome.result()))
}

/// `GET …/ui/document?signerProcessId=…&document=…`: one document of a pending process, a PDF
/// inline (`Content-Disposition: inline`, RFC 6266), anything else a sandboxed download; with
/// a signer login only for the task's logged-in signer. A 404 page otherwise.
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
    let Some(signing) = &state.signing else { return Ok(not_found()) };
    let Some(process) = state.service.find_for_browser(&id, &audit).await? else { return Ok(not_found()) };
    // The view belongs to the signing page: while the process is pending, and, with a signer
    // login, to the logged-in signer of the task (the relying application reads documents
    // through O10).
    if process.result.is_some() || (signing.login.is_some() && session_of(&req, signing, &process).is_none()) {
        return Ok(not_found());
    }
    let Some(held) = process.documents.iter().find(|d| d.id == document) else { return Ok(not_found()) };
    let Some(reader) = state.service.open_document_for_browser(&held.id).await? else { return Ok(not_found()) };
    let name = held.filename.clone().unwrap_or_else(|| format!("{}.pdf", held.id.as_str()));
    // A PDF is shown inline; anything else is a download, in a sandbox of its own (no script
    // of it may reach the signing page's origin).
    let pdf = is_pdf(&held.media_type) && reader.starts_with(b"%PDF-");
    let disposition = header::ContentDisposition {
        disposition: if pdf { header::DispositionType::Inline } else { header::DispositionType::Attachment },
        parameters: vec![header::DispositionParam::FilenameExt(header::ExtendedValue {
            charset: header::Charset::Ext("UTF-8".to_owned()),
            language_tag: None,
            value: name.into_bytes(),
        })],
    };
    let media_type = if pdf { "application/pdf".to_owned() } else { reader.content().media_type.clone() };
    Ok(crate::routes::documents::streamed(
        reader,
        HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, media_type))
            .insert_header(disposition)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((
                "Content-Security-Policy",
                if pdf { "frame-ancestors 'self'" } else { "sandbox; default-src 'none'; frame-ancestors 'none'" },
            )),
    ))
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
