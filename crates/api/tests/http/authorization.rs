//! RFC 6750 answers of every protected operation, algorithms, and tenancy (SPEC §6).

use std::collections::HashMap;
use std::sync::Arc;

use esignsp_testkit::{keys, TestKeys, AUDIENCE, ISSUER};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
        (k.sign(Signer::Rs256, &with(claims("relying-app"), "nbf", json!(1.767e39))), "nbf beyond u64 (fuzz finding)"),
        (k.sign(Signer::Rs256, &with(claims("relying-app"), "iss", json!([esignsp_testkit::ISSUER]))), "iss array"),
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

/// `claims` with `name` set to `value` as is (an explicit `null` too).
fn with_raw(mut c: serde_json::Map<String, Value>, name: &str, value: Value) -> serde_json::Map<String, Value> {
    c.insert(name.to_owned(), value);
    c
}

const UNKNOWN_PROCESS: &str = "/signer_processes/0123456789abcdefghijklmnopqrstuv";

/// Asserts that `token` is refused with 401 `invalid_token` and a fixed description.
async fn assert_invalid_token(app: &TestApp, token: &str, why: &str) {
    assert_all_invalid_tokens(app, vec![(token.to_owned(), why.to_owned())]).await;
}

/// Asserts that every token is refused with 401 `invalid_token` and a fixed description; a
/// failure lists every case answered otherwise, with its reason and status.
async fn assert_all_invalid_tokens(app: &TestApp, cases: Vec<(String, String)>) {
    let mut wrong = Vec::new();
    for (token, why) in cases {
        let r = app.get_with(&token, UNKNOWN_PROCESS).await;
        let challenge =
            r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        if r.status() != 401
            || !challenge.starts_with(r#"Bearer realm="esignsp", error="invalid_token", error_description=""#)
        {
            wrong.push(format!("{why}: {} {challenge}", r.status()));
            continue;
        }
        assert_problem(r, 401, "invalid-token", &why).await;
    }
    assert!(wrong.is_empty(), "expected 401 invalid_token, got:\n{}", wrong.join("\n"));
}

/// Asserts that `token` is accepted: the caller is authorized, then the process is unknown.
async fn assert_authorized(app: &TestApp, token: &str, why: &str) {
    let r = app.get_with(token, UNKNOWN_PROCESS).await;
    assert_eq!(r.status(), 404, "{why}: authorized, then the process is unknown");
}

#[tokio::test]
async fn a_registered_claim_of_the_wrong_json_type_answers_401_invalid_token() {
    let app = spawn_app().await;
    let k = keys();
    let now = esignsp_testkit::now();
    let c = || claims("relying-app");
    let cases = vec![
        (with_raw(c(), "nbf", json!("99999999999")), "nbf as a numeric string far in the future (CVE-2026-25537)"),
        (with_raw(c(), "nbf", json!(true)), "nbf as a boolean"),
        (with_raw(c(), "nbf", Value::Null), "nbf as null"),
        (with_raw(c(), "exp", json!("never")), "exp as a string"),
        (with_raw(c(), "exp", json!((now + 300).to_string())), "exp as a numeric string"),
        (with_raw(c(), "exp", json!([now + 300])), "exp as an array"),
        (with_raw(c(), "iat", json!(now.to_string())), "iat as a numeric string"),
        (with_raw(c(), "iat", json!({})), "iat as an object"),
        (with_raw(c(), "iss", json!([ISSUER])), "iss as an array holding the issuer"),
        (with_raw(c(), "iss", json!(1)), "iss as a number"),
        (with_raw(c(), "sub", json!(42)), "sub as a number"),
        (with_raw(c(), "sub", json!(["relying-app"])), "sub as an array"),
        (with_raw(c(), "client_id", json!(["relying-app"])), "client_id as an array"),
        (with_raw(c(), "client_id", json!(7)), "client_id as a number"),
        (with_raw(c(), "jti", json!(7)), "jti as a number"),
        (with_raw(c(), "jti", json!({"id": "x"})), "jti as an object"),
        (with_raw(c(), "aud", json!(1)), "aud as a number"),
        (with_raw(c(), "aud", json!([AUDIENCE, 1])), "aud as an array with a non-string member"),
        (with_raw(c(), "aud", json!({"aud": AUDIENCE})), "aud as an object"),
        (with_raw(c(), "scope", json!(["openid", SCOPE])), "scope as an array (RFC 9068 §2.2.3, RFC 8693 §4.2)"),
        (with_raw(c(), "scope", json!(1)), "scope as a number"),
        (with_raw(c(), "scope", Value::Null), "scope as null"),
    ];
    let cases = cases.into_iter().map(|(claims, why)| (k.sign(Signer::Rs256, &claims), why.to_owned())).collect();
    assert_all_invalid_tokens(&app, cases).await;
    assert_authorized(&app, &k.sign(Signer::Rs256, &with_raw(c(), "nbf", json!(now - 10))), "a numeric nbf").await;
    assert_authorized(&app, &k.sign(Signer::Rs256, &with_raw(c(), "exp", json!(now as f64 + 300.5))), "fractional exp")
        .await;
}

#[tokio::test]
async fn the_lenient_profile_accepts_scp_arrays_but_not_a_scope_array() {
    let app = spawn_app_with(|s| s.auth.profile = esignsp_api::config::TokenProfile::Lenient).await;
    let k = keys();
    let no_scope = with(claims("relying-app"), "scope", Value::Null);
    assert_authorized(
        &app,
        &k.sign(Signer::Rs256, &with(no_scope.clone(), "scp", json!(["openid", SCOPE]))),
        "scp array",
    )
    .await;
    assert_authorized(&app, &k.sign(Signer::Rs256, &with(no_scope.clone(), "scp", json!(SCOPE))), "scp string").await;
    let cases = vec![
        (with(no_scope.clone(), "scope", json!([SCOPE])), "scope as an array, also under lenient"),
        (with(no_scope.clone(), "scp", json!([SCOPE, 1])), "scp array with a non-string member"),
        (with(no_scope.clone(), "scp", json!({"s": SCOPE})), "scp as an object"),
        (with(claims("relying-app"), "azp", json!(["relying-app"])), "azp as an array"),
        (with(claims("relying-app"), "nbf", json!("99999999999")), "nbf as a string"),
    ];
    let cases = cases.into_iter().map(|(claims, why)| (k.sign(Signer::Rs256, &claims), why.to_owned())).collect();
    assert_all_invalid_tokens(&app, cases).await;
}

/// The JWK Set of issue #11, then one member without `alg` per family (RSA, EC P-256,
/// EC P-384), written to a file the server loads as `auth.public_key_files`.
fn jwks_without_alg() -> std::path::PathBuf {
    let k = keys();
    let mut rsa = k.rsa_public_jwk("RS256", "rsa-any");
    rsa.as_object_mut().expect("object").remove("alg");
    let mut enc = k.ec_public_jwk(Signer::Es256, "ec-enc");
    enc["use"] = json!("enc");
    enc["alg"] = json!("ECDH-ES");
    let set = json!({"keys": [
        // RFC 8037 §A.2: an Ed25519 key the tokens below are not signed with.
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed-1", "alg": "EdDSA"},
        enc,
        {"kty": "AKP", "alg": "ML-DSA-44"},
        k.ed_public_jwk("ed-2"),
        rsa,
        k.ec_public_jwk(Signer::Es256, "p256-any"),
        k.ec_public_jwk(Signer::Es384, "p384-any"),
    ]});
    let file = k.dir.join(format!("jwks-without-alg-{}.json", esignsp_testkit::hex(&rand::random::<[u8; 4]>())));
    std::fs::write(&file, set.to_string()).expect("write JWKS");
    file
}

#[tokio::test]
async fn a_jwk_set_member_without_alg_verifies_the_algorithms_of_its_family() {
    let jwks = jwks_without_alg();
    let app = spawn_app_with(|s| {
        s.auth.public_key_files = vec![jwks];
        s.auth.algorithms = {
            use jsonwebtoken::Algorithm::{EdDSA, ES256, ES384, PS256, RS256};
            vec![RS256, PS256, ES256, ES384, EdDSA]
        };
    })
    .await;
    let k = keys();
    let c = claims("relying-app");
    for (signer, kid) in [
        (Signer::EdDsa, "ed-2"),
        (Signer::Rs256, "rsa-any"),
        (Signer::Ps256, "rsa-any"),
        (Signer::Es256, "p256-any"),
        (Signer::Es384, "p384-any"),
    ] {
        assert_authorized(&app, &k.sign_with_kid(signer, Some(kid), &c), &format!("{signer:?} with kid {kid}")).await;
    }
    let refused = [
        (Signer::EdDsa, "ed-1", "ed-1 is another Ed25519 key"),
        (Signer::Es256, "ed-2", "an Ed25519 key never verifies ES256"),
        (Signer::Es384, "p256-any", "a P-256 key never verifies ES384"),
        (Signer::Es256, "p384-any", "a P-384 key never verifies ES256"),
        (Signer::Rs256, "p256-any", "an EC key never verifies RS256"),
        (Signer::Es256, "ec-enc", "an encryption key is skipped"),
    ];
    let cases = refused.map(|(signer, kid, why)| (k.sign_with_kid(signer, Some(kid), &c), why.to_owned())).to_vec();
    assert_all_invalid_tokens(&app, cases).await;
}

/// A local HTTP server answering every request with the JSON `answer` makes of its body.
async fn serve_json(answer: impl Fn(&str) -> Value + Send + Sync + 'static) -> String {
    let answer = Arc::new(answer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head, then the body of Content-Length bytes.
                let body = loop {
                    let Ok(n) = stream.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        break body.to_owned();
                    }
                };
                let json = answer(&body).to_string();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                    json.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

/// An RFC 7662 introspection endpoint that answers, for each token, the JSON given.
async fn serve_introspection(answers: HashMap<String, Value>) -> String {
    let url = serve_json(move |form| {
        let token = url::form_urlencoded::parse(form.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        answers.get(&token).cloned().unwrap_or(json!({"active": false}))
    })
    .await;
    format!("{url}/introspect")
}

#[tokio::test]
async fn a_jwk_published_without_alg_after_start_is_fetched_beside_a_static_key_without_kid() {
    // Issue #11: with a PEM key (no kid) configured beside the issuer's JWK Set, an EdDSA
    // token with the kid of a newly published ed-2 (no alg) answered 401 "signature algorithm
    // is not allowed" and the JWK Set was never refetched.
    let ed1 = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed-1", "alg": "EdDSA"});
    let published = Arc::new(std::sync::Mutex::new(json!({"keys": [ed1]})));
    let served = published.clone();
    let url = serve_json(move |_| served.lock().expect("lock").clone()).await;
    let rsa_pem = keys().public_key_files[0].clone();
    let app = spawn_app_with(|s| {
        s.auth.public_key_files = vec![rsa_pem];
        s.auth.jwks_url = Some(url::Url::parse(&format!("{url}/jwks")).expect("url"));
        s.auth.jwks_min_refresh_seconds = std::num::NonZeroU64::MIN;
    })
    .await;
    let c = claims("relying-app");
    assert_authorized(&app, &keys().sign(Signer::Rs256, &c), "the static RSA key").await;

    let mut enc = keys().ec_public_jwk(Signer::Es256, "ec-enc");
    enc["use"] = json!("enc");
    enc["alg"] = json!("ECDH-ES");
    *published.lock().expect("lock") =
        json!({"keys": [ed1, enc, {"kty": "AKP", "alg": "ML-DSA-44"}, keys().ed_public_jwk("ed-2")]});
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_authorized(&app, &keys().sign_with_kid(Signer::EdDsa, Some("ed-2"), &c), "EdDSA with kid ed-2").await;
    assert_invalid_token(&app, &keys().sign_with_kid(Signer::EdDsa, Some("ed-1"), &c), "ed-1 is another key").await;
}

#[tokio::test]
async fn an_introspection_answer_with_a_member_of_the_wrong_type_answers_401_invalid_token() {
    let now = esignsp_testkit::now();
    let good = json!({"active": true, "client_id": "relying-app", "sub": "relying-app", "scope": format!("openid {SCOPE}"),
        "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "iat": now, "jti": "j1", "token_type": "Bearer"});
    let member = |name: &str, value: Value| {
        let mut answer = good.clone();
        answer[name] = value;
        answer
    };
    let cases = vec![
        (member("exp", json!("never")), "exp as a string"),
        (member("exp", json!((now + 300).to_string())), "exp as a numeric string"),
        (member("exp", json!(now as f64 - 100.5)), "a fractional exp in the past"),
        (member("nbf", json!("99999999999")), "nbf as a string"),
        (member("iat", json!(true)), "iat as a boolean"),
        (member("iss", json!([ISSUER])), "iss as an array"),
        (member("iss", Value::Null), "iss as null"),
        (member("aud", json!([AUDIENCE, 1])), "aud with a non-string member"),
        (member("client_id", json!(42)), "client_id as a number"),
        (member("sub", json!(["relying-app"])), "sub as an array"),
        (member("scope", json!(["openid", SCOPE])), "scope as an array (RFC 7662 §2.2)"),
        (member("jti", json!(1)), "jti as a number"),
        (member("token_type", json!(1)), "token_type as a number"),
        (member("username", json!({})), "username as an object"),
        (member("active", json!("true")), "active as a string"),
    ];
    let mut answers: HashMap<String, Value> = HashMap::from([("good-token".to_owned(), good.clone())]);
    for (i, (answer, _)) in cases.iter().enumerate() {
        answers.insert(format!("case-{i}"), answer.clone());
    }
    let url = serve_introspection(answers).await;
    let app = spawn_app_with(|s| {
        s.auth.introspection_url = Some(url::Url::parse(&url).expect("url"));
        s.auth.introspection_client_id = "esignsp".to_owned();
        s.auth.introspection_client_secret = secrecy::SecretString::from("esignsp-secret");
    })
    .await;
    assert_authorized(&app, "good-token", "a well-typed answer").await;
    let cases = cases.iter().enumerate().map(|(i, (_, why))| (format!("case-{i}"), (*why).to_owned())).collect();
    assert_all_invalid_tokens(&app, cases).await;
}

/// actix-web polls a handler's extractors together. With a verification that waits on the
/// network (introspection), a malformed path id, a wrong media type or a body still answer only
/// once the caller is known, in the order of SPEC §2 and §6 (token, then path, then body), and
/// the token is verified, and a refusal counted, once per request however many extractors ask.
#[tokio::test]
async fn while_the_token_is_introspected_the_path_and_the_body_wait_for_it() {
    let now = esignsp_testkit::now();
    let good = json!({"active": true, "client_id": "relying-app", "sub": "relying-app", "scope": format!("openid {SCOPE}"),
        "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "iat": now, "jti": "j1", "token_type": "Bearer"});
    let url = serve_introspection(HashMap::from([("good-token".to_owned(), good)])).await;
    let app = spawn_app_with(|s| {
        s.auth.introspection_url = Some(url::Url::parse(&url).expect("url"));
        s.auth.introspection_client_id = "esignsp".to_owned();
        s.auth.introspection_client_secret = secrecy::SecretString::from("esignsp-secret");
    })
    .await;
    let unknown = "0123456789abcdefghijklmnopqrstuv";
    let cases = [
        ("bad-1", "PUT", "/signer_processes/NOTOURS/result", "text/plain", 401, "invalid-token", "token before path"),
        (
            "bad-2",
            "PUT",
            &format!("/signer_processes/{unknown}/result"),
            "text/plain",
            401,
            "invalid-token",
            "token before body",
        ),
        (
            "bad-3",
            "GET",
            "/signer_processes/NOTOURS/result",
            "text/plain",
            401,
            "invalid-token",
            "token before O4's 410",
        ),
        ("bad-4", "POST", "/documents", "text/plain", 401, "invalid-token", "token before O8's body"),
        ("good-token", "PUT", "/signer_processes/NOTOURS/result", "text/plain", 404, "not-found", "path before body"),
        ("good-token", "GET", "/signer_processes/NOTOURS/result", "text/plain", 410, "process-not-found", "O4's path"),
        (
            "good-token",
            "PUT",
            &format!("/signer_processes/{unknown}/result"),
            "text/plain",
            415,
            "unsupported-media-type",
            "body before the process",
        ),
        (
            "good-token",
            "PUT",
            &format!("/signer_processes/{unknown}/result"),
            "application/json",
            404,
            "not-found",
            "then the process",
        ),
        ("good-token", "POST", "/documents", "text/plain", 415, "unsupported-media-type", "O8's body"),
    ];
    for (token, method, path, content_type, status, kind, why) in cases {
        let r = app
            .client
            .request(method.parse().expect("method"), app.url(path))
            .bearer_auth(token)
            .header("Content-Type", content_type)
            .body(r#"{"status":"canceled"}"#)
            .send()
            .await
            .expect("req");
        assert_problem(r, status, kind, why).await;
    }
    let metrics = app.client.get(format!("http://127.0.0.1:{}/metrics", app.port)).send().await.expect("req");
    let metrics = metrics.text().await.expect("text");
    assert!(
        metrics.contains(r#"esignsp_token_rejections_total{reason="inactive"} 4"#),
        "each refused token is verified and counted once:\n{metrics}"
    );
}
