//! The repository conformance suite: every behaviour the service relies on, run from the
//! same test code against PostgreSQL (a fresh database per test) and against SQLite (a fresh
//! file per test).

use std::sync::Arc;

use esignsp_adapters::postgres::PoolSettings;
use esignsp_adapters::store::Store;
use esignsp_adapters::system::OsRandomIds;
use esignsp_domain::content::{NewContent, CHUNK_BYTES};
use esignsp_domain::events::{AuditContext, EventKind};
use esignsp_domain::group_commit::GroupCommitSettings;
use esignsp_domain::ports::{
    Clock, DeleteDocumentOutcome, EstablishResultError, SignedContent, SignerProcessRepository, Transition,
    TransitionEvent, WriteOutcome,
};
use esignsp_domain::process::{
    validate_signers, InvalidProcess, NewDocument, NewSignerProcess, NewStandaloneDocument, ProcessDocumentSource,
    ProcessRequest,
};
use esignsp_domain::rules::{expiry_document_result, CurrentResult};
use esignsp_domain::rules::{Change, Version};
use esignsp_domain::service::{DocumentInput, DocumentUpload};
use esignsp_domain::text::{Text, TextDefect, TextKind};
use esignsp_domain::webhooks::{
    Attempt, AttemptRecord, DeliveryStatus, Disabled, EventTypes, NewWebhookEndpoint, Notifier, WebhookEndpoint,
    WebhookEventType, WebhookSecret,
};
use esignsp_domain::EndpointId;
use esignsp_domain::{
    Caller, ClientId, DocumentId, DocumentResult, DocumentResultStatus, ProcessId, ProcessResult, ResultMessage,
    ResultStateMachine, ResultStatus, TaskId,
};
use esignsp_domain::{Outcome, SignerProcessService};
use serde_json::json;
use time::OffsetDateTime;

/// A store under test with raw SQL access for what the port does not show.
struct Backend {
    store: Store,
    repo: Arc<dyn SignerProcessRepository>,
    /// The domain service over `repo` with the default rules, on `clock`.
    service: SignerProcessService,
    clock: Arc<TestClock>,
}

/// The system clock, or a time a test sets.
#[derive(Debug, Default)]
struct TestClock(std::sync::Mutex<Option<OffsetDateTime>>);

impl TestClock {
    fn set(&self, at: OffsetDateTime) {
        *self.0.lock().expect("clock") = Some(at);
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        self.0.lock().expect("clock").unwrap_or_else(OffsetDateTime::now_utc)
    }
}

impl Backend {
    async fn postgres() -> Self {
        Self::open(&esignsp_testkit::fresh_database().await).await
    }

    async fn sqlite() -> Self {
        let dir = std::env::temp_dir()
            .join(format!("esignsp-conformance-{}", esignsp_testkit::hex(&rand::random::<[u8; 8]>())));
        Self::open(&format!("sqlite://{}/esignsp.db", dir.display())).await
    }

    async fn open(url: &str) -> Self {
        let store = Store::connect_lazy(
            url,
            &PoolSettings {
                max_connections: 40,
                acquire_timeout: std::time::Duration::from_secs(20),
                statement_timeout: std::time::Duration::from_secs(10),
                transaction_pooling: false,
            },
        )
        .expect("store");
        store.migrate().await.expect("migrate");
        let repo = store.repository();
        let clock = Arc::new(TestClock::default());
        let service = SignerProcessService::new(
            repo.clone(),
            Arc::new(OsRandomIds),
            clock.clone(),
            Arc::new(ResultStateMachine::default()),
            time::Duration::hours(1),
        );
        Self { store, repo, service, clock }
    }

    /// Runs one statement of standard SQL; the error text when the database refuses it.
    async fn execute(&self, sql: &str) -> Result<u64, String> {
        match &self.store {
            Store::Postgres(r) => sqlx::query(sql).execute(r.pool()).await.map(|d| d.rows_affected()),
            Store::Sqlite(r) => sqlx::query(sql).execute(r.pool()).await.map(|d| d.rows_affected()),
        }
        .map_err(|e| e.to_string())
    }

    async fn text(&self, sql: &str) -> Option<String> {
        match &self.store {
            Store::Postgres(r) => sqlx::query_scalar(sql).fetch_one(r.pool()).await,
            Store::Sqlite(r) => sqlx::query_scalar(sql).fetch_one(r.pool()).await,
        }
        .expect("text")
    }

    async fn count(&self, sql: &str) -> i64 {
        match &self.store {
            Store::Postgres(r) => sqlx::query_scalar(sql).fetch_one(r.pool()).await,
            Store::Sqlite(r) => sqlx::query_scalar(sql).fetch_one(r.pool()).await,
        }
        .expect("count")
    }
}

fn caller(id: &str) -> Caller {
    Caller { client_id: ClientId::parse(id).expect("client id"), trusted: false }
}

fn audit(id: &str) -> AuditContext {
    AuditContext { actor: ClientId::parse(id).expect("client id"), request_id: "req-1".to_owned() }
}

fn new_document(i: usize) -> NewDocument {
    NewDocument {
        id: DocumentId::from_random(rand::random()),
        media_type: "application/pdf".to_owned(),
        filename: Some(format!("{i}.pdf")),
        sha256: "00".repeat(32),
        content: NewContent::Inline(format!("%PDF-1.7 document {i}").into_bytes()),
    }
}

fn upload_whole(bytes: &[u8]) -> DocumentUpload {
    DocumentUpload::whole(None, vec![], bytes.to_vec()).expect("a valid upload")
}

fn new_process(owner: &str, documents: usize) -> NewSignerProcess {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).expect("valid");
    NewSignerProcess {
        id: ProcessId::from_random(rand::random()),
        task_id: TaskId::from_random(rand::random()),
        owner: ClientId::parse(owner).expect("owner"),
        request: ProcessRequest::parse(
            json!({"process_type": "urn:safelayer:eidas:processes:document:sign:esigp", "labels": [["x"]]}),
        )
        .expect("request"),
        documents: (0..documents).map(|i| ProcessDocumentSource::Upload(new_document(i))).collect(),
        created_at: now,
        expires_at: now + time::Duration::hours(1),
    }
}

fn result(status: ResultStatus, message: Option<&str>) -> ProcessResult {
    ProcessResult { status, message: message.map(|m| ResultMessage::new(m).expect("message")) }
}

async fn events(b: &Backend, id: &ProcessId) -> i64 {
    b.count(&format!("SELECT count(*) FROM process_events WHERE process_id = '{id}'")).await
}

async fn a_created_process_reads_back_as_stored(b: Backend) {
    let new = new_process("app", 2);
    let created = b.repo.create(new.clone(), &audit("app"), None).await.expect("create");
    let read = b.repo.find(&created.id, &caller("app")).await.expect("find").expect("exists");
    assert_eq!(read, created, "what create answers is what find reads");
    assert_eq!(read.request.members()["labels"], json!([["x"]]));
    assert_eq!(read.created_at, new.created_at);
    let (content, bytes) =
        b.service.document_bytes(&caller("app"), &created.documents[1].id).await.expect("content").expect("exists");
    assert_eq!((content.media_type.as_str(), content.size), ("application/pdf", 19));
    assert_eq!(bytes, b"%PDF-1.7 document 1");
}

/// `n` bytes of a PDF-looking document whose every 64 KiB chunk differs.
fn large_document(n: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..n - bytes.len()).map(|i| u8::try_from((i / 7 + i / CHUNK_BYTES) % 251).expect("a byte")));
    bytes
}

/// Writes `bytes` through an upload writer in pieces of `piece` bytes, as a body arrives.
async fn staged_upload(b: &Backend, bytes: &[u8], piece: usize) -> DocumentUpload {
    let mut writer = b.service.upload_writer();
    for part in bytes.chunks(piece) {
        writer.write(part).await.expect("stage");
    }
    assert_eq!(writer.size(), bytes.len() as u64);
    writer.finish(None, vec![]).await.expect("staged").expect("a valid upload")
}

async fn staged(b: &Backend) -> i64 {
    b.count("SELECT count(*) FROM document_contents WHERE document_id IS NULL").await
}

async fn chunks(b: &Backend) -> i64 {
    b.count("SELECT count(*) FROM document_chunks").await
}

