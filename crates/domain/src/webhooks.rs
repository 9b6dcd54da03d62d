//! Webhooks (SPEC §11, an extension): endpoints that a client registers, the notification a
//! transition writes into the transactional outbox, and the delivery rules — which attempts
//! are made, when a failed one is retried and when an endpoint is disabled.
//!
//! The notification is part of the transition (SPEC §8): the repository writes it, once per
//! subscribed endpoint of the process's owner, in the transaction that writes the result, so
//! a committed result always has its deliveries and a rolled-back one never does. The
//! [`WebhookDispatcher`] then claims due deliveries, has a [`WebhookSender`] post them
//! (signed per Standard Webhooks) and records every attempt.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::ids::{ClientId, DocumentId, EndpointId, MessageId, ProcessId};
use crate::ports::{Clock, IdGenerator, RepositoryError};
use crate::result::{DocumentResult, ProcessResult};

/// The event types an endpoint can subscribe to (SPEC §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEventType {
    /// `signer_process.created`: a process was created (O1).
    Created,
    /// `signer_process.document_result`: a document result was set (O7).
    DocumentResult,
    /// `signer_process.result`: the process result was established (O5, the signing page).
    Result,
    /// `signer_process.expired`: the process expired while pending (SPEC §4).
    Expired,
    /// `signer_process.deleted`: the process was deleted (O3).
    Deleted,
}

impl WebhookEventType {
    /// Every event type, in the order SPEC §11 lists them.
    pub const ALL: [Self; 5] = [Self::Created, Self::DocumentResult, Self::Result, Self::Expired, Self::Deleted];

    /// The wire name (`type` of the payload, `events` of an endpoint).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "signer_process.created",
            Self::DocumentResult => "signer_process.document_result",
            Self::Result => "signer_process.result",
            Self::Expired => "signer_process.expired",
            Self::Deleted => "signer_process.deleted",
        }
    }

    /// Parses a wire name (exact, case-sensitive).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The type's bit in an [`EventTypes`] set (how the store keeps subscriptions, so that
    /// the outbox insert is one indexed comparison).
    #[must_use]
    pub const fn bit(self) -> i64 {
        match self {
            Self::Created => 1,
            Self::DocumentResult => 2,
            Self::Result => 4,
            Self::Expired => 8,
            Self::Deleted => 16,
        }
    }
}

/// A set of event types, as a bit mask of [`WebhookEventType::bit`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventTypes(i64);

impl EventTypes {
    /// Every event type (an endpoint created without `events`).
    pub const ALL: Self = Self(31);

    /// The set of `types`.
    #[must_use]
    pub fn of(types: &[WebhookEventType]) -> Self {
        Self(types.iter().fold(0, |mask, t| mask | t.bit()))
    }

    /// The set a stored mask names (unknown bits dropped).
    #[must_use]
    pub const fn from_mask(mask: i64) -> Self {
        Self(mask & Self::ALL.0)
    }

    /// The stored mask.
    #[must_use]
    pub const fn mask(self) -> i64 {
        self.0
    }

    /// The types in the set, in [`WebhookEventType::ALL`] order.
    #[must_use]
    pub fn types(self) -> Vec<WebhookEventType> {
        WebhookEventType::ALL.into_iter().filter(|t| self.0 & t.bit() != 0).collect()
    }
}

/// An endpoint's signing secret: `whsec_` and the base64 of 32 random bytes (Standard
/// Webhooks §"Signature scheme"). Its `Debug` is redacted; it is shown to its owner once, when
/// made.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// The prefix of every secret.
    pub const PREFIX: &'static str = "whsec_";

    /// A secret from 32 bytes of a CSPRNG.
    #[must_use]
    pub fn from_random(bits: [u8; 32]) -> Self {
        Self(format!("{}{}", Self::PREFIX, data_encoding::BASE64.encode(&bits)))
    }

    /// A stored secret.
    #[must_use]
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The secret as its owner and the store see it (`whsec_…`). Never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(redacted)")
    }
}

