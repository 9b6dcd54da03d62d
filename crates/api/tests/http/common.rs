//! HTTP tier harness: the real application on port 0 against a fresh PostgreSQL database,
//! called over HTTP with real signed tokens.
#![allow(dead_code)]

use std::path::PathBuf;

use esignsp_adapters::pades::development::DevelopmentIdentity;
use esignsp_adapters::postgres::PoolSettings;
use esignsp_adapters::store::Store;
use esignsp_api::config::Settings;
use esignsp_api::startup::Application;
use esignsp_testkit::{keys, AUDIENCE, ISSUER};
use secrecy::SecretString;
use serde_json::Value;

pub use esignsp_testkit::{claims, Signer, SCOPE};

pub const PROCESS_JSON: &str = r#"{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","labels":[["digitalid","server"]],"signer":{"signature_policy_id":"urn:safelayer:eidas:policies:sign:document:pdf","parameters":{"type":"pades","signature_field":{"name":"Sign1","page":"1"}}},"ui_locales":["en"],"finish_callback_url":"https://relying.example/done?x=1"}"#;
pub const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

pub struct TestApp {
    pub port: u16,
    pub base: String,
    pub client: reqwest::Client,
    pub database_url: String,
    pub db: Store,
    pub settings: Settings,
    pub handle: actix_web::dev::ServerHandle,
}

pub fn test_settings(database_url: &str) -> Settings {
    let mut s = Settings::default();
    s.server.port = 0;
    s.server.public_url = None;
    s.server.workers = 2;
    s.server.shutdown_timeout_seconds = 5;
    s.database.url = SecretString::from(database_url);
    s.database.max_connections = 20.try_into().expect("positive");
    s.auth.issuer = ISSUER.to_owned();
    s.auth.audience = vec![AUDIENCE.to_owned()];
    s.auth.public_key_files = keys().public_key_files.clone();
    s.auth.trusted_clients = vec!["signing-app".to_owned()];
    let identity = signing_identity();
    s.signing.key_file = Some(identity.key_file.clone());
    s.signing.certificate_chain_file = Some(identity.chain_file.clone());
    s
}

/// A development signing identity (CA, key, chain) made once per test run, for the built-in
/// signing page of the servers the tests start.
pub fn signing_identity() -> &'static DevelopmentIdentity {
    static IDENTITY: std::sync::OnceLock<DevelopmentIdentity> = std::sync::OnceLock::new();
    IDENTITY.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("esignsp-http-signing-{}", std::process::id()));
        DevelopmentIdentity::ensure(&dir).expect("a development signing identity").0
    })
}

/// The environment that gives a server started as a process the signing identity.
pub fn signing_env() -> Vec<(&'static str, String)> {
    let identity = signing_identity();
    vec![
        ("ESIGNSP__SIGNING__KEY_FILE", identity.key_file.display().to_string()),
        ("ESIGNSP__SIGNING__CERTIFICATE_CHAIN_FILE", identity.chain_file.display().to_string()),
    ]
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The back end of this test run: `ESIGNSP_TEST_DATABASE=sqlite` runs the HTTP suite against a
/// fresh SQLite file per test, anything else against a fresh PostgreSQL database per test.
pub async fn fresh_database_url() -> String {
    if std::env::var("ESIGNSP_TEST_DATABASE").is_ok_and(|v| v == "sqlite") {
        let dir = std::env::temp_dir().join(format!("esignsp-http-{}", esignsp_testkit::hex(&rand_bytes())));
        format!("sqlite://{}/esignsp.db", dir.display())
    } else {
        esignsp_testkit::fresh_database().await
    }
}

fn rand_bytes() -> [u8; 8] {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("random");
    b
}

pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let database_url = fresh_database_url().await;
    let mut settings = test_settings(&database_url);
    customize(&mut settings);
    // Every configuration a test runs with must also pass start-up validation.
    settings.validate().unwrap_or_else(|e| panic!("test settings are invalid: {e}"));
    start(settings, database_url).await
}

/// Starts the application with these settings; the public URL follows the bound port.
pub async fn start(settings: Settings, database_url: String) -> TestApp {
    start_with_routes(settings, database_url, |_| {}).await
}

/// [`start`] with routes added beside the API's own (see `Application::build_with`).
pub async fn start_with_routes(
    settings: Settings,
    database_url: String,
    extra_routes: fn(&mut actix_web::web::ServiceConfig),
) -> TestApp {
    let app = Application::build_with(settings.clone(), extra_routes).await.expect("application builds");
    let port = app.port();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let db = Store::connect_lazy(
        &database_url,
        &PoolSettings {
            max_connections: 4,
            acquire_timeout: std::time::Duration::from_secs(20),
            statement_timeout: std::time::Duration::from_secs(10),
            transaction_pooling: false,
        },
    )
    .expect("test pool");
    TestApp {
        port,
        base: format!("http://127.0.0.1:{port}/trustedx-resources/esignsp/v2"),
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
        database_url,
        db,
        settings,
        handle,
    }
}

