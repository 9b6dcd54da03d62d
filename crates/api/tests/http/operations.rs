//! Operability: health, readiness, metrics, logs, graceful shutdown and database outages.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;

fn on_postgres() -> bool {
    !std::env::var("ESIGNSP_TEST_DATABASE").is_ok_and(|v| v == "sqlite")
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    let health = app.client.get(format!("http://127.0.0.1:{}/healthz", app.port)).send().await.expect("req");
    assert_eq!(health.status(), 200);
    let ready = app.client.get(format!("http://127.0.0.1:{}/readyz", app.port)).send().await.expect("req");
    assert_eq!(ready.status(), 200);

    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    assert_eq!(app.put_result("relying-app", &id, r#"{"status":"finished"}"#).await.status(), 200);
    assert_eq!(app.put_result("relying-app", &id, r#"{"status":"finished"}"#).await.status(), 200, "a replay");
    let _ = app.client.get(app.url(&format!("/signer_processes/{id}"))).send().await.expect("anonymous");
    let _ = app
        .client
        .get(app.url(&format!("/signer_processes/{id}")))
        .bearer_auth("x.y.z")
        .send()
        .await
        .expect("bad token");

    let r = app.client.get(format!("http://127.0.0.1:{}/metrics", app.port)).send().await.expect("req");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().expect("ascii").starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.expect("text");
    for expected in [
        r#"esignsp_http_requests_total{method="PUT",route="/trustedx-resources/esignsp/v2/signer_processes/{id}/result",status="200"} 2"#,
        r#"esignsp_results_established_total{status="finished"} 1"#,
        r#"esignsp_token_rejections_total{reason="missing"} 1"#,
        r#"esignsp_token_rejections_total{reason="malformed"} 1"#,
        r#"esignsp_http_request_duration_seconds_bucket{method="POST",route="/trustedx-resources/esignsp/v2/signer_processes",status="201",le="+Inf"} 1"#,
        r#"esignsp_db_pool_connections{state="idle"}"#,
        r#"esignsp_db_pool_connections{state="in_use"}"#,
    ] {
        assert!(text.contains(expected), "metrics lack {expected}:\n{text}");
    }
    // The two PUTs, one after the other, each found alone, were written on their own: no
    // batch (the conformance suite shows batches form under concurrency).
    for counter in ["batches", "requests"] {
        let expected = format!("esignsp_group_commit_{counter}_total 0\n");
        assert!(text.contains(&expected), "metrics lack {expected}:\n{text}");
    }
}

#[tokio::test]
async fn a_client_cannot_add_metric_labels_with_method_tokens_of_its_own() {
    let app = spawn_app().await;
    for i in 0..20 {
        let method = reqwest::Method::from_bytes(format!("XAB{i}CD").as_bytes()).expect("token");
        let r = app.client.request(method, format!("http://127.0.0.1:{}/healthz", app.port)).send().await.expect("req");
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    let text = app
        .client
        .get(format!("http://127.0.0.1:{}/metrics", app.port))
        .send()
        .await
        .expect("req")
        .text()
        .await
        .expect("text");
    assert!(!text.contains("XAB"), "a method token of the client's became a label:\n{text}");
    let other = text
        .lines()
        .filter(|l| l.starts_with("esignsp_http_requests_total{method=\"other\""))
        .map(|l| l.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0))
        .sum::<u64>();
    assert_eq!(other, 20, "counted under method=\"other\":\n{text}");
}

#[tokio::test]
async fn an_unreachable_database_answers_503_quickly_and_readiness_says_so() {
    let app = spawn_app_with(|s| {
        s.database.url = secrecy::SecretString::from("postgres://postgres@127.0.0.1:1/nothing");
        s.database.migrate_on_start = false;
        s.database.acquire_timeout_seconds = std::num::NonZeroU64::MIN;
    })
    .await;
    let started = Instant::now();
    let r = app.put_result("relying-app", "0123456789abcdefghijklmnopqrstuv", r#"{"status":"finished"}"#).await;
    assert!(started.elapsed() < Duration::from_secs(5), "answered within the acquire time-out, not hung");
    assert_eq!(r.headers()["retry-after"], "5");
    let body = assert_problem(r, 503, "service-unavailable", "database down").await;
    assert!(!body["detail"].as_str().expect("detail").contains("127.0.0.1"), "no internal text: {body}");
    let ready = app.client.get(format!("http://127.0.0.1:{}/readyz", app.port)).send().await.expect("req");
    assert_problem(ready, 503, "service-unavailable", "readyz").await;
}

/// A TCP proxy to PostgreSQL that can cut every connection and refuse new ones.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
}

impl Proxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if !flag.load(Ordering::SeqCst) {
                    let _ = inbound.shutdown().await;
                    continue;
                }
                let flag = flag.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect("127.0.0.1:5432").await else { return };
                    let (mut ri, mut wi) = inbound.split();
                    let (mut ro, mut wo) = outbound.split();
                    let copy = async {
                        tokio::select! {
                            _ = tokio::io::copy(&mut ri, &mut wo) => {},
                            _ = tokio::io::copy(&mut ro, &mut wi) => {},
                        }
                    };
                    let cut = async {
                        while flag.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! { () = copy => {}, () = cut => {} }
                });
            }
        });
        Self { port, up }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_database_outage_answers_503_and_the_service_recovers_by_itself() {
    if !on_postgres() {
        return; // The embedded store has no network to lose.
    }
    let proxy = Proxy::start().await;
    let database = esignsp_testkit::fresh_database().await;
    let through_proxy = database.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    assert_ne!(through_proxy, database, "the test database URL names 127.0.0.1:5432");
    let mut settings = test_settings(&through_proxy);
    settings.database.acquire_timeout_seconds = std::num::NonZeroU64::MIN;
    let app = start(settings, database).await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();

    proxy.set_up(false);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        let started = Instant::now();
        let r = app.get("relying-app", &format!("/signer_processes/{id}")).await;
        assert!(started.elapsed() < Duration::from_secs(5), "no long hang");
        assert_eq!(r.headers().get("retry-after").map(|v| v.to_str().expect("ascii")), Some("5"));
        assert_problem(r, 503, "service-unavailable", "database unreachable").await;
    }

    proxy.set_up(true);
    let mut recovered = false;
    for _ in 0..50 {
        let r = app.put_result("relying-app", &id, r#"{"status":"finished"}"#).await;
        assert!(r.status() == 200 || r.status() == 503, "never a 500: {}", r.status());
        if r.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the service recovers without a restart");
}

#[tokio::test]
async fn killed_database_connections_never_produce_a_500() {
    if !on_postgres() {
        return;
    }
    let app = spawn_app().await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    let database = app.database_url.rsplit('/').next().expect("db name").to_owned();
    let admin = sqlx::PgPool::connect(&esignsp_testkit::admin_url()).await.expect("admin");
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'esignsp'",
    )
    .bind(&database)
    .fetch_all(&admin)
    .await
    .expect("terminate");
    assert!(!killed.is_empty(), "the service had connections to kill");
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let r = app.get("relying-app", &format!("/signer_processes/{id}")).await;
        statuses.push(r.status().as_u16());
        if r.status() == 200 {
            break;
        }
    }
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&200), "recovered: {statuses:?}");
}

