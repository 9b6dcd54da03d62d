-- Document bytes in chunks (docs/PERFORMANCE.md, "Streamed documents"): uploads are written
-- as they arrive and downloads read chunk by chunk, so the service's memory does not grow with
-- the documents' size. A content is one document's bytes: staged (document_id NULL, staged_at
-- set, Unix seconds) while an upload arrives, then adopted by the creation that uses it; a
-- signature stores its bytes as a new content and deletes the old one. Contents go with their
-- document by cascade; chunks with their content.
ALTER TABLE document_contents RENAME TO document_contents_whole;

CREATE TABLE document_contents (
    content_id  TEXT PRIMARY KEY,
    document_id TEXT REFERENCES documents (id) ON DELETE CASCADE,
    staged_at   INTEGER,
    CHECK ((document_id IS NULL) = (staged_at IS NOT NULL))
);
CREATE INDEX document_contents_document ON document_contents (document_id);
CREATE INDEX document_contents_staged ON document_contents (staged_at) WHERE document_id IS NULL;

-- Chunks of 64 KiB (the last may be shorter), numbered from 0.
CREATE TABLE document_chunks (
    content_id TEXT NOT NULL REFERENCES document_contents (content_id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    bytes      BLOB NOT NULL,
    PRIMARY KEY (content_id, seq)
);

-- The bytes stored so far, each document's as one content named after it, in 64 KiB chunks.
INSERT INTO document_contents (content_id, document_id) SELECT document_id, document_id FROM document_contents_whole;
WITH RECURSIVE s(document_id, seq, size) AS (
    SELECT document_id, 0, length(content) FROM document_contents_whole
    UNION ALL
    SELECT document_id, seq + 1, size FROM s WHERE (seq + 1) * 65536 < size
)
INSERT INTO document_chunks (content_id, seq, bytes)
SELECT s.document_id, s.seq, substr(w.content, s.seq * 65536 + 1, 65536)
FROM s JOIN document_contents_whole w ON w.document_id = s.document_id;
DROP TABLE document_contents_whole;
