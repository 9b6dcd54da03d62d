//! The development signing identity of the zero-setup run (SPEC §10): a root CA and a
//! document-signing certificate made with rcgen in `server.data_dir` on first start, so the
//! built-in signing page signs out of the box. Signatures made with it validate only against
//! its own root (`dev-signing-ca.pem`), which no one else trusts: never for production.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// File name of the development root CA certificate (PEM) in the data directory: the trust
/// root to give validators (`pdfsig -nssdir`, `pyhanko sign validate --trust`).
pub const CA_FILE: &str = "dev-signing-ca.pem";
/// File name of the development document-signing key (PKCS#8 PEM, ECDSA P-256).
pub const KEY_FILE: &str = "dev-document-signing-key.pem";
/// File name of the development certificate chain (PEM: the signer's certificate, then the CA).
pub const CHAIN_FILE: &str = "dev-document-signing-chain.pem";

/// The files of a development signing identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevelopmentIdentity {
    /// The root CA certificate ([`CA_FILE`]).
    pub ca_file: PathBuf,
    /// The signing key ([`KEY_FILE`]), for `signing.key_file`.
    pub key_file: PathBuf,
    /// The chain ([`CHAIN_FILE`]), for `signing.certificate_chain_file`.
    pub chain_file: PathBuf,
}

impl DevelopmentIdentity {
    /// The identity's files in `dir` (whether or not they exist).
    #[must_use]
    pub fn in_dir(dir: &Path) -> Self {
        Self { ca_file: dir.join(CA_FILE), key_file: dir.join(KEY_FILE), chain_file: dir.join(CHAIN_FILE) }
    }

    /// Whether the key and chain files exist.
    #[must_use]
    pub fn exists(&self) -> bool {
        self.key_file.is_file() && self.chain_file.is_file()
    }

    /// The identity in `dir`, generated first when its key or chain is missing: an ECDSA P-256
    /// root CA (`esignsp development CA`, keyCertSign and cRLSign) and a signing certificate
    /// (`esignsp development signer`, digitalSignature and nonRepudiation — ETSI EN 319 412-2
    /// §4.3.2 for signatures of documents), both valid from a day ago for ten years. Returns
    /// whether it generated them. The key file is written owner-only (0600).
    ///
    /// # Errors
    /// A file or the directory cannot be written, or rcgen fails.
    pub fn ensure(dir: &Path) -> Result<(Self, bool), DevelopmentIdentityError> {
        let identity = Self::in_dir(dir);
        if identity.exists() {
            return Ok((identity, false));
        }
        std::fs::create_dir_all(dir).map_err(|e| DevelopmentIdentityError::Write(dir.display().to_string(), e))?;
        let (ca_pem, key_pem, chain_pem) = generate()?;
        write(&identity.ca_file, &ca_pem, false)?;
        write(&identity.key_file, &key_pem, true)?;
        write(&identity.chain_file, &chain_pem, false)?;
        Ok((identity, true))
    }
}

/// Why the development identity could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DevelopmentIdentityError {
    /// A file could not be written.
    #[error("cannot write {0}: {1}")]
    Write(String, #[source] std::io::Error),
    /// rcgen could not make a key or certificate.
    #[error("cannot generate the development signing certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The CA certificate, the signer's key and the chain, as PEM.
fn generate() -> Result<(String, String, String), rcgen::Error> {
    let now = time::OffsetDateTime::now_utc();
    let (from, until) = (now - time::Duration::days(1), now + time::Duration::days(3650));
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name.push(DnType::CommonName, "esignsp development CA");
    ca.distinguished_name.push(DnType::OrganizationName, "esignsp development (not trusted)");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (ca.not_before, ca.not_after) = (from, until);
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut signer = CertificateParams::new(Vec::<String>::new())?;
    signer.distinguished_name.push(DnType::CommonName, "esignsp development signer");
    signer.distinguished_name.push(DnType::OrganizationName, "esignsp development (not trusted)");
    signer.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment];
    (signer.not_before, signer.not_after) = (from, until);
    let signer_pem = signer.signed_by(&key, &issuer)?.pem();
    Ok((ca_pem.clone(), key.serialize_pem(), format!("{signer_pem}{ca_pem}")))
}

fn write(path: &Path, contents: &str, secret: bool) -> Result<(), DevelopmentIdentityError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    options
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_bytes()))
        .map_err(|e| DevelopmentIdentityError::Write(path.display().to_string(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pades::{PadesSigner, RsaPadding};

    #[test]
    fn the_identity_is_generated_once_and_makes_a_working_signer() {
        let dir = std::env::temp_dir().join(format!("esignsp-dev-identity-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (identity, generated) = DevelopmentIdentity::ensure(&dir).expect("generated");
        assert!(generated);
        let key = std::fs::read(&identity.key_file).expect("key");
        let (again, generated) = DevelopmentIdentity::ensure(&dir).expect("kept");
        assert!(!generated);
        assert_eq!(again, identity);
        assert_eq!(std::fs::read(&identity.key_file).expect("key"), key, "an existing identity is kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&identity.key_file).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key is owner-only");
        }
        let signer = PadesSigner::from_files(&identity.key_file, &identity.chain_file, RsaPadding::Pkcs1v15)
            .expect("the generated key and chain make a signer");
        assert_eq!(signer.credentials().key_description(), "ECDSA P-256");
        assert_eq!(signer.credentials().chain().len(), 1, "the CA follows the signer's certificate");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
