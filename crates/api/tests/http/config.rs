//! Configuration and command line through the real `esignsp` binary, run as a child process
//! with real environment variables (and nothing inherited from the test's environment), and
//! the SQLite store's answers when its data directory is read-only or its disk is full.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// A fresh, empty directory to run in.
fn fresh_dir(name: &str) -> PathBuf {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("random");
    let dir = std::env::temp_dir().join(format!("esignsp-{name}-{}", esignsp_testkit::hex(&b)));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// `esignsp` in `cwd` with exactly `env` (plus `PATH` and the test signing identity,
/// [`signing_env`]): no variable of the test run leaks in.
fn esignsp(cwd: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_esignsp"));
    command.current_dir(cwd).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).envs(signing_env());
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

fn run(cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    esignsp(cwd, env).args(args).output().expect("run esignsp")
}

/// [`run`] for a command that should exit at once: one still running after 15 s (a `serve`
/// that started when it should have refused) is killed, and its output returned with the
/// exit status of a killed process.
fn run_briefly(cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut child =
        esignsp(cwd, env).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run esignsp");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while child.try_wait().expect("wait").is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait_with_output().expect("output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `key = value` lines of `check-config`'s output, by `section.key`, values as JSON.
fn printed_settings(output: &Output) -> HashMap<String, Value> {
    assert!(output.status.success(), "check-config failed: {}", text(&output.stderr));
    let mut section = String::new();
    let mut settings = HashMap::new();
    for line in text(&output.stdout).lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, value)) = line.split_once(" = ") {
            let value = serde_json::from_str(value).unwrap_or_else(|e| panic!("{line}: {e}"));
            settings.insert(format!("{section}.{key}"), value);
        }
    }
    settings
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn key_files_list() -> String {
    key_files().iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(",")
}

/// `esignsp serve` as a child process with its standard error captured.
struct Served {
    child: Child,
    port: u16,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// A service whose test failed before it was stopped is killed, never left running.
impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Served {
    fn start(mut command: Command, port: u16) -> Self {
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn esignsp");
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut logs = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut logs);
            logs
        });
        Self { child, port, stderr: Some(stderr) }
    }

    /// Waits until `/healthz` answers.
    async fn ready(mut self) -> Self {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client.get(format!("http://127.0.0.1:{}/healthz", self.port)).send().await.is_ok() {
                return self;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("esignsp exited with {status}: {}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("esignsp did not start");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn api(&self, path: &str) -> String {
        self.url(&format!("/trustedx-resources/esignsp/v2{path}"))
    }

    /// Stops it (SIGTERM) and returns what it wrote to standard error.
    fn stop(mut self) -> String {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        self.logs()
    }

    /// What it wrote to standard error, once it has exited.
    fn logs(&mut self) -> String {
        self.stderr.take().and_then(|s| s.join().ok()).unwrap_or_default()
    }
}

/// Variables of a service with the test keys and a SQLite file in `data`.
fn service_env<'a>(data: &'a str, port: &'a str, keys: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ESIGNSP__SERVER__DATA_DIR", data),
        ("ESIGNSP__SERVER__PORT", port),
        ("ESIGNSP__SERVER__WORKERS", "1"),
        ("ESIGNSP__SERVER__SHUTDOWN_TIMEOUT_SECONDS", "2"),
        ("ESIGNSP__AUTH__ISSUER", esignsp_testkit::ISSUER),
        ("ESIGNSP__AUTH__AUDIENCE", esignsp_testkit::AUDIENCE),
        ("ESIGNSP__AUTH__PUBLIC_KEY_FILES", keys),
        ("ESIGNSP__LOG__LEVEL", "info"),
    ]
}

async fn create_process(client: &reqwest::Client, url: String) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .part("process", reqwest::multipart::Part::text(PROCESS_JSON))
        .part("document", reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("contract.pdf"));
    client.post(url).bearer_auth(token("relying-app")).multipart(form).send().await.expect("request")
}

