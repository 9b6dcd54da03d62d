//! Compatibility suite: the creation requests real eSignSP clients send, then their
//! follow-up calls; and the complete signing round trip of a relying application.

use serde_json::Value;

use crate::common::*;

struct ClientShape {
    name: &'static str,
    content_type: String,
    body: Vec<u8>,
}

fn part(out: &mut Vec<u8>, boundary: &str, headers: &[String], content: &[u8]) {
    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    for h in headers {
        out.extend_from_slice(format!("{h}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(content);
    out.extend_from_slice(b"\r\n");
}

fn shape(name: &'static str, boundary: &str, content_type: String, parts: &[(Vec<String>, &[u8])]) -> ClientShape {
    let mut body = Vec::new();
    for (headers, content) in parts {
        part(&mut body, boundary, headers, content);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    ClientShape { name, content_type, body }
}

fn client_shapes() -> Vec<ClientShape> {
    let json = PROCESS_JSON.as_bytes();
    let len = |b: &[u8]| format!("Content-Length: {}", b.len());
    let s = |v: &str| v.to_owned();
    vec![
        shape("Laravel/Guzzle: process as a plain field", "b1f3c2d4e5", s("multipart/form-data; boundary=b1f3c2d4e5"), &[
            (vec![s("Content-Disposition: form-data; name=\"process\""), len(json)], json),
            (vec![s("Content-Disposition: form-data; name=\"document\"; filename=\"contract.pdf\""), len(PDF), s("Content-Type: application/pdf")], PDF),
        ]),
        shape(".NET MultipartFormDataContent", "6a2c1f3e-0b7d", s("multipart/form-data; boundary=\"6a2c1f3e-0b7d\""), &[
            (vec![s("Content-Type: application/json; charset=utf-8"), s("Content-Disposition: form-data; name=process")], json),
            (vec![s("Content-Type: application/pdf"), s("Content-Disposition: form-data; name=document; filename=contract.pdf; filename*=utf-8''contract.pdf")], PDF),
        ]),
        shape("Spring RestTemplate", "Zx9-Yw8_Vu7", s("multipart/form-data;charset=UTF-8;boundary=Zx9-Yw8_Vu7"), &[
            (vec![s("Content-Disposition: form-data; name=\"process\""), s("Content-Type: application/json"), len(json)], json),
            (vec![s("Content-Disposition: form-data; name=\"document\"; filename=\"contract.pdf\""), s("Content-Type: application/pdf"), len(PDF)], PDF),
        ]),
        shape("Angular FormData: process as process.json", "----WebKitFormBoundary7MA4YWxkTrZu0gW", s("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"), &[
            (vec![s("Content-Disposition: form-data; name=\"process\"; filename=\"process.json\""), s("Content-Type: application/json")], json),
            (vec![s("Content-Disposition: form-data; name=\"document\"; filename=\"contract.pdf\""), s("Content-Type: application/pdf")], PDF),
        ]),
        shape("Alamofire: no filename, no content type", "alamofire.boundary.3b2a1c", s("multipart/form-data; boundary=alamofire.boundary.3b2a1c"), &[
            (vec![s("Content-Disposition: form-data; name=\"process\"")], json),
            (vec![s("Content-Disposition: form-data; name=\"document\"")], PDF),
        ]),
        shape("Node form-data: document without content type", "--------------------------123456789012345678901234", s("multipart/form-data; boundary=--------------------------123456789012345678901234"), &[
            (vec![s("Content-Disposition: form-data; name=\"process\"")], json),
            (vec![s("Content-Disposition: form-data; name=\"document\"; filename=\"contract.pdf\"")], PDF),
        ]),
    ]
}

#[tokio::test]
async fn real_client_requests_create_processes_and_their_follow_ups_work() {
    let app =
        spawn_app_with(|s| s.ui.signing_app_url = Some(url::Url::parse("https://sign.example/app").expect("url")))
            .await;
    for client in client_shapes() {
        let why = client.name;
        let r = app
            .client
            .post(app.url("/signer_processes?ui_locales=en"))
            .bearer_auth(token("relying-app"))
            .header("Content-Type", client.content_type)
            .body(client.body)
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 201, "{why}");
        let p: Value = r.json().await.expect("json");
        let id = p["id"].as_str().expect("id");

        let task = app.client.get(p["tasks"]["pending"][0]["url"].as_str().expect("task")).send().await.expect("req");
        assert_eq!(task.status(), 302, "{why}: the task URL redirects");
        assert_eq!(task.headers()["location"], format!("https://sign.example/app?signerProcessId={id}"), "{why}");

        let content = app
            .client
            .get(p["documents"][0]["content"].as_str().expect("content"))
            .bearer_auth(token("relying-app"))
            .send()
            .await
            .expect("req");
        assert_eq!(content.headers()["content-type"], "application/pdf", "{why}");
        assert_eq!(content.bytes().await.expect("bytes").as_ref(), PDF, "{why}: the bytes come back unchanged");

        let r = app
            .client
            .delete(p["self"].as_str().expect("self"))
            .bearer_auth(token("relying-app"))
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 204, "{why}");
    }
    assert_eq!(app.count("SELECT count(*) FROM signer_processes").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM documents").await, 0);
}

#[tokio::test]
async fn a_complete_signing_round_trip_as_a_relying_application_drives_it() {
    let app =
        spawn_app_with(|s| s.ui.signing_app_url = Some(url::Url::parse("https://sign.example/app").expect("url")))
            .await;
    // 1. The relying application creates a process with two PDFs.
    let p = app.create_process("relying-app", 2).await;
    let id = p["id"].as_str().expect("id").to_owned();
    let task = p["tasks"]["pending"][0]["url"].as_str().expect("task").to_owned();

    // 2. The user's browser follows the task URL to the signing application.
    let r = app.client.get(&task).send().await.expect("req");
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], format!("https://sign.example/app?signerProcessId={id}"));

    // 3. The signing application, with its own trusted client id, reports each document,
    //    then the process result.
    for doc in p["documents"].as_array().expect("docs") {
        let url = format!("{}/signer_processes/{id}/documents/{}/result", app.base, doc["id"].as_str().expect("doc"));
        let r = app
            .client
            .put(url)
            .bearer_auth(token("signing-app"))
            .header("Content-Type", "application/json")
            .body(r#"{"status":"finished"}"#)
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 200);
    }
    let r = app
        .put_result("signing-app", &id, r#"{"status":"finished","details":{"message":"all documents signed"}}"#)
        .await;
    assert_eq!(r.status(), 200);

    // 4. The same task URL now returns the browser to the relying application.
    let r = app.client.get(&task).send().await.expect("req");
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        format!("https://relying.example/done?x=1&status=finished&signer_process_id={id}")
    );

    // 5. The relying application reads the result, downloads the document, deletes the process.
    let result: Value =
        app.get("relying-app", &format!("/signer_processes/{id}/result")).await.json().await.expect("json");
    assert_eq!(result["status"], "finished");
    let content = app
        .client
        .get(p["documents"][0]["content"].as_str().expect("content"))
        .bearer_auth(token("relying-app"))
        .send()
        .await
        .expect("req");
    assert_eq!(content.status(), 200);
    let events: Value =
        app.get("relying-app", &format!("/signer_processes/{id}/events")).await.json().await.expect("json");
    let r = app
        .client
        .delete(p["self"].as_str().expect("self"))
        .bearer_auth(token("relying-app"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 204);

    // The events tell the whole story, with who did what.
    let story: Vec<(String, String)> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| (e["type"].as_str().expect("type").to_owned(), e["actor"].as_str().expect("actor").to_owned()))
        .collect();
    let expected = [
        ("created", "relying-app"),
        ("document_result", "signing-app"),
        ("document_result", "signing-app"),
        ("result", "signing-app"),
    ];
    assert_eq!(story, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    assert_eq!(app.events_of(&id).await, ["created", "document_result", "document_result", "result", "deleted"]);
}
