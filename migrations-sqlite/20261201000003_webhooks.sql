-- Webhooks (SPEC §11): the same tables as migrations/20261201000002_webhooks.sql. Times are
-- INTEGER microseconds since the Unix epoch (UTC). SQLite has one writer, so one worker
-- claims deliveries in a BEGIN IMMEDIATE transaction.
CREATE TABLE webhook_endpoints (
    id                         TEXT PRIMARY KEY,
    client_id                  TEXT NOT NULL,
    url                        TEXT NOT NULL,
    description                TEXT,
    event_mask                 INTEGER NOT NULL CHECK (event_mask > 0),
    secret                     TEXT NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at INTEGER,
    created_at                 INTEGER NOT NULL,
    failing_since              INTEGER,
    disabled_at                INTEGER,
    disabled_reason            TEXT
);
CREATE INDEX webhook_endpoints_client ON webhook_endpoints (client_id, created_at);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    message_id      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    process_id      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (endpoint_id, message_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
-- Settled deliveries are purged after webhooks.retention_days.
CREATE INDEX webhook_deliveries_settled ON webhook_deliveries (created_at) WHERE status <> 'pending';

CREATE TABLE webhook_attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id     INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL,
    response_status INTEGER,
    response_body   TEXT,
    error           TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
