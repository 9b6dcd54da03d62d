//! Bad input gets its documented 4xx problem document, never a 5xx, and changes nothing.

use std::io::Write;

use serde_json::Value;

use crate::common::*;

async fn put_raw(app: &TestApp, id: &str, content_type: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut r =
        app.client.put(app.url(&format!("/signer_processes/{id}/result"))).bearer_auth(token("relying-app")).body(body);
    if let Some(ct) = content_type {
        r = r.header("Content-Type", ct);
    }
    r.send().await.expect("request")
}

#[tokio::test]
async fn invalid_result_bodies_answer_400_and_store_nothing() {
    let app = spawn_app().await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    let too_long = format!(r#"{{"status":"finished","details":{{"message":"{}"}}}}"#, "x".repeat(4097));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (br#"{"status":"finished""#.to_vec(), "truncated JSON"),
        (br#"{"status":"finished","status":"failed"}"#.to_vec(), "duplicate keys"),
        (br#"{"status":"finished","details":{"message":"a\u0000b"}}"#.to_vec(), "NUL in the message"),
        (br#"{"status":"done"}"#.to_vec(), "unknown status"),
        (br#"{"status":"Finished"}"#.to_vec(), "miscased status"),
        (br#"{"status":"finished","details":{"message":"\ud800"}}"#.to_vec(), "lone surrogate"),
        (b"\xef\xbb\xbf{\"status\":\"finished\"}".to_vec(), "byte-order mark"),
        (b"{\"status\":\"fin\xc3\x28ished\"}".to_vec(), "invalid UTF-8"),
        (br#"{"status":["finished"]}"#.to_vec(), "wrong type"),
        (br#"{"details":{"message":"m"}}"#.to_vec(), "missing status"),
        (br#"{"status":"finished","details":{"message":7}}"#.to_vec(), "message not a string"),
        (too_long.into_bytes(), "message over 4096 characters"),
        (b"".to_vec(), "empty body"),
        (b"null".to_vec(), "null body"),
    ];
    for (body, why) in cases {
        let r = put_raw(&app, &id, Some("application/json"), body).await;
        assert_problem(r, 400, "invalid-body", why).await;
    }
    assert_eq!(app.events_of(&id).await, ["created"], "nothing stored");
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM signer_processes WHERE id = '{id}' AND result_status IS NULL")).await,
        1
    );
}

#[tokio::test]
async fn wrong_or_missing_content_types_answer_415() {
    let app = spawn_app().await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/merge-patch+json"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("garbage"),
    ] {
        let r = put_raw(&app, &id, ct, br#"{"status":"finished"}"#.to_vec()).await;
        assert_problem(r, 415, "unsupported-media-type", &format!("{ct:?}")).await;
    }
    for ct in ["application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"] {
        let r = put_raw(&app, &id, Some(ct), br#"{"status":"canceled"}"#.to_vec()).await;
        assert_eq!(r.status(), 200, "{ct} is JSON");
    }
}

#[tokio::test]
async fn oversized_bodies_answer_413_counted_after_decoding() {
    let app = spawn_app_with(|s| s.server.max_json_bytes = 1024.try_into().expect("positive")).await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    let big = format!(r#"{{"status":"finished","pad":"{}"}}"#, "x".repeat(2048));
    assert_problem(
        put_raw(&app, &id, Some("application/json"), big.clone().into_bytes()).await,
        413,
        "payload-too-large",
        "plain",
    )
    .await;

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(big.as_bytes()).expect("gzip");
    let compressed = gz.finish().expect("gzip");
    assert!(compressed.len() < 1024, "the compressed body is under the limit");
    let r = app
        .client
        .put(app.url(&format!("/signer_processes/{id}/result")))
        .bearer_auth(token("relying-app"))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(compressed)
        .send()
        .await
        .expect("request");
    assert_problem(r, 413, "payload-too-large", "gzip that decodes beyond the limit").await;
    assert_eq!(app.events_of(&id).await, ["created"]);
}

#[tokio::test]
async fn path_ids_that_cannot_be_ours_answer_like_unknown_ids() {
    let app = spawn_app().await;
    let long = "a".repeat(10_000);
    for id in [
        "%00",
        "abc%2Fdef",
        "..%2F..%2Fetc",
        long.as_str(),
        "x'%20OR%201=1--",
        "%27;DROP%20TABLE%20signer_processes;--",
        "%FF%FE",
        "0123456789ABCDEFGHIJKLMNOPQRSTUV",
    ] {
        let why = format!("id {}", &id[..id.len().min(40)]);
        let r = put_raw(&app, id, Some("application/json"), br#"{"status":"finished"}"#.to_vec()).await;
        assert_problem(r, 404, "not-found", &why).await;
        let r = app.get("relying-app", &format!("/signer_processes/{id}/result")).await;
        assert_problem(r, 410, "process-not-found", &why).await;
        let r = app.get("relying-app", &format!("/signer_processes/{id}")).await;
        assert!(r.status() == 404 || r.status() == 414, "{why}: {}", r.status());
    }
    assert_eq!(app.count("SELECT count(*) FROM signer_processes").await, 0);
}

#[tokio::test]
async fn invalid_creation_requests_answer_4xx_and_store_nothing() {
    let app = spawn_app().await;
    let post = |form: reqwest::multipart::Form| {
        app.client.post(app.url("/signer_processes")).bearer_auth(token("relying-app")).multipart(form).send()
    };
    let doc = || reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("a.pdf");
    let r = post(reqwest::multipart::Form::new().part("document", doc())).await.expect("req");
    assert_problem(r, 400, "invalid-body", "no process part").await;
    let r = post(reqwest::multipart::Form::new().part("process", reqwest::multipart::Part::text(PROCESS_JSON)))
        .await
        .expect("req");
    assert_problem(r, 400, "invalid-body", "no document").await;
    for (json, why) in [
        ("{", "truncated process JSON"),
        (r#"{"process_type":"urn:other"}"#, "unknown process_type"),
        (
            r#"{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","labels":"x"}"#,
            "labels of the wrong type",
        ),
        (
            r#"{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","finish_callback_url":"not absolute"}"#,
            "relative callback",
        ),
        (
            r#"{"process_type":"urn:safelayer:eidas:processes:document:sign","process_type":"urn:safelayer:eidas:processes:document:sign"}"#,
            "duplicate key",
        ),
    ] {
        let form = reqwest::multipart::Form::new()
            .part("process", reqwest::multipart::Part::text(json))
            .part("document", doc());
        assert_problem(post(form).await.expect("req"), 400, "invalid-body", why).await;
    }
    let r = app
        .client
        .post(app.url("/signer_processes"))
        .bearer_auth(token("relying-app"))
        .header("Content-Type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("req");
    assert_problem(r, 415, "unsupported-media-type", "text/plain creation").await;
    let r = app
        .client
        .post(app.url("/signer_processes"))
        .bearer_auth(token("relying-app"))
        .header("Content-Type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"process\"\r\n\r\n{}")
        .send()
        .await
        .expect("req");
    assert_problem(r, 400, "invalid-body", "truncated multipart").await;
    assert_eq!(app.count("SELECT count(*) FROM signer_processes").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM documents").await, 0);
}

#[tokio::test]
async fn oversized_documents_answer_413() {
    let app = spawn_app_with(|s| s.server.max_document_bytes = (64 * 1024).try_into().expect("positive")).await;
    let form = reqwest::multipart::Form::new()
        .part("process", reqwest::multipart::Part::text(PROCESS_JSON))
        .part("document", reqwest::multipart::Part::bytes(vec![b'%'; 200 * 1024]).file_name("big.pdf"));
    let r = app
        .client
        .post(app.url("/signer_processes"))
        .bearer_auth(token("relying-app"))
        .multipart(form)
        .send()
        .await
        .expect("req");
    assert_problem(r, 413, "payload-too-large", "200 KiB over a 64 KiB limit").await;
    assert_eq!(app.count("SELECT count(*) FROM documents").await, 0);
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_problem_documents() {
    let app = spawn_app().await;
    let r = app.get("relying-app", "/nothing-here").await;
    assert_problem(r, 404, "not-found", "unknown path").await;
    let r = app.client.patch(app.url("/signer_processes")).send().await.expect("req");
    assert_eq!(r.headers()["allow"], "POST");
    assert_problem(r, 405, "method-not-allowed", "PATCH on the collection").await;
    let r = app
        .client
        .post(app.url("/signer_processes/0123456789abcdefghijklmnopqrstuv/result"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.headers()["allow"], "GET, HEAD, PUT");
    assert_problem(r, 405, "method-not-allowed", "POST on result").await;
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane_and_generated_otherwise() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/x")).header("X-Request-Id", "abc-123").send().await.expect("req");
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = app.client.get(app.url("/x")).header("X-Request-Id", "bad id with spaces").send().await.expect("req");
    let generated = r.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert_eq!(generated.len(), 32, "a fresh id replaces an insane one: {generated}");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["status"], 404);
}

#[tokio::test]
async fn unsupported_content_encodings_answer_415_and_store_nothing() {
    let app = spawn_app().await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    for encoding in ["br", "xyz", "gzip, gzip"] {
        let r = app
            .client
            .put(app.url(&format!("/signer_processes/{id}/result")))
            .bearer_auth(token("relying-app"))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", encoding)
            .body(r#"{"status":"finished"}"#)
            .send()
            .await
            .expect("request");
        assert_problem(r, 415, "unsupported-media-type", encoding).await;
    }
    assert_eq!(app.events_of(&id).await, ["created"]);
}

#[tokio::test]
async fn multipart_bodies_without_a_closing_boundary_are_refused_not_hung() {
    let app = spawn_app().await;
    for body in [
        "--XX\r\nContent-Disposition: form-data; name=\"process\"\r\n\r\n{}\r\n".to_owned(),
        format!("--XX\r\nContent-Disposition: form-data; name=\"process\"\r\n\r\n{PROCESS_JSON}\r\n--XX\r\nContent-Disposition: form-data; name=\"document\"\r\n\r\n%PDF-1.4\r\n"),
    ] {
        let request = app
            .client
            .post(app.url("/signer_processes"))
            .bearer_auth(token("relying-app"))
            .header("Content-Type", "multipart/form-data; boundary=XX")
            .body(body)
            .send();
        let r = tokio::time::timeout(std::time::Duration::from_secs(20), request).await.expect("answered, not hung").expect("request");
        assert_problem(r, 400, "invalid-body", "no closing boundary").await;
    }
    assert_eq!(app.count("SELECT count(*) FROM signer_processes").await, 0);
}

#[tokio::test]
async fn empty_documents_and_too_many_documents_are_refused() {
    let app = spawn_app().await;
    let form = reqwest::multipart::Form::new()
        .part("process", reqwest::multipart::Part::text(PROCESS_JSON))
        .part("document", reqwest::multipart::Part::bytes(Vec::new()).file_name("empty.pdf"));
    let r = app
        .client
        .post(app.url("/signer_processes"))
        .bearer_auth(token("relying-app"))
        .multipart(form)
        .send()
        .await
        .expect("req");
    assert_problem(r, 400, "invalid-body", "empty document").await;
    let mut form = reqwest::multipart::Form::new().part("process", reqwest::multipart::Part::text(PROCESS_JSON));
    for _ in 0..101 {
        form = form.part("document", reqwest::multipart::Part::bytes(PDF.to_vec()));
    }
    let r = app
        .client
        .post(app.url("/signer_processes"))
        .bearer_auth(token("relying-app"))
        .multipart(form)
        .send()
        .await
        .expect("req");
    assert_problem(r, 400, "invalid-body", "101 documents").await;
    assert_eq!(app.count("SELECT count(*) FROM documents").await, 0);
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let app = spawn_app().await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    let r = app
        .client
        .head(app.url(&format!("/signer_processes/{id}")))
        .bearer_auth(token("relying-app"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.bytes().await.expect("body").is_empty());
    let r = app.client.head(app.url(&format!("/signer_processes/{id}"))).send().await.expect("req");
    assert_eq!(r.status(), 401, "HEAD needs a token like GET");
}

#[tokio::test]
async fn a_stalled_body_answers_408_instead_of_holding_the_connection() {
    let app = spawn_app_with(|s| s.server.body_timeout_seconds = std::num::NonZeroU64::MIN).await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    let bearer = token("relying-app");
    let form = |path: &str| {
        format!(
            "POST /trustedx-resources/esignsp/v2{path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bearer}\r\n\
             Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: 100000\r\n\r\n"
        )
    };
    let document_part = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"document\"; filename=\"a.pdf\"\r\n\r\n%PDF-1.7 part"
    );
    let process_part =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"process\"\r\n\r\n{{\"process_type\":");
    let cases = [
        (
            "a JSON result that stops inside its value",
            format!(
                "PUT /trustedx-resources/esignsp/v2/signer_processes/{id}/result HTTP/1.1\r\nHost: x\r\n\
                 Authorization: Bearer {bearer}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"status\":"
            ),
        ),
        ("an O1 form before its first byte", form("/signer_processes")),
        ("an O1 form inside a part's headers", format!("{}--{BOUNDARY}\r\nContent-Dispo", form("/signer_processes"))),
        ("an O1 form inside the process JSON", format!("{}{process_part}", form("/signer_processes"))),
        ("an O1 form inside the document bytes", format!("{}{document_part}", form("/signer_processes"))),
        ("an O8 form inside the document bytes", format!("{}{document_part}", form("/documents"))),
    ];
    for (why, request) in cases {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.expect("connect");
        tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes()).await.expect("write");
        let started = std::time::Instant::now();
        let mut answer = Vec::new();
        // The whole answer, then the end of the connection: a stalled body is not read as a
        // next request.
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer),
        )
        .await
        .unwrap_or_else(|_| panic!("{why}: answered and closed, not held open"))
        .unwrap_or_else(|e| panic!("{why}: read: {e}"));
        let answer = String::from_utf8_lossy(&answer).to_string();
        assert!(answer.starts_with("HTTP/1.1 408"), "{why}: {answer}");
        assert!(answer.contains("urn:esignsp:problem:request-timeout"), "{why}: {answer}");
        assert!(answer.to_ascii_lowercase().contains("connection: close"), "{why}: {answer}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{why}: {:?}", started.elapsed());
    }
    assert_eq!(app.events_of(&id).await, ["created"]);
    assert_eq!(app.count("SELECT count(*) FROM signer_processes").await, 1, "no stalled form stored a process");
    assert_eq!(app.count("SELECT count(*) FROM documents").await, 1, "no stalled form stored a document");
}

#[tokio::test]
async fn callback_urls_with_code_or_content_schemes_are_refused() {
    let app = spawn_app().await;
    for url in [
        "javascript:alert(document.cookie)//",
        "data:text/html,<script>alert(1)</script>",
        "VBScript:x",
        "file:///etc/passwd",
    ] {
        let process = serde_json::json!({"process_type": "urn:safelayer:eidas:processes:document:sign:esigp", "finish_callback_url": url});
        let form = reqwest::multipart::Form::new()
            .part("process", reqwest::multipart::Part::text(process.to_string()))
            .part("document", reqwest::multipart::Part::bytes(PDF.to_vec()));
        let r = app
            .client
            .post(app.url("/signer_processes"))
            .bearer_auth(token("relying-app"))
            .multipart(form)
            .send()
            .await
            .expect("req");
        assert_problem(r, 400, "invalid-body", url).await;
    }
}

const BOUNDARY: &str = "esignsp-test-boundary";

/// A raw multipart body of `(part header lines, content)` parts, so that tests can send the
/// exact `Content-Disposition` parameters a client library would never produce.
fn raw_form(parts: &[(Vec<String>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (headers, content) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        for h in headers {
            body.extend_from_slice(format!("{h}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post_raw_form(app: &TestApp, path: &str, body: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token("relying-app"))
        .header("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body)
        .send()
        .await
        .expect("request")
}

/// An O1 body (`process` + one `document` with these header lines and bytes) and an O8 body
/// (the `document` alone).
fn creation_bodies(document_headers: &[String], bytes: &[u8]) -> [(&'static str, Vec<u8>); 2] {
    let process = (vec![r#"Content-Disposition: form-data; name="process""#.to_owned()], PROCESS_JSON.as_bytes());
    let document = (document_headers.to_vec(), bytes);
    [("/signer_processes", raw_form(&[process, document.clone()])), ("/documents", raw_form(&[document]))]
}

fn disposition(params: &str) -> Vec<String> {
    vec![format!("Content-Disposition: form-data; name=\"document\"; {params}")]
}

#[tokio::test]
async fn file_names_with_nul_invalid_utf8_or_too_many_characters_answer_400_naming_the_part() {
    let app = spawn_app().await;
    let long = "a".repeat(1025);
    for (params, defect) in [
        ("filename*=UTF-8''a%00b.pdf", "NUL"),
        ("filename*=iso-8859-1''%00", "NUL"),
        ("filename=\"ok.pdf\"; filename*=utf-8''%00.pdf", "NUL"),
        ("filename*=UTF-8''%FF%FE.pdf", "UTF-8"),
        ("filename*=UTF-8''%C3%28.pdf", "UTF-8"),
        (&format!("filename=\"{long}\""), "1024"),
        (&format!("filename*=UTF-8''{long}"), "1024"),
    ] {
        for (path, body) in creation_bodies(&disposition(params), PDF) {
            let why = format!("{path} {}", &params[..params.len().min(60)]);
            let problem = assert_problem(post_raw_form(&app, path, body).await, 400, "invalid-body", &why).await;
            let detail = problem["detail"].as_str().expect("detail");
            assert!(detail.contains("`document` part") && detail.contains("filename"), "{why}: {detail}");
            assert!(detail.contains(defect), "{why}: {detail}");
        }
    }
    assert_eq!(app.count("SELECT count(*) FROM documents").await, 0, "nothing stored");
    assert_eq!(app.count("SELECT count(*) FROM signer_processes").await, 0);
}

#[tokio::test]
async fn file_names_are_decoded_per_their_rfc_8187_charset_and_stored_on_both_stores_alike() {
    let app = spawn_app().await;
    for (params, stored) in [
        ("filename*=UTF-8''Vertrag%20%C3%A4%20%F0%9F%98%80.pdf", "Vertrag ä 😀.pdf"),
        ("filename*=iso-8859-1''caf%E9.pdf", "café.pdf"),
        ("filename=\"plain.pdf\"; filename*=utf-8''%E2%82%AC.pdf", "€.pdf"),
        ("filename=\"Vertrag-ä.pdf\"", "Vertrag-ä.pdf"),
    ] {
        for (path, body) in creation_bodies(&disposition(params), PDF) {
            let r = post_raw_form(&app, path, body).await;
            assert_eq!(r.status(), 201, "{path} {params}");
            let names = app.strings("SELECT filename FROM documents WHERE filename IS NOT NULL").await;
            assert!(names.iter().any(|n| n == stored), "{path} {params}: {names:?}");
        }
    }
}

#[tokio::test]
async fn nul_in_any_stored_member_of_the_process_json_answers_400_naming_the_member() {
    let app = spawn_app().await;
    let esigp = "urn:safelayer:eidas:processes:document:sign:esigp";
    for (process, member) in [
        (serde_json::json!({"process_type": esigp, "labels": [["ok", "a\u{0}b"]]}), "labels[0][1]"),
        (
            serde_json::json!({"process_type": esigp, "signer": {"parameters": {"signature_field": {"page": "\u{0}"}}}}),
            "signer.parameters.signature_field.page",
        ),
        (serde_json::json!({"process_type": esigp, "views": {"a\u{0}": {}}}), "views"),
        (serde_json::json!({"process_type": esigp, "ui_locales": ["en\u{0}"]}), "ui_locales[0]"),
        (
            serde_json::json!({"process_type": esigp, "finish_callback_url": "https://a.example/\u{0}"}),
            "finish_callback_url",
        ),
        (serde_json::json!({"process_type": esigp, "timestamp": {"x": "y".repeat(65_537)}}), "timestamp.x"),
    ] {
        let body = raw_form(&[
            (vec![r#"Content-Disposition: form-data; name="process""#.to_owned()], process.to_string().as_bytes()),
            (disposition("filename=\"a.pdf\""), PDF),
        ]);
        let problem =
            assert_problem(post_raw_form(&app, "/signer_processes", body).await, 400, "invalid-body", member).await;
        assert!(problem["detail"].as_str().is_some_and(|d| d.contains(member)), "{member}: {problem}");

        let mut json_form = process.clone();
        json_form["documents"] = serde_json::json!([{"id": "0123456789abcdefghijklmnopqrstuv"}]);
        let r = app
            .client
            .post(app.url("/signer_processes"))
            .bearer_auth(token("relying-app"))
            .json(&json_form)
            .send()
            .await
            .expect("req");
        let problem = assert_problem(r, 400, "invalid-body", member).await;
        assert!(problem["detail"].as_str().is_some_and(|d| d.contains(member)), "JSON O1 {member}: {problem}");
    }
    for (signers, member) in [
        (r#"[{"signature_field":{"name":"a\u0000"}}]"#, "signers[0].signature_field.name"),
        (r#"[{"k\u0000":1}]"#, "signers[0]"),
    ] {
        let body = raw_form(&[
            (disposition("filename=\"a.pdf\""), PDF),
            (vec![r#"Content-Disposition: form-data; name="signers""#.to_owned()], signers.as_bytes()),
        ]);
        let problem = assert_problem(post_raw_form(&app, "/documents", body).await, 400, "invalid-body", member).await;
        assert!(problem["detail"].as_str().is_some_and(|d| d.contains(member)), "{member}: {problem}");
    }
    assert_eq!(app.count("SELECT count(*) FROM signer_processes").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM documents").await, 0);
}

#[tokio::test]
async fn a_document_declared_as_pdf_whose_bytes_are_not_a_pdf_answers_400_naming_the_part() {
    let app = spawn_app().await;
    let named = |params: &str, content_type: Option<&str>| {
        let mut headers = disposition(params);
        headers.extend(content_type.map(|ct| format!("Content-Type: {ct}")));
        headers
    };
    for (headers, why) in [
        (named("filename=\"a.txt\"", Some("application/pdf")), "declared application/pdf"),
        (named("filename=\"a.txt\"", Some("Application/PDF; x=y")), "declared in another case, with a parameter"),
        (named("filename=\"Contract.PDF\"", None), "named *.PDF"),
        (named("filename*=UTF-8''contract.pdf", Some("application/octet-stream")), "named *.pdf via filename*"),
        (named("filename=\"a.bin\"; filename*=UTF-8''a.pdf", None), "filename* names a PDF"),
    ] {
        for (path, body) in creation_bodies(&headers, b"PK\x03\x04 not a pdf") {
            let problem = assert_problem(post_raw_form(&app, path, body).await, 400, "invalid-body", why).await;
            let detail = problem["detail"].as_str().expect("detail");
            assert!(detail.contains("`document` part #1") && detail.contains("%PDF-"), "{why}: {detail}");
        }
    }
    assert_eq!(app.count("SELECT count(*) FROM documents").await, 0, "nothing stored");
    for (headers, stored) in [
        (named("filename=\"notes.txt\"", Some("text/plain")), "text/plain"),
        (named("filename=\"data.bin\"", None), "application/octet-stream"),
        (named("filename=\"a.pdf.txt\"", Some("application/octet-stream")), "application/octet-stream"),
    ] {
        for (path, body) in creation_bodies(&headers, b"plain bytes") {
            assert_eq!(post_raw_form(&app, path, body).await.status(), 201, "{path} {stored}");
        }
    }
    assert_eq!(app.count("SELECT count(*) FROM documents WHERE media_type <> 'application/pdf'").await, 6);
}

#[tokio::test]
async fn oversized_part_headers_answer_413_naming_the_part_headers_and_their_limit() {
    let app = spawn_app().await;
    let huge = format!("filename*=UTF-8''{}.pdf", "a".repeat(100 * 1024));
    for (path, body) in creation_bodies(&disposition(&huge), PDF) {
        let problem = assert_problem(post_raw_form(&app, path, body).await, 413, "payload-too-large", path).await;
        let detail = problem["detail"].as_str().expect("detail");
        assert!(detail.contains("headers") && detail.contains("65536"), "{path}: {detail}");
        assert!(!detail.contains("request body"), "{path}: {detail}");
    }
    assert_eq!(app.count("SELECT count(*) FROM documents").await, 0);
}
