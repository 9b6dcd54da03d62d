//! `GET /healthz` (the process is alive) and `GET /readyz` (the database answers).

use actix_web::{web, HttpResponse};

use crate::dto::Health;
use crate::error::{ApiError, NotReady};
use crate::metrics::Metrics;
use crate::state::AppState;

/// 200 `{"status":"ok"}` while the process runs.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Alive", body = crate::dto::Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// 200 when the database answers and can take writes and verification keys are loaded, else
/// 503 with `Retry-After` and a problem document saying which is missing (the cause is logged).
///
/// # Errors
/// [`ApiError::NotReady`] when anything is missing.
#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, description = "Database reachable and keys loaded", body = crate::dto::Health),
    (status = 503, description = "Not ready", body = crate::error::Problem, content_type = "application/problem+json")
))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.verifier.ready() {
        return Err(NotReady::VerificationKeys.into());
    }
    state.service.repository().ping().await.map_err(NotReady::Database)?;
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}

/// Prometheus text exposition of the service's metrics.
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String)
))]
pub async fn metrics(state: web::Data<AppState>, metrics: web::Data<Metrics>) -> HttpResponse {
    let (in_use, idle) = state.store.pool_connections();
    metrics.pool.with_label_values(&["in_use"]).set(i64::from(in_use));
    metrics.pool.with_label_values(&["idle"]).set(i64::from(idle));
    if let Some(stats) = state.service.group_commit_stats() {
        metrics.observe_group_commit(stats);
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(metrics.render())
}

/// `GET /openapi.json`: the OpenAPI 3.1 description of this API.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(<crate::openapi::ApiDoc as utoipa::OpenApi>::openapi())
}
