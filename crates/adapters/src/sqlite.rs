//! Embedded SQLite implementation of [`SignerProcessRepository`] (sqlx), for the zero-setup
//! run. The guarantees of SPEC §4 and §8 hold as on PostgreSQL: every write is one
//! `BEGIN IMMEDIATE` transaction (it takes the database's write lock before it reads, so two
//! conflicting writers are serialised, never interleaved), waiting up to the busy timeout;
//! the audit event is written in the same transaction; WAL with `synchronous = FULL` keeps
//! every acknowledged write across a crash.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use esignsp_domain::events::{AuditContext, AuditEvent, EventKind};
use esignsp_domain::ports::{
    CreateError, DeleteDocumentOutcome, RepositoryError, SignerProcessRepository, Transition, TransitionStore,
    WriteOutcome,
};
use esignsp_domain::process::{
    DocumentContent, NewDocument, NewSignerProcess, NewStandaloneDocument, ProcessDocument, ProcessDocumentSource,
    ProcessRequest, ProcessType, SignerProcess, StoredDocument,
};
use esignsp_domain::rules::{DocumentState, ProcessSnapshot, Version};
use esignsp_domain::{Caller, ClientId, DocumentId, ProcessId, TaskId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use time::OffsetDateTime;

use crate::postgres::PoolSettings;
use crate::stored::{corrupt, document_id, stored_document_result, stored_process_result, StoredTransition};

/// The schema migrations of `migrations-sqlite/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations-sqlite");

/// How long a writer waits for another writer's lock before giving up (then 503).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a pool on `url` (`sqlite://path`, created when missing, with its directory).
///
/// # Errors
/// [`RepositoryError::Unexpected`] for a URL that is not a SQLite URL or a directory that
/// cannot be created.
pub fn connect_lazy(url: &str, settings: &PoolSettings) -> Result<SqlitePool, RepositoryError> {
    let options = SqliteConnectOptions::from_str(url).map_err(|e| RepositoryError::Unexpected(e.into()))?;
    connect_lazy_with(options, settings)
}

/// [`connect_lazy`] with parsed options (extra pragmas, e.g. a `max_page_count` that plays
/// a full disk in tests); the journal, durability, foreign key and busy settings of this
/// adapter are applied on top.
///
/// A connection goes back to the pool only when no transaction is left open on it: a COMMIT or
/// ROLLBACK that fails (a full disk, SQLite rolling the transaction back by itself) leaves
/// sqlx's transaction depth above zero, and every later `BEGIN` on that connection would fail
/// ("attempted to call begin_with at non-zero transaction depth"); such a connection is closed
/// instead, and its replacement starts clean.
///
/// # Errors
/// [`RepositoryError::Unexpected`] when the database's directory cannot be created.
pub fn connect_lazy_with(
    options: SqliteConnectOptions,
    settings: &PoolSettings,
) -> Result<SqlitePool, RepositoryError> {
    if let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| RepositoryError::Unexpected(e.into()))?;
    }
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    Ok(SqlitePoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .after_release(|conn, _| Box::pin(async move { left_clean(conn).await }))
        .connect_lazy_with(options))
}

/// Whether a returned connection has no transaction left open (see [`connect_lazy_with`]).
async fn left_clean(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    // A dropped transaction queues its ROLLBACK on the connection's worker; commands run in
    // order, so after this round trip the depth says how that ROLLBACK ended.
    sqlx::Connection::ping(conn).await?;
    let depth =
        <<Sqlite as sqlx::Database>::TransactionManager as sqlx::TransactionManager>::get_transaction_depth(conn);
    if depth > 0 {
        tracing::warn!(
            depth,
            "closing a SQLite connection whose transaction could not be ended (failed COMMIT or ROLLBACK)"
        );
    }
    Ok(depth == 0)
}

