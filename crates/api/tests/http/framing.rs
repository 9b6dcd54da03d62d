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
    let app = spawn_app_with(|s| s.server.body_timeout_seconds = 20).await;
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
    let app = spawn_app_with(|s| s.server.body_timeout_seconds = 20).await;
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
