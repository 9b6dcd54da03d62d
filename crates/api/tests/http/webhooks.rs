//! Webhooks (SPEC §11) end to end: the real service delivers to a real receiver process
//! (`scripts/webhook_receiver.py`) that verifies every signature with the independent
//! Standard Webhooks implementation (the `standardwebhooks` PyPI package).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use esignsp_testkit::pdf::{script, venv_tool};
use serde_json::{json, Value};

use crate::common::{assert_problem, spawn_app_with, token, TestApp};

/// The receiver process, killed when dropped.
struct Receiver {
    child: Child,
    port: u16,
    client: reqwest::Client,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    fn start() -> Self {
        let mut child = Command::new(venv_tool("python"))
            .arg(script("webhook_receiver.py"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("the receiver starts (scripts/test.sh installs standardwebhooks into .venv)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port line");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the receiver printed its port, not {line:?}"));
        Self { child, port, client: reqwest::Client::new() }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn control(&self, path: &str, body: Value) {
        let r = self.client.post(self.url(path)).json(&body).send().await.expect("receiver control");
        assert_eq!(r.status(), 204, "{path}");
    }

    async fn deliveries(&self) -> Vec<Value> {
        self.client.get(self.url("/_deliveries")).send().await.expect("receiver").json().await.expect("json")
    }

    /// Waits (at most 20 s) until `done` holds for the deliveries received.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..400 {
            let received = self.deliveries().await;
            if done(&received) {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what}: received {:#?}", self.deliveries().await);
    }
}

fn body(delivery: &Value) -> Value {
    serde_json::from_str(delivery["body"].as_str().expect("body")).expect("the body is JSON")
}

fn of_type<'a>(received: &'a [Value], event: &str) -> Vec<&'a Value> {
    received.iter().filter(|d| body(d)["type"] == event).collect()
}

/// A service that may deliver to the loopback receiver over plain HTTP, polling often, with
/// short retries.
async fn app(customize: impl FnOnce(&mut esignsp_api::config::Settings)) -> TestApp {
    spawn_app_with(|s| {
        s.webhooks.allow_insecure = true;
        s.webhooks.allow_private_targets = true;
        s.webhooks.poll_interval_ms = 50;
        s.webhooks.retry_initial_delay_seconds = 0.2;
        s.webhooks.retry_max_delay_seconds = 1.0;
        customize(s);
    })
    .await
}

async fn create_endpoint(app: &TestApp, client: &str, body: Value) -> reqwest::Response {
    app.client.post(app.url("/webhook_endpoints")).bearer_auth(token(client)).json(&body).send().await.expect("request")
}

async fn endpoint(app: &TestApp, client: &str, url: &str, events: Option<&[&str]>) -> Value {
    let mut request = json!({"url": url});
    if let Some(events) = events {
        request["events"] = json!(events);
    }
    let r = create_endpoint(app, client, request).await;
    assert_eq!(r.status(), 201, "create endpoint");
    assert!(r.headers().contains_key("location"));
    r.json().await.expect("json")
}

async fn deliveries_log(app: &TestApp, client: &str, endpoint: &Value) -> Vec<Value> {
    let id = endpoint["id"].as_str().expect("id");
    let r = app.get(client, &format!("/webhook_endpoints/{id}/deliveries")).await;
    assert_eq!(r.status(), 200);
    let log: Value = r.json().await.expect("json");
    log["deliveries"].as_array().expect("deliveries").clone()
}

/// The endpoint's delivery log once `done` holds for it (waiting at most 10 s; the last log
/// read otherwise, for the caller's assertion to report).
async fn log_once(app: &TestApp, client: &str, endpoint: &Value, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut log = Vec::new();
    for _ in 0..200 {
        log = deliveries_log(app, client, endpoint).await;
        if done(&log) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    log
}

#[tokio::test]
async fn every_committed_change_is_delivered_signed_and_nothing_for_a_refused_one() {
    let receiver = Receiver::start();
    let app = app(|_| {}).await;
    let created = endpoint(&app, "relying-app", &receiver.url("/hook"), None).await;
    let secret = created["secret"].as_str().expect("the secret is shown on creation");
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(created["events"].as_array().map(Vec::len), Some(5), "all event types by default");
    receiver.control("/_secrets", json!([secret])).await;
    let id = created["id"].as_str().expect("id");
    let read: Value = app.get("relying-app", &format!("/webhook_endpoints/{id}")).await.json().await.expect("json");
    assert!(read.get("secret").is_none(), "the secret is shown once: {read}");
    assert_eq!(app.get("intruder", &format!("/webhook_endpoints/{id}")).await.status(), 404, "tenant-scoped");

    let process = app.create_process("relying-app", 2).await;
    let pid = process["id"].as_str().expect("id");
    let document = process["documents"][0]["id"].as_str().expect("document id");
    let r = app
        .client
        .put(app.url(&format!("/signer_processes/{pid}/documents/{document}/result")))
        .bearer_auth(token("relying-app"))
        .json(&json!({"status": "finished"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(app.put_result("relying-app", pid, r#"{"status":"failed_documents"}"#).await.status(), 200);
    // Refused (terminal) and replayed: no notification.
    assert_eq!(app.put_result("relying-app", pid, r#"{"status":"canceled"}"#).await.status(), 409);
    assert_eq!(app.put_result("relying-app", pid, r#"{"status":"failed_documents"}"#).await.status(), 200);
    let other = app.create_process("other-app", 1).await;
    assert_eq!(
        app.put_result("other-app", other["id"].as_str().expect("id"), r#"{"status":"finished"}"#).await.status(),
        200
    );
    let r =
        app.client.delete(app.url(&format!("/signer_processes/{pid}"))).bearer_auth(token("relying-app")).send().await;
    assert_eq!(r.expect("request").status(), 204);

    let received = receiver.wait_for("created, document result, result, deleted", |r| r.len() >= 4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = if received.len() == 4 { receiver.deliveries().await } else { received };
    let types: Vec<Value> = received.iter().map(|d| body(d)["type"].clone()).collect();
    assert_eq!(received.len(), 4, "one delivery per committed change of this client's process, none else: {types:?}");
    for event in
        ["signer_process.created", "signer_process.document_result", "signer_process.result", "signer_process.deleted"]
    {
        assert_eq!(of_type(&received, event).len(), 1, "{event}: {types:?}");
    }
    for d in &received {
        assert_eq!(d["verified"], json!([true]), "verified by standardwebhooks: {d}");
        assert!(d["id"].as_str().is_some_and(|i| i.len() == 32), "webhook-id: {d}");
        assert_eq!(body(d)["data"]["signer_process_id"], pid);
    }
    let result = body(of_type(&received, "signer_process.result")[0]);
    assert_eq!(result["data"]["result"], json!({"status": "failed_documents"}));
    let statuses: Vec<&Value> =
        result["data"]["documents"].as_array().expect("documents").iter().map(|d| &d["result"]["status"]).collect();
    assert_eq!(
        statuses,
        [&json!("finished"), &Value::Null],
        "with the document results (none derived by failed_documents)"
    );
    let document_result = body(of_type(&received, "signer_process.document_result")[0]);
    assert_eq!(document_result["data"]["document_id"], document);

    let log = deliveries_log(&app, "relying-app", &created).await;
    assert_eq!(log.len(), 4, "the delivery log holds exactly the four: {log:#?}");
    for entry in &log {
        assert_eq!(entry["status"], "delivered", "{entry}");
        assert_eq!(entry["attempts"][0]["response_status"], 204);
        assert!(received.iter().any(|d| d["id"] == entry["message_id"]), "webhook-id is the message id: {entry}");
    }
    let metrics = app
        .client
        .get(format!("http://127.0.0.1:{}/metrics", app.port))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("esignsp_webhook_deliveries_total{outcome=\"delivered\"} 4"), "{metrics}");
    assert!(metrics.contains("esignsp_webhook_queue_depth 0"), "{metrics}");
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_the_same_id_a_bounded_number_of_times_and_can_be_replayed() {
    let receiver = Receiver::start();
    let app = app(|s| s.webhooks.max_attempts = 3).await;
    let created = endpoint(&app, "relying-app", &receiver.url("/hook"), Some(&["signer_process.result"])).await;
    receiver.control("/_secrets", json!([created["secret"]])).await;

    // Two failures, then a success: three attempts of one message.
    receiver.control("/_fail", json!({"count": 2, "status": 503})).await;
    let first = app.create_process("relying-app", 1).await;
    assert_eq!(
        app.put_result("relying-app", first["id"].as_str().expect("id"), r#"{"status":"finished"}"#).await.status(),
        200
    );
    let received = receiver.wait_for("three attempts", |r| r.len() >= 3).await;
    let ids: Vec<&Value> = received.iter().map(|d| &d["id"]).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "the same webhook-id on every attempt: {ids:?}");
    assert_eq!(received.iter().map(|d| d["status"].as_u64()).collect::<Vec<_>>(), [Some(503), Some(503), Some(204)]);
    assert!(received.iter().all(|d| d["verified"] == json!([true])), "each attempt signed anew: {received:#?}");

    // Always failing: exactly max_attempts attempts, then failed for good.
    receiver.control("/_reset", json!({})).await;
    receiver.control("/_fail", json!({"count": -1, "status": 500})).await;
    let second = app.create_process("relying-app", 1).await;
    let second_id = second["id"].as_str().expect("id");
    assert_eq!(app.put_result("relying-app", second_id, r#"{"status":"canceled"}"#).await.status(), 200);
    receiver.wait_for("three failing attempts", |r| r.len() >= 3).await;
    let log = log_once(&app, "relying-app", &created, |log| log.first().is_some_and(|d| d["status"] == "failed")).await;
    let failed = &log[0];
    assert_eq!(failed["signer_process_id"], second_id);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["attempts"].as_array().map(Vec::len), Some(3), "bounded: {failed}");
    assert_eq!(failed["attempts"][2]["error"], "HTTP 500");
    assert_eq!(failed["attempts"][0]["response_body"], "failing on purpose", "the start of the answer is kept");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.deliveries().await.len(), 3, "no fourth attempt");

    // Replay: the same message again, now delivered.
    receiver.control("/_fail", json!({"count": 0})).await;
    let (endpoint_id, delivery_id) = (created["id"].as_str().expect("id"), failed["id"].as_str().expect("id"));
    let r = app
        .client
        .post(app.url(&format!("/webhook_endpoints/{endpoint_id}/deliveries/{delivery_id}/replay")))
        .bearer_auth(token("relying-app"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 202);
    let received = receiver.wait_for("the replay", |r| r.len() >= 4).await;
    assert_eq!(received[3]["id"], failed["message_id"], "a replay keeps the webhook-id");
    assert_eq!(received[3]["status"], 204);
    let r = app
        .client
        .post(app.url(&format!("/webhook_endpoints/{endpoint_id}/deliveries/999999/replay")))
        .bearer_auth(token("relying-app"))
        .send()
        .await
        .expect("request");
    assert_problem(r, 404, "not-found", "an unknown delivery").await;
    let r = app
        .client
        .post(app.url(&format!("/webhook_endpoints/{endpoint_id}/deliveries/{delivery_id}/replay")))
        .bearer_auth(token("intruder"))
        .send()
        .await
        .expect("request");
    assert_problem(r, 404, "not-found", "another client's delivery").await;
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_and_redirects_are_not_followed() {
    let receiver = Receiver::start();
    let app = app(|_| {}).await;
    let created = endpoint(&app, "relying-app", &receiver.url("/hook"), Some(&["signer_process.created"])).await;
    let id = created["id"].as_str().expect("id");
    let r = app
        .client
        .post(app.url(&format!("/webhook_endpoints/{id}/secret/rotate")))
        .bearer_auth(token("relying-app"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.expect("json");
    assert_ne!(rotated["secret"], created["secret"]);
    assert!(rotated["previous_secret_expires_at"].is_string(), "{rotated}");
    receiver.control("/_secrets", json!([created["secret"], rotated["secret"]])).await;
    app.create_process("relying-app", 1).await;
    let received = receiver.wait_for("one delivery", |r| !r.is_empty()).await;
    assert_eq!(received[0]["verified"], json!([true, true]), "both secrets sign meanwhile: {}", received[0]);
    assert_eq!(received[0]["signature"].as_str().map(|s| s.split(' ').count()), Some(2));

    receiver.control("/_reset", json!({})).await;
    receiver.control("/_fail", json!({"count": 1, "redirect": "/elsewhere"})).await;
    app.create_process("relying-app", 1).await;
    let received = receiver.wait_for("the redirect, then the retry", |r| r.len() >= 2).await;
    assert!(received.iter().all(|d| d["path"] == "/hook"), "the redirect was not followed: {received:#?}");
    assert_eq!((received[0]["status"].as_u64(), received[1]["status"].as_u64()), (Some(307), Some(204)));
}

#[tokio::test]
async fn server_side_request_forgery_targets_are_refused() {
    let receiver = Receiver::start();
    let app = spawn_app_with(|s| {
        s.webhooks.allow_insecure = true;
        s.webhooks.poll_interval_ms = 50;
    })
    .await;
    for (url, why) in [
        (format!("http://127.0.0.1:{}/hook", receiver.port), "loopback literal"),
        ("http://169.254.169.254/latest/meta-data".to_owned(), "cloud metadata (link-local)"),
        ("http://[::1]/".to_owned(), "IPv6 loopback"),
        ("http://10.0.0.7/".to_owned(), "private"),
        ("http://[::ffff:127.0.0.1]/".to_owned(), "IPv4-mapped loopback"),
        ("http://0x7f.1/".to_owned(), "a loopback literal in another spelling"),
        ("ftp://hooks.example.com/".to_owned(), "another scheme"),
        ("http://user:pw@hooks.example.com/".to_owned(), "credentials"),
        ("hooks.example.com/x".to_owned(), "not absolute"),
    ] {
        let r = create_endpoint(&app, "relying-app", json!({"url": url})).await;
        assert_problem(r, 400, "invalid-body", why).await;
    }
    for (body, why) in [
        (json!({"url": "https://hooks.example.com/", "events": ["signer_process.Result"]}), "unknown event type"),
        (json!({"url": "https://hooks.example.com/", "events": []}), "no event type"),
        (json!({"url": "https://hooks.example.com/", "description": "x".repeat(257)}), "long description"),
        (json!({"url": 7}), "url not a string"),
        (json!({"url": "https://hooks.example.com/\u{0}"}), "a NUL in the url"),
        (json!({"url": format!("https://hooks.example.com/{}", "a".repeat(2100))}), "a long url"),
        (json!({}), "no url"),
        (json!(["https://hooks.example.com/"]), "not an object"),
    ] {
        let r = create_endpoint(&app, "relying-app", body).await;
        assert_problem(r, 400, "invalid-body", why).await;
    }
    // A name is checked where it resolves, at delivery: `localhost` is loopback.
    let named = endpoint(&app, "relying-app", &format!("http://localhost:{}/hook", receiver.port), None).await;
    app.create_process("relying-app", 1).await;
    let attempted =
        |log: &[Value]| log.first().is_some_and(|d| d["attempts"].as_array().is_some_and(|a| !a.is_empty()));
    let log = log_once(&app, "relying-app", &named, attempted).await;
    let error = log[0]["attempts"][0]["error"].as_str().expect("an error").to_owned();
    assert!(error.starts_with("refused: localhost resolves to"), "{error}");
    assert!(receiver.deliveries().await.is_empty(), "nothing reached the loopback receiver");
    let metrics = app
        .client
        .get(format!("http://127.0.0.1:{}/metrics", app.port))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("esignsp_webhook_deliveries_total{outcome=\"refused\"} 1"), "{metrics}");

    let strict = spawn_app_with(|_| {}).await;
    let r = create_endpoint(&strict, "relying-app", json!({"url": "http://hooks.example.com/"})).await;
    let problem = assert_problem(r, 400, "invalid-body", "plain HTTP").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("https")), "{problem}");
}

#[tokio::test]
async fn an_endpoint_failing_too_long_is_disabled_with_its_reason_and_can_be_enabled_again() {
    let receiver = Receiver::start();
    // 0.0005 h = 1.8 s of failures disable the endpoint.
    let app = app(|s| {
        s.webhooks.disable_after_hours = 0.0005;
        s.webhooks.max_attempts = 50;
    })
    .await;
    let created = endpoint(&app, "relying-app", &receiver.url("/hook"), None).await;
    let id = created["id"].as_str().expect("id");
    receiver.control("/_fail", json!({"count": -1, "status": 500})).await;
    app.create_process("relying-app", 1).await;
    let mut read = Value::Null;
    for _ in 0..200 {
        read = app.get("relying-app", &format!("/webhook_endpoints/{id}")).await.json().await.expect("json");
        if read["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read["enabled"], false, "{read}");
    let reason = read["disabled"]["reason"].as_str().expect("a reason");
    assert!(reason.starts_with("failing since ") && reason.ends_with("HTTP 500"), "{reason}");
    let attempts = receiver.deliveries().await.len();
    app.create_process("relying-app", 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.deliveries().await.len(), attempts, "a disabled endpoint gets nothing");

    receiver.control("/_fail", json!({"count": 0})).await;
    let r = app
        .client
        .patch(app.url(&format!("/webhook_endpoints/{id}")))
        .bearer_auth(token("relying-app"))
        .json(&json!({"enabled": true}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let enabled: Value = r.json().await.expect("json");
    assert_eq!((enabled["enabled"].clone(), enabled.get("disabled")), (json!(true), None), "{enabled}");
    receiver
        .wait_for("the waiting deliveries once enabled", |r| r.iter().filter(|d| d["status"] == 204).count() >= 1)
        .await;
    let r =
        app.client.delete(app.url(&format!("/webhook_endpoints/{id}"))).bearer_auth(token("relying-app")).send().await;
    assert_eq!(r.expect("request").status(), 204);
    let list: Value = app.get("relying-app", "/webhook_endpoints").await.json().await.expect("json");
    assert_eq!(list, json!({"webhook_endpoints": []}));
}

#[tokio::test]
async fn a_client_has_a_bounded_number_of_endpoints_and_webhooks_can_be_switched_off() {
    let app = spawn_app_with(|s| s.webhooks.max_endpoints_per_client = 2).await;
    for _ in 0..2 {
        assert_eq!(
            create_endpoint(&app, "relying-app", json!({"url": "https://hooks.example.com/"})).await.status(),
            201
        );
    }
    let r = create_endpoint(&app, "relying-app", json!({"url": "https://hooks.example.com/"})).await;
    assert_problem(r, 409, "webhook-endpoint-limit", "the limit").await;
    assert_eq!(
        create_endpoint(&app, "other-app", json!({"url": "https://hooks.example.com/"})).await.status(),
        201,
        "per client"
    );
    let r = app.client.post(app.url("/webhook_endpoints")).json(&json!({"url": "https://x.example/"})).send().await;
    assert_eq!(r.expect("request").status(), 401, "a bearer token is required");

    let off = spawn_app_with(|s| s.webhooks.enabled = false).await;
    let r = create_endpoint(&off, "relying-app", json!({"url": "https://hooks.example.com/"})).await;
    assert_problem(r, 404, "not-found", "webhooks off").await;
    let process = off.create_process("relying-app", 1).await;
    assert_eq!(
        off.put_result("relying-app", process["id"].as_str().expect("id"), r#"{"status":"finished"}"#).await.status(),
        200
    );
    assert_eq!(off.count("SELECT count(*) FROM webhook_deliveries").await, 0);
}

#[tokio::test]
async fn an_expired_process_is_notified_with_its_result() {
    let receiver = Receiver::start();
    let app = app(|s| {
        s.processes.ttl_seconds = 1.try_into().expect("positive");
        s.processes.sweep_interval_seconds = 1;
    })
    .await;
    let created = endpoint(&app, "relying-app", &receiver.url("/hook"), Some(&["signer_process.expired"])).await;
    receiver.control("/_secrets", json!([created["secret"]])).await;
    let process = app.create_process("relying-app", 1).await;
    let received = receiver.wait_for("the expiry", |r| !r.is_empty()).await;
    let event = body(&received[0]);
    assert_eq!(received[0]["verified"], json!([true]));
    assert_eq!(event["type"], "signer_process.expired");
    assert_eq!(event["data"]["signer_process_id"], process["id"]);
    assert_eq!(event["data"]["result"], json!({"status": "canceled", "details": {"message": "expired"}}));
    assert_eq!(event["data"]["documents"][0]["result"]["status"], "canceled");
}

#[tokio::test]
async fn a_silent_endpoint_holds_up_no_other_and_any_answer_is_logged() {
    let receiver = Receiver::start();
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_url = format!("http://127.0.0.1:{}/hook", silent.local_addr().expect("addr").port());
    let app = app(|s| s.webhooks.timeout_seconds = 10.try_into().expect("positive")).await;
    for _ in 0..3 {
        endpoint(&app, "mallory", &silent_url, None).await;
    }
    for _ in 0..6 {
        app.create_process("mallory", 1).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let honest = endpoint(&app, "relying-app", &receiver.url("/hook"), None).await;
    receiver.control("/_secrets", json!([honest["secret"]])).await;
    // The honest receiver answers 200 with a NUL and invalid UTF-8 in its body.
    receiver.control("/_fail", json!({"count": 1, "status": 200, "body": "ok\u{0}\u{7} done"})).await;
    let started = std::time::Instant::now();
    app.create_process("relying-app", 1).await;
    receiver.wait_for("the honest delivery", |r| !r.is_empty()).await;
    assert!(started.elapsed() < Duration::from_secs(5), "held up by the silent endpoint: {:?}", started.elapsed());
    let log =
        log_once(&app, "relying-app", &honest, |log| log.first().is_some_and(|d| d["status"] == "delivered")).await;
    assert_eq!(log[0]["status"], "delivered", "{log:#?}");
    assert_eq!(log[0]["attempts"][0]["response_body"], "ok\u{fffd}\u{fffd} done", "control characters replaced");
    drop(silent);
}
