//! Embedded SQLite implementation of [`SignerProcessRepository`] (sqlx), for the zero-setup
//! run. The guarantees of SPEC §4 and §8 hold as on PostgreSQL: every write is one
//! `BEGIN IMMEDIATE` transaction (it takes the database's write lock before it reads, so two
//! conflicting writers are serialised, never interleaved), waiting up to the busy timeout;
//! the audit event is written in the same transaction; WAL with `synchronous = FULL` keeps
//! every acknowledged write across a crash.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use esignsp_domain::content::{NewContent, CHUNK_BYTES};
use esignsp_domain::events::{AuditContext, AuditEvent, EventKind};
use esignsp_domain::ports::{
    CreateError, DeleteDocumentOutcome, RepositoryError, SignerProcessRepository, Transition, TransitionStore,
    WriteOutcome,
};
use esignsp_domain::process::{
    DocumentContent, NewDocument, NewSignerProcess, NewStandaloneDocument, ProcessDocumentSource, SignerProcess,
    StoredDocument,
};
use esignsp_domain::rules::{DocumentState, ProcessSnapshot};
use esignsp_domain::webhooks::{ClaimedDelivery, Notification};
use esignsp_domain::{Caller, ContentId, DocumentId, EndpointId, ProcessId};
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use time::OffsetDateTime;

use crate::postgres::PoolSettings;
use crate::queries::{
    self, bind_document, bind_process, bind_visible, document_in_use, insert_document, insert_event, own_document,
    visible_to_caller, Event, Store,
};
use crate::stored::{self, document_id, stored_document_result, StoredRow, StoredTime, StoredTransition};

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

/// The current time as SQLite stores it (see [`StoredTime`]): microseconds since the Unix
/// epoch.
macro_rules! now_micros {
    () => {
        "CAST(unixepoch('subsec') * 1000000 AS INTEGER)"
    };
}

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

impl Store for SqliteRepository {
    type Database = Sqlite;

    fn query<'q>(&self, sql: &'q str) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
        sqlx::query(sql)
    }

    fn map_error(error: sqlx::Error) -> RepositoryError {
        map_error(error)
    }
}

async fn insert_event(tx: &mut Transaction<'_, Sqlite>, event: Event<'_>) -> Result<(), RepositoryError> {
    queries::bind_event(sqlx::query(insert_event!(now_micros!(), "$8")), event)
        .execute(&mut **tx)
        .await
        .map_err(map_error)?;
    Ok(())
}

/// The outbox deliveries of `notification` about `process`, if there is one (SPEC §11).
async fn insert_deliveries(
    tx: &mut Transaction<'_, Sqlite>,
    notification: Option<&Notification>,
    process: &str,
) -> Result<(), RepositoryError> {
    let Some(notification) = notification else { return Ok(()) };
    queries::bind_deliveries(sqlx::query(queries::insert_deliveries!(now_micros!())), notification, process)
        .execute(&mut **tx)
        .await
        .map_err(map_error)?;
    Ok(())
}

/// Loads a versioned snapshot in one statement (a consistent read without a lock). `None`
/// for an unknown or foreign process.
async fn load(pool: &SqlitePool, id: &ProcessId, caller: &Caller) -> Result<Option<ProcessSnapshot>, RepositoryError> {
    const LOAD: &str = concat!(
        "SELECT p.result_status, p.result_message, p.expires_at, p.version, \
                pd.document_id, pd.result_status AS document_status, pd.result_message AS document_message \
         FROM signer_processes p LEFT JOIN process_documents pd ON pd.process_id = p.id \
         WHERE p.id = $1 AND ",
        visible_to_caller!("p"),
        " ORDER BY pd.position"
    );
    let rows = bind_visible(sqlx::query(LOAD), id.as_str(), caller).fetch_all(pool).await.map_err(map_error)?;
    let Some(first) = rows.first() else { return Ok(None) };
    let mut documents = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Some(id) = row.optional_text("document_id")? {
            documents.push(DocumentState {
                id: document_id(&id)?,
                result: stored_document_result(
                    row.optional_text("document_status")?,
                    row.optional_text("document_message")?,
                )?,
            });
        }
    }
    stored::snapshot(first, documents).map(Some)
}

