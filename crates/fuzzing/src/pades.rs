//! The PAdES signer's PDF reader (`esignsp_adapters::pades`): whatever bytes a client uploads
//! as a document, signing them at level B-B either fails with a document error or appends a
//! signature as an incremental update (ISO 32000-1 §7.5.6), the input an unchanged prefix.

use std::sync::OnceLock;

use esignsp_adapters::pades::{PadesSigner, RsaPadding, SigningCredentials};
use esignsp_domain::{SignatureRequest, SigningError};

/// The fixed test key (ECDSA P-256, PKCS#8 PEM) and its self-signed certificate (valid for
/// 100 years from 2026-12-01), made with `openssl genpkey` / `openssl req -x509`; they sign
/// nothing but fuzz inputs.
const KEY_PEM: &[u8] = include_bytes!("../data/pades-signer.key.pem");
const CERT_PEM: &[u8] = include_bytes!("../data/pades-signer.cert.pem");

/// The signer of the fixed test key, and a request at a time its certificate is valid.
pub fn pades_signer() -> &'static (PadesSigner, SignatureRequest) {
    static SIGNER: OnceLock<(PadesSigner, SignatureRequest)> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let credentials = SigningCredentials::from_key_material(KEY_PEM, Some(CERT_PEM), None, RsaPadding::Pkcs1v15)
            .expect("the fixed fuzz key and certificate load");
        let time = credentials.identity().not_before + time::Duration::days(1);
        let request = SignatureRequest {
            time,
            signer_name: Some("Fuzz Signer".into()),
            reason: Some("fuzzing".into()),
            location: None,
        };
        (PadesSigner::new(credentials), request)
    })
}

/// Any bytes as a PDF to sign (B-B, the fixed key): no panic; either a document error
/// ([`SigningError::is_document_fault`]: not a PDF, encrypted, damaged, certified without
/// changes) or a longer PDF that starts with the input, byte for byte.
pub fn pades_sign(data: &[u8]) {
    let (signer, request) = pades_signer();
    match signer.sign_blocking(data, request) {
        Ok(signed) => {
            assert!(signed.len() > data.len(), "a signature is appended");
            assert!(signed.starts_with(data), "the input is an unchanged prefix of the signed PDF");
        }
        Err(error) => assert!(error.is_document_fault(), "a bad document is a document fault, not {error:?} ({error})"),
    }
}

/// `data` signed as [`pades_sign`] signs it (for tests that need a signed PDF or the outcome).
///
/// # Errors
/// As `PadesSigner::sign_blocking`.
pub fn pades_signs(data: &[u8]) -> Result<Vec<u8>, SigningError> {
    let (signer, request) = pades_signer();
    signer.sign_blocking(data, request)
}
