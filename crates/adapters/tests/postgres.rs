//! Adapter tier: the PostgreSQL repository against a real database per test.

use std::sync::Arc;

use esignsp_adapters::postgres::{self, PoolSettings, PostgresRepository};
use esignsp_domain::events::{AuditContext, EventKind};
use esignsp_domain::ports::{EstablishOutcome, EstablishResultError, SignerProcessRepository};
use esignsp_domain::process::{NewDocument, NewSignerProcess, ProcessDocumentSource, ProcessRequest};
use esignsp_domain::{
    Caller, ClientId, DocumentId, DocumentResultStatus, ProcessId, ProcessResult, ResultMessage, ResultStateMachine,
    ResultStatus, TaskId,
};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;

async fn repository() -> (PostgresRepository, PgPool) {
    let url = esignsp_testkit::fresh_database().await;
    let pool = postgres::connect_lazy(
        &url,
        &PoolSettings { max_connections: 40, acquire_timeout: std::time::Duration::from_secs(10) },
    )
    .expect("pool");
    postgres::migrate(&pool).await.expect("migrate");
    (PostgresRepository::new(pool.clone()), pool)
}

fn caller(id: &str) -> Caller {
    Caller { client_id: ClientId::parse(id).expect("client id"), trusted: false }
}

fn audit(id: &str) -> AuditContext {
    AuditContext { actor: ClientId::parse(id).expect("client id"), request_id: "req-1".to_owned() }
}

fn random_id<T>(make: fn([u8; 20]) -> T) -> T {
    make(rand::random())
}

fn new_process(owner: &str, documents: usize) -> NewSignerProcess {
    let now = OffsetDateTime::now_utc();
    NewSignerProcess {
        id: random_id(ProcessId::from_random),
        task_id: random_id(TaskId::from_random),
        owner: ClientId::parse(owner).expect("owner"),
        request: ProcessRequest::parse(json!({"process_type": "urn:safelayer:eidas:processes:document:sign:esigp"}))
            .expect("request"),
        documents: (0..documents)
            .map(|i| {
                ProcessDocumentSource::Upload(NewDocument {
                    id: random_id(DocumentId::from_random),
                    media_type: "application/pdf".to_owned(),
                    filename: Some(format!("{i}.pdf")),
                    sha256: "00".repeat(32),
                    bytes: format!("%PDF-1.7 document {i}").into_bytes(),
                })
            })
            .collect(),
        created_at: now,
        expires_at: now + time::Duration::hours(1),
    }
}

fn result(status: ResultStatus, message: Option<&str>) -> ProcessResult {
    ProcessResult { status, message: message.map(|m| ResultMessage::new(m).expect("message")) }
}

async fn count(pool: &PgPool, sql: &str, id: &ProcessId) -> i64 {
    sqlx::query_scalar(sql).bind(id.as_str()).fetch_one(pool).await.expect("count")
}

#[tokio::test]
async fn establishing_a_result_writes_result_derived_documents_and_one_event_together() {
    let (repo, pool) = repository().await;
    let machine = ResultStateMachine::with_default_rules();
    let created = repo.create(new_process("app", 2), &audit("app")).await.expect("create");
    let outcome = repo
        .establish_result(
            &created.id,
            &caller("app"),
            result(ResultStatus::Finished, Some("ok")),
            &machine,
            OffsetDateTime::now_utc(),
            &audit("app"),
        )
        .await
        .expect("establish");
    assert_eq!(outcome, EstablishOutcome::Established(result(ResultStatus::Finished, Some("ok"))));

    let stored = repo.find(&created.id, &caller("app")).await.expect("find").expect("exists");
    assert_eq!(stored.result, Some(result(ResultStatus::Finished, Some("ok"))));
    assert!(
        stored.documents.iter().all(|d| d.result.as_ref().map(|r| r.status) == Some(DocumentResultStatus::Finished)),
        "documents without a result became finished"
    );
    let events = repo.events(&created.id, &caller("app")).await.expect("events").expect("exists");
    assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [EventKind::Created, EventKind::Result]);
    assert_eq!(events[1].new_status.as_deref(), Some("finished"));

    let replay = repo
        .establish_result(
            &created.id,
            &caller("app"),
            result(ResultStatus::Finished, Some("ok")),
            &machine,
            OffsetDateTime::now_utc(),
            &audit("app"),
        )
        .await
        .expect("replay");
    assert!(matches!(replay, EstablishOutcome::Replayed(_)));
    assert_eq!(
        count(&pool, "SELECT count(*) FROM process_events WHERE process_id = $1", &created.id).await,
        2,
        "a replay writes nothing"
    );
}

#[tokio::test]
async fn a_refused_transition_writes_nothing() {
    let (repo, pool) = repository().await;
    let machine = ResultStateMachine::with_default_rules();
    let created = repo.create(new_process("app", 1), &audit("app")).await.expect("create");
    let err = repo
        .establish_result(
            &created.id,
            &caller("app"),
            result(ResultStatus::FailedDocuments, None),
            &machine,
            OffsetDateTime::now_utc(),
            &audit("app"),
        )
        .await
        .expect_err("one document cannot be failed_documents");
    assert!(matches!(err, EstablishResultError::Rule(ref v) if v.rule == "failed_documents"), "{err:?}");
    assert_eq!(
        count(&pool, "SELECT count(*) FROM signer_processes WHERE id = $1 AND result_status IS NULL", &created.id)
            .await,
        1
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM process_documents WHERE process_id = $1 AND result_status IS NOT NULL",
            &created.id
        )
        .await,
        0
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM process_events WHERE process_id = $1", &created.id).await, 1);
}

