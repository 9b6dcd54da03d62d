//! The statements both stores run with the same text, and the binding of their arguments.
//!
//! Parameters are written `$1, $2, …`: sqlx binds `$N` to argument N on SQLite as on
//! PostgreSQL, so one text serves both. Times are bound and read as
//! [`StoredTime`](crate::stored::StoredTime), JSON as [`sqlx::types::Json`]. What the two
//! databases do differently stays in their adapters: locking (a statement below that takes a
//! row lock on PostgreSQL is a macro with the lock clause as its argument, empty on SQLite,
//! which locks the whole database with `BEGIN IMMEDIATE`), the current time (`now()` against
//! microseconds), arrays, and PostgreSQL's data-modifying CTEs against SQLite's several
//! statements.

use esignsp_domain::events::{AuditContext, EventKind};
use esignsp_domain::ports::{DeleteDocumentOutcome, RepositoryError};
use esignsp_domain::process::{NewDocument, NewSignerProcess};
use esignsp_domain::webhooks::Notification;
use esignsp_domain::{Caller, DocumentId};
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, IntoArguments, Transaction, Type};
use time::OffsetDateTime;

use crate::stored::{StoredRow, StoredTime};

/// What a store adds to the shared statements: how it makes a statement, and how it
/// translates sqlx errors into the domain's terms.
pub(crate) trait Store {
    /// The sqlx database.
    type Database: Database;

    /// A statement with parameters.
    fn query<'q>(&self, sql: &'q str) -> Query<'q, Self::Database, <Self::Database as Database>::Arguments<'q>>;

    /// The store's translation of a sqlx error.
    fn map_error(error: sqlx::Error) -> RepositoryError;
}

/// The tenant filter (SPEC §6, tenancy): a row is visible to the caller when it belongs to the
/// caller's client (`$2`, the caller's client id) or the caller is trusted (`$3`, true: sees
/// every client's rows). With a table alias: `visible_to_caller!("p")`. [`bind_visible`] binds
/// `$1` to `$3`.
macro_rules! visible_to_caller {
    () => {
        "(client_id = $2 OR $3)"
    };
    ($alias:literal) => {
        concat!("(", $alias, ".client_id = $2 OR $3)")
    };
}
pub(crate) use visible_to_caller;

/// Binds the arguments of a statement about one row that the caller must be allowed to see:
/// `$1` its id, `$2` and `$3` the caller, as [`visible_to_caller!`] reads them.
pub(crate) fn bind_visible<'q, DB>(
    query: Query<'q, DB, DB::Arguments<'q>>,
    id: &'q str,
    caller: &'q Caller,
) -> Query<'q, DB, DB::Arguments<'q>>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
{
    query.bind(id).bind(caller.client_id.as_str()).bind(caller.trusted)
}

/// A process the caller may see: `$1` its id, then the tenant filter.
pub(crate) const FIND_PROCESS: &str = concat!(
    "SELECT client_id, task_id, process_type, request, result_status, result_message, created_at, expires_at \
     FROM signer_processes WHERE id = $1 AND ",
    visible_to_caller!()
);

/// One row (`1`) when the caller may see the process `$1` (tenant filter `$2`, `$3`).
pub(crate) const PROCESS_VISIBLE: &str =
    concat!("SELECT 1 FROM signer_processes WHERE id = $1 AND ", visible_to_caller!());

/// The documents of process `$1` with their results, in order.
pub(crate) const PROCESS_DOCUMENTS: &str = "SELECT pd.document_id, d.media_type, d.filename, d.size, d.sha256, \
     pd.result_status, pd.result_message \
     FROM process_documents pd JOIN documents d ON d.id = pd.document_id \
     WHERE pd.process_id = $1 ORDER BY pd.position";

/// The audit events of process `$1`, oldest first.
pub(crate) const EVENTS: &str = "SELECT kind, at, actor, request_id, document_id, old_status, new_status, \
     CAST(details AS TEXT) AS details \
     FROM process_events WHERE process_id = $1 ORDER BY id";

/// The pending processes due to expire: `$1` the time, `$2` at most this many, soonest first.
pub(crate) const DUE_EXPIRIES: &str = "SELECT id FROM signer_processes \
        WHERE result_status IS NULL AND expires_at <= $1 ORDER BY expires_at LIMIT $2";

