//! The webhook endpoints resource (SPEC §11, an extension): a client registers the URLs that
//! receive its processes' events, reads its deliveries' log and replays a delivery. Endpoints
//! are tenant-scoped like processes: another client's is answered like an unknown one (404).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use esignsp_domain::webhooks::{
    Delivery, EndpointError, EndpointUpdate, EventTypes, RepositoryErrorOr, WebhookEndpoint as Endpoint,
    WebhookEventType,
};
use esignsp_domain::EndpointId;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::body::InvalidBody;
use crate::dto::{parse_strict_json, rfc3339, FromJsonBody, Urls};
use crate::error::{ApiError, BodyErrors, ProtectedErrors};
use crate::extract::StrictJson;
use crate::state::AppState;

/// Longest accepted endpoint URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest accepted description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 256;
/// How many deliveries `GET …/deliveries` lists at most (the newest).
pub const DELIVERIES_LISTED: u32 = 100;

/// A webhook endpoint as its owner reads it (the secret only in the answer that made it).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    /// Its id.
    pub id: String,
    /// Its URL in this API.
    #[serde(rename = "self")]
    pub self_: String,
    /// Where deliveries are posted.
    pub url: String,
    /// The owner's note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The event types it receives.
    pub events: Vec<&'static str>,
    /// False once disabled (for failing too long, or by its owner).
    pub enabled: bool,
    /// Why and when it was disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<DisabledJson>,
    /// Since when its deliveries fail without a success in between (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
    /// Until when the secret a rotation replaced still signs (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<String>,
    /// When it was registered (RFC 3339).
    pub created_at: String,
    /// The signing secret (`whsec_…`): only in the answers of creation and rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Why an endpoint is disabled.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DisabledJson {
    /// When (RFC 3339).
    pub at: String,
    /// Why.
    pub reason: String,
}

impl WebhookEndpoint {
    fn new(e: &Endpoint, urls: &Urls) -> Self {
        Self {
            id: e.id.to_string(),
            self_: urls.webhook_endpoint(e.id.as_str()),
            url: e.url.clone(),
            description: e.description.clone(),
            events: e.events.types().into_iter().map(WebhookEventType::as_str).collect(),
            enabled: e.disabled.is_none(),
            disabled: e.disabled.as_ref().map(|d| DisabledJson { at: rfc3339(d.at), reason: d.reason.clone() }),
            failing_since: e.failing_since.map(rfc3339),
            previous_secret_expires_at: e.previous_secret_expires_at.map(rfc3339),
            created_at: rfc3339(e.created_at),
            secret: None,
        }
    }
}

/// `{"webhook_endpoints": [...]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookEndpoints {
    /// The caller's endpoints, oldest first.
    pub webhook_endpoints: Vec<WebhookEndpoint>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    /// Its number (1 for the first).
    pub attempt: u32,
    /// When (RFC 3339).
    pub at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// The endpoint's HTTP status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    /// The start of the endpoint's answer (at most 1 KiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A delivery of one event to the endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookDelivery {
    /// Its id (for replay).
    pub id: String,
    /// The `webhook-id` header: the same on every attempt and replay.
    pub message_id: String,
    /// The event type.
    pub event_type: String,
    /// The process.
    pub signer_process_id: String,
    /// `pending`, `delivered` or `failed`.
    pub status: &'static str,
    /// When it was queued (RFC 3339).
    pub created_at: String,
    /// When it is due next, while pending (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// Its attempts, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
}

impl WebhookDelivery {
    fn new(d: &Delivery) -> Self {
        Self {
            id: d.id.to_string(),
            message_id: d.message_id.to_string(),
            event_type: d.event_type.clone(),
            signer_process_id: d.process_id.clone(),
            status: d.status.as_str(),
            created_at: rfc3339(d.created_at),
            next_attempt_at: d.next_attempt_at.map(rfc3339),
            attempts: d
                .attempts
                .iter()
                .map(|a| DeliveryAttempt {
                    attempt: a.attempt,
                    at: rfc3339(a.at),
                    duration_ms: a.duration_ms,
                    response_status: a.response_status,
                    response_body: a.response_body.clone(),
                    error: a.error.clone(),
                })
                .collect(),
        }
    }
}

/// `{"deliveries": [...]}`, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookDeliveries {
    /// The newest deliveries (at most 100).
    pub deliveries: Vec<WebhookDelivery>,
}

