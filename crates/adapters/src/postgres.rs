//! PostgreSQL implementation of [`SignerProcessRepository`] (SPEC §8), with sqlx.
//!
//! Establishing a result (SPEC §8's conditional write) first reads the state the rules need
//! without a lock, lets the state machine decide, and writes the result, the derived document
//! results and the audit event in one statement that applies only while the process's
//! `version` is still the one read: two statements, no BEGIN/COMMIT. When another writer got
//! there first, it decides again in a transaction whose first statement locks the process row
//! (`SELECT … FOR UPDATE`, filtered by tenant). Every other write of a result or a document
//! result increments `version`.

use std::time::Duration;

use crate::stored::{corrupt, document_id, stored_document_result, stored_process_result};
use async_trait::async_trait;
use esignsp_domain::events::{AuditContext, AuditEvent, EventKind};
use esignsp_domain::ports::{
    CreateError, DeleteDocumentOutcome, EstablishOutcome, EstablishResultError, RepositoryError,
    SignerProcessRepository,
};
use esignsp_domain::process::{
    DocumentContent, NewSignerProcess, NewStandaloneDocument, ProcessDocument, ProcessDocumentSource, ProcessRequest,
    ProcessType, SignerProcess, StoredDocument,
};
use esignsp_domain::rules::{expiry_plan, Decision, DocumentState, ProcessState, ResultPlan, ResultStateMachine};
use esignsp_domain::{Caller, ClientId, DocumentId, DocumentResult, ProcessId, ProcessResult, ResultMessage, TaskId};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;

/// The schema migrations of `migrations/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Connection pool settings (`[database]` of the configuration).
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Largest number of open connections (`database.max_connections`).
    pub max_connections: u32,
    /// How long a request waits for a connection before answering 503
    /// (`database.acquire_timeout_seconds`).
    pub acquire_timeout: Duration,
    /// Longest a PostgreSQL statement, or a wait for a lock, may take (`statement_timeout`,
    /// `lock_timeout`); then the request answers 503 (`database.statement_timeout_seconds`).
    pub statement_timeout: Duration,
}

/// Opens a lazily connecting pool: the service starts, and answers 503, while the database
/// is down, and recovers by itself when it returns.
///
/// # Errors
/// [`RepositoryError::Unexpected`] when `url` is not a valid PostgreSQL URL.
pub fn connect_lazy(url: &str, settings: &PoolSettings) -> Result<PgPool, RepositoryError> {
    let options: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| RepositoryError::Unexpected(e.into()))?;
    let millis = settings.statement_timeout.as_millis().to_string();
    let options = options
        .application_name("esignsp")
        .options([("statement_timeout", millis.as_str()), ("lock_timeout", millis.as_str())]);
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .test_before_acquire(false)
        .connect_lazy_with(options))
}

/// Applies pending migrations.
///
/// # Errors
/// [`RepositoryError`] when the database is unreachable or a migration fails.
pub async fn migrate(pool: &PgPool) -> Result<(), RepositoryError> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(inner) => map_error(inner),
        other => RepositoryError::Unexpected(other.into()),
    })
}

/// The PostgreSQL repository.
#[derive(Debug, Clone)]
pub struct PostgresRepository {
    pool: PgPool,
}

impl PostgresRepository {
    /// Wraps a pool (see [`connect_lazy`]).
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool, for metrics and shutdown.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Translates a sqlx error into the domain's terms: connection trouble is `Unavailable`
/// (503), everything else `Unexpected` (500).
#[must_use]
pub fn map_error(error: sqlx::Error) -> RepositoryError {
    let unavailable = match &error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Class 08: connection exception; 57P01-03: shutdown / cannot connect now;
            // 53300: too many connections; 57014 / 55P03: statement or lock time-out.
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300" | "57014" | "55P03")
        }),
        _ => false,
    };
    if unavailable {
        RepositoryError::Unavailable(error.into())
    } else {
        RepositoryError::Unexpected(error.into())
    }
}

