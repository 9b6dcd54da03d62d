//! The application service: the use cases of the eSignSP v2 API over the ports.
//! Handlers convert HTTP into these calls; adapters are reached only through the ports.

use std::sync::Arc;

use time::Duration;

use serde_json::Value;

use crate::auth::Caller;
use crate::content::{Chunks, ContentReader, NewContent, StagedContent, UploadWriter};
use crate::events::EventKind;
use crate::events::{AuditContext, AuditEvent, DocumentSigningRecord, SignerIdentity, SigningRecord};
use crate::group_commit::{GroupCommit, GroupCommitQueue, GroupCommitSettings, GroupCommitStats};
use crate::ids::{ClientId, ContentId, DocumentId, ProcessId, TaskId};
use crate::ports::{
    Clock, CreateError, DeleteDocumentOutcome, EstablishResultError, IdGenerator, RepositoryError, SignedContent,
    SignerProcessRepository, Transition, TransitionEvent, WriteOutcome,
};
use crate::process::{
    sniff_media_type, DocumentContent, NewDocument, NewSignerProcess, NewStandaloneDocument, ProcessDocumentSource,
    ProcessRequest, SignerProcess, StoredDocument,
};
use crate::result::{DocumentResult, DocumentResultStatus, ProcessResult, ResultMessage, ResultStatus};
use crate::rules::{expiry_result, Change, Outcome, ProcessSnapshot, Request, ResultStateMachine};
use crate::signing::{DocumentSigner, SignatureRequest};
use crate::text::Text;
use crate::webhooks::{Notification, Notifier, WebhookEventType};

/// A document file as received from a client (multipart part `document` of O1 or O8),
/// checked: not empty, and a PDF when it says it is one (SPEC §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentUpload {
    declared_type: Option<Text>,
    filename: Option<Text>,
    sha256: String,
    head: Vec<u8>,
    content: NewContent,
}

/// How a part declared itself a PDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdfDeclaration {
    /// Its `Content-Type` is `application/pdf` (any case, any parameters).
    MediaType,
    /// One of its file names (`filename` or `filename*`) ends in `.pdf` (any case).
    FileName,
}

impl std::fmt::Display for PdfDeclaration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::MediaType => "its Content-Type is application/pdf",
            Self::FileName => "its file name ends in .pdf",
        })
    }
}

/// Why a `document` part was refused (400 naming the part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUpload {
    /// No bytes.
    #[error("is empty")]
    Empty,
    /// Declared a PDF, but the bytes do not start with `%PDF-` (ISO 32000-2 §7.5.2).
    #[error("is declared a PDF ({0}) but its bytes do not start with %PDF-")]
    NotAPdf(PdfDeclaration),
}

/// Whether a part declares itself a PDF: `declared_type` is `application/pdf` (any case,
/// parameters ignored), or a file name ends in `.pdf` (any case).
#[must_use]
pub fn pdf_declaration(declared_type: Option<&str>, file_names: &[&str]) -> Option<PdfDeclaration> {
    let essence = |t: &str| t.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/pdf");
    if declared_type.is_some_and(essence) {
        return Some(PdfDeclaration::MediaType);
    }
    let is_pdf_name =
        |n: &&str| n.len() > 4 && n.get(n.len() - 4..).is_some_and(|ext| ext.eq_ignore_ascii_case(".pdf"));
    file_names.iter().any(is_pdf_name).then_some(PdfDeclaration::FileName)
}

impl DocumentUpload {
    /// Checks a received document part. `file_names` are every name the part gave, the
    /// preferred first (`filename*` before `filename`, RFC 6266 §4.3); the first is stored.
    /// `sha256` is the lowercase hex SHA-256 of the bytes, `head` their first bytes (at least
    /// five, when there are so many), `content` the bytes (as [`UploadWriter`] received them).
    ///
    /// # Errors
    /// [`InvalidUpload::Empty`] without bytes; [`InvalidUpload::NotAPdf`] when the part
    /// declares a PDF ([`pdf_declaration`]) whose bytes do not start with `%PDF-`.
    pub fn new(
        declared_type: Option<Text>,
        file_names: Vec<Text>,
        sha256: String,
        head: &[u8],
        content: NewContent,
    ) -> Result<Self, InvalidUpload> {
        if content.size() == 0 {
            return Err(InvalidUpload::Empty);
        }
        if !head.starts_with(b"%PDF-") {
            let names: Vec<&str> = file_names.iter().map(Text::as_str).collect();
            if let Some(declaration) = pdf_declaration(declared_type.as_deref(), &names) {
                return Err(InvalidUpload::NotAPdf(declaration));
            }
        }
        Ok(Self { declared_type, filename: file_names.into_iter().next(), sha256, head: head.to_vec(), content })
    }

    /// A document received whole (tests, tools): [`Self::new`] with inline bytes.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn whole(declared_type: Option<Text>, file_names: Vec<Text>, bytes: Vec<u8>) -> Result<Self, InvalidUpload> {
        let sha256 = sha256_hex(&bytes);
        let head = bytes[..bytes.len().min(8)].to_vec();
        Self::new(declared_type, file_names, sha256, &head, NewContent::Inline(bytes))
    }

    /// The file name to store, if the part gave one.
    #[must_use]
    pub fn filename(&self) -> Option<&str> {
        self.filename.as_deref()
    }

    /// The bytes: inline, or staged in the store.
    #[must_use]
    pub fn content(&self) -> &NewContent {
        &self.content
    }

    /// Size in bytes.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.content.size()
    }

    /// The part's declared `Content-Type`, if any.
    #[must_use]
    pub fn declared_type(&self) -> Option<&str> {
        self.declared_type.as_deref()
    }

    /// Lowercase hex SHA-256 of the bytes.
    #[must_use]
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// A document of a process being created (O1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentInput {
    /// Uploaded with the process (multipart).
    Upload(DocumentUpload),
    /// A document resource of the same client, referenced by id or URL (JSON).
    Existing(DocumentId),
}

