-- Optimistic concurrency token of a signer process: every write of its result or of one of
-- its document results increments it. PUT …/result reads the state without a lock and writes
-- only while the version it read is current (crates/adapters/src/postgres.rs), so the common
-- case is two statements and no BEGIN/COMMIT; a concurrent writer sends it to the locking path.
-- PostgreSQL 11+ adds a column with a constant default without rewriting the table.
ALTER TABLE signer_processes ADD COLUMN version bigint NOT NULL DEFAULT 0;