/// Writes a transition in one `BEGIN IMMEDIATE` transaction, only while the process's
/// version is the expected one.
async fn write(repository: &SqliteRepository, transition: &Transition) -> Result<WriteOutcome, RepositoryError> {
    let mut tx = repository.write().await?;
    let outcome = write_in(&mut tx, transition).await?;
    if outcome == WriteOutcome::Written {
        tx.commit().await.map_err(map_error)?;
    }
    Ok(outcome)
}

/// Writes a batch of transitions in one `BEGIN IMMEDIATE` transaction.
async fn write_batch(
    repository: &SqliteRepository,
    transitions: &[Transition],
) -> Result<Vec<WriteOutcome>, RepositoryError> {
    let mut tx = repository.write().await?;
    let mut outcomes = Vec::with_capacity(transitions.len());
    for transition in transitions {
        outcomes.push(write_in(&mut tx, transition).await?);
    }
    tx.commit().await.map_err(map_error)?;
    Ok(outcomes)
}

/// Writes a transition inside `tx`, only while the process has the expected version.
async fn write_in(
    tx: &mut Transaction<'static, Sqlite>,
    transition: &Transition,
) -> Result<WriteOutcome, RepositoryError> {
    let StoredTransition { result, documents, event, signed } = StoredTransition::of(transition);
    let id = transition.process.as_str();
    let advanced = match result {
        Some((status, message)) => sqlx::query(concat!(
            "UPDATE signer_processes SET result_status = $1, result_message = $2, result_at = ",
            now_micros!(),
            ", version = version + 1 WHERE id = $3 AND version = $4"
        ))
        .bind(status)
        .bind(message),
        None => sqlx::query("UPDATE signer_processes SET version = version + 1 WHERE id = $1 AND version = $2"),
    }
    .bind(id)
    .bind(transition.expected.0)
    .execute(&mut **tx)
    .await
    .map_err(map_error)?;
    if advanced.rows_affected() == 0 {
        return Ok(WriteOutcome::Stale);
    }
    for ((document, status), message) in documents.ids.iter().zip(&documents.statuses).zip(&documents.messages) {
        sqlx::query(
            "UPDATE process_documents SET result_status = $1, result_message = $2 \
             WHERE process_id = $3 AND document_id = $4 AND result_status IS NULL",
        )
        .bind(status)
        .bind(message)
        .bind(id)
        .bind(document)
        .execute(&mut **tx)
        .await
        .map_err(map_error)?;
    }
    for ((((document, content), size), sha256), bytes) in signed
        .ids
        .iter()
        .zip(&signed.content_ids)
        .zip(&signed.sizes)
        .zip(&signed.sha256s)
        .zip(transition.signed.iter().map(|s| &s.bytes))
    {
        // The old content goes (its chunks by cascade); the signed bytes are a new one.
        sqlx::query("DELETE FROM document_contents WHERE document_id = $1")
            .bind(document)
            .execute(&mut **tx)
            .await
            .map_err(map_error)?;
        insert_content(tx, content, document, bytes.chunks(CHUNK_BYTES)).await?;
        sqlx::query("UPDATE documents SET size = $1, sha256 = $2 WHERE id = $3")
            .bind(size)
            .bind(sha256)
            .bind(document)
            .execute(&mut **tx)
            .await
            .map_err(map_error)?;
    }
    let event = Event {
        process: id,
        kind: transition.event.kind,
        actor: event.actor,
        request_id: event.request_id,
        document: event.document_id,
        old_status: None,
        new_status: Some(event.new_status),
        details: event.details.as_deref(),
    };
    insert_event(tx, event).await?;
    insert_deliveries(tx, transition.notification.as_ref(), id).await?;
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

    async fn load_batch(
        &mut self,
        requests: &[(&ProcessId, &Caller)],
    ) -> Result<Vec<Option<ProcessSnapshot>>, RepositoryError> {
        let mut snapshots = Vec::with_capacity(requests.len());
        for (id, caller) in requests {
            snapshots.push(load(&self.repository.pool, id, caller).await?);
        }
        Ok(snapshots)
    }

    #[tracing::instrument(skip_all, fields(transitions = transitions.len()))]
    async fn write_batch(&mut self, transitions: &[Transition]) -> Result<Vec<WriteOutcome>, RepositoryError> {
        write_batch(self.repository, transitions).await
    }
}

