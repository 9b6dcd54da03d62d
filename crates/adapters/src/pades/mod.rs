//! A PAdES signer (ETSI EN 319 142-1): the [`DocumentSigner`] of a key and certificate chain
//! held in files, signing at level B-B, B-T, B-LT or B-LTA ([`PadesOptions`]).
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
//!
//! Above B-B, each level adds to the one below (EN 319 142-1 §6.4–§6.6):
//! * B-T: the CMS `SignerInfo` gets the unsigned attribute `id-aa-signatureTimeStampToken`
//!   (RFC 3161 Appendix A, 1.2.840.113549.1.9.16.2.14), a time-stamp token ([`tsa`]) over
//!   the signature value, from the configured TSA;
//! * B-LT: a second incremental update adds the validation data ([`revocation`]) of the
//!   signer's and the TSA's chains — certificates, OCSP responses, CRLs — to the catalog's
//!   `/DSS` (ISO 32000-2 §12.8.4.3);
//! * B-LTA: a third adds a document time-stamp (`/Type /DocTimeStamp`, `/SubFilter
//!   /ETSI.RFC3161`) over everything before it, the DSS included.
//!
//! A level is reached or the signing fails ([`SigningError::TimestampUnavailable`],
//! [`SigningError::RevocationUnavailable`]): a signature is never made at a lower level.

mod cms;
pub mod credentials;
pub mod development;
mod pdf;
mod revocation;
mod sparse;
mod tsa;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use esignsp_domain::{DocumentSigner, SignatureLevel, SignatureRequest, SigningError};

pub use credentials::{CredentialsError, RsaPadding, SigningCredentials, SigningIdentity};

/// The number of pages of `pdf` (its page tree, ISO 32000-1 §7.7.3), read as the signer reads
/// it; for the signing page.
///
/// # Errors
/// As the signer: [`SigningError::NotPdf`], [`SigningError::Encrypted`] or
/// [`SigningError::Damaged`]; never a panic.
pub fn page_count(pdf: &[u8]) -> Result<usize, SigningError> {
    Ok(pdf::load(pdf)?.get_pages().len())
}

/// Signs PDFs with one key and certificate chain at one PAdES baseline level (ETSI EN 319
/// 142-1 §6).
#[derive(Debug, Clone)]
pub struct PadesSigner {
    credentials: Arc<SigningCredentials>,
    level: SignatureLevel,
    tsa_url: Option<url::Url>,
    http: reqwest::Client,
}

/// How a [`PadesSigner`] signs beyond its key: the level, and where B-T and above get their
/// time-stamps.
#[derive(Debug, Clone)]
pub struct PadesOptions {
    /// The level of every signature.
    pub level: SignatureLevel,
    /// The RFC 3161 time-stamping authority (an `http` or `https` URL taking POSTed
    /// `application/timestamp-query` requests, RFC 3161 §3.4); required from B-T up.
    pub tsa_url: Option<url::Url>,
    /// The longest each HTTP exchange with the TSA, an OCSP responder or a CRL repository may
    /// take (connecting included).
    pub timeout: std::time::Duration,
}

impl Default for PadesOptions {
    /// B-B, no TSA, 10 s.
    fn default() -> Self {
        Self { level: SignatureLevel::BB, tsa_url: None, timeout: std::time::Duration::from_secs(10) }
    }
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
    /// A level from B-T up was asked for without a TSA URL.
    #[error("signature level {0} needs a time-stamping authority (tsa_url)")]
    NoTsa(SignatureLevel),
    /// The TSA URL is not `http` or `https`, or the timeout is zero.
    #[error("invalid PAdES option: {0}")]
    Option(String),
    /// The HTTP client could not be made.
    #[error("cannot set up the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

impl PadesSigner {
    /// A signer with `credentials` at level B-B.
    #[must_use]
    pub fn new(credentials: SigningCredentials) -> Self {
        Self {
            credentials: Arc::new(credentials),
            level: SignatureLevel::BB,
            tsa_url: None,
            http: reqwest::Client::new(),
        }
    }

