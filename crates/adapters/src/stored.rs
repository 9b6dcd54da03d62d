//! Turning stored values back into domain values, shared by the SQL adapters: one mapping from
//! a row to a domain value serves both stores ([`StoredRow`]), and the one column kind they
//! hold differently, a point in time, is [`StoredTime`]. Stored data was valid when written;
//! anything else is reported as an unexpected error, never a panic.

use esignsp_domain::events::{AuditEvent, EventKind, SigningRecord};
use esignsp_domain::ports::{CreateError, RepositoryError, Transition};
use esignsp_domain::process::{
    DocumentContent, NewDocument, NewSignerProcess, NewStandaloneDocument, ProcessDocument, ProcessDocumentSource,
    ProcessRequest, ProcessType, SignerProcess, StoredDocument,
};
use esignsp_domain::rules::{DocumentState, ProcessSnapshot, Version};
use esignsp_domain::{
    ClientId, ContentId, DocumentId, DocumentResult, DocumentResultStatus, ProcessId, ProcessResult, ResultMessage,
    ResultStatus, TaskId,
};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::types::Json;
use sqlx::{ColumnIndex, Database, Decode, Encode, Postgres, Row, Sqlite, Type};
use time::OffsetDateTime;

pub(crate) fn corrupt(what: &str) -> RepositoryError {
    RepositoryError::Unexpected(format!("stored data is not valid: {what}").into())
}

/// A point in time as the stores hold it: `timestamptz` on PostgreSQL, INTEGER microseconds
/// since the Unix epoch (UTC) on SQLite (`migrations-sqlite/`). Bound and read like any other
/// value, so the statements and the row mapping around it are the same for both.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredTime(pub OffsetDateTime);

impl Type<Postgres> for StoredTime {
    fn type_info() -> <Postgres as Database>::TypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &<Postgres as Database>::TypeInfo) -> bool {
        <OffsetDateTime as Type<Postgres>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Postgres> for StoredTime {
    fn encode_by_ref(&self, buf: &mut <Postgres as Database>::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        <OffsetDateTime as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for StoredTime {
    fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        <OffsetDateTime as Decode<'r, Postgres>>::decode(value).map(Self)
    }
}

impl Type<Sqlite> for StoredTime {
    fn type_info() -> <Sqlite as Database>::TypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &<Sqlite as Database>::TypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for StoredTime {
    fn encode_by_ref(&self, buf: &mut <Sqlite as Database>::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        let micros = i64::try_from(self.0.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
        <i64 as Encode<'q, Sqlite>>::encode(micros, buf)
    }
}

impl<'r> Decode<'r, Sqlite> for StoredTime {
    fn decode(value: <Sqlite as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let micros = <i64 as Decode<'r, Sqlite>>::decode(value)?;
        Ok(Self(OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)?))
    }
}

/// A column of `row`, decoded; a value that does not decode is an unexpected error (500).
pub(crate) fn column<'r, R, T>(row: &'r R, name: &str) -> Result<T, RepositoryError>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(name).map_err(|e| RepositoryError::Unexpected(e.into()))
}

/// A result row of either store, read by column name (see [`column`]).
pub(crate) trait StoredRow {
    fn text(&self, name: &str) -> Result<String, RepositoryError>;
    fn optional_text(&self, name: &str) -> Result<Option<String>, RepositoryError>;
    fn integer(&self, name: &str) -> Result<i64, RepositoryError>;
    fn flag(&self, name: &str) -> Result<bool, RepositoryError>;
    fn optional_integer(&self, name: &str) -> Result<Option<i64>, RepositoryError>;
    /// A [`StoredTime`].
    fn time(&self, name: &str) -> Result<OffsetDateTime, RepositoryError>;
    /// A [`StoredTime`] or NULL.
    fn optional_time(&self, name: &str) -> Result<Option<OffsetDateTime>, RepositoryError>;
    /// A JSON value or NULL (`jsonb` on PostgreSQL, TEXT on SQLite).
    fn json(&self, name: &str) -> Result<Option<serde_json::Value>, RepositoryError>;
}

impl<R> StoredRow for R
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> StoredTime: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Json<serde_json::Value>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, name: &str) -> Result<String, RepositoryError> {
        column(self, name)
    }

    fn optional_text(&self, name: &str) -> Result<Option<String>, RepositoryError> {
        column(self, name)
    }

    fn integer(&self, name: &str) -> Result<i64, RepositoryError> {
        column(self, name)
    }

    fn flag(&self, name: &str) -> Result<bool, RepositoryError> {
        column(self, name)
    }

    fn time(&self, name: &str) -> Result<OffsetDateTime, RepositoryError> {
        column(self, name).map(|t: StoredTime| t.0)
    }

    fn optional_time(&self, name: &str) -> Result<Option<OffsetDateTime>, RepositoryError> {
        column(self, name).map(|t: Option<StoredTime>| t.map(|t| t.0))
    }

    fn optional_integer(&self, name: &str) -> Result<Option<i64>, RepositoryError> {
        column(self, name)
    }

    fn json(&self, name: &str) -> Result<Option<serde_json::Value>, RepositoryError> {
        column(self, name).map(|j: Option<Json<serde_json::Value>>| j.map(|j| j.0))
    }
}

