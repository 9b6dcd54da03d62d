//! The transition protocol (SPEC §8) on PostgreSQL: a writer that changes the process between
//! the service's unlocked load and its compare-and-set write makes that write stale, and the
//! domain service decides again on what that writer left.

use std::time::Duration;

use esignsp_adapters::postgres::{connect_lazy, migrate, PoolSettings, PostgresRepository};
use esignsp_domain::events::AuditContext;
use std::sync::Arc;

use esignsp_adapters::system::{OsRandomIds, SystemClock};
use esignsp_domain::ports::{EstablishResultError, SignerProcessRepository};
use esignsp_domain::process::{NewDocument, NewSignerProcess, ProcessDocumentSource, ProcessRequest};
use esignsp_domain::{
    Caller, ClientId, DocumentId, DocumentResult, DocumentResultStatus, ProcessId, ProcessResult, ResultMessage,
    ResultStateMachine, ResultStatus, TaskId,
};
use esignsp_domain::{Outcome, SignerProcessService};

/// The domain service over `repo`, with the default rules.
fn service(repo: &PostgresRepository) -> SignerProcessService {
    SignerProcessService::new(
        Arc::new(repo.clone()),
        Arc::new(OsRandomIds),
        Arc::new(SystemClock),
        Arc::new(ResultStateMachine::default()),
        time::Duration::hours(1),
    )
}
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use time::OffsetDateTime;

async fn repository() -> (PostgresRepository, PgPool, String) {
    let url = esignsp_testkit::fresh_database().await;
    let repository = connect_lazy(
        &url,
        &PoolSettings {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(20),
            statement_timeout: Duration::from_secs(10),
            transaction_pooling: false,
        },
    )
    .expect("pool");
    migrate(&repository).await.expect("migrate");
    let pool = repository.pool().clone();
    (repository, pool, url)
}

fn caller() -> Caller {
    Caller { client_id: ClientId::parse("tenant-a").expect("client id"), trusted: false }
}

fn audit() -> AuditContext {
    AuditContext { actor: ClientId::parse("tenant-a").expect("client id"), request_id: "req-1".to_owned() }
}

async fn pending_process(repo: &PostgresRepository, documents: usize) -> NewSignerProcess {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).expect("valid");
    let process = NewSignerProcess {
        id: ProcessId::from_random(rand::random()),
        task_id: TaskId::from_random(rand::random()),
        owner: ClientId::parse("tenant-a").expect("owner"),
        request: ProcessRequest::parse(json!({"process_type": "urn:safelayer:eidas:processes:document:sign:esigp"}))
            .expect("request"),
        documents: (0..documents)
            .map(|i| {
                ProcessDocumentSource::Upload(NewDocument {
                    id: DocumentId::from_random(rand::random()),
                    media_type: "application/pdf".to_owned(),
                    filename: Some(format!("{i}.pdf")),
                    sha256: "00".repeat(32),
                    content: esignsp_domain::content::NewContent::Inline(b"%PDF-1.7".to_vec()),
                })
            })
            .collect(),
        created_at: now,
        expires_at: now + time::Duration::hours(1),
    };
    repo.create(process.clone(), &audit(), None).await.expect("create");
    process
}

fn finished() -> ProcessResult {
    ProcessResult { status: ResultStatus::Finished, message: Some(ResultMessage::new("done").expect("message")) }
}

async fn version(pool: &PgPool, id: &ProcessId) -> i64 {
    sqlx::query_scalar("SELECT version FROM signer_processes WHERE id = $1")
        .bind(id.as_str())
        .fetch_one(pool)
        .await
        .expect("version")
}

async fn document_statuses(pool: &PgPool, id: &ProcessId) -> Vec<Option<String>> {
    sqlx::query_scalar("SELECT result_status FROM process_documents WHERE process_id = $1 ORDER BY position")
        .bind(id.as_str())
        .fetch_all(pool)
        .await
        .expect("documents")
}

