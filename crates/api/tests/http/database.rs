//! Faults between the service and its database, and inside a request: a handler that panics,
//! values that do not decode, a schema changed under the running service, PostgreSQL going
//! away, and pgbouncer in transaction pooling mode in front of PostgreSQL.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use esignsp_adapters::store::Store;
use secrecy::SecretString;
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;
use serde_json::Value;

fn on_postgres() -> bool {
    !std::env::var("ESIGNSP_TEST_DATABASE").is_ok_and(|v| v == "sqlite")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The test database URL with its host and port replaced by 127.0.0.1:`port`.
fn via_port(database_url: &str, port: u16) -> String {
    let mut url = url::Url::parse(database_url).expect("database URL");
    url.set_host(Some("127.0.0.1")).expect("host");
    url.set_port(Some(port)).expect("port");
    url.to_string()
}

/// Host and port of the PostgreSQL server of the test database URL.
fn upstream(database_url: &str) -> (String, u16) {
    let url = url::Url::parse(database_url).expect("database URL");
    (url.host_str().unwrap_or("127.0.0.1").to_owned(), url.port().unwrap_or(5432))
}

async fn migrated_database() -> String {
    let url = esignsp_testkit::fresh_database().await;
    let store = Store::connect_lazy(&url, &Default::default()).expect("pool");
    store.migrate().await.expect("migrate directly");
    store.close().await;
    url
}

fn panics(config: &mut actix_web::web::ServiceConfig) {
    config.route(
        "/test/panic",
        actix_web::web::get().to(|| async {
            panic!("a test handler panicked on purpose");
            #[allow(unreachable_code)]
            actix_web::HttpResponse::Ok().finish()
        }),
    );
}

#[tokio::test]
async fn a_handler_that_panics_answers_500_with_a_problem_document_and_the_server_keeps_serving() {
    let database_url = fresh_database_url().await;
    let app = start_with_routes(test_settings(&database_url), database_url, panics).await;
    for attempt in 0..3 {
        let r = app.client.get(format!("http://127.0.0.1:{}/test/panic", app.port)).send().await;
        let r = r.unwrap_or_else(|e| panic!("attempt {attempt}: the connection was dropped unanswered: {e}"));
        assert_problem(r, 500, "internal-error", "a panic in a handler").await;
    }
    let health = app.client.get(format!("http://127.0.0.1:{}/healthz", app.port)).send().await.expect("healthz");
    assert_eq!(health.status(), 200, "the workers survived");
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    assert_eq!(app.get("relying-app", &format!("/signer_processes/{id}")).await.status(), 200);
}

#[tokio::test]
async fn a_stored_value_that_does_not_decode_answers_500_not_a_dropped_connection_or_503() {
    if !on_postgres() {
        return; // The column types of PostgreSQL are what is changed here.
    }
    let app = spawn_app().await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    let mut admin = sqlx::PgConnection::connect(&app.database_url).await.expect("connect");
    sqlx::query("ALTER TABLE signer_processes ALTER COLUMN version TYPE integer")
        .execute(&mut admin)
        .await
        .expect("alter");
    let r = app.put_result("relying-app", &id, r#"{"status":"finished"}"#).await;
    assert_problem(r, 500, "internal-error", "a version column that no longer decodes as bigint").await;
}

#[tokio::test]
async fn a_column_type_changed_under_the_running_service_does_not_break_requests() {
    if !on_postgres() {
        return; // PostgreSQL's cached plans; SQLite re-prepares by itself.
    }
    // One connection: every statement below is prepared, and cached, on it.
    let app = spawn_app_with(|s| s.database.max_connections = std::num::NonZeroU32::MIN).await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    let body = r#"{"status":"finished","details":{"message":"signed"}}"#;
    assert_eq!(app.put_result("relying-app", &id, body).await.status(), 200);
    for _ in 0..3 {
        assert_eq!(app.get("relying-app", &format!("/signer_processes/{id}/result")).await.status(), 200);
        assert_eq!(app.get("relying-app", &format!("/signer_processes/{id}")).await.status(), 200);
    }
    let mut admin = sqlx::PgConnection::connect(&app.database_url).await.expect("connect");
    sqlx::query("ALTER TABLE signer_processes ALTER COLUMN result_message TYPE varchar(2000)")
        .execute(&mut admin)
        .await
        .expect("alter");
    for round in 0..3 {
        let r = app.get("relying-app", &format!("/signer_processes/{id}/result")).await;
        assert_eq!(r.status(), 200, "GET result, round {round}");
        assert_eq!(r.json::<serde_json::Value>().await.expect("json")["details"]["message"], "signed");
        let r = app.get("relying-app", &format!("/signer_processes/{id}")).await;
        assert_eq!(r.status(), 200, "GET process, round {round}");
        assert_eq!(app.put_result("relying-app", &id, body).await.status(), 200, "PUT replay, round {round}");
    }
}

/// A TCP forwarder to PostgreSQL that can go down like PostgreSQL does: its port refuses
/// connections, and the connections it carried are cut.
struct Outage {
    port: u16,
    upstream: (String, u16),
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Outage {
    async fn start(database_url: &str) -> Self {
        let outage = Self { port: free_port(), upstream: upstream(database_url), task: Mutex::new(None) };
        outage.up().await;
        outage
    }

    async fn up(&self) {
        let mut listener = None;
        for _ in 0..50 {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let listener = listener.expect("the forwarder's port can be bound again");
        let upstream = self.upstream.clone();
        let task = tokio::spawn(async move {
            // Dropped with this task (on `down`): every forwarded connection is cut.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect((upstream.0.as_str(), upstream.1)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        *self.task.lock().expect("lock") = Some(task);
    }

    async fn down(&self) {
        let task = self.task.lock().expect("lock").take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

#[tokio::test]
async fn while_postgresql_is_down_requests_answer_503_at_once_and_the_service_recovers() {
    if !on_postgres() {
        return; // The embedded store has no server to lose.
    }
    let database = esignsp_testkit::fresh_database().await;
    let outage = Outage::start(&database).await;
    let mut settings = test_settings(&via_port(&database, outage.port));
    // Far longer than any answer below may take: before the fix, each waited this long.
    settings.database.acquire_timeout_seconds = 20.try_into().expect("positive");
    let app = start(settings, database).await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    let path = format!("/signer_processes/{id}");

    outage.down().await;
    for attempt in 0..10 {
        let started = Instant::now();
        let r = app.get("relying-app", &path).await;
        let took = started.elapsed();
        assert_eq!(r.headers().get("retry-after").map(|v| v.to_str().expect("ascii")), Some("5"));
        assert_problem(r, 503, "service-unavailable", "PostgreSQL down").await;
        assert!(
            took < Duration::from_secs(3),
            "attempt {attempt}: a 503 without waiting for a connection, took {took:?}"
        );
    }
    let ready = app.client.get(format!("http://127.0.0.1:{}/readyz", app.port)).send().await.expect("readyz");
    assert_eq!(ready.status(), 503, "not ready while PostgreSQL is down");

    outage.up().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = app.get("relying-app", &path).await.status();
        assert!(status == 200 || status == 503, "never another answer: {status}");
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the service recovers by itself once PostgreSQL is back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.put_result("relying-app", &id, r#"{"status":"finished"}"#).await.status(), 200);
    let ready = app.client.get(format!("http://127.0.0.1:{}/readyz", app.port)).send().await.expect("readyz");
    assert_eq!(ready.status(), 200, "ready again");
}

/// pgbouncer (Debian's package, installed by `scripts/test.sh`) on a port of its own in front of
/// the test PostgreSQL server, in transaction pooling mode with few server connections, so
/// that the service's connections really share them.
struct Pgbouncer {
    port: u16,
    child: Child,
    dir: PathBuf,
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pgbouncer {
    /// `extra` is appended to the `[pgbouncer]` section.
    fn start(database_url: &str, extra: &str) -> Self {
        let binary = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("pgbouncer is not installed: scripts/test.sh installs it (apt-get install pgbouncer)");
        let url = url::Url::parse(database_url).expect("database URL");
        let (host, upstream_port) = upstream(database_url);
        let user = if url.username().is_empty() { "postgres" } else { url.username() };
        let password = url.password().unwrap_or_default();
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("esignsp-pgbouncer-{port}"));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("users.txt"), format!("\"{user}\" \"{password}\"\n")).expect("auth file");
        std::fs::write(
            dir.join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host={host} port={upstream_port}\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {auth}\npool_mode = transaction\n\
                 default_pool_size = 4\nmax_client_conn = 500\nlogfile = {log}\n{extra}\n",
                auth = dir.join("users.txt").display(),
                log = dir.join("pgbouncer.log").display(),
            ),
        )
        .expect("config");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        // pgbouncer refuses to run as root: as root, it runs as the postgres user.
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let mut command = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=postgres", "--regid=postgres", "--clear-groups", binary]);
            c
        } else {
            Command::new(binary)
        };
        let mut child = command
            .arg(dir.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer starts");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self { port, child, dir };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("pgbouncer did not listen: {}", std::fs::read_to_string(dir.join("pgbouncer.log")).unwrap_or_default());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

fn pooled_settings(url: &str) -> esignsp_api::config::Settings {
    let mut settings = test_settings(url);
    settings.database.transaction_pooling = true;
    settings.database.max_connections = 16.try_into().expect("positive");
    settings
}

#[tokio::test]
async fn behind_pgbouncer_in_transaction_mode_concurrent_requests_all_succeed() {
    if !on_postgres() {
        return;
    }
    let database = migrated_database().await;
    // No `ignore_startup_parameters`: the service sends none.
    let pgbouncer = Pgbouncer::start(&database, "");
    let app = start(pooled_settings(&via_port(&database, pgbouncer.port)), database).await;
    let clients: i32 = 32;
    let rounds: i32 = 6;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let base = app.base.clone();
            let client = app.client.clone();
            let form = || app.process_form();
            let forms: Vec<_> = (0..rounds).map(|_| form()).collect();
            tokio::spawn(async move {
                let token = token("relying-app");
                let mut statuses = Vec::new();
                for (round, form) in forms.into_iter().enumerate() {
                    let r = client
                        .post(format!("{base}/signer_processes"))
                        .bearer_auth(&token)
                        .multipart(form)
                        .send()
                        .await
                        .expect("create");
                    statuses.push(("create", r.status().as_u16()));
                    let Ok(created) = r.json::<serde_json::Value>().await else { continue };
                    let Some(id) = created["id"].as_str() else { continue };
                    let document = created["documents"][0]["id"].as_str().unwrap_or_default().to_owned();
                    let process = format!("{base}/signer_processes/{id}");
                    let get = client.get(&process).bearer_auth(&token).send().await.expect("get");
                    statuses.push(("get", get.status().as_u16()));
                    let message =
                        format!(r#"{{"status":"finished","details":{{"message":"client {c} round {round}"}}}}"#);
                    let doc = client
                        .put(format!("{process}/documents/{document}/result"))
                        .bearer_auth(&token)
                        .header("Content-Type", "application/json")
                        .body(r#"{"status":"finished"}"#)
                        .send()
                        .await
                        .expect("document result");
                    statuses.push(("document result", doc.status().as_u16()));
                    let put = client
                        .put(format!("{process}/result"))
                        .bearer_auth(&token)
                        .header("Content-Type", "application/json")
                        .body(message)
                        .send()
                        .await
                        .expect("put");
                    statuses.push(("put", put.status().as_u16()));
                    let result = client.get(format!("{process}/result")).bearer_auth(&token).send().await.expect("get");
                    statuses.push(("get result", result.status().as_u16()));
                    let events = client.get(format!("{process}/events")).bearer_auth(&token).send().await.expect("get");
                    statuses.push(("events", events.status().as_u16()));
                }
                statuses
            })
        })
        .collect();
    let mut failures = Vec::new();
    let mut answered: i32 = 0;
    for task in tasks {
        for (what, status) in task.await.expect("task") {
            answered += 1;
            let expected = if what == "create" { 201 } else { 200 };
            if status != expected {
                failures.push(format!("{what}: {status}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {answered} answers were wrong: {:?}",
        failures.len(),
        &failures[..failures.len().min(20)]
    );
    assert_eq!(answered, clients * rounds * 6);
    let stored = app.count("SELECT count(*) FROM signer_processes WHERE result_status = 'finished'").await;
    assert_eq!(stored, i64::from(clients * rounds), "every acknowledged result is stored");
    let events = app.count("SELECT count(*) FROM process_events").await;
    assert_eq!(events, i64::from(clients * rounds * 3), "created, document_result, result");
    assert!(pgbouncer.log().contains("login attempt"), "the service went through pgbouncer");
}

#[tokio::test]
async fn behind_pgbouncer_the_lock_timeout_still_applies() {
    if !on_postgres() {
        return;
    }
    let database = migrated_database().await;
    let pgbouncer = Pgbouncer::start(&database, "");
    let mut settings = pooled_settings(&via_port(&database, pgbouncer.port));
    settings.database.statement_timeout_seconds = std::num::NonZeroU64::MIN;
    let app = start(settings, database.clone()).await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    let mut holder = sqlx::PgConnection::connect(&database).await.expect("connect");
    let mut tx = holder.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM signer_processes WHERE id = $1 FOR UPDATE")
        .bind(&id)
        .execute(&mut *tx)
        .await
        .expect("lock the process row");
    let put = app
        .client
        .put(app.url(&format!("/signer_processes/{id}/result")))
        .bearer_auth(token("relying-app"))
        .header("Content-Type", "application/json")
        .body(r#"{"status":"finished"}"#)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("the PUT is answered while the row stays locked (lock_timeout), not left waiting");
    assert_problem(put, 503, "service-unavailable", "lock_timeout through pgbouncer").await;
    tx.rollback().await.expect("rollback");
    assert_eq!(app.put_result("relying-app", &id, r#"{"status":"finished"}"#).await.status(), 200);
}

async fn start_up_error(settings: esignsp_api::config::Settings) -> String {
    match esignsp_api::startup::Application::build(settings).await {
        Ok(_) => panic!("start-up should have failed"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn behind_pgbouncer_a_configuration_that_cannot_work_is_named_at_start_up() {
    if !on_postgres() {
        return;
    }
    let database = migrated_database().await;

    // Without the switch, pgbouncer refuses the start-up options that carry the time-outs.
    let strict = Pgbouncer::start(&database, "");
    let mut settings = test_settings(&via_port(&database, strict.port));
    settings.database.acquire_timeout_seconds = 2.try_into().expect("positive");
    let error = start_up_error(settings).await;
    assert!(error.contains("database.transaction_pooling"), "names the switch: {error}");
    assert!(!error.contains("unavailable"), "not reported as an outage: {error}");

    // With the options ignored by pgbouncer, the time-outs would be silently lost.
    let lenient = Pgbouncer::start(&database, "ignore_startup_parameters = options, extra_float_digits");
    let mut settings = test_settings(&via_port(&database, lenient.port));
    settings.database.acquire_timeout_seconds = 2.try_into().expect("positive");
    let error = start_up_error(settings).await;
    assert!(error.contains("database.transaction_pooling") && error.contains("statement_timeout"), "{error}");

    // Migrations cannot run through it: start-up says to run them directly.
    let unmigrated = esignsp_testkit::fresh_database().await;
    let mut settings = pooled_settings(&via_port(&unmigrated, strict.port));
    settings.database.url = SecretString::from(via_port(&unmigrated, strict.port));
    let error = start_up_error(settings).await;
    assert!(error.contains("esignsp migrate") && error.contains("pending"), "{error}");
}

#[tokio::test]
async fn a_read_only_postgresql_database_answers_503_database_read_only_and_writes_work_again_after() {
    if !on_postgres() {
        return; // SQLite's read-only data directory is a test of its own (config.rs).
    }
    let app = spawn_app().await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    let database = url::Url::parse(&app.database_url).expect("database URL").path().trim_start_matches('/').to_owned();
    let mut admin = sqlx::PgConnection::connect(&app.database_url).await.expect("connect");
    // What a standby or an operator's default_transaction_read_only gives: SQLSTATE 25006.
    sqlx::query(&format!("ALTER DATABASE \"{database}\" SET default_transaction_read_only = on"))
        .execute(&mut admin)
        .await
        .expect("read-only");
    // Connections made before keep their session setting: end them, as a failover would.
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&database)
    .execute(&mut admin)
    .await
    .expect("terminate");
    // The terminated connections answer 503 service-unavailable until the outage probe has
    // connected again; then every write meets the read-only database.
    let mut last = Value::Null;
    for _ in 0..40 {
        let r = app.put_result("relying-app", &id, r#"{"status":"finished"}"#).await;
        assert_eq!(r.status(), 503, "a read-only database cannot have stored the result");
        assert!(r.headers().contains_key("retry-after"), "503 carries Retry-After");
        last = r.json().await.expect("problem body");
        if last["type"] == "urn:esignsp:problem:database-read-only" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(last["type"], "urn:esignsp:problem:database-read-only", "a read-only PostgreSQL database: {last}");
    assert_eq!(app.get("relying-app", &format!("/signer_processes/{id}/result")).await.status(), 404, "nothing stored");
    sqlx::query(&format!("ALTER DATABASE \"{database}\" RESET default_transaction_read_only"))
        .execute(&mut admin)
        .await
        .expect("writable");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&database)
    .execute(&mut admin)
    .await
    .expect("terminate");
    let mut status = 0;
    for _ in 0..40 {
        status = app.put_result("relying-app", &id, r#"{"status":"finished"}"#).await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status, 200, "writes work again once the database is writable, without a restart");
}
