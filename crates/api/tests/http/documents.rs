//! O6–O11 and the JSON form of O1: document resources and per-document results.

use serde_json::{json, Value};

use crate::common::*;

async fn upload_document(app: &TestApp, client: &str, signers: Option<&str>) -> Value {
    let mut form = reqwest::multipart::Form::new().part(
        "document",
        reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("c.pdf").mime_str("application/pdf").expect("mime"),
    );
    if let Some(s) = signers {
        form = form.part("signers", reqwest::multipart::Part::text(s.to_owned()));
    }
    let r =
        app.client.post(app.url("/documents")).bearer_auth(token(client)).multipart(form).send().await.expect("req");
    assert_eq!(r.status(), 201, "O8 creates");
    let location = r.headers()["location"].to_str().expect("ascii").to_owned();
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["self"], location);
    body
}

async fn create_from_json(app: &TestApp, client: &str, body: Value) -> reqwest::Response {
    app.client.post(app.url("/signer_processes")).bearer_auth(token(client)).json(&body).send().await.expect("req")
}

async fn put_doc_result(app: &TestApp, client: &str, pid: &str, did: &str, body: &str) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/signer_processes/{pid}/documents/{did}/result")))
        .bearer_auth(token(client))
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("req")
}

#[tokio::test]
async fn document_resources_are_created_read_downloaded_and_deleted() {
    let app = spawn_app().await;
    let signers = r#"[{"signature_field":{"name":"Sign1","page":"1"}}]"#;
    let doc = upload_document(&app, "relying-app", Some(signers)).await;
    let id = doc["id"].as_str().expect("id");
    assert_eq!(doc["signers"], serde_json::from_str::<Value>(signers).expect("json"));
    assert_eq!(doc["content"], format!("{}/documents/{id}/content", app.base));

    let read: Value = app.get("relying-app", &format!("/documents/{id}")).await.json().await.expect("json");
    assert_eq!(read, doc, "O9 answers what O8 answered");
    let content = app.get("relying-app", &format!("/documents/{id}/content")).await;
    assert_eq!(content.headers()["content-type"], "application/pdf");
    assert_eq!(content.bytes().await.expect("bytes").as_ref(), PDF);
    assert_problem(app.get("other-app", &format!("/documents/{id}")).await, 404, "not-found", "foreign document").await;

    let r = app
        .client
        .delete(app.url(&format!("/documents/{id}")))
        .bearer_auth(token("relying-app"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 204);
    assert_problem(app.get("relying-app", &format!("/documents/{id}")).await, 404, "not-found", "deleted").await;
    let r = app
        .client
        .delete(app.url(&format!("/documents/{id}")))
        .bearer_auth(token("relying-app"))
        .send()
        .await
        .expect("req");
    assert_problem(r, 404, "not-found", "deleted twice").await;
}

#[tokio::test]
async fn invalid_document_uploads_answer_400() {
    let app = spawn_app().await;
    let post = |form: reqwest::multipart::Form| {
        app.client.post(app.url("/documents")).bearer_auth(token("relying-app")).multipart(form).send()
    };
    let doc = || reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("c.pdf");
    let r =
        post(reqwest::multipart::Form::new().part("signers", reqwest::multipart::Part::text("[]"))).await.expect("req");
    assert_problem(r, 400, "invalid-body", "no document").await;
    let r = post(reqwest::multipart::Form::new().part("document", doc()).part("document", doc())).await.expect("req");
    assert_problem(r, 400, "invalid-body", "two documents").await;
    for signers in ["{}", "[1]", "[{\"a\":1}", "[{\"a\":\"\\u0000\"}]"] {
        let r = post(
            reqwest::multipart::Form::new()
                .part("document", doc())
                .part("signers", reqwest::multipart::Part::text(signers)),
        )
        .await
        .expect("req");
        assert_problem(r, 400, "invalid-body", signers).await;
    }
    assert_eq!(app.count("SELECT count(*) FROM documents").await, 0);
}

#[tokio::test]
async fn a_process_is_created_from_documents_referenced_by_id_or_url() {
    let app = spawn_app().await;
    let a = upload_document(&app, "relying-app", None).await;
    let b = upload_document(&app, "relying-app", None).await;
    let r = create_from_json(
        &app,
        "relying-app",
        json!({"process_type": "urn:safelayer:eidas:processes:document:sign", "documents": [{"id": a["id"]}, {"url": b["self"]}]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let p: Value = r.json().await.expect("json");
    let ids: Vec<&Value> = p["documents"].as_array().expect("docs").iter().map(|d| &d["id"]).collect();
    assert_eq!(ids, [&a["id"], &b["id"]]);

    let foreign = upload_document(&app, "other-app", None).await;
    for (documents, why) in [
        (json!([{"id": foreign["id"]}]), "another client's document"),
        (json!([{"id": "0123456789abcdefghijklmnopqrstuv"}]), "unknown document"),
        (json!([{"id": "../../etc"}]), "not an id"),
        (json!([{"id": a["id"]}, {"id": a["id"]}]), "the same document twice"),
        (json!([]), "no document"),
        (json!("x"), "not an array"),
        (json!([{"name": "x"}]), "neither id nor url"),
    ] {
        let r = create_from_json(
            &app,
            "relying-app",
            json!({"process_type": "urn:safelayer:eidas:processes:document:sign", "documents": documents}),
        )
        .await;
        assert_problem(r, 400, "invalid-body", why).await;
    }
    assert_eq!(app.count("SELECT count(*) FROM signer_processes").await, 1);
}

async fn delete_document(app: &TestApp, id: &str) -> reqwest::Response {
    app.client.delete(app.url(&format!("/documents/{id}"))).bearer_auth(token("relying-app")).send().await.expect("req")
}

#[tokio::test]
async fn a_document_cannot_be_deleted_while_any_process_holds_it_pending_or_finished() {
    let app = spawn_app().await;
    let doc = upload_document(&app, "relying-app", None).await;
    let id = doc["id"].as_str().expect("id");
    let create = || {
        create_from_json(
            &app,
            "relying-app",
            json!({"process_type": "urn:safelayer:eidas:processes:document:sign:esigp", "documents": [{"id": id}]}),
        )
    };
    let first: Value = create().await.json().await.expect("json");
    let second: Value = create().await.json().await.expect("json");
    let (first, second) = (first["id"].as_str().expect("pid"), second["id"].as_str().expect("pid"));
    assert_problem(delete_document(&app, id).await, 409, "document-in-use", "pending processes use it").await;

    assert_eq!(app.put_result("relying-app", first, r#"{"status":"finished"}"#).await.status(), 200);
    assert_eq!(app.put_result("relying-app", second, r#"{"status":"canceled"}"#).await.status(), 200);
    let problem = assert_problem(delete_document(&app, id).await, 409, "document-in-use", "finished processes").await;
    assert!(problem["detail"].as_str().is_some_and(|d| !d.contains("pending")), "{problem}");
    let p: Value = app.get("relying-app", &format!("/signer_processes/{first}")).await.json().await.expect("json");
    assert_eq!(p["documents"][0]["id"], id, "the finished process keeps its document");
    assert_eq!(p["documents"][0]["result"], json!({"status": "finished"}));
    let content = app.get("relying-app", &format!("/documents/{id}/content")).await;
    assert_eq!(content.status(), 200, "its bytes stay retrievable");
    assert_eq!(content.bytes().await.expect("bytes").as_ref(), PDF);

    let delete_process = |pid: String| {
        app.client.delete(app.url(&format!("/signer_processes/{pid}"))).bearer_auth(token("relying-app")).send()
    };
    assert_eq!(delete_process(first.to_owned()).await.expect("req").status(), 204);
    assert_problem(delete_document(&app, id).await, 409, "document-in-use", "the second process still holds it").await;
    assert_eq!(delete_process(second.to_owned()).await.expect("req").status(), 204);
    assert_problem(delete_document(&app, id).await, 404, "not-found", "it went with its last process (O3)").await;
    assert_eq!(app.count("SELECT count(*) FROM documents").await, 0);
}

#[tokio::test]
async fn document_results_follow_the_rules_across_documents_and_process() {
    let app = spawn_app().await;
    let p = app.create_process("relying-app", 3).await;
    let pid = p["id"].as_str().expect("pid");
    let doc = |i: usize| p["documents"][i]["id"].as_str().expect("doc").to_owned();

    let r =
        put_doc_result(&app, "signing-app", pid, &doc(0), r#"{"status":"finished","details":{"message":"ok"}}"#).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json"), json!({"status": "finished", "details": {"message": "ok"}}));
    let r =
        put_doc_result(&app, "signing-app", pid, &doc(0), r#"{"status":"finished","details":{"message":"ok"}}"#).await;
    assert_eq!(r.status(), 200, "identical replay");
    let r = put_doc_result(&app, "signing-app", pid, &doc(0), r#"{"status":"failed"}"#).await;
    assert_problem(r, 409, "result-already-established", "document results are terminal").await;
    let r = put_doc_result(&app, "signing-app", pid, &doc(1), r#"{"status":"failed_documents"}"#).await;
    assert_problem(r, 400, "invalid-body", "failed_documents is not a document status").await;
    let r =
        put_doc_result(&app, "signing-app", pid, "0123456789abcdefghijklmnopqrstuv", r#"{"status":"failed"}"#).await;
    assert_problem(r, 404, "not-found", "document not in the process").await;
    assert_eq!(put_doc_result(&app, "signing-app", pid, &doc(1), r#"{"status":"failed"}"#).await.status(), 200);

    // finished conflicts with the failed document; failed conflicts with the finished one.
    let r = app.put_result("signing-app", pid, r#"{"status":"finished"}"#).await;
    assert_eq!(assert_problem(r, 409, "result-conflicts-with-documents", "finished").await["rule"], "finished");
    let r = app.put_result("signing-app", pid, r#"{"status":"failed"}"#).await;
    assert_eq!(assert_problem(r, 409, "result-conflicts-with-documents", "failed").await["rule"], "failed/canceled");
    assert_eq!(app.put_result("signing-app", pid, r#"{"status":"failed_documents"}"#).await.status(), 200);

    let docs: Value =
        app.get("relying-app", &format!("/signer_processes/{pid}/documents")).await.json().await.expect("json");
    assert_eq!(docs["documents"][0]["result"], json!({"status": "finished", "details": {"message": "ok"}}));
    assert_eq!(docs["documents"][1]["result"], json!({"status": "failed"}));
    assert!(docs["documents"][2].get("result").is_none(), "failed_documents leaves the third without result");
    let r = put_doc_result(&app, "signing-app", pid, &doc(2), r#"{"status":"finished"}"#).await;
    assert_eq!(
        assert_problem(r, 409, "documents-frozen", "after the process result").await["rule"],
        "documents frozen"
    );

    let events: Value =
        app.get("relying-app", &format!("/signer_processes/{pid}/events")).await.json().await.expect("json");
    let kinds: Vec<(&str, Option<&str>)> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| (e["type"].as_str().expect("type"), e["document_id"].as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("created", None),
            ("document_result", Some(doc(0).as_str())),
            ("document_result", Some(doc(1).as_str())),
            ("result", None)
        ]
    );
}

/// `n` bytes of a PDF-looking document whose every 64 KiB chunk differs.
fn large_pdf(n: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..n - bytes.len()).map(|i| u8::try_from((i / 13 + i / 65536) % 253).expect("a byte")));
    bytes
}

async fn post_process_form(app: &TestApp, form: reqwest::multipart::Form) -> reqwest::Response {
    let request = app.client.post(app.url("/signer_processes")).bearer_auth(token("relying-app")).multipart(form);
    request.send().await.expect("req")
}

async fn until_nothing_staged(app: &TestApp) -> i64 {
    let staged = "SELECT count(*) FROM document_contents WHERE document_id IS NULL";
    for _ in 0..100 {
        if app.count(staged).await == 0 {
            return 0;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    app.count(staged).await
}

#[tokio::test]
async fn large_documents_go_to_the_store_in_chunks_and_come_back_streamed_whole() {
    let app = spawn_app_with(|s| {
        s.server.max_document_bytes = std::num::NonZeroUsize::new(5 * 1024 * 1024).expect("positive");
    })
    .await;
    let (one, three) = (large_pdf(1024 * 1024 + 17), large_pdf(3 * 1024 * 1024));
    let process = app.create_process_with_documents(&[("one.pdf", &one), ("three.pdf", &three)]).await;
    for (document, bytes) in process["documents"].as_array().expect("documents").iter().zip([&one, &three]) {
        let id = document["id"].as_str().expect("id");
        let r = app.get("relying-app", &format!("/documents/{id}/content")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-length"], bytes.len().to_string().as_str(), "the stored size, up front");
        let read = r.bytes().await.expect("bytes");
        assert!(read.as_ref() == bytes.as_slice(), "{id}: {} bytes back for {} sent", read.len(), bytes.len());
    }
    let chunks = app.count("SELECT count(*) FROM document_chunks").await;
    assert_eq!(chunks, 17 + 48, "stored as 64 KiB chunks");
    assert_eq!(until_nothing_staged(&app).await, 0, "adopted, nothing left staged");

    // Over the limit after several chunks were staged: 413, and nothing of it stays.
    let too_large = large_pdf(5 * 1024 * 1024 + 1);
    let form = app.process_form().part(
        "document",
        reqwest::multipart::Part::bytes(too_large).file_name("big.pdf").mime_str("application/pdf").expect("mime"),
    );
    let r = post_process_form(&app, form).await;
    assert_problem(r, 413, "payload-too-large", "over server.max_document_bytes").await;
    // Staged whole, then refused: an invalid process part after the document.
    let form = reqwest::multipart::Form::new()
        .part("document", reqwest::multipart::Part::bytes(large_pdf(300_000)).file_name("a.pdf"))
        .part("process", reqwest::multipart::Part::text("{\"process_type\": 5}"));
    let r = post_process_form(&app, form).await;
    assert_problem(r, 400, "invalid-body", "an invalid process part").await;
    assert_eq!(until_nothing_staged(&app).await, 0, "refused uploads leave nothing staged");
    assert_eq!(app.count("SELECT count(*) FROM document_chunks").await, chunks, "and no chunk");
    assert_eq!(app.count("SELECT count(*) FROM documents").await, 2, "nor a document");
}

#[tokio::test]
async fn time_spent_waiting_for_the_store_does_not_count_against_the_body_time_out() {
    let app = spawn_app_with(|s| s.server.body_timeout_seconds = std::num::NonZeroU64::new(1).expect("positive")).await;
    let esignsp_adapters::store::Store::Postgres(pg) = &app.db else {
        return; // the lock below is PostgreSQL's; SQLite's single writer is covered by the conformance suite
    };
    // The store is slow: chunk writes wait 2.5 s for a lock, longer than the body may take.
    let mut lock = pg.pool().begin().await.expect("begin");
    sqlx::query("LOCK TABLE document_chunks IN SHARE MODE").execute(&mut *lock).await.expect("lock");
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        lock.commit().await.expect("release");
    });
    let bytes = large_pdf(300_000);
    let process = app.create_process_with_documents(&[("slow.pdf", &bytes)]).await;
    release.await.expect("released");
    let id = process["documents"][0]["id"].as_str().expect("id");
    let read = app.get("relying-app", &format!("/documents/{id}/content")).await.bytes().await.expect("bytes");
    assert!(read.as_ref() == bytes.as_slice(), "a body sent at once is not timed out while the store is slow");
}
