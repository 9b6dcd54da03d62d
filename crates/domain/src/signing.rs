//! Signing documents (SPEC §10): the [`DocumentSigner`] port, what it is asked to do and how
//! it fails.
//!
//! The port takes a PDF's bytes and gives back the signed bytes: a PAdES baseline signature
//! (ETSI EN 319 142-1) appended as an incremental update (ISO 32000-1 §7.5.6), so the original
//! bytes are an unchanged prefix. Which key signs, and how (a key file, an HSM over PKCS#11,
//! a remote signing service), is the adapter's business; nothing cryptographic is here.

use std::error::Error;
use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;

/// A PAdES baseline level (ETSI EN 319 142-1 §6): what a signature carries beyond the
/// signature itself, so that it can be validated later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignatureLevel {
    /// `B-B` (§6.3): the CMS signature with its signed attributes and the signer's
    /// certificate; the claimed signing time is the signature dictionary's `/M`.
    BB,
    /// `B-T` (§6.4): `B-B` plus a signature time-stamp (RFC 3161) from a time-stamping
    /// authority.
    BT,
    /// `B-LT` (§6.5): `B-T` plus the validation data (certificates, OCSP responses, CRLs) of
    /// the signer's and the TSA's chains in the document's DSS dictionary.
    BLt,
    /// `B-LTA` (§6.6): `B-LT` plus a document time-stamp over all of it.
    BLta,
}

impl SignatureLevel {
    /// Every level, lowest first.
    pub const ALL: [SignatureLevel; 4] = [Self::BB, Self::BT, Self::BLt, Self::BLta];

    /// The level's name as ETSI EN 319 142-1 writes it (`B-B`, `B-T`, `B-LT`, `B-LTA`), the
    /// spelling of the `signing.level` setting and of the audit trail.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BB => "B-B",
            Self::BT => "B-T",
            Self::BLt => "B-LT",
            Self::BLta => "B-LTA",
        }
    }

    /// The level named `name` ([`SignatureLevel::as_str`], case-insensitive).
    ///
    /// # Errors
    /// [`UnknownSignatureLevel`] for any other name.
    pub fn parse(name: &str) -> Result<Self, UnknownSignatureLevel> {
        Self::ALL.into_iter().find(|level| level.as_str().eq_ignore_ascii_case(name)).ok_or(UnknownSignatureLevel)
    }
}

impl fmt::Display for SignatureLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the PAdES baseline levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown signature level (expected B-B, B-T, B-LT or B-LTA)")]
pub struct UnknownSignatureLevel;

/// What a signature says besides the signature itself: the optional entries of the PDF
/// signature dictionary (ISO 32000-1 §12.8.1, Table 252) and its claimed time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRequest {
    /// The claimed signing time, written as the dictionary's `/M` (ETSI EN 319 142-1 §5.3:
    /// a B-B signature carries no signing-time attribute; this is its time).
    pub time: OffsetDateTime,
    /// The signer's name (`/Name`), e.g. the authenticated signer's `name` or `email`.
    pub signer_name: Option<String>,
    /// Why the document is signed (`/Reason`).
    pub reason: Option<String>,
    /// Where it was signed (`/Location`).
    pub location: Option<String>,
}

impl SignatureRequest {
    /// A request claiming `time`, with no name, reason or location.
    #[must_use]
    pub fn at(time: OffsetDateTime) -> Self {
        Self { time, signer_name: None, reason: None, location: None }
    }
}

/// The cause of a [`SigningError`], for the log (never shown to a relying application).
pub type SigningCause = Box<dyn Error + Send + Sync>;