#[test]
fn environment_values_keep_their_text_and_a_one_value_list_is_a_list_of_one() {
    let dir = fresh_dir("config-text");
    let output = run(
        &dir,
        &[
            ("ESIGNSP__AUTH__ISSUER", "https://as.example"),
            ("ESIGNSP__AUTH__INTROSPECTION_URL", "https://as.example/introspect"),
            ("ESIGNSP__AUTH__INTROSPECTION_CLIENT_ID", "0042"),
            ("ESIGNSP__AUTH__INTROSPECTION_CLIENT_SECRET", "1.50"),
            ("ESIGNSP__AUTH__REQUIRED_SCOPE", "0012345"),
            ("ESIGNSP__AUTH__AUDIENCE", "12345"),
            ("ESIGNSP__AUTH__TRUSTED_CLIENTS", "TRUE"),
            ("ESIGNSP__LOG__LEVEL", "1.50"),
            ("ESIGNSP__SERVER__PORT", "09001"),
            ("ESIGNSP__DATABASE__MIGRATE_ON_START", "FALSE"),
        ],
        &["check-config"],
    );
    let settings = printed_settings(&output);
    for (key, expected) in [
        ("auth.introspection_client_id", Value::from("0042")),
        ("auth.required_scope", Value::from("0012345")),
        ("log.level", Value::from("1.50")),
        ("auth.audience", serde_json::json!(["12345"])),
        ("auth.trusted_clients", serde_json::json!(["TRUE"])),
        ("server.port", Value::from(9001)),
        ("database.migrate_on_start", Value::from(false)),
    ] {
        assert_eq!(settings.get(key), Some(&expected), "{key}: a string keeps its text, numbers and booleans parse");
    }
    let output = run(
        &dir,
        &[("ESIGNSP__AUTH__ISSUER", "https://as.example"), ("ESIGNSP__AUTH__AUDIENCE", "a,0042,TRUE")],
        &["check-config"],
    );
    assert_eq!(printed_settings(&output).get("auth.audience"), Some(&serde_json::json!(["a", "0042", "TRUE"])));
}

/// A one-request HTTP server that records the request it gets and answers `answer`.
async fn recording_server(answer: &'static str) -> (u16, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&request).contains("token=") {
            let n = stream.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        String::from_utf8_lossy(&request).into_owned()
    });
    (port, handle)
}

#[tokio::test]
async fn the_introspection_client_id_is_sent_exactly_as_configured() {
    let (introspection_port, request) = recording_server(r#"{"active":false}"#).await;
    let dir = fresh_dir("config-introspection");
    let port = free_port().to_string();
    let url = format!("http://127.0.0.1:{introspection_port}/introspect");
    let data = dir.join("data").display().to_string();
    let mut command = esignsp(
        &dir,
        &[
            ("ESIGNSP__SERVER__DATA_DIR", &data),
            ("ESIGNSP__SERVER__PORT", &port),
            ("ESIGNSP__SERVER__WORKERS", "1"),
            ("ESIGNSP__AUTH__ISSUER", "https://as.example"),
            ("ESIGNSP__AUTH__INTROSPECTION_URL", &url),
            ("ESIGNSP__AUTH__INTROSPECTION_CLIENT_ID", "0042"),
            ("ESIGNSP__AUTH__INTROSPECTION_CLIENT_SECRET", "1.50"),
        ],
    );
    command.arg("serve");
    let served = Served::start(command, port.parse().expect("port")).ready().await;
    let answer = reqwest::Client::new()
        .get(served.api("/signer_processes/0123456789abcdef0123456789abcdef"))
        .bearer_auth("an-opaque-token")
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 401, "an inactive token");
    let request = tokio::time::timeout(Duration::from_secs(10), request).await.expect("introspected").expect("request");
    served.stop();
    let credentials = request
        .lines()
        .find_map(|l| l.strip_prefix("authorization: Basic ").or_else(|| l.strip_prefix("Authorization: Basic ")))
        .unwrap_or_else(|| panic!("no client authentication in {request}"));
    let decoded = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, credentials.trim()).expect("b64");
    assert_eq!(text(&decoded), "0042:1.50", "RFC 7617 credentials as configured, not coerced to numbers");
}