    /// A signer with `credentials` signing as `options` say.
    ///
    /// # Errors
    /// [`PadesSetupError::NoTsa`] for B-T and above without [`PadesOptions::tsa_url`],
    /// [`PadesSetupError::Option`] for a TSA URL that is not `http`/`https` or a zero timeout,
    /// [`PadesSetupError::Http`] when the HTTP client cannot be built.
    pub fn with_options(credentials: SigningCredentials, options: PadesOptions) -> Result<Self, PadesSetupError> {
        if options.level >= SignatureLevel::BT && options.tsa_url.is_none() {
            return Err(PadesSetupError::NoTsa(options.level));
        }
        if let Some(url) = &options.tsa_url {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(PadesSetupError::Option(format!("the TSA URL {url} is not http or https")));
            }
        }
        if options.timeout.is_zero() {
            return Err(PadesSetupError::Option("the timeout is zero".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .build()
            .map_err(PadesSetupError::Http)?;
        Ok(Self { credentials: Arc::new(credentials), level: options.level, tsa_url: options.tsa_url, http })
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

    /// Signs `pdf` now at level B-B, on this thread, whatever the configured level (for
    /// B-T and above, which talk to a TSA, use [`DocumentSigner::sign`]).
    ///
    /// # Errors
    /// As [`DocumentSigner::sign`].
    pub fn sign_blocking(&self, pdf: &[u8], request: &SignatureRequest) -> Result<Vec<u8>, SigningError> {
        let (prepared, der) = self.signed_b_b(pdf, request, 0)?;
        prepared.fill(&der)
    }

    /// The document prepared for the signature (with `extra` more bytes reserved in
    /// `/Contents`) and the B-B CMS for it.
    fn signed_b_b(
        &self,
        pdf: &[u8],
        request: &SignatureRequest,
        extra: usize,
    ) -> Result<(pdf::Prepared, Vec<u8>), SigningError> {
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
        let prepared = pdf::prepare(pdf, request, cms::max_len(credentials) + extra)?;
        let digest = cms::digest(credentials, &prepared.signed_parts());
        let der = cms::signed_data(credentials, &digest).map_err(|e| SigningError::Unexpected(Box::new(e)))?;
        Ok((prepared, der))
    }

    /// Runs `work` on the blocking pool.
    async fn blocking<T: Send + 'static>(
        work: impl FnOnce() -> Result<T, SigningError> + Send + 'static,
    ) -> Result<T, SigningError> {
        // In the caller's span, so that what the PDF reader logs carries the request's id.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(work))
            .await
            .map_err(|e| SigningError::Unexpected(Box::new(e)))?
    }

    /// Signs at the configured level: B-B on the blocking pool, then the time-stamp, the DSS
    /// update and the document time-stamp as the level asks.
    async fn sign_at_level(&self, pdf: &[u8], request: &SignatureRequest) -> Result<Vec<u8>, SigningError> {
        let (level, signer) = (self.level, self.clone());
        let (pdf, request) = (pdf.to_vec(), request.clone());
        if level == SignatureLevel::BB {
            return Self::blocking(move || signer.sign_blocking(&pdf, &request)).await;
        }
        let tsa_url = self
            .tsa_url
            .clone()
            .ok_or_else(|| SigningError::TimestampUnavailable(format!("level {level} without a TSA").into()))?;
        let (prepared, der) =
            Self::blocking(move || signer.signed_b_b(&pdf, &request, TIMESTAMP_TOKEN_ALLOWANCE)).await?;
        let signature_value = cms::signature_value(&der).map_err(|e| SigningError::Unexpected(Box::new(e)))?;
        let token = tsa::timestamp(&self.http, &tsa_url, &[&signature_value]).await?;
        let der =
            cms::with_signature_timestamp(&der, &token.to_any()?).map_err(|e| SigningError::Unexpected(Box::new(e)))?;
        let signed = prepared.fill(&der)?;
        if level == SignatureLevel::BT {
            return Ok(signed);
        }

        let credentials = &self.credentials;
        let chains: Vec<_> = std::iter::once(credentials.certificate())
            .chain(credentials.chain())
            .chain(token.certificates.iter())
            .cloned()
            .collect();
        let data = revocation::collect(&self.http, &chains).await?;
        let with_dss = Self::blocking(move || pdf::append_dss(&signed, &data)).await?;
        if level == SignatureLevel::BLt {
            return Ok(with_dss);
        }

        let prepared = Self::blocking(move || pdf::prepare_doc_timestamp(&with_dss, DOC_TIMESTAMP_ALLOWANCE)).await?;
        let token = tsa::timestamp(&self.http, &tsa_url, &prepared.signed_parts()).await?;
        prepared.fill(&token.der)
    }
}

/// The bytes reserved in `/Contents` for a signature time-stamp token beyond the B-B CMS: a
/// token with the TSA's certificate chain (a few KiB with RSA-4096 keys) fits.
const TIMESTAMP_TOKEN_ALLOWANCE: usize = 12 * 1024;

/// The bytes reserved in `/Contents` for a document time-stamp token.
const DOC_TIMESTAMP_ALLOWANCE: usize = 16 * 1024;

#[async_trait]
impl DocumentSigner for PadesSigner {
    fn level(&self) -> SignatureLevel {
        self.level
    }

    async fn sign(&self, pdf: &[u8], request: &SignatureRequest) -> Result<Vec<u8>, SigningError> {
        self.sign_at_level(pdf, request).await
    }
}