pub(crate) fn stored_message(message: Option<String>) -> Result<Option<ResultMessage>, RepositoryError> {
    message.map(|m| ResultMessage::new(m).map_err(|_| corrupt("result message"))).transpose()
}

pub(crate) fn stored_process_result(
    status: Option<String>,
    message: Option<String>,
) -> Result<Option<ProcessResult>, RepositoryError> {
    status
        .map(|s| {
            Ok(ProcessResult {
                status: ResultStatus::parse(&s).map_err(|_| corrupt("result status"))?,
                message: stored_message(message)?,
            })
        })
        .transpose()
}

pub(crate) fn stored_document_result(
    status: Option<String>,
    message: Option<String>,
) -> Result<Option<DocumentResult>, RepositoryError> {
    status
        .map(|s| {
            Ok(DocumentResult {
                status: DocumentResultStatus::parse(&s).map_err(|_| corrupt("document result status"))?,
                message: stored_message(message)?,
            })
        })
        .transpose()
}

pub(crate) fn document_id(s: &str) -> Result<DocumentId, RepositoryError> {
    DocumentId::parse(s).map_err(|_| corrupt("document id"))
}

/// Process ids as stored (the answer of [`crate::queries::DUE_EXPIRIES`]).
pub(crate) fn process_ids(ids: &[String]) -> Result<Vec<ProcessId>, RepositoryError> {
    ids.iter().map(|id| ProcessId::parse(id).map_err(|_| corrupt("process id"))).collect()
}

fn document_size(row: &impl StoredRow) -> Result<u64, RepositoryError> {
    u64::try_from(row.integer("size")?).map_err(|_| corrupt("document size"))
}

/// The snapshot of a process from its row (`result_status`, `result_message`, `version`,
/// `expires_at`) and its documents' states.
pub(crate) fn snapshot(
    row: &impl StoredRow,
    documents: Vec<DocumentState>,
) -> Result<ProcessSnapshot, RepositoryError> {
    Ok(ProcessSnapshot {
        version: Version(row.integer("version")?),
        result: stored_process_result(row.optional_text("result_status")?, row.optional_text("result_message")?)?,
        documents,
        expires_at: row.time("expires_at")?,
    })
}

/// A signer process from its row ([`crate::queries::FIND_PROCESS`]) and its documents' rows
/// ([`crate::queries::PROCESS_DOCUMENTS`]).
pub(crate) fn signer_process<R: StoredRow>(
    id: &ProcessId,
    row: &R,
    documents: &[R],
) -> Result<SignerProcess, RepositoryError> {
    let Some(serde_json::Value::Object(members)) = row.json("request")? else {
        return Err(corrupt("process request"));
    };
    Ok(SignerProcess {
        id: id.clone(),
        task_id: TaskId::parse(&row.text("task_id")?).map_err(|_| corrupt("task id"))?,
        owner: ClientId::parse(&row.text("client_id")?).map_err(|_| corrupt("client id"))?,
        request: ProcessRequest::from_stored(
            ProcessType::parse(&row.text("process_type")?).map_err(|_| corrupt("process type"))?,
            members,
        ),
        documents: documents.iter().map(process_document).collect::<Result<_, _>>()?,
        result: stored_process_result(row.optional_text("result_status")?, row.optional_text("result_message")?)?,
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
    })
}

