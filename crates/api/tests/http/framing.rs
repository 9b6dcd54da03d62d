//! Request framing over a raw TCP socket: what a client writes on the wire, whatever header it
//! adds, is read as RFC 9112 says, and answered without waiting for the body timeout.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Writes `request` on a new connection and reads the whole answer (until the server closes
/// the connection, or the answer's `Content-Length` is complete), within `within`.
pub async fn exchange(port: u16, request: &[u8], within: Duration) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok());
                if length.is_some_and(|n| body.len() >= n) {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(within, read).await.expect("answered in time, not held until the body timeout");
    String::from_utf8_lossy(&answer).into_owned()
}

fn put_result_request(id: &str, extra_headers: &str, body: &str, content_length: Option<usize>) -> Vec<u8> {
    let length = content_length.map(|n| format!("Content-Length: {n}\r\n")).unwrap_or_default();
    format!(
        "PUT /trustedx-resources/esignsp/v2/signer_processes/{id}/result HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\n{extra_headers}{length}\r\n{body}",
        token("relying-app")
    )
    .into_bytes()
}

#[tokio::test]
async fn an_upgrade_header_never_stalls_a_request_with_a_body() {
    let app = spawn_app_with(|s| s.server.body_timeout_seconds = 20.try_into().expect("positive")).await;
    let within = Duration::from_secs(8);
    for upgrade in [
        "Upgrade: websocket\r\n",
        "Upgrade: websocket\r\nConnection: Upgrade\r\n",
        "upgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n",
        "UPGRADE:  WEBSOCKET \r\n",
    ] {
        let started = Instant::now();
        let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
        let body = r#"{"status":"finished","details":{"message":"signed"}}"#;
        let answer = exchange(app.port, &put_result_request(&id, upgrade, body, Some(body.len())), within).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{upgrade:?}: {answer}");
        assert!(answer.ends_with(body), "{upgrade:?}: the result as stored: {answer}");
        assert_eq!(app.events_of(&id).await, ["created", "result"], "{upgrade:?}");

        let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
        for (length, why) in [(Some(0), "Content-Length: 0"), (None, "no Content-Length")] {
            let answer = exchange(app.port, &put_result_request(&id, upgrade, "", length), within).await;
            assert!(answer.starts_with("HTTP/1.1 400"), "{upgrade:?} {why}: {answer}");
            assert!(answer.contains("urn:esignsp:problem:invalid-body"), "{upgrade:?} {why}: {answer}");
        }
        // Bytes after the declared body are not a body, nor read as a next request.
        let answer = exchange(
            app.port,
            &put_result_request(&id, upgrade, r#"{"status":"failed"}GET /healthz HTTP/1.1"#, Some(19)),
            within,
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{upgrade:?} trailing bytes: {answer}");
        assert_eq!(answer.matches("HTTP/1.1").count(), 1, "one answer: {answer}");
        assert!(started.elapsed() < within, "{upgrade:?} took {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn routes_that_do_not_upgrade_answer_normally_whatever_upgrade_says() {
    let app = spawn_app_with(|s| s.server.body_timeout_seconds = 20.try_into().expect("positive")).await;
    let within = Duration::from_secs(8);
    for (request, expected) in [
        (&b"GET /healthz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"[..], "HTTP/1.1 200"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", "HTTP/1.1 200"),
        (b"POST /healthz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.1 405"),
        (b"GET /nowhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", "HTTP/1.1 404"),
    ] {
        let answer = exchange(app.port, request, within).await;
        assert!(answer.starts_with(expected), "{}: {answer}", String::from_utf8_lossy(request));
        assert!(!answer.contains(" 101 "), "never switches protocols: {answer}");
    }
    // Chunked framing wins over Upgrade, as RFC 9112 §6.3 says.
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    let body = r#"{"status":"canceled"}"#;
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let answer = exchange(
        app.port,
        &put_result_request(&id, "Upgrade: websocket\r\nTransfer-Encoding: chunked\r\n", &chunked, None),
        within,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "chunked with Upgrade: {answer}");
    assert!(answer.ends_with(body), "{answer}");
}

#[tokio::test]
async fn malformed_request_heads_are_counted_and_logged_as_client_errors_not_server_errors() {
    let database = fresh_database_url().await;
    let bin = crate::operations::spawn_binary(&database, &[]).await;
    let within = Duration::from_secs(8);
    let big = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(300 * 1024));
    let cases: [(&[u8], &str, &str); 6] = [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", "HTTP/1.1 400", "header"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", "HTTP/1.1 400", "header"),
        (b"GET /he<l>thz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400", "uri"),
        (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", "HTTP/1.1 400", "version"),
        // httparse refuses a method with a non-token character as a malformed head.
        (b"G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400", "header"),
        (big.as_bytes(), "HTTP/1.1 431", "head_too_large"),
    ];
    for (request, expected, kind) in cases {
        let answer = exchange(bin.port, request, within).await;
        assert!(answer.starts_with(expected), "{kind}: {answer}");
    }
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", bin.port))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let count = |kind: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("esignsp_http_client_errors_total{{kind=\"{kind}\"}} ")))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    assert_eq!(count("header"), Some(3), "{metrics}");
    for kind in ["uri", "version", "head_too_large"] {
        assert_eq!(count(kind), Some(1), "{kind}: {metrics}");
    }
    assert_eq!(count("slow_request"), Some(0), "every kind shows from the start");
    bin.signal("TERM");
    let (_, logs) = bin.logs_after_exit();
    let lines: Vec<serde_json::Value> = logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let errors: Vec<_> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(errors.is_empty(), "client mistakes are not server errors: {errors:?}");
    let warned = |kind: &str| lines.iter().filter(|l| l["level"] == "WARN" && l["kind"] == kind).count();
    assert_eq!(warned("header"), 1, "header errors within the interval are counted, logged once");
    for kind in ["uri", "version", "head_too_large"] {
        assert_eq!(warned(kind), 1, "{kind} is logged once at WARN");
    }
}
