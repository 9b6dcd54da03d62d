//! O12: the browser entry and return point (SPEC §5).

use serde_json::json;

use crate::common::*;

async fn follow(app: &TestApp, url: &str) -> reqwest::Response {
    app.client.get(url).send().await.expect("req")
}

#[tokio::test]
async fn the_task_url_redirects_to_the_signing_app_then_to_the_callback() {
    let app = spawn_app_with(|s| {
        s.ui.signing_app_url = Some(url::Url::parse("https://sign.example/start?tenant=t1").expect("url"))
    })
    .await;
    let p = app.create_process("relying-app", 1).await;
    let id = p["id"].as_str().expect("id");
    let task = p["tasks"]["pending"][0]["url"].as_str().expect("task url");
    let r = follow(&app, task).await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], format!("https://sign.example/start?tenant=t1&signerProcessId={id}"));

    assert_eq!(app.put_result("signing-app", id, r#"{"status":"finished"}"#).await.status(), 200);
    let r = follow(&app, task).await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        format!("https://relying.example/done?x=1&status=finished&signer_process_id={id}")
    );
}

#[tokio::test]
async fn custom_scheme_callbacks_and_pages_without_urls() {
    let app = spawn_app().await;
    let form = reqwest::multipart::Form::new()
        .part("process", reqwest::multipart::Part::text(r#"{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","finish_callback_url":"com.example.app://done"}"#))
        .part("document", reqwest::multipart::Part::bytes(PDF.to_vec()));
    let p: serde_json::Value = app
        .client
        .post(app.url("/signer_processes"))
        .bearer_auth(token("relying-app"))
        .multipart(form)
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    let id = p["id"].as_str().expect("id");
    let task = p["tasks"]["pending"][0]["url"].as_str().expect("task url");
    let r = follow(&app, task).await;
    assert_eq!(r.status(), 200, "no signing app configured: the built-in signing page");
    assert!(r.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
    assert!(r.text().await.expect("text").contains("<h1>Sign 1 document</h1>"));
    assert_eq!(app.put_result("relying-app", id, r#"{"status":"canceled"}"#).await.status(), 200);
    let r = follow(&app, task).await;
    assert_eq!(r.headers()["location"], format!("com.example.app://done?status=canceled&signer_process_id={id}"));

    let plain = app
        .create_process_with_json(
            "relying-app",
            json!({"process_type": "urn:safelayer:eidas:processes:document:sign:esigp"}),
        )
        .await;
    let pid = plain["id"].as_str().expect("id");
    let message = r#"{"status":"failed","details":{"message":"<script>alert('x')</script>"}}"#;
    assert_eq!(app.put_result("relying-app", pid, message).await.status(), 200);
    let page =
        follow(&app, plain["tasks"]["pending"][0]["url"].as_str().expect("url")).await.text().await.expect("text");
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), "escaped: {page}");
    assert!(!page.contains("<script>"), "{page}");

    for query in
        ["", "?signerProcessId=", "?signerProcessId=0123456789abcdefghijklmnopqrstuv", "?signerProcessId=%3Cscript%3E"]
    {
        let r = follow(&app, &app.url(&format!("/ui{query}"))).await;
        assert_eq!(r.status(), 404, "{query}");
        assert!(!r.text().await.expect("text").contains("<script>"), "{query}");
    }
}
