//! The signer's login on the built-in signing page (`signing.signer_authentication = "oidc"`,
//! SPEC §10) against a real OpenID Provider: oidc-provider (`tests/oidc/provider.mjs`) with its
//! development login and consent forms, driven by a cookie-keeping HTTP client as a browser
//! would follow them. The signed PDF is read back by pdfsig, pyHanko and qpdf.

use std::path::Path;
use std::process::Command;

use esignsp_api::config::SignerAuthentication;
use esignsp_testkit::pdf::{assert_valid, multi_page_pdf, run, venv_tool};
use serde_json::Value;

use crate::common::*;
use crate::oidc::{free_port, key_set, start_provider_with, AuthorizationServer};

/// A browser: keeps cookies, follows no redirect by itself.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// An app whose signers log in at the provider that will listen on `provider_port`, as
/// `client` (with `secret`, or a public client).
async fn app_with_login(provider_port: u16, client: &str, secret: &str) -> TestApp {
    let (client, secret) = (client.to_owned(), secret.to_owned());
    spawn_app_with(move |s| {
        s.signing.signer_authentication = SignerAuthentication::Oidc;
        s.signing.oidc_issuer = Some(format!("http://127.0.0.1:{provider_port}"));
        s.signing.oidc_client_id = client;
        s.signing.oidc_client_secret = secrecy::SecretString::from(secret);
    })
    .await
}

/// The provider, with the signing-page clients registered for `app`'s redirect URI.
async fn provider_for(app: &TestApp, port: u16) -> AuthorizationServer {
    let redirect_uri = app.url("/ui/login");
    start_provider_with(port, "jwt", &key_set(&[("rsa-1", "RS256")]), Some(&redirect_uri)).await
}

async fn create(app: &TestApp, pdf: &[u8]) -> Value {
    app.create_process_with_documents(&[("contract.pdf", pdf)]).await
}

fn location(r: &reqwest::Response) -> String {
    let base = r.url().clone();
    let raw = r.headers()["location"].to_str().expect("ascii");
    base.join(raw).expect("a location").to_string()
}

fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url).expect("url").query_pairs().into_owned().collect()
}

/// Follows the provider's pages from `start` (its authorization URL) as `login` would: the
/// development login form (any password), then the consent form; returns the URL the
/// provider finally sends the browser to (esignsp's callback).
async fn log_in_at_provider(browser: &reqwest::Client, start: &str, login: &str, esignsp: &TestApp) -> String {
    let mut url = start.to_owned();
    for _ in 0..20 {
        if url.starts_with(&esignsp.base) {
            return url;
        }
        let r = browser.get(&url).send().await.expect("provider");
        if r.status().is_redirection() {
            url = location(&r);
            continue;
        }
        assert_eq!(r.status(), 200, "a page of the provider at {url}");
        let html = r.text().await.expect("html");
        let action =
            html.split("<form").nth(1).and_then(|f| f.split("action=\"").nth(1)).and_then(|a| a.split('"').next());
        let action = action.unwrap_or_else(|| panic!("a form on the provider's page:\n{html}")).replace("&amp;", "&");
        let form: Vec<(&str, &str)> = if html.contains("name=\"prompt\" value=\"login\"") {
            vec![("prompt", "login"), ("login", login), ("password", "any password")]
        } else if html.contains("name=\"prompt\" value=\"consent\"") {
            vec![("prompt", "consent")]
        } else {
            panic!("neither the login nor the consent form:\n{html}");
        };
        let r = browser.post(&action).form(&form).send().await.expect("form");
        assert!(r.status().is_redirection(), "the provider's form answers a redirect: {}", r.status());
        url = location(&r);
    }
    panic!("the provider did not send the browser back to esignsp");
}

/// The signing page through the whole login: O12 → provider → callback → O12. Returns the
/// page's HTML.
async fn log_in(app: &TestApp, browser: &reqwest::Client, task: &str, login: &str) -> String {
    let r = browser.get(task).send().await.expect("task");
    assert_eq!(r.status(), 302, "the task URL redirects to the provider first");
    let callback = log_in_at_provider(browser, &location(&r), login, app).await;
    assert!(callback.starts_with(&app.url("/ui/login?")), "{callback}");
    let r = browser.get(&callback).send().await.expect("callback");
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    assert_eq!(location(&r), task, "back to the task URL");
    let page = browser.get(task).send().await.expect("page");
    assert_eq!(page.status(), 200);
    page.text().await.expect("html")
}

fn csrf_token(html: &str) -> String {
    html.split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned()
}

