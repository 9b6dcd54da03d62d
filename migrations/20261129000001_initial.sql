-- esignsp initial schema: signer processes, documents (bytes apart), and the audit trail.

CREATE TABLE signer_processes (
    id             text PRIMARY KEY,
    client_id      text NOT NULL,
    task_id        text NOT NULL,
    process_type   text NOT NULL,
    request        jsonb NOT NULL,
    result_status  text CHECK (result_status IN ('finished', 'failed', 'failed_documents', 'canceled')),
    result_message text,
    result_at      timestamptz,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    CHECK ((result_status IS NULL) = (result_at IS NULL))
);

-- The expiry sweeper looks for pending processes by expiry time.
CREATE INDEX signer_processes_pending_expiry ON signer_processes (expires_at) WHERE result_status IS NULL;

CREATE TABLE documents (
    id         text PRIMARY KEY,
    client_id  text NOT NULL,
    media_type text NOT NULL,
    filename   text,
    size       bigint NOT NULL CHECK (size >= 0),
    sha256     text NOT NULL,
    signers    jsonb,
    created_at timestamptz NOT NULL
);

-- Document bytes live apart from every other row, so reading a process never loads them.
CREATE TABLE document_contents (
    document_id text PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    content     bytea NOT NULL
);
-- Signed documents (PDF) are compressed already: store them out of line without compressing.
ALTER TABLE document_contents ALTER COLUMN content SET STORAGE EXTERNAL;

CREATE TABLE process_documents (
    process_id     text NOT NULL REFERENCES signer_processes (id) ON DELETE CASCADE,
    position       integer NOT NULL,
    document_id    text NOT NULL REFERENCES documents (id),
    result_status  text CHECK (result_status IN ('finished', 'failed', 'canceled')),
    result_message text,
    PRIMARY KEY (process_id, position),
    UNIQUE (process_id, document_id)
);
CREATE INDEX process_documents_document ON process_documents (document_id);

-- The append-only audit trail (SPEC §4). Events outlive the process they describe.
CREATE TABLE process_events (
    id          bigserial PRIMARY KEY,
    process_id  text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('created', 'document_result', 'result', 'expired', 'deleted')),
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    request_id  text NOT NULL,
    document_id text,
    old_status  text,
    new_status  text
);
CREATE INDEX process_events_process ON process_events (process_id, id);

CREATE FUNCTION process_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'process_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER process_events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON process_events
    FOR EACH ROW EXECUTE FUNCTION process_events_append_only();

CREATE TRIGGER process_events_no_truncate
    BEFORE TRUNCATE ON process_events
    FOR EACH STATEMENT EXECUTE FUNCTION process_events_append_only();
