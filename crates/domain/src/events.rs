//! The append-only audit trail of a process (SPEC §4, extension E1).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{ClientId, DocumentId};

/// Who caused a transition and in which request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditContext {
    /// The acting client.
    pub actor: ClientId,
    /// The request's `X-Request-Id`.
    pub request_id: String,
}

/// The kind of a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The process was created (O1).
    Created,
    /// A document result was set (O7).
    DocumentResult,
    /// The process result was established (O5).
    Result,
    /// The process expired while pending.
    Expired,
    /// The process was deleted (O3).
    Deleted,
}

impl EventKind {
    /// The stored and returned name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::DocumentResult => "document_result",
            Self::Result => "result",
            Self::Expired => "expired",
            Self::Deleted => "deleted",
        }
    }

    /// Parses a stored name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Created, Self::DocumentResult, Self::Result, Self::Expired, Self::Deleted]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// What happened.
    pub kind: EventKind,
    /// When (database time of the transaction).
    pub at: OffsetDateTime,
    /// Who did it.
    pub actor: String,
    /// In which request.
    pub request_id: String,
    /// The document, for document results.
    pub document_id: Option<DocumentId>,
    /// Status before (`None` while pending).
    pub old_status: Option<String>,
    /// Status after.
    pub new_status: Option<String>,
    /// What the built-in signing application did, for a result it established (SPEC §10).
    pub signing: Option<SigningRecord>,
}

/// The signer who acted on the built-in signing page (SPEC §10): the OpenID Connect ID token's
/// claims when `signing.signer_authentication = "oidc"` (OpenID Connect Core 1.0 §2, §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerIdentity {
    /// The OpenID Provider (`iss`).
    pub issuer: String,
    /// The signer's identifier at the provider (`sub`).
    pub subject: String,
    /// `name`, when the provider gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `email`, when the provider gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl SignerIdentity {
    /// The name a signature gives its signer (`/Name`, ISO 32000-1 Table 252): `name`, else
    /// `email`, else `sub`.
    #[must_use]
    pub fn display_name(&self) -> &str {
        self.name.as_deref().or(self.email.as_deref()).unwrap_or(&self.subject)
    }
}

/// What happened to one document on the signing page: signed (with the SHA-256 of the bytes
/// before and after) or not, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentSigningRecord {
    /// The document.
    pub document_id: String,
    /// The PAdES level asked for (`B-B`, `B-T`, `B-LT`, `B-LTA`, ETSI EN 319 142-1 §6).
    pub level: String,
    /// Lowercase hex SHA-256 of the document before signing.
    pub original_sha256: String,
    /// Lowercase hex SHA-256 of the signed document, when it was signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_sha256: Option<String>,
    /// Why it was not signed (the document result's message), when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The audit record of the built-in signing application's transition (SPEC §10): who signed
/// and, per document, the SHA-256 of the original and of the signed bytes and the level.
/// Stored with the transition's event, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningRecord {
    /// The authenticated signer (`None` when the task URL alone is the capability).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<SignerIdentity>,
    /// Each document that had no result when the signer pressed *Sign*, in process order.
    pub documents: Vec<DocumentSigningRecord>,
}
