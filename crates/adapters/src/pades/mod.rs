//! A PAdES signer (ETSI EN 319 142-1): the [`DocumentSigner`] of a key and certificate chain
//! held in files, signing at level B-B.
//!
//! Each signature is an approval signature (ISO 32000-1 §12.8) appended as an incremental
//! update ([`pdf`]): a signature field with an invisible widget on the first page, a signature
//! dictionary with `/SubFilter /ETSI.CAdES.detached` (EN 319 142-1 §5.3), the claimed time in
//! `/M`, a `/ByteRange` over everything but `/Contents`, and in `/Contents` a detached CMS
//! `SignedData` ([`cms`], RFC 5652 §5) with the signed attributes content-type,
//! message-digest and signing-certificate-v2 (RFC 5035) and no signing-time (EN 319 142-1
//! §6.3). The original bytes are an unchanged prefix of the result, and signatures already in
//! the document stay valid.
//!
//! Keys ([`credentials`]): RSA (PKCS#1 v1.5 or PSS) and ECDSA P-256/P-384 from PKCS#8 PEM,
//! signing with ring.

mod cms;
pub mod credentials;
pub mod development;
mod pdf;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use esignsp_domain::{DocumentSigner, SignatureLevel, SignatureRequest, SigningError};

pub use credentials::{CredentialsError, RsaPadding, SigningCredentials};

/// The number of pages of `pdf` (its page tree, ISO 32000-1 §7.7.3), read as the signer reads
/// it; for the signing page.
///
/// # Errors
/// As the signer: [`SigningError::NotPdf`], [`SigningError::Encrypted`] or
/// [`SigningError::Damaged`]; never a panic.
pub fn page_count(pdf: &[u8]) -> Result<usize, SigningError> {
    Ok(pdf::load(pdf)?.get_pages().len())
}

/// Signs PDFs with one key and certificate chain at PAdES level B-B (ETSI EN 319 142-1 §6.3).
#[derive(Debug, Clone)]
pub struct PadesSigner {
    credentials: Arc<SigningCredentials>,
}

/// Why a [`PadesSigner`] could not be set up from files.
#[derive(Debug, thiserror::Error)]
pub enum PadesSetupError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key or chain cannot be used.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
}

impl PadesSigner {
    /// A signer with `credentials`.
    #[must_use]
    pub fn new(credentials: SigningCredentials) -> Self {
        Self { credentials: Arc::new(credentials) }
    }

    /// A signer with the PKCS#8 PEM key in `key_file` and the PEM certificate chain in
    /// `chain_file` ([`SigningCredentials::from_pem`]).
    ///
    /// # Errors
    /// [`PadesSetupError`] when a file cannot be read or its contents cannot be used.
    pub fn from_files(key_file: &Path, chain_file: &Path, padding: RsaPadding) -> Result<Self, PadesSetupError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| PadesSetupError::Read { path: path.display().to_string(), source })
        };
        Ok(Self::new(SigningCredentials::from_pem(&read(key_file)?, &read(chain_file)?, padding)?))
    }

    /// The signer's credentials.
    #[must_use]
    pub fn credentials(&self) -> &SigningCredentials {
        &self.credentials
    }

    /// Signs `pdf` now, on this thread ([`DocumentSigner::sign`] runs it on the blocking pool).
    ///
    /// # Errors
    /// As [`DocumentSigner::sign`].
    pub fn sign_blocking(&self, pdf: &[u8], request: &SignatureRequest) -> Result<Vec<u8>, SigningError> {
        let credentials = &*self.credentials;
        let validity = &credentials.certificate().tbs_certificate.validity;
        let at = std::time::Duration::try_from(request.time - time::OffsetDateTime::UNIX_EPOCH).ok();
        let valid = at.is_some_and(|at| {
            validity.not_before.to_unix_duration() <= at && at <= validity.not_after.to_unix_duration()
        });
        if !valid {
            return Err(SigningError::Credentials(
                format!("the signing certificate is not valid at {}", request.time).into(),
            ));
        }
        let prepared = pdf::prepare(pdf, request, cms::max_len(credentials))?;
        let digest = cms::digest(credentials, &prepared.signed_parts());
        let der = cms::signed_data(credentials, &digest).map_err(|e| SigningError::Unexpected(Box::new(e)))?;
        prepared.fill(&der)
    }
}

#[async_trait]
impl DocumentSigner for PadesSigner {
    fn level(&self) -> SignatureLevel {
        SignatureLevel::BB
    }

    async fn sign(&self, pdf: &[u8], request: &SignatureRequest) -> Result<Vec<u8>, SigningError> {
        let signer = self.clone();
        let (pdf, request) = (pdf.to_vec(), request.clone());
        tokio::task::spawn_blocking(move || signer.sign_blocking(&pdf, &request))
            .await
            .map_err(|e| SigningError::Unexpected(Box::new(e)))?
    }
}
