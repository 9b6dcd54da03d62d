//! The checks of one JWT access token against a set of keys (RFC 7515, RFC 7519, RFC 8725,
//! RFC 9068): its header (`alg`, `typ`, `kid`, `crit`), the choice of key, the signature,
//! and the registered claims. What the claims make of the caller is
//! [`crate::claims::caller`]'s; where the keys come from is the verifier's ([`super`]).

use std::str::FromStr;

use base64::Engine;
use esignsp_domain::auth::{InvalidTokenReason, TokenRejection};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::claims::ClientClaims;
use crate::keys::VerificationKey;

/// How strict the claims of an access token must be (`auth.profile`, SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// RFC 9068: `typ` `at+jwt`; `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`, `jti` required.
    #[default]
    Rfc9068,
    /// For authorization servers without RFC 9068 tokens: `typ` `JWT` or absent accepted; the
    /// client is `client_id`, else `azp`, else `sub`; `iat` and `jti` optional; `scp`
    /// accepted when `scope` is absent.
    Lenient,
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rfc9068" => Ok(Self::Rfc9068),
            "lenient" => Ok(Self::Lenient),
            other => Err(format!("unknown profile {other:?}: expected \"rfc9068\" or \"lenient\"")),
        }
    }
}

impl Profile {
    /// The claims that name the client and carry the scope under this profile.
    pub(crate) fn client_claims(self) -> ClientClaims {
        match self {
            Self::Rfc9068 => ClientClaims::RFC9068,
            Self::Lenient => ClientClaims::LENIENT,
        }
    }
}

/// The JOSE header members this verifier looks at, read before any key is chosen.
pub(super) struct TokenHeader {
    alg: String,
    kid: Option<String>,
}

/// Reads the header of a compact JWS (RFC 7515 §7.1: three segments).
///
/// # Errors
/// [`InvalidTokenReason::Malformed`] for anything but a JWS with a JSON object header whose
/// `alg` and `kid` are strings; [`InvalidTokenReason::UnsupportedCritical`] for a `crit`
/// header; [`InvalidTokenReason::WrongType`] for a `typ` the profile does not accept.
pub(super) fn parse_header(token: &str, profile: Profile) -> Result<TokenHeader, InvalidTokenReason> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(InvalidTokenReason::Malformed);
    };
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).map_err(|_| InvalidTokenReason::Malformed)?;
    let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(InvalidTokenReason::Malformed);
    };
    let alg = header.get("alg").and_then(Value::as_str).ok_or(InvalidTokenReason::Malformed)?;
    if header.contains_key("crit") {
        // RFC 7515 §4.1.11: this server understands no extension header.
        return Err(InvalidTokenReason::UnsupportedCritical);
    }
    let typ = match header.get("typ") {
        None => None,
        Some(Value::String(t)) => Some(t.to_ascii_lowercase()),
        Some(_) => return Err(InvalidTokenReason::Malformed),
    };
    let typ = typ.as_deref().map(|t| t.strip_prefix("application/").unwrap_or(t));
    let typ_ok = match profile {
        Profile::Rfc9068 => typ == Some("at+jwt"),
        Profile::Lenient => matches!(typ, None | Some("at+jwt" | "jwt")),
    };
    if !typ_ok {
        return Err(InvalidTokenReason::WrongType);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(InvalidTokenReason::Malformed),
    };
    Ok(TokenHeader { alg: alg.to_owned(), kid })
}

/// Whether the claims set of `token` is not a JSON object or holds a claim of the wrong JSON
/// type ([`crate::claims`]). Checked before the library sees the token, so a wrong-typed claim
/// is refused as malformed whatever the library would make of it (it skipped a string `nbf`
/// before 10.3, CVE-2026-25537). The claims are not trusted for anything else before the
/// signature verifies.
fn claims_mistyped(token: &str) -> bool {
    let Some(payload) = token.split('.').nth(1) else { return true };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else { return true };
    let mistyped = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(claims)) => crate::claims::first_mistyped(&claims).inspect(|claim| {
            tracing::debug!(claim, "refused an access token with a claim of the wrong JSON type");
        }),
        _ => Some("the claims set"),
    };
    mistyped.is_some()
}

/// What a JWT must satisfy: the configured issuer, audience, algorithms, leeway and profile.
#[derive(Debug, Clone)]
pub(super) struct JwtChecks {
    pub(super) issuer: String,
    pub(super) audience: Vec<String>,
    pub(super) algorithms: Vec<Algorithm>,
    pub(super) leeway_seconds: u64,
    pub(super) profile: Profile,
}