/// Why an endpoint was disabled, for its owner to read (`GET /webhook_endpoints/{id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    /// When.
    pub at: OffsetDateTime,
    /// Why, e.g. `failing since 2026-12-01T10:00:00Z: HTTP 500`.
    pub reason: String,
}

/// A registered endpoint (SPEC §11), as stored. The secrets are not part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// Its id.
    pub id: EndpointId,
    /// The client that registered it; it receives events of that client's processes.
    pub owner: ClientId,
    /// Where deliveries are posted (absolute `https` URL; `http` when allowed).
    pub url: String,
    /// The owner's note.
    pub description: Option<String>,
    /// The event types it receives.
    pub events: EventTypes,
    /// When it was registered.
    pub created_at: OffsetDateTime,
    /// Until when the previous secret still signs (after a rotation).
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    /// Since when its deliveries fail without a success in between.
    pub failing_since: Option<OffsetDateTime>,
    /// Set when it was disabled for failing too long.
    pub disabled: Option<Disabled>,
}

/// A new endpoint with its first secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookEndpoint {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// Its secret (shown once).
    pub secret: WebhookSecret,
}

/// Changes to an endpoint (`PATCH /webhook_endpoints/{id}`): each one given replaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointUpdate {
    /// New URL.
    pub url: Option<String>,
    /// New description (`Some(None)` removes it).
    pub description: Option<Option<String>>,
    /// New event types.
    pub events: Option<EventTypes>,
    /// `Some(true)` re-enables a disabled endpoint (and forgets its failing streak).
    pub enabled: Option<bool>,
}

/// The notification a state change writes into the outbox (SPEC §11): one delivery per
/// subscribed endpoint of the process's owner, in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The `webhook-id` of its deliveries.
    pub message_id: MessageId,
    /// Its event type.
    pub event_type: WebhookEventType,
    /// The body posted, exactly as signed: the JSON of [`Payload`].
    pub payload: String,
}

/// The body of a delivery, as Standard Webhooks recommends it (§"Payload structure"):
/// `{"type", "timestamp", "data"}`.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: &'static str,
    /// When the event happened (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// What happened.
    pub data: PayloadData<'a>,
}

/// The `data` of a [`Payload`].
#[derive(Debug, Serialize)]
pub struct PayloadData<'a> {
    /// The process.
    pub signer_process_id: &'a str,
    /// The process result, once established.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultJson>,
    /// The document of a document result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_id: Option<&'a str>,
    /// The documents with their results (result events), or the document of a document
    /// result.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<DocumentJson<'a>>,
}

/// `{"status", "details": {"message"}}` as O4 answers it.
#[derive(Debug, Serialize)]
pub struct ResultJson {
    /// The status.
    pub status: &'static str,
    /// `{"message"}` when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<DetailsJson>,
}

/// `details` of a result.
#[derive(Debug, Serialize)]
pub struct DetailsJson {
    /// The message.
    pub message: String,
}

/// One document of a payload.
#[derive(Debug, Serialize)]
pub struct DocumentJson<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its result, once set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultJson>,
}

impl ResultJson {
    /// A process result.
    #[must_use]
    pub fn process(result: &ProcessResult) -> Self {
        Self {
            status: result.status.as_str(),
            details: result.message.as_ref().map(|m| DetailsJson { message: m.as_str().to_owned() }),
        }
    }

    /// A document result.
    #[must_use]
    pub fn document(result: &DocumentResult) -> Self {
        Self {
            status: result.status.as_str(),
            details: result.message.as_ref().map(|m| DetailsJson { message: m.as_str().to_owned() }),
        }
    }
}

/// Makes notifications: a fresh message id and the payload's JSON.
#[derive(Clone)]
pub struct Notifier {
    ids: Arc<dyn IdGenerator>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Notifier")
    }
}

impl Notifier {
    /// A notifier minting message ids from `ids`.
    #[must_use]
    pub fn new(ids: Arc<dyn IdGenerator>) -> Self {
        Self { ids }
    }

