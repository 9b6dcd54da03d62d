//! End to end against a real authorization server: oidc-provider (installed by
//! `scripts/test.sh` in `tests/oidc`), client credentials grant as eSignSP clients use it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

pub(crate) fn oidc_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc")
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

pub(crate) struct AuthorizationServer {
    port: u16,
    child: Child,
}

impl Drop for AuthorizationServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a private JWK Set with the given keys (kid, alg), first one signing.
pub(crate) fn key_set(keys: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("esignsp-oidc-{}", esignsp_testkit::hex(&rand_id())));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut all = Vec::new();
    for (kid, alg) in keys {
        let file = dir.join(format!("{kid}.json"));
        let status = Command::new("node")
            .current_dir(oidc_dir())
            .arg("genkey.mjs")
            .arg(&file)
            .arg(kid)
            .arg(alg)
            .status()
            .expect("node");
        assert!(status.success(), "genkey");
        let set: Value = serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
        all.extend(set["keys"].as_array().expect("keys").clone());
    }
    let file = dir.join("jwks.json");
    std::fs::write(&file, serde_json::json!({ "keys": all }).to_string()).expect("write");
    file
}

fn rand_id() -> [u8; 8] {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("random");
    b
}

async fn start_provider(port: u16, format: &str, jwks: &PathBuf) -> AuthorizationServer {
    start_provider_with(port, format, jwks, None).await
}

/// oidc-provider on `port`; with `redirect_uri`, its signing-page clients and development
/// login forms (see `tests/oidc/provider.mjs`).
pub(crate) async fn start_provider_with(
    port: u16,
    format: &str,
    jwks: &PathBuf,
    redirect_uri: Option<&str>,
) -> AuthorizationServer {
    assert!(
        oidc_dir().join("node_modules/oidc-provider").is_dir(),
        "scripts/test.sh installs oidc-provider in tests/oidc"
    );
    let child = Command::new("node")
        .current_dir(oidc_dir())
        .args(["provider.mjs", &port.to_string(), format])
        .arg(jwks)
        .args(redirect_uri)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node provider.mjs");
    let server = AuthorizationServer { port, child };
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("http://127.0.0.1:{port}/.well-known/openid-configuration")).send().await.is_ok() {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("oidc-provider did not start");
}

impl AuthorizationServer {
    pub(crate) fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The client credentials grant (RFC 6749 §4.4) with a resource indicator (RFC 8707).
    async fn token(&self, client: &str, secret: &str, scope: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials"), ("resource", "urn:esignsp")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let r = reqwest::Client::new()
            .post(format!("{}/token", self.issuer()))
            .basic_auth(client, Some(secret))
            .form(&form)
            .send()
            .await
            .expect("token request");
        assert_eq!(r.status(), 200, "token endpoint");
        let body: Value = r.json().await.expect("json");
        body["access_token"].as_str().expect("access_token").to_owned()
    }
}

async fn round_trip(app: &TestApp, relying: &str, signing: &str) {
    let form = reqwest::multipart::Form::new()
        .part("process", reqwest::multipart::Part::text(PROCESS_JSON))
        .part("document", reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("a.pdf"));
    let r = app
        .client
        .post(app.url("/signer_processes?ui_locales=en"))
        .bearer_auth(relying)
        .multipart(form)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 201, "the relying application creates with its token");
    let p: Value = r.json().await.expect("json");
    let id = p["id"].as_str().expect("id");
    let r = app
        .client
        .put(app.url(&format!("/signer_processes/{id}/result")))
        .bearer_auth(signing)
        .header("Content-Type", "application/json")
        .body(r#"{"status":"finished"}"#)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200, "the trusted signing application establishes the result");
    let events = app.strings(&format!("SELECT actor FROM process_events WHERE process_id = '{id}' ORDER BY id")).await;
    assert_eq!(events, ["relying-app", "signing-app"]);
}