/// Stores a document row and, apart, its bytes.
async fn insert_document(
    tx: &mut Transaction<'_, Sqlite>,
    doc: &NewDocument,
    owner: &str,
    signers: Option<&serde_json::Value>,
    created_at: OffsetDateTime,
) -> Result<(), RepositoryError> {
    bind_document(sqlx::query(insert_document!()), doc, owner, signers, created_at)
        .execute(&mut **tx)
        .await
        .map_err(map_error)?;
    match &doc.content {
        NewContent::Inline(bytes) => {
            insert_content(tx, doc.id.as_str(), doc.id.as_str(), std::iter::once(bytes.as_slice())).await
        }
        NewContent::Staged(staged) => {
            let adopted = sqlx::query(queries::ADOPT_CONTENT)
                .bind(doc.id.as_str())
                .bind(staged.id().as_str())
                .execute(&mut **tx)
                .await
                .map_err(map_error)?;
            if adopted.rows_affected() == 1 {
                Ok(())
            } else {
                Err(queries::staged_content_gone())
            }
        }
    }
}

/// Stores `chunks` as content `content` of document `document`.
async fn insert_content(
    tx: &mut Transaction<'_, Sqlite>,
    content: &str,
    document: &str,
    chunks: impl Iterator<Item = &[u8]>,
) -> Result<(), RepositoryError> {
    sqlx::query(queries::INSERT_CONTENT).bind(content).bind(document).execute(&mut **tx).await.map_err(map_error)?;
    for (seq, chunk) in chunks.enumerate() {
        sqlx::query(queries::INSERT_CHUNK)
            .bind(content)
            .bind(i64::try_from(seq).unwrap_or(i64::MAX))
            .bind(chunk)
            .execute(&mut **tx)
            .await
            .map_err(map_error)?;
    }
    Ok(())
}