#[test]
fn an_empty_or_blank_issuer_stops_start_up_and_only_an_absent_one_means_development() {
    let dir = fresh_dir("config-issuer");
    let file = dir.join("blank.toml");
    std::fs::write(&file, "[auth]\nissuer = \"\"\n").expect("write");
    let file = file.display().to_string();
    for (what, env, args) in [
        ("empty variable", vec![("ESIGNSP__AUTH__ISSUER", "")], vec!["serve"]),
        ("blank variable", vec![("ESIGNSP__AUTH__ISSUER", "  ")], vec!["serve"]),
        ("empty in the file", vec![("ESIGNSP_CONFIG", file.as_str())], vec!["serve"]),
        ("empty variable, check-config", vec![("ESIGNSP__AUTH__ISSUER", "")], vec!["check-config"]),
        ("empty variable, token", vec![("ESIGNSP__AUTH__ISSUER", "")], vec!["token", "--client-id", "app"]),
    ] {
        let output = run_briefly(&dir, &env, &args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{what}: refused at start ({stderr})");
        assert!(stderr.contains("auth.issuer"), "{what}: the line names the key: {stderr}");
        assert!(!stderr.contains("DEVELOPMENT"), "{what}: no development set-up: {stderr}");
        assert!(!dir.join("esignsp-data").exists(), "{what}: no key and no database were created");
    }
    let settings = printed_settings(&run(&dir, &[], &["check-config"]));
    assert_eq!(settings.get("auth.issuer"), Some(&Value::from(esignsp_api::config::DEV_ISSUER)), "absent: development");
}

#[test]
fn check_config_works_on_a_fresh_development_set_up_and_creates_nothing() {
    let dir = fresh_dir("config-fresh");
    let output = run(&dir, &[], &["check-config"]);
    let settings = printed_settings(&output);
    assert_eq!(settings.get("database.url"), Some(&Value::from("sqlite://esignsp-data/esignsp.db")));
    assert!(text(&output.stderr).contains("dev-signing-key.pem"), "says serve will generate the key");
    assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 0, "check-config writes nothing");
}

#[test]
fn a_password_anywhere_in_the_database_url_is_never_printed() {
    let dir = fresh_dir("config-redact");
    // Port 1 on the loopback: nothing listens, so `migrate` and `serve` fail at once.
    let urls = [
        "postgres://svc:secret-one@127.0.0.1:1/db",
        "postgres://svc@127.0.0.1:1/db?password=secret-two",
        "postgres://svc@127.0.0.1:1/db?sslpassword=secret-three&application_name=drill",
        "postgresql://svc:secret-four@127.0.0.1:1/db?password=secret-five&sslmode=disable",
    ];
    for url in urls {
        let keys = key_files_list();
        let env = [
            ("DATABASE_URL", url),
            ("ESIGNSP__AUTH__ISSUER", esignsp_testkit::ISSUER),
            ("ESIGNSP__AUTH__PUBLIC_KEY_FILES", &keys),
            ("ESIGNSP__DATABASE__ACQUIRE_TIMEOUT_SECONDS", "1"),
            ("ESIGNSP__LOG__LEVEL", "trace"),
            ("ESIGNSP__SERVER__PORT", "0"),
        ];
        let check = run(&dir, &env, &["check-config"]);
        let printed = printed_settings(&check);
        let shown = printed.get("database.url").and_then(Value::as_str).expect("database.url printed").to_owned();
        assert!(shown.contains("redacted") && shown.contains("127.0.0.1:1/db"), "{url} → {shown}");
        let migrate = run_briefly(&dir, &env, &["migrate"]);
        let serve = run_briefly(&dir, &env, &["serve"]);
        assert_eq!(migrate.status.code(), Some(2), "migrate fails: {}", text(&migrate.stderr));
        assert_eq!(serve.status.code(), Some(2), "serve fails: {}", text(&serve.stderr));
        let everything = [&check.stdout, &check.stderr, &migrate.stdout, &migrate.stderr, &serve.stdout, &serve.stderr]
            .map(|b| text(b))
            .join("\n");
        for secret in ["secret-one", "secret-two", "secret-three", "secret-four", "secret-five"] {
            assert!(!everything.contains(secret), "{url}: {secret} printed or logged:\n{everything}");
        }
    }
}

