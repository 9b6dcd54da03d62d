//! The append-only audit trail of a process (SPEC §4, extension E1).

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
}