fn process_document(row: &impl StoredRow) -> Result<ProcessDocument, RepositoryError> {
    Ok(ProcessDocument {
        id: document_id(&row.text("document_id")?)?,
        media_type: row.text("media_type")?,
        filename: row.optional_text("filename")?,
        size: document_size(row)?,
        sha256: row.text("sha256")?,
        result: stored_document_result(row.optional_text("result_status")?, row.optional_text("result_message")?)?,
    })
}

/// A document resource taken into a new process, from its row ([`crate::queries::own_document!`]);
/// [`CreateError::UnknownDocument`] without one.
pub(crate) fn taken_document(id: &DocumentId, row: Option<&impl StoredRow>) -> Result<ProcessDocument, CreateError> {
    let row = row.ok_or_else(|| CreateError::UnknownDocument(id.clone()))?;
    Ok(ProcessDocument {
        id: id.clone(),
        media_type: row.text("media_type")?,
        filename: row.optional_text("filename")?,
        size: document_size(row)?,
        sha256: row.text("sha256")?,
        result: None,
    })
}

/// The documents of a new process in order, each with its position; a document resource
/// named a second time is [`CreateError::DuplicateDocument`] where it appears (so that the
/// error comes in the order the documents are stored in, as the other errors do).
pub(crate) fn placed_documents(
    process: &NewSignerProcess,
) -> impl Iterator<Item = Result<(i32, &ProcessDocumentSource), CreateError>> {
    let mut seen = std::collections::HashSet::new();
    process.documents.iter().enumerate().map(move |(position, source)| match source {
        ProcessDocumentSource::Existing(id) if !seen.insert(id) => Err(CreateError::DuplicateDocument(id.clone())),
        _ => Ok((i32::try_from(position).unwrap_or(i32::MAX), source)),
    })
}

/// A document uploaded with a new process, as stored.
pub(crate) fn uploaded_document(doc: &NewDocument) -> ProcessDocument {
    ProcessDocument {
        id: doc.id.clone(),
        media_type: doc.media_type.clone(),
        filename: doc.filename.clone(),
        size: doc.content.size(),
        sha256: doc.sha256.clone(),
        result: None,
    }
}

/// A new process as stored, with its documents.
pub(crate) fn created_process(process: &NewSignerProcess, documents: Vec<ProcessDocument>) -> SignerProcess {
    SignerProcess {
        id: process.id.clone(),
        task_id: process.task_id.clone(),
        owner: process.owner.clone(),
        request: process.request.clone(),
        documents,
        result: None,
        created_at: process.created_at,
        expires_at: process.expires_at,
    }
}

/// A document resource from its row ([`crate::queries::FIND_DOCUMENT`]).
pub(crate) fn stored_document(id: &DocumentId, row: &impl StoredRow) -> Result<StoredDocument, RepositoryError> {
    Ok(StoredDocument {
        id: id.clone(),
        media_type: row.text("media_type")?,
        size: document_size(row)?,
        sha256: row.text("sha256")?,
        signers: row.json("signers")?,
        created_at: row.time("created_at")?,
    })
}

/// A new document resource as stored.
pub(crate) fn created_document(document: &NewStandaloneDocument) -> StoredDocument {
    let doc = &document.document;
    StoredDocument {
        id: doc.id.clone(),
        media_type: doc.media_type.clone(),
        size: doc.content.size(),
        sha256: doc.sha256.clone(),
        signers: document.signers.clone(),
        created_at: document.created_at,
    }
}

/// Where a document's bytes are ([`crate::queries::DOCUMENT_CONTENT`]).
pub(crate) fn document_content(row: &impl StoredRow) -> Result<DocumentContent, RepositoryError> {
    let content = row.text("content_id")?;
    Ok(DocumentContent {
        media_type: row.text("media_type")?,
        size: document_size(row)?,
        content: ContentId::parse(&content).map_err(|_| corrupt("content id"))?,
    })
}

/// An audit event ([`crate::queries::EVENTS`]).
pub(crate) fn audit_event(row: &impl StoredRow) -> Result<AuditEvent, RepositoryError> {
    Ok(AuditEvent {
        kind: EventKind::parse(&row.text("kind")?).ok_or_else(|| corrupt("event kind"))?,
        at: row.time("at")?,
        actor: row.text("actor")?,
        request_id: row.text("request_id")?,
        document_id: row.optional_text("document_id")?.as_deref().map(document_id).transpose()?,
        old_status: row.optional_text("old_status")?,
        new_status: row.optional_text("new_status")?,
        signing: row
            .optional_text("details")?
            .map(|text| serde_json::from_str::<EventDetails>(&text).map_err(|_| corrupt("event details")))
            .transpose()?
            .and_then(|details| details.signing),
    })
}