    /// The notification of `event_type` about `process` at `at`.
    #[must_use]
    pub fn notification(
        &self,
        event_type: WebhookEventType,
        process: &ProcessId,
        at: OffsetDateTime,
        result: Option<&ProcessResult>,
        document: Option<(&DocumentId, &DocumentResult)>,
        documents: &[(&DocumentId, Option<&DocumentResult>)],
    ) -> Notification {
        let mut listed: Vec<DocumentJson<'_>> = documents
            .iter()
            .map(|(id, r)| DocumentJson { id: id.as_str(), result: r.map(ResultJson::document) })
            .collect();
        if let Some((id, r)) = document {
            listed = vec![DocumentJson { id: id.as_str(), result: Some(ResultJson::document(r)) }];
        }
        let payload = Payload {
            event_type: event_type.as_str(),
            timestamp: at,
            data: PayloadData {
                signer_process_id: process.as_str(),
                result: result.map(ResultJson::process),
                document_id: document.map(|(id, _)| id.as_str()),
                documents: listed,
            },
        };
        Notification {
            message_id: MessageId::from_random(self.ids.random_160()),
            event_type,
            // Serializing these plain structs cannot fail.
            payload: serde_json::to_string(&payload).unwrap_or_default(),
        }
    }
}

/// How failed deliveries are retried and when a failing endpoint is disabled (SPEC §11,
/// `[webhooks]` configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 8).
    pub max_attempts: u32,
    /// The wait before the first retry (default 60 s); each further wait is 4 times the one
    /// before, up to `max_delay`.
    pub initial_delay: Duration,
    /// The longest wait between two attempts (default 10 h): with the defaults the eight
    /// attempts span about 25.7 hours.
    pub max_delay: Duration,
    /// Each wait is multiplied by a factor drawn uniformly from `1 ± jitter` (default 0.2), so
    /// that endpoints that failed together are not retried together.
    pub jitter: f64,
    /// An endpoint whose deliveries have failed, without a success, for this long is
    /// disabled (`webhooks.disable_after_hours`, default 120 h).
    pub disable_after: Duration,
    /// Settled deliveries (and their attempts) are kept this long, then purged
    /// (`webhooks.retention_days`, default 30 days).
    pub retention: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_delay: Duration::seconds(60),
            max_delay: Duration::hours(10),
            jitter: 0.2,
            disable_after: Duration::hours(120),
            retention: Duration::days(30),
        }
    }
}

/// How many settled deliveries one purge statement deletes at most.
pub const PURGE_BATCH: u32 = 1000;

/// The multiplier of the backoff: each wait is this many times the one before.
pub const BACKOFF_FACTOR: f64 = 4.0;

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1 for the first), before jitter;
    /// `None` when it was the last one allowed.
    #[must_use]
    pub fn base_delay(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let seconds = self.initial_delay.as_seconds_f64() * BACKOFF_FACTOR.powi(exponent);
        Some(Duration::seconds_f64(seconds.min(self.max_delay.as_seconds_f64())))
    }

    /// The wait after failed attempt `attempt` with `unit` (uniform in `[0, 1)`) as the
    /// jitter draw; `None` when no attempt is left.
    #[must_use]
    pub fn delay(&self, attempt: u32, unit: f64) -> Option<Duration> {
        let base = self.base_delay(attempt)?;
        let factor = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Some(Duration::seconds_f64((base.as_seconds_f64() * factor).max(0.0)))
    }
}

/// A delivery claimed for an attempt, with what is needed to make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// The delivery.
    pub id: i64,
    /// Its endpoint.
    pub endpoint: EndpointId,
    /// The endpoint's URL.
    pub url: String,
    /// The `webhook-id`.
    pub message_id: MessageId,
    /// The body.
    pub payload: String,
    /// The number of this attempt (1 for the first).
    pub attempt: u32,
    /// The secrets that sign it: the current one, and the previous one while it is valid.
    pub secrets: Vec<WebhookSecret>,
}