/// The body of `POST /webhook_endpoints`: `{"url", "events"?, "description"?}`.
#[derive(Debug, Clone, ToSchema)]
pub struct EndpointCreation {
    /// Absolute `https` URL (`http` only with `webhooks.allow_insecure`), at most 2048 bytes.
    #[schema(example = "https://hooks.example.com/esignsp")]
    pub url: String,
    /// Event types (default: all of them).
    #[schema(value_type = Option<Vec<String>>, example = json!(["signer_process.result"]))]
    pub events: Option<EventTypes>,
    /// A note, at most 256 characters.
    pub description: Option<String>,
}

/// The body of `PATCH /webhook_endpoints/{id}`: any of `url`, `events`, `description` (null
/// removes it), `enabled` (true re-enables a disabled endpoint).
#[derive(Debug, Clone, ToSchema)]
pub struct EndpointPatch {
    /// New URL.
    #[schema(example = "https://hooks.example.com/esignsp/v2")]
    pub url: Option<String>,
    /// New event types.
    #[schema(value_type = Option<Vec<String>>, example = json!(["signer_process.result", "signer_process.expired"]))]
    pub events: Option<EventTypes>,
    /// New description.
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

fn object(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, InvalidBody> {
    match parse_strict_json(bytes)? {
        Value::Object(map) => Ok(map),
        _ => Err(InvalidBody::new("the body must be a JSON object")),
    }
}

fn url_member(value: &Value) -> Result<String, InvalidBody> {
    let url = value.as_str().ok_or_else(|| InvalidBody::new("url: must be a string"))?;
    if url.len() > MAX_URL_BYTES {
        return Err(InvalidBody::new(format!("url: at most {MAX_URL_BYTES} bytes")));
    }
    if url.chars().any(char::is_control) {
        return Err(InvalidBody::new("url: must not contain control characters"));
    }
    Ok(url.to_owned())
}

fn events_member(value: &Value) -> Result<EventTypes, InvalidBody> {
    let items = value.as_array().ok_or_else(|| InvalidBody::new("events: must be an array of event types"))?;
    let mut types = Vec::with_capacity(items.len());
    for item in items {
        let t = item.as_str().and_then(WebhookEventType::parse).ok_or_else(|| {
            let known: Vec<&str> = WebhookEventType::ALL.iter().map(|t| t.as_str()).collect();
            InvalidBody::new(format!("events: each must be one of {}", known.join(", ")))
        })?;
        types.push(t);
    }
    if types.is_empty() {
        return Err(InvalidBody::new("events: must name at least one event type"));
    }
    Ok(EventTypes::of(&types))
}

fn description_member(value: &Value) -> Result<Option<String>, InvalidBody> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() > MAX_DESCRIPTION_CHARS => {
            Err(InvalidBody::new(format!("description: at most {MAX_DESCRIPTION_CHARS} characters")))
        }
        Value::String(s) if s.chars().any(char::is_control) => {
            Err(InvalidBody::new("description: must not contain control characters"))
        }
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(InvalidBody::new("description: must be a string")),
    }
}

impl FromJsonBody for EndpointCreation {
    fn from_json_body(bytes: &[u8]) -> Result<Self, InvalidBody> {
        let map = object(bytes)?;
        let url = url_member(map.get("url").ok_or_else(|| InvalidBody::new("url: required"))?)?;
        let events = map.get("events").filter(|v| !v.is_null()).map(events_member).transpose()?;
        let description = map.get("description").map(description_member).transpose()?.flatten();
        Ok(Self { url, events, description })
    }
}

impl FromJsonBody for EndpointPatch {
    fn from_json_body(bytes: &[u8]) -> Result<Self, InvalidBody> {
        let map = object(bytes)?;
        let url = map.get("url").map(url_member).transpose()?;
        let events = map.get("events").map(events_member).transpose()?;
        let description = map.get("description").map(description_member).transpose()?;
        let enabled = map
            .get("enabled")
            .map(|v| v.as_bool().ok_or_else(|| InvalidBody::new("enabled: must be true or false")))
            .transpose()?;
        Ok(Self { url, events, description, enabled })
    }
}

/// The `{id}` of an endpoint route; one that cannot be ours is 404 without a query.
fn endpoint_id(req: &HttpRequest) -> Result<EndpointId, ApiError> {
    req.match_info().get("id").and_then(|s| EndpointId::parse(s).ok()).ok_or(ApiError::NotFound)
}

/// The webhook service, or 404 when `webhooks.enabled` is false.
fn webhooks(state: &AppState) -> Result<&crate::state::Webhooks, ApiError> {
    state.webhooks.as_ref().ok_or(ApiError::NotFound)
}