/// Why a process could not be created (O1).
#[derive(Debug, thiserror::Error)]
pub enum CreateProcessError {
    /// No `document` part was sent (400).
    #[error("a process needs at least one document")]
    NoDocument,
    /// The store refused it (unknown or repeated document) or failed.
    #[error(transparent)]
    Store(#[from] CreateError),
}

/// The client id the service itself acts as, in audit events it causes (expiry).
pub const SYSTEM_ACTOR: &str = "esignsp";

/// The message of the result *Decline* establishes on the signing page (SPEC §10).
pub const DECLINED_BY_THE_SIGNER: &str = "declined by the signer";

/// Lowercase hex SHA-256 of `bytes`.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(bytes))
}

/// The staged contents among `contents`, to mark adopted once their creation committed.
fn staged_contents<'a>(contents: impl IntoIterator<Item = &'a NewContent>) -> Vec<StagedContent> {
    contents
        .into_iter()
        .filter_map(|c| match c {
            NewContent::Staged(staged) => Some(staged.clone()),
            NewContent::Inline(_) => None,
        })
        .collect()
}

fn message(text: &str) -> Option<ResultMessage> {
    ResultMessage::new(text).ok()
}

/// The process result the signing page establishes once every document it could sign is
/// signed (SPEC §10): `finished` when every document is, `failed` when none is,
/// `failed_documents` otherwise.
fn signing_result(documents: &[crate::rules::DocumentState]) -> ProcessResult {
    let finished = documents
        .iter()
        .filter(|d| d.result.as_ref().is_some_and(|r| r.status == DocumentResultStatus::Finished))
        .count();
    match finished {
        n if n == documents.len() => ProcessResult { status: ResultStatus::Finished, message: None },
        0 => ProcessResult { status: ResultStatus::Failed, message: message("no document could be signed") },
        _ => ProcessResult {
            status: ResultStatus::FailedDocuments,
            message: message("some documents could not be signed"),
        },
    }
}

fn system_audit(request_id: &str) -> AuditContext {
    AuditContext {
        actor: ClientId::parse(SYSTEM_ACTOR).unwrap_or_else(|_| unreachable!("a valid constant")),
        request_id: request_id.to_owned(),
    }
}

/// How many times the transition protocol loads, decides and tries to write before it gives
/// up with 503. Results are terminal, so a race between results settles in one retry; document
/// results of different documents of one process each advance its version, so a burst of them
/// may need a few.
pub const MAX_ATTEMPTS: usize = 8;