#[tokio::test]
async fn a_secret_in_the_url_of_the_issuers_keys_or_metadata_is_never_logged() {
    // Nothing listens on port 1: every fetch fails, and its failure is logged with the URL.
    for (key, url) in [
        ("ESIGNSP__AUTH__JWKS_URL", "http://127.0.0.1:1/jwks?access_token=secret-jwks"),
        ("ESIGNSP__AUTH__INTROSPECTION_URL", "http://svc:secret-intro@127.0.0.1:1/introspect?client_secret=secret-q"),
    ] {
        let dir = fresh_dir("config-fetch-secret");
        let data = dir.display().to_string();
        let port = free_port().to_string();
        let keys = key_files_list();
        let mut env = service_env(&data, &port, &keys);
        env.retain(|(k, _)| *k != "ESIGNSP__AUTH__PUBLIC_KEY_FILES");
        env.push((key, url));
        env.push(("ESIGNSP__AUTH__INTROSPECTION_CLIENT_ID", "esignsp"));
        env.push(("ESIGNSP__AUTH__INTROSPECTION_CLIENT_SECRET", "secret-client"));
        env.push(("ESIGNSP__LOG__LEVEL", "trace"));
        let served = Served::start(esignsp(&dir, &env), port.parse().expect("port")).ready().await;
        // An opaque token goes to introspection, a JWT to the key set: both fetches fail.
        let client = reqwest::Client::new();
        for token in ["opaque-token", "eyJhbGciOiJFZERTQSIsImtpZCI6IngifQ.e30.c2ln"] {
            let r = client.get(served.api("/documents/x")).bearer_auth(token).send().await.expect("answer");
            // 503 where the failed fetch was needed, 401 for the token that source cannot judge.
            assert!(matches!(r.status().as_u16(), 401 | 503), "{key}: {}", r.status());
        }
        let logs = served.stop();
        assert!(logs.contains("127.0.0.1:1"), "{key}: the failed fetch is logged with its (redacted) URL:\n{logs}");
        for secret in ["secret-jwks", "secret-intro", "secret-q", "secret-client"] {
            assert!(!logs.contains(secret), "{key}: {secret} logged:\n{logs}");
        }
    }
}