/// One POST of a delivery, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingWebhook<'a> {
    /// Where.
    pub url: &'a str,
    /// `webhook-id`.
    pub message_id: &'a MessageId,
    /// `webhook-timestamp`: the time of this attempt.
    pub timestamp: OffsetDateTime,
    /// The body.
    pub payload: &'a str,
    /// One `v1,` signature per secret.
    pub secrets: &'a [WebhookSecret],
}

/// How one POST ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The endpoint answered: 2xx is a success, anything else (a redirect included, which is
    /// never followed) a failure.
    Answered {
        /// The HTTP status.
        status: u16,
        /// The start of the response body (bounded), for the owner's delivery log.
        body: String,
    },
    /// Nothing was sent: the target is not allowed (a private address, plain HTTP).
    Refused(String),
    /// The request failed: name resolution, connection, TLS, time-out.
    Failed(String),
}

impl AttemptOutcome {
    /// Whether the delivery succeeded.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        matches!(self, Self::Answered { status, .. } if (200..300).contains(status))
    }

    /// The HTTP status, when there was an answer.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Answered { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The failure in a few words, for the log and the owner (`None` on success).
    #[must_use]
    pub fn error(&self) -> Option<String> {
        match self {
            _ if self.succeeded() => None,
            Self::Answered { status, .. } => Some(format!("HTTP {status}")),
            Self::Refused(why) => Some(format!("refused: {why}")),
            Self::Failed(why) => Some(why.clone()),
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// An attempt succeeded.
    Delivered,
    /// Every attempt failed, or its endpoint was disabled.
    Failed,
}

impl DeliveryStatus {
    /// The stored and returned name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed].into_iter().find(|k| k.as_str() == s)
    }
}

/// What an attempt leaves, to be recorded: the attempt as the delivery log shows it, and
/// the delivery's state after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The delivery.
    pub delivery: i64,
    /// Its endpoint.
    pub endpoint: EndpointId,
    /// The attempt.
    pub attempt: Attempt,
    /// The delivery's status after it.
    pub status: DeliveryStatus,
    /// The next attempt, while pending.
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// One attempt in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Its number.
    pub attempt: u32,
    /// When.
    pub at: OffsetDateTime,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// The HTTP status, when answered.
    pub response_status: Option<u16>,
    /// The start of the response body.
    pub response_body: Option<String>,
    /// The failure.
    pub error: Option<String>,
}

/// A delivery of one message to one endpoint, with its attempts (the delivery log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its id.
    pub id: i64,
    /// `webhook-id`.
    pub message_id: MessageId,
    /// The event type.
    pub event_type: String,
    /// The process.
    pub process_id: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// When it was queued (the transition's commit).
    pub created_at: OffsetDateTime,
    /// The next attempt, while pending.
    pub next_attempt_at: Option<OffsetDateTime>,
    /// Attempts so far, oldest first.
    pub attempts: Vec<Attempt>,
}

/// The outbox's state, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Pending deliveries.
    pub pending: i64,
    /// When the oldest pending delivery was queued.
    pub oldest_pending: Option<OffsetDateTime>,
}

/// Persistence of endpoints and of the outbox's deliveries. Every method that takes an owner
/// sees only that client's endpoints: another client's is reported like an unknown one.
#[async_trait]
pub trait WebhookRepository: Send + Sync {
    /// Stores a new endpoint, unless its owner already has `limit` of them (`Ok(false)`).
    ///
    /// # Errors
    /// [`RepositoryError`]; nothing is stored then.
    async fn create_endpoint(&self, endpoint: &NewWebhookEndpoint, limit: u32) -> Result<bool, RepositoryError>;

