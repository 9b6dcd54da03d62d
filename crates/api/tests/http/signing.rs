//! The built-in signing page (SPEC §10): O12 while pending answers the page; *Sign* signs
//! every document and establishes the results in one transition; *Decline* cancels. Signed
//! documents are validated by pdfsig, pyHanko and qpdf against the test signing identity's
//! root.

use esignsp_testkit::pdf::{assert_valid, multi_page_pdf};
use serde_json::Value;
use sha2::Digest;

use crate::common::*;

fn sha256_hex(bytes: &[u8]) -> String {
    esignsp_testkit::hex(&sha2::Sha256::digest(bytes))
}

/// Creates a process of `documents` (file name, bytes) with a callback URL; its representation.
async fn create(app: &TestApp, documents: &[(&str, Vec<u8>)]) -> Value {
    let documents: Vec<(&str, &[u8])> = documents.iter().map(|(name, bytes)| (*name, bytes.as_slice())).collect();
    app.create_process_with_documents(&documents).await
}

/// The signing page of `process`, and the CSRF token of its forms.
async fn signing_page(app: &TestApp, process: &Value) -> (String, String) {
    let task = process["tasks"]["pending"][0]["url"].as_str().expect("task url");
    let r = app.client.get(task).send().await.expect("page");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
    let csp = r.headers()["content-security-policy"].to_str().expect("ascii").to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = r.text().await.expect("html");
    let token = html
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned();
    (html, token)
}

async fn post(app: &TestApp, action: &str, process_id: &str, token: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/ui/{action}")))
        .form(&[("signerProcessId", process_id), ("csrf_token", token)])
        .send()
        .await
        .expect("post")
}

async fn content(app: &TestApp, document_id: &str) -> Vec<u8> {
    let r = app.get("relying-app", &format!("/documents/{document_id}/content")).await;
    assert_eq!(r.status(), 200);
    r.bytes().await.expect("bytes").to_vec()
}

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("esignsp-http-signing-{}-{name}-{}", std::process::id(), rand::random::<u32>()))
}

#[tokio::test]
async fn sign_signs_every_document_finishes_the_process_and_redirects_to_the_callback() {
    let app = spawn_app().await;
    let (three, two) = (multi_page_pdf(3), multi_page_pdf(2));
    let process = create(&app, &[("contract.pdf", three.clone()), ("annex.pdf", two.clone())]).await;
    let id = process["id"].as_str().expect("id");
    let (html, token) = signing_page(&app, &process).await;
    assert!(html.contains("contract.pdf") && html.contains("annex.pdf"), "names listed:\n{html}");
    assert!(html.contains("3 pages") && html.contains("2 pages"), "page counts listed:\n{html}");
    assert!(
        html.contains("<iframe src=\"/trustedx-resources/esignsp/v2/ui/document?signerProcessId="),
        "each shown inline:\n{html}"
    );
    assert!(html.contains("B-B"), "the level is named:\n{html}");

    let r = post(&app, "sign", id, &token).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("https://relying.example/done?x=1&status=finished&signer_process_id={id}")
    );
    let result: Value =
        app.get("relying-app", &format!("/signer_processes/{id}/result")).await.json().await.expect("json");
    assert_eq!(result["status"], "finished");

    let documents: Value =
        app.get("relying-app", &format!("/signer_processes/{id}/documents")).await.json().await.expect("json");
    let documents = documents["documents"].as_array().or_else(|| documents.as_array()).cloned().expect("documents");
    let dir = scratch("finished");
    let events: Value =
        app.get("relying-app", &format!("/signer_processes/{id}/events")).await.json().await.expect("json");
    let signing = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "result")
        .map(|e| e["signing"].clone())
        .expect("a result event with its signing record");
    for (n, (document, original)) in documents.iter().zip([&three, &two]).enumerate() {
        assert_eq!(document["result"]["status"], "finished");
        let doc_id = document["id"].as_str().expect("document id");
        let signed = content(&app, doc_id).await;
        assert!(signed.len() > original.len() && signed.starts_with(original), "an incremental update of the upload");
        assert_eq!(document["sha256"], sha256_hex(&signed), "the representation describes the signed bytes");
        let record = &signing["documents"][n];
        assert_eq!(record["document_id"], doc_id);
        assert_eq!(record["level"], "B-B");
        assert_eq!(record["original_sha256"], sha256_hex(original));
        assert_eq!(record["signed_sha256"], sha256_hex(&signed));
        let validation = assert_valid(&dir, &format!("{n}.pdf"), &signed, &signing_identity().ca_file, 1);
        println!("== document {n}\n{}\n{}", validation.pdfsig, validation.pyhanko);
    }
    let _ = std::fs::remove_dir_all(dir);

    // A repeated (or late) POST changes nothing and redirects the same way.
    let before = app.events_of(id).await;
    let again = post(&app, "sign", id, &token).await;
    assert_eq!(again.status(), 303);
    assert_eq!(again.headers()["location"], r.headers()["location"]);
    assert_eq!(app.events_of(id).await, before, "nothing written by a repeated Sign");
    let declined_late = post(&app, "decline", id, &token).await;
    assert_eq!(declined_late.status(), 303);
    assert!(declined_late.headers()["location"].to_str().expect("ascii").contains("status=finished"));
    assert_eq!(app.events_of(id).await, before, "nothing written by a late Decline");
}