/// Polls `staged` until it is `n` (a discard runs in a task of its own).
async fn until_staged(b: &Backend, n: i64) {
    for _ in 0..100 {
        if staged(b).await == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(staged(b).await, n, "staged contents");
}

async fn large_uploads_are_staged_as_they_arrive_and_adopted_by_their_creation(b: Backend) {
    let bytes = large_document(3 * CHUNK_BYTES + 1000);
    let upload = staged_upload(&b, &bytes, 10_000).await;
    let NewContent::Staged(content) = upload.content() else { panic!("a large upload is staged") };
    assert_eq!((content.chunks(), content.size()), (4, bytes.len() as u64));
    assert_eq!(upload.sha256(), esignsp_domain::service::sha256_hex(&bytes), "digest computed on the way");
    assert_eq!((staged(&b).await, chunks(&b).await), (1, 4), "in the store before the creation, chunk by chunk");
    let small = upload_whole(b"%PDF-1.7 small");
    assert!(matches!(small.content(), NewContent::Inline(_)), "one chunk or less stays inline");
    let request = new_process("app", 0).request;
    let created = b
        .service
        .create(
            &caller("app"),
            request,
            vec![DocumentInput::Upload(upload), DocumentInput::Upload(small)],
            &audit("app"),
        )
        .await
        .expect("create");
    assert_eq!(created.documents[0].size, bytes.len() as u64);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(staged(&b).await, 0, "adopted, so not staged any more");
    assert_eq!(chunks(&b).await, 5, "and kept: nothing discarded");
    let (content, read) =
        b.service.document_bytes(&caller("app"), &created.documents[0].id).await.expect("read").expect("found");
    assert_eq!((content.size, read.len()), (bytes.len() as u64, bytes.len()));
    assert!(read == bytes, "the bytes read back chunk by chunk are the bytes uploaded");
    let pages = [
        b.repo.content_chunks(&content.content, 0, 2).await.expect("page"),
        b.repo.content_chunks(&content.content, 2, 2).await.expect("page"),
        b.repo.content_chunks(&content.content, 4, 2).await.expect("page"),
    ];
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 0], "pages in order, none past the end");
    assert_eq!(pages[1][1].len(), 1000, "the last chunk is the rest");
    assert!(b.service.document_bytes(&caller("other"), &created.documents[0].id).await.expect("read").is_none());

    // O8 adopts a staged upload the same way.
    let bytes = large_document(CHUNK_BYTES + 1);
    let stored = b.service.create_document(&caller("app"), staged_upload(&b, &bytes, CHUNK_BYTES).await, None).await;
    let stored = stored.expect("create document");
    let (_, read) = b.service.document_bytes(&caller("app"), &stored.id).await.expect("read").expect("found");
    assert!(read == bytes && stored.size == bytes.len() as u64, "O8 reads back what was staged");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(staged(&b).await, 0);
    // Deleting the document takes its content and chunks with it.
    let deleted = b.repo.delete_document(&stored.id, &caller("app")).await.expect("delete");
    assert_eq!(deleted, DeleteDocumentOutcome::Deleted);
    assert_eq!(chunks(&b).await, 5, "the deleted document's chunks are gone, the others stay");
}

async fn a_refused_upload_leaves_nothing_staged(b: Backend) {
    // Given up while it arrives (a limit, a malformed body, a lost client): the writer is dropped.
    let mut writer = b.service.upload_writer();
    writer.write(&large_document(3 * CHUNK_BYTES)).await.expect("stage");
    assert_eq!(staged(&b).await, 1, "staged while it arrives");
    drop(writer);
    until_staged(&b, 0).await;
    assert_eq!(chunks(&b).await, 0, "its chunks go with it");

    // Received whole, then its creation is refused (an unknown document referenced beside it).
    let upload = staged_upload(&b, &large_document(2 * CHUNK_BYTES + 5), 4096).await;
    assert_eq!(staged(&b).await, 1);
    let refused = b
        .service
        .create(
            &caller("app"),
            new_process("app", 0).request,
            vec![DocumentInput::Upload(upload), DocumentInput::Existing(DocumentId::from_random(rand::random()))],
            &audit("app"),
        )
        .await;
    assert!(refused.is_err(), "an unknown document refuses the creation");
    until_staged(&b, 0).await;
    assert_eq!((chunks(&b).await, b.count("SELECT count(*) FROM documents").await), (0, 0), "nothing stored");

    // Staged bytes a crash left behind go with the sweep, once old enough; adopted ones never.
    let created = b.repo.create(new_process("app", 1), &audit("app"), None).await.expect("create");
    let orphan = esignsp_domain::ContentId::from_random(rand::random());
    b.repo.stage_chunk(&orphan, 0, b"%PDF-").await.expect("stage");
    b.repo.stage_chunk(&orphan, 1, b"1.7").await.expect("stage");
    assert_eq!(b.repo.sweep_staged(std::time::Duration::from_secs(3600)).await.expect("sweep"), 0, "too young");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(b.repo.sweep_staged(std::time::Duration::from_millis(1)).await.expect("sweep"), 1, "old enough");
    assert_eq!((staged(&b).await, chunks(&b).await), (0, 1), "the process's document keeps its one chunk");
    assert!(b.service.document_bytes(&caller("app"), &created.documents[0].id).await.expect("read").is_some());
    b.repo.discard_staged(&orphan).await.expect("discarding what is gone is no error");
}

async fn signed_bytes_replace_a_documents_content_as_a_new_content(b: Backend) {
    let created = b.repo.create(new_process("app", 1), &audit("app"), None).await.expect("create");
    let document = &created.documents[0].id;
    let (before, _) = b.service.document_bytes(&caller("app"), document).await.expect("read").expect("found");
    let signed_bytes = large_document(2 * CHUNK_BYTES + 10);
    let mut transition = finished_transition(&created.id, Version(0), document);
    transition.signed = vec![SignedContent {
        document: document.clone(),
        content: esignsp_domain::ContentId::from_random(rand::random()),
        bytes: signed_bytes.clone().into(),
        sha256: esignsp_domain::service::sha256_hex(&signed_bytes),
    }];
    let mut store = b.repo.transitions().await.expect("unit of work");
    assert_eq!(store.write(&transition).await.expect("write"), WriteOutcome::Written);
    drop(store);
    let (after, read) = b.service.document_bytes(&caller("app"), document).await.expect("read").expect("found");
    assert_ne!(after.content, before.content, "a new content");
    assert!(read == signed_bytes && after.size == signed_bytes.len() as u64, "the signed bytes, in chunks");
    assert!(b.repo.content_chunks(&before.content, 0, 4).await.expect("read").is_empty(), "the old content is gone");
    assert_eq!(chunks(&b).await, 3, "the old chunk went with its content");
    let stale = b.repo.transitions().await.expect("unit of work").write(&transition).await.expect("write");
    assert_eq!(stale, WriteOutcome::Stale);
    assert_eq!(chunks(&b).await, 3, "a stale write stores no bytes");
}

async fn establishing_a_result_writes_result_derived_documents_and_one_event_together(b: Backend) {
    let created = b.repo.create(new_process("app", 2), &audit("app"), None).await.expect("create");
    let outcome = b
        .service
        .establish_result(&caller("app"), &created.id, result(ResultStatus::Finished, Some("ok")), &audit("app"))
        .await
        .expect("establish");
    assert_eq!(outcome, Outcome::Established(result(ResultStatus::Finished, Some("ok"))));
    let stored = b.repo.find(&created.id, &caller("app")).await.expect("find").expect("exists");
    assert_eq!(stored.result, Some(result(ResultStatus::Finished, Some("ok"))));
    assert!(
        stored.documents.iter().all(|d| d.result.as_ref().map(|r| r.status) == Some(DocumentResultStatus::Finished)),
        "documents without a result became finished"
    );
    let trail = b.repo.events(&created.id, &caller("app")).await.expect("events").expect("exists");
    assert_eq!(trail.iter().map(|e| e.kind).collect::<Vec<_>>(), [EventKind::Created, EventKind::Result]);
    assert_eq!((trail[1].actor.as_str(), trail[1].new_status.as_deref()), ("app", Some("finished")));

    let replay = b
        .service
        .establish_result(&caller("app"), &created.id, result(ResultStatus::Finished, Some("ok")), &audit("app"))
        .await
        .expect("replay");
    assert!(matches!(replay, Outcome::Replayed(_)));
    assert_eq!(events(&b, &created.id).await, 2, "a replay writes nothing");
}

