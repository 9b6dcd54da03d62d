//! Ports: what the domain needs from the outside world. Adapters implement them.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::auth::{Caller, TokenRejection};
use crate::events::EventKind;
use crate::events::{AuditContext, AuditEvent, SigningRecord};
use crate::ids::{ClientId, ContentId, DocumentId, ProcessId};
use crate::process::{DocumentContent, NewSignerProcess, NewStandaloneDocument, SignerProcess, StoredDocument};
use crate::rules::{Change, ProcessSnapshot, RuleViolation, Version};
use crate::webhooks::Notification;

/// A storage failure, in the terms the API needs to answer it.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The store cannot be reached or gave no connection in time: answer 503 with
    /// `Retry-After`.
    #[error("the database is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store has no space left for the write (a full disk, SQLite's `SQLITE_FULL`):
    /// nothing was stored; answer 507 (RFC 4918 §11.5). Writes work again once there is space.
    #[error("the database has no storage space left")]
    InsufficientStorage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store refuses writes: its file, directory or file system is read-only. Answer 503
    /// with `Retry-After`; log the cause.
    #[error("the database is read-only")]
    ReadOnly(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else: answer 500 without internal detail; log the chain.
    #[error("unexpected database error")]
    Unexpected(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why a process could not be stored (operation O1).
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// A referenced document does not exist or belongs to another client (400).
    #[error("document {0} does not exist")]
    UnknownDocument(DocumentId),
    /// A document is referenced twice (400).
    #[error("document {0} is referenced more than once")]
    DuplicateDocument(DocumentId),
    /// Storage failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// How deleting a document resource ended (operation O11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteDocumentOutcome {
    /// Deleted with its bytes.
    Deleted,
    /// Unknown or foreign (404).
    NotFound,
    /// A process that is not deleted holds it, pending or finished (409).
    InUse,
}

/// Why a result could not be established (a process result, O5, or a document result, O7).
#[derive(Debug, thiserror::Error)]
pub enum EstablishResultError {
    /// No such process for this caller, or no such document in it (404).
    #[error("no such process")]
    NotFound,
    /// The state machine refused the transition (409).
    #[error("{}", .0.detail)]
    Rule(RuleViolation),
    /// Storage failed, or the process kept changing under every attempt.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// The audit event a transition appends (SPEC §4), in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionEvent {
    /// What happened: [`EventKind::Result`], [`EventKind::DocumentResult`] or
    /// [`EventKind::Expired`].
    pub kind: EventKind,
    /// Who caused it.
    pub actor: ClientId,
    /// In which request.
    pub request_id: String,
    /// The document, for a document result.
    pub document_id: Option<DocumentId>,
    /// The status after (the process's, or the document's for a document result).
    pub new_status: &'static str,
    /// What the built-in signing application did, when it established the result.
    pub signing: Option<SigningRecord>,
}

/// The signed bytes of a document, written with the transition that establishes its result
/// (SPEC §10): they replace the document's content, size and SHA-256. The original bytes are
/// an unchanged prefix of them (an incremental update, ISO 32000-1 §7.5.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedContent {
    /// The document.
    pub document: DocumentId,
    /// The id its new content is stored under (the old content is deleted).
    pub content: ContentId,
    /// The signed PDF.
    pub bytes: std::sync::Arc<[u8]>,
    /// Lowercase hex SHA-256 of `bytes`.
    pub sha256: String,
}

/// A decided transition of one process, to be written whole or not at all (SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The process.
    pub process: ProcessId,
    /// The version of the snapshot it was decided on: it is written only while the process
    /// still has it, and advances it.
    pub expected: Version,
    /// The result and document results to write (document results only where none is set).
    pub change: Change,
    /// Its audit event.
    pub event: TransitionEvent,
    /// Signed document contents to store with it (only from the built-in signing page).
    pub signed: Vec<SignedContent>,
    /// Its webhook notification (SPEC §11), written into the outbox once per subscribed,
    /// enabled endpoint of the process's owner; `None` when webhooks are off.
    pub notification: Option<Notification>,
}

/// How writing a [`Transition`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum WriteOutcome {
    /// Written, in one transaction; the version advanced.
    Written,
    /// The process no longer has the expected version (another transition committed first),
    /// or is gone: nothing was written.
    Stale,
}