#[test]
fn token_never_generates_a_key_and_names_the_file_it_expected() {
    let dir = fresh_dir("config-token");
    let output = run(&dir, &[], &["token", "--client-id", "relying-app"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let expected = dir.join("esignsp-data").join("dev-signing-key.pem");
    assert!(stderr.contains(&expected.display().to_string()), "names the key file: {stderr}");
    assert!(stderr.contains("directory where `esignsp serve` runs"), "names where to run it: {stderr}");
    assert!(output.stdout.is_empty(), "no token");
    assert!(!dir.join("esignsp-data").exists(), "no key generated");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[tokio::test]
async fn without_a_public_url_links_name_the_port_served_and_another_port_is_warned_about() {
    let dir = fresh_dir("config-public-url");
    let keys = key_files_list();
    let data = dir.join("data").display().to_string();
    let port = free_port();
    let port_text = port.to_string();
    let mut command = esignsp(&dir, &service_env(&data, &port_text, &keys));
    command.arg("serve");
    let served = Served::start(command, port).ready().await;
    let client = reqwest::Client::new();
    let created = create_process(&client, served.api("/signer_processes")).await;
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().expect("location").to_owned();
    let body: Value = created.json().await.expect("json");
    let logs = served.stop();
    let base = format!("http://127.0.0.1:{port}/trustedx-resources/esignsp/v2/signer_processes/");
    assert!(location.starts_with(&base), "Location {location} names the port served ({port})");
    let task = body["tasks"]["pending"][0]["url"].as_str().expect("task url");
    assert!(task.starts_with(&format!("http://127.0.0.1:{port}/")), "task URL {task} names the port served");
    assert!(!logs.contains("public_url"), "no warning without a public URL: {logs}");

    let port = free_port();
    let port_text = port.to_string();
    let mut env = service_env(&data, &port_text, &keys);
    env.push(("ESIGNSP__SERVER__PUBLIC_URL", "http://127.0.0.1:8080"));
    let mut command = esignsp(&dir, &env);
    command.arg("serve");
    let logs = Served::start(command, port).ready().await.stop();
    let warning = logs.lines().find(|l| l.contains("WARN") && l.contains("public_url")).unwrap_or_else(|| {
        panic!("a warning that http://127.0.0.1:8080 is not the port served ({port}): {logs}");
    });
    assert!(warning.contains("8080") && warning.contains(&port_text), "{warning}");

    let port = free_port();
    let port_text = port.to_string();
    let mut env = service_env(&data, &port_text, &keys);
    env.push(("ESIGNSP__SERVER__PUBLIC_URL", "https://esignsp.example"));
    let mut command = esignsp(&dir, &env);
    command.arg("serve");
    let logs = Served::start(command, port).ready().await.stop();
    assert!(!logs.contains("public_url"), "a reverse proxy's address without a port is not questioned: {logs}");
}

/// Whether this test runs as root (the owner of `/proc/self` is the effective user).
fn is_root() -> bool {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc/self")) == 0
}

#[tokio::test]
async fn a_read_only_data_directory_answers_503_with_its_cause_and_says_so_at_start() {
    let dir = fresh_dir("config-read-only");
    let keys = key_files_list();
    let data_dir = dir.join("data");
    let data = data_dir.display().to_string();
    let port = free_port();
    let port_text = port.to_string();
    // A process stored while the directory was writable.
    let mut command = esignsp(&dir, &service_env(&data, &port_text, &keys));
    command.arg("serve");
    let served = Served::start(command, port).ready().await;
    let client = reqwest::Client::new();
    let created = create_process(&client, served.api("/signer_processes")).await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    served.stop();

    // Root writes through file modes, so as root the directory becomes a read-only bind mount
    // in a private mount namespace of the service; otherwise its mode is 0555.
    let port = free_port();
    let port_text = port.to_string();
    let env = service_env(&data, &port_text, &keys);
    let mut command = if is_root() {
        let script = format!(
            "mount --bind '{data}' '{data}' && mount -o remount,bind,ro '{data}' && exec '{}' serve",
            env!("CARGO_BIN_EXE_esignsp")
        );
        let mut command = Command::new("unshare");
        command.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
        command
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(signing_env())
            .envs(env);
        command
    } else {
        let mut perms = std::fs::metadata(&data_dir).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
        std::fs::set_permissions(&data_dir, perms).expect("chmod");
        let mut command = esignsp(&dir, &env);
        command.arg("serve");
        command
    };
    command.env("ESIGNSP__DATABASE__MIGRATE_ON_START", "true");
    let served = Served::start(command, port).ready().await;
    let ready = client.get(served.url("/readyz")).send().await.expect("readyz");
    let ready_status = ready.status();
    let ready_type = ready.headers().get("content-type").map(|v| v.to_str().unwrap_or_default().to_owned());
    let ready_body: Value = ready.json().await.unwrap_or_default();
    let read = client
        .get(served.api(&format!("/signer_processes/{id}")))
        .bearer_auth(token("relying-app"))
        .send()
        .await
        .expect("read");
    let read_status = read.status();
    let read_body: Value = read.json().await.unwrap_or_default();
    let write = create_process(&client, served.api("/signer_processes")).await;
    let write_status = write.status();
    let write_retry = write.headers().get("retry-after").is_some();
    let write_body: Value = write.json().await.unwrap_or_default();
    let logs = served.stop();

    assert_eq!(ready_status, 503, "/readyz: {ready_body}");
    assert_eq!(ready_type.as_deref(), Some("application/problem+json"));
    assert_eq!(ready_body["detail"], "Not ready: the database is read-only", "{ready_body}");
    assert!(
        read_status == 200 || read_status == 503,
        "a read answers from the file or 503, never 500: {read_status} {read_body}"
    );
    assert_eq!(write_status, 503, "a write: {write_body}");
    assert!(write_retry, "with Retry-After");
    assert_eq!(write_body["type"], "urn:esignsp:problem:database-read-only", "{write_body}");
    let line = logs.lines().find(|l| l.contains("is read-only")).unwrap_or_else(|| panic!("no start-up line: {logs}"));
    assert!(line.contains(&data), "the start-up line names the directory: {line}");
}

#[tokio::test]
async fn a_configured_public_url_is_the_base_of_every_link_with_or_without_its_trailing_slash() {
    for public_url in ["https://esignsp.example/base", "https://esignsp.example/base/", "https://esignsp.example"] {
        let app = spawn_app_with(|s| s.server.public_url = Some(url::Url::parse(public_url).expect("url"))).await;
        let created = create_process(&app.client, app.url("/signer_processes")).await;
        assert_eq!(created.status(), 201, "{public_url}");
        let location = created.headers()["location"].to_str().expect("location").to_owned();
        let body: Value = created.json().await.expect("json");
        let base = format!("{}/trustedx-resources/esignsp/v2", public_url.trim_end_matches('/'));
        let id = body["id"].as_str().expect("id");
        assert_eq!(location, format!("{base}/signer_processes/{id}"), "{public_url}: Location");
        let task = body["tasks"]["pending"][0]["url"].as_str().expect("task url");
        assert!(task.starts_with(&format!("{base}/")), "{public_url}: task URL {task}");
        app.stop().await;
    }
}

/// A signer's key (PKCS#8 PEM) and chain (PEM) from rcgen, valid from `from` to `until`.
fn signing_files(
    dir: &Path,
    name: &str,
    from: time::OffsetDateTime,
    until: time::OffsetDateTime,
) -> (PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
    ca.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} CA"));
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).expect("CA cert").pem();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let mut signer = rcgen::CertificateParams::new(Vec::<String>::new()).expect("signer");
    signer.distinguished_name.push(rcgen::DnType::CommonName, name);
    signer.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature, rcgen::KeyUsagePurpose::ContentCommitment];
    (signer.not_before, signer.not_after) = (from, until);
    let cert = signer.signed_by(&key, &issuer).expect("signer cert").pem();
    let (key_file, chain_file) = (dir.join(format!("{name}.key.pem")), dir.join(format!("{name}.chain.pem")));
    std::fs::write(&key_file, key.serialize_pem()).expect("write");
    std::fs::write(&chain_file, format!("{cert}{ca_pem}")).expect("write");
    (key_file, chain_file)
}

