//! Webhook endpoints and the outbox's deliveries (SPEC §11) in either SQL store: one set of
//! statements ([`sql`]) and one implementation of
//! [`WebhookRepository`](esignsp_domain::webhooks::WebhookRepository) ([`webhook_repository!`])
//! for both, the store giving how it makes a statement, its pool, its current time and how it
//! claims due deliveries (PostgreSQL: `FOR UPDATE SKIP LOCKED`, safe with replicas; SQLite:
//! its single writer).

use esignsp_domain::ports::RepositoryError;
use esignsp_domain::webhooks::{
    Attempt, ClaimedDelivery, Delivery, DeliveryStatus, Disabled, EventTypes, WebhookEndpoint, WebhookSecret,
};
use esignsp_domain::{ClientId, EndpointId, MessageId};
use time::OffsetDateTime;

use crate::stored::{corrupt, StoredRow};

/// The statements, in the text both stores run.
pub(crate) mod sql {
    /// The columns of an endpoint that [`super::endpoint`] reads.
    macro_rules! endpoint_columns {
        () => {
            "id, client_id, url, description, event_mask, created_at, previous_secret_expires_at, failing_since, \
             disabled_at, disabled_reason"
        };
    }

    /// A new endpoint unless its owner `$2` has `$8` already: `$1` id, `$3` URL, `$4`
    /// description, `$5` event mask, `$6` secret, `$7` created at.
    pub(crate) const CREATE_ENDPOINT: &str = "INSERT INTO webhook_endpoints \
        (id, client_id, url, description, event_mask, secret, created_at) \
        SELECT $1, $2, $3, $4, $5, $6, $7 WHERE (SELECT count(*) FROM webhook_endpoints WHERE client_id = $2) < $8";

    /// Endpoint `$1` of owner `$2`.
    pub(crate) const FIND_ENDPOINT: &str =
        concat!("SELECT ", endpoint_columns!(), " FROM webhook_endpoints WHERE id = $1 AND client_id = $2");

    /// The endpoints of owner `$1`, oldest first.
    pub(crate) const LIST_ENDPOINTS: &str =
        concat!("SELECT ", endpoint_columns!(), " FROM webhook_endpoints WHERE client_id = $1 ORDER BY created_at, id");

    /// Updates endpoint `$1` of owner `$2`: `$3` URL or NULL (keep), `$4` whether to set the
    /// description to `$5`, `$6` event mask or NULL (keep), `$7` re-enable (forgets the failing
    /// streak), `$8` disable (by its owner) at `$9` with reason `$10`.
    pub(crate) const UPDATE_ENDPOINT: &str = "UPDATE webhook_endpoints SET \
        url = COALESCE($3, url), \
        description = CASE WHEN $4 THEN $5 ELSE description END, \
        event_mask = COALESCE($6, event_mask), \
        failing_since = CASE WHEN $7 THEN NULL ELSE failing_since END, \
        disabled_at = CASE WHEN $7 THEN NULL WHEN $8 AND disabled_at IS NULL THEN $9 ELSE disabled_at END, \
        disabled_reason = CASE WHEN $7 THEN NULL WHEN $8 AND disabled_at IS NULL THEN $10 ELSE disabled_reason END \
        WHERE id = $1 AND client_id = $2";

    /// Deletes endpoint `$1` of owner `$2` (its deliveries and attempts by cascade).
    pub(crate) const DELETE_ENDPOINT: &str = "DELETE FROM webhook_endpoints WHERE id = $1 AND client_id = $2";

    /// Makes `$3` the secret of endpoint `$1` of owner `$2`; the one it replaces signs until `$4`.
    pub(crate) const ROTATE_SECRET: &str = "UPDATE webhook_endpoints SET previous_secret = secret, \
        previous_secret_expires_at = $4, secret = $3 WHERE id = $1 AND client_id = $2";

    /// The newest `$2` deliveries of endpoint `$1`.
    pub(crate) const DELIVERIES: &str = "SELECT id, message_id, event_type, process_id, status, created_at, \
        next_attempt_at FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY id DESC LIMIT $2";

    /// The attempts of endpoint `$1`'s deliveries from id `$2` on, oldest first.
    pub(crate) const ATTEMPTS: &str = "SELECT a.delivery_id, a.attempt, a.at, a.duration_ms, a.response_status, \
        a.response_body, a.error FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id \
        WHERE d.endpoint_id = $1 AND d.id >= $2 ORDER BY a.id";