/// The `details` of an audit event, as stored (JSON).
#[derive(serde::Serialize, serde::Deserialize)]
struct EventDetails {
    /// The signing page's record ([`SigningRecord`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signing: Option<SigningRecord>,
}
/// A [`Transition`] as the SQL adapters bind it: statuses and messages as text, document
/// results as three arrays of equal length.
pub(crate) struct StoredTransition<'t> {
    /// The new process result's status and message, if the transition sets one.
    pub result: Option<(&'static str, Option<&'t str>)>,
    pub documents: StoredDocumentResults<'t>,
    pub event: StoredEvent<'t>,
    pub signed: StoredSignedContents<'t>,
}

/// The signed contents of a transition, as arrays of equal length.
pub(crate) struct StoredSignedContents<'t> {
    pub ids: Vec<&'t str>,
    pub content_ids: Vec<&'t str>,
    pub sizes: Vec<i64>,
    pub sha256s: Vec<&'t str>,
}

pub(crate) struct StoredDocumentResults<'t> {
    pub ids: Vec<&'t str>,
    pub statuses: Vec<&'static str>,
    pub messages: Vec<Option<&'t str>>,
}

pub(crate) struct StoredEvent<'t> {
    pub kind: &'static str,
    pub actor: &'t str,
    pub request_id: &'t str,
    pub document_id: Option<&'t str>,
    pub new_status: &'static str,
    /// The event's details as JSON text, when it has any.
    pub details: Option<String>,
}

impl<'t> StoredTransition<'t> {
    pub(crate) fn of(transition: &'t Transition) -> Self {
        let change = &transition.change;
        let mut documents = StoredDocumentResults {
            ids: Vec::with_capacity(change.document_results.len()),
            statuses: Vec::with_capacity(change.document_results.len()),
            messages: Vec::with_capacity(change.document_results.len()),
        };
        for (id, result) in &change.document_results {
            documents.ids.push(id.as_str());
            documents.statuses.push(result.status.as_str());
            documents.messages.push(result.message.as_ref().map(ResultMessage::as_str));
        }
        let event = &transition.event;
        let signed = StoredSignedContents {
            ids: transition.signed.iter().map(|s| s.document.as_str()).collect(),
            content_ids: transition.signed.iter().map(|s| s.content.as_str()).collect(),
            sizes: transition.signed.iter().map(|s| i64::try_from(s.bytes.len()).unwrap_or(i64::MAX)).collect(),
            sha256s: transition.signed.iter().map(|s| s.sha256.as_str()).collect(),
        };
        let details = event
            .signing
            .as_ref()
            .and_then(|signing| serde_json::to_string(&EventDetails { signing: Some(signing.clone()) }).ok());
        Self {
            signed,
            result: change.result.as_ref().map(|r| (r.status.as_str(), r.message.as_ref().map(ResultMessage::as_str))),
            documents,
            event: StoredEvent {
                kind: event.kind.as_str(),
                actor: event.actor.as_str(),
                request_id: &event.request_id,
                document_id: event.document_id.as_ref().map(DocumentId::as_str),
                new_status: event.new_status,
                details,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;
    use time::macros::datetime;

    #[tokio::test]
    async fn on_sqlite_a_time_is_stored_as_integer_microseconds_and_read_back() {
        let mut connection = sqlx::SqliteConnection::connect("sqlite::memory:").await.expect("in-memory SQLite");
        let at = datetime!(2026-12-01 12:00:00.123456789 UTC);
        let row = sqlx::query("SELECT $1 AS at, typeof($1) AS kind")
            .bind(StoredTime(at))
            .fetch_one(&mut connection)
            .await
            .expect("select");
        assert_eq!(row.text("kind").expect("kind"), "integer", "the column type of migrations-sqlite/");
        assert_eq!(row.integer("at").expect("at"), 1_796_126_400_123_456, "microseconds since the Unix epoch");
        assert_eq!(row.time("at").expect("time"), datetime!(2026-12-01 12:00:00.123456 UTC), "to the microsecond");
    }
}