/// The kind, document and new status of a transition's audit event.
pub(crate) type EventOf = (EventKind, Option<DocumentId>, &'static str);

/// The decision of a result request (O5, O7) on a snapshot at a time, shareable with the
/// group commit's task.
pub(crate) type Decide = Arc<
    dyn Fn(&ProcessSnapshot, time::OffsetDateTime) -> Result<(Outcome<Change>, EventOf), EstablishResultError>
        + Send
        + Sync,
>;

/// What [`SignerProcessService::prepare`] decided.
pub(crate) enum Prepared {
    /// Nothing to write: answer this (a replay).
    Answer(Outcome<Change>),
    /// Write this transition.
    Write(Box<Transition>),
}

/// Expiry found the process settled (nothing to expire).
struct Settled;

/// Why [`SignerProcessService::transition`] ended without an outcome.
enum TransitionFailure<E> {
    /// The decision refused the request.
    Refused(E),
    /// Storage failed.
    Repository(RepositoryError),
}

impl<E> From<RepositoryError> for TransitionFailure<E> {
    fn from(e: RepositoryError) -> Self {
        Self::Repository(e)
    }
}

impl TransitionFailure<EstablishResultError> {
    fn into_error(self) -> EstablishResultError {
        match self {
            Self::Refused(e) => e,
            Self::Repository(e) => e.into(),
        }
    }
}

/// The answer of an accepted result request: the requested result, which a replay found
/// stored and an established transition stored now.
fn answer<T>(outcome: Outcome<Change>, requested: T) -> Outcome<T> {
    match outcome {
        Outcome::Established(_) => Outcome::Established(requested),
        Outcome::Replayed(_) => Outcome::Replayed(requested),
    }
}

/// `change`'s document results applied to `state` (the signing page decides its documents one
/// after another, each on the state the previous ones leave).
fn apply(state: &mut ProcessSnapshot, change: &Change) {
    for (id, result) in &change.document_results {
        if let Some(d) = state.documents.iter_mut().find(|d| d.id == *id) {
            d.result = Some(result.clone());
        }
    }
}

/// The process result of a change that has one.
fn established(change: Change) -> Result<ProcessResult, EstablishResultError> {
    change.result.ok_or_else(|| {
        EstablishResultError::Repository(RepositoryError::Unexpected("the signing transition set no result".into()))
    })
}

/// The use cases of the document signature process API.
#[derive(Clone)]
pub struct SignerProcessService {
    repository: Arc<dyn SignerProcessRepository>,
    ids: Arc<dyn IdGenerator>,
    clock: Arc<dyn Clock>,
    machine: Arc<ResultStateMachine>,
    ttl: Duration,
    notifier: Option<Notifier>,
    group_commit: Option<GroupCommitQueue>,
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
        Self { repository, ids, clock, machine, ttl, notifier: None, group_commit: None }
    }

    /// The service writing a webhook notification (SPEC §11) with every state change: the
    /// outbox row is part of the change's transaction.
    #[must_use]
    pub fn with_webhooks(mut self) -> Self {
        self.notifier = Some(Notifier::new(Arc::clone(&self.ids)));
        self
    }

    /// The service with result requests (O5, O7) coalesced by a group commit (SPEC §8): the
    /// returned [`GroupCommit`] must be run (spawned once) for them to be answered. Only for a
    /// store whose [`crate::ports::TransitionStore::write_batch`] is one statement and one
    /// commit (PostgreSQL); SQLite keeps its single writer.
    #[must_use]
    pub fn with_group_commit(self, settings: GroupCommitSettings) -> (Self, GroupCommit) {
        let (queue, group) = GroupCommit::new(self.clone(), settings);
        (Self { group_commit: Some(queue), ..self }, group)
    }

    /// The group commit's counters, when it is on.
    #[must_use]
    pub fn group_commit_stats(&self) -> Option<&GroupCommitStats> {
        self.group_commit.as_ref().map(|q| &*q.stats)
    }

    /// The notification of a transition of `kind` deciding `change` on `snapshot`.
    fn transition_notification(
        &self,
        id: &ProcessId,
        kind: EventKind,
        snapshot: &ProcessSnapshot,
        change: &Change,
    ) -> Option<Notification> {
        let notifier = self.notifier.as_ref()?;
        let at = self.now();
        let documents: Vec<(&DocumentId, Option<&DocumentResult>)> = snapshot
            .documents
            .iter()
            .map(|d| {
                let set = change.document_results.iter().find(|(id, _)| *id == d.id).map(|(_, r)| r);
                (&d.id, set.or(d.result.as_ref()))
            })
            .collect();
        Some(match kind {
            EventKind::DocumentResult => {
                let (document, result) = change.document_results.first()?;
                notifier.notification(WebhookEventType::DocumentResult, id, at, None, Some((document, result)), &[])
            }
            EventKind::Expired => {
                notifier.notification(WebhookEventType::Expired, id, at, change.result.as_ref(), None, &documents)
            }
            _ => notifier.notification(WebhookEventType::Result, id, at, change.result.as_ref(), None, &documents),
        })
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
        documents: Vec<DocumentInput>,
        audit: &AuditContext,
    ) -> Result<SignerProcess, CreateProcessError> {
        if documents.is_empty() {
            return Err(CreateProcessError::NoDocument);
        }
        let now = self.now();
        let documents = documents
            .into_iter()
            .map(|input| match input {
                DocumentInput::Upload(upload) => ProcessDocumentSource::Upload(self.new_document(upload)),
                DocumentInput::Existing(id) => ProcessDocumentSource::Existing(id),
            })
            .collect();
        let process = NewSignerProcess {
            id: ProcessId::from_random(self.ids.random_160()),
            task_id: TaskId::from_random(self.ids.random_160()),
            owner: caller.client_id.clone(),
            request,
            documents,
            created_at: now,
            expires_at: now.checked_add(self.ttl).unwrap_or(time::PrimitiveDateTime::MAX.assume_utc()),
        };
        let notification = self.notifier.as_ref().map(|n| {
            let ids: Vec<&DocumentId> = process
                .documents
                .iter()
                .map(|d| match d {
                    ProcessDocumentSource::Upload(doc) => &doc.id,
                    ProcessDocumentSource::Existing(id) => id,
                })
                .collect();
            let documents: Vec<(&DocumentId, Option<&DocumentResult>)> = ids.into_iter().map(|d| (d, None)).collect();
            n.notification(WebhookEventType::Created, &process.id, now, None, None, &documents)
        });
        let staged = staged_contents(process.documents.iter().filter_map(|d| match d {
            ProcessDocumentSource::Upload(doc) => Some(&doc.content),
            ProcessDocumentSource::Existing(_) => None,
        }));
        let created = self.repository.create(process, audit, notification.as_ref()).await?;
        staged.iter().for_each(StagedContent::adopted);
        Ok(created)
    }

    /// A writer for the bytes of one uploaded document (O1, O8), which stages them in the store
    /// as they arrive ([`crate::content`]).
    #[must_use]
    pub fn upload_writer(&self) -> UploadWriter {
        UploadWriter::new(self.repository.clone(), self.ids.clone())
    }

    /// Opens the bytes of a document the caller may read (O10), for reading chunk by chunk
    /// ([`ContentReader`]).
    ///
    /// # Errors
    /// Storage errors. Unknown or foreign is `Ok(None)`.
    pub async fn open_document(
        &self,
        caller: &Caller,
        id: &DocumentId,
    ) -> Result<Option<ContentReader>, RepositoryError> {
        ContentReader::open(&self.repository, async || self.repository.document_content(id, caller).await).await
    }

    /// [`Self::open_document`] for the browser flow (the signing page's view), as the service
    /// itself; the caller checks that the document belongs to the task's process.
    ///
    /// # Errors
    /// Storage errors. Unknown is `Ok(None)`.
    pub async fn open_document_for_browser(&self, id: &DocumentId) -> Result<Option<ContentReader>, RepositoryError> {
        self.open_document(&self.browser_caller(), id).await
    }

    /// Removes staged upload bytes that no document adopted and that were begun more than
    /// `older_than` ago (a crash's leftovers); answers how many contents it removed.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn sweep_staged(&self, older_than: std::time::Duration) -> Result<u64, RepositoryError> {
        self.repository.sweep_staged(older_than).await
    }

    /// The whole bytes of a document the caller may read, for the work that needs them whole
    /// (signing, counting pages): read chunk by chunk; a content that a signature replaced
    /// while it was read is read again, from the new content.
    ///
    /// # Errors
    /// Storage errors; [`RepositoryError::Unavailable`] when the bytes keep changing while
    /// they are read. Unknown or foreign is `Ok(None)`.
    pub async fn document_bytes(
        &self,
        caller: &Caller,
        id: &DocumentId,
    ) -> Result<Option<(DocumentContent, Vec<u8>)>, RepositoryError> {
        const ATTEMPTS: usize = 3;
        for _ in 0..ATTEMPTS {
            let Some(mut reader) = self.open_document(caller, id).await? else { return Ok(None) };
            let mut bytes = Vec::with_capacity(usize::try_from(reader.content().size).unwrap_or(0));
            loop {
                match reader.next_chunks().await? {
                    Chunks::More(chunks) => chunks.iter().for_each(|c| bytes.extend_from_slice(c)),
                    Chunks::End => return Ok(Some((reader.content().clone(), bytes))),
                    Chunks::Changed => break,
                }
            }
        }
        Err(RepositoryError::Unavailable("the document's bytes changed while they were read".into()))
    }

    /// Stored timestamps have microsecond precision: answer what a later read answers.
    fn now(&self) -> time::OffsetDateTime {
        let now = self.clock.now();
        now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
    }

    fn new_document(&self, upload: DocumentUpload) -> NewDocument {
        NewDocument {
            id: DocumentId::from_random(self.ids.random_160()),
            media_type: sniff_media_type(&upload.head, upload.declared_type.as_deref()),
            filename: upload.filename.map(Text::into_string),
            sha256: upload.sha256,
            content: upload.content,
        }
    }

    /// O2 / O4 / O6: reads a process the caller may act on. A pending process found past its
    /// expiry is expired first (SPEC §4: materialised on read), by the service as actor.
    ///
    /// # Errors
    /// Storage errors; unknown or foreign is `Ok(None)`.
    pub async fn find(
        &self,
        caller: &Caller,
        id: &ProcessId,
        audit: &AuditContext,
    ) -> Result<Option<SignerProcess>, RepositoryError> {
        let found = self.repository.find(id, caller).await?;
        match found {
            Some(p) if p.result.is_none() && p.expires_at <= self.clock.now() => {
                self.expire(id, &system_audit(&audit.request_id)).await?;
                self.repository.find(id, caller).await
            }
            other => Ok(other),
        }
    }

    /// O12: reads any process by id, for the browser flow (no bearer token: the id in the
    /// task URL is the capability).
    ///
    /// # Errors
    /// Storage errors; unknown is `Ok(None)`.
    pub async fn find_for_browser(
        &self,
        id: &ProcessId,
        audit: &AuditContext,
    ) -> Result<Option<SignerProcess>, RepositoryError> {
        self.find(&self.browser_caller(), id, audit).await
    }

    /// The expiry sweeper's step: expires at most `limit` overdue pending processes.
    /// Safe to run on several replicas at once.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn expire_overdue(&self, limit: u32) -> Result<u64, RepositoryError> {
        let audit = system_audit("sweeper");
        let mut expired = 0;
        for id in self.repository.due_expiries(self.clock.now(), limit).await? {
            expired += u64::from(self.expire(&id, &audit).await?);
        }
        Ok(expired)
    }

    /// Materialises expiry of one process (SPEC §4) through the transition protocol, with the
    /// service as actor. Whether this call expired it (`false`: not due, already settled, or
    /// another replica expired it first).
    async fn expire(&self, id: &ProcessId, audit: &AuditContext) -> Result<bool, RepositoryError> {
        let system = Caller { client_id: audit.actor.clone(), trusted: true };
        let outcome = self
            .transition(id, &system, audit, |snapshot, now| {
                let change = self.machine.expire(snapshot, now).ok_or(Settled)?;
                Ok((Outcome::Established(change), (EventKind::Expired, None, expiry_result().status.as_str())))
            })
            .await;
        match outcome {
            Ok(Some(Outcome::Established(_))) => Ok(true),
            Ok(_) | Err(TransitionFailure::Refused(Settled)) => Ok(false),
            Err(TransitionFailure::Repository(e)) => Err(e),
        }
    }

    /// The transition protocol of SPEC §8, one code path for O5, O7 and expiry: load the
    /// versioned snapshot → `decide` on it at the clock's time → write the decided change with
    /// a compare-and-set on the version. A stale write (another transition committed first)
    /// decides again on a fresh snapshot, at most [`MAX_ATTEMPTS`] times in all. `None` for an
    /// unknown or foreign process.
    async fn transition<E>(
        &self,
        id: &ProcessId,
        caller: &Caller,
        audit: &AuditContext,
        decide: impl Fn(&ProcessSnapshot, time::OffsetDateTime) -> Result<(Outcome<Change>, EventOf), E>,
    ) -> Result<Option<Outcome<Change>>, TransitionFailure<E>> {
        self.transition_with(id, caller, audit, &[], None, decide).await
    }

    /// [`Self::transition`], writing with the change the `signed` contents of the documents it
    /// makes `finished` and `signing` in its event (the signing page's *Sign*).
    async fn transition_with<E>(
        &self,
        id: &ProcessId,
        caller: &Caller,
        audit: &AuditContext,
        signed: &[SignedContent],
        signing: Option<&SigningRecord>,
        decide: impl Fn(&ProcessSnapshot, time::OffsetDateTime) -> Result<(Outcome<Change>, EventOf), E>,
    ) -> Result<Option<Outcome<Change>>, TransitionFailure<E>> {
        let mut store = self.repository.transitions().await?;
        for _ in 0..MAX_ATTEMPTS {
            let Some(snapshot) = store.load(id, caller).await? else { return Ok(None) };
            let transition = match self.prepare(id, audit, &snapshot, signed, signing, &decide) {
                Ok(Prepared::Answer(outcome)) => return Ok(Some(outcome)),
                Ok(Prepared::Write(transition)) => *transition,
                Err(e) => return Err(TransitionFailure::Refused(e)),
            };
            match store.write(&transition).await? {
                WriteOutcome::Written => return Ok(Some(Outcome::Established(transition.change))),
                WriteOutcome::Stale => {}
            }
        }
        Err(TransitionFailure::Repository(RepositoryError::Unavailable(
            format!("process {id} changed under each of {MAX_ATTEMPTS} attempts to write a transition").into(),
        )))
    }

    /// One decision of the transition protocol: `decide` on `snapshot` at the clock's time,
    /// and, for an established change, the [`Transition`] to write (with the `signed` contents
    /// of the documents it makes `finished`, `signing` in its event, and its notification).
    pub(crate) fn prepare<E>(
        &self,
        id: &ProcessId,
        audit: &AuditContext,
        snapshot: &ProcessSnapshot,
        signed: &[SignedContent],
        signing: Option<&SigningRecord>,
        decide: impl Fn(&ProcessSnapshot, time::OffsetDateTime) -> Result<(Outcome<Change>, EventOf), E>,
    ) -> Result<Prepared, E> {
        let (outcome, (kind, document_id, new_status)) = decide(snapshot, self.clock.now())?;
        let Outcome::Established(change) = outcome else { return Ok(Prepared::Answer(outcome)) };
        let signed = signed
            .iter()
            .filter(|s| {
                change
                    .document_results
                    .iter()
                    .any(|(d, r)| *d == s.document && r.status == DocumentResultStatus::Finished)
            })
            .cloned()
            .collect();
        let notification = self.transition_notification(id, kind, snapshot, &change);
        Ok(Prepared::Write(Box::new(Transition {
            process: id.clone(),
            expected: snapshot.version,
            notification,
            change,
            event: TransitionEvent {
                kind,
                actor: audit.actor.clone(),
                request_id: audit.request_id.clone(),
                document_id,
                new_status,
                signing: signing.cloned(),
            },
            signed,
        })))
    }

    /// A result request (O5 or O7) through the group commit when it is on
    /// ([`Self::with_group_commit`]), else — and for a request the batch could not write —
    /// through [`Self::transition`].
    async fn establish(
        &self,
        id: &ProcessId,
        caller: &Caller,
        audit: &AuditContext,
        decide: Decide,
    ) -> Result<Option<Outcome<Change>>, EstablishResultError> {
        if let Some(group) = &self.group_commit {
            if let Some(answer) = group.submit(id, caller, audit, Arc::clone(&decide)).await {
                return answer;
            }
        }
        self.transition(id, caller, audit, |snapshot, now| decide(snapshot, now))
            .await
            .map_err(TransitionFailure::into_error)
    }

    /// O7: sets one document's result under the rules of the state machine.
    ///
    /// # Errors
    /// [`EstablishResultError::NotFound`] when the process is unknown or foreign or does not
    /// hold the document; [`EstablishResultError::Rule`] when the state machine refuses;
    /// storage errors. Nothing is written on any error.
    pub async fn set_document_result(
        &self,
        caller: &Caller,
        process: &ProcessId,
        document: &DocumentId,
        requested: DocumentResult,
        audit: &AuditContext,
    ) -> Result<Outcome<DocumentResult>, EstablishResultError> {
        let (machine, document, wanted) = (Arc::clone(&self.machine), document.clone(), requested.clone());
        let decide: Decide = Arc::new(move |snapshot, now| {
            let index =
                snapshot.documents.iter().position(|d| d.id == document).ok_or(EstablishResultError::NotFound)?;
            let request = Request::Document { index, result: &wanted };
            let outcome = machine.decide(snapshot, now, request).map_err(EstablishResultError::Rule)?;
            Ok((outcome, (EventKind::DocumentResult, Some(document.clone()), wanted.status.as_str())))
        });
        let outcome = self.establish(process, caller, audit, decide).await?;
        Ok(answer(outcome.ok_or(EstablishResultError::NotFound)?, requested))
    }

    /// O8: stores a document resource with its optional `signers` array.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn create_document(
        &self,
        caller: &Caller,
        upload: DocumentUpload,
        signers: Option<Value>,
    ) -> Result<StoredDocument, RepositoryError> {
        let document = NewStandaloneDocument {
            document: self.new_document(upload),
            owner: caller.client_id.clone(),
            signers,
            created_at: self.now(),
        };
        let staged = staged_contents([&document.document.content]);
        let created = self.repository.create_document(document).await?;
        staged.iter().for_each(StagedContent::adopted);
        Ok(created)
    }

    /// O9: a document resource.
    ///
    /// # Errors
    /// Storage errors; unknown or foreign is `Ok(None)`.
    pub async fn find_document(
        &self,
        caller: &Caller,
        id: &DocumentId,
    ) -> Result<Option<StoredDocument>, RepositoryError> {
        self.repository.find_document(id, caller).await
    }

    /// O11: deletes a document resource unless a process (pending or finished) holds it.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn delete_document(
        &self,
        caller: &Caller,
        id: &DocumentId,
    ) -> Result<DeleteDocumentOutcome, RepositoryError> {
        self.repository.delete_document(id, caller).await
    }

    /// O3: deletes a process and its documents.
    ///
    /// # Errors
    /// Storage errors; returns `false` for an unknown or foreign process.
    pub async fn delete(&self, caller: &Caller, id: &ProcessId, audit: &AuditContext) -> Result<bool, RepositoryError> {
        let notification =
            self.notifier.as_ref().map(|n| n.notification(WebhookEventType::Deleted, id, self.now(), None, None, &[]));
        self.repository.delete(id, caller, audit, notification.as_ref()).await
    }

    /// O5: establishes the result of a process under the rules of the state machine.
    ///
    /// # Errors
    /// [`EstablishResultError::NotFound`] for an unknown or foreign process,
    /// [`EstablishResultError::Rule`] when the state machine refuses, else
    /// [`EstablishResultError::Repository`]. Nothing is written on any error.
    pub async fn establish_result(
        &self,
        caller: &Caller,
        id: &ProcessId,
        requested: ProcessResult,
        audit: &AuditContext,
    ) -> Result<Outcome<ProcessResult>, EstablishResultError> {
        let (machine, wanted) = (Arc::clone(&self.machine), requested.clone());
        let decide: Decide = Arc::new(move |snapshot, now| {
            let outcome =
                machine.decide(snapshot, now, Request::Process(&wanted)).map_err(EstablishResultError::Rule)?;
            Ok((outcome, (EventKind::Result, None, wanted.status.as_str())))
        });
        let outcome = self.establish(id, caller, audit, decide).await?;
        Ok(answer(outcome.ok_or(EstablishResultError::NotFound)?, requested))
    }

    /// The signing page's *Sign* (SPEC §10): signs, with `signer`, every document of a
    /// pending process that has no result yet, then establishes in one transition the document
    /// results (`finished` for a signed document, whose signed bytes replace its content;
    /// `failed` with the reason for one that could not be signed) and the process result the
    /// rules give them (`finished`, `failed_documents` or `failed`), exactly as O7 and O5 would,
    /// with a [`SigningRecord`] in its audit event. No database connection is held while
    /// signing. A process that already has a result (or is past its expiry) is not signed
    /// again: its result is answered as [`Outcome::Replayed`], so a repeated or late POST
    /// changes nothing.
    ///
    /// # Errors
    /// [`EstablishResultError::NotFound`] for an unknown process, [`EstablishResultError::Rule`]
    /// when a custom rule refuses, storage errors. Nothing is written on any error.
    pub async fn sign_in_browser(
        &self,
        id: &ProcessId,
        signer: &dyn DocumentSigner,
        identity: Option<SignerIdentity>,
        audit: &AuditContext,
    ) -> Result<Outcome<ProcessResult>, EstablishResultError> {
        let system = self.browser_caller();
        let snapshot = {
            let mut store = self.repository.transitions().await?;
            store.load(id, &system).await?.ok_or(EstablishResultError::NotFound)?
        };
        let now = self.now();
        if snapshot.current_result(now).is_some() {
            return self.settled_in_browser(id, audit).await;
        }
        let request = SignatureRequest {
            time: now,
            signer_name: identity.as_ref().map(|i| i.display_name().to_owned()),
            reason: None,
            location: None,
        };
        let level = signer.level().as_str().to_owned();
        let (mut signed, mut results, mut records) = (Vec::new(), Vec::new(), Vec::new());
        for document in snapshot.documents.iter().filter(|d| d.result.is_none()) {
            let (_, content) =
                self.document_bytes(&system, &document.id).await?.ok_or(EstablishResultError::NotFound)?;
            let original_sha256 = sha256_hex(&content);
            let record = |signed_sha256, error| DocumentSigningRecord {
                document_id: document.id.as_str().to_owned(),
                level: level.clone(),
                original_sha256: original_sha256.clone(),
                signed_sha256,
                error,
            };
            match signer.sign(&content, &request).await {
                Ok(bytes) => {
                    let sha256 = sha256_hex(&bytes);
                    records.push(record(Some(sha256.clone()), None));
                    let content = ContentId::from_random(self.ids.random_160());
                    signed.push(SignedContent { document: document.id.clone(), content, bytes: bytes.into(), sha256 });
                    results.push((
                        document.id.clone(),
                        DocumentResult { status: DocumentResultStatus::Finished, message: None },
                    ));
                }
                Err(error) => {
                    let cause = std::error::Error::source(&error).map(ToString::to_string);
                    tracing::warn!(process_id = %id, document_id = %document.id, %error, cause, "a document could not be signed");
                    records.push(record(None, Some(error.to_string())));
                    let message = message(&error.to_string());
                    results
                        .push((document.id.clone(), DocumentResult { status: DocumentResultStatus::Failed, message }));
                }
            }
        }
        let record = SigningRecord { signer: identity, documents: records };
        let outcome = self
            .transition_with(id, &system, audit, &signed, Some(&record), |snapshot, now| {
                if let Some(current) = snapshot.current_result(now) {
                    return Ok((
                        Outcome::Replayed(Change { result: Some(current), ..Change::default() }),
                        (EventKind::Result, None, ""),
                    ));
                }
                let mut state = snapshot.clone();
                let mut change = Change::default();
                for (document, result) in &results {
                    let Some(index) = state.documents.iter().position(|d| d.id == *document && d.result.is_none())
                    else {
                        continue; // set meanwhile (O7): it keeps that result
                    };
                    let decided = self.machine.decide(&state, now, Request::Document { index, result });
                    if let Outcome::Established(c) = decided.map_err(EstablishResultError::Rule)? {
                        apply(&mut state, &c);
                        change.document_results.extend(c.document_results);
                    }
                }
                let process = signing_result(&state.documents);
                let decided =
                    self.machine.decide(&state, now, Request::Process(&process)).map_err(EstablishResultError::Rule)?;
                if let Outcome::Established(c) = decided {
                    change.result = c.result;
                    change.document_results.extend(c.document_results);
                }
                Ok((Outcome::Established(change), (EventKind::Result, None, process.status.as_str())))
            })
            .await
            .map_err(TransitionFailure::into_error)?;
        match outcome.ok_or(EstablishResultError::NotFound)? {
            Outcome::Established(change) => Ok(Outcome::Established(established(change)?)),
            Outcome::Replayed(change) => Ok(Outcome::Replayed(established(change)?)),
        }
    }

    /// The signing page's *Decline* (SPEC §10): establishes `canceled` with the message
    /// [`DECLINED_BY_THE_SIGNER`] as O5 would. A process that already has a result keeps it and
    /// it is answered as [`Outcome::Replayed`].
    ///
    /// # Errors
    /// [`EstablishResultError::NotFound`] for an unknown process, storage errors.
    pub async fn decline_in_browser(
        &self,
        id: &ProcessId,
        audit: &AuditContext,
    ) -> Result<Outcome<ProcessResult>, EstablishResultError> {
        let declined = ProcessResult { status: ResultStatus::Canceled, message: message(DECLINED_BY_THE_SIGNER) };
        match self.establish_result(&self.browser_caller(), id, declined, audit).await {
            Err(EstablishResultError::Rule(_)) => self.settled_in_browser(id, audit).await,
            other => other,
        }
    }

    /// The result a process already has (materialising its expiry), as a replay.
    async fn settled_in_browser(
        &self,
        id: &ProcessId,
        audit: &AuditContext,
    ) -> Result<Outcome<ProcessResult>, EstablishResultError> {
        let process = self.find_for_browser(id, audit).await?.ok_or(EstablishResultError::NotFound)?;
        let result = process.result.ok_or_else(|| {
            EstablishResultError::Repository(RepositoryError::Unexpected(format!("process {id} has no result").into()))
        })?;
        Ok(Outcome::Replayed(result))
    }

    /// A document's whole bytes for the browser flow (the signing page's page counts), read
    /// as the service itself, as [`Self::document_bytes`] reads them.
    ///
    /// # Errors
    /// As [`Self::document_bytes`].
    pub async fn document_bytes_for_browser(&self, id: &DocumentId) -> Result<Option<Vec<u8>>, RepositoryError> {
        Ok(self.document_bytes(&self.browser_caller(), id).await?.map(|(_, bytes)| bytes))
    }

    fn browser_caller(&self) -> Caller {
        Caller { client_id: system_audit("").actor, trusted: true }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::TextKind;

    fn name(s: &str) -> Text {
        Text::new(TextKind::FileName, s).expect("file name")
    }

    fn media(s: &str) -> Option<Text> {
        Some(Text::new(TextKind::MediaType, s).expect("media type"))
    }

    #[test]
    fn a_part_declared_a_pdf_must_hold_a_pdf() {
        let upload = |t, names, bytes: &[u8]| DocumentUpload::whole(t, names, bytes.to_vec());
        for (declared, names, declaration) in [
            (media("application/pdf"), vec![], PdfDeclaration::MediaType),
            (media("Application/PDF; x=y"), vec![name("a.txt")], PdfDeclaration::MediaType),
            (None, vec![name("Contract.PDF")], PdfDeclaration::FileName),
            (media("application/octet-stream"), vec![name("a.bin"), name("a.pdf")], PdfDeclaration::FileName),
        ] {
            assert_eq!(
                upload(declared.clone(), names.clone(), b"PK\x03\x04"),
                Err(InvalidUpload::NotAPdf(declaration))
            );
            assert!(upload(declared, names, b"%PDF-1.7\n").is_ok(), "a PDF is accepted");
        }
        for (declared, names) in [
            (media("text/plain"), vec![name("notes.txt")]),
            (None, vec![name("a.pdf.txt")]),
            (None, vec![name(".pdf")]),
            (None, vec![]),
        ] {
            let ok = upload(declared, names.clone(), b"plain").expect("not declared a PDF");
            assert_eq!(ok.filename(), names.first().map(Text::as_str), "the first name is stored");
        }
        assert_eq!(upload(None, vec![], b""), Err(InvalidUpload::Empty));
    }

    /// A store that plays the transition protocol in memory: `stale_writes` writes answer
    /// `Stale` first, each after another writer "committed" `interloper` (a document result).
    struct Scripted {
        snapshot: std::sync::Mutex<ProcessSnapshot>,
        stale_writes: std::sync::Mutex<usize>,
        loads: std::sync::atomic::AtomicUsize,
        written: std::sync::Mutex<Vec<Transition>>,
        /// Staged contents and their chunk counts.
        staged: Arc<std::sync::Mutex<std::collections::BTreeMap<ContentId, u32>>>,
    }

    #[async_trait::async_trait]
    impl crate::ports::TransitionStore for &Scripted {
        async fn load(&mut self, _: &ProcessId, _: &Caller) -> Result<Option<ProcessSnapshot>, RepositoryError> {
            self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Some(self.snapshot.lock().expect("snapshot").clone()))
        }

        async fn write(&mut self, transition: &Transition) -> Result<WriteOutcome, RepositoryError> {
            let mut snapshot = self.snapshot.lock().expect("snapshot");
            let mut stale = self.stale_writes.lock().expect("stale");
            if *stale > 0 || transition.expected != snapshot.version {
                *stale = stale.saturating_sub(1);
                // Another writer sets the first document without a result, and commits.
                if let Some(d) = snapshot.documents.iter_mut().find(|d| d.result.is_none()) {
                    d.result = Some(DocumentResult { status: crate::DocumentResultStatus::Failed, message: None });
                }
                snapshot.version.0 += 1;
                return Ok(WriteOutcome::Stale);
            }
            snapshot.version.0 += 1;
            snapshot.result = transition.change.result.clone().or(snapshot.result.take());
            self.written.lock().expect("written").push(transition.clone());
            Ok(WriteOutcome::Written)
        }

        async fn load_batch(
            &mut self,
            requests: &[(&ProcessId, &Caller)],
        ) -> Result<Vec<Option<ProcessSnapshot>>, RepositoryError> {
            let mut snapshots = Vec::new();
            for (id, caller) in requests {
                snapshots.push(self.load(id, caller).await?);
            }
            Ok(snapshots)
        }

        async fn write_batch(&mut self, transitions: &[Transition]) -> Result<Vec<WriteOutcome>, RepositoryError> {
            let mut outcomes = Vec::new();
            for transition in transitions {
                outcomes.push(self.write(transition).await?);
            }
            Ok(outcomes)
        }
    }

    fn unused() -> RepositoryError {
        RepositoryError::Unexpected("not part of the transition protocol".into())
    }

    #[async_trait::async_trait]
    impl SignerProcessRepository for Scripted {
        async fn create(
            &self,
            _: NewSignerProcess,
            _: &AuditContext,
            _: Option<&Notification>,
        ) -> Result<SignerProcess, CreateError> {
            Err(unused().into())
        }
        async fn find(&self, _: &ProcessId, _: &Caller) -> Result<Option<SignerProcess>, RepositoryError> {
            Err(unused())
        }
        async fn delete(
            &self,
            _: &ProcessId,
            _: &Caller,
            _: &AuditContext,
            _: Option<&Notification>,
        ) -> Result<bool, RepositoryError> {
            Err(unused())
        }
        async fn transitions(&self) -> Result<Box<dyn crate::ports::TransitionStore + '_>, RepositoryError> {
            Ok(Box::new(self))
        }
        async fn due_expiries(&self, _: time::OffsetDateTime, _: u32) -> Result<Vec<ProcessId>, RepositoryError> {
            Ok(vec![ProcessId::from_random([1; 20])])
        }
        async fn create_document(&self, _: NewStandaloneDocument) -> Result<StoredDocument, RepositoryError> {
            Err(unused())
        }
        async fn find_document(&self, _: &DocumentId, _: &Caller) -> Result<Option<StoredDocument>, RepositoryError> {
            Err(unused())
        }
        async fn delete_document(&self, _: &DocumentId, _: &Caller) -> Result<DeleteDocumentOutcome, RepositoryError> {
            Err(unused())
        }
        async fn document_content(
            &self,
            _: &DocumentId,
            _: &Caller,
        ) -> Result<Option<DocumentContent>, RepositoryError> {
            Err(unused())
        }
        async fn stage_chunk(&self, content: &ContentId, _: u32, _: &[u8]) -> Result<(), RepositoryError> {
            // As a database does with a statement it was sent: the write lands 50 ms later,
            // whether or not its caller still waits for the answer.
            let (staged, content) = (self.staged.clone(), content.clone());
            let landing = tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                *staged.lock().expect("staged").entry(content).or_default() += 1;
            });
            landing.await.map_err(|e| RepositoryError::Unexpected(e.into()))
        }
        async fn discard_staged(&self, content: &ContentId) -> Result<(), RepositoryError> {
            self.staged.lock().expect("staged").remove(content);
            Ok(())
        }
        async fn sweep_staged(&self, _: std::time::Duration) -> Result<u64, RepositoryError> {
            Err(unused())
        }
        async fn content_chunks(&self, _: &ContentId, _: u32, _: u32) -> Result<Vec<Vec<u8>>, RepositoryError> {
            Err(unused())
        }
        async fn events(&self, _: &ProcessId, _: &Caller) -> Result<Option<Vec<AuditEvent>>, RepositoryError> {
            Err(unused())
        }
        async fn ping(&self) -> Result<(), RepositoryError> {
            Ok(())
        }
    }

    struct Fixed(time::OffsetDateTime);
    impl Clock for Fixed {
        fn now(&self) -> time::OffsetDateTime {
            self.0
        }
    }
    struct Counter;
    impl IdGenerator for Counter {
        fn random_160(&self) -> [u8; 20] {
            [2; 20]
        }
    }

    fn scripted(
        documents: u8,
        stale_writes: usize,
        expires_in: time::Duration,
    ) -> (Arc<Scripted>, SignerProcessService) {
        let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let store = Arc::new(Scripted {
            snapshot: std::sync::Mutex::new(ProcessSnapshot {
                version: crate::rules::Version(7),
                result: None,
                documents: (0..documents)
                    .map(|n| crate::rules::DocumentState { id: DocumentId::from_random([n; 20]), result: None })
                    .collect(),
                expires_at: now + expires_in,
            }),
            stale_writes: std::sync::Mutex::new(stale_writes),
            loads: std::sync::atomic::AtomicUsize::new(0),
            written: std::sync::Mutex::new(Vec::new()),
            staged: Arc::default(),
        });
        let service = SignerProcessService::new(
            store.clone(),
            Arc::new(Counter),
            Arc::new(Fixed(now)),
            Arc::new(ResultStateMachine::default()),
            time::Duration::hours(1),
        );
        (store, service)
    }

    fn app() -> (Caller, AuditContext) {
        let id = ClientId::parse("app").expect("client id");
        (Caller { client_id: id.clone(), trusted: false }, AuditContext { actor: id, request_id: "r".to_owned() })
    }

    #[tokio::test]
    async fn a_chunk_write_that_lands_after_its_request_gave_up_is_discarded_too() {
        let (store, service) = scripted(1, 0, time::Duration::hours(1));
        for chunks_before in [0, 2] {
            let mut writer = service.upload_writer();
            // A full buffer after `chunks_before` staged chunks: the next byte stages it.
            writer.write(&vec![b'%'; (chunks_before + 1) * crate::content::CHUNK_BYTES]).await.expect("staged");
            let given_up = tokio::time::timeout(std::time::Duration::from_millis(10), writer.write(b"more")).await;
            assert!(given_up.is_err(), "the chunk's write is still on its way");
            drop(writer); // the request is given up (its client went away, its body timed out)
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            assert!(store.staged.lock().expect("staged").is_empty(), "{chunks_before}: the late write is discarded");
        }
    }

    #[tokio::test]
    async fn a_stale_write_is_decided_again_on_what_the_other_writer_left() {
        let (store, service) = scripted(2, 1, time::Duration::hours(1));
        let (caller, audit) = app();
        let finished = ProcessResult { status: crate::ResultStatus::Finished, message: None };
        let err = service
            .establish_result(&caller, &ProcessId::from_random([1; 20]), finished, &audit)
            .await
            .expect_err("the other writer failed a document: finished now conflicts");
        assert!(matches!(err, EstablishResultError::Rule(ref v) if v.rule == "finished"), "{err:?}");
        assert_eq!(store.loads.load(std::sync::atomic::Ordering::SeqCst), 2, "loaded again after the stale write");
        assert!(store.written.lock().expect("written").is_empty());

        let (store, service) = scripted(2, 1, time::Duration::hours(1));
        let canceled = ProcessResult { status: crate::ResultStatus::Canceled, message: None };
        let outcome = service
            .establish_result(&caller, &ProcessId::from_random([1; 20]), canceled.clone(), &audit)
            .await
            .expect("canceled still fits");
        assert_eq!(outcome, Outcome::Established(canceled));
        let written = store.written.lock().expect("written");
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].expected, crate::rules::Version(8), "decided on the fresh snapshot's version");
        assert_eq!(written[0].change.document_results.len(), 1, "only the document still without a result");
        assert_eq!(written[0].event.kind, EventKind::Result);
    }

    #[tokio::test]
    async fn the_protocol_gives_up_with_unavailable_after_max_attempts_stale_writes() {
        let (store, service) = scripted(0, usize::MAX, time::Duration::hours(1));
        let (caller, audit) = app();
        let canceled = ProcessResult { status: crate::ResultStatus::Canceled, message: None };
        let err = service
            .establish_result(&caller, &ProcessId::from_random([1; 20]), canceled, &audit)
            .await
            .expect_err("stale");
        assert!(matches!(err, EstablishResultError::Repository(RepositoryError::Unavailable(_))), "{err:?}");
        assert_eq!(store.loads.load(std::sync::atomic::Ordering::SeqCst), MAX_ATTEMPTS);
    }

    #[tokio::test]
    async fn the_sweeper_expires_through_the_same_protocol_as_the_service() {
        let (store, service) = scripted(2, 0, -time::Duration::seconds(1));
        assert_eq!(service.expire_overdue(10).await.expect("sweep"), 1);
        let written = store.written.lock().expect("written").clone();
        assert_eq!(written[0].event.kind, EventKind::Expired);
        assert_eq!(written[0].event.actor.as_str(), SYSTEM_ACTOR);
        assert_eq!(written[0].change.result, Some(crate::rules::expiry_result()));
        assert!(written[0].change.document_results.iter().all(|(_, r)| *r == crate::rules::expiry_document_result()));
        assert_eq!(service.expire_overdue(10).await.expect("sweep"), 0, "a settled process is not expired again");
    }
}
