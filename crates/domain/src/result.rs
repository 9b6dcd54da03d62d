//! Results of a document signature process and of its documents (eSignSP v2
//! `SignerProcessResultUpdate`, SPEC §4).

use std::fmt;

use thiserror::Error;

use crate::text::{Text, TextDefect, TextKind};

/// Result `status` of a whole signature process (eSignSP v2 `SignerProcessResultUpdate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultStatus {
    /// `finished`: all the documents were correctly signed.
    Finished,
    /// `failed`: no document was signed, owing to an error.
    Failed,
    /// `failed_documents`: some documents were signed, not all.
    FailedDocuments,
    /// `canceled`: no document was signed because the process was canceled.
    Canceled,
}

/// Result `status` of one document of a process (SPEC §4, operation O7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentResultStatus {
    /// `finished`: the document was signed.
    Finished,
    /// `failed`: the document was not signed, owing to an error.
    Failed,
    /// `canceled`: the document was not signed because signing was canceled.
    Canceled,
}

/// A status string that is not one of the documented values (they are case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown status: expected one of {expected}")]
pub struct UnknownStatus {
    /// The accepted values, comma-separated, for the problem document's `detail`.
    pub expected: &'static str,
}

impl ResultStatus {
    /// Every process result status, in the order the eSignSP documentation lists them.
    pub const ALL: [Self; 4] = [Self::Finished, Self::Failed, Self::FailedDocuments, Self::Canceled];

    /// Parses the exact, lowercase wire value.
    ///
    /// # Errors
    /// [`UnknownStatus`] for anything else, including other letter cases.
    pub fn parse(s: &str) -> Result<Self, UnknownStatus> {
        match s {
            "finished" => Ok(Self::Finished),
            "failed" => Ok(Self::Failed),
            "failed_documents" => Ok(Self::FailedDocuments),
            "canceled" => Ok(Self::Canceled),
            _ => Err(UnknownStatus { expected: "finished, failed, failed_documents, canceled" }),
        }
    }

    /// The wire value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::Failed => "failed",
            Self::FailedDocuments => "failed_documents",
            Self::Canceled => "canceled",
        }
    }
}

impl DocumentResultStatus {
    /// Every document result status.
    pub const ALL: [Self; 3] = [Self::Finished, Self::Failed, Self::Canceled];

    /// Parses the exact, lowercase wire value.
    ///
    /// # Errors
    /// [`UnknownStatus`] for anything else, including other letter cases.
    pub fn parse(s: &str) -> Result<Self, UnknownStatus> {
        match s {
            "finished" => Ok(Self::Finished),
            "failed" => Ok(Self::Failed),
            "canceled" => Ok(Self::Canceled),
            _ => Err(UnknownStatus { expected: "finished, failed, canceled" }),
        }
    }

    /// The wire value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

impl fmt::Display for ResultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for DocumentResultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest accepted `details.message`, in Unicode scalar values (SPEC §4).
pub const MESSAGE_MAX_CHARS: usize = TextKind::Message.max_chars();

/// `details.message` of a result: a [`TextKind::Message`] text — free text of at most
/// [`MESSAGE_MAX_CHARS`] Unicode scalar values without a NUL character.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResultMessage(String);

impl ResultMessage {
    /// Validates a message with the text rule of [`crate::text`].
    ///
    /// # Errors
    /// [`TextDefect::Nul`] when it holds U+0000, [`TextDefect::TooLong`] beyond 4096 scalar
    /// values.
    pub fn new(s: impl Into<String>) -> Result<Self, TextDefect> {
        Text::new(TextKind::Message, s).map(|t| Self(t.into_string()))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The result of a process: `{"status": s, "details": {"message": m}}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessResult {
    /// The result status.
    pub status: ResultStatus,
    /// The optional `details.message`.
    pub message: Option<ResultMessage>,
}

/// The result of one document: `{"status": s, "details": {"message": m}}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentResult {
    /// The document result status.
    pub status: DocumentResultStatus,
    /// The optional `details.message`.
    pub message: Option<ResultMessage>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn statuses_round_trip_through_their_wire_values() {
        for s in ResultStatus::ALL {
            assert_eq!(ResultStatus::parse(s.as_str()), Ok(s));
        }
        for s in DocumentResultStatus::ALL {
            assert_eq!(DocumentResultStatus::parse(s.as_str()), Ok(s));
        }
    }

    #[test]
    fn statuses_are_case_sensitive_and_exact() {
        for bad in ["Finished", "FINISHED", " finished", "finished ", "cancelled", "failed-documents", ""] {
            assert!(ResultStatus::parse(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(DocumentResultStatus::parse("failed_documents").is_err(), "failed_documents is a process status only");
    }

    #[test]
    fn messages_reject_nul_and_overlong_text() {
        assert_eq!(ResultMessage::new("a\0b"), Err(TextDefect::Nul));
        assert!(ResultMessage::new("é".repeat(MESSAGE_MAX_CHARS)).is_ok(), "limit counts characters, not bytes");
        assert_eq!(
            ResultMessage::new("x".repeat(MESSAGE_MAX_CHARS + 1)),
            Err(TextDefect::TooLong { max_chars: MESSAGE_MAX_CHARS })
        );
        assert_eq!(ResultMessage::new("").map(|m| m.as_str().len()), Ok(0));
    }

    proptest! {
        #[test]
        fn status_parse_accepts_only_the_four_values(s in "\\PC{0,20}") {
            let known = ["finished", "failed", "failed_documents", "canceled"].contains(&s.as_str());
            prop_assert_eq!(ResultStatus::parse(&s).is_ok(), known);
        }

        #[test]
        fn message_parse_matches_its_definition(s in "\\PC{0,50}|\\PC*\\x00\\PC*") {
            let ok = !s.contains('\0') && s.chars().count() <= MESSAGE_MAX_CHARS;
            prop_assert_eq!(ResultMessage::new(s.clone()).is_ok(), ok);
            if ok {
                prop_assert_eq!(ResultMessage::new(s.clone()).map(|m| m.as_str().to_owned()), Ok(s));
            }
        }
    }
}
