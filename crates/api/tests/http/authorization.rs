//! RFC 6750 answers of every protected operation, algorithms, and tenancy (SPEC §6).

use esignsp_testkit::{keys, TestKeys};
use serde_json::{json, Value};

use crate::common::*;

const REALM_ONLY: &str = r#"Bearer realm="esignsp""#;

fn with(mut c: serde_json::Map<String, Value>, k: &str, v: Value) -> serde_json::Map<String, Value> {
    if v.is_null() {
        c.remove(k);
    } else {
        c.insert(k.to_owned(), v);
    }
    c
}

async fn put_with_headers(app: &TestApp, id: &str, query: &str, auth: &[&str]) -> reqwest::Response {
    let mut request = app
        .client
        .put(format!("{}{query}", app.url(&format!("/signer_processes/{id}/result"))))
        .header("Content-Type", "application/json")
        .body(r#"{"status":"canceled"}"#);
    for value in auth {
        request = request.header("Authorization", *value);
    }
    request.send().await.expect("request")
}

#[tokio::test]
async fn rfc6750_header_errors_answer_exactly_as_section_3_says() {
    let app = spawn_app().await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    let good = token("relying-app");
    let bearer = format!("Bearer {good}");
    let query = format!("?access_token={good}");
    let cases: Vec<(Vec<String>, &str, u16, Option<&str>, &str)> = vec![
        (vec![], "", 401, None, "no Authorization header"),
        (vec!["Basic dXNlcjpwYXNz".into()], "", 401, None, "another scheme"),
        (vec![], &query, 401, None, "token only in the query string"),
        (vec!["Bearer".into()], "", 400, Some("invalid_request"), "scheme without token"),
        (vec!["Bearer ".into()], "", 400, Some("invalid_request"), "empty token"),
        (vec![format!("Bearer\t{good}")], "", 400, Some("invalid_request"), "TAB"),
        (vec![format!("Bearer {good} extra")], "", 400, Some("invalid_request"), "trailing words"),
        (vec![format!("Bearer {good}!")], "", 400, Some("invalid_request"), "character outside b64token"),
        (vec![bearer.clone(), bearer.clone()], "", 400, Some("invalid_request"), "two headers"),
        (vec![bearer.clone()], &query, 400, Some("invalid_request"), "header and query"),
    ];
    for (headers, query, status, error, why) in cases {
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let r = put_with_headers(&app, &id, query, &headers).await;
        let challenge = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let kind = match error {
            None => "unauthorized",
            Some(_) => "invalid-request",
        };
        assert_problem(r, status, kind, why).await;
        let challenge = challenge.unwrap_or_else(|| panic!("{why}: WWW-Authenticate"));
        match error {
            None => assert_eq!(challenge, REALM_ONLY, "{why}"),
            Some(e) => assert!(
                challenge.starts_with(&format!("{REALM_ONLY}, error=\"{e}\", error_description=\"")),
                "{why}: {challenge}"
            ),
        }
        assert!(!challenge.contains(&good), "{why}: the token is never echoed");
    }
    assert_eq!(app.events_of(&id).await, ["created"], "nothing was changed by refused requests");

    let spaced = put_with_headers(&app, &id, "", &[&format!("bEaReR    {good}")]).await;
    assert_eq!(spaced.status(), 200, "scheme case-insensitive, several spaces");
}

#[tokio::test]
async fn invalid_tokens_answer_401_invalid_token_with_a_fixed_description() {
    let app = spawn_app().await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    let k = keys();
    let now = esignsp_testkit::now();
    let cases = vec![
        (k.sign(Signer::Untrusted, &claims("relying-app")), "unknown key / bad signature"),
        (k.sign(Signer::Rs256, &with(claims("relying-app"), "exp", json!(now - 600))), "expired"),
        (k.sign(Signer::Rs256, &with(claims("relying-app"), "nbf", json!(now + 600))), "not yet valid"),
        (k.sign(Signer::Rs256, &with(claims("relying-app"), "iss", json!("https://evil.example"))), "wrong issuer"),
        (k.sign(Signer::Rs256, &with(claims("relying-app"), "aud", json!("someone-else"))), "wrong audience"),
        (TestKeys::unsigned("none", &claims("relying-app")), "alg none"),
        (TestKeys::unsigned("NONE", &claims("relying-app")), "alg NONE"),
        (k.hs256_with_public_key(&claims("relying-app")), "HS256 keyed with the RSA public key"),
        ("abc.def.ghi".to_owned(), "not a JWT"),
    ];
    for (token, why) in cases {
        let r = put_with_headers(&app, &id, "", &[&format!("Bearer {token}")]).await;
        let challenge = r.headers()["www-authenticate"].to_str().expect("ascii").to_owned();
        assert_problem(r, 401, "invalid-token", why).await;
        assert!(
            challenge.starts_with(r#"Bearer realm="esignsp", error="invalid_token", error_description=""#),
            "{why}: {challenge}"
        );
        assert!(!challenge.contains(&token) && !challenge.contains("evil"), "{why}: no token or claim text");
    }
    assert_eq!(app.events_of(&id).await, ["created"]);
}

#[tokio::test]
async fn a_token_without_the_scope_answers_403_insufficient_scope() {
    let app = spawn_app().await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    for scope in [
        "openid",
        "urn:safelayer:eidas:sign:process",
        "URN:SAFELAYER:EIDAS:SIGN:PROCESS:DOCUMENT",
        "urn:safelayer:eidas:sign:process:documents",
    ] {
        let t = keys().sign(Signer::Rs256, &with(claims("relying-app"), "scope", json!(scope)));
        let r = put_with_headers(&app, &id, "", &[&format!("Bearer {t}")]).await;
        let challenge = r.headers()["www-authenticate"].to_str().expect("ascii").to_owned();
        assert_problem(r, 403, "insufficient-scope", scope).await;
        assert_eq!(challenge, format!(r#"Bearer realm="esignsp", error="insufficient_scope", scope="{SCOPE}""#));
    }
}

#[tokio::test]
async fn every_supported_algorithm_is_accepted() {
    let app = spawn_app().await;
    for signer in [Signer::Rs256, Signer::Ps256, Signer::Es256, Signer::EdDsa] {
        let t = keys().sign(signer, &claims("relying-app"));
        let r = app
            .client
            .get(app.url("/signer_processes/0123456789abcdefghijklmnopqrstuv"))
            .bearer_auth(t)
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 404, "{signer:?}: authorized, then the process is unknown");
    }
}

#[tokio::test]
async fn every_protected_operation_refuses_an_anonymous_caller() {
    let app = spawn_app().await;
    let id = "0123456789abcdefghijklmnopqrstuv";
    for (method, path) in [
        ("POST", "/signer_processes".to_owned()),
        ("GET", format!("/signer_processes/{id}")),
        ("DELETE", format!("/signer_processes/{id}")),
        ("GET", format!("/signer_processes/{id}/result")),
        ("PUT", format!("/signer_processes/{id}/result")),
        ("GET", format!("/signer_processes/{id}/events")),
        ("GET", format!("/documents/{id}/content")),
    ] {
        let r = app.client.request(method.parse().expect("method"), app.url(&path)).send().await.expect("req");
        assert_eq!(
            r.headers().get("www-authenticate").map(|v| v.to_str().expect("ascii")),
            Some(REALM_ONLY),
            "{method} {path}"
        );
        assert_problem(r, 401, "unauthorized", &format!("{method} {path}")).await;
    }
}

#[tokio::test]
async fn an_unauthenticated_upload_is_refused_before_its_body_is_read() {
    let app = spawn_app().await;
    let big = vec![b'a'; 3 * 1024 * 1024];
    let form = reqwest::multipart::Form::new()
        .part("process", reqwest::multipart::Part::text(PROCESS_JSON))
        .part("document", reqwest::multipart::Part::bytes(big));
    let r = app.client.post(app.url("/signer_processes")).multipart(form).send().await;
    // The server may answer and close before the upload is sent; either way it never
    // accepts it.
    if let Ok(r) = r {
        assert_problem(r, 401, "unauthorized", "3 MiB without a token").await;
    }
    assert_eq!(app.count("SELECT count(*) FROM documents").await, 0);
}

#[tokio::test]
async fn another_clients_process_answers_like_an_unknown_one() {
    let app = spawn_app().await;
    let process = app.create_process("owner-app", 1).await;
    let id = process["id"].as_str().expect("id");
    let doc = process["documents"][0]["id"].as_str().expect("doc id");
    assert_problem(app.get("other-app", &format!("/signer_processes/{id}")).await, 404, "not-found", "GET").await;
    assert_problem(
        app.get("other-app", &format!("/signer_processes/{id}/result")).await,
        410,
        "process-not-found",
        "GET result",
    )
    .await;
    assert_problem(app.get("other-app", &format!("/signer_processes/{id}/events")).await, 404, "not-found", "events")
        .await;
    assert_problem(app.get("other-app", &format!("/documents/{doc}/content")).await, 404, "not-found", "content").await;
    assert_problem(app.put_result("other-app", id, r#"{"status":"canceled"}"#).await, 404, "not-found", "PUT").await;
    let r = app
        .client
        .delete(app.url(&format!("/signer_processes/{id}")))
        .bearer_auth(token("other-app"))
        .send()
        .await
        .expect("req");
    assert_problem(r, 404, "not-found", "DELETE").await;
    assert_eq!(app.events_of(id).await, ["created"]);

    // A trusted client (the signing application) may act on every process.
    let r = app.put_result("signing-app", id, r#"{"status":"finished"}"#).await;
    assert_eq!(r.status(), 200);
    let actor =
        app.strings(&format!("SELECT actor FROM process_events WHERE process_id = '{id}' AND kind = 'result'")).await;
    assert_eq!(actor, ["signing-app"]);
}