/// Least free space on the database's file system for `/readyz` to report ready: below it,
/// writes are about to fail with `SQLITE_FULL`.
pub const MIN_FREE_BYTES: u64 = 1024 * 1024;

/// An unusable database location, with the path it concerns (logged, never sent to clients).
#[derive(Debug, thiserror::Error)]
pub enum StorageProblem {
    /// The directory, the database file or their file system refuses writes.
    #[error("{} is read-only ({source})", path.display())]
    ReadOnly {
        /// The directory or file.
        path: std::path::PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file system holding the database has (almost) no space left.
    #[error("the file system of {} is full: {available} bytes left, fewer than {MIN_FREE_BYTES}", path.display())]
    Full {
        /// The database's directory.
        path: std::path::PathBuf,
        /// Bytes available to this process.
        available: u64,
    },
}

impl From<StorageProblem> for RepositoryError {
    fn from(problem: StorageProblem) -> Self {
        match problem {
            StorageProblem::ReadOnly { .. } => Self::ReadOnly(problem.into()),
            StorageProblem::Full { .. } => Self::InsufficientStorage(problem.into()),
        }
    }
}

/// Checks that the database `file` and its directory can be written and that their file
/// system has at least [`MIN_FREE_BYTES`] free. A directory that does not exist yet is not a
/// problem (it is created on first connection).
///
/// # Errors
/// The first [`StorageProblem`] found.
pub fn check_storage(file: &std::path::Path) -> Result<(), StorageProblem> {
    use rustix::fs::{access, statvfs, Access};
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if !dir.exists() {
        return Ok(());
    }
    for path in [dir, file] {
        if path.exists() {
            access(path, Access::WRITE_OK)
                .map_err(|e| StorageProblem::ReadOnly { path: path.to_path_buf(), source: e.into() })?;
        }
    }
    if let Ok(fs) = statvfs(dir) {
        if fs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
            let source = std::io::Error::from_raw_os_error(rustix::io::Errno::ROFS.raw_os_error());
            return Err(StorageProblem::ReadOnly { path: dir.to_path_buf(), source });
        }
        let available = fs.f_bavail.saturating_mul(fs.f_frsize);
        if available < MIN_FREE_BYTES {
            return Err(StorageProblem::Full { path: dir.to_path_buf(), available });
        }
    }
    Ok(())
}

/// Applies pending migrations.
///
/// # Errors
/// [`RepositoryError`] when the file cannot be opened or a migration fails.
pub async fn migrate(pool: &SqlitePool) -> Result<(), RepositoryError> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(inner) => map_error(inner),
        other => RepositoryError::Unexpected(other.into()),
    })
}

/// Translates a sqlx error: `SQLITE_FULL` is `InsufficientStorage` (507), `SQLITE_READONLY`
/// `ReadOnly` (503); a busy or locked database, a file that cannot be opened, disk I/O errors
/// and connection trouble are `Unavailable` (503); everything else `Unexpected` (500).
#[must_use]
pub fn map_error(error: sqlx::Error) -> RepositoryError {
    // Primary result codes (https://sqlite.org/rescode.html); extended codes keep them in
    // their low byte.
    const BUSY: i64 = 5;
    const LOCKED: i64 = 6;
    const READONLY: i64 = 8;
    const IOERR: i64 = 10;
    const FULL: i64 = 13;
    const CANTOPEN: i64 = 14;
    let code = match &error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => {
            return RepositoryError::Unavailable(error.into());
        }
        sqlx::Error::Database(db) => db.code().and_then(|c| c.parse::<i64>().ok()).map(|c| c & 0xff),
        _ => None,
    };
    match code {
        Some(FULL) => RepositoryError::InsufficientStorage(error.into()),
        Some(READONLY) => RepositoryError::ReadOnly(error.into()),
        Some(BUSY | LOCKED | IOERR | CANTOPEN) => RepositoryError::Unavailable(error.into()),
        _ => RepositoryError::Unexpected(error.into()),
    }
}

fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

fn from_micros(us: i64) -> Result<OffsetDateTime, RepositoryError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000).map_err(|_| corrupt("timestamp"))
}

const NOW_MICROS: &str = "CAST(unixepoch('subsec') * 1000000 AS INTEGER)";

/// The SQLite repository.
#[derive(Debug, Clone)]
pub struct SqliteRepository {
    pool: SqlitePool,
}

impl SqliteRepository {
    /// Wraps a pool (see [`connect_lazy`]).
    #[must_use]
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The pool, for shutdown.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The database file; `None` for an in-memory database.
    #[must_use]
    pub fn file(&self) -> Option<std::path::PathBuf> {
        let options = self.pool.connect_options();
        let file = options.get_filename();
        let name = file.to_string_lossy();
        (!name.starts_with("file:") && name != ":memory:").then(|| file.to_path_buf())
    }

    /// A write transaction that holds the write lock from its first statement.
    async fn write(&self) -> Result<Transaction<'static, Sqlite>, RepositoryError> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(|e| self.with_storage_cause(map_error(e)))
    }

    /// `error`, or the storage problem behind it: a connection that cannot be opened or a
    /// write that fails in a read-only directory is [`RepositoryError::ReadOnly`].
    fn with_storage_cause(&self, error: RepositoryError) -> RepositoryError {
        match error {
            RepositoryError::Unavailable(_) | RepositoryError::Unexpected(_) => {
                match self.file().map(|file| check_storage(&file)) {
                    Some(Err(problem @ StorageProblem::ReadOnly { .. })) => problem.into(),
                    _ => error,
                }
            }
            other => other,
        }
    }
}

async fn insert_event(
    tx: &mut Transaction<'_, Sqlite>,
    process: &str,
    kind: EventKind,
    audit: &AuditContext,
    document: Option<&str>,
    old_status: Option<&str>,
    new_status: Option<&str>,
) -> Result<(), RepositoryError> {
    sqlx::query(&format!(
        "INSERT INTO process_events (process_id, kind, at, actor, request_id, document_id, old_status, new_status) \
         VALUES (?, ?, {NOW_MICROS}, ?, ?, ?, ?, ?)"
    ))
    .bind(process)
    .bind(kind.as_str())
    .bind(audit.actor.as_str())
    .bind(&audit.request_id)
    .bind(document)
    .bind(old_status)
    .bind(new_status)
    .execute(&mut **tx)
    .await
    .map_err(map_error)?;
    Ok(())
}

/// Loads a versioned snapshot in one statement (a consistent read without a lock). `None`
/// for an unknown or foreign process.
async fn load(pool: &SqlitePool, id: &ProcessId, caller: &Caller) -> Result<Option<ProcessSnapshot>, RepositoryError> {
    let rows = sqlx::query(
        "SELECT p.result_status, p.result_message, p.expires_at, p.version, \
                pd.document_id, pd.result_status AS document_status, pd.result_message AS document_message \
         FROM signer_processes p LEFT JOIN process_documents pd ON pd.process_id = p.id \
         WHERE p.id = ? AND (p.client_id = ? OR ?) ORDER BY pd.position",
    )
    .bind(id.as_str())
    .bind(caller.client_id.as_str())
    .bind(caller.trusted)
    .fetch_all(pool)
    .await
    .map_err(map_error)?;
    let Some(first) = rows.first() else { return Ok(None) };
    let documents = rows
        .iter()
        .filter_map(|r| r.get::<Option<&str>, _>("document_id").map(|id| (id, r)))
        .map(|(id, r)| {
            Ok(DocumentState {
                id: document_id(id)?,
                result: stored_document_result(r.get("document_status"), r.get("document_message"))?,
            })
        })
        .collect::<Result<Vec<_>, RepositoryError>>()?;
    Ok(Some(ProcessSnapshot {
        version: Version(first.get("version")),
        result: stored_process_result(first.get("result_status"), first.get("result_message"))?,
        documents,
        expires_at: from_micros(first.get("expires_at"))?,
    }))
}