/// A unit of work of the transition protocol (SPEC §8): loads snapshots and writes
/// transitions, on one database connection where the store has them, so that the common
/// `load` → `write` of a request costs two statements and nothing more. Pure persistence:
/// it never decides.
#[async_trait]
pub trait TransitionStore: Send {
    /// Loads the versioned snapshot of a process the caller may act on
    /// ([`Caller::may_act_on`]), without locking it.
    ///
    /// # Errors
    /// [`RepositoryError`]. An unknown or foreign process is `Ok(None)`.
    async fn load(&mut self, id: &ProcessId, caller: &Caller) -> Result<Option<ProcessSnapshot>, RepositoryError>;

    /// Writes `transition` — process result, document results (each only where the document
    /// has none), the audit event, the outbox deliveries of its notification, the version
    /// advanced — in one transaction, only while the
    /// process's version is [`Transition::expected`] (compare-and-set).
    ///
    /// # Errors
    /// [`RepositoryError`]; nothing is written then. A version that moved on is
    /// `Ok(WriteOutcome::Stale)`, not an error.
    async fn write(&mut self, transition: &Transition) -> Result<WriteOutcome, RepositoryError>;

    /// The group commit's batch load (SPEC §8): the snapshot of each requested process for
    /// its caller, as [`Self::load`] gives it, one entry per request in order — in one
    /// statement where the store can.
    ///
    /// # Errors
    /// [`RepositoryError`] for the whole batch.
    async fn load_batch(
        &mut self,
        requests: &[(&ProcessId, &Caller)],
    ) -> Result<Vec<Option<ProcessSnapshot>>, RepositoryError>;

    /// The group commit's batch write (SPEC §8): each of `transitions` (of distinct
    /// processes) as [`Self::write`] writes it, with its own compare-and-set, all in one
    /// transaction — one commit for the batch. One [`WriteOutcome`] per transition, in order:
    /// a stale one is not written and keeps none of the others from being written.
    ///
    /// # Errors
    /// [`RepositoryError`]; nothing of the batch is written then.
    async fn write_batch(&mut self, transitions: &[Transition]) -> Result<Vec<WriteOutcome>, RepositoryError>;
}

/// Persistence of signature processes, their documents and their audit trail.
///
/// Every method that takes a [`Caller`] sees only processes the caller may act on
/// ([`Caller::may_act_on`]): another client's process is reported exactly like an unknown one.
#[async_trait]
pub trait SignerProcessRepository: Send + Sync {
    /// Stores a new process with its documents (bytes apart from the process row), a
    /// `created` audit event and the outbox deliveries of `notification` (one per subscribed,
    /// enabled endpoint of the owner), in one transaction.
    ///
    /// # Errors
    /// [`RepositoryError`]; nothing is stored then.
    /// Referenced documents ([`crate::process::ProcessDocumentSource::Existing`]) must belong
    /// to the process's owner.
    async fn create(
        &self,
        process: NewSignerProcess,
        audit: &AuditContext,
        notification: Option<&Notification>,
    ) -> Result<SignerProcess, CreateError>;

    /// Reads a process with its documents (without their bytes).
    ///
    /// # Errors
    /// [`RepositoryError`]. An unknown or foreign process is `Ok(None)`.
    async fn find(&self, id: &ProcessId, caller: &Caller) -> Result<Option<SignerProcess>, RepositoryError>;

    /// Deletes a process and its documents, appending a `deleted` audit event and the outbox
    /// deliveries of `notification`, in one transaction. Returns whether a process was
    /// deleted (nothing is written for an unknown one).
    ///
    /// # Errors
    /// [`RepositoryError`]; nothing is deleted then.
    async fn delete(
        &self,
        id: &ProcessId,
        caller: &Caller,
        audit: &AuditContext,
        notification: Option<&Notification>,
    ) -> Result<bool, RepositoryError>;

    /// A unit of work for the transition protocol ([`TransitionStore`]).
    ///
    /// # Errors
    /// [`RepositoryError`] when no connection can be had.
    async fn transitions(&self) -> Result<Box<dyn TransitionStore + '_>, RepositoryError>;

    /// The pending processes whose `expires_at` is not after `at`, soonest first, at most
    /// `limit` (the expiry sweeper's batch, SPEC §4). Not locked: several replicas may read the
    /// same ones, and the compare-and-set of [`TransitionStore::write`] lets one expire each.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn due_expiries(&self, at: OffsetDateTime, limit: u32) -> Result<Vec<ProcessId>, RepositoryError>;

    /// Stores a document resource (O8) with its bytes apart.
    ///
    /// # Errors
    /// [`RepositoryError`]; nothing is stored then.
    async fn create_document(&self, document: NewStandaloneDocument) -> Result<StoredDocument, RepositoryError>;

