//! JWT access-token verification (RFC 9068, RFC 8725, RFC 6750) with static keys, and the
//! development signing key used by `esignsp token`.
//!
//! Keys come from PEM files (RSA, EC P-256/P-384, Ed25519 public keys, or a private key whose
//! public half is derived) or JWK / JWK Set JSON files. Each key is bound to the algorithms
//! of its family (or to its JWK `alg`), intersected with `auth.algorithms`, so an RSA key
//! never verifies an HMAC token and `none` is never accepted. A token without `kid` may be
//! verified by any key; one with a `kid` by the keys of that kid, else by the keys without a
//! kid, and a kid that names no key counts as unknown (so the issuer's JWK Set is refetched
//! for it). A claim of the wrong JSON type is refused as malformed: dates are numbers, `iss`,
//! `sub`, `client_id`, `jti` strings, `aud` a string or strings, `scope` one string (RFC 7519
//! §4.1, RFC 9068 §2.2, RFC 8693 §4.2).
//!
//! Signatures are checked by jsonwebtoken with its `aws_lc_rs` crypto back end (chosen in
//! the workspace `Cargo.toml`; exactly one back end must be enabled).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use esignsp_domain::auth::{Caller, InvalidTokenReason, TokenRejection};
use esignsp_domain::ports::AccessTokenVerifier;
use esignsp_domain::ClientId;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::KeyPair;
use serde_json::Value;

use crate::introspection::Introspector;
use crate::jwks::JwksSource;

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

/// The asymmetric algorithms this server can verify (RFC 7518 §3; RFC 8037 for EdDSA).
pub const ASYMMETRIC_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Parses one name of `auth.algorithms`.
///
/// # Errors
/// A message when the name is unknown or is an HMAC or `none` algorithm, which this
/// server never accepts (RFC 8725 §3.1, §3.2).
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    match Algorithm::from_str(name) {
        Ok(alg) if ASYMMETRIC_ALGORITHMS.contains(&alg) => Ok(alg),
        Ok(_) => Err(format!("{name} is symmetric; only asymmetric algorithms are allowed")),
        Err(_) => Err(format!("unknown algorithm {name:?}")),
    }
}

/// What a verifier checks (the `[auth]` configuration).
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// Exact `iss` value (`auth.issuer`).
    pub issuer: String,
    /// Accepted `aud` values (`auth.audience`): the token's `aud` must contain one.
    pub audience: Vec<String>,
    /// Allowed signature algorithms (`auth.algorithms`).
    pub algorithms: Vec<Algorithm>,
    /// Clock skew allowed on `exp`, `nbf`, `iat`, in seconds (`auth.leeway_seconds`).
    pub leeway_seconds: u64,
    /// The scope token every call needs (`auth.required_scope`).
    pub required_scope: String,
    /// Claim strictness (`auth.profile`).
    pub profile: Profile,
    /// Clients that may act on every process (`auth.trusted_clients`).
    pub trusted_clients: HashSet<String>,
}

/// A key that verifies signatures, bound to the algorithms it may verify.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey").field("kid", &self.kid).field("algorithms", &self.algorithms).finish()
    }
}