async fn post(client: &reqwest::Client, app: &TestApp, action: &str, id: &str, token: &str) -> reqwest::Response {
    client
        .post(app.url(&format!("/ui/{action}")))
        .form(&[("signerProcessId", id), ("csrf_token", token)])
        .send()
        .await
        .expect("post")
}

#[tokio::test]
async fn a_signer_logs_in_at_the_provider_and_the_signature_and_audit_trail_name_them() {
    let provider_port = free_port();
    let app = app_with_login(provider_port, "signing-page", "signing-page-secret").await;
    let pdf = multi_page_pdf(1);
    let process = create(&app, &pdf).await;
    let id = process["id"].as_str().expect("id");
    let task = process["tasks"]["pending"][0]["url"].as_str().expect("task url");

    let r = browser().get(task).send().await.expect("task");
    assert_eq!(r.status(), 503, "the provider is not running yet");
    assert!(r.text().await.expect("html").contains("cannot be reached"));

    let provider = provider_for(&app, provider_port).await;
    let browser = browser();
    let r = browser.get(task).send().await.expect("task");
    assert_eq!(r.status(), 302);
    let authorize = location(&r);
    assert!(authorize.starts_with(&format!("{}/auth?", provider.issuer())), "{authorize}");
    let asked = query(&authorize);
    assert_eq!(asked["response_type"], "code");
    assert_eq!(asked["client_id"], "signing-page");
    assert_eq!(asked["redirect_uri"], app.url("/ui/login"));
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["code_challenge"].len(), 43, "base64url of a SHA-256");
    assert!(asked["state"].len() >= 16 && asked["nonce"].len() >= 16, "{asked:?}");
    let scopes: Vec<&str> = asked["scope"].split(' ').collect();
    assert!(["openid", "profile", "email"].iter().all(|s| scopes.contains(s)), "{scopes:?}");
    let binding = r.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    assert!(binding.starts_with(&format!("esignsp_login_{id}={}", asked["state"])), "{binding}");

    let forged = browser.get(app.url("/ui/login?code=abc&state=forged")).send().await.expect("forged");
    assert_eq!(forged.status(), 400, "a forged state");
    assert!(forged.text().await.expect("html").contains("unknown or has expired"));

    let callback = log_in_at_provider(&browser, &authorize, "ada", &app).await;
    assert_eq!(query(&callback)["state"], asked["state"]);
    let r = browser.get(&callback).send().await.expect("callback");
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), task);
    let cookies: Vec<String> =
        r.headers().get_all("set-cookie").iter().map(|v| v.to_str().expect("ascii").to_owned()).collect();
    let session = cookies.iter().find(|c| c.starts_with(&format!("esignsp_signer_{id}="))).expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/trustedx-resources/esignsp/v2/ui", "Max-Age=1800"] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    assert!(!session.contains("Secure"), "not Secure behind an http public URL: {session}");
    let replayed = browser.get(&callback).send().await.expect("replay");
    assert_eq!(replayed.status(), 400, "a callback is used once");

    let html = browser.get(task).send().await.expect("page").text().await.expect("html");
    assert!(html.contains("Logged in as <strong>Ada Lovelace &lt;ada@example.test&gt;</strong>"), "{html}");
    let csrf = csrf_token(&html);

    let anonymous = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let before = app.events_of(id).await;
    for action in ["sign", "decline"] {
        let r = post(&anonymous, &app, action, id, &csrf).await;
        assert_eq!(r.status(), 403, "{action} without the session");
        assert!(r.text().await.expect("html").contains("not logged in"));
    }
    let view =
        html.split("<iframe src=\"").nth(1).and_then(|r| r.split('"').next()).expect("frame").replace("&amp;", "&");
    let view = format!("http://127.0.0.1:{}{view}", app.port);
    assert_eq!(browser.get(&view).send().await.expect("view").status(), 200, "the logged-in signer sees the document");
    assert_eq!(anonymous.get(&view).send().await.expect("view").status(), 404, "nobody else does");
    let r = post(&browser, &app, "sign", id, "forged").await;
    assert_eq!(r.status(), 403, "the session with a forged CSRF token");
    assert_eq!(app.events_of(id).await, before, "nothing written");

    let r = post(&browser, &app, "sign", id, &csrf).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("https://relying.example/done?x=1&status=finished&signer_process_id={id}")
    );

    let events: Value =
        app.get("relying-app", &format!("/signer_processes/{id}/events")).await.json().await.expect("json");
    let signing = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "result")
        .map(|e| e["signing"].clone())
        .expect("a result event with its signing record");
    assert_eq!(signing["signer"]["subject"], "ada", "{signing}");
    assert_eq!(signing["signer"]["issuer"], provider.issuer(), "{signing}");
    assert_eq!(signing["signer"]["name"], "Ada Lovelace", "{signing}");
    assert_eq!(signing["signer"]["email"], "ada@example.test", "{signing}");

    let documents: Value =
        app.get("relying-app", &format!("/signer_processes/{id}/documents")).await.json().await.expect("json");
    let documents = documents["documents"].as_array().or_else(|| documents.as_array()).cloned().expect("documents");
    let doc_id = documents[0]["id"].as_str().expect("document id");
    let r = app.get("relying-app", &format!("/documents/{doc_id}/content")).await;
    let signed = r.bytes().await.expect("bytes").to_vec();
    let dir = std::env::temp_dir().join(format!(
        "esignsp-http-signer-login-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let validation = assert_valid(&dir, "signed.pdf", &signed, &signing_identity().ca_file, 1);
    println!("{}\n{}", validation.pdfsig, validation.pyhanko);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pades_profile.py");
    let (_, profile) = run(Command::new(venv_tool("python")).arg(script).arg(dir.join("signed.pdf")));
    println!("{profile}");
    assert!(profile.contains(" name=Ada Lovelace "), "pyHanko reads the signer's /Name: {profile}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_public_client_logs_in_with_pkce_and_what_the_provider_refuses_is_a_page() {
    let provider_port = free_port();
    let app = app_with_login(provider_port, "signing-page-public", "").await;
    let provider = provider_for(&app, provider_port).await;

    // The provider answers with an error (the signer aborted at the provider).
    let process = create(&app, &multi_page_pdf(1)).await;
    let id = process["id"].as_str().expect("id");
    let task = process["tasks"]["pending"][0]["url"].as_str().expect("task url");
    let aborting = browser();
    let r = aborting.get(task).send().await.expect("task");
    let state = query(&location(&r))["state"].clone();
    let url = format!("{}?error=access_denied&error_description=End-User+aborted&state={state}", app.url("/ui/login"));
    let r = aborting.get(&url).send().await.expect("callback");
    assert_eq!(r.status(), 400);
    let html = r.text().await.expect("html");
    assert!(html.contains("access_denied") && html.contains("End-User aborted"), "{html}");

    // A state started in another browser.
    let r = browser().get(task).send().await.expect("task");
    let state = query(&location(&r))["state"].clone();
    let r = aborting.get(format!("{}?code=abc&state={state}", app.url("/ui/login"))).send().await.expect("callback");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("html").contains("another browser"));

    // A code the token endpoint does not exchange.
    let r = aborting.get(task).send().await.expect("task");
    let state = query(&location(&r))["state"].clone();
    let r = aborting.get(format!("{}?code=not-a-code&state={state}", app.url("/ui/login"))).send().await.expect("cb");
    assert_eq!(r.status(), 400);
    let html = r.text().await.expect("html");
    assert!(html.contains("Login failed") && html.contains("invalid_grant"), "{html}");

    // The public client logs in with PKCE alone and declines.
    let signer = browser();
    let html = log_in(&app, &signer, task, "grace").await;
    assert!(html.contains("Logged in as <strong>Signer grace &lt;grace@example.test&gt;</strong>"), "{html}");
    let r = post(&signer, &app, "decline", id, &csrf_token(&html)).await;
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"].to_str().expect("ascii").contains("status=canceled"));

    // The provider goes away between the redirect and the callback: 503.
    let other = create(&app, &multi_page_pdf(1)).await;
    let other_task = other["tasks"]["pending"][0]["url"].as_str().expect("task url");
    let late = browser();
    let r = late.get(other_task).send().await.expect("task");
    assert_eq!(r.status(), 302, "the discovered metadata is still used");
    let state = query(&location(&r))["state"].clone();
    drop(provider);
    let r = late.get(format!("{}?code=abc&state={state}", app.url("/ui/login"))).send().await.expect("callback");
    assert_eq!(r.status(), 503);
    assert!(r.text().await.expect("html").contains("cannot be reached"));
}

#[tokio::test]
async fn without_oidc_the_login_callback_is_not_found_and_the_page_needs_no_login() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/ui/login?code=abc&state=xyz")).send().await.expect("callback");
    assert_eq!(r.status(), 404);
    let process = create(&app, &multi_page_pdf(1)).await;
    let task = process["tasks"]["pending"][0]["url"].as_str().expect("task url");
    let r = app.client.get(task).send().await.expect("page");
    assert_eq!(r.status(), 200);
    assert!(!r.text().await.expect("html").contains("Logged in as"));
}
