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
}