    /// Makes delivery `$3` of endpoint `$1` (of owner `$2`) pending again, due at `$4`.
    pub(crate) const REPLAY: &str = "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, \
        next_attempt_at = $4 WHERE id = $3 AND endpoint_id = $1 \
        AND EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1 AND client_id = $2)";

    /// Logs attempt `$2` of delivery `$1` (unless the delivery is gone): `$3` at, `$4` duration
    /// in ms, `$5` response status, `$6` response body, `$7` error.
    pub(crate) const INSERT_ATTEMPT: &str = "INSERT INTO webhook_attempts \
        (delivery_id, attempt, at, duration_ms, response_status, response_body, error) \
        SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM webhook_deliveries WHERE id = $1)";

    /// Delivery `$1` after attempt `$2` (only while it is still at that attempt and pending):
    /// status `$3`, next attempt `$4` (NULL: keep).
    pub(crate) const SETTLE_DELIVERY: &str = "UPDATE webhook_deliveries SET status = $3, \
        next_attempt_at = COALESCE($4, next_attempt_at) WHERE id = $1 AND attempts = $2 AND status = 'pending'";

    /// The failing streak of endpoint `$1` after an attempt at `$2`: ended by a success (`$3`),
    /// else started unless running. Answers the streak's start.
    pub(crate) const ENDPOINT_STREAK: &str = "UPDATE webhook_endpoints SET failing_since = \
        CASE WHEN $3 THEN NULL ELSE COALESCE(failing_since, $2) END WHERE id = $1 RETURNING failing_since";

    /// Disables endpoint `$1` at `$2` for reason `$3`.
    pub(crate) const DISABLE_ENDPOINT: &str =
        "UPDATE webhook_endpoints SET disabled_at = $2, disabled_reason = $3 WHERE id = $1 AND disabled_at IS NULL";

    /// Deletes at most `$2` settled (delivered or failed) deliveries queued before `$1`, with
    /// their attempts (by cascade).
    pub(crate) const PURGE_SETTLED: &str = "DELETE FROM webhook_deliveries WHERE id IN \
        (SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1 LIMIT $2)";

    /// Pending deliveries of enabled endpoints and when the oldest was queued.
    pub(crate) const QUEUE_STATS: &str = "SELECT count(*) AS pending, min(d.created_at) AS oldest \
        FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
        WHERE d.status = 'pending' AND e.disabled_at IS NULL";
}

/// An endpoint row of [`sql::FIND_ENDPOINT`] / [`sql::LIST_ENDPOINTS`].
pub(crate) fn endpoint(row: &impl StoredRow) -> Result<WebhookEndpoint, RepositoryError> {
    let disabled = match row.optional_time("disabled_at")? {
        Some(at) => Some(Disabled { at, reason: row.optional_text("disabled_reason")?.unwrap_or_default() }),
        None => None,
    };
    Ok(WebhookEndpoint {
        id: EndpointId::parse(&row.text("id")?).map_err(|_| corrupt("endpoint id"))?,
        owner: ClientId::parse(&row.text("client_id")?).map_err(|_| corrupt("endpoint owner"))?,
        url: row.text("url")?,
        description: row.optional_text("description")?,
        events: EventTypes::from_mask(row.integer("event_mask")?),
        created_at: row.time("created_at")?,
        previous_secret_expires_at: row.optional_time("previous_secret_expires_at")?,
        failing_since: row.optional_time("failing_since")?,
        disabled,
    })
}

/// A delivery row of [`sql::DELIVERIES`], without its attempts.
pub(crate) fn delivery(row: &impl StoredRow) -> Result<Delivery, RepositoryError> {
    let status = DeliveryStatus::parse(&row.text("status")?).ok_or_else(|| corrupt("delivery status"))?;
    Ok(Delivery {
        id: row.integer("id")?,
        message_id: MessageId::parse(&row.text("message_id")?).map_err(|_| corrupt("message id"))?,
        event_type: row.text("event_type")?,
        process_id: row.text("process_id")?,
        status,
        created_at: row.time("created_at")?,
        next_attempt_at: if status == DeliveryStatus::Pending { Some(row.time("next_attempt_at")?) } else { None },
        attempts: Vec::new(),
    })
}

