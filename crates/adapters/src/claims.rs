//! The JSON types of the claims this server reads, shared by JWT access tokens and
//! introspection answers: a claim of the wrong type makes the token malformed, whatever a
//! library would make of it (CVE-2026-25537 was a library skipping a string `nbf`).
//!
//! - `exp`, `nbf`, `iat`: a NumericDate, that is a JSON number (RFC 7519 §2, §4.1.4–§4.1.6;
//!   RFC 7662 §2.2);
//! - `iss`, `sub`, `jti`, `client_id`, `azp`, `username`, `token_type`: a string
//!   (RFC 7519 §4.1, RFC 9068 §2.2, RFC 8693 §4.3, OpenID Connect Core §2, RFC 7662 §2.2);
//! - `aud`: a string or an array of strings (RFC 7519 §4.1.3);
//! - `scope`: one space-delimited string, never an array (RFC 8693 §4.2, RFC 9068 §2.2.3,
//!   RFC 7662 §2.2);
//! - `scp` (accepted by the `lenient` profile only): a string or an array of strings.
//!
//! An explicit JSON `null` is a wrong type too; an absent claim is left to the caller, which
//! knows which claims its profile requires.
//!
//! [`caller`] then makes the [`Caller`] of a verified token from its claims, the same way for
//! a JWT (`jwt`) and an introspection answer (`introspection`): the client
//! named by the first claim present of [`ClientClaims`], the required scope as a whole,
//! case-sensitive token of `scope` (SPEC §6), trust from `auth.trusted_clients`.

use std::collections::HashSet;

use esignsp_domain::auth::{Caller, InvalidTokenReason, TokenRejection};
use esignsp_domain::ClientId;
use serde_json::{Map, Value};

/// How a claim's value must be typed.
#[derive(Clone, Copy)]
enum Shape {
    Number,
    String,
    StringOrStrings,
}

const SHAPES: [(&str, Shape); 13] = [
    ("exp", Shape::Number),
    ("nbf", Shape::Number),
    ("iat", Shape::Number),
    ("iss", Shape::String),
    ("sub", Shape::String),
    ("jti", Shape::String),
    ("client_id", Shape::String),
    ("azp", Shape::String),
    ("username", Shape::String),
    ("token_type", Shape::String),
    ("scope", Shape::String),
    ("aud", Shape::StringOrStrings),
    ("scp", Shape::StringOrStrings),
];

fn has_shape(value: &Value, shape: Shape) -> bool {
    match (shape, value) {
        (Shape::Number, Value::Number(_)) | (Shape::String | Shape::StringOrStrings, Value::String(_)) => true,
        (Shape::StringOrStrings, Value::Array(items)) => items.iter().all(Value::is_string),
        _ => false,
    }
}

/// The first claim of `claims` (a JWT claims set or an introspection answer) whose JSON type
/// is wrong, by name; `None` when every claim this server reads is typed as its RFC says.
pub(crate) fn first_mistyped(claims: &Map<String, Value>) -> Option<&'static str> {
    SHAPES
        .iter()
        .find(|(name, shape)| claims.get(*name).is_some_and(|value| !has_shape(value, *shape)))
        .map(|(name, _)| *name)
}

/// Which claims name the client, and whether `scp` may carry the scope, by kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientClaims {
    /// The claims naming the client, in order: the first one present is the client.
    client: &'static [&'static str],
    /// Whether a `scp` claim (string or array) counts when `scope` is absent.
    scp: bool,
}

impl ClientClaims {
    /// RFC 9068 §2.2 JWTs: `client_id`, and the scope in `scope`.
    pub(crate) const RFC9068: Self = Self { client: &["client_id"], scp: false };
    /// JWTs of the `lenient` profile (SPEC §6): `client_id`, else `azp`, else `sub`; `scp`
    /// when `scope` is absent.
    pub(crate) const LENIENT: Self = Self { client: &["client_id", "azp", "sub"], scp: true };
    /// RFC 7662 §2.2 answers: `client_id`, else `sub`; the scope in `scope`.
    pub(crate) const INTROSPECTION: Self = Self { client: &["client_id", "sub"], scp: false };
}