async fn a_refused_transition_writes_nothing(b: Backend) {
    let created = b.repo.create(new_process("app", 1), &audit("app"), None).await.expect("create");
    let err = b
        .service
        .establish_result(&caller("app"), &created.id, result(ResultStatus::FailedDocuments, None), &audit("app"))
        .await
        .expect_err("one document cannot be failed_documents");
    assert!(matches!(err, EstablishResultError::Rule(ref v) if v.rule == "failed_documents"), "{err:?}");
    let id = &created.id;
    assert_eq!(
        b.count(&format!("SELECT count(*) FROM signer_processes WHERE id = '{id}' AND result_status IS NULL")).await,
        1
    );
    assert_eq!(
        b.count(&format!(
            "SELECT count(*) FROM process_documents WHERE process_id = '{id}' AND result_status IS NOT NULL"
        ))
        .await,
        0
    );
    assert_eq!(events(&b, id).await, 1);
}

async fn concurrent_conflicting_results_have_exactly_one_winner(b: Backend) {
    let created = b.repo.create(new_process("app", 2), &audit("app"), None).await.expect("create");
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let (service, id) = (b.service.clone(), created.id.clone());
            tokio::spawn(async move {
                let requested = result(ResultStatus::ALL[i % 4], Some(&format!("attempt {i}")));
                service.establish_result(&caller("app"), &id, requested.clone(), &audit("app")).await.map(|_| requested)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(r) => winners.push(r),
            Err(EstablishResultError::Rule(v)) => assert_eq!(v.rule, "terminal"),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner");
    let stored = b.repo.find(&created.id, &caller("app")).await.expect("find").expect("exists");
    assert_eq!(stored.result.as_ref(), winners.first());
    let id = &created.id;
    assert_eq!(
        b.count(&format!("SELECT count(*) FROM process_events WHERE process_id = '{id}' AND kind = 'result'")).await,
        1
    );
}

async fn document_results_follow_the_rules_and_are_audited(b: Backend) {
    let created = b.repo.create(new_process("app", 2), &audit("app"), None).await.expect("create");
    let (first, second) = (created.documents[0].id.clone(), created.documents[1].id.clone());
    let set = |doc: DocumentId, status| {
        let (service, id) = (b.service.clone(), created.id.clone());
        async move {
            service
                .set_document_result(&caller("app"), &id, &doc, DocumentResult { status, message: None }, &audit("app"))
                .await
        }
    };
    assert!(matches!(set(first.clone(), DocumentResultStatus::Finished).await, Ok(Outcome::Established(_))));
    assert!(matches!(set(first.clone(), DocumentResultStatus::Finished).await, Ok(Outcome::Replayed(_))));
    assert!(
        matches!(set(first.clone(), DocumentResultStatus::Failed).await, Err(EstablishResultError::Rule(ref v)) if v.rule == "terminal")
    );
    let unknown = DocumentId::from_random([7; 20]);
    assert!(matches!(set(unknown, DocumentResultStatus::Failed).await, Err(EstablishResultError::NotFound)));
    let err = b
        .service
        .establish_result(&caller("app"), &created.id, result(ResultStatus::Canceled, None), &audit("app"))
        .await
        .expect_err("a finished document forbids canceled");
    assert!(matches!(err, EstablishResultError::Rule(ref v) if v.rule == "failed/canceled"));
    b.service
        .establish_result(&caller("app"), &created.id, result(ResultStatus::FailedDocuments, None), &audit("app"))
        .await
        .expect("failed_documents");
    assert!(
        matches!(set(second, DocumentResultStatus::Failed).await, Err(EstablishResultError::Rule(ref v)) if v.rule == "documents frozen")
    );
    let trail = b.repo.events(&created.id, &caller("app")).await.expect("events").expect("exists");
    assert_eq!(
        trail.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EventKind::Created, EventKind::DocumentResult, EventKind::Result]
    );
    assert_eq!(trail[1].document_id.as_ref(), Some(&first));
}

async fn another_clients_process_is_invisible_and_untouchable(b: Backend) {
    let created = b.repo.create(new_process("owner", 1), &audit("owner"), None).await.expect("create");
    let intruder = caller("intruder");
    assert!(b.repo.find(&created.id, &intruder).await.expect("find").is_none());
    assert!(b.repo.events(&created.id, &intruder).await.expect("events").is_none());
    assert!(b.repo.document_content(&created.documents[0].id, &intruder).await.expect("content").is_none());
    let err = b
        .service
        .establish_result(&intruder, &created.id, result(ResultStatus::Canceled, None), &audit("intruder"))
        .await
        .expect_err("foreign");
    assert!(matches!(err, EstablishResultError::NotFound));
    assert!(!b.repo.delete(&created.id, &intruder, &audit("intruder"), None).await.expect("delete"));
    let trusted = Caller { client_id: ClientId::parse("signing-app").expect("id"), trusted: true };
    assert!(b.repo.find(&created.id, &trusted).await.expect("find").is_some(), "trusted clients see every process");
}

async fn deleting_a_process_removes_its_documents_and_bytes_but_keeps_the_audit_trail(b: Backend) {
    let created = b.repo.create(new_process("app", 2), &audit("app"), None).await.expect("create");
    assert!(b.repo.delete(&created.id, &caller("app"), &audit("app"), None).await.expect("delete"));
    assert!(b.repo.find(&created.id, &caller("app")).await.expect("find").is_none());
    assert_eq!(b.count("SELECT count(*) FROM document_contents").await, 0);
    assert_eq!(b.count("SELECT count(*) FROM documents").await, 0);
    let id = &created.id;
    assert_eq!(
        b.count(&format!("SELECT count(*) FROM process_events WHERE process_id = '{id}' AND kind = 'deleted'")).await,
        1
    );
    assert_eq!(events(&b, id).await, 2);
}

async fn the_audit_trail_cannot_be_updated_or_deleted(b: Backend) {
    let created = b.repo.create(new_process("app", 1), &audit("app"), None).await.expect("create");
    for sql in ["UPDATE process_events SET actor = 'x'", "DELETE FROM process_events"] {
        let err = b.execute(sql).await.expect_err(sql);
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(events(&b, &created.id).await, 1);
}

async fn expiry_refuses_late_results_and_materialises_once(b: Backend) {
    let mut process = new_process("app", 2);
    process.expires_at = process.created_at + time::Duration::seconds(1);
    let created = b.repo.create(process, &audit("app"), None).await.expect("create");
    let later = created.expires_at + time::Duration::seconds(1);
    b.clock.set(later);
    let err = b
        .service
        .establish_result(&caller("app"), &created.id, result(ResultStatus::Finished, None), &audit("app"))
        .await
        .expect_err("expired");
    assert!(matches!(err, EstablishResultError::Rule(ref v) if v.rule == "expiry"), "{err:?}");
    let expired = Some(CurrentResult::Process(result(ResultStatus::Canceled, Some("expired"))));
    assert!(matches!(err, EstablishResultError::Rule(ref v) if v.current_result == expired), "{err:?}");
    b.clock.set(created.created_at);
    assert_eq!(b.service.expire_overdue(10).await.expect("not yet"), 0);
    b.clock.set(later);
    let (a, c) = tokio::join!(b.service.expire_overdue(10), b.service.expire_overdue(10));
    assert_eq!(a.expect("sweep") + c.expect("sweep"), 1, "two concurrent sweeps expire it once");
    let stored = b.repo.find(&created.id, &caller("app")).await.expect("find").expect("exists");
    assert_eq!(stored.result, Some(result(ResultStatus::Canceled, Some("expired"))));
    assert!(stored.documents.iter().all(|d| d.result == Some(expiry_document_result())), "{stored:?}");
    let err = b
        .service
        .establish_result(&caller("app"), &created.id, result(ResultStatus::Finished, None), &audit("app"))
        .await
        .expect_err("materialised");
    assert!(matches!(err, EstablishResultError::Rule(ref v) if v.current_result == expired), "{err:?}");
    let id = &created.id;
    assert_eq!(
        b.count(&format!("SELECT count(*) FROM process_events WHERE process_id = '{id}' AND kind = 'expired'")).await,
        1
    );
}

async fn document_resources_are_owned_shared_and_guarded(b: Backend) {
    let stored = b
        .repo
        .create_document(NewStandaloneDocument {
            document: new_document(9),
            owner: ClientId::parse("app").expect("id"),
            signers: Some(json!([{"page": "1"}])),
            created_at: OffsetDateTime::now_utc().replace_nanosecond(0).expect("valid"),
        })
        .await
        .expect("create document");
    assert_eq!(b.repo.find_document(&stored.id, &caller("app")).await.expect("find"), Some(stored.clone()));
    assert_eq!(b.repo.find_document(&stored.id, &caller("other")).await.expect("find"), None);

    let mut foreign = new_process("other", 0);
    foreign.documents = vec![ProcessDocumentSource::Existing(stored.id.clone())];
    assert!(matches!(
        b.repo.create(foreign, &audit("other"), None).await,
        Err(esignsp_domain::CreateError::UnknownDocument(_))
    ));
    let mut twice = new_process("app", 0);
    twice.documents =
        vec![ProcessDocumentSource::Existing(stored.id.clone()), ProcessDocumentSource::Existing(stored.id.clone())];
    assert!(matches!(
        b.repo.create(twice, &audit("app"), None).await,
        Err(esignsp_domain::CreateError::DuplicateDocument(_))
    ));
    assert_eq!(b.count("SELECT count(*) FROM signer_processes").await, 0, "refused creations store nothing");

    let mut using = new_process("app", 0);
    using.documents = vec![ProcessDocumentSource::Existing(stored.id.clone())];
    let process = b.repo.create(using, &audit("app"), None).await.expect("create from an existing document");
    assert_eq!(process.documents[0].id, stored.id);
    assert_eq!(
        b.repo.delete_document(&stored.id, &caller("other")).await.expect("delete"),
        DeleteDocumentOutcome::NotFound
    );
    assert_eq!(b.repo.delete_document(&stored.id, &caller("app")).await.expect("delete"), DeleteDocumentOutcome::InUse);
    b.service
        .establish_result(&caller("app"), &process.id, result(ResultStatus::Finished, None), &audit("app"))
        .await
        .expect("finish");
    assert_eq!(
        b.repo.delete_document(&stored.id, &caller("app")).await.expect("delete"),
        DeleteDocumentOutcome::InUse,
        "a finished process keeps its record whole"
    );
    let after = b.repo.find(&process.id, &caller("app")).await.expect("find").expect("exists");
    assert_eq!(after.documents.iter().map(|d| &d.id).collect::<Vec<_>>(), [&stored.id]);
    assert!(b.repo.document_content(&stored.id, &caller("app")).await.expect("content").is_some(), "bytes kept");
    let id = &stored.id;
    let raw = b.execute(&format!("DELETE FROM documents WHERE id = '{id}'")).await;
    assert!(raw.is_err(), "the schema refuses it too: {raw:?}");
    assert!(b.repo.delete(&process.id, &caller("app"), &audit("app"), None).await.expect("delete process"));
    assert_eq!(b.repo.find_document(&stored.id, &caller("app")).await.expect("find"), None, "gone with its process");
}

/// Texts at the edges of the boundary rule (SPEC §2): NUL, control and non-character code
/// points, surrogate-free extremes, lengths at and one over the limits, SQL-looking text.
fn edge_texts() -> Vec<String> {
    [
        "plain",
        "a\0b",
        "\0",
        "\u{1}\u{9}\u{a}\u{d}\u{1f}\u{7f}\u{80}\u{9f}",
        "\u{feff}byte-order mark",
        "\u{fffd}\u{fffe}\u{ffff}\u{10ffff}",
        "\u{202e}right-to-left",
        "'; DROP TABLE documents; --",
        "back\\slash \"quoted\" 100% _under_",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain(["😀".repeat(1024), "😀".repeat(1025), "é".repeat(4096), "é".repeat(4097), "x".repeat(65_537)])
    .collect()
}

async fn every_text_the_boundary_accepts_is_stored_unchanged_and_no_other_reaches_the_store(b: Backend) {
    let owner = ClientId::parse("app").expect("id");
    let created_at = OffsetDateTime::now_utc().replace_nanosecond(0).expect("valid");
    for s in edge_texts() {
        let why = format!("{:?}", s.chars().take(12).collect::<String>());
        let refused = |defect: TextDefect| {
            assert!(
                matches!(defect, TextDefect::Nul if s.contains('\0'))
                    || matches!(defect, TextDefect::TooLong { max_chars } if s.chars().count() > max_chars),
                "{why}: refused only for NUL or length, not {defect:?}"
            );
        };

        // File names and signers of a document resource (O8).
        let signers = json!([{"name": s, s.clone(): [s]}]);
        match (Text::new(TextKind::FileName, s.clone()), validate_signers(&signers)) {
            (Ok(name), Ok(())) => {
                let mut document = new_document(0);
                document.filename = Some(name.into_string());
                let stored = b
                    .repo
                    .create_document(NewStandaloneDocument {
                        document,
                        owner: owner.clone(),
                        signers: Some(signers.clone()),
                        created_at,
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{why}: an accepted text is stored: {e:?}"));
                let read = b.repo.find_document(&stored.id, &caller("app")).await.expect("find").expect("exists");
                assert_eq!(read.signers.as_ref(), Some(&signers), "{why}: signers unchanged");
                let id = &stored.id;
                let filename = b.text(&format!("SELECT filename FROM documents WHERE id = '{id}'")).await;
                assert_eq!(filename.as_deref(), Some(s.as_str()), "{why}: file name unchanged");
            }
            (Err(defect), _) => refused(defect),
            (_, Err(InvalidProcess::Text(invalid))) => refused(invalid.defect),
            (_, Err(other)) => panic!("{why}: {other:?}"),
        }

        // Every stored member of the process JSON, nested values and keys (O1), and a result
        // message (O5).
        let process = json!({
            "process_type": "urn:safelayer:eidas:processes:document:sign:esigp",
            "labels": [[s]],
            "signer": {"parameters": {s.clone(): {"page": s}}},
            "ui_locales": [s],
            "views": {"ui": [s]},
        });
        match ProcessRequest::parse(process) {
            Ok(request) => {
                let mut new = new_process("app", 1);
                new.request = request.clone();
                let created = b.repo.create(new, &audit("app"), None).await.unwrap_or_else(|e| panic!("{why}: {e:?}"));
                let read = b.repo.find(&created.id, &caller("app")).await.expect("find").expect("exists");
                assert_eq!(read.request, request, "{why}: process JSON unchanged");
                match ResultMessage::new(s.clone()) {
                    Ok(message) => {
                        let requested = ProcessResult { status: ResultStatus::Canceled, message: Some(message) };
                        b.service
                            .establish_result(&caller("app"), &created.id, requested.clone(), &audit("app"))
                            .await
                            .unwrap_or_else(|e| panic!("{why}: {e:?}"));
                        let read = b.repo.find(&created.id, &caller("app")).await.expect("find").expect("exists");
                        assert_eq!(read.result, Some(requested), "{why}: message unchanged");
                    }
                    Err(defect) => refused(defect),
                }
            }
            Err(InvalidProcess::Text(invalid)) => refused(invalid.defect),
            Err(other) => panic!("{why}: {other:?}"),
        }
    }
}

async fn an_unreachable_database_is_reported_as_unavailable(b: Backend) {
    drop(b);
    let repository = esignsp_adapters::postgres::connect_lazy(
        "postgres://postgres@127.0.0.1:1/none",
        &PoolSettings {
            max_connections: 1,
            acquire_timeout: std::time::Duration::from_millis(500),
            statement_timeout: std::time::Duration::from_secs(10),
            transaction_pooling: false,
        },
    )
    .expect("pool");
    let err = repository.ping().await.expect_err("nothing listens on port 1");
    assert!(matches!(err, esignsp_domain::RepositoryError::Unavailable(_)), "{err:?}");
}

fn endpoint(owner: &str, events: &[WebhookEventType]) -> NewWebhookEndpoint {
    NewWebhookEndpoint {
        endpoint: WebhookEndpoint {
            id: EndpointId::from_random(rand::random()),
            owner: ClientId::parse(owner).expect("client id"),
            url: "https://hooks.example.com/esignsp".to_owned(),
            description: None,
            events: EventTypes::of(events),
            created_at: OffsetDateTime::now_utc().replace_nanosecond(0).expect("time"),
            previous_secret_expires_at: None,
            failing_since: None,
            disabled: None,
        },
        secret: WebhookSecret::from_random(rand::random()),
    }
}

/// SPEC §11's transactional outbox: each change writes one delivery per enabled endpoint of
/// the process's owner subscribed to its event type, in its own transaction — and a refused
/// or stale transition none; claimed deliveries are leased (not claimed again meanwhile) and
/// their attempts recorded.
async fn the_outbox_is_written_with_each_change_and_never_for_a_refused_or_stale_one(b: Backend) {
    let webhooks = b.store.webhooks();
    let all = endpoint("app", &WebhookEventType::ALL);
    let documents_only = endpoint("app", &[WebhookEventType::DocumentResult]);
    let foreign = endpoint("other", &WebhookEventType::ALL);
    for e in [&all, &documents_only, &foreign] {
        assert!(webhooks.create_endpoint(e, 16).await.expect("endpoint"));
    }
    assert!(!webhooks.create_endpoint(&endpoint("app", &WebhookEventType::ALL), 2).await.expect("limit"), "limit");
    let notifier = Notifier::new(Arc::new(OsRandomIds));
    let now = OffsetDateTime::now_utc();
    let process = new_process("app", 1);
    let created_note = notifier.notification(WebhookEventType::Created, &process.id, now, None, None, &[]);
    let created = b.repo.create(process, &audit("app"), Some(&created_note)).await.expect("create");
    let id = &created.id;
    let deliveries =
        |endpoint: &EndpointId| format!("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = '{endpoint}'");
    assert_eq!(b.count(&deliveries(&all.endpoint.id)).await, 1, "created → the endpoint of all events");
    assert_eq!(b.count(&deliveries(&documents_only.endpoint.id)).await, 0, "not subscribed");
    assert_eq!(b.count(&deliveries(&foreign.endpoint.id)).await, 0, "another tenant's endpoint");

    let service = b.service.clone().with_webhooks();
    let snapshot =
        b.repo.transitions().await.expect("store").load(id, &caller("app")).await.expect("load").expect("exists");
    service
        .establish_result(&caller("app"), id, result(ResultStatus::Finished, Some("ok")), &audit("app"))
        .await
        .expect("result");
    assert_eq!(b.count(&deliveries(&all.endpoint.id)).await, 2, "result → one more");
    let payload = b
        .text(&format!(
            "SELECT payload FROM webhook_deliveries WHERE endpoint_id = '{}' AND event_type = 'signer_process.result'",
            all.endpoint.id
        ))
        .await
        .expect("payload");
    let payload: serde_json::Value = serde_json::from_str(&payload).expect("JSON");
    assert_eq!(payload["type"], "signer_process.result");
    assert_eq!(payload["data"]["signer_process_id"], id.as_str());
    assert_eq!(payload["data"]["result"], json!({"status": "finished", "details": {"message": "ok"}}));
    assert_eq!(payload["data"]["documents"][0]["result"]["status"], "finished", "derived document result");

    let refused =
        service.establish_result(&caller("app"), id, result(ResultStatus::Canceled, None), &audit("app")).await;
    assert!(matches!(refused, Err(EstablishResultError::Rule(_))), "{refused:?}");
    let replayed =
        service.establish_result(&caller("app"), id, result(ResultStatus::Finished, Some("ok")), &audit("app")).await;
    assert!(matches!(replayed, Ok(Outcome::Replayed(_))), "{replayed:?}");
    let mut stale = finished_transition(id, snapshot.version, &created.documents[0].id);
    stale.notification = Some(notifier.notification(WebhookEventType::Result, id, now, None, None, &[]));
    let mut store = b.repo.transitions().await.expect("store");
    assert_eq!(store.write(&stale).await.expect("write"), WriteOutcome::Stale);
    drop(store);
    assert_eq!(b.count(&deliveries(&all.endpoint.id)).await, 2, "nothing for a refused, replayed or stale change");

    let lease = now + time::Duration::minutes(1);
    let claimed = webhooks.claim_due(OffsetDateTime::now_utc(), lease, 10, &[]).await.expect("claim");
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    assert!(claimed.iter().all(|c| c.attempt == 1 && c.secrets == [all.secret.clone()]));
    assert!(webhooks.claim_due(OffsetDateTime::now_utc(), lease, 10, &[]).await.expect("claim").is_empty(), "leased");
    let first = &claimed[0];
    let at = OffsetDateTime::now_utc();
    let record = AttemptRecord {
        delivery: first.id,
        endpoint: first.endpoint.clone(),
        attempt: Attempt {
            attempt: 1,
            at,
            duration_ms: 3,
            response_status: Some(500),
            response_body: Some("down".to_owned()),
            error: Some("HTTP 500".to_owned()),
        },
        status: DeliveryStatus::Pending,
        next_attempt_at: Some(at),
    };
    let since = webhooks.record_attempt(&record).await.expect("record").expect("failing");
    assert!((since - at).abs() < time::Duration::milliseconds(1), "the streak starts at the failure");
    let busy = [all.endpoint.id.clone()];
    let skipped = webhooks.claim_due(OffsetDateTime::now_utc(), lease, 10, &busy).await.expect("claim");
    assert!(skipped.is_empty(), "a busy endpoint's deliveries are left to later: {skipped:?}");
    let again = webhooks.claim_due(OffsetDateTime::now_utc(), lease, 10, &[]).await.expect("claim");
    assert_eq!(again.iter().map(|c| (c.id, c.attempt)).collect::<Vec<_>>(), [(first.id, 2)], "retried once due");
    let success = AttemptRecord {
        attempt: Attempt { attempt: 2, response_status: Some(204), error: None, ..record.attempt.clone() },
        status: DeliveryStatus::Delivered,
        next_attempt_at: None,
        ..record
    };
    assert_eq!(webhooks.record_attempt(&success).await.expect("record"), None, "a success ends the streak");
    let log = webhooks
        .deliveries(&all.endpoint.id, &ClientId::parse("app").expect("id"), 100)
        .await
        .expect("log")
        .expect("endpoint");
    let logged = log.iter().find(|d| d.id == first.id).expect("listed");
    assert_eq!((logged.status, logged.attempts.len()), (DeliveryStatus::Delivered, 2));
    assert_eq!(logged.attempts[0].response_body.as_deref(), Some("down"));
    assert!(
        webhooks
            .deliveries(&all.endpoint.id, &ClientId::parse("other").expect("id"), 100)
            .await
            .expect("log")
            .is_none(),
        "tenant"
    );

    let hour = time::Duration::hours(1);
    assert_eq!(webhooks.purge_settled(OffsetDateTime::now_utc() - hour, 100).await.expect("purge"), 0, "too young");
    assert_eq!(webhooks.purge_settled(OffsetDateTime::now_utc() + hour, 100).await.expect("purge"), 1, "settled only");
    assert_eq!(b.count(&deliveries(&all.endpoint.id)).await, 1, "the pending one stays");
    webhooks.disable_endpoint(&all.endpoint.id, &Disabled { at, reason: "test".to_owned() }).await.expect("disable");
    assert!(b
        .repo
        .delete(
            id,
            &caller("app"),
            &audit("app"),
            Some(&notifier.notification(WebhookEventType::Deleted, id, now, None, None, &[]))
        )
        .await
        .expect("delete"));
    assert_eq!(b.count(&deliveries(&all.endpoint.id)).await, 1, "a disabled endpoint gets nothing new");
    assert!(webhooks.delete_endpoint(&all.endpoint.id, &ClientId::parse("app").expect("id")).await.expect("delete"));
    assert_eq!(b.count("SELECT count(*) FROM webhook_attempts").await, 0, "attempts go with their endpoint");
}

/// Concurrent registrations keep to the endpoint limit (PostgreSQL: an advisory lock per
/// client; SQLite: one writer).
async fn concurrent_registrations_keep_to_the_endpoint_limit(b: Backend) {
    let webhooks = b.store.webhooks();
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let webhooks = webhooks.clone();
            tokio::spawn(async move { webhooks.create_endpoint(&endpoint("app", &WebhookEventType::ALL), 16).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        created += usize::from(task.await.expect("task").expect("create"));
    }
    assert_eq!(created, 16);
    assert_eq!(b.count("SELECT count(*) FROM webhook_endpoints WHERE client_id = 'app'").await, 16);
}

/// Two replicas' workers claiming at once never claim the same delivery (PostgreSQL:
/// `FOR UPDATE SKIP LOCKED`; SQLite: one writer).
async fn concurrent_claims_never_share_a_delivery(b: Backend) {
    let webhooks = b.store.webhooks();
    let e = endpoint("app", &WebhookEventType::ALL);
    assert!(webhooks.create_endpoint(&e, 16).await.expect("endpoint"));
    let notifier = Notifier::new(Arc::new(OsRandomIds));
    for _ in 0..40 {
        let process = new_process("app", 1);
        let note =
            notifier.notification(WebhookEventType::Created, &process.id, OffsetDateTime::now_utc(), None, None, &[]);
        b.repo.create(process, &audit("app"), Some(&note)).await.expect("create");
    }
    let lease = OffsetDateTime::now_utc() + time::Duration::minutes(1);
    let claims: Vec<_> = (0..8)
        .map(|_| {
            let webhooks = webhooks.clone();
            tokio::spawn(
                async move { webhooks.claim_due(OffsetDateTime::now_utc(), lease, 7, &[]).await.expect("claim") },
            )
        })
        .collect();
    let mut ids = Vec::new();
    for claim in claims {
        ids.extend(claim.await.expect("task").into_iter().map(|c| c.id));
    }
    let claimed = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((claimed, ids.len()), (40, 40), "every delivery claimed exactly once");
}

/// Instantiates every test of the suite for one back end.
fn finished_transition(id: &ProcessId, expected: Version, document: &DocumentId) -> Transition {
    let signed = DocumentResult { status: DocumentResultStatus::Finished, message: None };
    Transition {
        process: id.clone(),
        expected,
        change: Change {
            result: Some(result(ResultStatus::Finished, Some("ok"))),
            document_results: vec![(document.clone(), signed)],
        },
        event: TransitionEvent {
            kind: EventKind::Result,
            actor: ClientId::parse("app").expect("client id"),
            request_id: "req-cas".to_owned(),
            document_id: None,
            new_status: "finished",
            signing: None,
        },
        signed: Vec::new(),
        notification: None,
    }
}

async fn a_transition_is_written_whole_and_only_on_the_version_it_was_decided_on(b: Backend) {
    let created = b.repo.create(new_process("app", 2), &audit("app"), None).await.expect("create");
    let mut store = b.repo.transitions().await.expect("unit of work");
    assert_eq!(store.load(&created.id, &caller("other")).await.expect("load"), None, "another tenant's is unknown");
    let snapshot = store.load(&created.id, &caller("app")).await.expect("load").expect("exists");
    assert_eq!(snapshot.result, None);
    assert_eq!(snapshot.expires_at, created.expires_at);
    assert_eq!(
        snapshot.documents.iter().map(|d| (&d.id, &d.result)).collect::<Vec<_>>(),
        created.documents.iter().map(|d| (&d.id, &None)).collect::<Vec<_>>()
    );
    let transition = finished_transition(&created.id, snapshot.version, &created.documents[0].id);
    assert_eq!(store.write(&transition).await.expect("write"), WriteOutcome::Written);
    assert_eq!(store.write(&transition).await.expect("write"), WriteOutcome::Stale, "the version moved on");
    assert_eq!(events(&b, &created.id).await, 2, "a stale write appends no event");
    let after = store.load(&created.id, &caller("app")).await.expect("load").expect("exists");
    assert!(after.version > snapshot.version, "a written transition advances the version");
    assert_eq!(after.result, Some(result(ResultStatus::Finished, Some("ok"))));
    let statuses: Vec<_> = after.documents.iter().map(|d| d.result.as_ref().map(|r| r.status)).collect();
    assert_eq!(statuses, [Some(DocumentResultStatus::Finished), None], "only the listed document result");
    let trail = b.repo.events(&created.id, &caller("app")).await.expect("events").expect("exists");
    assert_eq!((trail[1].kind, trail[1].request_id.as_str()), (EventKind::Result, "req-cas"));
    let gone = finished_transition(&ProcessId::from_random([9; 20]), Version(0), &created.documents[0].id);
    assert_eq!(store.write(&gone).await.expect("write"), WriteOutcome::Stale, "an unknown process is stale");
}

async fn many_document_results_at_once_on_one_process_are_all_written(b: Backend) {
    let created = b.repo.create(new_process("app", 6), &audit("app"), None).await.expect("create");
    let tasks: Vec<_> = created
        .documents
        .iter()
        .map(|d| {
            let (service, id, doc) = (b.service.clone(), created.id.clone(), d.id.clone());
            tokio::spawn(async move {
                let failed = DocumentResult { status: DocumentResultStatus::Failed, message: None };
                service.set_document_result(&caller("app"), &id, &doc, failed, &audit("app")).await
            })
        })
        .collect();
    for task in tasks {
        let outcome = task.await.expect("task").expect("each document result is written");
        assert!(matches!(outcome, Outcome::Established(_)), "{outcome:?}");
    }
    let id = &created.id;
    assert_eq!(
        b.count(&format!(
            "SELECT count(*) FROM process_documents WHERE process_id = '{id}' AND result_status = 'failed'"
        ))
        .await,
        6
    );
}

/// The group commit's port (SPEC §8): a batch load answers each request's snapshot for its
/// own caller, in order; a batch write applies each transition on its own version — a stale
/// one is skipped, the others written with their document results, events and outbox rows.
async fn a_batch_is_loaded_per_caller_and_written_per_version(b: Backend) {
    let webhooks = b.store.webhooks();
    let hook = endpoint("app", &WebhookEventType::ALL);
    assert!(webhooks.create_endpoint(&hook, 16).await.expect("endpoint"));
    let first = b.repo.create(new_process("app", 2), &audit("app"), None).await.expect("create");
    let second = b.repo.create(new_process("app", 1), &audit("app"), None).await.expect("create");
    let foreign = b.repo.create(new_process("other", 1), &audit("other"), None).await.expect("create");
    let unknown = ProcessId::from_random(rand::random());
    let trusted = Caller { trusted: true, ..caller("auditor") };
    let (app, other) = (caller("app"), caller("other"));
    let mut store = b.repo.transitions().await.expect("unit of work");
    let snapshots = store
        .load_batch(&[
            (&first.id, &app),
            (&foreign.id, &app),
            (&unknown, &app),
            (&second.id, &app),
            (&foreign.id, &other),
            (&first.id, &trusted),
        ])
        .await
        .expect("batch load");
    let visible: Vec<bool> = snapshots.iter().map(Option::is_some).collect();
    assert_eq!(visible, [true, false, false, true, true, true], "each request for its own caller");
    let first_snapshot = snapshots[0].clone().expect("first");
    assert_eq!(Some(&first_snapshot), snapshots[5].as_ref(), "the same snapshot for any caller that sees it");
    assert_eq!(first_snapshot.documents.len(), 2);
    assert_eq!(snapshots[3].as_ref().expect("second").documents[0].id, second.documents[0].id, "in request order");

    let notifier = Notifier::new(Arc::new(OsRandomIds));
    let mut written = finished_transition(&first.id, first_snapshot.version, &first.documents[1].id);
    written.notification =
        Some(notifier.notification(WebhookEventType::Result, &first.id, OffsetDateTime::now_utc(), None, None, &[]));
    let stale_version = Version(snapshots[3].as_ref().expect("second").version.0 + 1);
    let stale = finished_transition(&second.id, stale_version, &second.documents[0].id);
    let mut foreign_written =
        finished_transition(&foreign.id, snapshots[4].as_ref().expect("foreign").version, &foreign.documents[0].id);
    foreign_written.change.result = Some(result(ResultStatus::Failed, None));
    let outcomes = store.write_batch(&[written, stale, foreign_written]).await.expect("batch write");
    assert_eq!(outcomes, [WriteOutcome::Written, WriteOutcome::Stale, WriteOutcome::Written]);
    let after = store.load_batch(&[(&first.id, &app), (&second.id, &app), (&foreign.id, &other)]).await.expect("load");
    let [Some(first_after), Some(second_after), Some(foreign_after)] = &after[..] else { panic!("{after:?}") };
    assert_eq!(first_after.result, Some(result(ResultStatus::Finished, Some("ok"))));
    let statuses: Vec<_> = first_after.documents.iter().map(|d| d.result.as_ref().map(|r| r.status)).collect();
    assert_eq!(statuses, [None, Some(DocumentResultStatus::Finished)], "its own document result only");
    assert!(first_after.version > first_snapshot.version, "the version advanced");
    assert_eq!(second_after.result, None, "the stale transition wrote nothing");
    assert_eq!(second_after.version, snapshots[3].as_ref().expect("second").version);
    assert_eq!(foreign_after.result, Some(result(ResultStatus::Failed, None)), "each its own result");
    assert_eq!((events(&b, &first.id).await, events(&b, &second.id).await, events(&b, &foreign.id).await), (2, 1, 2));
    let id = &first.id;
    assert_eq!(
        b.count(&format!("SELECT count(*) FROM webhook_deliveries WHERE process_id = '{id}'")).await,
        1,
        "the notification of the written transition, for the owner's endpoint"
    );
    assert_eq!(b.count("SELECT count(*) FROM webhook_deliveries").await, 1, "none for the others");
    assert_eq!(store.write_batch(&[]).await.expect("empty batch"), [], "an empty batch writes nothing");
}

/// Group commit end to end: many concurrent conflicting and identical result requests, and
/// document results of one process, through [`SignerProcessService::with_group_commit`] —
/// each process has exactly one winner and one event, a replay is answered as one, the rest
/// are refused, and document results of the same process all land (the second of a process
/// in a batch decides again on its own).
async fn the_group_commit_answers_each_request_as_alone(b: Backend) {
    group_commit_scenario(&b, GroupCommitSettings::default()).await;
    // Concurrent batches (lanes) on overlapping processes: never a deadlock, never an error.
    let lanes = std::num::NonZeroUsize::new(4).expect("positive");
    group_commit_scenario(&b, GroupCommitSettings { lanes, ..GroupCommitSettings::default() }).await;
}

async fn group_commit_scenario(b: &Backend, settings: GroupCommitSettings) {
    let (service, group) = b.service.clone().with_group_commit(settings);
    let mut processes = Vec::new();
    for _ in 0..20 {
        processes.push(b.repo.create(new_process("app", 2), &audit("app"), None).await.expect("create").id);
    }
    let unknown = ProcessId::from_random(rand::random());
    let mut tasks = Vec::new();
    for (p, id) in processes.iter().enumerate() {
        for i in 0..6 {
            let (service, id) = (service.clone(), id.clone());
            // Three ask for the same result (one wins, two replay it unless a conflicting one
            // won), three for another each.
            let requested = if i < 3 {
                result(ResultStatus::Finished, Some("same"))
            } else {
                result(ResultStatus::ALL[i % 4], Some(&format!("attempt {p} {i}")))
            };
            tasks.push(tokio::spawn(async move {
                (
                    id.clone(),
                    requested.clone(),
                    service.establish_result(&caller("app"), &id, requested, &audit("app")).await,
                )
            }));
        }
    }
    // The requests queue before the task runs, so its first batches are full ones.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let runner = tokio::spawn(group.run());
    let (other, app, audited) = (caller("other"), caller("app"), audit("other"));
    let foreign = service.establish_result(&other, &processes[0], result(ResultStatus::Failed, None), &audited);
    assert!(matches!(foreign.await, Err(EstablishResultError::NotFound)), "another tenant's process is unknown");
    let missing = service.establish_result(&app, &unknown, result(ResultStatus::Failed, None), &audited);
    assert!(matches!(missing.await, Err(EstablishResultError::NotFound)));
    let mut established = std::collections::HashMap::new();
    for task in tasks {
        let (id, requested, answer) = task.await.expect("task");
        match answer {
            Ok(Outcome::Established(r)) => {
                assert_eq!(r, requested);
                assert!(established.insert(id, r).is_none(), "one winner per process");
            }
            Ok(Outcome::Replayed(r)) => assert_eq!(r, requested),
            Err(EstablishResultError::Rule(v)) => assert_eq!(v.rule, "terminal"),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(established.len(), processes.len(), "every process has its winner");
    for id in &processes {
        let stored = b.repo.find(id, &caller("app")).await.expect("find").expect("exists");
        assert_eq!(stored.result.as_ref(), established.get(id), "the winner's result is stored");
        assert_eq!(
            b.count(&format!("SELECT count(*) FROM process_events WHERE process_id = '{id}' AND kind = 'result'"))
                .await,
            1
        );
    }
    let created = b.repo.create(new_process("app", 6), &audit("app"), None).await.expect("create");
    let documents: Vec<_> = created
        .documents
        .iter()
        .map(|d| {
            let (service, id, doc) = (service.clone(), created.id.clone(), d.id.clone());
            tokio::spawn(async move {
                let failed = DocumentResult { status: DocumentResultStatus::Failed, message: None };
                service.set_document_result(&caller("app"), &id, &doc, failed, &audit("app")).await
            })
        })
        .collect();
    for task in documents {
        let outcome = task.await.expect("task").expect("each document result is written");
        assert!(matches!(outcome, Outcome::Established(_)), "{outcome:?}");
    }
    let id = &created.id;
    assert_eq!(
        b.count(&format!("SELECT count(*) FROM process_events WHERE process_id = '{id}' AND kind = 'document_result'"))
            .await,
        6
    );
    let stats = service.group_commit_stats().expect("on");
    assert!(stats.batches() > 0 && stats.requests() > stats.batches(), "requests were batched");
    drop(service);
    runner.await.expect("the group commit ends with the last service");
}

/// A process row another transaction holds locked neither holds up its batch nor fails it
/// (PostgreSQL `SKIP LOCKED`): the batch writes the others at once and reports it stale; its
/// request, through the group commit, decides again on its own and waits for the lock as it
/// would alone, while requests on other processes go on being answered.
async fn a_locked_process_holds_up_neither_its_batch_nor_other_requests(b: Backend) {
    let Store::Postgres(pg) = &b.store else { unreachable!("PostgreSQL only") };
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(b.repo.create(new_process("app", 1), &audit("app"), None).await.expect("create"));
    }
    let mut holder = pg.pool().begin().await.expect("begin");
    sqlx::query("SELECT id FROM signer_processes WHERE id = $1 FOR UPDATE")
        .bind(ids[1].id.as_str())
        .execute(&mut *holder)
        .await
        .expect("lock");
    let app = caller("app");
    let mut store = b.repo.transitions().await.expect("unit of work");
    let keys: Vec<_> = ids.iter().map(|p| (&p.id, &app)).collect();
    let snapshots = store.load_batch(&keys).await.expect("a plain read waits for no lock");
    let transitions: Vec<_> = ids
        .iter()
        .zip(&snapshots)
        .map(|(p, s)| finished_transition(&p.id, s.as_ref().expect("exists").version, &p.documents[0].id))
        .collect();
    let started = std::time::Instant::now();
    let outcomes = store.write_batch(&transitions).await.expect("batch write");
    assert_eq!(outcomes, [WriteOutcome::Written, WriteOutcome::Stale, WriteOutcome::Written]);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "not held up by the lock");
    drop(store);

    let (service, group) = b.service.clone().with_group_commit(GroupCommitSettings::default());
    let runner = tokio::spawn(group.run());
    let locked = {
        let (service, id) = (service.clone(), ids[1].id.clone());
        tokio::spawn(async move {
            service.establish_result(&caller("app"), &id, result(ResultStatus::Failed, None), &audit("app")).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for _ in 0..3 {
        let other = b.repo.create(new_process("app", 1), &audit("app"), None).await.expect("create");
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            service.establish_result(&app, &other.id, result(ResultStatus::Finished, None), &audit("app")),
        )
        .await
        .expect("answered while another process is locked");
        assert!(matches!(answer, Ok(Outcome::Established(_))), "{answer:?}");
    }
    assert!(!locked.is_finished(), "the locked process's request waits for the lock, as alone");
    holder.commit().await.expect("release");
    let answer = locked.await.expect("task");
    assert!(matches!(answer, Ok(Outcome::Established(_))), "{answer:?}");
    drop(service);
    runner.await.expect("the group commit ends");
}

/// Concurrent batches (four lanes) over the same few processes, each batch in its own order:
/// every request is answered as alone — no deadlock surfaces as an error.
async fn concurrent_batches_over_the_same_processes_never_fail(b: Backend) {
    let lanes = std::num::NonZeroUsize::new(4).expect("positive");
    let max_batch = std::num::NonZeroUsize::new(16).expect("positive");
    let (service, group) = b.service.clone().with_group_commit(GroupCommitSettings { max_batch, lanes });
    let mut processes = Vec::new();
    for _ in 0..48 {
        processes.push(b.repo.create(new_process("app", 3), &audit("app"), None).await.expect("create"));
    }
    // Every request of a round conflicts with the others on its process, and each round
    // visits the processes in another order, so concurrent batches hold them in many orders.
    let mut tasks = Vec::new();
    for round in 0..8_usize {
        for p in 0..processes.len() {
            let process = &processes[(p * 7 + round * 13) % processes.len()];
            let (service, id) = (service.clone(), process.id.clone());
            let document = process.documents[round % 3].id.clone();
            tasks.push(tokio::spawn(async move {
                let message = format!("round {round}");
                if round % 3 == 2 {
                    let requested = result(ResultStatus::ALL[round % 4], Some(&message));
                    service.establish_result(&caller("app"), &id, requested, &audit("app")).await.map(|_| ())
                } else {
                    let status = [DocumentResultStatus::Failed, DocumentResultStatus::Finished][round % 2];
                    let requested =
                        DocumentResult { status, message: Some(ResultMessage::new(&message).expect("message")) };
                    service
                        .set_document_result(&caller("app"), &id, &document, requested, &audit("app"))
                        .await
                        .map(|_| ())
                }
            }));
        }
    }
    // Queued before the task runs: its four lanes start on full batches at once.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let runner = tokio::spawn(group.run());
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) | Err(EstablishResultError::Rule(_)) => {}
            Err(other) => panic!("answered as no request alone is: {other:?}"),
        }
    }
    let stats = service.group_commit_stats().expect("on");
    assert!(stats.batches() >= 4, "the lanes ran batches: {}", stats.batches());
    drop(service);
    runner.await.expect("the group commit ends");
}

macro_rules! conformance {
    ($backend:ident: $($test:ident),+ $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(super::Backend::$backend().await).await;
                }
            )+
        }
    };
}

macro_rules! suite {
    ($($backend:ident),+) => {
        $(
            conformance!($backend:
                a_created_process_reads_back_as_stored,
                establishing_a_result_writes_result_derived_documents_and_one_event_together,
                a_refused_transition_writes_nothing,
                concurrent_conflicting_results_have_exactly_one_winner,
                document_results_follow_the_rules_and_are_audited,
                another_clients_process_is_invisible_and_untouchable,
                deleting_a_process_removes_its_documents_and_bytes_but_keeps_the_audit_trail,
                the_audit_trail_cannot_be_updated_or_deleted,
                expiry_refuses_late_results_and_materialises_once,
                document_resources_are_owned_shared_and_guarded,
                every_text_the_boundary_accepts_is_stored_unchanged_and_no_other_reaches_the_store,
                a_transition_is_written_whole_and_only_on_the_version_it_was_decided_on,
                many_document_results_at_once_on_one_process_are_all_written,
                the_outbox_is_written_with_each_change_and_never_for_a_refused_or_stale_one,
                concurrent_claims_never_share_a_delivery,
                concurrent_registrations_keep_to_the_endpoint_limit,
                a_batch_is_loaded_per_caller_and_written_per_version,
                the_group_commit_answers_each_request_as_alone,
                concurrent_batches_over_the_same_processes_never_fail,
                large_uploads_are_staged_as_they_arrive_and_adopted_by_their_creation,
                a_refused_upload_leaves_nothing_staged,
                signed_bytes_replace_a_documents_content_as_a_new_content,
            );
        )+
    };
}

suite!(postgres, sqlite);

/// Starts, without committing, a process of `app` that takes `document`: the insert holds the
/// document's key lock until the transaction ends.
async fn take_document_uncommitted(
    pg: &esignsp_adapters::postgres::PostgresRepository,
    document: &DocumentId,
) -> (sqlx::Transaction<'static, sqlx::Postgres>, ProcessId) {
    let mut other = pg.pool().begin().await.expect("begin");
    let (d, second) = (document.as_str(), ProcessId::from_random(rand::random()));
    sqlx::query(&format!(
        "INSERT INTO signer_processes (id, client_id, task_id, process_type, request, created_at, expires_at) \
         VALUES ('{second}', 'app', '{second}', 'urn:safelayer:eidas:processes:document:sign', '{{}}', now(), now() + interval '1 hour')"
    ))
    .execute(&mut *other)
    .await
    .expect("insert process");
    sqlx::query(&format!(
        "INSERT INTO process_documents (process_id, position, document_id) VALUES ('{second}', 0, '{d}')"
    ))
    .execute(&mut *other)
    .await
    .expect("insert process document");
    (other, second)
}

/// O11 while a process takes the document (its insert waits uncommitted): 409 in use, never
/// a foreign-key error (500), and the process keeps it.
async fn deleting_a_document_a_process_is_taking_answers_in_use(b: Backend) {
    let Store::Postgres(pg) = &b.store else { return };
    let document = b
        .repo
        .create_document(NewStandaloneDocument {
            document: new_document(0),
            owner: ClientId::parse("app").expect("id"),
            signers: None,
            created_at: OffsetDateTime::now_utc(),
        })
        .await
        .expect("document");
    let (other, process) = take_document_uncommitted(pg, &document.id).await;
    let (repo, id) = (b.repo.clone(), document.id.clone());
    let deleting = tokio::spawn(async move { repo.delete_document(&id, &caller("app")).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!deleting.is_finished(), "the deletion waits for the process's key lock");
    other.commit().await.expect("commit");
    assert_eq!(deleting.await.expect("task").expect("no error"), DeleteDocumentOutcome::InUse);
    let kept = b.repo.find(&process, &caller("app")).await.expect("find").expect("exists");
    assert_eq!(kept.documents.iter().map(|d| &d.id).collect::<Vec<_>>(), [&document.id]);
}

/// O3 while another process takes one of the deleted process's documents (its insert waits
/// uncommitted, holding the document's key lock): the deletion stands and the document stays
/// with the other process, instead of a foreign-key error (500) or a silently emptied process.
async fn deleting_a_process_leaves_a_document_another_process_took_meanwhile(b: Backend) {
    let Store::Postgres(pg) = &b.store else { return };
    let document = b
        .repo
        .create_document(NewStandaloneDocument {
            document: new_document(0),
            owner: ClientId::parse("app").expect("id"),
            signers: None,
            created_at: OffsetDateTime::now_utc(),
        })
        .await
        .expect("document");
    let mut first = new_process("app", 0);
    first.documents = vec![ProcessDocumentSource::Existing(document.id.clone())];
    let first = b.repo.create(first, &audit("app"), None).await.expect("create");

    let (other, second) = take_document_uncommitted(pg, &document.id).await;
    let (repo, id) = (b.repo.clone(), first.id.clone());
    let deleting = tokio::spawn(async move { repo.delete(&id, &caller("app"), &audit("app"), None).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!deleting.is_finished(), "the deletion waits for the other process's key lock");
    other.commit().await.expect("commit");
    assert!(deleting.await.expect("task").expect("the deletion stands"));
    assert!(b.repo.find(&first.id, &caller("app")).await.expect("find").is_none());
    let kept = b.repo.find(&second, &caller("app")).await.expect("find").expect("exists");
    assert_eq!(kept.documents.iter().map(|d| &d.id).collect::<Vec<_>>(), [&document.id], "the other process keeps it");
}

mod postgres_only {
    #[tokio::test]
    async fn deleting_a_document_a_process_is_taking_answers_in_use() {
        super::deleting_a_document_a_process_is_taking_answers_in_use(super::Backend::postgres().await).await;
    }

    #[tokio::test]
    async fn deleting_a_process_leaves_a_document_another_process_took_meanwhile() {
        super::deleting_a_process_leaves_a_document_another_process_took_meanwhile(super::Backend::postgres().await)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_locked_process_holds_up_neither_its_batch_nor_other_requests() {
        super::a_locked_process_holds_up_neither_its_batch_nor_other_requests(super::Backend::postgres().await).await;
    }

    #[tokio::test]
    async fn an_unreachable_database_is_reported_as_unavailable() {
        super::an_unreachable_database_is_reported_as_unavailable(super::Backend::postgres().await).await;
    }
}
