-- A document belongs to every process that uses it for as long as that process exists
-- (SPEC O11: "a finished process keeps its record whole"); see the PostgreSQL migration of
-- the same name. SQLite cannot alter a foreign key, so process_documents is rebuilt with
-- ON DELETE RESTRICT on document_id (nothing references process_documents, so dropping the
-- old table with foreign keys on is safe).
CREATE TABLE process_documents_new (
    process_id     TEXT NOT NULL REFERENCES signer_processes (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    document_id    TEXT NOT NULL REFERENCES documents (id) ON DELETE RESTRICT,
    result_status  TEXT CHECK (result_status IN ('finished', 'failed', 'canceled')),
    result_message TEXT,
    PRIMARY KEY (process_id, position),
    UNIQUE (process_id, document_id)
);
INSERT INTO process_documents_new (process_id, position, document_id, result_status, result_message)
    SELECT process_id, position, document_id, result_status, result_message FROM process_documents;
DROP TABLE process_documents;
ALTER TABLE process_documents_new RENAME TO process_documents;
CREATE INDEX process_documents_document ON process_documents (document_id);