impl JwtChecks {
    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&self.audience);
        v.leeway = self.leeway_seconds;
        v.validate_nbf = true;
        let mut required = vec!["exp", "iss", "aud"];
        if self.profile == Profile::Rfc9068 {
            required.push("sub");
        }
        v.set_required_spec_claims(&required);
        v
    }

    /// Verifies `token` (whose header is `header`) with one of `keys`: the claims set and
    /// its `exp` in whole seconds.
    ///
    /// A token without `kid` may be signed by any key. One with a `kid` by the keys of that
    /// kid, else by the keys without a kid (PEM files, the development key); a kid that names
    /// no key is [`InvalidTokenReason::UnknownKey`] whatever those answer, so that the caller
    /// refetches the issuer's JWK Set for it instead of refusing with another reason.
    ///
    /// # Errors
    /// [`TokenRejection::Invalid`] with the reason the token is refused.
    pub(super) fn verify(
        &self,
        token: &str,
        header: &TokenHeader,
        keys: &[&VerificationKey],
    ) -> Result<(Map<String, Value>, u64), TokenRejection> {
        use InvalidTokenReason as R;
        let invalid = TokenRejection::Invalid;
        let alg = Algorithm::from_str(&header.alg)
            .ok()
            .filter(|a| self.algorithms.contains(a))
            .ok_or(invalid(R::AlgorithmNotAllowed))?;
        let (pool, kid_unknown): (Vec<&VerificationKey>, bool) = match &header.kid {
            None => (keys.to_vec(), false),
            Some(wanted) => {
                let named: Vec<&VerificationKey> =
                    keys.iter().copied().filter(|k| k.kid() == Some(wanted.as_str())).collect();
                if named.is_empty() {
                    (keys.iter().copied().filter(|k| k.kid().is_none()).collect(), true)
                } else {
                    (named, false)
                }
            }
        };
        let unknown_or = |reason| invalid(if kid_unknown { R::UnknownKey } else { reason });
        if pool.is_empty() {
            return Err(invalid(R::UnknownKey));
        }
        let candidates: Vec<&VerificationKey> = pool.into_iter().filter(|k| k.algorithms().contains(&alg)).collect();
        if candidates.is_empty() {
            return Err(unknown_or(R::AlgorithmNotAllowed));
        }
        if claims_mistyped(token) {
            return Err(invalid(R::Malformed));
        }
        let validation = self.validation(alg);
        let mut claims = None;
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, key.decoding_key(), &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature) => {}
                Err(e) => return Err(invalid(map_jwt_error(e.kind()))),
            }
        }
        let claims = claims.ok_or_else(|| unknown_or(R::BadSignature))?;
        self.registered_claims(&claims)?;
        // A NumericDate may be fractional (RFC 7519 §2); the answer cache keeps whole seconds.
        let exp = claims.get("exp").and_then(Value::as_f64).map_or(0, |exp| exp as u64);
        Ok((claims, exp))
    }

    /// `iat` not in the future (beyond the leeway), and under RFC 9068 (§2.2) `iat` and a
    /// non-empty `jti` present; `exp`, `nbf`, `iss`, `aud` are jsonwebtoken's.
    fn registered_claims(&self, claims: &Map<String, Value>) -> Result<(), TokenRejection> {
        use InvalidTokenReason as R;
        let invalid = TokenRejection::Invalid;
        let strict = self.profile == Profile::Rfc9068;
        match claims.get("iat") {
            None if strict => return Err(invalid(R::MissingClaim)),
            None => {}
            Some(iat) => {
                let iat = iat.as_f64().ok_or(invalid(R::MissingClaim))?;
                let now = jsonwebtoken::get_current_timestamp() as f64;
                if iat > now + self.leeway_seconds as f64 {
                    return Err(invalid(R::NotYetValid));
                }
            }
        }
        if strict && claims.get("jti").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(invalid(R::MissingClaim));
        }
        Ok(())
    }
}

fn map_jwt_error(kind: &jsonwebtoken::errors::ErrorKind) -> InvalidTokenReason {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::InvalidSignature => InvalidTokenReason::BadSignature,
        K::ExpiredSignature => InvalidTokenReason::Expired,
        K::ImmatureSignature => InvalidTokenReason::NotYetValid,
        K::InvalidIssuer => InvalidTokenReason::WrongIssuer,
        K::InvalidAudience => InvalidTokenReason::WrongAudience,
        K::MissingRequiredClaim(_) => InvalidTokenReason::MissingClaim,
        K::InvalidClaimFormat(_) => InvalidTokenReason::Malformed,
        K::InvalidAlgorithm | K::InvalidAlgorithmName => InvalidTokenReason::AlgorithmNotAllowed,
        _ => InvalidTokenReason::Malformed,
    }
}
