-- esignsp schema for the embedded SQLite store: the same tables as migrations/ (PostgreSQL).
-- Times are INTEGER microseconds since the Unix epoch (UTC); JSON is TEXT.

CREATE TABLE signer_processes (
    id             TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    task_id        TEXT NOT NULL,
    process_type   TEXT NOT NULL,
    request        TEXT NOT NULL,
    result_status  TEXT CHECK (result_status IN ('finished', 'failed', 'failed_documents', 'canceled')),
    result_message TEXT,
    result_at      INTEGER,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    CHECK ((result_status IS NULL) = (result_at IS NULL))
);
CREATE INDEX signer_processes_pending_expiry ON signer_processes (expires_at) WHERE result_status IS NULL;

CREATE TABLE documents (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    media_type TEXT NOT NULL,
    filename   TEXT,
    size       INTEGER NOT NULL CHECK (size >= 0),
    sha256     TEXT NOT NULL,
    signers    TEXT,
    created_at INTEGER NOT NULL
);

-- Document bytes live apart from every other row.
CREATE TABLE document_contents (
    document_id TEXT PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    content     BLOB NOT NULL
);

CREATE TABLE process_documents (
    process_id     TEXT NOT NULL REFERENCES signer_processes (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    document_id    TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    result_status  TEXT CHECK (result_status IN ('finished', 'failed', 'canceled')),
    result_message TEXT,
    PRIMARY KEY (process_id, position),
    UNIQUE (process_id, document_id)
);
CREATE INDEX process_documents_document ON process_documents (document_id);

-- The append-only audit trail. Events outlive the process they describe.
CREATE TABLE process_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    process_id  TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('created', 'document_result', 'result', 'expired', 'deleted')),
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    document_id TEXT,
    old_status  TEXT,
    new_status  TEXT
);
CREATE INDEX process_events_process ON process_events (process_id, id);

CREATE TRIGGER process_events_no_update BEFORE UPDATE ON process_events
BEGIN
    SELECT RAISE(ABORT, 'process_events is append-only: UPDATE is not allowed');
END;

CREATE TRIGGER process_events_no_delete BEFORE DELETE ON process_events
BEGIN
    SELECT RAISE(ABORT, 'process_events is append-only: DELETE is not allowed');
END;