/// A new process: `$1` id, `$2` owner's client id, `$3` task id, `$4` process type, `$5` the
/// request's members (JSON), `$6` created at, `$7` expires at.
pub(crate) const INSERT_PROCESS: &str =
    "INSERT INTO signer_processes (id, client_id, task_id, process_type, request, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Binds the arguments of [`INSERT_PROCESS`].
pub(crate) fn bind_process<'q, DB>(
    query: Query<'q, DB, DB::Arguments<'q>>,
    process: &'q NewSignerProcess,
) -> Query<'q, DB, DB::Arguments<'q>>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    Json<&'q serde_json::Map<String, serde_json::Value>>: Encode<'q, DB> + Type<DB>,
    StoredTime: Encode<'q, DB> + Type<DB>,
{
    query
        .bind(process.id.as_str())
        .bind(process.owner.as_str())
        .bind(process.task_id.as_str())
        .bind(process.request.process_type().as_str())
        .bind(Json(process.request.members()))
        .bind(StoredTime(process.created_at))
        .bind(StoredTime(process.expires_at))
}

/// Deletes process `$1` (its `process_documents` rows go by cascade).
pub(crate) const DELETE_PROCESS: &str = "DELETE FROM signer_processes WHERE id = $1";

/// A document of a process: `$1` process id, `$2` position, `$3` document id.
pub(crate) const INSERT_PROCESS_DOCUMENT: &str =
    "INSERT INTO process_documents (process_id, position, document_id) VALUES ($1, $2, $3)";

/// A document resource of client `$2` with id `$1`, for taking into a new process; `$lock`
/// the row lock that keeps it from being deleted until the process is committed.
macro_rules! own_document {
    ($lock:literal) => {
        concat!("SELECT media_type, filename, size, sha256 FROM documents WHERE id = $1 AND client_id = $2", $lock)
    };
}
pub(crate) use own_document;

/// A new document resource: `$1` id, `$2` owner's client id, `$3` media type, `$4` file name
/// or NULL, `$5` size in bytes, `$6` SHA-256 digest, `$7` signers (JSON) or NULL, `$8` created
/// at. [`bind_document`] binds them.
macro_rules! insert_document {
    () => {
        "INSERT INTO documents (id, client_id, media_type, filename, size, sha256, signers, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    };
}
pub(crate) use insert_document;

/// Binds the arguments of [`insert_document!`].
pub(crate) fn bind_document<'q, DB>(
    query: Query<'q, DB, DB::Arguments<'q>>,
    doc: &'q NewDocument,
    owner: &'q str,
    signers: Option<&'q serde_json::Value>,
    created_at: OffsetDateTime,
) -> Query<'q, DB, DB::Arguments<'q>>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    Option<Json<&'q serde_json::Value>>: Encode<'q, DB> + Type<DB>,
    StoredTime: Encode<'q, DB> + Type<DB>,
{
    query
        .bind(doc.id.as_str())
        .bind(owner)
        .bind(doc.media_type.as_str())
        .bind(doc.filename.as_deref())
        .bind(i64::try_from(doc.content.size()).unwrap_or(i64::MAX))
        .bind(doc.sha256.as_str())
        .bind(signers.map(Json))
        .bind(StoredTime(created_at))
}

/// A document resource the caller may see: `$1` its id, then the tenant filter.
pub(crate) const FIND_DOCUMENT: &str = concat!(
    "SELECT media_type, size, sha256, signers, created_at FROM documents WHERE id = $1 AND ",
    visible_to_caller!()
);

/// Whether a process uses the document `$1` the caller may see (`in_use`); no row when the
/// caller may not. `$lock` the lock on the document's row until it is deleted.
macro_rules! document_in_use {
    ($lock:literal) => {
        concat!(
            "SELECT EXISTS (SELECT 1 FROM process_documents pd WHERE pd.document_id = d.id) AS in_use \
             FROM documents d WHERE d.id = $1 AND ",
            $crate::queries::visible_to_caller!("d"),
            $lock
        )
    };
}
pub(crate) use document_in_use;

/// Deletes document resource `$1` (its content goes by cascade); a process that uses it
/// makes this a foreign key violation.
pub(crate) const DELETE_DOCUMENT: &str = "DELETE FROM documents WHERE id = $1";