/// The real binary, with its logs captured (read as they come, so the pipe never fills).
pub(crate) struct Binary {
    child: Child,
    pub(crate) port: u16,
    logs: Option<std::thread::JoinHandle<String>>,
}

/// A binary whose test failed before it was stopped is killed, never left running.
impl Drop for Binary {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

pub(crate) async fn spawn_binary(database_url: &str, extra: &[(&str, &str)]) -> Binary {
    let port = free_port();
    let keys: Vec<String> = key_files().iter().map(|p| p.display().to_string()).collect();
    let mut command = Command::new(env!("CARGO_BIN_EXE_esignsp"));
    command
        .arg("serve")
        .env_remove("ESIGNSP_CONFIG")
        .env_remove("RUST_LOG")
        .env("DATABASE_URL", database_url)
        .env("ESIGNSP__SERVER__PORT", port.to_string())
        .env("ESIGNSP__SERVER__WORKERS", "2")
        .env("ESIGNSP__SERVER__SHUTDOWN_TIMEOUT_SECONDS", "10")
        .env("ESIGNSP__AUTH__ISSUER", esignsp_testkit::ISSUER)
        .env("ESIGNSP__AUTH__PUBLIC_KEY_FILES", keys.join(","))
        .env("ESIGNSP__LOG__FORMAT", "json")
        .env("ESIGNSP__LOG__LEVEL", "debug")
        .envs(signing_env())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn esignsp");
    let mut stderr = child.stderr.take().expect("stderr");
    let logs = std::thread::spawn(move || {
        let mut logs = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut logs);
        logs
    });
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok() {
            return Binary { child, port, logs: Some(logs) };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("esignsp did not start");
}

impl Binary {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}/trustedx-resources/esignsp/v2", self.port)
    }

    pub(crate) fn signal(&self, signal: &str) {
        let status =
            Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    pub(crate) fn logs_after_exit(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("wait");
        (status, self.logs.take().map(|l| l.join().expect("log reader")).unwrap_or_default())
    }
}