#[async_trait]
impl SignerProcessRepository for SqliteRepository {
    #[tracing::instrument(skip_all, fields(process_id = %process.id))]
    async fn create(
        &self,
        process: NewSignerProcess,
        audit: &AuditContext,
        notification: Option<&Notification>,
    ) -> Result<SignerProcess, CreateError> {
        let mut tx = self.write().await?;
        bind_process(sqlx::query(queries::INSERT_PROCESS), &process).execute(&mut *tx).await.map_err(map_error)?;
        let mut documents = Vec::with_capacity(process.documents.len());
        for placed in stored::placed_documents(&process) {
            let (position, source) = placed?;
            let document = match source {
                ProcessDocumentSource::Upload(doc) => {
                    insert_document(&mut tx, doc, process.owner.as_str(), None, process.created_at).await?;
                    stored::uploaded_document(doc)
                }
                ProcessDocumentSource::Existing(id) => {
                    let row = sqlx::query(own_document!(""))
                        .bind(id.as_str())
                        .bind(process.owner.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(map_error)?;
                    stored::taken_document(id, row.as_ref())?
                }
            };
            sqlx::query(queries::INSERT_PROCESS_DOCUMENT)
                .bind(process.id.as_str())
                .bind(position)
                .bind(document.id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            documents.push(document);
        }
        insert_event(&mut tx, Event::of(process.id.as_str(), EventKind::Created, audit)).await?;
        insert_deliveries(&mut tx, notification, process.id.as_str()).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(stored::created_process(&process, documents))
    }

    #[tracing::instrument(skip_all, fields(process_id = %id))]
    async fn find(&self, id: &ProcessId, caller: &Caller) -> Result<Option<SignerProcess>, RepositoryError> {
        let Some(row) = bind_visible(sqlx::query(queries::FIND_PROCESS), id.as_str(), caller)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_error)?
        else {
            return Ok(None);
        };
        let documents =
            sqlx::query(queries::PROCESS_DOCUMENTS).bind(id.as_str()).fetch_all(&self.pool).await.map_err(map_error)?;
        stored::signer_process(id, &row, &documents).map(Some)
    }

    #[tracing::instrument(skip_all, fields(process_id = %id))]
    async fn delete(
        &self,
        id: &ProcessId,
        caller: &Caller,
        audit: &AuditContext,
        notification: Option<&Notification>,
    ) -> Result<bool, RepositoryError> {
        let mut tx = self.write().await?;
        let status = concat!("SELECT result_status FROM signer_processes WHERE id = $1 AND ", visible_to_caller!());
        let Some(row) =
            bind_visible(sqlx::query(status), id.as_str(), caller).fetch_optional(&mut *tx).await.map_err(map_error)?
        else {
            return Ok(false);
        };
        let old_status = row.optional_text("result_status")?;
        let doc_ids: Vec<String> =
            sqlx::query_scalar("SELECT document_id FROM process_documents WHERE process_id = $1")
                .bind(id.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(map_error)?;
        insert_deliveries(&mut tx, notification, id.as_str()).await?;
        sqlx::query(queries::DELETE_PROCESS).bind(id.as_str()).execute(&mut *tx).await.map_err(map_error)?;
        // Its documents go with it, unless another process still uses them.
        for doc in doc_ids {
            sqlx::query(
                "DELETE FROM documents WHERE id = $1 \
                 AND NOT EXISTS (SELECT 1 FROM process_documents WHERE document_id = $1)",
            )
            .bind(&doc)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        }
        let event = Event { old_status: old_status.as_deref(), ..Event::of(id.as_str(), EventKind::Deleted, audit) };
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(true)
    }

    async fn transitions(&self) -> Result<Box<dyn TransitionStore + '_>, RepositoryError> {
        Ok(Box::new(SqliteTransitions { repository: self }))
    }

    #[tracing::instrument(skip_all)]
    async fn due_expiries(&self, at: OffsetDateTime, limit: u32) -> Result<Vec<ProcessId>, RepositoryError> {
        let due: Vec<String> = sqlx::query_scalar(queries::DUE_EXPIRIES)
            .bind(StoredTime(at))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)?;
        stored::process_ids(&due)
    }

    #[tracing::instrument(skip_all, fields(document_id = %document.document.id))]
    async fn create_document(&self, document: NewStandaloneDocument) -> Result<StoredDocument, RepositoryError> {
        let mut tx = self.write().await?;
        let (doc, owner) = (&document.document, document.owner.as_str());
        insert_document(&mut tx, doc, owner, document.signers.as_ref(), document.created_at).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(stored::created_document(&document))
    }