/// Writes a transition in one `BEGIN IMMEDIATE` transaction, only while the process's
/// version is the expected one.
async fn write(repository: &SqliteRepository, transition: &Transition) -> Result<WriteOutcome, RepositoryError> {
    let StoredTransition { result, documents, event } = StoredTransition::of(transition);
    let id = transition.process.as_str();
    let mut tx = repository.write().await?;
    let advanced = match result {
        Some((status, message)) => sqlx::query(
            "UPDATE signer_processes SET result_status = ?, result_message = ?, \
             result_at = CAST(unixepoch('subsec') * 1000000 AS INTEGER), version = version + 1 \
             WHERE id = ? AND version = ?",
        )
        .bind(status)
        .bind(message),
        None => sqlx::query("UPDATE signer_processes SET version = version + 1 WHERE id = ? AND version = ?"),
    }
    .bind(id)
    .bind(transition.expected.0)
    .execute(&mut *tx)
    .await
    .map_err(map_error)?;
    if advanced.rows_affected() == 0 {
        return Ok(WriteOutcome::Stale);
    }
    for ((document, status), message) in documents.ids.iter().zip(&documents.statuses).zip(&documents.messages) {
        sqlx::query(
            "UPDATE process_documents SET result_status = ?, result_message = ? \
             WHERE process_id = ? AND document_id = ? AND result_status IS NULL",
        )
        .bind(status)
        .bind(message)
        .bind(id)
        .bind(document)
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
    }
    let kind = EventKind::parse(event.kind).unwrap_or(EventKind::Result);
    let audit = AuditContext { actor: transition.event.actor.clone(), request_id: event.request_id.to_owned() };
    insert_event(&mut tx, id, kind, &audit, event.document_id, None, Some(event.new_status)).await?;
    tx.commit().await.map_err(map_error)?;
    Ok(WriteOutcome::Written)
}

/// The unit of work of the transition protocol on SQLite: each load and write takes its own
/// connection (a write is one `BEGIN IMMEDIATE` transaction).
struct SqliteTransitions<'r> {
    repository: &'r SqliteRepository,
}

#[async_trait]
impl TransitionStore for SqliteTransitions<'_> {
    #[tracing::instrument(skip_all, fields(process_id = %id))]
    async fn load(&mut self, id: &ProcessId, caller: &Caller) -> Result<Option<ProcessSnapshot>, RepositoryError> {
        load(&self.repository.pool, id, caller).await
    }

    #[tracing::instrument(skip_all, fields(process_id = %transition.process, kind = transition.event.kind.as_str()))]
    async fn write(&mut self, transition: &Transition) -> Result<WriteOutcome, RepositoryError> {
        write(self.repository, transition).await
    }
}

