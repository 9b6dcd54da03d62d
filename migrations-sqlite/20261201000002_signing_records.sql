-- The built-in signing page (SPEC §10): the event of the result it establishes records who
-- signed and, per document, the level and the SHA-256 of the original and of the signed bytes
-- (JSON text). The signed bytes replace the document's content (the original is their
-- unchanged prefix).
ALTER TABLE process_events ADD COLUMN details TEXT;