/// `url` checked against the outbound rules (400 naming why), in its normal form (WHATWG URL
/// serialization: what is stored and posted to).
fn checked_url(webhooks: &crate::state::Webhooks, url: &str) -> Result<String, ApiError> {
    let url: String = webhooks
        .outbound
        .check_url(url)
        .map(String::from)
        .map_err(|e| ApiError::Body(InvalidBody::new(format!("url: {e}")).into()))?;
    if url.len() > MAX_URL_BYTES {
        return Err(ApiError::Body(
            InvalidBody::new(format!("url: at most {MAX_URL_BYTES} bytes in its normal form (percent-encoded)")).into(),
        ));
    }
    Ok(url)
}

/// `POST /webhook_endpoints`: registers an endpoint for the caller's processes; 201 with the
/// secret, which is shown only here.
///
/// # Errors
/// 400 for a bad body or a URL that the outbound rules refuse (not https, credentials, a
/// private address literal); 409 beyond `webhooks.max_endpoints_per_client`; 415; 503.
#[utoipa::path(
    post,
    operation_id = "WebhookEndpointCreate",
    path = "/trustedx-resources/esignsp/v2/webhook_endpoints",
    request_body(content = EndpointCreation, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered; the secret is shown only now", body = WebhookEndpoint),
        (status = 409, description = "Too many endpoints", body = crate::error::Problem, content_type = "application/problem+json"),
        BodyErrors,
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn create(
    Authenticated(caller): Authenticated,
    StrictJson(body): StrictJson<EndpointCreation>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let webhooks = webhooks(&state)?;
    let url = checked_url(webhooks, &body.url)?;
    let created = webhooks
        .service
        .create(&caller.client_id, url, body.description, body.events.unwrap_or(EventTypes::ALL))
        .await
        .map_err(|e| match e {
            RepositoryErrorOr::Refused(EndpointError::TooMany(n)) => ApiError::WebhookEndpointLimit(n),
            RepositoryErrorOr::Repository(e) => e.into(),
        })?;
    let mut answer = WebhookEndpoint::new(&created.endpoint, &state.urls);
    answer.secret = Some(created.secret.expose().to_owned());
    Ok(HttpResponse::Created().insert_header((header::LOCATION, answer.self_.clone())).json(answer))
}

/// `GET /webhook_endpoints`: the caller's endpoints, oldest first.
///
/// # Errors
/// 503.
#[utoipa::path(
    get,
    operation_id = "WebhookEndpointList",
    path = "/trustedx-resources/esignsp/v2/webhook_endpoints",
    responses((status = 200, description = "The caller's endpoints", body = WebhookEndpoints), ProtectedErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn list(Authenticated(caller): Authenticated, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let webhooks = webhooks(&state)?;
    let endpoints = webhooks.service.repository().list_endpoints(&caller.client_id).await?;
    let webhook_endpoints = endpoints.iter().map(|e| WebhookEndpoint::new(e, &state.urls)).collect();
    Ok(HttpResponse::Ok().json(WebhookEndpoints { webhook_endpoints }))
}

/// `GET /webhook_endpoints/{id}`.
///
/// # Errors
/// 404 for an unknown or foreign endpoint; 503.
#[utoipa::path(
    get,
    operation_id = "WebhookEndpointRead",
    path = "/trustedx-resources/esignsp/v2/webhook_endpoints/{id}",
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookEndpoint),
        (status = 404, description = "No such endpoint", body = crate::error::Problem, content_type = "application/problem+json"),
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn get(
    Authenticated(caller): Authenticated,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let webhooks = webhooks(&state)?;
    let id = endpoint_id(&req)?;
    let endpoint =
        webhooks.service.repository().find_endpoint(&id, &caller.client_id).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(WebhookEndpoint::new(&endpoint, &state.urls)))
}

/// `PATCH /webhook_endpoints/{id}`: changes its URL, event types or description, or enables
/// (`"enabled": true`, which also forgets its failing streak) or disables it.
///
/// # Errors
/// 400 for a bad body or URL; 404; 415; 503.
#[utoipa::path(
    patch,
    operation_id = "WebhookEndpointUpdate",
    path = "/trustedx-resources/esignsp/v2/webhook_endpoints/{id}",
    params(("id" = String, Path, description = "Endpoint id")),
    request_body(content = EndpointPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The endpoint as changed", body = WebhookEndpoint),
        (status = 404, description = "No such endpoint", body = crate::error::Problem, content_type = "application/problem+json"),
        BodyErrors,
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn update(
    Authenticated(caller): Authenticated,
    req: HttpRequest,
    StrictJson(body): StrictJson<EndpointPatch>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let webhooks = webhooks(&state)?;
    let id = endpoint_id(&req)?;
    let url = body.url.as_deref().map(|url| checked_url(webhooks, url)).transpose()?;
    let update = EndpointUpdate { url, description: body.description, events: body.events, enabled: body.enabled };
    let endpoint = webhooks.service.update(&id, &caller.client_id, &update).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(WebhookEndpoint::new(&endpoint, &state.urls)))
}