/// Stores a document row and, apart, its bytes; returns its size in bytes.
async fn insert_document(
    tx: &mut Transaction<'_, Sqlite>,
    doc: &NewDocument,
    owner: &str,
    signers: Option<String>,
    created_at: OffsetDateTime,
) -> Result<u64, RepositoryError> {
    let size = doc.bytes.len() as u64;
    sqlx::query(
        "INSERT INTO documents (id, client_id, media_type, filename, size, sha256, signers, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(doc.id.as_str())
    .bind(owner)
    .bind(&doc.media_type)
    .bind(doc.filename.as_deref())
    .bind(i64::try_from(size).unwrap_or(i64::MAX))
    .bind(&doc.sha256)
    .bind(signers)
    .bind(micros(created_at))
    .execute(&mut **tx)
    .await
    .map_err(map_error)?;
    sqlx::query("INSERT INTO document_contents (document_id, content) VALUES (?, ?)")
        .bind(doc.id.as_str())
        .bind(&doc.bytes)
        .execute(&mut **tx)
        .await
        .map_err(map_error)?;
    Ok(size)
}

fn json_text(value: &impl serde::Serialize) -> Result<String, RepositoryError> {
    serde_json::to_string(value).map_err(|e| RepositoryError::Unexpected(e.into()))
}

#[async_trait]
impl SignerProcessRepository for SqliteRepository {
    #[tracing::instrument(skip_all, fields(process_id = %process.id))]
    async fn create(&self, process: NewSignerProcess, audit: &AuditContext) -> Result<SignerProcess, CreateError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO signer_processes (id, client_id, task_id, process_type, request, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(process.id.as_str())
        .bind(process.owner.as_str())
        .bind(process.task_id.as_str())
        .bind(process.request.process_type().as_str())
        .bind(json_text(process.request.members())?)
        .bind(micros(process.created_at))
        .bind(micros(process.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        let mut documents = Vec::with_capacity(process.documents.len());
        let mut seen = std::collections::HashSet::new();
        for (position, source) in process.documents.into_iter().enumerate() {
            let position = i64::try_from(position).unwrap_or(i64::MAX);
            let document = match source {
                ProcessDocumentSource::Upload(doc) => {
                    let size = insert_document(&mut tx, &doc, process.owner.as_str(), None, process.created_at).await?;
                    ProcessDocument { id: doc.id, media_type: doc.media_type, size, sha256: doc.sha256, result: None }
                }
                ProcessDocumentSource::Existing(id) => {
                    if !seen.insert(id.clone()) {
                        return Err(CreateError::DuplicateDocument(id));
                    }
                    let row =
                        sqlx::query("SELECT media_type, size, sha256 FROM documents WHERE id = ? AND client_id = ?")
                            .bind(id.as_str())
                            .bind(process.owner.as_str())
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(map_error)?
                            .ok_or_else(|| CreateError::UnknownDocument(id.clone()))?;
                    ProcessDocument {
                        id,
                        media_type: row.get("media_type"),
                        size: u64::try_from(row.get::<i64, _>("size")).map_err(|_| corrupt("document size"))?,
                        sha256: row.get("sha256"),
                        result: None,
                    }
                }
            };
            sqlx::query("INSERT INTO process_documents (process_id, position, document_id) VALUES (?, ?, ?)")
                .bind(process.id.as_str())
                .bind(position)
                .bind(document.id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            documents.push(document);
        }
        insert_event(&mut tx, process.id.as_str(), EventKind::Created, audit, None, None, None).await?;
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
             FROM signer_processes WHERE id = ? AND (client_id = ? OR ?)",
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
             WHERE pd.process_id = ? ORDER BY pd.position",
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
        let members: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(row.get("request")).map_err(|_| corrupt("process request"))?;
        Ok(Some(SignerProcess {
            id: id.clone(),
            task_id: TaskId::parse(row.get("task_id")).map_err(|_| corrupt("task id"))?,
            owner: ClientId::parse(row.get("client_id")).map_err(|_| corrupt("client id"))?,
            request: ProcessRequest::from_stored(
                ProcessType::parse(row.get("process_type")).map_err(|_| corrupt("process type"))?,
                members,
            ),
            documents,
            result: stored_process_result(row.get("result_status"), row.get("result_message"))?,
            created_at: from_micros(row.get("created_at"))?,
            expires_at: from_micros(row.get("expires_at"))?,
        }))
    }

    #[tracing::instrument(skip_all, fields(process_id = %id))]
    async fn delete(&self, id: &ProcessId, caller: &Caller, audit: &AuditContext) -> Result<bool, RepositoryError> {
        let mut tx = self.write().await?;
        let Some(old_status) = sqlx::query_scalar::<_, Option<String>>(
            "SELECT result_status FROM signer_processes WHERE id = ? AND (client_id = ? OR ?)",
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
        let doc_ids: Vec<String> = sqlx::query_scalar("SELECT document_id FROM process_documents WHERE process_id = ?")
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?;
        sqlx::query("DELETE FROM signer_processes WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        for doc in doc_ids {
            sqlx::query(
                "DELETE FROM documents WHERE id = ? AND NOT EXISTS (SELECT 1 FROM process_documents WHERE document_id = ?)",
            )
            .bind(&doc)
            .bind(&doc)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        }
        insert_event(&mut tx, id.as_str(), EventKind::Deleted, audit, None, old_status.as_deref(), None).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(true)
    }

    async fn transitions(&self) -> Result<Box<dyn TransitionStore + '_>, RepositoryError> {
        Ok(Box::new(SqliteTransitions { repository: self }))
    }

    #[tracing::instrument(skip_all)]
    async fn due_expiries(&self, at: OffsetDateTime, limit: u32) -> Result<Vec<ProcessId>, RepositoryError> {
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM signer_processes WHERE result_status IS NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?",
        )
        .bind(micros(at))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_error)?;
        due.iter().map(|id| ProcessId::parse(id).map_err(|_| corrupt("process id"))).collect()
    }

    #[tracing::instrument(skip_all, fields(document_id = %document.document.id))]
    async fn create_document(&self, document: NewStandaloneDocument) -> Result<StoredDocument, RepositoryError> {
        let doc = document.document;
        let signers = document.signers.as_ref().map(json_text).transpose()?;
        let mut tx = self.write().await?;
        let size = insert_document(&mut tx, &doc, document.owner.as_str(), signers, document.created_at).await?;
        tx.commit().await.map_err(map_error)?;
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
            "SELECT media_type, size, sha256, signers, created_at FROM documents WHERE id = ? AND (client_id = ? OR ?)",
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
                signers: r
                    .get::<Option<String>, _>("signers")
                    .map(|s| serde_json::from_str(&s).map_err(|_| corrupt("signers")))
                    .transpose()?,
                created_at: from_micros(r.get("created_at"))?,
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
        let mut tx = self.write().await?;
        let in_use: Option<bool> = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM process_documents pd WHERE pd.document_id = d.id) \
             FROM documents d WHERE d.id = ? AND (d.client_id = ? OR ?)",
        )
        .bind(id.as_str())
        .bind(caller.client_id.as_str())
        .bind(caller.trusted)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_error)?;
        match in_use {
            None => Ok(DeleteDocumentOutcome::NotFound),
            Some(true) => Ok(DeleteDocumentOutcome::InUse),
            Some(false) => {
                match sqlx::query("DELETE FROM documents WHERE id = ?").bind(id.as_str()).execute(&mut *tx).await {
                    Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                        return Ok(DeleteDocumentOutcome::InUse);
                    }
                    other => other.map_err(map_error)?,
                };
                tx.commit().await.map_err(map_error)?;
                Ok(DeleteDocumentOutcome::Deleted)
            }
        }
    }

    #[tracing::instrument(skip_all, fields(document_id = %id))]
    async fn document_content(
        &self,
        id: &DocumentId,
        caller: &Caller,
    ) -> Result<Option<DocumentContent>, RepositoryError> {
        let row = sqlx::query(
            "SELECT d.media_type, c.content FROM documents d JOIN document_contents c ON c.document_id = d.id \
             WHERE d.id = ? AND (d.client_id = ? OR ?)",
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
        let owned: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM signer_processes WHERE id = ? AND (client_id = ? OR ?)")
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
             FROM process_events WHERE process_id = ? ORDER BY id",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_error)?;
        rows.into_iter()
            .map(|r| {
                Ok(AuditEvent {
                    kind: EventKind::parse(r.get("kind")).ok_or_else(|| corrupt("event kind"))?,
                    at: from_micros(r.get("at"))?,
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
        if let Some(file) = self.file() {
            check_storage(&file)?;
        }
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_error).map(|_| ())
    }
}
