//! Credentials and query strings: the `Authorization` header (RFC 6750 §2.1), `X-Request-Id`,
//! query strings (`access_token`, O12's `signerProcessId`), and JWT access tokens (RFC 7515
//! segments, RFC 9068 / SPEC §6 claims).

use std::collections::HashSet;
use std::sync::OnceLock;

use actix_web::http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use actix_web::ResponseError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use esignsp_adapters::jwt::{parse_algorithm, JwtVerifier, Profile, VerifierSettings};
use esignsp_adapters::keys::keys_from_jwk_json;
use esignsp_api::auth::bearer_token;
use esignsp_api::error::{ApiError, BearerRejection, REALM};
use esignsp_api::request_id::sane;
use esignsp_api::routes::ui::signer_process_id;
use esignsp_domain::auth::{Caller, TokenRejection};
use esignsp_domain::ports::AccessTokenVerifier;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde_json::{json, Map, Value};

use crate::{assert_client_error, block_on};

/// RFC 6750 §2.1 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`,
/// written here from the grammar, apart from the implementation it checks.
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

fn has_access_token(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "access_token")
}

/// The RFC 6750 §3 answer of a refused credential: 400 `invalid_request` or 401 without an
/// error code, a problem document, and a `WWW-Authenticate` of the realm that is a valid
/// field value.
fn assert_challenge(rejection: &BearerRejection) -> u16 {
    let status = rejection.status().as_u16();
    match status {
        400 => assert_eq!(rejection.error_code(), Some("invalid_request")),
        401 => assert_eq!(rejection.error_code(), None),
        other => panic!("a malformed or missing credential is 400 or 401, not {other}"),
    }
    let challenge = rejection.www_authenticate();
    assert!(challenge.starts_with(&format!("Bearer realm=\"{REALM}\"")));
    assert!(HeaderValue::from_str(&challenge).is_ok(), "WWW-Authenticate is a field value");
    assert_client_error(rejection.clone(), &[400, 401], "Authorization");
    status
}

/// `Authorization` headers and a query string: the first line of `data` is the query, each
/// further line one `Authorization` value. An accepted token is the one `Bearer` credential,
/// an RFC 6750 b64token after the case-insensitive scheme and spaces, with no `access_token`
/// in the query, and is accepted again alone; refusals are 400 `invalid_request` (two
/// headers, a malformed one) or 401 (none). Each line is also an `X-Request-Id`, taken exactly
/// when it is 1 to 128 characters of `[A-Za-z0-9._:-]`.
pub fn authorization(data: &[u8]) {
    let mut lines = data.split(|&b| b == b'\n');
    let query = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            let id = sane(&value);
            let expected = value.to_str().ok().filter(|s| {
                (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
            });
            assert_eq!(id.as_deref(), expected, "X-Request-Id");
            headers.append(AUTHORIZATION, value);
        }
    }
    let count = headers.get_all(AUTHORIZATION).count();
    match bearer_token(&headers, &query) {
        Ok(token) => {
            assert_eq!(count, 1, "exactly one Authorization header");
            let raw = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).expect("a visible-ASCII header");
            let (scheme, rest) = raw.split_at(raw.find(' ').expect("a space after the scheme"));
            assert!(scheme.eq_ignore_ascii_case("bearer"), "the Bearer scheme: {raw:?}");
            assert_eq!(rest.trim_start_matches(' '), token, "the token is all that follows the spaces");
            assert!(is_b64token(token), "an RFC 6750 b64token: {token:?}");
            assert!(!has_access_token(&query), "no second token in the query");
            let mut alone = HeaderMap::new();
            alone.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).expect("a field value"));
            assert_eq!(bearer_token(&alone, "").ok(), Some(token), "round trip");
        }
        Err(e) => {
            let status = assert_challenge(&e);
            if count == 0 {
                assert_eq!(status, 401, "no credential is 401 without an error code");
            }
            if count > 1 {
                assert_eq!(status, 400, "two credentials are an invalid_request");
            }
        }
    }
}

