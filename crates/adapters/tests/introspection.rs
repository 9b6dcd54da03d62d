//! Opaque tokens through a local RFC 7662 introspection endpoint that counts its requests:
//! what the verifier keeps of an answer, and for how long.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use esignsp_adapters::introspection::{IntrospectionSettings, Introspector};
use esignsp_adapters::jwt::{JwtVerifier, Profile, VerifierSettings};
use esignsp_domain::ports::AccessTokenVerifier;
use esignsp_domain::{InvalidTokenReason, TokenRejection};
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SCOPE: &str = "urn:safelayer:eidas:sign:process:document";

/// The endpoint: the answer of each token (`{"active": false}` for any other), its request
/// count, and a switch that makes it answer 503.
#[derive(Clone, Default)]
struct Endpoint {
    answers: Arc<Mutex<HashMap<String, Value>>>,
    hits: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Endpoint {
    fn answer(&self, token: &str, answer: Value) {
        self.answers.lock().expect("lock").insert(token.to_owned(), answer);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/introspect", listener.local_addr().expect("addr"));
        let endpoint = self.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let endpoint = endpoint.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
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
                            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_owned))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if body.len() >= length {
                            break body.to_owned();
                        }
                    };
                    endpoint.hits.fetch_add(1, Ordering::SeqCst);
                    // Slow enough that concurrent requests for one token overlap.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let token = url::form_urlencoded::parse(body.as_bytes())
                        .find(|(k, _)| k == "token")
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                    let (status, json) = if endpoint.down.load(Ordering::SeqCst) {
                        (503, String::new())
                    } else {
                        let answers = endpoint.answers.lock().expect("lock");
                        (200, answers.get(&token).cloned().unwrap_or(json!({"active": false})).to_string())
                    };
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                        json.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                });
            }
        });
        url
    }
}

fn verifier(url: String, cache_for: Duration) -> JwtVerifier {
    let settings = VerifierSettings {
        issuer: "https://as.example".to_owned(),
        audience: vec!["esignsp".to_owned()],
        algorithms: vec![Algorithm::ES256],
        leeway_seconds: 60,
        required_scope: SCOPE.to_owned(),
        profile: Profile::Rfc9068,
        trusted_clients: ["signing-app".to_owned()].into(),
    };
    let introspector = Introspector::new(IntrospectionSettings {
        url,
        client_id: "esignsp".to_owned(),
        client_secret: "secret".to_owned(),
        cache_for,
        issuer: "https://as.example".to_owned(),
        audience: vec!["esignsp".to_owned()],
    });
    JwtVerifier::new(settings, Vec::new()).with_introspection(Arc::new(introspector))
}

fn active(client: &str, scope: &str, exp_in: u64) -> Value {
    let exp = jsonwebtoken::get_current_timestamp() + exp_in;
    json!({"active": true, "client_id": client, "scope": scope, "exp": exp, "iss": "https://as.example"})
}

#[tokio::test]
async fn an_answer_is_kept_until_the_tokens_exp_and_at_most_the_configured_time() {
    let endpoint = Endpoint::default();
    let v = verifier(endpoint.serve().await, Duration::from_secs(60));
    // exp in 2 s: kept 1 to 2 s (whole seconds of the clock), never past exp.
    endpoint.answer("short", active("relying-app", SCOPE, 2));
    for _ in 0..3 {
        let caller = v.verify("short").await.expect("active");
        assert_eq!(caller.client_id.as_str(), "relying-app");
        assert!(!caller.trusted);
    }
    assert_eq!(endpoint.hits(), 1, "asked once while kept");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        v.verify("short").await,
        Err(TokenRejection::Invalid(InvalidTokenReason::Inactive)),
        "asked again after exp: the answer now has an exp in the past"
    );
    assert_eq!(endpoint.hits(), 2);

    // cache_for 1 s with a token valid for an hour: asked again after 1 s.
    let endpoint = Endpoint::default();
    let v = verifier(endpoint.serve().await, Duration::from_secs(1));
    endpoint.answer("long", active("signing-app", SCOPE, 3600));
    assert!(v.verify("long").await.expect("active").trusted, "a trusted client");
    assert!(v.verify("long").await.is_ok());
    assert_eq!(endpoint.hits(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(v.verify("long").await.is_ok());
    assert_eq!(endpoint.hits(), 2, "kept at most auth.introspection_cache_seconds");
}

#[tokio::test]
async fn refusals_are_kept_but_an_unreachable_server_is_not() {
    let endpoint = Endpoint::default();
    let v = verifier(endpoint.serve().await, Duration::from_secs(60));
    endpoint.answer("unscoped", active("relying-app", "openid", 3600));
    endpoint.answer("mistyped", json!({"active": true, "client_id": "c", "scope": SCOPE, "exp": "never"}));
    endpoint.answer("anonymous", json!({"active": true, "scope": SCOPE}));
    let cases = [
        ("unknown", Err(TokenRejection::Invalid(InvalidTokenReason::Inactive))),
        ("unscoped", Err(TokenRejection::InsufficientScope)),
        ("mistyped", Err(TokenRejection::Invalid(InvalidTokenReason::Malformed))),
        ("anonymous", Err(TokenRejection::Invalid(InvalidTokenReason::MissingClaim))),
    ];
    for (token, expected) in &cases {
        assert_eq!(&v.verify(token).await, expected, "{token}");
        assert_eq!(&v.verify(token).await, expected, "{token} again");
    }
    assert_eq!(endpoint.hits(), cases.len(), "each refusal asked once");

    endpoint.down.store(true, Ordering::SeqCst);
    endpoint.answer("fresh", active("relying-app", SCOPE, 3600));
    assert_eq!(v.verify("fresh").await, Err(TokenRejection::Unavailable));
    endpoint.down.store(false, Ordering::SeqCst);
    assert!(v.verify("fresh").await.is_ok(), "a 503 of the server is not kept");
    assert_eq!(endpoint.hits(), cases.len() + 2);
}

#[tokio::test]
async fn concurrent_requests_with_one_new_token_ask_once() {
    let endpoint = Endpoint::default();
    let v = verifier(endpoint.serve().await, Duration::from_secs(60));
    endpoint.answer("busy", active("relying-app", SCOPE, 3600));
    let results = futures_util::future::join_all((0..20).map(|_| v.verify("busy"))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(endpoint.hits(), 1, "one introspection for 20 concurrent requests (single flight)");
}