#[tokio::test]
async fn logs_carry_request_ids_and_never_a_token_secret_or_query_string() {
    let database = fresh_database_url().await;
    let with_password = if database.starts_with("postgres") {
        // Trust authentication ignores the password, so it can be any secret text.
        database.replacen("postgres@", "postgres:pw-s3cret-Xq@", 1)
    } else {
        database.clone()
    };
    let bin = spawn_binary(&with_password, &[]).await;
    let client = reqwest::Client::new();
    let token = token("relying-app");
    let form = reqwest::multipart::Form::new()
        .part("process", reqwest::multipart::Part::text(PROCESS_JSON))
        .part("document", reqwest::multipart::Part::bytes(PDF.to_vec()));
    let r = client
        .post(format!("{}/signer_processes?ui_locales=en&access_token=query-secret-abc", bin.base()))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400, "a token in the header and the query");
    let _ = client
        .get(format!("{}/signer_processes/x?secret=query-secret-def", bin.base()))
        .bearer_auth(&token)
        .send()
        .await;
    let _ = client.get(format!("{}/signer_processes/x", bin.base())).bearer_auth(format!("{token}x")).send().await;
    let _ = client.get(format!("{}/signer_processes/x", bin.base())).header("X-Request-Id", "trace-me-42").send().await;
    bin.signal("TERM");
    let (_, logs) = bin.logs_after_exit();
    assert!(!logs.is_empty(), "the service logged");
    let signature = token.rsplit('.').next().expect("signature");
    for secret in [
        token.as_str(),
        signature,
        "query-secret-abc",
        "query-secret-def",
        "access_token",
        "pw-s3cret-Xq",
        "ui_locales",
    ] {
        assert!(!logs.contains(secret), "the logs contain {secret:?}");
    }
    let request_lines: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "request completed" || l["message"] == "access token rejected")
        .collect();
    assert!(request_lines.len() >= 4, "request lines: {request_lines:?}");
    assert!(request_lines.iter().all(|l| l["span"]["request_id"].is_string()), "every request line has its request id");
    assert!(request_lines.iter().any(|l| l["span"]["request_id"] == "trace-me-42"));
}