    #[tracing::instrument(skip_all, fields(document_id = %id))]
    async fn find_document(&self, id: &DocumentId, caller: &Caller) -> Result<Option<StoredDocument>, RepositoryError> {
        let row = bind_visible(sqlx::query(queries::FIND_DOCUMENT), id.as_str(), caller)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_error)?;
        row.map(|r| stored::stored_document(id, &r)).transpose()
    }

    #[tracing::instrument(skip_all, fields(document_id = %id))]
    async fn delete_document(
        &self,
        id: &DocumentId,
        caller: &Caller,
    ) -> Result<DeleteDocumentOutcome, RepositoryError> {
        let tx = self.write().await?;
        queries::delete_document(self, tx, document_in_use!(""), id, caller).await
    }

    #[tracing::instrument(skip_all, fields(document_id = %id))]
    async fn document_content(
        &self,
        id: &DocumentId,
        caller: &Caller,
    ) -> Result<Option<DocumentContent>, RepositoryError> {
        let row = bind_visible(sqlx::query(queries::DOCUMENT_CONTENT), id.as_str(), caller)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_error)?;
        row.map(|r| stored::document_content(&r)).transpose()
    }

    #[tracing::instrument(skip_all, fields(content_id = %content, seq))]
    async fn stage_chunk(&self, content: &ContentId, seq: u32, bytes: &[u8]) -> Result<(), RepositoryError> {
        let mut tx = self.write().await?;
        if seq == 0 {
            sqlx::query(queries::STAGE_CONTENT)
                .bind(content.as_str())
                .bind(StoredTime(OffsetDateTime::now_utc()))
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
        }
        sqlx::query(queries::INSERT_CHUNK)
            .bind(content.as_str())
            .bind(i64::from(seq))
            .bind(bytes)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)
    }

    #[tracing::instrument(skip_all, fields(content_id = %content))]
    async fn discard_staged(&self, content: &ContentId) -> Result<(), RepositoryError> {
        let mut tx = self.write().await?;
        sqlx::query(queries::DISCARD_STAGED).bind(content.as_str()).execute(&mut *tx).await.map_err(map_error)?;
        tx.commit().await.map_err(map_error)
    }

    #[tracing::instrument(skip_all)]
    async fn sweep_staged(&self, older_than: std::time::Duration) -> Result<u64, RepositoryError> {
        let before = OffsetDateTime::now_utc() - older_than;
        let mut tx = self.write().await?;
        let swept = sqlx::query("DELETE FROM document_contents WHERE document_id IS NULL AND staged_at < $1")
            .bind(StoredTime(before))
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(swept.rows_affected())
    }

    #[tracing::instrument(skip_all, fields(content_id = %content, from))]
    async fn content_chunks(
        &self,
        content: &ContentId,
        from: u32,
        limit: u32,
    ) -> Result<Vec<Vec<u8>>, RepositoryError> {
        sqlx::query_scalar(queries::CONTENT_CHUNKS)
            .bind(content.as_str())
            .bind(i64::from(from))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)
    }

    #[tracing::instrument(skip_all, fields(process_id = %id))]
    async fn events(&self, id: &ProcessId, caller: &Caller) -> Result<Option<Vec<AuditEvent>>, RepositoryError> {
        let visible = bind_visible(sqlx::query(queries::PROCESS_VISIBLE), id.as_str(), caller)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_error)?;
        if visible.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(queries::EVENTS).bind(id.as_str()).fetch_all(&self.pool).await.map_err(map_error)?;
        rows.iter().map(stored::audit_event).collect::<Result<Vec<_>, _>>().map(Some)
    }

    async fn ping(&self) -> Result<(), RepositoryError> {
        if let Some(file) = self.file() {
            check_storage(&file)?;
        }
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_error).map(|_| ())
    }
}
impl SqliteRepository {
    fn webhook_query<'q>(&self, sql: &'q str) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
        sqlx::query(sql)
    }

    fn webhook_pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A write transaction (SQLite's single writer keeps registrations to the limit).
    async fn endpoint_registration(&self, _owner: &str) -> Result<Transaction<'static, Sqlite>, RepositoryError> {
        self.write().await
    }

    /// Claims due deliveries in one `BEGIN IMMEDIATE` transaction (SQLite's single writer:
    /// one worker claims at a time).
    async fn claim_due_rows(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
        busy: &[EndpointId],
    ) -> Result<Vec<ClaimedDelivery>, RepositoryError> {
        let busy = serde_json::to_string(&busy.iter().map(EndpointId::as_str).collect::<Vec<_>>())
            .map_err(|e| RepositoryError::Unexpected(e.into()))?;
        let mut tx = self.write().await?;
        let claimed: Vec<i64> = sqlx::query_scalar(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $2 WHERE id IN \
             (SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
              WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.disabled_at IS NULL \
              AND d.endpoint_id NOT IN (SELECT value FROM json_each($4)) \
              ORDER BY d.next_attempt_at LIMIT $3) RETURNING id",
        )
        .bind(StoredTime(now))
        .bind(StoredTime(lease_until))
        .bind(i64::from(limit))
        .bind(busy)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_error)?;
        let mut deliveries = Vec::with_capacity(claimed.len());
        for id in claimed {
            let row = sqlx::query(
                "SELECT d.id, d.endpoint_id, e.url, d.message_id, d.payload, d.attempts, e.secret, \
                 e.previous_secret, e.previous_secret_expires_at \
                 FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = $1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_error)?;
            deliveries.push(crate::webhook_store::claimed(&row, now)?);
        }
        tx.commit().await.map_err(map_error)?;
        Ok(deliveries)
    }
}

crate::webhook_store::webhook_repository!(SqliteRepository, map_error);