/// A query string (any request; O12's `signerProcessId`): a token only in the query is a
/// 401 without an error code, and with a valid header an `access_token` pair makes an
/// `invalid_request`; O12's id, when taken, has our shape, is the first `signerProcessId`,
/// survives re-encoding the query and is not changed by an unknown parameter appended
/// (clients append `ui_locales`).
pub fn query_string(data: &[u8]) {
    let Ok(query) = std::str::from_utf8(data) else { return };
    let Err(e) = bearer_token(&HeaderMap::new(), query) else { panic!("a query alone is never a credential") };
    assert_eq!(assert_challenge(&e), 401);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc.def"));
    match bearer_token(&headers, query) {
        Ok(_) => assert!(!has_access_token(query)),
        Err(e) => {
            assert!(has_access_token(query), "only a query token makes a good header fail");
            assert_eq!(assert_challenge(&e), 400);
        }
    }

    let id = signer_process_id(query);
    let first = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "signerProcessId").map(|(_, v)| v);
    if let Some(id) = &id {
        assert_eq!(first.as_deref(), Some(id.as_str()), "the first signerProcessId");
    }
    let reencoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(url::form_urlencoded::parse(query.as_bytes()))
        .finish();
    assert_eq!(signer_process_id(&reencoded), id, "re-encoded: {reencoded:?}");
    assert_eq!(signer_process_id(&format!("{query}&ui_locales=en")), id, "an appended parameter changes nothing");
}

const ISSUER: &str = "https://as.fuzz.example";
const AUDIENCE: &str = "esignsp";
const SCOPE: &str = "urn:safelayer:eidas:sign:process:document";
const LEEWAY: u64 = 60;
const TRUSTED: &str = "signing-app";

struct Keys {
    signing: Ed25519KeyPair,
    strict: JwtVerifier,
    lenient: JwtVerifier,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let signing = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).expect("an Ed25519 seed");
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(signing.public_key().as_ref())});
        let algorithms = vec![parse_algorithm("EdDSA").expect("EdDSA")];
        let verifier = |profile| {
            let keys = keys_from_jwk_json(jwk.to_string().as_bytes(), &algorithms).expect("the JWK");
            JwtVerifier::new(
                VerifierSettings {
                    issuer: ISSUER.to_owned(),
                    audience: vec![AUDIENCE.to_owned()],
                    algorithms: algorithms.clone(),
                    leeway_seconds: LEEWAY,
                    required_scope: SCOPE.to_owned(),
                    profile,
                    trusted_clients: HashSet::from([TRUSTED.to_owned()]),
                },
                keys,
            )
        };
        Keys { signing, strict: verifier(Profile::Rfc9068), lenient: verifier(Profile::Lenient) }
    })
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn decode_object(segment: &str) -> Map<String, Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).expect("an accepted token's segments are base64url");
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(o)) => o,
        _ => panic!("an accepted token's header and claims are JSON objects"),
    }
}

/// SPEC §6 and RFC 9068 §4: what every accepted token must be, checked from its bytes.
fn assert_acceptable(token: &str, caller: &Caller, strict: bool) {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts[..] else { panic!("an accepted JWS has three segments") };
    let signature = URL_SAFE_NO_PAD.decode(signature).expect("a base64url signature");
    UnparsedPublicKey::new(&ED25519, keys().signing.public_key().as_ref())
        .verify(format!("{header}.{claims}").as_bytes(), &signature)
        .expect("an accepted token carries our signature");
    let header = decode_object(header);
    assert_eq!(header.get("alg").and_then(Value::as_str), Some("EdDSA"), "the key's algorithm");
    assert!(!header.contains_key("crit"), "no critical extension is understood");
    let typ = header.get("typ").map(|t| t.as_str().expect("typ is a string").to_ascii_lowercase());
    let typ = typ.as_deref().map(|t| t.strip_prefix("application/").unwrap_or(t));
    if strict {
        assert_eq!(typ, Some("at+jwt"), "RFC 9068 §4: typ at+jwt");
    } else {
        assert!(matches!(typ, None | Some("at+jwt" | "jwt")), "lenient typ: {typ:?}");
    }
    let claims = decode_object(claims);
    let string = |name: &str| claims.get(name).and_then(Value::as_str);
    assert_eq!(string("iss"), Some(ISSUER), "iss");
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == AUDIENCE,
        Some(Value::Array(a)) => a.iter().any(|a| a.as_str() == Some(AUDIENCE)),
        _ => false,
    };
    assert!(audience_ok, "aud contains {AUDIENCE}: {:?}", claims.get("aud"));
    let leeway = LEEWAY as f64;
    let exp = claims.get("exp").and_then(Value::as_f64).expect("exp is a number");
    assert!(exp + leeway >= now(), "not expired: {exp}");
    for name in ["nbf", "iat"] {
        if let Some(t) = claims.get(name) {
            let t = t.as_f64().expect("a time is a number");
            assert!(t <= now() + leeway, "{name} not in the future: {t}");
        }
    }
    let client = if strict {
        assert!(claims.contains_key("sub") && claims.contains_key("iat"), "RFC 9068: sub and iat");
        assert!(string("jti").is_some_and(|j| !j.is_empty()), "RFC 9068: jti");
        string("client_id")
    } else {
        string("client_id").or_else(|| string("azp")).or_else(|| string("sub"))
    };
    assert_eq!(client, Some(caller.client_id.as_str()), "the caller is the token's client");
    assert_eq!(caller.trusted, client == Some(TRUSTED), "trusted only when listed");
    let has = |s: &str| s.split(' ').any(|t| t == SCOPE);
    let scope_ok = match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => has(s),
        (None, Some(Value::String(s))) if !strict => has(s),
        (None, Some(Value::Array(a))) if !strict => a.iter().any(|s| s.as_str() == Some(SCOPE)),
        _ => false,
    };
    assert!(scope_ok, "the required scope as a whole token");
}