    /// An endpoint of `owner`.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn find_endpoint(
        &self,
        id: &EndpointId,
        owner: &ClientId,
    ) -> Result<Option<WebhookEndpoint>, RepositoryError>;

    /// `owner`'s endpoints, oldest first.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn list_endpoints(&self, owner: &ClientId) -> Result<Vec<WebhookEndpoint>, RepositoryError>;

    /// Applies `update` at `at` (the time a disabling records); `None` for an unknown or
    /// foreign endpoint. Re-enabling clears `disabled` and `failing_since`.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn update_endpoint(
        &self,
        id: &EndpointId,
        owner: &ClientId,
        update: &EndpointUpdate,
        at: OffsetDateTime,
    ) -> Result<Option<WebhookEndpoint>, RepositoryError>;

    /// Deletes an endpoint with its deliveries; whether there was one.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn delete_endpoint(&self, id: &EndpointId, owner: &ClientId) -> Result<bool, RepositoryError>;

    /// Makes `secret` the endpoint's secret; the one it replaces keeps signing until
    /// `previous_valid_until`. `false` for an unknown or foreign endpoint.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn rotate_secret(
        &self,
        id: &EndpointId,
        owner: &ClientId,
        secret: &WebhookSecret,
        previous_valid_until: OffsetDateTime,
    ) -> Result<bool, RepositoryError>;

    /// The newest `limit` deliveries of an endpoint with their attempts, newest first; `None`
    /// for an unknown or foreign endpoint.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn deliveries(
        &self,
        id: &EndpointId,
        owner: &ClientId,
        limit: u32,
    ) -> Result<Option<Vec<Delivery>>, RepositoryError>;

    /// Makes a delivery pending again, due at `at`, with its attempt count reset (the same
    /// `webhook-id`). `false` for an unknown delivery or a foreign endpoint.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn replay(
        &self,
        endpoint: &EndpointId,
        owner: &ClientId,
        delivery: i64,
        at: OffsetDateTime,
    ) -> Result<bool, RepositoryError>;

    /// Claims at most `limit` pending deliveries due at `now` of enabled endpoints not in
    /// `busy`, soonest first, and leases them until `lease_until` (their next attempt time
    /// then, so a worker that dies mid-attempt leaves them to another). Each claim counts an
    /// attempt. Safe on several replicas at once (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn claim_due(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
        busy: &[EndpointId],
    ) -> Result<Vec<ClaimedDelivery>, RepositoryError>;

    /// Records an attempt in the log and the delivery's new status (only while the delivery
    /// is still at `record.attempt.attempt`, so a worker whose lease ran out does not overwrite a
    /// newer attempt), and the endpoint's failing streak: cleared on success, started at
    /// `record.attempt.at` on a failure if not running. Answers the endpoint's `failing_since` after.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn record_attempt(&self, record: &AttemptRecord) -> Result<Option<OffsetDateTime>, RepositoryError>;

    /// Disables an endpoint; its pending deliveries wait until it is enabled again.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn disable_endpoint(&self, id: &EndpointId, disabled: &Disabled) -> Result<(), RepositoryError>;

    /// Deletes at most `limit` settled (delivered or failed) deliveries queued before
    /// `before`, with their attempts; how many.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn purge_settled(&self, before: OffsetDateTime, limit: u32) -> Result<u64, RepositoryError>;

    /// The outbox's state.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn queue_stats(&self) -> Result<QueueStats, RepositoryError>;
}

/// Posts one signed delivery (Standard Webhooks), without following redirects, with a
/// time-out and a bounded read of the answer, refusing targets that are not allowed.
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// Sends `request`.
    async fn send(&self, request: &OutgoingWebhook<'_>) -> AttemptOutcome;
}

/// A source of jitter draws, uniform in `[0, 1)`.
pub trait Jitter: Send + Sync {
    /// A draw.
    fn unit(&self) -> f64;
}

/// How one attempt ended, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempted {
    /// The delivery's status after it: delivered, pending (a retry is scheduled) or failed
    /// for good.
    pub status: DeliveryStatus,
    /// Nothing was sent: the target is not allowed.
    pub refused: bool,
    /// Its endpoint was disabled after it, for failing too long.
    pub disabled: bool,
}

/// `text` as the delivery log keeps it: control characters other than tab and line breaks
/// (a NUL, which PostgreSQL's text refuses, among them) replaced by U+FFFD.
#[must_use]
pub fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() && !matches!(c, '\t' | '\n' | '\r') { '\u{fffd}' } else { c }).collect()
}

