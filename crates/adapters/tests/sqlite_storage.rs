//! The SQLite store when its database is full: `SQLITE_FULL` played by `PRAGMA max_page_count`
//! (the same error a full disk gives, without mounting anything; `scripts/drill.sh full-disk`
//! fills a real tmpfs).

use std::str::FromStr;
use std::time::Duration;

use esignsp_adapters::postgres::PoolSettings;
use esignsp_adapters::sqlite::{self, SqliteRepository};
use esignsp_domain::ports::{DeleteDocumentOutcome, RepositoryError, SignerProcessRepository};
use esignsp_domain::process::{NewDocument, NewStandaloneDocument};
use esignsp_domain::{Caller, ClientId, DocumentId};
use sqlx::sqlite::SqliteConnectOptions;
use time::OffsetDateTime;

fn settings() -> PoolSettings {
    // One connection: the one that met the full database is the one the next write gets.
    PoolSettings {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(10),
        statement_timeout: Duration::from_secs(10),
        transaction_pooling: false,
    }
}

fn document(i: usize) -> NewStandaloneDocument {
    let mut bytes = format!("%PDF-1.7 document {i}\n").into_bytes();
    bytes.resize(16 * 1024, b'%');
    NewStandaloneDocument {
        document: NewDocument {
            id: DocumentId::from_random(rand::random()),
            media_type: "application/pdf".to_owned(),
            filename: Some(format!("{i}.pdf")),
            sha256: "00".repeat(32),
            content: esignsp_domain::content::NewContent::Inline(bytes),
        },
        owner: ClientId::parse("app").expect("client id"),
        signers: None,
        created_at: OffsetDateTime::now_utc().replace_nanosecond(0).expect("valid"),
    }
}

async fn count(repo: &SqliteRepository, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(repo.pool()).await.expect("count")
}

#[tokio::test]
async fn after_the_database_was_full_writes_work_again_once_there_is_space_and_nothing_is_half_written() {
    let dir = std::env::temp_dir().join(format!("esignsp-full-{}", esignsp_testkit::hex(&rand::random::<[u8; 8]>())));
    let url = format!("sqlite://{}/esignsp.db", dir.display());
    let unlimited = sqlite::connect_lazy(&url, &settings()).expect("pool");
    sqlite::migrate(&unlimited).await.expect("migrate");
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(&unlimited).await.expect("page count");
    unlimited.close().await;

    // Room for a handful of 16 KiB documents, then SQLITE_FULL.
    let options = SqliteConnectOptions::from_str(&url).expect("url").pragma("max_page_count", (pages + 40).to_string());
    let repo = SqliteRepository::new(sqlite::connect_lazy_with(options, &settings()).expect("pool"));
    let owner = Caller { client_id: ClientId::parse("app").expect("client id"), trusted: false };
    let mut stored = Vec::new();
    let mut full = None;
    for i in 0..100 {
        match repo.create_document(document(i)).await {
            Ok(d) => stored.push(d.id),
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    let full = full.expect("the database fills up");
    assert!(matches!(full, RepositoryError::InsufficientStorage(_)), "a full database is 507, not 500: {full:?}");
    assert!(stored.len() >= 2, "some documents fit first: {}", stored.len());
    assert_eq!(
        count(&repo, "SELECT count(*) FROM documents").await,
        stored.len() as i64,
        "the failed write left no row"
    );
    assert_eq!(count(&repo, "SELECT count(*) FROM document_contents").await, stored.len() as i64, "nor bytes");

    // The same connection, still full: the same clear answer, not a connection stuck in a
    // transaction ("attempted to call begin_with at non-zero transaction depth").
    let again = repo.create_document(document(1000)).await.expect_err("still full");
    assert!(matches!(again, RepositoryError::InsufficientStorage(_)), "{again:?}");

    // Space comes back (deleted documents free their pages): writes work at once.
    for id in stored.drain(..2) {
        assert_eq!(repo.delete_document(&id, &owner).await.expect("delete"), DeleteDocumentOutcome::Deleted);
    }
    let written = repo.create_document(document(2000)).await.expect("writes work again once there is space");
    stored.push(written.id.clone());
    assert_eq!(repo.find_document(&written.id, &owner).await.expect("find").map(|d| d.id), Some(written.id));
    assert_eq!(count(&repo, "SELECT count(*) FROM documents").await, stored.len() as i64);
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(repo.pool()).await.expect("check");
    assert_eq!(integrity, "ok");
}
