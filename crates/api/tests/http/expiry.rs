//! Expiry (SPEC §4): on read and by the background sweeper; late PUTs get 409.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

#[tokio::test]
async fn an_overdue_process_reads_as_canceled_expired_and_refuses_a_late_put() {
    let app = spawn_app_with(|s| {
        s.processes.ttl_seconds = std::num::NonZeroU64::MIN;
        s.processes.sweep_interval_seconds = 0;
    })
    .await;
    let id = app.create_process("relying-app", 2).await["id"].as_str().expect("id").to_owned();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(app.events_of(&id).await, ["created"], "nothing happens without a read when the sweeper is off");

    let late = app.put_result("relying-app", &id, r#"{"status":"finished"}"#).await;
    assert_problem(late, 409, "result-already-established", "a late PUT").await;

    let r = app.get("relying-app", &format!("/signer_processes/{id}/result")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"status": "canceled", "details": {"message": "expired"}})
    );
    let p: Value = app.get("relying-app", &format!("/signer_processes/{id}")).await.json().await.expect("json");
    assert_eq!(p["documents"][0]["result"], json!({"status": "canceled", "details": {"message": "expired"}}));
    assert_eq!(app.events_of(&id).await, ["created", "expired"], "materialised once");

    let late = app.put_result("relying-app", &id, r#"{"status":"finished"}"#).await;
    assert_problem(late, 409, "result-already-established", "after materialisation").await;
}

async fn put_document_result(app: &TestApp, pid: &str, did: &str, body: &str) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/signer_processes/{pid}/documents/{did}/result")))
        .bearer_auth(token("relying-app"))
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request")
}

/// O5 and O7 on the expired process `p` answer 409 with the result expiry gave it, and an
/// identical `canceled`/`expired` replays; `why` says whether the expiry was materialised.
async fn assert_late_puts_report_the_expiry(app: &TestApp, p: &Value, why: &str) {
    let expired = json!({"status": "canceled", "details": {"message": "expired"}});
    let pid = p["id"].as_str().expect("id");
    for (document, body) in [
        (None, r#"{"status":"finished"}"#),
        (Some(0), r#"{"status":"finished"}"#),
        (Some(1), r#"{"status":"failed","details":{"message":"late"}}"#),
    ] {
        let r = match document {
            None => app.put_result("relying-app", pid, body).await,
            Some(i) => put_document_result(app, pid, p["documents"][i]["id"].as_str().expect("doc"), body).await,
        };
        let problem =
            assert_problem(r, 409, "result-already-established", &format!("{why}: {document:?} {body}")).await;
        assert_eq!(problem["current_result"], expired, "{why}: {document:?} {body}: {problem}");
    }
    let replay = app.put_result("relying-app", pid, &expired.to_string()).await;
    assert_eq!(replay.status(), 200, "{why}: the expiry result itself replays");
    assert_eq!(replay.json::<Value>().await.expect("json"), expired, "{why}");
}

#[tokio::test]
async fn a_late_put_answers_the_expiry_result_whether_or_not_expiry_was_materialised() {
    let app = spawn_app_with(|s| {
        s.processes.ttl_seconds = std::num::NonZeroU64::MIN;
        s.processes.sweep_interval_seconds = 0;
    })
    .await;
    let p = app.create_process("relying-app", 2).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_late_puts_report_the_expiry(&app, &p, "detected on the PUT").await;
    assert_eq!(app.events_of(p["id"].as_str().expect("id")).await, ["created"], "a PUT does not materialise it");

    let swept = spawn_app_with(|s| {
        s.processes.ttl_seconds = std::num::NonZeroU64::MIN;
        s.processes.sweep_interval_seconds = 1;
    })
    .await;
    let p = swept.create_process("relying-app", 2).await;
    let id = p["id"].as_str().expect("id");
    for _ in 0..50 {
        if swept.events_of(id).await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(swept.events_of(id).await, ["created", "expired"], "the sweeper materialised it");
    assert_late_puts_report_the_expiry(&swept, &p, "materialised by the sweeper").await;
}

#[tokio::test]
async fn the_sweeper_expires_overdue_processes_without_any_read() {
    let app = spawn_app_with(|s| {
        s.processes.ttl_seconds = std::num::NonZeroU64::MIN;
        s.processes.sweep_interval_seconds = 1;
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned());
    }
    let mut expired = 0;
    for _ in 0..50 {
        expired = app.count("SELECT count(*) FROM process_events WHERE kind = 'expired'").await;
        if expired == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(expired, 3, "every overdue process expired by the sweeper");
    assert_eq!(
        app.count(
            "SELECT count(*) FROM signer_processes WHERE result_status = 'canceled' AND result_message = 'expired'"
        )
        .await,
        3
    );
}

#[tokio::test]
async fn two_replicas_sweeping_one_database_expire_each_process_once() {
    let first = spawn_app_with(|s| {
        s.processes.ttl_seconds = std::num::NonZeroU64::MIN;
        s.processes.sweep_interval_seconds = 1;
    })
    .await;
    let mut settings = first.settings.clone();
    settings.server.port = 0;
    let second = start(settings, first.database_url.clone()).await;
    for _ in 0..20 {
        first.create_process("relying-app", 1).await;
    }
    let mut expired = 0;
    for _ in 0..60 {
        expired = first.count("SELECT count(*) FROM signer_processes WHERE result_status IS NOT NULL").await;
        if expired == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(expired, 20);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        first.count("SELECT count(*) FROM process_events WHERE kind = 'expired'").await,
        20,
        "one event per process"
    );
    second.stop().await;
}

#[tokio::test]
async fn a_document_of_an_expired_process_stays_with_it() {
    let app = spawn_app_with(|s| {
        s.processes.ttl_seconds = std::num::NonZeroU64::MIN;
        s.processes.sweep_interval_seconds = 0;
    })
    .await;
    let form = reqwest::multipart::Form::new().part("document", reqwest::multipart::Part::bytes(PDF.to_vec()));
    let doc: Value = app
        .client
        .post(app.url("/documents"))
        .bearer_auth(token("relying-app"))
        .multipart(form)
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    let doc_id = doc["id"].as_str().expect("id");
    let r = app
        .client
        .post(app.url("/signer_processes"))
        .bearer_auth(token("relying-app"))
        .json(&json!({"process_type": "urn:safelayer:eidas:processes:document:sign:esigp", "documents": [{"id": doc_id}]}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 201);
    let delete =
        || app.client.delete(app.url(&format!("/documents/{doc_id}"))).bearer_auth(token("relying-app")).send();
    assert_eq!(delete().await.expect("req").status(), 409, "in use while pending");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(delete().await.expect("req").status(), 409, "an expired process keeps its record whole, read or not");
    let content = app.get("relying-app", &format!("/documents/{doc_id}/content")).await;
    assert_eq!(content.status(), 200);
    assert_eq!(content.bytes().await.expect("bytes").as_ref(), PDF, "its bytes stay retrievable");
}