impl VerificationKey {
    /// The algorithms this key may verify.
    #[must_use]
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// The key id, if it has one.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct KeyError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

fn key_error(path: &Path, reason: impl Into<String>) -> KeyError {
    KeyError { path: path.to_owned(), reason: reason.into() }
}

const RSA_FAMILY: [Algorithm; 6] =
    [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512];

// DER encodings of the OIDs that tell key families apart in a SubjectPublicKeyInfo.
const OID_RSA: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn allowed(family: &[Algorithm], allow_list: &[Algorithm]) -> Vec<Algorithm> {
    family.iter().copied().filter(|a| allow_list.contains(a)).collect()
}

/// Loads the verification keys of one file of `auth.public_key_files`.
///
/// PEM files may hold several `PUBLIC KEY` / `RSA PUBLIC KEY` blocks, or a private key
/// (`PRIVATE KEY`, `RSA PRIVATE KEY`) whose public half is used. JSON files hold a JWK or a
/// JWK Set (RFC 7517); members that cannot verify signatures (encryption keys, symmetric or
/// unknown key types) are skipped.
///
/// # Errors
/// [`KeyError`] when the file cannot be read or holds no usable key.
pub fn load_key_file(path: &Path, allow_list: &[Algorithm]) -> Result<Vec<VerificationKey>, KeyError> {
    let bytes = std::fs::read(path).map_err(|e| key_error(path, format!("cannot read: {e}")))?;
    let keys = if bytes.trim_ascii_start().starts_with(b"{") {
        keys_from_jwk_json(&bytes, allow_list).map_err(|r| key_error(path, r))?
    } else {
        keys_from_pem(&bytes, allow_list).map_err(|r| key_error(path, r))?
    };
    if keys.is_empty() {
        return Err(key_error(path, "no key usable with the allowed algorithms"));
    }
    Ok(keys)
}

fn keys_from_pem(bytes: &[u8], allow_list: &[Algorithm]) -> Result<Vec<VerificationKey>, String> {
    let blocks = pem::parse_many(bytes).map_err(|e| format!("not PEM: {e}"))?;
    if blocks.is_empty() {
        return Err("no PEM block".to_owned());
    }
    let mut keys = Vec::new();
    for block in blocks {
        let der = block.contents();
        let (family, key): (Vec<Algorithm>, DecodingKey) = match block.tag() {
            "PUBLIC KEY" if contains(der, OID_RSA) => (RSA_FAMILY.to_vec(), rsa_public(&pem::encode(&block))?),
            "RSA PUBLIC KEY" => (RSA_FAMILY.to_vec(), rsa_public(&pem::encode(&block))?),
            "PUBLIC KEY" if contains(der, OID_P256) => (vec![Algorithm::ES256], ec_public(&pem::encode(&block))?),
            "PUBLIC KEY" if contains(der, OID_P384) => (vec![Algorithm::ES384], ec_public(&pem::encode(&block))?),
            "PUBLIC KEY" if contains(der, OID_ED25519) => {
                let key = DecodingKey::from_ed_pem(pem::encode(&block).as_bytes()).map_err(|e| e.to_string())?;
                (vec![Algorithm::EdDSA], key)
            }
            "PRIVATE KEY" | "RSA PRIVATE KEY" => {
                let private = PrivateKey::from_pem_block(&block)?;
                (vec![private.algorithm], private.decoding_key)
            }
            "CERTIFICATE" => return Err("certificates are not supported: give the PUBLIC KEY".to_owned()),
            other => return Err(format!("unsupported PEM block {other:?}")),
        };
        let algorithms = allowed(&family, allow_list);
        if !algorithms.is_empty() {
            keys.push(VerificationKey { kid: None, algorithms, key });
        }
    }
    Ok(keys)
}

fn rsa_public(pem: &str) -> Result<DecodingKey, String> {
    DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| format!("invalid RSA public key: {e}"))
}

fn ec_public(pem: &str) -> Result<DecodingKey, String> {
    DecodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| format!("invalid EC public key: {e}"))
}

/// Parses a JWK or a JWK Set, skipping members that cannot verify signatures.
///
/// # Errors
/// A message when the JSON is neither a JWK nor a JWK Set.
pub fn keys_from_jwk_json(bytes: &[u8], allow_list: &[Algorithm]) -> Result<Vec<VerificationKey>, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let members = match value {
        Value::Object(mut o) if o.contains_key("keys") => match o.remove("keys") {
            Some(Value::Array(keys)) => keys,
            _ => return Err("\"keys\" must be an array".to_owned()),
        },
        jwk @ Value::Object(_) => vec![jwk],
        _ => return Err("expected a JWK or a JWK Set object".to_owned()),
    };
    Ok(members.into_iter().filter_map(|m| key_from_jwk(m, allow_list)).collect())
}