pub fn token(client_id: &str) -> String {
    keys().token(client_id)
}

pub fn key_files() -> Vec<PathBuf> {
    keys().public_key_files.clone()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn process_form(&self) -> reqwest::multipart::Form {
        reqwest::multipart::Form::new().part("process", reqwest::multipart::Part::text(PROCESS_JSON)).part(
            "document",
            reqwest::multipart::Part::bytes(PDF.to_vec())
                .file_name("contract.pdf")
                .mime_str("application/pdf")
                .expect("mime"),
        )
    }

    /// Creates a process as `relying-app` with `documents` (file name, bytes), each declared
    /// `application/pdf`; returns its representation.
    pub async fn create_process_with_documents(&self, documents: &[(&str, &[u8])]) -> Value {
        let mut form = reqwest::multipart::Form::new().part("process", reqwest::multipart::Part::text(PROCESS_JSON));
        for (name, bytes) in documents {
            form = form.part(
                "document",
                reqwest::multipart::Part::bytes(bytes.to_vec())
                    .file_name((*name).to_owned())
                    .mime_str("application/pdf")
                    .expect("mime"),
            );
        }
        let response = self
            .client
            .post(self.url("/signer_processes"))
            .bearer_auth(token("relying-app"))
            .multipart(form)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201, "create process");
        response.json().await.expect("json")
    }

    /// Creates a process with `documents` PDFs as `client_id`; returns its representation.
    pub async fn create_process(&self, client_id: &str, documents: usize) -> Value {
        let mut form = reqwest::multipart::Form::new().part("process", reqwest::multipart::Part::text(PROCESS_JSON));
        for i in 0..documents {
            let mut bytes = PDF.to_vec();
            bytes.extend_from_slice(format!("% document {i}\n").as_bytes());
            form = form.part("document", reqwest::multipart::Part::bytes(bytes).file_name(format!("d{i}.pdf")));
        }
        let response = self
            .client
            .post(self.url("/signer_processes"))
            .bearer_auth(token(client_id))
            .multipart(form)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201, "create process");
        response.json().await.expect("json")
    }

    /// Creates a process from `process` JSON with one PDF.
    pub async fn create_process_with_json(&self, client_id: &str, process: Value) -> Value {
        let form = reqwest::multipart::Form::new()
            .part("process", reqwest::multipart::Part::text(process.to_string()))
            .part("document", reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("a.pdf"));
        let r = self
            .client
            .post(self.url("/signer_processes"))
            .bearer_auth(token(client_id))
            .multipart(form)
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 201);
        r.json().await.expect("json")
    }

    pub async fn put_result(&self, client_id: &str, id: &str, body: &str) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/signer_processes/{id}/result")))
            .bearer_auth(token(client_id))
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }

    pub async fn get_with(&self, token: &str, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request")
    }

    pub async fn get(&self, client_id: &str, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token(client_id)).send().await.expect("request")
    }

    /// One integer from standard SQL, on whichever back end runs.
    pub async fn count(&self, sql: &str) -> i64 {
        match &self.db {
            Store::Postgres(r) => sqlx::query_scalar(sql).fetch_one(r.pool()).await,
            Store::Sqlite(r) => sqlx::query_scalar(sql).fetch_one(r.pool()).await,
        }
        .expect("count")
    }

    /// Strings of the first column, from standard SQL.
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        match &self.db {
            Store::Postgres(r) => sqlx::query_scalar(sql).fetch_all(r.pool()).await,
            Store::Sqlite(r) => sqlx::query_scalar(sql).fetch_all(r.pool()).await,
        }
        .expect("strings")
    }

    pub async fn events_of(&self, id: &str) -> Vec<String> {
        self.strings(&format!("SELECT kind FROM process_events WHERE process_id = '{id}' ORDER BY id")).await
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

/// Asserts a problem document of `status` and `kind` (`urn:esignsp:problem:<kind>`).
pub async fn assert_problem(response: reqwest::Response, status: u16, kind: &str, why: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "{why}");
    assert_eq!(
        response.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{why}: problem+json"
    );
    assert!(response.headers().contains_key("x-request-id"), "{why}: X-Request-Id");
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["type"], format!("urn:esignsp:problem:{kind}"), "{why}: {body}");
    assert_eq!(body["status"], status, "{why}");
    assert!(body["title"].is_string() && body["detail"].is_string(), "{why}: {body}");
    body
}