/// Delivers the outbox (SPEC §11): claims due deliveries, makes and records each attempt,
/// schedules retries under the [`RetryPolicy`], disables endpoints that fail too long. Every
/// replica runs one; its worker decides how many attempts run at once.
#[derive(Clone)]
pub struct WebhookDispatcher {
    repository: Arc<dyn WebhookRepository>,
    sender: Arc<dyn WebhookSender>,
    clock: Arc<dyn Clock>,
    jitter: Arc<dyn Jitter>,
    policy: RetryPolicy,
    lease: Duration,
}

impl fmt::Debug for WebhookDispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookDispatcher").field("policy", &self.policy).field("lease", &self.lease).finish()
    }
}

impl WebhookDispatcher {
    /// Wires a dispatcher: `lease` must exceed the sender's time-out.
    #[must_use]
    pub fn new(
        repository: Arc<dyn WebhookRepository>,
        sender: Arc<dyn WebhookSender>,
        clock: Arc<dyn Clock>,
        jitter: Arc<dyn Jitter>,
        policy: RetryPolicy,
        lease: Duration,
    ) -> Self {
        Self { repository, sender, clock, jitter, policy, lease }
    }

    /// The outbox's state.
    ///
    /// # Errors
    /// [`RepositoryError`].
    pub async fn queue_stats(&self) -> Result<QueueStats, RepositoryError> {
        self.repository.queue_stats().await
    }

    /// Purges settled deliveries older than the retention, a batch at a time; how many.
    ///
    /// # Errors
    /// [`RepositoryError`].
    pub async fn purge(&self) -> Result<u64, RepositoryError> {
        let before = self.clock.now() - self.policy.retention;
        let mut purged = 0;
        loop {
            let n = self.repository.purge_settled(before, PURGE_BATCH).await?;
            purged += n;
            if n < u64::from(PURGE_BATCH) {
                return Ok(purged);
            }
        }
    }

    /// Claims at most `limit` due deliveries, none of the endpoints in `busy` (those this
    /// replica has enough attempts in flight for: one slow endpoint must not hold up the
    /// others), each leased for the dispatcher's lease.
    ///
    /// # Errors
    /// [`RepositoryError`].
    pub async fn claim(&self, limit: u32, busy: &[EndpointId]) -> Result<Vec<ClaimedDelivery>, RepositoryError> {
        let now = self.clock.now();
        self.repository.claim_due(now, now + self.lease, limit, busy).await
    }

    /// Makes one attempt of a claimed delivery and records it (see [`Attempted`]). A delivery
    /// claimed beyond [`RetryPolicy::max_attempts`] (earlier attempts that could not be
    /// recorded) is failed without sending, so retries stay bounded whatever happens.
    ///
    /// # Errors
    /// [`RepositoryError`] when recording fails: the attempt is made again when its lease
    /// runs out (at least once).
    pub async fn deliver(&self, delivery: &ClaimedDelivery) -> Result<Attempted, RepositoryError> {
        let (status, refused, disabled) = self.attempt(delivery).await?;
        Ok(Attempted { status, refused, disabled })
    }