/// The caller of a verified token: the client of `names` (a valid [`ClientId`]) holding
/// `required_scope` as a whole, case-sensitive token of the space-delimited `scope`
/// (RFC 8693 §4.2; never a substring or prefix), trusted when listed in `trusted_clients`.
/// `claims` are the verified claims, already checked by [`first_mistyped`].
///
/// # Errors
/// [`InvalidTokenReason::MissingClaim`] when no claim of `names` is present or the client it
/// names is not a valid client id; then [`TokenRejection::InsufficientScope`] without the scope.
pub(crate) fn caller(
    claims: &Map<String, Value>,
    names: ClientClaims,
    required_scope: &str,
    trusted_clients: &HashSet<String>,
) -> Result<Caller, TokenRejection> {
    let client = names.client.iter().find_map(|name| claims.get(*name).and_then(Value::as_str));
    let client_id = client
        .and_then(|c| ClientId::parse(c).ok())
        .ok_or(TokenRejection::Invalid(InvalidTokenReason::MissingClaim))?;
    let has_scope = match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(scope)), _) => scope.split(' ').any(|s| s == required_scope),
        (None, Some(Value::String(scp))) if names.scp => scp.split(' ').any(|s| s == required_scope),
        (None, Some(Value::Array(scp))) if names.scp => scp.iter().any(|s| s.as_str() == Some(required_scope)),
        _ => false,
    };
    if !has_scope {
        return Err(TokenRejection::InsufficientScope);
    }
    let trusted = trusted_clients.contains(client_id.as_str());
    Ok(Caller { client_id, trusted })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mistyped(claims: Value) -> Option<&'static str> {
        let Value::Object(claims) = claims else { unreachable!("an object") };
        first_mistyped(&claims)
    }

    #[test]
    fn well_typed_claims_pass() {
        let good = json!({"exp": 1, "nbf": 1.5, "iat": 0, "iss": "i", "sub": "s", "jti": "j", "client_id": "c",
            "azp": "a", "username": "u", "token_type": "Bearer", "scope": "a b", "aud": ["x", "y"], "scp": ["a"],
            "other": {"any": "thing"}});
        assert_eq!(mistyped(good), None);
        assert_eq!(mistyped(json!({"aud": "x", "scp": "a b"})), None, "aud and scp may be single strings");
        assert_eq!(mistyped(json!({})), None, "absent claims are the caller's business");
    }

    #[test]
    fn every_wrong_type_is_named() {
        let cases = [
            (json!({"exp": "never"}), "exp", "exp as a string"),
            (json!({"nbf": "99999999999"}), "nbf", "nbf as a numeric string (CVE-2026-25537)"),
            (json!({"iat": true}), "iat", "iat as a boolean"),
            (json!({"exp": null}), "exp", "exp as null"),
            (json!({"iss": ["i"]}), "iss", "iss as an array"),
            (json!({"sub": 7}), "sub", "sub as a number"),
            (json!({"jti": {}}), "jti", "jti as an object"),
            (json!({"client_id": ["c"]}), "client_id", "client_id as an array"),
            (json!({"azp": 1}), "azp", "azp as a number"),
            (json!({"aud": 1}), "aud", "aud as a number"),
            (json!({"aud": ["x", 1]}), "aud", "aud with a non-string member"),
            (json!({"scope": ["a", "b"]}), "scope", "scope as an array (RFC 8693 §4.2)"),
            (json!({"scope": null}), "scope", "scope as null"),
            (json!({"scp": [1]}), "scp", "scp with a non-string member"),
            (json!({"token_type": 1}), "token_type", "token_type as a number"),
            (json!({"username": false}), "username", "username as a boolean"),
        ];
        for (claims, name, why) in cases {
            assert_eq!(mistyped(claims), Some(name), "{why}");
        }
    }

    fn caller_of(claims: Value, names: ClientClaims) -> Result<Caller, TokenRejection> {
        let Value::Object(claims) = claims else { unreachable!("an object") };
        caller(&claims, names, "sign", &HashSet::from(["trusted".to_owned()]))
    }

    fn client(id: &str, trusted: bool) -> Result<Caller, TokenRejection> {
        Ok(Caller { client_id: ClientId::parse(id).expect("id"), trusted })
    }

    #[test]
    fn the_client_is_the_first_claim_present_of_its_kind_of_token() {
        use ClientClaims as C;
        let missing = Err(TokenRejection::Invalid(InvalidTokenReason::MissingClaim));
        let all = json!({"client_id": "c", "azp": "a", "sub": "s", "scope": "sign"});
        let no_client_id = json!({"azp": "a", "sub": "s", "scope": "sign"});
        let sub_only = json!({"sub": "s", "scope": "sign"});
        let cases = [
            (&all, C::RFC9068, client("c", false), "client_id first"),
            (&all, C::LENIENT, client("c", false), "client_id first (lenient)"),
            (&all, C::INTROSPECTION, client("c", false), "client_id first (introspection)"),
            (&no_client_id, C::RFC9068, missing.clone(), "RFC 9068 requires client_id"),
            (&no_client_id, C::LENIENT, client("a", false), "lenient: azp before sub"),
            (&no_client_id, C::INTROSPECTION, client("s", false), "introspection: sub, never azp"),
            (&sub_only, C::LENIENT, client("s", false), "lenient: sub last"),
        ];
        for (claims, names, expected, why) in cases {
            assert_eq!(caller_of(claims.clone(), names), expected, "{why}");
        }
        let invalid_id = json!({"client_id": "", "sub": "s", "scope": "sign"});
        assert_eq!(caller_of(invalid_id, C::INTROSPECTION), missing, "an invalid client_id does not fall back to sub");
        assert_eq!(caller_of(json!({"client_id": "trusted", "scope": "sign"}), C::RFC9068), client("trusted", true));
    }

    #[test]
    fn the_scope_is_a_whole_token_and_scp_counts_only_when_lenient() {
        use ClientClaims as C;
        let scope = |claims: Value, names| caller_of(claims, names).map(|_| ()).map_err(|e| e.to_string());
        let insufficient = Err(TokenRejection::InsufficientScope.to_string());
        let cases = [
            (json!({"client_id": "c", "scope": "a sign b"}), C::RFC9068, Ok(()), "one of several tokens"),
            (json!({"client_id": "c", "scope": "signature"}), C::RFC9068, insufficient.clone(), "a prefix"),
            (json!({"client_id": "c", "scope": "SIGN"}), C::RFC9068, insufficient.clone(), "another case"),
            (json!({"client_id": "c", "scp": ["sign"]}), C::LENIENT, Ok(()), "scp array when lenient"),
            (json!({"client_id": "c", "scp": "a sign"}), C::LENIENT, Ok(()), "scp string when lenient"),
            (json!({"client_id": "c", "scp": ["sign"]}), C::RFC9068, insufficient.clone(), "scp under RFC 9068"),
            (json!({"client_id": "c", "scp": "sign"}), C::INTROSPECTION, insufficient.clone(), "scp introspected"),
            (json!({"client_id": "c", "scope": "x", "scp": ["sign"]}), C::LENIENT, insufficient, "scope wins"),
        ];
        for (claims, names, expected, why) in cases {
            assert_eq!(scope(claims, names), expected, "{why}");
        }
    }
}