#[test]
fn check_config_shows_the_signing_identity_and_refuses_one_that_cannot_sign() {
    let dir = fresh_dir("config-signing");
    let keys = key_files_list();
    let now = time::OffsetDateTime::now_utc();
    let (key, chain) =
        signing_files(&dir, "valid signer", now - time::Duration::days(1), now + time::Duration::days(30));
    let (expired_key, expired_chain) =
        signing_files(&dir, "expired signer", now - time::Duration::days(30), now - time::Duration::days(1));
    let (other_key, _) =
        signing_files(&dir, "other signer", now - time::Duration::days(1), now + time::Duration::days(30));
    let path = |p: &PathBuf| p.display().to_string();
    let base = [("ESIGNSP__AUTH__ISSUER", esignsp_testkit::ISSUER), ("ESIGNSP__AUTH__PUBLIC_KEY_FILES", keys.as_str())];
    let with = |key: &PathBuf, chain: &PathBuf| {
        let mut env: Vec<(&str, String)> = base.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        env.push(("ESIGNSP__SIGNING__KEY_FILE", path(key)));
        env.push(("ESIGNSP__SIGNING__CERTIFICATE_CHAIN_FILE", path(chain)));
        env
    };
    let run_with = |env: &[(&str, String)], args: &[&str]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_briefly(&dir, &env, args)
    };

    let ok = run_with(&with(&key, &chain), &["check-config"]);
    let stderr = text(&ok.stderr);
    assert_eq!(ok.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("signing: built-in, level B-B"), "{stderr}");
    assert!(
        stderr.contains("CN=valid signer") && stderr.contains("CN=valid signer CA"),
        "subject and issuer: {stderr}"
    );
    assert!(stderr.contains("key ECDSA P-256") && stderr.contains("valid "), "key type and validity: {stderr}");

    for (what, env, expected) in [
        ("expired", with(&expired_key, &expired_chain), "not valid now"),
        ("foreign key", with(&other_key, &chain), "no certificate of the chain belongs to the signing key"),
    ] {
        for command in ["check-config", "serve"] {
            let out = run_with(&env, &[command]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what}, {command}: {stderr}");
            assert!(stderr.contains(expected) && stderr.contains("signing."), "{what}, {command}: {stderr}");
        }
    }
    // Outside the development set-up, neither a key nor an external signing application: one
    // line naming both. The test harness's own identity is removed by naming an empty file.
    let mut none: Vec<(&str, String)> = base.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    none.push(("ESIGNSP__SIGNING__KEY_FILE", String::new()));
    for command in ["check-config", "serve"] {
        let out = run_with(&none, &[command]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(stderr.contains("signing.key_file, ui.signing_app_url: neither is set"), "{command}: {stderr}");
    }
}