const INSERT_EVENT: &str =
    "INSERT INTO process_events (process_id, kind, actor, request_id, document_id, old_status, new_status) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// The statements of `PUT …/signer_processes/{id}/result` (eSignSP O4), public so that
/// `scripts/bench.sh` runs exactly these in pgbench beside the service.
pub mod sql {
    /// Expands to the state query of the rules, for this tenant's process; `$suffix` is
    /// appended (the locking variant adds `FOR UPDATE OF p`).
    macro_rules! state_query {
        ($suffix:literal) => {
            concat!(
                "SELECT p.result_status, p.result_message, p.expires_at, p.version, ",
                "ARRAY(SELECT pd.document_id FROM process_documents pd WHERE pd.process_id = p.id ORDER BY pd.position) AS doc_ids, ",
                "ARRAY(SELECT pd.result_status FROM process_documents pd WHERE pd.process_id = p.id ORDER BY pd.position) AS doc_statuses, ",
                "ARRAY(SELECT pd.result_message FROM process_documents pd WHERE pd.process_id = p.id ORDER BY pd.position) AS doc_messages ",
                "FROM signer_processes p WHERE p.id = $1 AND (p.client_id = $2 OR $3)",
                $suffix
            )
        };
    }

    /// Reads, without a lock, the state the rules need and the process's `version`.
    /// Parameters: `$1` process id, `$2` caller's client id, `$3` caller is trusted (sees every
    /// tenant). No row for an unknown or foreign process.
    pub const READ_STATE: &str = state_query!("");

    /// [`READ_STATE`] that also locks the process row until the transaction ends (SPEC §8).
    pub const LOCK_STATE: &str = state_query!(" FOR UPDATE OF p");

    /// Writes a decided process result, the derived document results and the audit event in
    /// one statement, and increments `version`. With `$10` set it writes only while the
    /// process's `version` is still `$10` (compare-and-set); with `$10` NULL the caller holds
    /// the row lock. Answers one row: the number of processes written (0 or 1).
    /// Parameters: `$1` id, `$2`/`$3` status/message, `$4`/`$5`/`$6` document ids, statuses
    /// and messages (arrays of equal length), `$7` actor, `$8` request id, `$9` event kind,
    /// `$10` expected version or NULL.
    pub const WRITE_RESULT: &str = "WITH p AS (UPDATE signer_processes \
                    SET result_status = $2, result_message = $3, result_at = now(), version = version + 1 \
                    WHERE id = $1 AND ($10::bigint IS NULL OR version = $10) RETURNING id), \
              d AS (UPDATE process_documents pd SET result_status = u.status, result_message = u.message \
                    FROM p, unnest($4::text[], $5::text[], $6::text[]) AS u(document_id, status, message) \
                    WHERE pd.process_id = p.id AND pd.document_id = u.document_id AND pd.result_status IS NULL), \
              e AS (INSERT INTO process_events (process_id, kind, actor, request_id, old_status, new_status) \
                    SELECT p.id, $9, $7, $8, NULL, $2 FROM p) \
         SELECT count(*) FROM p";
}

/// Reads the state the rules need with `statement` ([`sql::READ_STATE`] or
/// [`sql::LOCK_STATE`]), and the process's version. `None` for an unknown or foreign process.
async fn read_state<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    statement: &'static str,
    id: &ProcessId,
    caller: &Caller,
    now: OffsetDateTime,
) -> Result<Option<(ProcessState, i64)>, RepositoryError> {
    let Some(row) = sqlx::query(statement)
        .bind(id.as_str())
        .bind(caller.client_id.as_str())
        .bind(caller.trusted)
        .fetch_optional(executor)
        .await
        .map_err(map_error)?
    else {
        return Ok(None);
    };
    let result = stored_process_result(row.get("result_status"), row.get("result_message"))?;
    let expires_at: OffsetDateTime = row.get("expires_at");
    let ids: Vec<String> = row.get("doc_ids");
    let statuses: Vec<Option<String>> = row.get("doc_statuses");
    let messages: Vec<Option<String>> = row.get("doc_messages");
    let documents = ids
        .iter()
        .zip(statuses)
        .zip(messages)
        .map(|((id, status), message)| {
            Ok(DocumentState { id: document_id(id)?, result: stored_document_result(status, message)? })
        })
        .collect::<Result<Vec<_>, RepositoryError>>()?;
    let state = ProcessState { expired: result.is_none() && expires_at <= now, result, documents };
    Ok(Some((state, row.get("version"))))
}

