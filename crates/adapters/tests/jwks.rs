//! The JWK Set source against a local HTTP server that counts its fetches.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use esignsp_adapters::jwks::{JwksLocation, JwksSource};
use esignsp_adapters::jwt::{JwtVerifier, Profile, VerifierSettings};
use esignsp_domain::ports::AccessTokenVerifier;
use esignsp_domain::{InvalidTokenReason, TokenRejection};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Key {
    encoding: EncodingKey,
    jwk: serde_json::Value,
}

fn key(kid: &str) -> Key {
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("key");
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("pair");
    let point = pair.public_key().as_ref();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    Key {
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]), "kid": kid, "alg": "ES256", "use": "sig"}),
    }
}

/// Serves `body` (a JWK Set) on every request, counting them; `status` 200 unless set.
async fn serve(body: Arc<std::sync::Mutex<(u16, String)>>, hits: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let (body, hits) = (body.clone(), hits.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                hits.fetch_add(1, Ordering::SeqCst);
                let (status, text) = body.lock().expect("lock").clone();
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nCache-Control: max-age=3600\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

fn verifier(url: &str) -> (JwtVerifier, Arc<JwksSource>) {
    let source =
        Arc::new(JwksSource::new(JwksLocation::Url(url.to_owned()), vec![Algorithm::ES256], Duration::from_secs(2)));
    let settings = VerifierSettings {
        issuer: "https://as.example".to_owned(),
        audience: vec!["esignsp".to_owned()],
        algorithms: vec![Algorithm::ES256, Algorithm::RS256],
        leeway_seconds: 60,
        required_scope: "urn:safelayer:eidas:sign:process:document".to_owned(),
        profile: Profile::Rfc9068,
        trusted_clients: Default::default(),
    };
    (JwtVerifier::new(settings, Vec::new()).with_jwks(source.clone()), source)
}

fn token(key: &Key, kid: &str) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(kid.to_owned());
    let claims = json!({"iss": "https://as.example", "aud": "esignsp", "sub": "c", "client_id": "c",
        "scope": "urn:safelayer:eidas:sign:process:document", "iat": now, "exp": now + 300, "jti": kid});
    jsonwebtoken::encode(&header, &claims, &key.encoding).expect("sign")
}

#[tokio::test]
async fn keys_are_fetched_once_cached_and_refetched_for_a_new_kid_at_most_once_per_interval() {
    let first = key("k1");
    let jwks = Arc::new(std::sync::Mutex::new((
        200,
        json!({"keys": [first.jwk, {"kty": "oct", "k": "c2VjcmV0"}]}).to_string(),
    )));
    let hits = Arc::new(AtomicUsize::new(0));
    let url = serve(jwks.clone(), hits.clone()).await;
    let (v, source) = verifier(&url);

    for _ in 0..5 {
        v.verify(&token(&first, "k1")).await.expect("a key of the set verifies");
    }
    let same = token(&first, "k1");
    for _ in 0..3 {
        v.verify(&same).await.expect("a token verified before is remembered");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1, "cached for max-age");

    // A flood of unknown kids: one fetch (the interval has not passed since the first).
    let flood: Vec<_> = (0..50).map(|i| token(&first, &format!("../../{i}' OR 1=1"))).collect();
    let results = futures_util::future::join_all(flood.iter().map(|t| v.verify(t))).await;
    assert!(results.iter().all(|r| *r == Err(TokenRejection::Invalid(InvalidTokenReason::UnknownKey))));
    assert_eq!(hits.load(Ordering::SeqCst), 1, "no fetch within the interval");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let results = futures_util::future::join_all(flood.iter().map(|t| v.verify(t))).await;
    assert!(results.iter().all(Result::is_err));
    assert_eq!(hits.load(Ordering::SeqCst), 2, "one single-flight fetch for the whole flood");
    assert_eq!(source.fetch_count(), 2);

    // Rotation: the issuer publishes k2; a k2 token triggers one refetch after the interval.
    let second = key("k2");
    *jwks.lock().expect("lock") = (200, json!({"keys": [second.jwk, first.jwk]}).to_string());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    v.verify(&token(&second, "k2")).await.expect("the rotated key is fetched");
    v.verify(&token(&first, "k1")).await.expect("the old key still verifies");

    // A failing refresh keeps the keys it had.
    *jwks.lock().expect("lock") = (500, "oops".to_owned());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let _ = v.verify(&token(&first, "unknown")).await;
    v.verify(&token(&second, "k2")).await.expect("keys kept when a refresh fails");
}

#[tokio::test]
async fn no_key_at_all_is_unavailable_not_invalid() {
    let jwks = Arc::new(std::sync::Mutex::new((503, String::new())));
    let hits = Arc::new(AtomicUsize::new(0));
    let url = serve(jwks, hits).await;
    let (v, _) = verifier(&url);
    assert_eq!(v.verify(&token(&key("k"), "k")).await, Err(TokenRejection::Unavailable));
    let (unreachable, _) = verifier("http://127.0.0.1:1/jwks");
    assert_eq!(unreachable.verify(&token(&key("k"), "k")).await, Err(TokenRejection::Unavailable));
}

#[test]
fn a_ps256_token_is_refused_by_a_key_published_for_rs256() {
    let keys = esignsp_testkit::keys();
    let set = json!({"keys": [keys.rsa_public_jwk("RS256", "r1")]});
    let allow = [Algorithm::RS256, Algorithm::PS256];
    let published = esignsp_adapters::keys::keys_from_jwk_json(set.to_string().as_bytes(), &allow).expect("set");
    assert_eq!(published[0].algorithms(), [Algorithm::RS256]);
    let settings = VerifierSettings {
        issuer: esignsp_testkit::ISSUER.to_owned(),
        audience: vec![esignsp_testkit::AUDIENCE.to_owned()],
        algorithms: allow.to_vec(),
        leeway_seconds: 60,
        required_scope: esignsp_testkit::SCOPE.to_owned(),
        profile: Profile::Rfc9068,
        trusted_clients: Default::default(),
    };
    let v = JwtVerifier::new(settings, published);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let claims = esignsp_testkit::claims("c");
    let rs = keys.sign(esignsp_testkit::Signer::Rs256, &claims);
    assert!(runtime.block_on(v.verify(&rs)).is_ok(), "RS256 verifies");
    let ps = keys.sign(esignsp_testkit::Signer::Ps256, &claims);
    assert_eq!(runtime.block_on(v.verify(&ps)), Err(TokenRejection::Invalid(InvalidTokenReason::AlgorithmNotAllowed)));
}

#[tokio::test]
async fn a_served_jwk_set_member_without_alg_verifies_the_algorithms_of_its_family() {
    let keys = esignsp_testkit::keys();
    let mut enc = keys.ec_public_jwk(esignsp_testkit::Signer::Es256, "ec-enc");
    enc["use"] = json!("enc");
    enc["alg"] = json!("ECDH-ES");
    // The JWK Set of issue #11: ed-1 with alg, an encryption key, an unknown key type, and
    // ed-2 without alg.
    let set = json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed-1", "alg": "EdDSA"},
        enc,
        {"kty": "AKP", "alg": "ML-DSA-44"},
        keys.ed_public_jwk("ed-2"),
    ]});
    let jwks = Arc::new(std::sync::Mutex::new((200, set.to_string())));
    let url = serve(jwks, Arc::new(AtomicUsize::new(0))).await;
    let allow = vec![Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA];
    let source = Arc::new(JwksSource::new(JwksLocation::Url(url), allow.clone(), Duration::from_secs(2)));
    let settings = VerifierSettings {
        issuer: esignsp_testkit::ISSUER.to_owned(),
        audience: vec![esignsp_testkit::AUDIENCE.to_owned()],
        algorithms: allow,
        leeway_seconds: 60,
        required_scope: esignsp_testkit::SCOPE.to_owned(),
        profile: Profile::Rfc9068,
        trusted_clients: Default::default(),
    };
    let v = JwtVerifier::new(settings, Vec::new()).with_jwks(source);
    let claims = esignsp_testkit::claims("c");
    let ed2 = keys.sign_with_kid(esignsp_testkit::Signer::EdDsa, Some("ed-2"), &claims);
    let caller = v.verify(&ed2).await.expect("an EdDSA token with kid ed-2 verifies");
    assert_eq!(caller.client_id.as_str(), "c");
    let ed1 = keys.sign_with_kid(esignsp_testkit::Signer::EdDsa, Some("ed-1"), &claims);
    assert_eq!(v.verify(&ed1).await, Err(TokenRejection::Invalid(InvalidTokenReason::BadSignature)), "ed-1");
    let enc = keys.sign_with_kid(esignsp_testkit::Signer::Es256, Some("ec-enc"), &claims);
    assert_eq!(v.verify(&enc).await, Err(TokenRejection::Invalid(InvalidTokenReason::UnknownKey)), "enc key skipped");
}

