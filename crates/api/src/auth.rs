//! Bearer-token authorization as an extractor (RFC 6750 §2.1 and §3, SPEC §6).
//!
//! [`Authenticated`] reads exactly one `Authorization: Bearer <b64token>` header, refuses a
//! token in the query string, asks the [`AccessTokenVerifier`] port, and answers failures
//! with the `WWW-Authenticate` challenges of RFC 6750 §3 — before any body is read.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use esignsp_domain::auth::{Caller, TokenRejection};
use esignsp_domain::ports::AccessTokenVerifier;
use futures_util::future::LocalBoxFuture;

use crate::error::{ApiError, BearerChallenge};
use crate::metrics::Metrics;

/// The realm of every challenge.
pub const REALM: &str = "esignsp";

/// What the extractor needs: the verifier and the scope named in 403 challenges.
#[derive(Clone)]
pub struct BearerAuth {
    /// The token verifier port.
    pub verifier: Arc<dyn AccessTokenVerifier>,
    /// `auth.required_scope`, for the `scope` attribute of 403 challenges.
    pub required_scope: String,
}

/// The verified caller of a protected operation.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

fn challenge(
    status: StatusCode,
    error: Option<&'static str>,
    description: &'static str,
    scope: Option<&str>,
) -> ApiError {
    let mut value = format!("Bearer realm=\"{REALM}\"");
    if let Some(error) = error {
        value.push_str(&format!(", error=\"{error}\""));
        if scope.is_none() {
            value.push_str(&format!(", error_description=\"{description}\""));
        }
    }
    if let Some(scope) = scope {
        value.push_str(&format!(", scope=\"{scope}\""));
    }
    ApiError::Bearer(BearerChallenge { status, error, description, www_authenticate: value })
}

fn unauthorized(description: &'static str) -> ApiError {
    challenge(StatusCode::UNAUTHORIZED, None, description, None)
}

fn invalid_request(description: &'static str) -> ApiError {
    challenge(StatusCode::BAD_REQUEST, Some("invalid_request"), description, None)
}

/// RFC 6750 §2.1 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

fn query_has_access_token(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "access_token")
}

/// Extracts the bearer token of a request.
///
/// # Errors
/// The RFC 6750 answer: 401 without an error code when there is no bearer credential (no
/// header, another scheme, or a token only in the query); 400 `invalid_request` when the
/// header is malformed, repeated, or combined with a query token.
pub fn bearer_token<'a>(headers: &'a HeaderMap, query: &str) -> Result<&'a str, ApiError> {
    let mut values = headers.get_all(AUTHORIZATION);
    let in_query = query_has_access_token(query);
    let Some(value) = values.next() else {
        return Err(unauthorized(if in_query {
            "Access tokens are accepted only in the Authorization header"
        } else {
            "An access token is required"
        }));
    };
    if values.next().is_some() {
        return Err(invalid_request("The request has more than one Authorization header"));
    }
    let raw = value.to_str().map_err(|_| invalid_request("The Authorization header is malformed"))?;
    let (scheme, rest) = match raw.find([' ', '\t']) {
        Some(i) => (&raw[..i], &raw[i..]),
        None => (raw, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthorized("The Bearer authentication scheme is required"));
    }
    if rest.starts_with('\t') || rest.contains('\t') {
        return Err(invalid_request("The Authorization header is malformed"));
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(invalid_request("The access token is missing"));
    }
    if !is_b64token(token) {
        return Err(invalid_request("The Authorization header is malformed"));
    }
    if in_query {
        return Err(invalid_request("The access token must be sent in one place only"));
    }
    Ok(token)
}