/// The conditional write of SPEC §8: locks this tenant's process row (`FOR UPDATE`) and reads
/// the state the rules need, in one statement. `None` for an unknown or foreign process.
async fn lock_state(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: &ProcessId,
    caller: &Caller,
    now: OffsetDateTime,
) -> Result<Option<ProcessState>, RepositoryError> {
    Ok(read_state(&mut **tx, sql::LOCK_STATE, id, caller, now).await?.map(|(state, _)| state))
}

/// Writes a decided process result with its derived document results and its audit event
/// ([`sql::WRITE_RESULT`]). With `expected_version`, only while the process's version is still
/// that one; `Ok(false)` when it is not (or the process is gone) and nothing was written.
async fn write_result<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    id: &ProcessId,
    plan: &ResultPlan,
    kind: EventKind,
    audit: &AuditContext,
    expected_version: Option<i64>,
) -> Result<bool, RepositoryError> {
    let (doc_ids, (doc_statuses, doc_messages)): (Vec<&str>, (Vec<&str>, Vec<Option<&str>>)) = plan
        .derived_document_results
        .iter()
        .map(|(id, r)| (id.as_str(), (r.status.as_str(), r.message.as_ref().map(ResultMessage::as_str))))
        .unzip();
    let written: i64 = sqlx::query_scalar(sql::WRITE_RESULT)
        .bind(id.as_str())
        .bind(plan.result.status.as_str())
        .bind(plan.result.message.as_ref().map(ResultMessage::as_str))
        .bind(&doc_ids)
        .bind(&doc_statuses)
        .bind(&doc_messages)
        .bind(audit.actor.as_str())
        .bind(&audit.request_id)
        .bind(kind.as_str())
        .bind(expected_version)
        .fetch_one(executor)
        .await
        .map_err(map_error)?;
    Ok(written == 1)
}