    /// Reads a document resource (O9) the caller owns (or any, for a trusted caller).
    ///
    /// # Errors
    /// [`RepositoryError`]. Unknown or foreign is `Ok(None)`.
    async fn find_document(&self, id: &DocumentId, caller: &Caller) -> Result<Option<StoredDocument>, RepositoryError>;

    /// Deletes a document resource (O11) with its bytes unless a process holds it: a process
    /// keeps its documents, pending or finished, until it is deleted itself (SPEC O11). The
    /// check and the deletion are one transaction; a process that takes the document
    /// concurrently wins and the answer is [`DeleteDocumentOutcome::InUse`].
    ///
    /// # Errors
    /// [`RepositoryError`]; nothing is deleted then.
    async fn delete_document(&self, id: &DocumentId, caller: &Caller)
        -> Result<DeleteDocumentOutcome, RepositoryError>;

    /// Where a document's bytes are, with their media type and size (O10), when the caller
    /// may read it; the bytes are read with [`Self::content_chunks`].
    ///
    /// # Errors
    /// [`RepositoryError`]. Unknown or foreign is `Ok(None)`.
    async fn document_content(
        &self,
        id: &DocumentId,
        caller: &Caller,
    ) -> Result<Option<DocumentContent>, RepositoryError>;

    /// Stages chunk `seq` (numbered from 0; each [`crate::content::CHUNK_BYTES`] long but
    /// the last) of the bytes of an upload still arriving, under `content`: the first chunk
    /// begins the staged content. Staged bytes belong to no document until a creation adopts
    /// them ([`crate::content::NewContent::Staged`]), in its own transaction.
    ///
    /// # Errors
    /// [`RepositoryError`] (507 for a full disk).
    async fn stage_chunk(&self, content: &ContentId, seq: u32, bytes: &[u8]) -> Result<(), RepositoryError>;

    /// Deletes staged bytes that no document adopted, with their chunks; adopted or unknown
    /// ones are left as they are.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn discard_staged(&self, content: &ContentId) -> Result<(), RepositoryError>;

    /// Deletes every staged content that no document adopted and that was begun more than
    /// `older_than` ago (by the store's clock); answers how many.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn sweep_staged(&self, older_than: std::time::Duration) -> Result<u64, RepositoryError>;

    /// Chunks `from`, `from + 1`, … of a content, at most `limit`, in order. Fewer than
    /// `limit` at the content's end; none past it, or for a content deleted meanwhile (its
    /// document deleted, or its bytes replaced by a signature).
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn content_chunks(&self, content: &ContentId, from: u32, limit: u32)
        -> Result<Vec<Vec<u8>>, RepositoryError>;

    /// The audit trail of a process, oldest first (E1).
    ///
    /// # Errors
    /// [`RepositoryError`]. An unknown or foreign process is `Ok(None)`.
    async fn events(&self, id: &ProcessId, caller: &Caller) -> Result<Option<Vec<AuditEvent>>, RepositoryError>;

    /// Whether the store answers and can take writes (`/readyz`).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when it does not answer,
    /// [`RepositoryError::ReadOnly`] when it is read-only and
    /// [`RepositoryError::InsufficientStorage`] when it has no space left for writes.
    async fn ping(&self) -> Result<(), RepositoryError>;
}

/// Verifies a bearer access token (RFC 6750) and names its caller.
#[async_trait]
pub trait AccessTokenVerifier: Send + Sync {
    /// Verifies `token` (the b64token of the `Authorization: Bearer` header) and checks the
    /// required scope.
    ///
    /// # Errors
    /// [`TokenRejection::Invalid`] with a fixed reason, [`TokenRejection::InsufficientScope`]
    /// for a valid token without the required scope, [`TokenRejection::Unavailable`] when no
    /// verification key can be had.
    async fn verify(&self, token: &str) -> Result<Caller, TokenRejection>;

    /// Whether verification keys (or an introspection endpoint) are available (`/readyz`).
    fn ready(&self) -> bool {
        true
    }
}

/// The time source.
pub trait Clock: Send + Sync {
    /// The current time (UTC).
    fn now(&self) -> OffsetDateTime;
}

/// The source of fresh ids: 160 bits from a CSPRNG (SPEC §2).
pub trait IdGenerator: Send + Sync {
    /// 20 random bytes from a cryptographically secure generator.
    fn random_160(&self) -> [u8; 20];
}