#[tokio::test]
async fn a_kid_published_after_the_first_fetch_is_fetched_even_beside_a_key_without_kid() {
    // A static PEM key (no kid) of another family used to turn the unknown kid into "algorithm
    // not allowed", so the JWK Set was never refetched for a key published later (issue #11).
    let keys = esignsp_testkit::keys();
    let ed1 = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed-1", "alg": "EdDSA"});
    let jwks = Arc::new(std::sync::Mutex::new((200, json!({"keys": [ed1]}).to_string())));
    let hits = Arc::new(AtomicUsize::new(0));
    let url = serve(jwks.clone(), hits.clone()).await;
    let allow = vec![Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA];
    let static_rsa = esignsp_adapters::keys::load_key_file(&keys.public_key_files[0], &allow).expect("RSA PEM");
    assert_eq!(static_rsa[0].kid(), None);
    let source = Arc::new(JwksSource::new(JwksLocation::Url(url), allow.clone(), Duration::from_secs(1)));
    let settings = VerifierSettings {
        issuer: esignsp_testkit::ISSUER.to_owned(),
        audience: vec![esignsp_testkit::AUDIENCE.to_owned()],
        algorithms: allow,
        leeway_seconds: 60,
        required_scope: esignsp_testkit::SCOPE.to_owned(),
        profile: Profile::Rfc9068,
        trusted_clients: Default::default(),
    };
    let v = JwtVerifier::new(settings, static_rsa).with_jwks(source);
    let claims = esignsp_testkit::claims("c");
    v.verify(&keys.sign(esignsp_testkit::Signer::Rs256, &claims)).await.expect("the static key verifies");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    *jwks.lock().expect("lock") = (200, json!({"keys": [ed1, keys.ed_public_jwk("ed-2")]}).to_string());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ed2 = keys.sign_with_kid(esignsp_testkit::Signer::EdDsa, Some("ed-2"), &claims);
    v.verify(&ed2).await.expect("ed-2 (no alg) is fetched and verifies EdDSA");
    assert_eq!(hits.load(Ordering::SeqCst), 2, "one refetch for the new kid");

    let unknown = keys.sign_with_kid(esignsp_testkit::Signer::Es256, Some("nowhere"), &claims);
    assert_eq!(v.verify(&unknown).await, Err(TokenRejection::Invalid(InvalidTokenReason::UnknownKey)));
}