    async fn attempt(&self, delivery: &ClaimedDelivery) -> Result<(DeliveryStatus, bool, bool), RepositoryError> {
        let at = self.clock.now();
        let request = OutgoingWebhook {
            url: &delivery.url,
            message_id: &delivery.message_id,
            timestamp: at,
            payload: &delivery.payload,
            secrets: &delivery.secrets,
        };
        let outcome = if delivery.attempt > self.policy.max_attempts {
            AttemptOutcome::Failed(format!(
                "no attempt left: claimed {} times, {} allowed (earlier attempts were not recorded)",
                delivery.attempt, self.policy.max_attempts
            ))
        } else {
            self.sender.send(&request).await
        };
        let duration_ms = i64::try_from((self.clock.now() - at).whole_milliseconds()).unwrap_or(i64::MAX);
        let (status, next_attempt_at) = if outcome.succeeded() {
            (DeliveryStatus::Delivered, None)
        } else if delivery.attempt > self.policy.max_attempts {
            (DeliveryStatus::Failed, None)
        } else {
            match self.policy.delay(delivery.attempt, self.jitter.unit()) {
                Some(wait) => (DeliveryStatus::Pending, Some(at + wait)),
                None => (DeliveryStatus::Failed, None),
            }
        };
        let error = outcome.error();
        match &error {
            None => {
                tracing::info!(delivery = delivery.id, endpoint = %delivery.endpoint, message_id = %delivery.message_id, attempt = delivery.attempt, status = outcome.status(), "webhook delivered")
            }
            Some(e) => {
                tracing::warn!(delivery = delivery.id, endpoint = %delivery.endpoint, message_id = %delivery.message_id, attempt = delivery.attempt, error = %e, next = status.as_str(), "webhook attempt failed")
            }
        }
        let record = AttemptRecord {
            delivery: delivery.id,
            endpoint: delivery.endpoint.clone(),
            attempt: Attempt {
                attempt: delivery.attempt,
                at,
                duration_ms,
                response_status: outcome.status(),
                response_body: match &outcome {
                    AttemptOutcome::Answered { body, .. } if !body.is_empty() => Some(printable(body)),
                    _ => None,
                },
                error: error.as_deref().map(printable),
            },
            status,
            next_attempt_at,
        };
        let failing_since = self.repository.record_attempt(&record).await?;
        let mut disabled = false;
        if let (Some(error), Some(since)) = (&error, failing_since) {
            if at - since >= self.policy.disable_after {
                let reason = format!(
                    "failing since {}: {error}",
                    since.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
                );
                tracing::warn!(endpoint = %delivery.endpoint, %reason, "webhook endpoint disabled");
                self.repository.disable_endpoint(&delivery.endpoint, &Disabled { at, reason }).await?;
                disabled = true;
            }
        }
        Ok((status, matches!(outcome, AttemptOutcome::Refused(_)), disabled))
    }
}

/// Why an endpoint request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The owner has [`WebhookService`]'s limit of endpoints already (409).
    #[error("a client may register at most {0} webhook endpoints")]
    TooMany(u32),
}

/// How long the secret a rotation replaces keeps signing (SPEC §11).
pub const PREVIOUS_SECRET_VALIDITY: Duration = Duration::hours(24);

/// The endpoints resource's use cases (SPEC §11).
#[derive(Clone)]
pub struct WebhookService {
    repository: Arc<dyn WebhookRepository>,
    ids: Arc<dyn IdGenerator>,
    clock: Arc<dyn Clock>,
    secrets: Arc<dyn Fn() -> [u8; 32] + Send + Sync>,
    limit: u32,
}

impl fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookService").field("limit", &self.limit).finish()
    }
}

impl WebhookService {
    /// Wires the service: `secrets` draws 32 bytes from a CSPRNG; `limit` is the most
    /// endpoints one client may have.
    #[must_use]
    pub fn new(
        repository: Arc<dyn WebhookRepository>,
        ids: Arc<dyn IdGenerator>,
        clock: Arc<dyn Clock>,
        secrets: Arc<dyn Fn() -> [u8; 32] + Send + Sync>,
        limit: u32,
    ) -> Self {
        Self { repository, ids, clock, secrets, limit }
    }

    /// The repository.
    #[must_use]
    pub fn repository(&self) -> &Arc<dyn WebhookRepository> {
        &self.repository
    }

    fn now(&self) -> OffsetDateTime {
        let now = self.clock.now();
        now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
    }

    /// Registers an endpoint of `owner` (its URL checked by the caller against the outbound
    /// rules) and makes its first secret.
    ///
    /// # Errors
    /// [`EndpointError::TooMany`]; storage errors.
    pub async fn create(
        &self,
        owner: &ClientId,
        url: String,
        description: Option<String>,
        events: EventTypes,
    ) -> Result<NewWebhookEndpoint, RepositoryErrorOr<EndpointError>> {
        let endpoint = NewWebhookEndpoint {
            endpoint: WebhookEndpoint {
                id: EndpointId::from_random(self.ids.random_160()),
                owner: owner.clone(),
                url,
                description,
                events,
                created_at: self.now(),
                previous_secret_expires_at: None,
                failing_since: None,
                disabled: None,
            },
            secret: WebhookSecret::from_random((self.secrets)()),
        };
        if self.repository.create_endpoint(&endpoint, self.limit).await? {
            Ok(endpoint)
        } else {
            Err(RepositoryErrorOr::Refused(EndpointError::TooMany(self.limit)))
        }
    }

