//! Who is calling: the verified access token and why one is refused (RFC 6750 §3,
//! RFC 9068, SPEC §6).

use crate::ids::ClientId;

/// The caller of an API operation, from a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The OAuth 2.0 client (RFC 9068 `client_id`, else `sub`).
    pub client_id: ClientId,
    /// True for a client of `auth.trusted_clients`, which may act on every process.
    pub trusted: bool,
}

impl Caller {
    /// Whether this caller may see and act on a process owned by `owner` (SPEC §6 tenancy).
    #[must_use]
    pub fn may_act_on(&self, owner: &ClientId) -> bool {
        self.trusted || &self.client_id == owner
    }
}

/// Why an access token was refused with 401 `invalid_token` (RFC 6750 §3.1).
///
/// Each reason has a fixed `error_description`: never the token, a claim value or a
/// library's error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidTokenReason {
    /// Not a JWT, or a JWT that cannot be decoded.
    Malformed,
    /// The signature does not verify.
    BadSignature,
    /// No verification key matches the token.
    UnknownKey,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    NotYetValid,
    /// `iss` is not `auth.issuer`.
    WrongIssuer,
    /// `aud` holds none of `auth.audience`.
    WrongAudience,
    /// The `alg` header is not allowed for the key (RFC 8725 §3.1).
    AlgorithmNotAllowed,
    /// The header `typ` is not `at+jwt` under the `rfc9068` profile (RFC 9068 §2.1).
    WrongType,
    /// A required claim is missing or has the wrong type.
    MissingClaim,
    /// A `crit` header names an extension this server does not understand (RFC 7515 §4.1.11).
    UnsupportedCritical,
    /// The authorization server says the token is not active (RFC 7662 §2.2).
    Inactive,
}

impl InvalidTokenReason {
    /// The fixed `error_description` of this reason.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::Malformed => "The access token is malformed",
            Self::BadSignature => "The access token signature is invalid",
            Self::UnknownKey => "The access token is signed with an unknown key",
            Self::Expired => "The access token expired",
            Self::NotYetValid => "The access token is not valid yet",
            Self::WrongIssuer => "The access token has the wrong issuer",
            Self::WrongAudience => "The access token is not intended for this resource server",
            Self::AlgorithmNotAllowed => "The access token signature algorithm is not allowed",
            Self::WrongType => "The access token type is not at+jwt",
            Self::MissingClaim => "The access token lacks a required claim",
            Self::UnsupportedCritical => "The access token has an unsupported critical header",
            Self::Inactive => "The access token is not active",
        }
    }

    /// A short machine label for metrics and logs.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::WrongType => "wrong_type",
            Self::MissingClaim => "missing_claim",
            Self::UnsupportedCritical => "unsupported_critical",
            Self::Inactive => "inactive",
        }
    }
}

/// Why a bearer token did not authorize the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// 401 `invalid_token` (RFC 6750 §3.1).
    #[error("invalid token: {}", .0.label())]
    Invalid(InvalidTokenReason),
    /// 403 `insufficient_scope`: the token is valid but lacks `auth.required_scope`.
    #[error("insufficient scope")]
    InsufficientScope,
    /// 503: no verification key or introspection answer can be had right now.
    #[error("token verification unavailable")]
    Unavailable,
}
