//! O12 `GET /ui?signerProcessId={id}`: the browser entry and return point (SPEC §5). No bearer
//! token: the process id in the task URL is the capability.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use esignsp_domain::{ProcessId, SignerProcess};

use crate::error::ApiError;
use crate::extract::BrowserAudit;
use crate::state::AppState;

/// Escapes text for HTML element content and quoted attribute values.
#[must_use]
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A minimal HTML page of `paragraphs` (escaped), never cached, loading nothing.
#[must_use]
pub fn page(status: StatusCode, title: &str, paragraphs: &[String]) -> HttpResponse {
    let body: String = paragraphs.iter().map(|p| format!("<p>{}</p>\n", html_escape(p))).collect();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{t}</title></head>\n<body>\n<h1>{t}</h1>\n{body}</body>\n</html>\n",
        t = html_escape(title)
    );
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Content-Security-Policy", "default-src 'none'"))
        .body(html)
}

fn redirect(location: &str) -> HttpResponse {
    redirect_with(StatusCode::FOUND, location)
}

/// A redirect of `status` (302 for O12, 303 after a POST) to `location`, never cached.
#[must_use]
pub fn redirect_with(status: StatusCode, location: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// `url` with the query parameters `params` appended, keeping those it has; `None` when
/// `url` is not a URL (custom schemes such as `com.example.app://done` are URLs).
fn with_query(url: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(url).ok()?;
    {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in params {
            pairs.append_pair(k, v);
        }
    }
    Some(url.to_string())
}

/// The process id of O12's query (`signerProcessId`, form-urlencoded; the first one counts);
/// `None` when it is absent or cannot be one of ours (answered with the 404 page).
#[must_use]
pub fn signer_process_id(query: &str) -> Option<ProcessId> {
    let raw = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "signerProcessId")?.1;
    ProcessId::parse(&raw).ok()
}

/// O12: while the process is pending, 302 to `ui.signing_app_url` with `signerProcessId`
/// added (or a page saying it waits); once it has a result, 302 to its
/// `finish_callback_url` with `status` and `signer_process_id` added (or a result page).
/// An unknown process is a 404 page.
///
/// # Errors
/// 503 when the database is unavailable.
#[utoipa::path(
    get,
    operation_id = "UserBrowserTask",
    path = "/trustedx-resources/esignsp/v2/ui",
    params(("signerProcessId" = Option<String>, Query, description = "Signature process id")),
    responses(
        (status = 302, description = "To the signing application while pending (or, when signers log in with OpenID Connect and this browser has no session for the task, to the provider's authorization endpoint); to finish_callback_url with status and signer_process_id once ended"),
        (status = 200, description = "A page saying the process waits or has ended", content_type = "text/html"),
        (status = 404, description = "A page saying there is no such process", content_type = "text/html"),
        (status = 503, description = "Database unavailable", body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn browser(
    req: HttpRequest,
    BrowserAudit(audit): BrowserAudit,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || {
        page(StatusCode::NOT_FOUND, "Signature process not found", &["There is no such signature process.".to_owned()])
    };
    let Some(id) = signer_process_id(req.query_string()) else {
        return Ok(not_found());
    };
    let Some(process) = state.service.find_for_browser(&id, &audit).await? else {
        return Ok(not_found());
    };
    match &process.result {
        None => match with_query(&state.signing_app_url, &[("signerProcessId", id.as_str())]) {
            Some(location) if !state.signing_app_url.is_empty() => Ok(redirect(&location)),
            _ => match &state.signing {
                Some(signing) => super::signing_page::entry(&req, &state, signing, &process).await,
                None => Ok(page(
                    StatusCode::OK,
                    "Signature process pending",
                    &[format!("The signature process {id} is waiting for its documents to be signed.")],
                )),
            },
        },
        Some(result) => Ok(ended(&process, result)),
    }
}

/// Where a browser goes once `process` has `result` (SPEC §5): its `finish_callback_url` with
/// `status` and `signer_process_id` added (a `redirect` answer), or a page saying how it ended.
#[must_use]
pub fn ended_location(process: &SignerProcess, result: &esignsp_domain::ProcessResult) -> Option<String> {
    let id = &process.id;
    process
        .request
        .finish_callback_url()
        .and_then(|u| with_query(u, &[("status", result.status.as_str()), ("signer_process_id", id.as_str())]))
}

/// O12 once `process` has `result`: 302 to [`ended_location`], or the result page.
fn ended(process: &SignerProcess, result: &esignsp_domain::ProcessResult) -> HttpResponse {
    let id = &process.id;
    match ended_location(process, result) {
        Some(location) => redirect(&location),
        None => result_page(id, result),
    }
}

/// The page saying how process `id` ended, for a process without a callback URL.
#[must_use]
pub fn result_page(id: &ProcessId, result: &esignsp_domain::ProcessResult) -> HttpResponse {
    let mut lines = vec![format!("The signature process {id} ended: {}.", result.status)];
    if let Some(m) = &result.message {
        lines.push(m.as_str().to_owned());
    }
    page(StatusCode::OK, "Signature process ended", &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_urls_keep_their_query_and_custom_schemes() {
        assert_eq!(
            with_query("https://app.example/done?x=1", &[("status", "finished"), ("signer_process_id", "abc")])
                .as_deref(),
            Some("https://app.example/done?x=1&status=finished&signer_process_id=abc")
        );
        assert_eq!(
            with_query("com.example.app://done", &[("status", "failed")]).as_deref(),
            Some("com.example.app://done?status=failed")
        );
        assert_eq!(with_query("not a url", &[]), None);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html_escape(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
    }
}