/// O11 in the write transaction `tx`, which it commits when the document is deleted; `in_use`
/// is [`document_in_use!`] with the store's lock. A process that took the document after
/// `in_use` read (a concurrent O1 that committed while PostgreSQL waited for the row lock) is
/// caught by the foreign key: [`DeleteDocumentOutcome::InUse`].
pub(crate) async fn delete_document<S: Store>(
    store: &S,
    mut tx: Transaction<'_, S::Database>,
    in_use: &'static str,
    id: &DocumentId,
    caller: &Caller,
) -> Result<DeleteDocumentOutcome, RepositoryError>
where
    <S::Database as Database>::Row: StoredRow,
    for<'c> &'c mut <S::Database as Database>::Connection: Executor<'c, Database = S::Database>,
    for<'q> <S::Database as Database>::Arguments<'q>: IntoArguments<'q, S::Database>,
    for<'q> &'q str: Encode<'q, S::Database> + Type<S::Database>,
    for<'q> bool: Encode<'q, S::Database> + Type<S::Database>,
{
    let row =
        bind_visible(store.query(in_use), id.as_str(), caller).fetch_optional(&mut *tx).await.map_err(S::map_error)?;
    let Some(row) = row else {
        return Ok(DeleteDocumentOutcome::NotFound);
    };
    if row.flag("in_use")? {
        return Ok(DeleteDocumentOutcome::InUse);
    }
    match store.query(DELETE_DOCUMENT).bind(id.as_str()).execute(&mut *tx).await {
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => return Ok(DeleteDocumentOutcome::InUse),
        other => other.map_err(S::map_error)?,
    };
    tx.commit().await.map_err(S::map_error)?;
    Ok(DeleteDocumentOutcome::Deleted)
}

/// The media type, size and content id of a document the caller may see: `$1` its id, then
/// the tenant filter.
pub(crate) const DOCUMENT_CONTENT: &str = concat!(
    "SELECT d.media_type, d.size, c.content_id FROM documents d JOIN document_contents c ON c.document_id = d.id \
     WHERE d.id = $1 AND ",
    visible_to_caller!("d")
);

/// Begins staged content `$1` (an upload still arriving) at `$2`.
pub(crate) const STAGE_CONTENT: &str = "INSERT INTO document_contents (content_id, staged_at) VALUES ($1, $2)";

/// Chunk `$2` of content `$1`, bytes `$3`.
pub(crate) const INSERT_CHUNK: &str = "INSERT INTO document_chunks (content_id, seq, bytes) VALUES ($1, $2, $3)";

/// Deletes staged content `$1` that no document adopted (its chunks go by cascade).
pub(crate) const DISCARD_STAGED: &str = "DELETE FROM document_contents WHERE content_id = $1 AND document_id IS NULL";

/// Chunks `$2`… of content `$1`, at most `$3`, in order.
pub(crate) const CONTENT_CHUNKS: &str =
    "SELECT bytes FROM document_chunks WHERE content_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3";

/// Document `$1` adopts staged content `$2` (no row when it is gone: discarded or swept).
pub(crate) const ADOPT_CONTENT: &str =
    "UPDATE document_contents SET document_id = $1, staged_at = NULL WHERE content_id = $2 AND document_id IS NULL";

/// Content `$1` of document `$2`, stored whole (its chunks are inserted beside it).
pub(crate) const INSERT_CONTENT: &str = "INSERT INTO document_contents (content_id, document_id) VALUES ($1, $2)";

/// The answer when staged bytes a creation should adopt are gone (discarded after a failure
/// of their request, or swept as abandoned): 503, the client sends the document again.
pub(crate) fn staged_content_gone() -> RepositoryError {
    RepositoryError::Unavailable("the staged bytes of an upload are gone; send the document again".into())
}

/// The rows of a signature's new contents (SPEC §10), as arrays: per signed document its new
/// content id; per chunk ([`esignsp_domain::content::CHUNK_BYTES`] each) its content id,
/// number and bytes.
pub(crate) struct SignedChunks<'t> {
    pub content_ids: Vec<&'t str>,
    pub seqs: Vec<i32>,
    pub bytes: Vec<&'t [u8]>,
}