/// JWT access tokens, against a verifier with one Ed25519 key. `data[0]`: bit 0 picks the
/// profile (`rfc9068`, `lenient`), bit 1 whether the rest is the token as sent, or the JOSE
/// header and the claims (JSON bytes, split at the first 0xFF byte) that are encoded and
/// signed with the key here. An accepted token meets every claim rule of SPEC §6 (checked
/// from its bytes, apart from the verifier) and is accepted again; a refused one is a 401
/// or 403 challenge, never a 503 with the key at hand.
pub fn jwt(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let strict = mode & 1 == 0;
    let token = if mode & 2 == 0 {
        let (header, claims) = match rest.iter().position(|&b| b == 0xFF) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (&br#"{"alg":"EdDSA","typ":"at+jwt"}"#[..], rest),
        };
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
        let signature = keys().signing.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    } else {
        String::from_utf8_lossy(rest).into_owned()
    };
    let verifier = if strict { &keys().strict } else { &keys().lenient };
    match block_on(verifier.verify(&token)) {
        Ok(caller) => {
            assert_acceptable(&token, &caller, strict);
            assert_eq!(block_on(verifier.verify(&token)).ok(), Some(caller), "accepted again");
        }
        Err(TokenRejection::Unavailable) => panic!("a static key is never unavailable"),
        Err(rejection) => {
            let error = ApiError::token_rejected(&rejection, SCOPE);
            let status = error.status_code().as_u16();
            assert_client_error(error, &[401, 403], "access token");
            assert_eq!(status == 403, rejection == TokenRejection::InsufficientScope, "403 only for the scope");
        }
    }
}

#[cfg(test)]
mod tests {
    use esignsp_domain::ClientId;

    use super::*;

    fn signed(header: &str, claims: &Value) -> String {
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = keys().signing.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    fn good_claims() -> Value {
        json!({"iss": ISSUER, "aud": AUDIENCE, "exp": 4_102_444_800u64, "iat": 1_767_225_600u64, "sub": "relying-app",
               "client_id": "relying-app", "jti": "j1", "scope": format!("openid {SCOPE}")})
    }

    #[test]
    fn a_token_signed_here_is_accepted_and_meets_every_claim_rule() {
        let token = signed(r#"{"alg":"EdDSA","typ":"at+jwt"}"#, &good_claims());
        let caller = block_on(keys().strict.verify(&token)).expect("accepted");
        assert_acceptable(&token, &caller, true);
    }

    #[test]
    #[should_panic(expected = "the caller is the token's client")]
    fn the_claim_rules_catch_a_caller_that_is_not_the_tokens_client() {
        let token = signed(r#"{"alg":"EdDSA","typ":"at+jwt"}"#, &good_claims());
        let other = Caller { client_id: ClientId::parse("other").expect("id"), trusted: false };
        assert_acceptable(&token, &other, true);
    }

    #[test]
    #[should_panic(expected = "the required scope as a whole token")]
    fn the_claim_rules_catch_a_scope_prefix() {
        let mut claims = good_claims();
        claims["scope"] = json!(format!("{SCOPE}s"));
        let token = signed(r#"{"alg":"EdDSA","typ":"at+jwt"}"#, &claims);
        let caller = Caller { client_id: ClientId::parse("relying-app").expect("id"), trusted: false };
        assert_acceptable(&token, &caller, true);
    }
}
