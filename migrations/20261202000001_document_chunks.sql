-- Document bytes in chunks (docs/PERFORMANCE.md, "Streamed documents"): uploads are written
-- as they arrive and downloads read chunk by chunk, so the service's memory does not grow with
-- the documents' size. A content is one document's bytes: staged (document_id NULL, staged_at
-- set) while an upload arrives, then adopted by the creation that uses it; a signature stores
-- its bytes as a new content and deletes the old one, so a reader of the old one never mixes
-- the two. Contents go with their document by cascade; chunks with their content.
ALTER TABLE document_contents RENAME TO document_contents_whole;
ALTER TABLE document_contents_whole RENAME CONSTRAINT document_contents_pkey TO document_contents_whole_pkey;

CREATE TABLE document_contents (
    content_id  text PRIMARY KEY,
    document_id text REFERENCES documents (id) ON DELETE CASCADE,
    staged_at   timestamptz,
    CHECK ((document_id IS NULL) = (staged_at IS NOT NULL))
);
CREATE INDEX document_contents_document ON document_contents (document_id);
CREATE INDEX document_contents_staged ON document_contents (staged_at) WHERE document_id IS NULL;

-- Chunks of 64 KiB (the last may be shorter), numbered from 0.
CREATE TABLE document_chunks (
    content_id text NOT NULL REFERENCES document_contents (content_id) ON DELETE CASCADE,
    seq        integer NOT NULL CHECK (seq >= 0),
    bytes      bytea NOT NULL,
    PRIMARY KEY (content_id, seq)
);
-- Documents (PDF) are compressed already: store chunks out of line without compressing.
ALTER TABLE document_chunks ALTER COLUMN bytes SET STORAGE EXTERNAL;

-- The bytes stored so far, each document's as one content named after it, in 64 KiB chunks.
INSERT INTO document_contents (content_id, document_id) SELECT document_id, document_id FROM document_contents_whole;
INSERT INTO document_chunks (content_id, seq, bytes)
SELECT w.document_id, s.seq, substring(w.content FROM s.seq * 65536 + 1 FOR 65536)
FROM document_contents_whole w, generate_series(0, greatest(length(w.content) - 1, 0) / 65536) AS s(seq);
DROP TABLE document_contents_whole;
