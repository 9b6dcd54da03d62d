//! Ports: what the domain needs from the outside world. Adapters implement them.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::auth::{Caller, TokenRejection};
use crate::events::{AuditContext, AuditEvent};
use crate::ids::{DocumentId, ProcessId};
use crate::process::{DocumentContent, NewSignerProcess, NewStandaloneDocument, SignerProcess, StoredDocument};
use crate::result::{DocumentResult, ProcessResult};
use crate::rules::{ResultStateMachine, RuleViolation};

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

/// Why a result could not be established (operation O5).
#[derive(Debug, thiserror::Error)]
pub enum EstablishResultError {
    /// No such process for this caller (404).
    #[error("no such process")]
    NotFound,
    /// The state machine refused the transition (409).
    #[error("{}", .0.detail)]
    Rule(RuleViolation),
    /// Storage failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// How an accepted result request ended (a process result, or a document result for O7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EstablishOutcome<T = ProcessResult> {
    /// The result was stored now, with its derived document results and one audit event.
    Established(T),
    /// The same result was already stored: nothing was written.
    Replayed(T),
}

impl<T> EstablishOutcome<T> {
    /// The result to answer with, whichever way it ended.
    #[must_use]
    pub fn result(&self) -> &T {
        match self {
            Self::Established(r) | Self::Replayed(r) => r,
        }
    }
}

/// Persistence of signature processes, their documents and their audit trail.
///
/// Every method that takes a [`Caller`] sees only processes the caller may act on
/// ([`Caller::may_act_on`]): another client's process is reported exactly like an unknown one.
#[async_trait]
pub trait SignerProcessRepository: Send + Sync {
    /// Stores a new process with its documents (bytes apart from the process row) and a
    /// `created` audit event, in one transaction.
    ///
    /// # Errors
    /// [`RepositoryError`]; nothing is stored then.
    /// Referenced documents ([`crate::process::ProcessDocumentSource::Existing`]) must belong
    /// to the process's owner.
    async fn create(&self, process: NewSignerProcess, audit: &AuditContext) -> Result<SignerProcess, CreateError>;

    /// Reads a process with its documents (without their bytes).
    ///
    /// # Errors
    /// [`RepositoryError`]. An unknown or foreign process is `Ok(None)`.
    async fn find(&self, id: &ProcessId, caller: &Caller) -> Result<Option<SignerProcess>, RepositoryError>;

    /// Deletes a process and its documents, appending a `deleted` audit event, in one
    /// transaction. Returns whether a process was deleted.
    ///
    /// # Errors
    /// [`RepositoryError`]; nothing is deleted then.
    async fn delete(&self, id: &ProcessId, caller: &Caller, audit: &AuditContext) -> Result<bool, RepositoryError>;

    /// Establishes a process result (O5) in one transaction: the first statement locks the
    /// process row conditionally (SPEC §8); `machine` decides on the state read under that
    /// lock; on [`crate::rules::Decision::Apply`] the result, the derived document results and
    /// a `result` audit event are written before commit; on a replay nothing is written.
    ///
    /// # Errors
    /// [`EstablishResultError::NotFound`] for an unknown or foreign process,
    /// [`EstablishResultError::Rule`] when the machine refuses, else
    /// [`EstablishResultError::Repository`]. Nothing is written on any error.
    async fn establish_result(
        &self,
        id: &ProcessId,
        caller: &Caller,
        requested: ProcessResult,
        machine: &ResultStateMachine,
        now: OffsetDateTime,
        audit: &AuditContext,
    ) -> Result<EstablishOutcome, EstablishResultError>;

    /// Sets one document's result (O7) in one transaction that locks the process row first;
    /// `machine` decides on the state read under that lock; on apply the document result
    /// and a `document_result` audit event are written before commit.
    ///
    /// # Errors
    /// [`EstablishResultError::NotFound`] when the process is unknown or foreign or does not
    /// hold the document; [`EstablishResultError::Rule`] when the machine refuses; storage
    /// errors. Nothing is written on any error.
    #[allow(clippy::too_many_arguments)]
    async fn set_document_result(
        &self,
        process: &ProcessId,
        document: &DocumentId,
        caller: &Caller,
        requested: DocumentResult,
        machine: &ResultStateMachine,
        now: OffsetDateTime,
        audit: &AuditContext,
    ) -> Result<EstablishOutcome<DocumentResult>, EstablishResultError>;

    /// Materialises expiry (SPEC §4): every pending process whose `expires_at` is not after
    /// `now` (only `only`, when given; at most `limit`) becomes `canceled` with message
    /// `expired`, its documents without result `canceled`, with an `expired` audit event —
    /// each in one statement that skips rows another replica holds. Returns how many.
    ///
    /// # Errors
    /// [`RepositoryError`]; nothing is written then.
    async fn expire(
        &self,
        now: OffsetDateTime,
        only: Option<&ProcessId>,
        limit: u32,
        audit: &AuditContext,
    ) -> Result<u64, RepositoryError>;

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

    /// Reads a document's bytes (O10) when it belongs to a process the caller may act on.
    ///
    /// # Errors
    /// [`RepositoryError`]. Unknown or foreign is `Ok(None)`.
    async fn document_content(
        &self,
        id: &DocumentId,
        caller: &Caller,
    ) -> Result<Option<DocumentContent>, RepositoryError>;

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