/// Maps a verifier rejection to its RFC 6750 §3.1 answer.
#[must_use]
pub fn rejection_error(rejection: &TokenRejection, required_scope: &str) -> ApiError {
    match rejection {
        TokenRejection::Invalid(reason) => {
            challenge(StatusCode::UNAUTHORIZED, Some("invalid_token"), reason.description(), None)
        }
        TokenRejection::InsufficientScope => challenge(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            "The access token lacks the required scope",
            Some(required_scope),
        ),
        TokenRejection::Unavailable => ApiError::Unavailable(None),
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(auth) = req.app_data::<web::Data<BearerAuth>>().cloned() else {
            return Box::pin(async { Err(ApiError::Internal("BearerAuth is not registered".into())) });
        };
        let metrics = req.app_data::<web::Data<Metrics>>().cloned();
        let reject = move |reason: &str| {
            if let Some(m) = &metrics {
                m.token_rejections.with_label_values(&[reason]).inc();
            }
        };
        let token = bearer_token(req.headers(), req.query_string()).map(str::to_owned);
        Box::pin(async move {
            let token = match token {
                Ok(t) => t,
                Err(e) => {
                    reject(match &e {
                        ApiError::Bearer(c) if c.error.is_some() => "invalid_request",
                        _ => "missing",
                    });
                    return Err(e);
                }
            };
            match auth.verifier.verify(&token).await {
                Ok(caller) => Ok(Self(caller)),
                Err(rejection) => {
                    tracing::info!(reason = %rejection, "access token rejected");
                    reject(match &rejection {
                        TokenRejection::Invalid(reason) => reason.label(),
                        TokenRejection::InsufficientScope => "insufficient_scope",
                        TokenRejection::Unavailable => "unavailable",
                    });
                    Err(rejection_error(&rejection, &auth.required_scope))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_bytes(v).expect("header"));
        }
        h
    }

    fn status(result: Result<&str, ApiError>) -> Option<(u16, Option<&'static str>)> {
        match result {
            Ok(_) => None,
            Err(ApiError::Bearer(c)) => Some((c.status.as_u16(), c.error)),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rfc6750_header_cases() {
        let ok = None;
        let plain = Some((401, None));
        let bad = Some((400, Some("invalid_request")));
        for (values, query, expected, why) in [
            (vec![&b"Bearer abc.def-_~+/=="[..]], "", ok, "plain token"),
            (vec![b"bearer abc"], "", ok, "scheme case-insensitive"),
            (vec![b"BEARER    abc"], "", ok, "several spaces"),
            (vec![], "", plain, "no header"),
            (vec![], "access_token=abc", plain, "token only in the query"),
            (vec![b"Basic dXNlcjpwYXNz"], "", plain, "another scheme"),
            (vec![b"Bearer"], "", bad, "no token"),
            (vec![b"Bearer "], "", bad, "empty token"),
            (vec![b"Bearer\tabc"], "", bad, "TAB separator"),
            (vec![b"Bearer abc def"], "", bad, "trailing words"),
            (vec![b"Bearer a=b"], "", bad, "= inside the token"),
            (vec![b"Bearer a,b"], "", bad, "comma"),
            (vec![b"Bearer abc", b"Bearer abc"], "", bad, "two headers"),
            (vec![b"Bearer abc"], "x=1&access_token=abc", bad, "header and query"),
            (vec![b"Bearer \xe9abc"], "", bad, "non-ASCII"),
        ] {
            assert_eq!(status(bearer_token(&headers(&values), query)), expected, "{why}");
        }
    }

    #[test]
    fn challenges_follow_rfc6750_section_3() {
        let ApiError::Bearer(c) = rejection_error(&TokenRejection::InsufficientScope, "urn:s") else {
            panic!("bearer");
        };
        assert_eq!(c.www_authenticate, r#"Bearer realm="esignsp", error="insufficient_scope", scope="urn:s""#);
        let ApiError::Bearer(c) =
            rejection_error(&TokenRejection::Invalid(esignsp_domain::InvalidTokenReason::Expired), "urn:s")
        else {
            panic!("bearer");
        };
        assert_eq!(
            c.www_authenticate,
            r#"Bearer realm="esignsp", error="invalid_token", error_description="The access token expired""#
        );
    }
}