fn key_from_jwk(member: Value, allow_list: &[Algorithm]) -> Option<VerificationKey> {
    let jwk: Jwk = serde_json::from_value(member).ok()?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))) {
        return None;
    }
    let family: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => RSA_FAMILY.to_vec(),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
        _ => return None,
    };
    let family = match jwk.common.key_algorithm {
        None => family,
        Some(declared) => {
            let alg = signature_algorithm(declared)?;
            if !family.contains(&alg) {
                return None;
            }
            vec![alg]
        }
    };
    let algorithms = allowed(&family, allow_list);
    if algorithms.is_empty() {
        return None;
    }
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(VerificationKey { kid: jwk.common.key_id.clone(), algorithms, key })
}

fn signature_algorithm(declared: KeyAlgorithm) -> Option<Algorithm> {
    Some(match declared {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The JOSE header members this verifier looks at, read before any key is chosen.
struct TokenHeader {
    alg: String,
    kid: Option<String>,
}

fn parse_header(token: &str, profile: Profile) -> Result<TokenHeader, InvalidTokenReason> {
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

/// Verifies access tokens: JWTs against static keys (`auth.public_key_files`) and the
/// issuer's JWK Set ([`JwksSource`]), opaque tokens by introspection ([`Introspector`]).
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    settings: VerifierSettings,
    keys: Vec<VerificationKey>,
    jwks: Option<Arc<JwksSource>>,
    introspection: Option<Arc<Introspector>>,
    verified: Arc<VerifiedCache>,
}

/// Longest time a verified JWT is remembered (it is never remembered past its `exp`).
pub const VERIFIED_CACHE_SECONDS: u64 = 300;
/// Most remembered tokens.
pub const VERIFIED_CACHE_ENTRIES: usize = 10_000;

/// Tokens whose signature and claims were verified, by SHA-256, until `exp` and at most
/// [`VERIFIED_CACHE_SECONDS`]: a client reusing its token is not verified again each request.
#[derive(Debug, Default)]
struct VerifiedCache {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], (u64, Caller)>>,
}

impl VerifiedCache {
    fn key(token: &str) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    fn get(&self, key: &[u8; 32]) -> Option<Caller> {
        let now = jsonwebtoken::get_current_timestamp();
        let entries = self.entries.lock().ok()?;
        entries.get(key).filter(|(until, _)| now < *until).map(|(_, caller)| caller.clone())
    }

    fn put(&self, key: [u8; 32], exp: u64, caller: &Caller) {
        let now = jsonwebtoken::get_current_timestamp();
        let until = exp.min(now + VERIFIED_CACHE_SECONDS);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= VERIFIED_CACHE_ENTRIES {
                entries.retain(|_, (u, _)| *u > now);
                if entries.len() >= VERIFIED_CACHE_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(key, (until, caller.clone()));
        }
    }
}

impl JwtVerifier {
    /// A verifier for static `keys`.
    #[must_use]
    pub fn new(settings: VerifierSettings, keys: Vec<VerificationKey>) -> Self {
        Self { settings, keys, jwks: None, introspection: None, verified: Arc::default() }
    }

    /// Also trusts the keys of the issuer's JWK Set.
    #[must_use]
    pub fn with_jwks(mut self, source: Arc<JwksSource>) -> Self {
        self.jwks = Some(source);
        self
    }

    /// Introspects tokens that are not JWTs (RFC 7662).
    #[must_use]
    pub fn with_introspection(mut self, introspector: Arc<Introspector>) -> Self {
        self.introspection = Some(introspector);
        self
    }

    /// Whether any static verification key is loaded.
    #[must_use]
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Fetches the issuer's JWK Set now, if one is configured, so that readiness reflects it.
    pub async fn warm_up(&self) {
        if let Some(jwks) = &self.jwks {
            jwks.keys().await;
        }
    }

    /// Verifies a token with every source configured; a JWT verified before answers from
    /// the cache.
    async fn verify_async(&self, token: &str) -> Result<Caller, TokenRejection> {
        let key = VerifiedCache::key(token);
        if let Some(caller) = self.verified.get(&key) {
            return Ok(caller);
        }
        let verified = self.verify_uncached(token).await?;
        if let Some(exp) = verified.1 {
            self.verified.put(key, exp, &verified.0);
        }
        Ok(verified.0)
    }

    /// Verifies a token; the second member is the JWT's `exp` (None for introspected tokens,
    /// which have their own cache).
    async fn verify_uncached(&self, token: &str) -> Result<(Caller, Option<u64>), TokenRejection> {
        use InvalidTokenReason as R;
        let header = match parse_header(token, self.settings.profile) {
            Ok(header) => header,
            Err(R::Malformed) if self.introspection.is_some() => {
                return match &self.introspection {
                    Some(i) => i.introspect(token).await.map(|c| (c, None)),
                    None => Err(TokenRejection::Invalid(R::Malformed)),
                };
            }
            Err(reason) => return Err(TokenRejection::Invalid(reason)),
        };
        let Some(jwks) = &self.jwks else {
            return self.verify_header(token, &header, &self.keys).map(|(c, exp)| (c, Some(exp)));
        };
        let mut keys = self.keys.clone();
        keys.extend(jwks.keys().await);
        if keys.is_empty() {
            return Err(TokenRejection::Unavailable);
        }
        let verified = match self.verify_header(token, &header, &keys) {
            Err(TokenRejection::Invalid(R::UnknownKey)) => {
                let mut keys = self.keys.clone();
                keys.extend(jwks.refresh_for_unknown_kid().await);
                self.verify_header(token, &header, &keys)
            }
            other => other,
        };
        verified.map(|(c, exp)| (c, Some(exp)))
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.settings.issuer]);
        v.set_audience(&self.settings.audience);
        v.leeway = self.settings.leeway_seconds;
        v.validate_nbf = true;
        let mut required = vec!["exp", "iss", "aud"];
        if self.settings.profile == Profile::Rfc9068 {
            required.push("sub");
        }
        v.set_required_spec_claims(&required);
        v
    }

    #[cfg(test)]
    fn verify_sync(&self, token: &str) -> Result<Caller, TokenRejection> {
        let header = parse_header(token, self.settings.profile).map_err(TokenRejection::Invalid)?;
        self.verify_header(token, &header, &self.keys).map(|(caller, _)| caller)
    }

    fn verify_header(
        &self,
        token: &str,
        header: &TokenHeader,
        keys: &[VerificationKey],
    ) -> Result<(Caller, u64), TokenRejection> {
        use InvalidTokenReason as R;
        let invalid = TokenRejection::Invalid;
        let alg = Algorithm::from_str(&header.alg)
            .ok()
            .filter(|a| self.settings.algorithms.contains(a))
            .ok_or(invalid(R::AlgorithmNotAllowed))?;
        // A token without `kid` may be signed by any key. One with a `kid` by the keys of that
        // kid, else by the keys without a kid (PEM files, the development key); a kid that
        // names no key is an unknown key whatever those answer, so the caller refetches the
        // issuer's JWK Set for it instead of refusing with another reason.
        let (pool, kid_unknown): (Vec<&VerificationKey>, bool) = match &header.kid {
            None => (keys.iter().collect(), false),
            Some(wanted) => {
                let named: Vec<&VerificationKey> = keys.iter().filter(|k| k.kid.as_ref() == Some(wanted)).collect();
                if named.is_empty() {
                    (keys.iter().filter(|k| k.kid.is_none()).collect(), true)
                } else {
                    (named, false)
                }
            }
        };
        let unknown_or = |reason| invalid(if kid_unknown { R::UnknownKey } else { reason });
        if pool.is_empty() {
            return Err(invalid(R::UnknownKey));
        }
        let candidates: Vec<&VerificationKey> = pool.into_iter().filter(|k| k.algorithms.contains(&alg)).collect();
        if candidates.is_empty() {
            return Err(unknown_or(R::AlgorithmNotAllowed));
        }
        if claims_mistyped(token) {
            return Err(invalid(R::Malformed));
        }
        let validation = self.validation(alg);
        let mut claims = None;
        for key in candidates {
            match jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature) => {}
                Err(e) => return Err(invalid(map_jwt_error(e.kind()))),
            }
        }
        let claims = claims.ok_or_else(|| unknown_or(R::BadSignature))?;
        // A NumericDate may be fractional (RFC 7519 §2); the cache keeps whole seconds.
        let exp = claims.get("exp").and_then(Value::as_f64).map_or(0, |exp| exp as u64);
        self.check_claims(&claims).map(|caller| (caller, exp))
    }

    fn check_claims(&self, claims: &serde_json::Map<String, Value>) -> Result<Caller, TokenRejection> {
        use InvalidTokenReason as R;
        let invalid = TokenRejection::Invalid;
        let strict = self.settings.profile == Profile::Rfc9068;
        let string = |name: &str| claims.get(name).and_then(Value::as_str);
        match claims.get("iat") {
            None if strict => return Err(invalid(R::MissingClaim)),
            None => {}
            Some(iat) => {
                let iat = iat.as_f64().ok_or(invalid(R::MissingClaim))?;
                let now = jsonwebtoken::get_current_timestamp() as f64;
                if iat > now + self.settings.leeway_seconds as f64 {
                    return Err(invalid(R::NotYetValid));
                }
            }
        }
        if strict && string("jti").is_none_or(str::is_empty) {
            return Err(invalid(R::MissingClaim));
        }
        let client = if strict {
            string("client_id")
        } else {
            string("client_id").or_else(|| string("azp")).or_else(|| string("sub"))
        };
        let client_id = client.and_then(|c| ClientId::parse(c).ok()).ok_or(invalid(R::MissingClaim))?;
        let required = self.settings.required_scope.as_str();
        let has_scope = match (claims.get("scope"), claims.get("scp")) {
            (Some(Value::String(scope)), _) => scope.split(' ').any(|s| s == required),
            (None, Some(Value::String(scp))) if !strict => scp.split(' ').any(|s| s == required),
            (None, Some(Value::Array(scp))) if !strict => scp.iter().any(|s| s.as_str() == Some(required)),
            _ => false,
        };
        if !has_scope {
            return Err(TokenRejection::InsufficientScope);
        }
        let trusted = self.settings.trusted_clients.contains(client_id.as_str());
        Ok(Caller { client_id, trusted })
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

#[async_trait]
impl AccessTokenVerifier for JwtVerifier {
    async fn verify(&self, token: &str) -> Result<Caller, TokenRejection> {
        self.verify_async(token).await
    }

    fn ready(&self) -> bool {
        self.has_keys() || self.introspection.is_some() || self.jwks.as_ref().is_some_and(|j| j.has_cached_keys())
    }
}

/// A private key (PKCS#8 `PRIVATE KEY`, or PKCS#1 `RSA PRIVATE KEY`) with its algorithm.
struct PrivateKey {
    algorithm: Algorithm,
    decoding_key: DecodingKey,
}

impl PrivateKey {
    fn from_pem_block(block: &pem::Pem) -> Result<Self, String> {
        let der = block.contents();
        let rng = ring::rand::SystemRandom::new();
        use ring::signature as sig;
        if block.tag() == "RSA PRIVATE KEY" {
            let pair = sig::RsaKeyPair::from_der(der).map_err(|e| format!("invalid RSA private key: {e}"))?;
            return Ok(Self {
                algorithm: Algorithm::RS256,
                decoding_key: DecodingKey::from_rsa_der(pair.public_key().as_ref()),
            });
        }
        if let Ok(pair) = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Ok(Self {
                algorithm: Algorithm::EdDSA,
                decoding_key: DecodingKey::from_ed_der(pair.public_key().as_ref()),
            });
        }
        if let Ok(pair) = sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng) {
            return Ok(Self {
                algorithm: Algorithm::ES256,
                decoding_key: DecodingKey::from_ec_der(pair.public_key().as_ref()),
            });
        }
        if let Ok(pair) = sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P384_SHA384_FIXED_SIGNING, der, &rng) {
            return Ok(Self {
                algorithm: Algorithm::ES384,
                decoding_key: DecodingKey::from_ec_der(pair.public_key().as_ref()),
            });
        }
        if let Ok(pair) = sig::RsaKeyPair::from_pkcs8(der) {
            return Ok(Self {
                algorithm: Algorithm::RS256,
                decoding_key: DecodingKey::from_rsa_der(pair.public_key().as_ref()),
            });
        }
        Err("unsupported private key: expected PKCS#8 RSA, EC P-256/P-384 or Ed25519".to_owned())
    }
}