#[tokio::test]
async fn decline_cancels_with_the_signers_message_and_signs_nothing() {
    let app = spawn_app().await;
    let pdf = multi_page_pdf(1);
    let process = create(&app, &[("contract.pdf", pdf.clone())]).await;
    let id = process["id"].as_str().expect("id");
    let (html, token) = signing_page(&app, &process).await;
    assert!(html.contains("1 page"), "{html}");
    let r = post(&app, "decline", id, &token).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("https://relying.example/done?x=1&status=canceled&signer_process_id={id}")
    );
    let result: Value =
        app.get("relying-app", &format!("/signer_processes/{id}/result")).await.json().await.expect("json");
    assert_eq!(result["status"], "canceled");
    assert_eq!(result["details"]["message"], "declined by the signer");
    let doc_id = process["documents"][0]["id"].as_str().or_else(|| process["documents"][0]["document_id"].as_str());
    if let Some(doc_id) = doc_id {
        assert_eq!(content(&app, doc_id).await, pdf, "a declined document keeps its bytes");
    }
}

#[tokio::test]
async fn a_form_without_the_tasks_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let process = create(&app, &[("contract.pdf", multi_page_pdf(1))]).await;
    let other = create(&app, &[("other.pdf", multi_page_pdf(1))]).await;
    let id = process["id"].as_str().expect("id");
    let (_, other_token) = signing_page(&app, &other).await;
    let before = app.events_of(id).await;
    for token in ["", "forged", other_token.as_str()] {
        for action in ["sign", "decline"] {
            let r = post(&app, action, id, token).await;
            assert_eq!(r.status(), 403, "{action} with {token:?}");
            assert!(r.text().await.expect("text").contains("does not belong"), "{action} with {token:?}");
        }
    }
    let other_id = other["id"].as_str().expect("id");
    let deleted = app
        .client
        .delete(app.url(&format!("/signer_processes/{other_id}")))
        .bearer_auth(token("relying-app"))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    let unknown = post(&app, "sign", other_id, &other_token).await;
    assert_eq!(unknown.status(), 404, "a deleted process is not found");
    let incomplete = app.client.post(app.url("/ui/sign")).form(&[("signerProcessId", id)]).send().await.expect("post");
    assert_eq!(incomplete.status(), 403);
    let get = app.client.get(app.url("/ui/sign")).send().await.expect("get");
    assert_eq!(get.status(), 405);
    assert_eq!(app.events_of(id).await, before, "nothing written");
    let result = app.get("relying-app", &format!("/signer_processes/{id}/result")).await;
    assert_eq!(result.status(), 404, "still pending");
}

