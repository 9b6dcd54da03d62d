//! `GET /healthz` (the process is alive) and `GET /readyz` (the database answers).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::startup::AppState;

/// 200 `{"status":"ok"}` while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when the database answers, else 503 with `Retry-After`.
///
/// # Errors
/// [`ApiError::Unavailable`] when the database does not answer.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.service.repository().ping().await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}
