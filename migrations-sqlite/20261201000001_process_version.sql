-- Optimistic concurrency token of a signer process, as on PostgreSQL
-- (migrations/20261129000003_process_version.sql): every transition written advances it, and
-- a transition is written only while the process still has the version it was decided on
-- (SPEC §8, the domain's transition protocol).
ALTER TABLE signer_processes ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