/// An attempt row of [`sql::ATTEMPTS`] with its delivery's id.
pub(crate) fn attempt(row: &impl StoredRow) -> Result<(i64, Attempt), RepositoryError> {
    let status = row.optional_integer("response_status")?;
    Ok((
        row.integer("delivery_id")?,
        Attempt {
            attempt: u32::try_from(row.integer("attempt")?).map_err(|_| corrupt("attempt number"))?,
            at: row.time("at")?,
            duration_ms: row.integer("duration_ms")?,
            response_status: status.map(|s| u16::try_from(s).map_err(|_| corrupt("response status"))).transpose()?,
            response_body: row.optional_text("response_body")?,
            error: row.optional_text("error")?,
        },
    ))
}

/// `deliveries` with their `attempts` (rows of [`attempt`]).
pub(crate) fn with_attempts(mut deliveries: Vec<Delivery>, attempts: Vec<(i64, Attempt)>) -> Vec<Delivery> {
    for (id, attempt) in attempts {
        if let Some(d) = deliveries.iter_mut().find(|d| d.id == id) {
            d.attempts.push(attempt);
        }
    }
    deliveries
}

/// The secrets that sign a delivery at `now`: the current one, and the previous one while it
/// is valid (SPEC §11: one signature per active secret).
pub(crate) fn active_secrets(
    secret: String,
    previous: Option<String>,
    previous_until: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Vec<WebhookSecret> {
    let mut secrets = vec![WebhookSecret::from_stored(secret)];
    if let (Some(previous), Some(until)) = (previous, previous_until) {
        if until > now {
            secrets.push(WebhookSecret::from_stored(previous));
        }
    }
    secrets
}

/// A claimed delivery from a row with `id, endpoint_id, url, message_id, payload, attempts,
/// secret, previous_secret, previous_secret_expires_at`.
pub(crate) fn claimed(row: &impl StoredRow, now: OffsetDateTime) -> Result<ClaimedDelivery, RepositoryError> {
    Ok(ClaimedDelivery {
        id: row.integer("id")?,
        endpoint: EndpointId::parse(&row.text("endpoint_id")?).map_err(|_| corrupt("endpoint id"))?,
        url: row.text("url")?,
        message_id: MessageId::parse(&row.text("message_id")?).map_err(|_| corrupt("message id"))?,
        payload: row.text("payload")?,
        attempt: u32::try_from(row.integer("attempts")?).map_err(|_| corrupt("attempts"))?,
        secrets: active_secrets(
            row.text("secret")?,
            row.optional_text("previous_secret")?,
            row.optional_time("previous_secret_expires_at")?,
            now,
        ),
    })
}

/// Implements `WebhookRepository` for a store type with inherent methods `webhook_query(&self,
/// &str) -> Query`, `webhook_pool(&self) -> &Pool`, `endpoint_registration(&self, owner)` (a
/// transaction serializing one owner's registrations) and `claim_due_rows(&self, now,
/// lease_until, limit, busy)`; `$map` translates sqlx errors.
macro_rules! webhook_repository {
    ($store:ty, $map:path) => {
        #[async_trait::async_trait]
        impl esignsp_domain::webhooks::WebhookRepository for $store {
            async fn create_endpoint(
                &self,
                new: &esignsp_domain::webhooks::NewWebhookEndpoint,
                limit: u32,
            ) -> Result<bool, RepositoryError> {
                let e = &new.endpoint;
                let mut tx = self.endpoint_registration(e.owner.as_str()).await?;
                let done = self
                    .webhook_query($crate::webhook_store::sql::CREATE_ENDPOINT)
                    .bind(e.id.as_str())
                    .bind(e.owner.as_str())
                    .bind(e.url.as_str())
                    .bind(e.description.as_deref())
                    .bind(e.events.mask())
                    .bind(new.secret.expose())
                    .bind($crate::stored::StoredTime(e.created_at))
                    .bind(i64::from(limit))
                    .execute(&mut *tx)
                    .await
                    .map_err($map)?;
                tx.commit().await.map_err($map)?;
                Ok(done.rows_affected() == 1)
            }

            async fn find_endpoint(
                &self,
                id: &esignsp_domain::EndpointId,
                owner: &esignsp_domain::ClientId,
            ) -> Result<Option<esignsp_domain::webhooks::WebhookEndpoint>, RepositoryError> {
                let row = self
                    .webhook_query($crate::webhook_store::sql::FIND_ENDPOINT)
                    .bind(id.as_str())
                    .bind(owner.as_str())
                    .fetch_optional(self.webhook_pool())
                    .await
                    .map_err($map)?;
                row.map(|r| $crate::webhook_store::endpoint(&r)).transpose()
            }

            async fn list_endpoints(
                &self,
                owner: &esignsp_domain::ClientId,
            ) -> Result<Vec<esignsp_domain::webhooks::WebhookEndpoint>, RepositoryError> {
                let rows = self
                    .webhook_query($crate::webhook_store::sql::LIST_ENDPOINTS)
                    .bind(owner.as_str())
                    .fetch_all(self.webhook_pool())
                    .await
                    .map_err($map)?;
                rows.iter().map($crate::webhook_store::endpoint).collect()
            }

            async fn update_endpoint(
                &self,
                id: &esignsp_domain::EndpointId,
                owner: &esignsp_domain::ClientId,
                update: &esignsp_domain::webhooks::EndpointUpdate,
                at: time::OffsetDateTime,
            ) -> Result<Option<esignsp_domain::webhooks::WebhookEndpoint>, RepositoryError> {
                let done = self
                    .webhook_query($crate::webhook_store::sql::UPDATE_ENDPOINT)
                    .bind(id.as_str())
                    .bind(owner.as_str())
                    .bind(update.url.as_deref())
                    .bind(update.description.is_some())
                    .bind(update.description.clone().flatten())
                    .bind(update.events.map(|e| e.mask()))
                    .bind(update.enabled == Some(true))
                    .bind(update.enabled == Some(false))
                    .bind($crate::stored::StoredTime(at))
                    .bind("disabled by its owner")
                    .execute(self.webhook_pool())
                    .await
                    .map_err($map)?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                self.find_endpoint(id, owner).await
            }

            async fn delete_endpoint(
                &self,
                id: &esignsp_domain::EndpointId,
                owner: &esignsp_domain::ClientId,
            ) -> Result<bool, RepositoryError> {
                let done = self
                    .webhook_query($crate::webhook_store::sql::DELETE_ENDPOINT)
                    .bind(id.as_str())
                    .bind(owner.as_str())
                    .execute(self.webhook_pool())
                    .await
                    .map_err($map)?;
                Ok(done.rows_affected() == 1)
            }

            async fn rotate_secret(
                &self,
                id: &esignsp_domain::EndpointId,
                owner: &esignsp_domain::ClientId,
                secret: &esignsp_domain::webhooks::WebhookSecret,
                previous_valid_until: time::OffsetDateTime,
            ) -> Result<bool, RepositoryError> {
                let done = self
                    .webhook_query($crate::webhook_store::sql::ROTATE_SECRET)
                    .bind(id.as_str())
                    .bind(owner.as_str())
                    .bind(secret.expose())
                    .bind($crate::stored::StoredTime(previous_valid_until))
                    .execute(self.webhook_pool())
                    .await
                    .map_err($map)?;
                Ok(done.rows_affected() == 1)
            }

            async fn deliveries(
                &self,
                id: &esignsp_domain::EndpointId,
                owner: &esignsp_domain::ClientId,
                limit: u32,
            ) -> Result<Option<Vec<esignsp_domain::webhooks::Delivery>>, RepositoryError> {
                if self.find_endpoint(id, owner).await?.is_none() {
                    return Ok(None);
                }
                let rows = self
                    .webhook_query($crate::webhook_store::sql::DELIVERIES)
                    .bind(id.as_str())
                    .bind(i64::from(limit))
                    .fetch_all(self.webhook_pool())
                    .await
                    .map_err($map)?;
                let deliveries =
                    rows.iter().map($crate::webhook_store::delivery).collect::<Result<Vec<_>, RepositoryError>>()?;
                let Some(oldest) = deliveries.iter().map(|d| d.id).min() else { return Ok(Some(deliveries)) };
                let rows = self
                    .webhook_query($crate::webhook_store::sql::ATTEMPTS)
                    .bind(id.as_str())
                    .bind(oldest)
                    .fetch_all(self.webhook_pool())
                    .await
                    .map_err($map)?;
                let attempts =
                    rows.iter().map($crate::webhook_store::attempt).collect::<Result<Vec<_>, RepositoryError>>()?;
                Ok(Some($crate::webhook_store::with_attempts(deliveries, attempts)))
            }

            async fn replay(
                &self,
                endpoint: &esignsp_domain::EndpointId,
                owner: &esignsp_domain::ClientId,
                delivery: i64,
                at: time::OffsetDateTime,
            ) -> Result<bool, RepositoryError> {
                let done = self
                    .webhook_query($crate::webhook_store::sql::REPLAY)
                    .bind(endpoint.as_str())
                    .bind(owner.as_str())
                    .bind(delivery)
                    .bind($crate::stored::StoredTime(at))
                    .execute(self.webhook_pool())
                    .await
                    .map_err($map)?;
                Ok(done.rows_affected() == 1)
            }

            async fn claim_due(
                &self,
                now: time::OffsetDateTime,
                lease_until: time::OffsetDateTime,
                limit: u32,
                busy: &[esignsp_domain::EndpointId],
            ) -> Result<Vec<esignsp_domain::webhooks::ClaimedDelivery>, RepositoryError> {
                self.claim_due_rows(now, lease_until, limit, busy).await
            }

            async fn record_attempt(
                &self,
                record: &esignsp_domain::webhooks::AttemptRecord,
            ) -> Result<Option<time::OffsetDateTime>, RepositoryError> {
                let mut tx = self.webhook_pool().begin().await.map_err($map)?;
                let attempt = &record.attempt;
                self.webhook_query($crate::webhook_store::sql::INSERT_ATTEMPT)
                    .bind(record.delivery)
                    .bind(i64::from(attempt.attempt))
                    .bind($crate::stored::StoredTime(attempt.at))
                    .bind(attempt.duration_ms)
                    .bind(attempt.response_status.map(i64::from))
                    .bind(attempt.response_body.as_deref())
                    .bind(attempt.error.as_deref())
                    .execute(&mut *tx)
                    .await
                    .map_err($map)?;
                self.webhook_query($crate::webhook_store::sql::SETTLE_DELIVERY)
                    .bind(record.delivery)
                    .bind(i64::from(attempt.attempt))
                    .bind(record.status.as_str())
                    .bind(record.next_attempt_at.map($crate::stored::StoredTime))
                    .execute(&mut *tx)
                    .await
                    .map_err($map)?;
                let streak = self
                    .webhook_query($crate::webhook_store::sql::ENDPOINT_STREAK)
                    .bind(record.endpoint.as_str())
                    .bind($crate::stored::StoredTime(attempt.at))
                    .bind(attempt.error.is_none())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err($map)?;
                tx.commit().await.map_err($map)?;
                match streak {
                    Some(row) => $crate::stored::StoredRow::optional_time(&row, "failing_since"),
                    None => Ok(None),
                }
            }

            async fn disable_endpoint(
                &self,
                id: &esignsp_domain::EndpointId,
                disabled: &esignsp_domain::webhooks::Disabled,
            ) -> Result<(), RepositoryError> {
                self.webhook_query($crate::webhook_store::sql::DISABLE_ENDPOINT)
                    .bind(id.as_str())
                    .bind($crate::stored::StoredTime(disabled.at))
                    .bind(disabled.reason.as_str())
                    .execute(self.webhook_pool())
                    .await
                    .map_err($map)?;
                Ok(())
            }

            async fn purge_settled(&self, before: time::OffsetDateTime, limit: u32) -> Result<u64, RepositoryError> {
                let done = self
                    .webhook_query($crate::webhook_store::sql::PURGE_SETTLED)
                    .bind($crate::stored::StoredTime(before))
                    .bind(i64::from(limit))
                    .execute(self.webhook_pool())
                    .await
                    .map_err($map)?;
                Ok(done.rows_affected())
            }

            async fn queue_stats(&self) -> Result<esignsp_domain::webhooks::QueueStats, RepositoryError> {
                let row = self
                    .webhook_query($crate::webhook_store::sql::QUEUE_STATS)
                    .fetch_one(self.webhook_pool())
                    .await
                    .map_err($map)?;
                Ok(esignsp_domain::webhooks::QueueStats {
                    pending: $crate::stored::StoredRow::integer(&row, "pending")?,
                    oldest_pending: $crate::stored::StoredRow::optional_time(&row, "oldest")?,
                })
            }
        }
    };
}
pub(crate) use webhook_repository;
