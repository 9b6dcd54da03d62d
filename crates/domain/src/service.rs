//! The application service: the use cases of the eSignSP v2 API over the ports.
//! Handlers convert HTTP into these calls; adapters are reached only through the ports.

use std::sync::Arc;

use time::Duration;

use crate::auth::Caller;
use crate::events::{AuditContext, AuditEvent};
use crate::ids::{DocumentId, ProcessId, TaskId};
use crate::ports::{
    Clock, EstablishOutcome, EstablishResultError, IdGenerator, RepositoryError, SignerProcessRepository,
};
use crate::process::{sniff_media_type, DocumentContent, NewDocument, NewSignerProcess, ProcessRequest, SignerProcess};
use crate::result::ProcessResult;
use crate::rules::ResultStateMachine;

/// A document file as received from a client (multipart part `document`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentUpload {
    /// The part's declared Content-Type, if any.
    pub declared_type: Option<String>,
    /// The part's file name, if any.
    pub filename: Option<String>,
    /// Lowercase hex SHA-256 of `bytes`.
    pub sha256: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Why a process could not be created (O1).
#[derive(Debug, thiserror::Error)]
pub enum CreateProcessError {
    /// No `document` part was sent (400).
    #[error("a process needs at least one document")]
    NoDocument,
    /// Storage failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// The use cases of the document signature process API.
#[derive(Clone)]
pub struct SignerProcessService {
    repository: Arc<dyn SignerProcessRepository>,
    ids: Arc<dyn IdGenerator>,
    clock: Arc<dyn Clock>,
    machine: Arc<ResultStateMachine>,
    ttl: Duration,
}

impl std::fmt::Debug for SignerProcessService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerProcessService").field("machine", &self.machine).field("ttl", &self.ttl).finish()
    }
}

impl SignerProcessService {
    /// Wires the service. `ttl` is `processes.ttl_seconds`: how long a process may stay pending.
    #[must_use]
    pub fn new(
        repository: Arc<dyn SignerProcessRepository>,
        ids: Arc<dyn IdGenerator>,
        clock: Arc<dyn Clock>,
        machine: Arc<ResultStateMachine>,
        ttl: Duration,
    ) -> Self {
        Self { repository, ids, clock, machine, ttl }
    }

    /// The repository, for operations that need nothing but storage (readiness).
    #[must_use]
    pub fn repository(&self) -> &Arc<dyn SignerProcessRepository> {
        &self.repository
    }

    /// O1: creates a process owned by `caller` from its validated JSON and documents.
    ///
    /// # Errors
    /// [`CreateProcessError::NoDocument`] without documents; storage errors.
    pub async fn create(
        &self,
        caller: &Caller,
        request: ProcessRequest,
        documents: Vec<DocumentUpload>,
        audit: &AuditContext,
    ) -> Result<SignerProcess, CreateProcessError> {
        if documents.is_empty() {
            return Err(CreateProcessError::NoDocument);
        }
        // Stored timestamps have microsecond precision: answer what a later read answers.
        let now = self.clock.now();
        let now = now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now);
        let documents = documents
            .into_iter()
            .map(|upload| NewDocument {
                id: DocumentId::from_random(self.ids.random_160()),
                media_type: sniff_media_type(&upload.bytes, upload.declared_type.as_deref()),
                filename: upload.filename,
                sha256: upload.sha256,
                bytes: upload.bytes,
            })
            .collect();
        let process = NewSignerProcess {
            id: ProcessId::from_random(self.ids.random_160()),
            task_id: TaskId::from_random(self.ids.random_160()),
            owner: caller.client_id.clone(),
            request,
            documents,
            created_at: now,
            expires_at: now + self.ttl,
        };
        Ok(self.repository.create(process, audit).await?)
    }

    /// O2 / O4: reads a process the caller may act on.
    ///
    /// # Errors
    /// Storage errors; unknown or foreign is `Ok(None)`.
    pub async fn find(&self, caller: &Caller, id: &ProcessId) -> Result<Option<SignerProcess>, RepositoryError> {
        self.repository.find(id, caller).await
    }

    /// O3: deletes a process and its documents.
    ///
    /// # Errors
    /// Storage errors; returns `false` for an unknown or foreign process.
    pub async fn delete(&self, caller: &Caller, id: &ProcessId, audit: &AuditContext) -> Result<bool, RepositoryError> {
        self.repository.delete(id, caller, audit).await
    }

    /// O5: establishes the result of a process under the rules of the state machine.
    ///
    /// # Errors
    /// See [`SignerProcessRepository::establish_result`].
    pub async fn establish_result(
        &self,
        caller: &Caller,
        id: &ProcessId,
        requested: ProcessResult,
        audit: &AuditContext,
    ) -> Result<EstablishOutcome, EstablishResultError> {
        let now = self.clock.now();
        self.repository.establish_result(id, caller, requested, &self.machine, now, audit).await
    }

    /// O10: a document's bytes.
    ///
    /// # Errors
    /// Storage errors; unknown or foreign is `Ok(None)`.
    pub async fn document_content(
        &self,
        caller: &Caller,
        id: &DocumentId,
    ) -> Result<Option<DocumentContent>, RepositoryError> {
        self.repository.document_content(id, caller).await
    }

    /// E1: the audit trail of a process.
    ///
    /// # Errors
    /// Storage errors; unknown or foreign is `Ok(None)`.
    pub async fn events(&self, caller: &Caller, id: &ProcessId) -> Result<Option<Vec<AuditEvent>>, RepositoryError> {
        self.repository.events(id, caller).await
    }
}
