//! The development signing key used by `esignsp token` (SPEC §7): it mints RFC 9068 access
//! tokens that the same configuration accepts. Never for production.

use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::keys::{key_error, KeyError, PrivateKey, VerificationKey};

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
        Ok(Self { algorithm: private.algorithm, encoding, verification: private.verification_key() })
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