#[tokio::test]
async fn concurrent_conflicting_results_have_exactly_one_winner() {
    let (repo, pool) = repository().await;
    let repo = Arc::new(repo);
    let machine = Arc::new(ResultStateMachine::with_default_rules());
    let created = repo.create(new_process("app", 2), &audit("app")).await.expect("create");
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let (repo, machine, id) = (repo.clone(), machine.clone(), created.id.clone());
            tokio::spawn(async move {
                let status = ResultStatus::ALL[i % 4];
                let requested = result(status, Some(&format!("attempt {i}")));
                repo.establish_result(
                    &id,
                    &caller("app"),
                    requested.clone(),
                    &machine,
                    OffsetDateTime::now_utc(),
                    &audit("app"),
                )
                .await
                .map(|_| requested)
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
    let stored = repo.find(&created.id, &caller("app")).await.expect("find").expect("exists");
    assert_eq!(stored.result.as_ref(), winners.first());
    assert_eq!(
        count(&pool, "SELECT count(*) FROM process_events WHERE process_id = $1 AND kind = 'result'", &created.id)
            .await,
        1
    );
}

#[tokio::test]
async fn another_clients_process_is_invisible_and_untouchable() {
    let (repo, _pool) = repository().await;
    let machine = ResultStateMachine::with_default_rules();
    let created = repo.create(new_process("owner", 1), &audit("owner")).await.expect("create");
    let intruder = caller("intruder");
    assert!(repo.find(&created.id, &intruder).await.expect("find").is_none());
    assert!(repo.events(&created.id, &intruder).await.expect("events").is_none());
    assert!(repo.document_content(&created.documents[0].id, &intruder).await.expect("content").is_none());
    let err = repo
        .establish_result(
            &created.id,
            &intruder,
            result(ResultStatus::Canceled, None),
            &machine,
            OffsetDateTime::now_utc(),
            &audit("intruder"),
        )
        .await
        .expect_err("foreign");
    assert!(matches!(err, EstablishResultError::NotFound));
    assert!(!repo.delete(&created.id, &intruder, &audit("intruder")).await.expect("delete"));

    let trusted = Caller { client_id: ClientId::parse("signing-app").expect("id"), trusted: true };
    assert!(repo.find(&created.id, &trusted).await.expect("find").is_some(), "trusted clients see every process");
}

#[tokio::test]
async fn deleting_a_process_removes_its_documents_and_bytes_but_keeps_the_audit_trail() {
    let (repo, pool) = repository().await;
    let created = repo.create(new_process("app", 2), &audit("app")).await.expect("create");
    let content =
        repo.document_content(&created.documents[1].id, &caller("app")).await.expect("content").expect("exists");
    assert_eq!(content.bytes, b"%PDF-1.7 document 1");
    assert!(repo.delete(&created.id, &caller("app"), &audit("app")).await.expect("delete"));
    assert!(repo.find(&created.id, &caller("app")).await.expect("find").is_none());
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM document_contents").fetch_one(&pool).await.expect("count");
    assert_eq!(left, 0);
    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM process_events WHERE process_id = $1 ORDER BY id")
        .bind(created.id.as_str())
        .fetch_all(&pool)
        .await
        .expect("events");
    assert_eq!(kinds, ["created", "deleted"]);
}

#[tokio::test]
async fn the_audit_trail_cannot_be_updated_or_deleted() {
    let (repo, pool) = repository().await;
    let created = repo.create(new_process("app", 1), &audit("app")).await.expect("create");
    for sql in ["UPDATE process_events SET actor = 'x'", "DELETE FROM process_events", "TRUNCATE process_events"] {
        let err = sqlx::query(sql).execute(&pool).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(count(&pool, "SELECT count(*) FROM process_events WHERE process_id = $1", &created.id).await, 1);
}

#[tokio::test]
async fn an_expired_pending_process_takes_no_result() {
    let (repo, _pool) = repository().await;
    let machine = ResultStateMachine::with_default_rules();
    let mut process = new_process("app", 1);
    process.expires_at = process.created_at + time::Duration::seconds(1);
    let created = repo.create(process, &audit("app")).await.expect("create");
    let later = created.expires_at + time::Duration::seconds(1);
    let err = repo
        .establish_result(
            &created.id,
            &caller("app"),
            result(ResultStatus::Finished, None),
            &machine,
            later,
            &audit("app"),
        )
        .await
        .expect_err("expired");
    assert!(matches!(err, EstablishResultError::Rule(ref v) if v.rule == "expiry"), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_database_is_reported_as_unavailable() {
    let pool = postgres::connect_lazy(
        "postgres://postgres@127.0.0.1:1/none",
        &PoolSettings { max_connections: 1, acquire_timeout: std::time::Duration::from_millis(500) },
    )
    .expect("pool");
    let repo = PostgresRepository::new(pool);
    let err = repo.ping().await.expect_err("nothing listens on port 1");
    assert!(matches!(err, esignsp_domain::RepositoryError::Unavailable(_)), "{err:?}");
}