#[tokio::test]
async fn a_document_that_cannot_be_signed_fails_and_the_rules_give_failed_documents() {
    let app = spawn_app().await;
    let good = multi_page_pdf(2);
    // Declared a PDF and starting like one, but without a readable body: damaged.
    let damaged = b"%PDF-1.7\nthis is not a PDF body\n%%EOF\n".to_vec();
    let process = create(&app, &[("good.pdf", good.clone()), ("damaged.pdf", damaged.clone())]).await;
    let id = process["id"].as_str().expect("id");
    let (html, token) = signing_page(&app, &process).await;
    assert!(html.contains("cannot be signed"), "the page says so before signing:\n{html}");
    let r = post(&app, "sign", id, &token).await;
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"].to_str().expect("ascii").contains("status=failed_documents"));
    let documents: Value =
        app.get("relying-app", &format!("/signer_processes/{id}/documents")).await.json().await.expect("json");
    let documents = documents["documents"].as_array().or_else(|| documents.as_array()).cloned().expect("documents");
    assert_eq!(documents[0]["result"]["status"], "finished");
    assert_eq!(documents[1]["result"]["status"], "failed");
    assert_eq!(documents[1]["result"]["details"]["message"], "the PDF is damaged");
    let damaged_id = documents[1]["id"].as_str().expect("id");
    assert_eq!(content(&app, damaged_id).await, damaged, "a failed document keeps its bytes");
    let signed = content(&app, documents[0]["id"].as_str().expect("id")).await;
    let dir = scratch("failed-documents");
    assert_valid(&dir, "good.pdf", &signed, &signing_identity().ca_file, 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_process_finished_through_the_api_is_not_signed_by_a_late_post() {
    let app = spawn_app().await;
    let pdf = multi_page_pdf(1);
    let process = create(&app, &[("contract.pdf", pdf.clone())]).await;
    let id = process["id"].as_str().expect("id");
    let (_, token) = signing_page(&app, &process).await;
    assert_eq!(app.put_result("relying-app", id, r#"{"status":"canceled"}"#).await.status(), 200);
    let r = post(&app, "sign", id, &token).await;
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"].to_str().expect("ascii").contains("status=canceled"));
    let documents: Value =
        app.get("relying-app", &format!("/signer_processes/{id}/documents")).await.json().await.expect("json");
    let documents = documents["documents"].as_array().or_else(|| documents.as_array()).cloned().expect("documents");
    assert_eq!(content(&app, documents[0]["id"].as_str().expect("id")).await, pdf, "not signed");
}

#[tokio::test]
async fn the_inline_view_shows_only_documents_of_the_process() {
    let app = spawn_app().await;
    let pdf = multi_page_pdf(1);
    let process = create(&app, &[("contract.pdf", pdf.clone())]).await;
    let other = create(&app, &[("other.pdf", multi_page_pdf(2))]).await;
    let id = process["id"].as_str().expect("id");
    let (html, _) = signing_page(&app, &process).await;
    let link = html.split("<iframe src=\"").nth(1).and_then(|r| r.split('"').next()).expect("frame link");
    let link = link.replace("&amp;", "&");
    let r = app.client.get(format!("http://127.0.0.1:{}{link}", app.port)).send().await.expect("document");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(r.headers()["content-disposition"].to_str().expect("ascii").starts_with("inline"));
    assert_eq!(r.bytes().await.expect("bytes").to_vec(), pdf);
    let (other_html, _) = signing_page(&app, &other).await;
    let other_doc = other_html.split("&amp;document=").nth(1).and_then(|r| r.split('"').next()).expect("doc id");
    let foreign = app
        .client
        .get(app.url(&format!("/ui/document?signerProcessId={id}&document={other_doc}")))
        .send()
        .await
        .expect("req");
    assert_eq!(foreign.status(), 404, "a document of another process is not shown through this one");
    assert_eq!(app.put_result("relying-app", id, r#"{"status":"canceled"}"#).await.status(), 200);
    let ended = app.client.get(format!("http://127.0.0.1:{}{link}", app.port)).send().await.expect("document");
    assert_eq!(ended.status(), 404, "the view ends with the signing task (O10 serves the relying application)");
}

#[tokio::test]
async fn a_document_that_is_not_a_pdf_is_never_shown_inline_and_cannot_script_the_page() {
    let app = spawn_app().await;
    let html = b"<html><script>parent.document.title = 'owned'</script></html>".to_vec();
    let mut form = reqwest::multipart::Form::new().part("process", reqwest::multipart::Part::text(PROCESS_JSON));
    form = form.part(
        "document",
        reqwest::multipart::Part::bytes(html.clone()).file_name("page.html").mime_str("text/html").expect("mime"),
    );
    let r = app
        .client
        .post(app.url("/signer_processes"))
        .bearer_auth(token("relying-app"))
        .multipart(form)
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201);
    let process: Value = r.json().await.expect("json");
    let (page, _) = signing_page(&app, &process).await;
    assert!(!page.contains("<iframe"), "no inline view of a document that is not a PDF:\n{page}");
    let link = page.split("<a href=\"").nth(1).and_then(|r| r.split('"').next()).expect("link").replace("&amp;", "&");
    let r = app.client.get(format!("http://127.0.0.1:{}{link}", app.port)).send().await.expect("document");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"].to_str().expect("ascii").starts_with("attachment"));
    let csp = r.headers()["content-security-policy"].to_str().expect("ascii");
    assert!(csp.contains("sandbox") && csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(r.bytes().await.expect("bytes").to_vec(), html);
}

#[tokio::test]
async fn the_pages_links_are_path_absolute_so_a_trailing_slash_does_not_break_them() {
    let app = spawn_app().await;
    let process = create(&app, &[("contract.pdf", multi_page_pdf(1))]).await;
    let task = process["tasks"]["pending"][0]["url"].as_str().expect("task url");
    let slashed = task.replace("/ui?", "/ui/?");
    let r = app.client.get(&slashed).send().await.expect("page");
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("html");
    for needle in [
        "action=\"/trustedx-resources/esignsp/v2/ui/sign\"",
        "action=\"/trustedx-resources/esignsp/v2/ui/decline\"",
        "href=\"/trustedx-resources/esignsp/v2/ui/assets/signing.css\"",
        "src=\"/trustedx-resources/esignsp/v2/ui/assets/signing.js\"",
        "src=\"/trustedx-resources/esignsp/v2/ui/document?signerProcessId=",
    ] {
        assert!(html.contains(needle), "{needle} in:\n{html}");
    }
}

#[tokio::test]
async fn a_page_opened_before_a_restart_still_signs_after_it() {
    let dir = std::env::temp_dir().join(format!("esignsp-http-form-secret-{}", rand::random::<u64>()));
    let database_url = fresh_database_url().await;
    let mut settings = test_settings(&database_url);
    settings.server.data_dir = dir.clone();
    let app = start(settings.clone(), database_url.clone()).await;
    let process = create(&app, &[("contract.pdf", multi_page_pdf(1))]).await;
    let (_, token) = signing_page(&app, &process).await;
    app.stop().await;
    let app = start(settings, database_url).await;
    let id = process["id"].as_str().expect("id");
    let r = post(&app, "sign", id, &token).await;
    assert_eq!(r.status(), 303, "the form key is kept in the data directory");
    assert!(r.headers()["location"].to_str().expect("ascii").contains("status=finished"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn concurrent_sign_posts_sign_once() {
    let app = spawn_app().await;
    let process = create(&app, &[("contract.pdf", multi_page_pdf(2))]).await;
    let id = process["id"].as_str().expect("id").to_owned();
    let (_, token) = signing_page(&app, &process).await;
    let posts = (0..8).map(|_| post(&app, "sign", &id, &token));
    let answers = futures_util::future::join_all(posts).await;
    assert!(answers.iter().all(|r| r.status() == 303));
    let documents: Value =
        app.get("relying-app", &format!("/signer_processes/{id}/documents")).await.json().await.expect("json");
    let documents = documents["documents"].as_array().or_else(|| documents.as_array()).cloned().expect("documents");
    let signed = content(&app, documents[0]["id"].as_str().expect("id")).await;
    let dir = scratch("concurrent");
    assert_valid(&dir, "signed.pdf", &signed, &signing_identity().ca_file, 1);
    let _ = std::fs::remove_dir_all(dir);
    let events = app.events_of(&id).await;
    assert_eq!(events.iter().filter(|e| *e == "result").count(), 1, "{events:?}");
}
