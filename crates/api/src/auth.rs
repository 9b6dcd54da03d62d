//! Bearer-token authorization as an extractor (RFC 6750 §2.1 and §3, SPEC §6).
//!
//! [`Authenticated`] reads exactly one `Authorization: Bearer <b64token>` header, refuses a
//! token in the query string and asks the [`AccessTokenVerifier`] port; a refusal is a
//! [`BearerRejection`], answered by [`crate::error`] with its RFC 6750 §3 challenge — before
//! any body is read.
//!
//! The verification of a request runs once: the first extractor that needs it
//! ([`authentication`]) starts it and keeps it in the request, and every other one awaits the
//! same outcome. The extractors of [`crate::extract`] await it before they answer, so that an
//! unauthenticated request is 401 whatever else is wrong with it, even though actix-web polls a
//! handler's extractors together.

use std::future::Future;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use esignsp_domain::auth::{Caller, TokenRejection};
use esignsp_domain::ports::AccessTokenVerifier;
use futures_util::future::{FutureExt, LocalBoxFuture, Shared};

use crate::error::{ApiError, BearerRejection, MalformedCredential, NoCredential};
use crate::metrics::Metrics;

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
/// The RFC 6750 refusal: [`BearerRejection::NoCredential`] (401 without an error code) when
/// there is no bearer credential (no header, another scheme, or a token only in the query);
/// [`BearerRejection::InvalidRequest`] (400) when the header is malformed, repeated, or
/// combined with a query token.
pub fn bearer_token<'a>(headers: &'a HeaderMap, query: &str) -> Result<&'a str, BearerRejection> {
    let malformed = BearerRejection::InvalidRequest;
    let mut values = headers.get_all(AUTHORIZATION);
    let in_query = query_has_access_token(query);
    let Some(value) = values.next() else {
        return Err(BearerRejection::NoCredential(if in_query {
            NoCredential::OnlyInQuery
        } else {
            NoCredential::Missing
        }));
    };
    if values.next().is_some() {
        return Err(malformed(MalformedCredential::Repeated));
    }
    let raw = value.to_str().map_err(|_| malformed(MalformedCredential::Malformed))?;
    let (scheme, rest) = match raw.find([' ', '\t']) {
        Some(i) => (&raw[..i], &raw[i..]),
        None => (raw, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerRejection::NoCredential(NoCredential::OtherScheme));
    }
    if rest.starts_with('\t') || rest.contains('\t') {
        return Err(malformed(MalformedCredential::Malformed));
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(malformed(MalformedCredential::Empty));
    }
    if !is_b64token(token) {
        return Err(malformed(MalformedCredential::Malformed));
    }
    if in_query {
        return Err(malformed(MalformedCredential::TwoPlaces));
    }
    Ok(token)
}

/// How a request's verification ended; unlike [`ApiError`], it can be shared.
#[derive(Debug, Clone)]
enum Refused {
    /// The credential or the token is refused (RFC 6750 §3).
    Bearer(BearerRejection),
    /// No key or introspection answer can be had right now (503).
    Unavailable,
    /// The application has no [`BearerAuth`]: a wiring bug (500).
    Unconfigured,
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Bearer(rejection) => Self::Bearer(rejection),
            Refused::Unavailable => Self::Unavailable(None),
            Refused::Unconfigured => Self::Internal("BearerAuth is not registered".into()),
        }
    }
}

/// The verification of one request, kept in its extensions.
#[derive(Clone)]
struct Verification(Shared<LocalBoxFuture<'static, Result<Caller, Refused>>>);

fn verify(req: &HttpRequest) -> LocalBoxFuture<'static, Result<Caller, Refused>> {
    let Some(auth) = req.app_data::<web::Data<BearerAuth>>().cloned() else {
        return async { Err(Refused::Unconfigured) }.boxed_local();
    };
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let reject = move |reason: &str| {
        if let Some(m) = &metrics {
            m.token_rejections.with_label_values(&[reason]).inc();
        }
    };
    let token = bearer_token(req.headers(), req.query_string()).map(str::to_owned);
    async move {
        let token = match token {
            Ok(t) => t,
            Err(rejection) => {
                reject(match rejection {
                    BearerRejection::InvalidRequest(_) => "invalid_request",
                    _ => "missing",
                });
                return Err(Refused::Bearer(rejection));
            }
        };
        match auth.verifier.verify(&token).await {
            Ok(caller) => Ok(caller),
            Err(rejection) => {
                tracing::info!(reason = %rejection, "access token rejected");
                reject(match &rejection {
                    TokenRejection::Invalid(reason) => reason.label(),
                    TokenRejection::InsufficientScope => "insufficient_scope",
                    TokenRejection::Unavailable => "unavailable",
                });
                Err(BearerRejection::of_token(&rejection, &auth.required_scope)
                    .map_or(Refused::Unavailable, Refused::Bearer))
            }
        }
    }
    .boxed_local()
}

/// The caller of `req`, once its bearer token is verified: started by the first call for a
/// request, shared by the later ones (the token is verified, and a refusal counted, once).
///
/// # Errors
/// [`ApiError::Bearer`] for a refused credential or token; [`ApiError::Unavailable`] when no
/// verification key can be had.
pub fn authentication(req: &HttpRequest) -> impl Future<Output = Result<Caller, ApiError>> + 'static {
    let existing = req.extensions().get::<Verification>().cloned();
    let verification = existing.unwrap_or_else(|| {
        let started = Verification(verify(req).shared());
        req.extensions_mut().insert(started.clone());
        started
    });
    async move { verification.0.await.map_err(ApiError::from) }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        authentication(req).map(|caller| caller.map(Self)).boxed_local()
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

    fn status(result: Result<&str, BearerRejection>) -> Option<(u16, Option<&'static str>)> {
        result.err().map(|r| (r.status().as_u16(), r.error_code()))
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
}