#[async_trait]
impl SignerProcessRepository for PostgresRepository {
    #[tracing::instrument(skip_all, fields(process_id = %process.id))]
    async fn create(&self, process: NewSignerProcess, audit: &AuditContext) -> Result<SignerProcess, CreateError> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        sqlx::query(
            "INSERT INTO signer_processes (id, client_id, task_id, process_type, request, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(process.id.as_str())
        .bind(process.owner.as_str())
        .bind(process.task_id.as_str())
        .bind(process.request.process_type().as_str())
        .bind(sqlx::types::Json(process.request.members()))
        .bind(process.created_at)
        .bind(process.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        let mut documents = Vec::with_capacity(process.documents.len());
        let mut seen = std::collections::HashSet::new();
        for (position, source) in process.documents.into_iter().enumerate() {
            let position = i32::try_from(position).unwrap_or(i32::MAX);
            let document = match source {
                ProcessDocumentSource::Upload(doc) => {
                    let size = doc.bytes.len() as u64;
                    sqlx::query(
                        "WITH d AS (INSERT INTO documents (id, client_id, media_type, filename, size, sha256, created_at) \
                                    VALUES ($1, $2, $3, $4, $5, $6, $7)), \
                              c AS (INSERT INTO document_contents (document_id, content) VALUES ($1, $8)) \
                         INSERT INTO process_documents (process_id, position, document_id) VALUES ($9, $10, $1)",
                    )
                    .bind(doc.id.as_str())
                    .bind(process.owner.as_str())
                    .bind(&doc.media_type)
                    .bind(doc.filename.as_deref())
                    .bind(i64::try_from(size).unwrap_or(i64::MAX))
                    .bind(&doc.sha256)
                    .bind(process.created_at)
                    .bind(&doc.bytes)
                    .bind(process.id.as_str())
                    .bind(position)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_error)?;
                    ProcessDocument { id: doc.id, media_type: doc.media_type, size, sha256: doc.sha256, result: None }
                }
                ProcessDocumentSource::Existing(id) => {
                    if !seen.insert(id.clone()) {
                        return Err(CreateError::DuplicateDocument(id));
                    }
                    // FOR SHARE: a concurrent O11 cannot delete it before this commits.
                    let row = sqlx::query(
                        "SELECT media_type, size, sha256 FROM documents WHERE id = $1 AND client_id = $2 FOR SHARE",
                    )
                    .bind(id.as_str())
                    .bind(process.owner.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_error)?
                    .ok_or_else(|| CreateError::UnknownDocument(id.clone()))?;
                    sqlx::query(
                        "INSERT INTO process_documents (process_id, position, document_id) VALUES ($1, $2, $3)",
                    )
                    .bind(process.id.as_str())
                    .bind(position)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_error)?;
                    ProcessDocument {
                        id,
                        media_type: row.get("media_type"),
                        size: u64::try_from(row.get::<i64, _>("size")).map_err(|_| corrupt("document size"))?,
                        sha256: row.get("sha256"),
                        result: None,
                    }
                }
            };
            documents.push(document);
        }
        sqlx::query(INSERT_EVENT)
            .bind(process.id.as_str())
            .bind(EventKind::Created.as_str())
            .bind(audit.actor.as_str())
            .bind(&audit.request_id)
            .bind(None::<&str>)
            .bind(None::<&str>)
            .bind(None::<&str>)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(SignerProcess {
            id: process.id,
            task_id: process.task_id,
            owner: process.owner,
            request: process.request,
            documents,
            result: None,
            created_at: process.created_at,
            expires_at: process.expires_at,
        })
    }

    #[tracing::instrument(skip_all, fields(process_id = %id))]
    async fn find(&self, id: &ProcessId, caller: &Caller) -> Result<Option<SignerProcess>, RepositoryError> {
        let Some(row) = sqlx::query(
            "SELECT client_id, task_id, process_type, request, result_status, result_message, created_at, expires_at \
             FROM signer_processes WHERE id = $1 AND (client_id = $2 OR $3)",
        )
        .bind(id.as_str())
        .bind(caller.client_id.as_str())
        .bind(caller.trusted)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_error)?
        else {
            return Ok(None);
        };
        let documents = sqlx::query(
            "SELECT pd.document_id, d.media_type, d.size, d.sha256, pd.result_status, pd.result_message \
             FROM process_documents pd JOIN documents d ON d.id = pd.document_id \
             WHERE pd.process_id = $1 ORDER BY pd.position",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_error)?
        .into_iter()
        .map(|r| {
            Ok(ProcessDocument {
                id: document_id(r.get("document_id"))?,
                media_type: r.get("media_type"),
                size: u64::try_from(r.get::<i64, _>("size")).map_err(|_| corrupt("document size"))?,
                sha256: r.get("sha256"),
                result: stored_document_result(r.get("result_status"), r.get("result_message"))?,
            })
        })
        .collect::<Result<Vec<_>, RepositoryError>>()?;
        let members: sqlx::types::Json<serde_json::Map<String, serde_json::Value>> = row.get("request");
        Ok(Some(SignerProcess {
            id: id.clone(),
            task_id: TaskId::parse(row.get("task_id")).map_err(|_| corrupt("task id"))?,
            owner: ClientId::parse(row.get("client_id")).map_err(|_| corrupt("client id"))?,
            request: ProcessRequest::from_stored(
                ProcessType::parse(row.get("process_type")).map_err(|_| corrupt("process type"))?,
                members.0,
            ),
            documents,
            result: stored_process_result(row.get("result_status"), row.get("result_message"))?,
            created_at: row.get("created_at"),
            expires_at: row.get("expires_at"),
        }))
    }

    #[tracing::instrument(skip_all, fields(process_id = %id))]
    async fn delete(&self, id: &ProcessId, caller: &Caller, audit: &AuditContext) -> Result<bool, RepositoryError> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        let Some(row) = sqlx::query(
            "SELECT p.result_status, \
                    ARRAY(SELECT pd.document_id FROM process_documents pd WHERE pd.process_id = p.id) AS doc_ids \
             FROM signer_processes p WHERE p.id = $1 AND (p.client_id = $2 OR $3) FOR UPDATE OF p",
        )
        .bind(id.as_str())
        .bind(caller.client_id.as_str())
        .bind(caller.trusted)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_error)?
        else {
            return Ok(false);
        };
        let old_status: Option<String> = row.get("result_status");
        let doc_ids: Vec<String> = row.get("doc_ids");
        sqlx::query("DELETE FROM signer_processes WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        // Its documents go with it, unless another process still uses them (its own
        // process_documents rows are gone by cascade; contents follow by cascade). A process
        // that took one of them while this statement waited for its row lock is caught by the
        // foreign key: then they all stay (in a savepoint, so the deletion itself stands).
        let mut documents = sqlx::Connection::begin(&mut *tx).await.map_err(map_error)?;
        let deleted = sqlx::query(
            "DELETE FROM documents d WHERE d.id = ANY($1) \
             AND NOT EXISTS (SELECT 1 FROM process_documents pd WHERE pd.document_id = d.id)",
        )
        .bind(&doc_ids)
        .execute(&mut *documents)
        .await;
        match deleted {
            Ok(_) => documents.commit().await.map_err(map_error)?,
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                documents.rollback().await.map_err(map_error)?;
            }
            Err(e) => return Err(map_error(e)),
        }
        sqlx::query(INSERT_EVENT)
            .bind(id.as_str())
            .bind(EventKind::Deleted.as_str())
            .bind(audit.actor.as_str())
            .bind(&audit.request_id)
            .bind(None::<&str>)
            .bind(old_status.as_deref())
            .bind(None::<&str>)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(true)
    }

    #[tracing::instrument(skip_all, fields(process_id = %id, status = %requested.status))]
    async fn establish_result(
        &self,
        id: &ProcessId,
        caller: &Caller,
        requested: ProcessResult,
        machine: &ResultStateMachine,
        now: OffsetDateTime,
        audit: &AuditContext,
    ) -> Result<EstablishOutcome, EstablishResultError> {
        // Optimistic path, the common case: read without a lock, decide, and write only while
        // the version read is current: two statements, each its own transaction. Answers that
        // need no write (replay, rule violation, not found) come from the read alone. One
        // connection serves the whole request: sqlx checks a connection with a round trip each
        // time it goes back to the pool.
        let mut conn = self.pool.acquire().await.map_err(map_error)?;
        let (state, version) =
            read_state(&mut *conn, sql::READ_STATE, id, caller, now).await?.ok_or(EstablishResultError::NotFound)?;
        match machine.establish(&state, requested.clone()).map_err(EstablishResultError::Rule)? {
            Decision::Replay(plan) => return Ok(EstablishOutcome::Replayed(plan.result)),
            Decision::Apply(plan) => {
                if write_result(&mut *conn, id, &plan, EventKind::Result, audit, Some(version)).await? {
                    return Ok(EstablishOutcome::Established(plan.result));
                }
            }
        }
        // Another writer changed the process in between: decide again under the row lock.
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(map_error)?;
        let state = lock_state(&mut tx, id, caller, now).await?.ok_or(EstablishResultError::NotFound)?;
        let plan = match machine.establish(&state, requested).map_err(EstablishResultError::Rule)? {
            Decision::Replay(plan) => return Ok(EstablishOutcome::Replayed(plan.result)),
            Decision::Apply(plan) => plan,
        };
        write_result(&mut *tx, id, &plan, EventKind::Result, audit, None).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(EstablishOutcome::Established(plan.result))
    }

    #[tracing::instrument(skip_all, fields(process_id = %process, document_id = %document))]
    async fn set_document_result(
        &self,
        process: &ProcessId,
        document: &DocumentId,
        caller: &Caller,
        requested: DocumentResult,
        machine: &ResultStateMachine,
        now: OffsetDateTime,
        audit: &AuditContext,
    ) -> Result<EstablishOutcome<DocumentResult>, EstablishResultError> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        let state = lock_state(&mut tx, process, caller, now).await?.ok_or(EstablishResultError::NotFound)?;
        let index = state.documents.iter().position(|d| &d.id == document).ok_or(EstablishResultError::NotFound)?;
        let result = match machine.set_document_result(&state, index, requested).map_err(EstablishResultError::Rule)? {
            Decision::Replay(r) => return Ok(EstablishOutcome::Replayed(r)),
            Decision::Apply(r) => r,
        };
        sqlx::query(
            "WITH d AS (UPDATE process_documents SET result_status = $3, result_message = $4 \
                        WHERE process_id = $1 AND document_id = $2 AND result_status IS NULL), \
                  p AS (UPDATE signer_processes SET version = version + 1 WHERE id = $1) \
             INSERT INTO process_events (process_id, kind, actor, request_id, document_id, old_status, new_status) \
             VALUES ($1, 'document_result', $5, $6, $2, NULL, $3)",
        )
        .bind(process.as_str())
        .bind(document.as_str())
        .bind(result.status.as_str())
        .bind(result.message.as_ref().map(ResultMessage::as_str))
        .bind(audit.actor.as_str())
        .bind(&audit.request_id)
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(EstablishOutcome::Established(result))
    }

    #[tracing::instrument(skip_all)]
    async fn expire(
        &self,
        now: OffsetDateTime,
        only: Option<&ProcessId>,
        limit: u32,
        audit: &AuditContext,
    ) -> Result<u64, RepositoryError> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        // Rows another replica (or a PUT) holds are skipped, not waited for.
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM signer_processes \
             WHERE result_status IS NULL AND expires_at <= $1 AND ($2::text IS NULL OR id = $2) \
             ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(only.map(ProcessId::as_str))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_error)?;
        let system = Caller { client_id: audit.actor.clone(), trusted: true };
        let mut expired = 0;
        for id in due {
            let id = ProcessId::parse(&id).map_err(|_| corrupt("process id"))?;
            let Some(state) = lock_state(&mut tx, &id, &system, now).await? else { continue };
            if let Some(plan) = expiry_plan(&state) {
                write_result(&mut *tx, &id, &plan, EventKind::Expired, audit, None).await?;
                expired += 1;
            }
        }
        tx.commit().await.map_err(map_error)?;
        Ok(expired)
    }

    #[tracing::instrument(skip_all, fields(document_id = %document.document.id))]
    async fn create_document(&self, document: NewStandaloneDocument) -> Result<StoredDocument, RepositoryError> {
        let doc = document.document;
        let size = doc.bytes.len() as u64;
        sqlx::query(
            "WITH d AS (INSERT INTO documents (id, client_id, media_type, filename, size, sha256, signers, created_at) \
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)) \
             INSERT INTO document_contents (document_id, content) VALUES ($1, $9)",
        )
        .bind(doc.id.as_str())
        .bind(document.owner.as_str())
        .bind(&doc.media_type)
        .bind(doc.filename.as_deref())
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(&doc.sha256)
        .bind(document.signers.as_ref().map(sqlx::types::Json))
        .bind(document.created_at)
        .bind(&doc.bytes)
        .execute(&self.pool)
        .await
        .map_err(map_error)?;
        Ok(StoredDocument {
            id: doc.id,
            media_type: doc.media_type,
            size,
            sha256: doc.sha256,
            signers: document.signers,
            created_at: document.created_at,
        })
    }

    #[tracing::instrument(skip_all, fields(document_id = %id))]
    async fn find_document(&self, id: &DocumentId, caller: &Caller) -> Result<Option<StoredDocument>, RepositoryError> {
        let row = sqlx::query(
            "SELECT media_type, size, sha256, signers, created_at FROM documents \
             WHERE id = $1 AND (client_id = $2 OR $3)",
        )
        .bind(id.as_str())
        .bind(caller.client_id.as_str())
        .bind(caller.trusted)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_error)?;
        row.map(|r| {
            Ok(StoredDocument {
                id: id.clone(),
                media_type: r.get("media_type"),
                size: u64::try_from(r.get::<i64, _>("size")).map_err(|_| corrupt("document size"))?,
                sha256: r.get("sha256"),
                signers: r.get::<Option<sqlx::types::Json<serde_json::Value>>, _>("signers").map(|j| j.0),
                created_at: r.get("created_at"),
            })
        })
        .transpose()
    }

    #[tracing::instrument(skip_all, fields(document_id = %id))]
    async fn delete_document(
        &self,
        id: &DocumentId,
        caller: &Caller,
    ) -> Result<DeleteDocumentOutcome, RepositoryError> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM process_documents pd WHERE pd.document_id = d.id) AS in_use \
             FROM documents d WHERE d.id = $1 AND (d.client_id = $2 OR $3) FOR UPDATE OF d",
        )
        .bind(id.as_str())
        .bind(caller.client_id.as_str())
        .bind(caller.trusted)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_error)?;
        let Some(row) = row else {
            return Ok(DeleteDocumentOutcome::NotFound);
        };
        if row.get::<bool, _>("in_use") {
            return Ok(DeleteDocumentOutcome::InUse);
        }
        // A process that took the document after this statement's snapshot (a concurrent O1
        // that committed while we waited for the row lock) is caught by the foreign key.
        match sqlx::query("DELETE FROM documents WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await {
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => return Ok(DeleteDocumentOutcome::InUse),
            other => other.map_err(map_error)?,
        };
        tx.commit().await.map_err(map_error)?;
        Ok(DeleteDocumentOutcome::Deleted)
    }

    #[tracing::instrument(skip_all, fields(document_id = %id))]
    async fn document_content(
        &self,
        id: &DocumentId,
        caller: &Caller,
    ) -> Result<Option<DocumentContent>, RepositoryError> {
        let row = sqlx::query(
            "SELECT d.media_type, c.content FROM documents d JOIN document_contents c ON c.document_id = d.id \
             WHERE d.id = $1 AND (d.client_id = $2 OR $3)",
        )
        .bind(id.as_str())
        .bind(caller.client_id.as_str())
        .bind(caller.trusted)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_error)?;
        Ok(row.map(|r| DocumentContent { media_type: r.get("media_type"), bytes: r.get("content") }))
    }

    #[tracing::instrument(skip_all, fields(process_id = %id))]
    async fn events(&self, id: &ProcessId, caller: &Caller) -> Result<Option<Vec<AuditEvent>>, RepositoryError> {
        let owned: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM signer_processes WHERE id = $1 AND (client_id = $2 OR $3)")
                .bind(id.as_str())
                .bind(caller.client_id.as_str())
                .bind(caller.trusted)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_error)?;
        if owned.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT kind, at, actor, request_id, document_id, old_status, new_status \
             FROM process_events WHERE process_id = $1 ORDER BY id",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_error)?;
        rows.into_iter()
            .map(|r| {
                Ok(AuditEvent {
                    kind: EventKind::parse(r.get("kind")).ok_or_else(|| corrupt("event kind"))?,
                    at: r.get("at"),
                    actor: r.get("actor"),
                    request_id: r.get("request_id"),
                    document_id: r.get::<Option<&str>, _>("document_id").map(document_id).transpose()?,
                    old_status: r.get("old_status"),
                    new_status: r.get("new_status"),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    async fn ping(&self) -> Result<(), RepositoryError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_error).map(|_| ())
    }
}