/// Holds the process row locked on its own connection, lets `PUT …/result` run until its write
/// waits for that lock (its unlocked read has happened by then), then commits `status` and
/// `message` as another writer would, and answers what the PUT answered.
async fn put_racing_another_writer(
    status: &str,
    message: &str,
) -> (Result<Outcome<ProcessResult>, EstablishResultError>, PgPool, ProcessId) {
    let (repo, pool, url) = repository().await;
    let process = pending_process(&repo, 0).await;
    let mut other = PgConnection::connect(&url).await.expect("connect");
    let mut tx = other.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM signer_processes WHERE id = $1 FOR UPDATE")
        .bind(process.id.as_str())
        .execute(&mut *tx)
        .await
        .expect("lock");
    let put = tokio::spawn({
        let (service, id) = (service(&repo), process.id.clone());
        async move { service.establish_result(&caller(), &id, finished(), &audit()).await }
    });
    let mut waited = Duration::ZERO;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .expect("pg_stat_activity");
        if waiting == 1 {
            break;
        }
        assert!(waited < Duration::from_secs(10), "the PUT never waited for the row lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    sqlx::query(
        "UPDATE signer_processes SET result_status = $2, result_message = $3, result_at = now(), \
         version = version + 1 WHERE id = $1",
    )
    .bind(process.id.as_str())
    .bind(status)
    .bind(message)
    .execute(&mut *tx)
    .await
    .expect("other writer");
    tx.commit().await.expect("commit");
    (put.await.expect("join"), pool, process.id)
}

#[tokio::test]
async fn a_different_result_committed_between_read_and_write_is_a_conflict() {
    let (outcome, pool, id) = put_racing_another_writer("canceled", "user gave up").await;
    assert!(matches!(outcome, Err(EstablishResultError::Rule(_))), "{outcome:?}");
    let stored: (String, String) =
        sqlx::query_as("SELECT result_status, result_message FROM signer_processes WHERE id = $1")
            .bind(id.as_str())
            .fetch_one(&pool)
            .await
            .expect("stored");
    assert_eq!(stored, ("canceled".to_owned(), "user gave up".to_owned()));
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM process_events WHERE process_id = $1 AND kind = 'result'")
            .bind(id.as_str())
            .fetch_one(&pool)
            .await
            .expect("events");
    assert_eq!(events, 0, "the losing PUT wrote no event");
    assert_eq!(version(&pool, &id).await, 1);
}

#[tokio::test]
async fn the_same_result_committed_between_read_and_write_is_a_replay() {
    let (outcome, pool, id) = put_racing_another_writer("finished", "done").await;
    assert!(matches!(outcome, Ok(Outcome::Replayed(ref r)) if *r == finished()), "{outcome:?}");
    assert_eq!(version(&pool, &id).await, 1, "a replay writes nothing");
}

#[tokio::test]
async fn every_result_write_advances_the_version() {
    let (repo, pool, _) = repository().await;
    let service = service(&repo);
    let process = pending_process(&repo, 2).await;
    assert_eq!(version(&pool, &process.id).await, 0);
    let ProcessDocumentSource::Upload(first) = &process.documents[0] else { panic!("upload") };
    let signed = DocumentResult { status: DocumentResultStatus::Finished, message: None };
    service.set_document_result(&caller(), &process.id, &first.id, signed, &audit()).await.expect("document result");
    assert_eq!(version(&pool, &process.id).await, 1, "a document result advances the process's version");
    let outcome = service.establish_result(&caller(), &process.id, finished(), &audit()).await.expect("result");
    assert!(matches!(outcome, Outcome::Established(_)));
    assert_eq!(version(&pool, &process.id).await, 2);
    let documents = document_statuses(&pool, &process.id).await;
    assert_eq!(
        documents,
        [Some("finished".to_owned()), Some("finished".to_owned())],
        "derived document result written"
    );
}

#[tokio::test]
async fn a_document_result_racing_a_process_result_leaves_one_consistent_winner() {
    let (repo, pool, _) = repository().await;
    let service = service(&repo);
    let (who, trail) = (caller(), audit());
    for _ in 0..40 {
        let process = pending_process(&repo, 2).await;
        let ProcessDocumentSource::Upload(first) = &process.documents[0] else { panic!("upload") };
        let failed = DocumentResult { status: DocumentResultStatus::Failed, message: None };
        let (document, whole) = tokio::join!(
            service.set_document_result(&who, &process.id, &first.id, failed, &trail),
            service.establish_result(&who, &process.id, finished(), &trail),
        );
        let stored: Option<String> = sqlx::query_scalar("SELECT result_status FROM signer_processes WHERE id = $1")
            .bind(process.id.as_str())
            .fetch_one(&pool)
            .await
            .expect("process");
        let documents = document_statuses(&pool, &process.id).await;
        match (&document, &whole) {
            (Ok(Outcome::Established(_)), Err(EstablishResultError::Rule(_))) => {
                assert_eq!(stored, None);
                assert_eq!(documents, [Some("failed".to_owned()), None]);
            }
            (Err(EstablishResultError::Rule(_)), Ok(Outcome::Established(_))) => {
                assert_eq!(stored.as_deref(), Some("finished"));
                assert_eq!(documents, [Some("finished".to_owned()), Some("finished".to_owned())]);
            }
            other => panic!("not exactly one winner: {other:?}"),
        }
    }
}