/// `DELETE /webhook_endpoints/{id}`: deletes it with its deliveries; 204.
///
/// # Errors
/// 404; 503.
#[utoipa::path(
    delete,
    operation_id = "WebhookEndpointDelete",
    path = "/trustedx-resources/esignsp/v2/webhook_endpoints/{id}",
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 204, description = "Deleted with its deliveries"),
        (status = 404, description = "No such endpoint", body = crate::error::Problem, content_type = "application/problem+json"),
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn delete(
    Authenticated(caller): Authenticated,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let webhooks = webhooks(&state)?;
    let id = endpoint_id(&req)?;
    if webhooks.service.repository().delete_endpoint(&id, &caller.client_id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}

/// `POST /webhook_endpoints/{id}/secret/rotate`: a new secret, shown once; the old one still
/// signs for 24 hours (each delivery then carries both signatures).
///
/// # Errors
/// 404; 503.
#[utoipa::path(
    post,
    operation_id = "WebhookEndpointSecretRotate",
    path = "/trustedx-resources/esignsp/v2/webhook_endpoints/{id}/secret/rotate",
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = WebhookEndpoint),
        (status = 404, description = "No such endpoint", body = crate::error::Problem, content_type = "application/problem+json"),
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn rotate_secret(
    Authenticated(caller): Authenticated,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let webhooks = webhooks(&state)?;
    let id = endpoint_id(&req)?;
    let (secret, _) = webhooks.service.rotate_secret(&id, &caller.client_id).await?.ok_or(ApiError::NotFound)?;
    let endpoint =
        webhooks.service.repository().find_endpoint(&id, &caller.client_id).await?.ok_or(ApiError::NotFound)?;
    let mut answer = WebhookEndpoint::new(&endpoint, &state.urls);
    answer.secret = Some(secret.expose().to_owned());
    Ok(HttpResponse::Ok().json(answer))
}

/// `GET /webhook_endpoints/{id}/deliveries`: the newest 100 deliveries with their attempts.
///
/// # Errors
/// 404; 503.
#[utoipa::path(
    get,
    operation_id = "WebhookDeliveryList",
    path = "/trustedx-resources/esignsp/v2/webhook_endpoints/{id}/deliveries",
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The delivery log", body = WebhookDeliveries),
        (status = 404, description = "No such endpoint", body = crate::error::Problem, content_type = "application/problem+json"),
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn deliveries(
    Authenticated(caller): Authenticated,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let webhooks = webhooks(&state)?;
    let id = endpoint_id(&req)?;
    let list = webhooks
        .service
        .repository()
        .deliveries(&id, &caller.client_id, DELIVERIES_LISTED)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(WebhookDeliveries { deliveries: list.iter().map(WebhookDelivery::new).collect() }))
}

/// `POST /webhook_endpoints/{id}/deliveries/{delivery_id}/replay`: sends a delivery again
/// now, with the same `webhook-id` (its attempt count starts again); 202.
///
/// # Errors
/// 404 for an unknown delivery or endpoint; 503.
#[utoipa::path(
    post,
    operation_id = "WebhookDeliveryReplay",
    path = "/trustedx-resources/esignsp/v2/webhook_endpoints/{id}/deliveries/{delivery_id}/replay",
    params(
        ("id" = String, Path, description = "Endpoint id"),
        ("delivery_id" = String, Path, description = "Delivery id")
    ),
    responses(
        (status = 202, description = "Queued again"),
        (status = 404, description = "No such delivery", body = crate::error::Problem, content_type = "application/problem+json"),
        ProtectedErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn replay(
    Authenticated(caller): Authenticated,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let webhooks = webhooks(&state)?;
    let id = endpoint_id(&req)?;
    let delivery = req
        .match_info()
        .get("delivery_id")
        .filter(|s| !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(ApiError::NotFound)?;
    if webhooks.service.replay(&id, &caller.client_id, delivery).await? {
        webhooks.wake.notify_one();
        Ok(HttpResponse::Accepted().finish())
    } else {
        Err(ApiError::NotFound)
    }
}
