-- Webhooks (SPEC §11): endpoints per client, and the transactional outbox. A transition
-- writes one delivery per subscribed, enabled endpoint of the process's owner in its own
-- transaction (crates/adapters/src/postgres.rs, sql::WRITE), so a committed result always has
-- its deliveries and a rolled-back one never does. Workers claim due deliveries with
-- FOR UPDATE SKIP LOCKED and record every attempt.
CREATE TABLE webhook_endpoints (
    id                         text PRIMARY KEY,
    client_id                  text NOT NULL,
    url                        text NOT NULL,
    description                text,
    -- Subscribed event types as a bit mask (esignsp_domain::webhooks::WebhookEventType::bit).
    event_mask                 bigint NOT NULL CHECK (event_mask > 0),
    secret                     text NOT NULL,
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    created_at                 timestamptz NOT NULL,
    failing_since              timestamptz,
    disabled_at                timestamptz,
    disabled_reason            text
);
CREATE INDEX webhook_endpoints_client ON webhook_endpoints (client_id, created_at);

CREATE TABLE webhook_deliveries (
    id                   bigserial PRIMARY KEY,
    endpoint_id          text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    message_id           text NOT NULL,
    event_type           text NOT NULL,
    process_id           text NOT NULL,
    payload              text NOT NULL,
    status               text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    -- Attempts claimed so far (a claim counts one).
    attempts             bigint NOT NULL DEFAULT 0,
    -- Due time while pending; a claim leases the row by moving it into the future.
    next_attempt_at      timestamptz NOT NULL,
    created_at           timestamptz NOT NULL,
    UNIQUE (endpoint_id, message_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
-- Settled deliveries are purged after webhooks.retention_days.
CREATE INDEX webhook_deliveries_settled ON webhook_deliveries (created_at) WHERE status <> 'pending';

CREATE TABLE webhook_attempts (
    id              bigserial PRIMARY KEY,
    delivery_id     bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt         bigint NOT NULL,
    at              timestamptz NOT NULL,
    duration_ms     bigint NOT NULL,
    response_status bigint,
    response_body   text,
    error           text
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