#[tokio::test]
async fn sigterm_lets_in_flight_puts_finish_and_stores_what_was_acknowledged() {
    let database = fresh_database_url().await;
    let bin = spawn_binary(&database, &[]).await;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for _ in 0..8 {
        let form = reqwest::multipart::Form::new()
            .part("process", reqwest::multipart::Part::text(PROCESS_JSON))
            .part("document", reqwest::multipart::Part::bytes(PDF.to_vec()));
        let p: Value = client
            .post(format!("{}/signer_processes", bin.base()))
            .bearer_auth(token("relying-app"))
            .multipart(form)
            .send()
            .await
            .expect("req")
            .json()
            .await
            .expect("json");
        ids.push(p["id"].as_str().expect("id").to_owned());
    }
    // Each PUT sends its headers and half its body, then the rest after the signal.
    let puts: Vec<_> = ids
        .iter()
        .map(|id| {
            let url = format!("{}/signer_processes/{id}/result", bin.base());
            let client = client.clone();
            tokio::spawn(async move {
                let body = futures_util::stream::iter(0..2).then(|i| async move {
                    if i == 1 {
                        tokio::time::sleep(Duration::from_millis(600)).await;
                    }
                    Ok::<_, std::io::Error>(if i == 0 {
                        r#"{"status":"#.to_owned()
                    } else {
                        r#""finished"}"#.to_owned()
                    })
                });
                client
                    .put(url)
                    .bearer_auth(token("relying-app"))
                    .header("Content-Type", "application/json")
                    .body(reqwest::Body::wrap_stream(body))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(250)).await;
    bin.signal("TERM");
    let mut outcomes = Vec::new();
    for put in puts {
        outcomes.push(put.await.expect("task"));
    }
    let (status, _) = bin.logs_after_exit();
    assert!(status.success(), "graceful exit: {status:?}");
    let db = esignsp_adapters::store::Store::connect_lazy(
        &database,
        &esignsp_adapters::postgres::PoolSettings {
            max_connections: 2,
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: std::time::Duration::from_secs(10),
            transaction_pooling: false,
        },
    )
    .expect("db");
    for (id, outcome) in ids.iter().zip(&outcomes) {
        let sql = format!("SELECT count(*) FROM signer_processes WHERE id = '{id}' AND result_status = 'finished'");
        let stored: i64 = match &db {
            esignsp_adapters::store::Store::Postgres(r) => sqlx::query_scalar(&sql).fetch_one(r.pool()).await,
            esignsp_adapters::store::Store::Sqlite(r) => sqlx::query_scalar(&sql).fetch_one(r.pool()).await,
        }
        .expect("count");
        match outcome {
            Ok(200) => assert_eq!(stored, 1, "an acknowledged PUT is stored"),
            Ok(other) => panic!("in-flight PUT answered {other}"),
            Err(_) => assert_eq!(stored, 0, "a PUT that never reached the server changed nothing"),
        }
    }
    assert!(outcomes.iter().any(|o| matches!(o, Ok(200))), "in-flight requests finished: {outcomes:?}");
}

#[tokio::test]
async fn what_the_pdf_reader_logs_while_signing_carries_the_requests_id() {
    let dir = std::env::temp_dir().join(format!("esignsp-http-encrypted-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("plain.pdf"), esignsp_testkit::pdf::multi_page_pdf(1)).expect("write");
    let (ok, text) = esignsp_testkit::pdf::run(
        Command::new("qpdf")
            .args(["--encrypt", "user", "owner", "256", "--"])
            .arg(dir.join("plain.pdf"))
            .arg(dir.join("encrypted.pdf")),
    );
    assert!(ok, "qpdf --encrypt: {text}");
    let encrypted = std::fs::read(dir.join("encrypted.pdf")).expect("read");
    let bin = spawn_binary(&fresh_database_url().await, &[]).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let form = reqwest::multipart::Form::new().part("process", reqwest::multipart::Part::text(PROCESS_JSON)).part(
        "document",
        reqwest::multipart::Part::bytes(encrypted).file_name("locked.pdf").mime_str("application/pdf").expect("mime"),
    );
    let created: Value = client
        .post(format!("{}/signer_processes", bin.base()))
        .bearer_auth(token("relying-app"))
        .multipart(form)
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id");
    let page = client.get(format!("{}/ui?signerProcessId={id}", bin.base())).send().await.expect("page");
    let html = page.text().await.expect("html");
    let csrf = html.split("name=\"csrf_token\" value=\"").nth(1).and_then(|r| r.split('"').next()).expect("token");
    let signed = client
        .post(format!("{}/ui/sign", bin.base()))
        .header("X-Request-Id", "sign-encrypted-7")
        .form(&[("signerProcessId", id), ("csrf_token", csrf)])
        .send()
        .await
        .expect("sign");
    assert_eq!(signed.status(), 303);
    assert!(signed.headers()["location"].to_str().expect("ascii").contains("status=failed"));
    bin.signal("TERM");
    let (_, logs) = bin.logs_after_exit();
    let lines: Vec<Value> = logs.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect();
    // The request id of the line's request span (the innermost span may be a handler's own).
    let request_id = |l: &Value| {
        l["spans"].as_array().and_then(|spans| spans.iter().find_map(|s| s["request_id"].as_str().map(str::to_owned)))
    };
    let reader: Vec<&Value> =
        lines.iter().filter(|l| l["target"].as_str().is_some_and(|t| t.starts_with("lopdf"))).collect();
    assert!(!reader.is_empty(), "lopdf says the PDF is encrypted:\n{logs}");
    assert!(reader.iter().all(|l| request_id(l).is_some()), "every line of the PDF reader has its request: {reader:?}");
    let failure: Vec<&Value> =
        lines.iter().filter(|l| l["message"].as_str().is_some_and(|m| m.contains("could not be signed"))).collect();
    assert_eq!(failure.len(), 1, "the failed document is logged once:\n{logs}");
    assert_eq!(request_id(failure[0]).as_deref(), Some("sign-encrypted-7"));
    assert!(reader.iter().any(|l| request_id(l).as_deref() == Some("sign-encrypted-7")), "{reader:?}");
    let _ = std::fs::remove_dir_all(dir);
}