/// Why a document could not be signed. The first four are the document's fault (its result
/// is `failed`, and signing it again will not help); the others are the signer's.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The bytes are not a PDF (no `%PDF-` header, ISO 32000-1 §7.5.2).
    #[error("the document is not a PDF")]
    NotPdf,
    /// The PDF is encrypted (ISO 32000-1 §7.6): it cannot be signed without its password.
    #[error("the PDF is encrypted")]
    Encrypted,
    /// The PDF cannot be read as written: its cross-reference data, trailer, catalog or page
    /// tree is broken or missing (ISO 32000-1 §7.5). A signature appended to a file that
    /// readers must repair would not validate.
    #[error("the PDF is damaged")]
    Damaged(#[source] SigningCause),
    /// The PDF carries a certification signature that permits no changes (DocMDP `/P 1`,
    /// ISO 32000-1 §12.8.2.2), so any further signature would break it.
    #[error("the PDF's certification signature permits no further changes")]
    ChangesNotPermitted,
    /// The signing key or its certificate cannot sign: unreadable, of an unsupported type,
    /// not matching each other, or the certificate not valid at the signing time.
    #[error("the signing key or certificate cannot be used")]
    Credentials(#[source] SigningCause),
    /// The time-stamping authority (RFC 3161) needed for the configured level did not answer
    /// or answered with an error: the signature is not made at a lower level instead.
    #[error("the time-stamping authority is unavailable")]
    TimestampUnavailable(#[source] SigningCause),
    /// Revocation data (OCSP, CRL) needed for the configured level could not be had.
    #[error("revocation information is unavailable")]
    RevocationUnavailable(#[source] SigningCause),
    /// Anything else (the signature did not fit its reserved space, an encoding failure).
    #[error("the document could not be signed")]
    Unexpected(#[source] SigningCause),
}

impl SigningError {
    /// Whether the failure is the document's own (not a PDF, encrypted, damaged, locked):
    /// signing the same bytes again fails the same way whatever the signer does.
    #[must_use]
    pub fn is_document_fault(&self) -> bool {
        matches!(self, Self::NotPdf | Self::Encrypted | Self::Damaged(_) | Self::ChangesNotPermitted)
    }
}

/// Signs PDF documents (SPEC §10). An implementation holds its key and certificate chain (or
/// reaches them: an HSM, a remote signing service) and signs at one [`SignatureLevel`].
#[async_trait]
pub trait DocumentSigner: Send + Sync {
    /// The level every signature of this signer has.
    fn level(&self) -> SignatureLevel;

    /// Signs `pdf` with one approval signature (ISO 32000-1 §12.8) appended as an incremental
    /// update: the returned bytes begin with `pdf` unchanged, and signatures already in it
    /// stay valid.
    ///
    /// # Errors
    /// [`SigningError::NotPdf`], [`SigningError::Encrypted`], [`SigningError::Damaged`] or
    /// [`SigningError::ChangesNotPermitted`] for a document that cannot be signed;
    /// [`SigningError::Credentials`] when the key or certificate cannot sign;
    /// [`SigningError::TimestampUnavailable`] or [`SigningError::RevocationUnavailable`] when
    /// the level cannot be reached — never a signature of a lower level;
    /// [`SigningError::Unexpected`] otherwise. An implementation never panics on any input.
    async fn sign(&self, pdf: &[u8], request: &SignatureRequest) -> Result<Vec<u8>, SigningError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_from_their_etsi_names_in_any_case() {
        for level in SignatureLevel::ALL {
            assert_eq!(SignatureLevel::parse(level.as_str()), Ok(level));
            assert_eq!(SignatureLevel::parse(&level.as_str().to_lowercase()), Ok(level));
        }
        assert_eq!(SignatureLevel::parse("B-X"), Err(UnknownSignatureLevel));
        assert_eq!(SignatureLevel::parse(""), Err(UnknownSignatureLevel));
    }

    #[test]
    fn levels_are_ordered_lowest_first() {
        assert!(SignatureLevel::BB < SignatureLevel::BT);
        assert!(SignatureLevel::BT < SignatureLevel::BLt);
        assert!(SignatureLevel::BLt < SignatureLevel::BLta);
    }

    #[test]
    fn only_the_document_faults_say_so() {
        let cause = || -> SigningCause { "x".into() };
        assert!(SigningError::NotPdf.is_document_fault());
        assert!(SigningError::Encrypted.is_document_fault());
        assert!(SigningError::Damaged(cause()).is_document_fault());
        assert!(SigningError::ChangesNotPermitted.is_document_fault());
        assert!(!SigningError::Credentials(cause()).is_document_fault());
        assert!(!SigningError::TimestampUnavailable(cause()).is_document_fault());
        assert!(!SigningError::RevocationUnavailable(cause()).is_document_fault());
        assert!(!SigningError::Unexpected(cause()).is_document_fault());
    }
}
