use std::collections::HashSet;
use std::path::PathBuf;

use base64::Engine;
use esignsp_domain::ClientId;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;
use crate::keys::{keys_from_jwk_json, load_key_file};

const ISSUER: &str = "https://as.example";
const SCOPE: &str = "urn:safelayer:eidas:sign:process:document";

struct Keys {
    dir: PathBuf,
    ed_private: PathBuf,
    ec_private: PathBuf,
}

fn keys() -> Keys {
    let dir = std::env::temp_dir()
        .join(format!("esignsp-jwt-test-{}", data_encoding::HEXLOWER.encode(&rand::random::<[u8; 8]>())));
    let ed_private = dir.join("ed25519.pem");
    DevSigningKey::generate_ed25519(&ed_private).expect("generate ed25519");
    let rng = ring::rand::SystemRandom::new();
    let ec = ring::signature::EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("generate p256");
    let ec_private = dir.join("p256.pem");
    std::fs::write(&ec_private, pem::encode(&pem::Pem::new("PRIVATE KEY", ec.as_ref()))).expect("write");
    Keys { dir, ed_private, ec_private }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn settings(profile: Profile) -> VerifierSettings {
    VerifierSettings {
        issuer: ISSUER.to_owned(),
        audience: vec!["esignsp".to_owned()],
        algorithms: vec![Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA],
        leeway_seconds: 60,
        required_scope: SCOPE.to_owned(),
        profile,
        trusted_clients: HashSet::from(["signing-app".to_owned()]),
    }
}

fn verifier(keys: &Keys, profile: Profile) -> JwtVerifier {
    let allow = settings(profile).algorithms;
    let mut all = load_key_file(&keys.ed_private, &allow).expect("ed key");
    all.extend(load_key_file(&keys.ec_private, &allow).expect("ec key"));
    JwtVerifier::new(settings(profile), all)
}

fn now() -> i64 {
    i64::try_from(jsonwebtoken::get_current_timestamp()).expect("time")
}

fn good_claims() -> serde_json::Map<String, Value> {
    let Value::Object(m) = json!({
        "iss": ISSUER, "aud": "esignsp", "sub": "relying-app", "client_id": "relying-app",
        "scope": format!("openid {SCOPE}"), "iat": now(), "exp": now() + 300, "jti": "abc",
    }) else {
        unreachable!()
    };
    m
}

fn sign_ed(keys: &Keys, header: Header, claims: &serde_json::Map<String, Value>) -> String {
    let key = EncodingKey::from_ed_pem(&std::fs::read(&keys.ed_private).expect("read")).expect("key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

fn at_jwt(alg: Algorithm) -> Header {
    let mut h = Header::new(alg);
    h.typ = Some("at+jwt".to_owned());
    h
}

fn with(mut claims: serde_json::Map<String, Value>, name: &str, value: Value) -> serde_json::Map<String, Value> {
    if value.is_null() {
        claims.remove(name);
    } else {
        claims.insert(name.to_owned(), value);
    }
    claims
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

fn verify(v: &JwtVerifier, token: &str) -> Result<Caller, TokenRejection> {
    v.verify_sync(token)
}

fn invalid(reason: InvalidTokenReason) -> Result<Caller, TokenRejection> {
    Err(TokenRejection::Invalid(reason))
}

#[test]
fn a_good_token_names_its_client() {
    let k = keys();
    let caller = verify(&verifier(&k, Profile::Rfc9068), &sign_ed(&k, at_jwt(Algorithm::EdDSA), &good_claims()))
        .expect("valid token");
    assert_eq!(caller.client_id.as_str(), "relying-app");
    assert!(!caller.trusted);
}

#[test]
fn es256_tokens_verify_with_the_ec_key() {
    let k = keys();
    let key = EncodingKey::from_ec_pem(&std::fs::read(&k.ec_private).expect("read")).expect("key");
    let token = jsonwebtoken::encode(&at_jwt(Algorithm::ES256), &good_claims(), &key).expect("sign");
    assert!(verify(&verifier(&k, Profile::Rfc9068), &token).is_ok());
}

#[test]
fn every_claim_rejection_has_its_reason() {
    use InvalidTokenReason as R;
    let k = keys();
    let v = verifier(&k, Profile::Rfc9068);
    type Case = (&'static str, serde_json::Map<String, Value>, Result<Caller, TokenRejection>);
    let cases: Vec<Case> = vec![
        ("expired", with(good_claims(), "exp", json!(now() - 120)), invalid(R::Expired)),
        (
            "exp within leeway",
            with(good_claims(), "exp", json!(now() - 30)),
            Ok(Caller { client_id: ClientId::parse("relying-app").expect("id"), trusted: false }),
        ),
        ("nbf in the future", with(good_claims(), "nbf", json!(now() + 600)), invalid(R::NotYetValid)),
        ("iat in the future", with(good_claims(), "iat", json!(now() + 600)), invalid(R::NotYetValid)),
        // Found by the jwt fuzz target: jsonwebtoken 9 skipped an nbf that is not a u64 (10 refuses it).
        ("nbf beyond u64", with(good_claims(), "nbf", json!(1.767e39)), invalid(R::Malformed)),
        (
            "nbf fractional, in the future",
            with(good_claims(), "nbf", json!(now() as f64 + 600.5)),
            invalid(R::NotYetValid),
        ),
        ("nbf not a number", with(good_claims(), "nbf", json!("0")), invalid(R::Malformed)),
        ("missing exp", with(good_claims(), "exp", Value::Null), invalid(R::MissingClaim)),
        ("wrong aud", with(good_claims(), "aud", json!("other")), invalid(R::WrongAudience)),
        ("empty aud", with(good_claims(), "aud", json!([])), invalid(R::WrongAudience)),
        ("missing aud", with(good_claims(), "aud", Value::Null), invalid(R::MissingClaim)),
        (
            "aud array containing ours",
            with(good_claims(), "aud", json!(["x", "esignsp"])),
            Ok(Caller { client_id: ClientId::parse("relying-app").expect("id"), trusted: false }),
        ),
        ("iss with trailing slash", with(good_claims(), "iss", json!(format!("{ISSUER}/"))), invalid(R::WrongIssuer)),
        ("missing client_id", with(good_claims(), "client_id", Value::Null), invalid(R::MissingClaim)),
        ("missing jti", with(good_claims(), "jti", Value::Null), invalid(R::MissingClaim)),
        ("missing iat", with(good_claims(), "iat", Value::Null), invalid(R::MissingClaim)),
        (
            "scope as a substring",
            with(good_claims(), "scope", json!(format!("{SCOPE}x"))),
            Err(TokenRejection::InsufficientScope),
        ),
        (
            "scope as a prefix",
            with(good_claims(), "scope", json!("urn:safelayer:eidas:sign")),
            Err(TokenRejection::InsufficientScope),
        ),
        (
            "scope in another case",
            with(good_claims(), "scope", json!(SCOPE.to_uppercase())),
            Err(TokenRejection::InsufficientScope),
        ),
        ("no scope", with(good_claims(), "scope", Value::Null), Err(TokenRejection::InsufficientScope)),
        ("nbf as a string (CVE-2026-25537)", with(good_claims(), "nbf", json!("99999999999")), invalid(R::Malformed)),
        ("exp as a string", with(good_claims(), "exp", json!("never")), invalid(R::Malformed)),
        ("iss as an array", with(good_claims(), "iss", json!([ISSUER])), invalid(R::Malformed)),
        ("scope as an array (RFC 8693 §4.2)", with(good_claims(), "scope", json!([SCOPE])), invalid(R::Malformed)),
        ("aud with a number", with(good_claims(), "aud", json!(["esignsp", 1])), invalid(R::Malformed)),
        (
            "trusted client",
            with(with(good_claims(), "client_id", json!("signing-app")), "sub", json!("signing-app")),
            Ok(Caller { client_id: ClientId::parse("signing-app").expect("id"), trusted: true }),
        ),
    ];
    for (why, claims, expected) in cases {
        assert_eq!(verify(&v, &sign_ed(&k, at_jwt(Algorithm::EdDSA), &claims)), expected, "{why}");
    }
}

#[test]
fn header_rejections_have_their_reasons() {
    use InvalidTokenReason as R;
    let k = keys();
    let v = verifier(&k, Profile::Rfc9068);
    let good = sign_ed(&k, at_jwt(Algorithm::EdDSA), &good_claims());
    let (_, rest) = good.split_once('.').expect("jwt");
    let body = rest.split('.').next().expect("claims");

    for alg in ["none", "None", "NONE", "nOnE"] {
        let token = format!("{}.{body}.", b64(&json!({"alg": alg, "typ": "at+jwt"})));
        assert_eq!(verify(&v, &token), invalid(R::AlgorithmNotAllowed), "alg {alg}");
    }

    let mut plain = Header::new(Algorithm::EdDSA);
    plain.typ = Some("JWT".to_owned());
    assert_eq!(verify(&v, &sign_ed(&k, plain.clone(), &good_claims())), invalid(R::WrongType), "typ JWT under rfc9068");
    assert!(
        verify(&verifier(&k, Profile::Lenient), &sign_ed(&k, plain, &good_claims())).is_ok(),
        "typ JWT under lenient"
    );

    let mut media = Header::new(Algorithm::EdDSA);
    media.typ = Some("Application/AT+JWT".to_owned());
    assert!(verify(&v, &sign_ed(&k, media, &good_claims())).is_ok(), "typ compared as a media type");

    let crit = format!("{}.{body}.sig", b64(&json!({"alg": "EdDSA", "typ": "at+jwt", "crit": ["exp-ext"]})));
    assert_eq!(verify(&v, &crit), invalid(R::UnsupportedCritical));

    for kid in ["../../etc/passwd", "' OR 1=1 --"] {
        let mut h = at_jwt(Algorithm::EdDSA);
        h.kid = Some(kid.to_owned());
        // Keys from PEM files have no kid, so they remain candidates: the token verifies on
        // its signature alone and the kid text is never used for anything else.
        assert!(verify(&v, &sign_ed(&k, h, &good_claims())).is_ok(), "kid {kid:?}");
    }

    for garbage in ["", "a", "a.b", "a.b.c.d", "a.b.c.d.e", "!!!.b.c"] {
        assert_eq!(verify(&v, garbage), invalid(R::Malformed), "{garbage:?}");
    }
}

#[test]
fn a_token_signed_by_another_key_is_refused() {
    let k = keys();
    let other = keys();
    let token = sign_ed(&other, at_jwt(Algorithm::EdDSA), &good_claims());
    assert_eq!(verify(&verifier(&k, Profile::Rfc9068), &token), invalid(InvalidTokenReason::BadSignature));
}

#[test]
fn hmac_signed_with_the_public_key_is_refused() {
    let k = keys();
    let public = DevSigningKey::load(&k.ed_private).expect("dev key");
    assert_eq!(public.algorithm(), Algorithm::EdDSA);
    let key = EncodingKey::from_secret(&std::fs::read(&k.ed_private).expect("read"));
    let token = jsonwebtoken::encode(&at_jwt(Algorithm::HS256), &good_claims(), &key).expect("sign");
    assert_eq!(verify(&verifier(&k, Profile::Rfc9068), &token), invalid(InvalidTokenReason::AlgorithmNotAllowed));
}

#[test]
fn lenient_profile_takes_the_client_from_azp_or_sub_and_scope_from_scp() {
    let k = keys();
    let v = verifier(&k, Profile::Lenient);
    let mut plain = Header::new(Algorithm::EdDSA);
    plain.typ = None;
    let claims = with(
        with(with(with(good_claims(), "client_id", Value::Null), "jti", Value::Null), "scope", Value::Null),
        "azp",
        json!("azp-client"),
    );
    let claims = with(claims, "scp", json!([SCOPE]));
    let caller = verify(&v, &sign_ed(&k, plain.clone(), &claims)).expect("lenient accepts");
    assert_eq!(caller.client_id.as_str(), "azp-client");
    let claims = with(with(claims, "azp", Value::Null), "scp", json!(format!("a {SCOPE}")));
    assert_eq!(verify(&v, &sign_ed(&k, plain, &claims)).expect("sub").client_id.as_str(), "relying-app");
}

#[test]
fn dev_tokens_are_accepted_by_a_verifier_with_the_dev_key() {
    let k = keys();
    let dev = DevSigningKey::load(&k.ec_private).expect("dev key");
    assert_eq!(dev.algorithm(), Algorithm::ES256);
    let token = dev
        .sign(&DevTokenRequest { issuer: ISSUER, audience: "esignsp", client_id: "cli", scope: SCOPE, ttl_seconds: 60 })
        .expect("sign");
    let v = JwtVerifier::new(settings(Profile::Rfc9068), vec![dev.verification_key()]);
    assert_eq!(verify(&v, &token).expect("accepted").client_id.as_str(), "cli");
}

#[test]
fn rsa_dev_keys_sign_tokens_the_same_configuration_accepts() {
    use rsa::pkcs8::EncodePrivateKey;
    let k = keys();
    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key");
    let file = k.dir.join("rsa.pem");
    std::fs::write(&file, private.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).expect("pem").as_bytes()).expect("write");
    let dev = DevSigningKey::load(&file).expect("dev key");
    assert_eq!(dev.algorithm(), Algorithm::RS256);
    let token = dev
        .sign(&DevTokenRequest { issuer: ISSUER, audience: "esignsp", client_id: "cli", scope: SCOPE, ttl_seconds: 60 })
        .expect("sign");
    let v = JwtVerifier::new(settings(Profile::Rfc9068), vec![dev.verification_key()]);
    assert_eq!(verify(&v, &token).expect("accepted").client_id.as_str(), "cli");
    // The same file listed as a public key file works too (its public half is used).
    let from_file = load_key_file(&file, &settings(Profile::Rfc9068).algorithms).expect("loads");
    assert!(verify(&JwtVerifier::new(settings(Profile::Rfc9068), from_file), &token).is_ok());
}

#[test]
fn jwk_sets_skip_members_that_cannot_verify_and_bind_alg() {
    let jwks = json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "RSA", "use": "enc", "n": "sXch", "e": "AQAB"},
        {"kty": "weird"},
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed", "alg": "EdDSA"},
        {"kty": "RSA", "alg": "RS256", "kid": "r", "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw", "e": "AQAB"}
    ]});
    let keys = keys_from_jwk_json(
        &serde_json::to_vec(&jwks).expect("json"),
        &[Algorithm::RS256, Algorithm::PS256, Algorithm::EdDSA],
    )
    .expect("parses");
    let summary: Vec<(Option<&str>, &[Algorithm])> = keys.iter().map(|k| (k.kid(), k.algorithms())).collect();
    assert_eq!(summary, vec![(Some("ed"), &[Algorithm::EdDSA][..]), (Some("r"), &[Algorithm::RS256][..])]);
}

#[test]
fn symmetric_and_unknown_algorithms_cannot_be_configured() {
    assert!(parse_algorithm("HS256").is_err());
    assert!(parse_algorithm("none").is_err());
    assert_eq!(parse_algorithm("PS256"), Ok(Algorithm::PS256));
}