/// The development signing key of `auth.dev_signing_key_file`, used by `esignsp token` to
/// mint access tokens that the same configuration accepts. Never for production.
#[derive(Clone)]
pub struct DevSigningKey {
    algorithm: Algorithm,
    encoding: EncodingKey,
    verification: VerificationKey,
}

impl std::fmt::Debug for DevSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevSigningKey").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// Claims of a minted development token.
#[derive(Debug, Clone)]
pub struct DevTokenRequest<'a> {
    /// `iss`.
    pub issuer: &'a str,
    /// `aud`.
    pub audience: &'a str,
    /// `client_id` and `sub`.
    pub client_id: &'a str,
    /// `scope`.
    pub scope: &'a str,
    /// Lifetime in seconds: `exp` = `iat` + this.
    pub ttl_seconds: u64,
}

impl DevSigningKey {
    /// Loads a private key from a PEM file: PKCS#8 Ed25519 (`EdDSA`), EC P-256 (`ES256`),
    /// P-384 (`ES384`), RSA (`RS256`), or PKCS#1 RSA.
    ///
    /// # Errors
    /// [`KeyError`] when the file cannot be read or holds no supported private key.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read(path).map_err(|e| key_error(path, format!("cannot read: {e}")))?;
        let block = pem::parse(&text).map_err(|e| key_error(path, format!("not PEM: {e}")))?;
        let private = PrivateKey::from_pem_block(&block).map_err(|r| key_error(path, r))?;
        let encoding = match private.algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&text),
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&text),
            _ => EncodingKey::from_rsa_pem(&text),
        }
        .map_err(|e| key_error(path, format!("unusable private key: {e}")))?;
        Ok(Self {
            algorithm: private.algorithm,
            encoding,
            verification: VerificationKey { kid: None, algorithms: vec![private.algorithm], key: private.decoding_key },
        })
    }

    /// Writes a new Ed25519 key (PKCS#8 PEM, mode 0600) to `path`, creating its directory.
    ///
    /// # Errors
    /// [`KeyError`] when the file exists already or cannot be written.
    pub fn generate_ed25519(path: &Path) -> Result<(), KeyError> {
        use std::io::Write;
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| key_error(path, "the system random generator failed"))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| key_error(path, format!("cannot create directory: {e}")))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| key_error(path, format!("cannot create: {e}")))?;
        file.write_all(pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref())).as_bytes())
            .map_err(|e| key_error(path, format!("cannot write: {e}")))
    }

    /// The signature algorithm of this key.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public half, for the verifier.
    #[must_use]
    pub fn verification_key(&self) -> VerificationKey {
        self.verification.clone()
    }

    /// Mints an RFC 9068 access token (`typ` `at+jwt`).
    ///
    /// # Errors
    /// The signing library's error (only on a broken key).
    pub fn sign(&self, request: &DevTokenRequest<'_>) -> Result<String, jsonwebtoken::errors::Error> {
        let now = jsonwebtoken::get_current_timestamp();
        let mut jti = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut jti);
        let claims = serde_json::json!({
            "iss": request.issuer,
            "aud": request.audience,
            "sub": request.client_id,
            "client_id": request.client_id,
            "scope": request.scope,
            "iat": now,
            "exp": now + request.ttl_seconds,
            "jti": data_encoding::HEXLOWER.encode(&jti),
        });
        let mut header = Header::new(self.algorithm);
        header.typ = Some("at+jwt".to_owned());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
    }
}

#[cfg(test)]
mod tests;
