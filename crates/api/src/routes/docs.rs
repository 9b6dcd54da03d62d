//! `GET /docs`: Swagger UI rendering the OpenAPI document (`GET /openapi.json`). Its files are
//! embedded in the binary at build time (utoipa-swagger-ui with `vendored`), so the page loads
//! nothing from any other host: no CDN, no web font, no validator badge (`validatorUrl: none`).

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use utoipa_swagger_ui::{Config, SwaggerFile};

use crate::error::ApiError;

/// Where the page's own files are served: `/docs/{file}`.
const ASSETS: &str = "/docs/";

fn config() -> Arc<Config<'static>> {
    Arc::new(Config::new(["/openapi.json"]).validator_url("none"))
}

fn file(path: &str) -> Result<SwaggerFile<'static>, ApiError> {
    utoipa_swagger_ui::serve(path, config())
        .map_err(|e| ApiError::Internal(e.to_string().into()))?
        .ok_or(ApiError::NotFound)
}

fn respond(file: SwaggerFile<'_>) -> HttpResponse {
    HttpResponse::Ok().content_type(file.content_type).body(file.bytes.into_owned())
}

/// `GET /docs` (and `/docs/`, the same after trailing-slash trimming): Swagger UI's page, its
/// relative links resolved against `/docs/` by a `<base>` element.
///
/// # Errors
/// [`ApiError::Internal`] if the embedded page is missing (a broken build).
pub async fn index() -> Result<HttpResponse, ApiError> {
    let page = file("index.html")?;
    let html =
        String::from_utf8_lossy(&page.bytes).replacen("<head>", &format!("<head>\n  <base href=\"{ASSETS}\">"), 1);
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html))
}

/// `GET /docs/{file}`: one of Swagger UI's scripts, style sheets or images.
///
/// # Errors
/// [`ApiError::NotFound`] for a file that is not part of Swagger UI.
pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(respond(file(&name)?))
}