impl<'t> SignedChunks<'t> {
    pub(crate) fn of(signed: &'t [esignsp_domain::ports::SignedContent]) -> Self {
        let mut chunks = Self { content_ids: Vec::new(), seqs: Vec::new(), bytes: Vec::new() };
        for content in signed {
            for (seq, bytes) in content.bytes.chunks(esignsp_domain::content::CHUNK_BYTES).enumerate() {
                chunks.content_ids.push(content.content.as_str());
                chunks.seqs.push(i32::try_from(seq).unwrap_or(i32::MAX));
                chunks.bytes.push(bytes);
            }
        }
        chunks
    }
}

/// Appends an audit event at `$now` (the store's current time) with `$details` (`$8` as the
/// store's JSON type); [`bind_event`] binds it.
macro_rules! insert_event {
    ($now:expr, $details:expr) => {
        concat!(
            "INSERT INTO process_events (process_id, kind, at, actor, request_id, document_id, old_status, new_status, details) \
             VALUES ($1, $2, ",
            $now,
            ", $3, $4, $5, $6, $7, ",
            $details,
            ")"
        )
    };
}
pub(crate) use insert_event;

/// An audit event, as [`insert_event!`] takes it.
pub(crate) struct Event<'q> {
    /// The process's id (`$1`).
    pub process: &'q str,
    /// `$2`.
    pub kind: EventKind,
    /// The acting client's id (`$3`).
    pub actor: &'q str,
    /// The request's `X-Request-Id` (`$4`).
    pub request_id: &'q str,
    /// The document the event is about, if one (`$5`).
    pub document: Option<&'q str>,
    /// The process's result status before (`$6`) and after (`$7`).
    pub old_status: Option<&'q str>,
    pub new_status: Option<&'q str>,
    /// What else the event records, as JSON text (`$8`): the signing record of a result the
    /// signing page established.
    pub details: Option<&'q str>,
}

impl<'q> Event<'q> {
    /// The event of an operation on `process` by `audit`'s actor, without a document or
    /// statuses.
    pub fn of(process: &'q str, kind: EventKind, audit: &'q AuditContext) -> Self {
        Self {
            process,
            kind,
            actor: audit.actor.as_str(),
            request_id: &audit.request_id,
            document: None,
            old_status: None,
            new_status: None,
            details: None,
        }
    }
}

/// Binds the arguments of [`insert_event!`].
pub(crate) fn bind_event<'q, DB>(
    query: Query<'q, DB, DB::Arguments<'q>>,
    event: Event<'q>,
) -> Query<'q, DB, DB::Arguments<'q>>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
{
    query
        .bind(event.process)
        .bind(event.kind.as_str())
        .bind(event.actor)
        .bind(event.request_id)
        .bind(event.document)
        .bind(event.old_status)
        .bind(event.new_status)
        .bind(event.details)
}

/// The outbox deliveries of a notification (SPEC §11), in the transaction of the change it
/// notifies: one per enabled endpoint of process `$3`'s owner subscribed to the event type, due
/// at `$now`. `$1` message id, `$2` event type, `$4` payload, `$5` the event type's bit.
/// [`bind_deliveries`] binds them. Run while the process row exists (before a deletion).
macro_rules! insert_deliveries {
    ($now:expr) => {
        concat!(
            "INSERT INTO webhook_deliveries (endpoint_id, message_id, event_type, process_id, payload, next_attempt_at, created_at) \
             SELECT we.id, $1, $2, $3, $4, ",
            $now,
            ", ",
            $now,
            " FROM webhook_endpoints we \
             WHERE we.client_id = (SELECT client_id FROM signer_processes WHERE id = $3) \
             AND we.disabled_at IS NULL AND (we.event_mask & $5) <> 0"
        )
    };
}
pub(crate) use insert_deliveries;

/// Binds the arguments of [`insert_deliveries!`].
pub(crate) fn bind_deliveries<'q, DB>(
    query: Query<'q, DB, DB::Arguments<'q>>,
    notification: &'q Notification,
    process: &'q str,
) -> Query<'q, DB, DB::Arguments<'q>>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    query
        .bind(notification.message_id.as_str())
        .bind(notification.event_type.as_str())
        .bind(process)
        .bind(notification.payload.as_str())
        .bind(notification.event_type.bit())
}