#[tokio::test]
async fn jwt_access_tokens_verify_through_discovery_and_follow_key_rotation() {
    let port = free_port();
    let provider = start_provider(port, "jwt", &key_set(&[("key-1", "ES256")])).await;
    let issuer = provider.issuer();
    let app = spawn_app_with(|s| {
        s.auth.issuer = issuer.clone();
        s.auth.public_key_files = Vec::new();
        s.auth.jwks_min_refresh_seconds = std::num::NonZeroU64::MIN;
    })
    .await;
    let scope = Some(SCOPE);
    let relying = provider.token("relying-app", "relying-secret", scope).await;
    let signing = provider.token("signing-app", "signing-secret", scope).await;
    round_trip(&app, &relying, &signing).await;

    let unscoped = provider.token("relying-app", "relying-secret", Some("openid")).await;
    let r = app.get_with(&unscoped, "/signer_processes/0123456789abcdefghijklmnopqrstuv").await;
    assert!(r.status() == 403 || r.status() == 401, "a token without the scope is refused: {}", r.status());

    // Rotation: the provider restarts signing with key-2 (key-1 still published).
    drop(provider);
    let provider = start_provider(port, "jwt", &key_set(&[("key-2", "ES256"), ("key-1b", "ES256")])).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let relying = provider.token("relying-app", "relying-secret", scope).await;
    let signing = provider.token("signing-app", "signing-secret", scope).await;
    round_trip(&app, &relying, &signing).await;
}

#[tokio::test]
async fn jwt_access_tokens_verify_with_an_explicit_jwks_url_and_rsa_keys() {
    let provider = start_provider(free_port(), "jwt", &key_set(&[("rsa-1", "RS256")])).await;
    let issuer = provider.issuer();
    let app = spawn_app_with(|s| {
        s.auth.issuer = issuer.clone();
        s.auth.jwks_url = Some(url::Url::parse(&format!("{issuer}/jwks")).expect("url"));
        s.auth.public_key_files = Vec::new();
    })
    .await;
    let relying = provider.token("relying-app", "relying-secret", Some(SCOPE)).await;
    let signing = provider.token("signing-app", "signing-secret", Some(SCOPE)).await;
    round_trip(&app, &relying, &signing).await;
}

#[tokio::test]
async fn opaque_tokens_are_introspected() {
    let provider = start_provider(free_port(), "opaque", &key_set(&[("key-1", "ES256")])).await;
    let issuer = provider.issuer();
    let app = spawn_app_with(|s| {
        s.auth.issuer = issuer.clone();
        s.auth.public_key_files = Vec::new();
        s.auth.introspection_url = Some(url::Url::parse(&format!("{issuer}/token/introspection")).expect("url"));
        s.auth.introspection_client_id = "esignsp".to_owned();
        s.auth.introspection_client_secret = secrecy::SecretString::from("esignsp-secret");
    })
    .await;
    let relying = provider.token("relying-app", "relying-secret", Some(SCOPE)).await;
    assert!(!relying.contains('.'), "an opaque token");
    let signing = provider.token("signing-app", "signing-secret", Some(SCOPE)).await;
    round_trip(&app, &relying, &signing).await;

    let r = app.get_with("notAtokenTheServerIssued", "/signer_processes/0123456789abcdefghijklmnopqrstuv").await;
    let challenge = r.headers()["www-authenticate"].to_str().expect("ascii").to_owned();
    assert_problem(r, 401, "invalid-token", "inactive").await;
    assert!(challenge.contains("not active"), "{challenge}");

    let fresh = provider.token("relying-app", "relying-secret", Some(SCOPE)).await;
    drop(provider);
    let r = app.get_with(&fresh, "/signer_processes/0123456789abcdefghijklmnopqrstuv").await;
    assert_problem(r, 503, "service-unavailable", "authorization server down").await;
    let r = app.get_with(&relying, "/signer_processes/0123456789abcdefghijklmnopqrstuv").await;
    assert_eq!(r.status(), 404, "a cached introspection answer still serves while the server is down");
}