    /// Makes a new secret; the old one signs too for [`PREVIOUS_SECRET_VALIDITY`]. `None` for
    /// an unknown or foreign endpoint.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn rotate_secret(
        &self,
        id: &EndpointId,
        owner: &ClientId,
    ) -> Result<Option<(WebhookSecret, OffsetDateTime)>, RepositoryError> {
        let secret = WebhookSecret::from_random((self.secrets)());
        let until = self.now() + PREVIOUS_SECRET_VALIDITY;
        Ok(self.repository.rotate_secret(id, owner, &secret, until).await?.then_some((secret, until)))
    }

    /// `PATCH /webhook_endpoints/{id}`: applies `update` now (`enabled: false` disables it
    /// "by its owner"); `None` for an unknown or foreign endpoint.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn update(
        &self,
        id: &EndpointId,
        owner: &ClientId,
        update: &EndpointUpdate,
    ) -> Result<Option<WebhookEndpoint>, RepositoryError> {
        self.repository.update_endpoint(id, owner, update, self.now()).await
    }

    /// Replays a delivery now (same `webhook-id`).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn replay(
        &self,
        endpoint: &EndpointId,
        owner: &ClientId,
        delivery: i64,
    ) -> Result<bool, RepositoryError> {
        self.repository.replay(endpoint, owner, delivery, self.now()).await
    }
}

/// A refusal of the use case, or a storage failure.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryErrorOr<E> {
    /// Refused.
    #[error("{0}")]
    Refused(E),
    /// Storage failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_eight_attempts_over_about_a_day() {
        let policy = RetryPolicy::default();
        let waits: Vec<i64> = (1..=8).filter_map(|a| policy.base_delay(a)).map(|d| d.whole_seconds()).collect();
        assert_eq!(waits, [60, 240, 960, 3840, 15360, 36000, 36000], "seven waits between eight attempts");
        let total: i64 = waits.iter().sum();
        assert!((20 * 3600..30 * 3600).contains(&total), "about a day: {total} s");
        assert_eq!(policy.base_delay(8), None, "no ninth attempt");
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let policy = RetryPolicy::default();
        let low = policy.delay(1, 0.0).map(|d| d.as_seconds_f64());
        let high = policy.delay(1, 0.999_999).map(|d| d.as_seconds_f64());
        assert_eq!(low, Some(48.0));
        assert!(high.is_some_and(|h| (71.9..72.0).contains(&h)), "{high:?}");
    }

    #[test]
    fn event_types_round_trip_through_their_mask_and_names() {
        let set = EventTypes::of(&[WebhookEventType::Result, WebhookEventType::Deleted]);
        assert_eq!(EventTypes::from_mask(set.mask()).types(), [WebhookEventType::Result, WebhookEventType::Deleted]);
        assert_eq!(EventTypes::ALL.types(), WebhookEventType::ALL);
        for t in WebhookEventType::ALL {
            assert_eq!(WebhookEventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(WebhookEventType::parse("signer_process.Result"), None);
    }

    #[test]
    fn the_log_keeps_no_control_character_but_line_breaks() {
        assert_eq!(printable("ok\0\u{7}\tline\r\n"), "ok\u{fffd}\u{fffd}\tline\r\n");
    }

    #[test]
    fn a_secret_is_whsec_and_32_bytes_of_base64_and_never_debug_printed() {
        let secret = WebhookSecret::from_random([7; 32]);
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(
            data_encoding::BASE64.decode(&secret.expose().as_bytes()["whsec_".len()..]).map(|b| b.len()),
            Ok(32)
        );
        assert_eq!(format!("{secret:?}"), "WebhookSecret(redacted)");
    }
}
