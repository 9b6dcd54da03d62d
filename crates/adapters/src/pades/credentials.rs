//! The signing key and its certificate chain.
//!
//! The key comes from one of ([`SigningCredentials::from_key_material`] tells them apart):
//! - a PKCS#8 private key (RFC 5208/5958) in PEM (RFC 7468 `PRIVATE KEY`) or DER;
//! - an encrypted PKCS#8 key (RFC 5958 §3, RFC 7468 `ENCRYPTED PRIVATE KEY`) in PEM or DER,
//!   PBES2 (RFC 8018 §6.2) with AES-128/192/256-CBC or DES-EDE3-CBC and PBKDF2 (HMAC-SHA-1/-224/
//!   -256/-384/-512) or scrypt (RFC 7914), decrypted with RustCrypto `pkcs8`/`pkcs5`;
//! - a PKCS#12 key store (RFC 7292, `.p12`/`.pfx`, DER), read with `p12-keystore`: the
//!   PBES2/AES-256-CBC/PBKDF2 form with an HMAC-SHA-256 MAC that OpenSSL 3 writes by default
//!   and the legacy PBES1 forms (`pbeWithSHAAnd3-KeyTripleDES-CBC`,
//!   `pbeWithSHAAnd40BitRC2-CBC`, SHA-1 MAC; RFC 7292 Appendix C) of `openssl pkcs12 -legacy`
//!   and older tools.
//!
//! RSA (RFC 8017) or ECDSA on P-256/P-384 (RFC 5480), signing with ring (constant-time); the
//! key's type is read from the PKCS#8 AlgorithmIdentifier (`rsaEncryption`; `id-ecPublicKey`
//! with the named curve `secp256r1` or `secp384r1`); any other is refused. The X.509 chain
//! (RFC 5280) comes from a PEM chain file, read with `x509-cert`, and from the key file itself
//! (a PKCS#12's certificates, or `CERTIFICATE` blocks beside a PEM key).

use const_oid::db::rfc5912;
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode, Sequence};
use pkcs8::PrivateKeyInfo;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, RsaKeyPair};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

/// How an RSA key signs (RFC 8017 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RsaPadding {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`sha256WithRSAEncryption`, RFC 8017 §8.2, RFC 4055 §5).
    #[default]
    Pkcs1v15,
    /// RSASSA-PSS with SHA-256, MGF1 with SHA-256 and a 32-byte salt (`id-RSASSA-PSS` with
    /// explicit parameters, RFC 8017 §8.1, RFC 4055 §3.1).
    Pss,
}

/// Why a signing key or certificate chain cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The key file is neither a PEM nor a DER PKCS#8 key nor a PKCS#12 key store that parses
    /// (garbage, a truncated file, a PEM block of another kind).
    #[error("the signing key is not a readable PKCS#8 (PEM or DER) or PKCS#12 key: {0}")]
    UnreadableKey(String),
    /// The key is of a type or curve this signer does not support.
    #[error("the signing key is of an unsupported type ({0}); use RSA or ECDSA P-256/P-384")]
    UnsupportedKey(String),
    /// The key (or the PKCS#12 store) is encrypted with a scheme this signer cannot decrypt.
    #[error(
        "the signing key is encrypted with an unsupported scheme ({0}); use PKCS#8 PBES2 (AES-CBC with \
         PBKDF2 or scrypt) or PKCS#12"
    )]
    UnsupportedEncryption(String),
    /// The key (or the PKCS#12 store) is encrypted and no password was given.
    #[error("the signing key is encrypted: a password is needed (signing.key_password)")]
    PasswordRequired,
    /// The password does not decrypt the key, or does not match the PKCS#12 store's integrity
    /// MAC (RFC 7292 §5.1): a wrong password (or a damaged file).
    #[error("the password does not open the signing key (a wrong password, or a damaged file)")]
    WrongPassword,
    /// The PKCS#12 store holds no private key with a certificate (e.g. a trust store).
    #[error("the PKCS#12 file holds no private key with its certificate")]
    NoKeyInPkcs12,
    /// The PKCS#12 store holds more than one private key; which one signs is not clear.
    #[error("the PKCS#12 file holds {0} private keys; one is expected")]
    SeveralKeysInPkcs12(usize),
    /// Neither a chain file nor the key file holds a certificate.
    #[error("no certificate: give signing.certificate_chain_file, or a key file that holds the certificate")]
    NoCertificate,
    /// The chain file holds no certificate, or one that does not parse (or so does the key
    /// file's certificate).
    #[error("the certificate chain is not readable PEM X.509: {0}")]
    UnreadableChain(String),
    /// No certificate of the chain (or of the key file) carries the key's public key.
    #[error("no certificate of the chain belongs to the signing key")]
    NoMatchingCertificate,
}

/// What the signing certificate says of who signs, for `esignsp check-config` and logs:
/// the fields of the certificate (RFC 5280 §4.1.2) and the key's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningIdentity {
    /// The certificate's subject, as an RFC 4514 string (the last RDN first, e.g. `O=Example,CN=Signer`).
    pub subject: String,
    /// The certificate's issuer, as an RFC 4514 string.
    pub issuer: String,
    /// The certificate's serial number, in lowercase hex (its DER INTEGER bytes).
    pub serial_number: String,
    /// The start of the certificate's validity (RFC 5280 §4.1.2.5), UTC.
    pub not_before: time::OffsetDateTime,
    /// The end of the certificate's validity, UTC.
    pub not_after: time::OffsetDateTime,
    /// The key's type, as [`SigningCredentials::key_description`].
    pub key: String,
    /// How many other certificates (intermediates, perhaps the root) go into each signature.
    pub chain_len: usize,
}

impl std::fmt::Display for SigningIdentity {
    /// `subject "…", issuer "…", serial …, valid 2025-01-01T00:00:00Z to …, key ECDSA P-256, 1 more certificate(s)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let format = &time::format_description::well_known::Rfc3339;
        let not_before = self.not_before.format(format).map_err(|_| std::fmt::Error)?;
        let not_after = self.not_after.format(format).map_err(|_| std::fmt::Error)?;
        write!(
            f,
            "subject \"{}\", issuer \"{}\", serial {}, valid {not_before} to {not_after}, key {}, {} more certificate(s)",
            self.subject, self.issuer, self.serial_number, self.key, self.chain_len
        )
    }
}

/// The private key, with the algorithms it signs with.
enum Key {
    Rsa(RsaKeyPair, RsaPadding),
    EcdsaP256(EcdsaKeyPair),
    EcdsaP384(EcdsaKeyPair),
}

/// A signing key with its certificate chain: the signer's certificate (the one that carries
/// the key's public key) and the other certificates of the file, in their order, to be put
/// into the CMS `certificates` (RFC 5652 §5.1).
pub struct SigningCredentials {
    key: Key,
    signer: Certificate,
    others: Vec<Certificate>,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningCredentials")
            .field("subject", &self.signer.tbs_certificate.subject.to_string())
            .field("key", &self.key_description())
            .finish_non_exhaustive()
    }
}

/// RSASSA-PSS-params (RFC 4055 §3.1, RFC 8017 Appendix A.2.3); trailerField is its DEFAULT.
#[derive(Sequence)]
struct RsaPssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    hash_algorithm: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
    mask_gen_algorithm: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    salt_length: u32,
}

/// `EncryptedPrivateKeyInfo` (RFC 5958 §3) with any algorithm: to tell an encrypted key of an
/// unknown scheme from garbage.
#[derive(Sequence)]
struct LooseEncryptedKeyInfo {
    algorithm: AlgorithmIdentifierOwned,
    #[allow(dead_code)]
    data: der::asn1::OctetString,
}

/// What a key file holds: a PKCS#8 key (DER, decrypted) and the certificates beside it.
struct KeyMaterial {
    pkcs8: pkcs8::SecretDocument,
    certificates: Vec<Certificate>,
}

impl SigningCredentials {
    /// Reads `key_pem` (PKCS#8 `PRIVATE KEY`) and `chain_pem` (one or more `CERTIFICATE`s,
    /// in any order; the one with the key's public key is the signer's): as
    /// [`Self::from_key_material`] with a chain and no password.
    ///
    /// # Errors
    /// [`CredentialsError`] for an unreadable or unsupported key, an unreadable chain, or a
    /// chain without the key's certificate.
    pub fn from_pem(key_pem: &[u8], chain_pem: &[u8], padding: RsaPadding) -> Result<Self, CredentialsError> {
        Self::from_key_material(key_pem, Some(chain_pem), None, padding)
    }

    /// Reads the contents of a key file (`signing.key_file`), an optional PEM certificate
    /// chain (`signing.certificate_chain_file`) and an optional password
    /// (`signing.key_password`).
    ///
    /// `key` is told apart by its bytes: text with a PEM block is PEM, with a `PRIVATE KEY` or
    /// an `ENCRYPTED PRIVATE KEY` (PKCS#8, RFC 7468 §10/§11) and perhaps `CERTIFICATE` blocks
    /// beside it; anything else is DER, a PKCS#8 `PrivateKeyInfo` or `EncryptedPrivateKeyInfo`,
    /// or else a PKCS#12 `PFX` (RFC 7292 §4). A PKCS#12 store must hold exactly one private
    /// key; without `password` it is opened with the empty one.
    ///
    /// The signer's certificate is the one that carries the key's public key, among the
    /// certificates of the key file followed by those of `chain_pem` (any order); the others,
    /// without duplicates, go into each signature's CMS `certificates` (RFC 5652 §5.1). So with
    /// a PKCS#12 store the chain file may be left out.
    ///
    /// # Errors
    /// [`CredentialsError`]: an unreadable key file ([`CredentialsError::UnreadableKey`]), an
    /// encryption it cannot decrypt ([`CredentialsError::UnsupportedEncryption`]), a missing
    /// ([`CredentialsError::PasswordRequired`]) or wrong ([`CredentialsError::WrongPassword`])
    /// password, a PKCS#12 store without a key or with several, a key other than RSA or ECDSA
    /// P-256/P-384 ([`CredentialsError::UnsupportedKey`]), a `chain_pem` without a readable
    /// certificate ([`CredentialsError::UnreadableChain`]), no certificate at all
    /// ([`CredentialsError::NoCertificate`]), or none that carries the key's public key
    /// ([`CredentialsError::NoMatchingCertificate`]).
    pub fn from_key_material(
        key: &[u8],
        chain_pem: Option<&[u8]>,
        password: Option<&str>,
        padding: RsaPadding,
    ) -> Result<Self, CredentialsError> {
        let material = if has_pem_block(key) { pem_key(key, password)? } else { der_key(key, password)? };
        let rng = SystemRandom::new();
        let key = pkcs8_key(material.pkcs8.as_bytes(), padding, &rng)?;
        let mut candidates = material.certificates;
        if let Some(chain_pem) = chain_pem {
            // x509-cert 0.2.5 underflows on input without a PEM block: look for one first.
            if !has_pem_block(chain_pem) {
                return Err(CredentialsError::UnreadableChain("no PEM certificate".into()));
            }
            let chain =
                Certificate::load_pem_chain(chain_pem).map_err(|e| CredentialsError::UnreadableChain(e.to_string()))?;
            if chain.is_empty() {
                return Err(CredentialsError::UnreadableChain("no certificate".into()));
            }
            candidates.extend(chain);
        }
        if candidates.is_empty() {
            return Err(CredentialsError::NoCertificate);
        }
        let public = match &key {
            Key::Rsa(pair, _) => pair.public_key().as_ref().to_vec(),
            Key::EcdsaP256(pair) | Key::EcdsaP384(pair) => pair.public_key().as_ref().to_vec(),
        };
        let position = candidates
            .iter()
            .position(|c| c.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes() == public)
            .ok_or(CredentialsError::NoMatchingCertificate)?;
        let mut others = candidates;
        let signer = others.remove(position);
        let mut seen: Vec<Vec<u8>> =
            vec![signer.to_der().map_err(|e| CredentialsError::UnreadableChain(e.to_string()))?];
        others.retain(|c| {
            let der = c.to_der().unwrap_or_default();
            let fresh = !seen.contains(&der);
            seen.push(der);
            fresh
        });
        Ok(Self { key, signer, others, rng })
    }

    /// The signer's certificate.
    #[must_use]
    pub fn certificate(&self) -> &Certificate {
        &self.signer
    }

    /// The other certificates of the chain (intermediates, perhaps the root), without
    /// duplicates.
    #[must_use]
    pub fn chain(&self) -> &[Certificate] {
        &self.others
    }

    /// The key's type, e.g. `RSA 3072 PKCS#1 v1.5` or `ECDSA P-256`.
    #[must_use]
    pub fn key_description(&self) -> String {
        match &self.key {
            Key::Rsa(pair, RsaPadding::Pkcs1v15) => format!("RSA {} PKCS#1 v1.5", pair.public().modulus_len() * 8),
            Key::Rsa(pair, RsaPadding::Pss) => format!("RSA {} PSS", pair.public().modulus_len() * 8),
            Key::EcdsaP256(_) => "ECDSA P-256".into(),
            Key::EcdsaP384(_) => "ECDSA P-384".into(),
        }
    }

    /// Who signs: the signing certificate's subject, issuer, serial number and validity, the
    /// key's type and the length of the chain, for `esignsp check-config`.
    #[must_use]
    pub fn identity(&self) -> SigningIdentity {
        let tbs = &self.signer.tbs_certificate;
        let at = |t: x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_secs())
                .ok()
                .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        };
        SigningIdentity {
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            serial_number: tbs.serial_number.as_bytes().iter().map(|b| format!("{b:02x}")).collect(),
            not_before: at(tbs.validity.not_before),
            not_after: at(tbs.validity.not_after),
            key: self.key_description(),
            chain_len: self.others.len(),
        }
    }

    /// The digest algorithm of the signature and of the message digest: SHA-384 for a P-384
    /// key, SHA-256 otherwise (FIPS 180-4; OIDs of RFC 5754 §2, parameters absent).
    pub(crate) fn digest_algorithm(&self) -> ObjectIdentifier {
        match self.key {
            Key::EcdsaP384(_) => rfc5912::ID_SHA_384,
            _ => rfc5912::ID_SHA_256,
        }
    }

    /// The SignerInfo `signatureAlgorithm` (RFC 5652 §5.3): `sha256WithRSAEncryption` with
    /// NULL parameters (RFC 4055 §5), `id-RSASSA-PSS` with its parameters (RFC 4055 §3.1), or
    /// `ecdsa-with-SHA256`/`-SHA384` without parameters (RFC 5758 §3.2).
    pub(crate) fn signature_algorithm(&self) -> der::Result<AlgorithmIdentifierOwned> {
        let sha256 = AlgorithmIdentifierOwned { oid: rfc5912::ID_SHA_256, parameters: None };
        Ok(match self.key {
            Key::Rsa(_, RsaPadding::Pkcs1v15) => AlgorithmIdentifierOwned {
                oid: rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
                parameters: Some(der::Any::null()),
            },
            Key::Rsa(_, RsaPadding::Pss) => {
                let params = RsaPssParams {
                    hash_algorithm: sha256.clone(),
                    mask_gen_algorithm: AlgorithmIdentifierOwned {
                        oid: rfc5912::ID_MGF_1,
                        parameters: Some(der::Any::encode_from(&sha256)?),
                    },
                    salt_length: 32,
                };
                AlgorithmIdentifierOwned {
                    oid: rfc5912::ID_RSASSA_PSS,
                    parameters: Some(der::Any::encode_from(&params)?),
                }
            }
            Key::EcdsaP256(_) => AlgorithmIdentifierOwned { oid: rfc5912::ECDSA_WITH_SHA_256, parameters: None },
            Key::EcdsaP384(_) => AlgorithmIdentifierOwned { oid: rfc5912::ECDSA_WITH_SHA_384, parameters: None },
        })
    }

    /// The longest signature value this key makes, in bytes: the modulus length for RSA, a
    /// DER `ECDSA-Sig-Value` (RFC 5480 §2.2 / RFC 3279 §2.2.3) for ECDSA.
    pub(crate) fn max_signature_len(&self) -> usize {
        match &self.key {
            Key::Rsa(pair, _) => pair.public().modulus_len(),
            Key::EcdsaP256(_) => 72,
            Key::EcdsaP384(_) => 104,
        }
    }

    /// Signs `message` (hashing it with the algorithm's digest).
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ring::error::Unspecified> {
        match &self.key {
            Key::Rsa(pair, padding) => {
                let encoding: &'static dyn ring::signature::RsaEncoding = match padding {
                    RsaPadding::Pkcs1v15 => &ring::signature::RSA_PKCS1_SHA256,
                    RsaPadding::Pss => &ring::signature::RSA_PSS_SHA256,
                };
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(encoding, &self.rng, message, &mut signature)?;
                Ok(signature)
            }
            Key::EcdsaP256(pair) | Key::EcdsaP384(pair) => Ok(pair.sign(&self.rng, message)?.as_ref().to_vec()),
        }
    }
}

/// Whether `bytes` hold the start of a PEM block (RFC 7468 §2).
fn has_pem_block(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// The key (and the certificates) of a PEM key file: one `PRIVATE KEY` or
/// `ENCRYPTED PRIVATE KEY` block, any number of `CERTIFICATE` blocks.
fn pem_key(text: &[u8], password: Option<&str>) -> Result<KeyMaterial, CredentialsError> {
    let blocks = pem::parse_many(text).map_err(|e| CredentialsError::UnreadableKey(e.to_string()))?;
    let mut keys = Vec::new();
    let mut certificates = Vec::new();
    for block in &blocks {
        match block.tag() {
            "PRIVATE KEY" => keys.push(plain_pkcs8(block.contents())?),
            "ENCRYPTED PRIVATE KEY" => keys.push(encrypted_pkcs8(block.contents(), password)?),
            "CERTIFICATE" => certificates.push(
                Certificate::from_der(block.contents())
                    .map_err(|e| CredentialsError::UnreadableChain(e.to_string()))?,
            ),
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" if block.headers().get("Proc-Type").is_some() => {
                return Err(CredentialsError::UnsupportedEncryption(format!(
                    "an OpenSSL-encrypted {} (convert it: openssl pkcs8 -topk8 -v2 aes-256-cbc)",
                    block.tag()
                )))
            }
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                return Err(CredentialsError::UnreadableKey(format!(
                    "a PEM {} block, not PKCS#8 (convert it: openssl pkcs8 -topk8)",
                    block.tag()
                )))
            }
            _ => {}
        }
    }
    let mut keys = keys.into_iter();
    match (keys.next(), keys.next()) {
        (Some(pkcs8), None) => Ok(KeyMaterial { pkcs8, certificates }),
        (None, _) => {
            let tags: Vec<&str> = blocks.iter().map(pem::Pem::tag).collect();
            Err(CredentialsError::UnreadableKey(format!("no PRIVATE KEY block (PEM blocks: {tags:?})")))
        }
        (Some(_), Some(_)) => Err(CredentialsError::UnreadableKey("more than one PEM private key".into())),
    }
}

/// The key of a DER key file: a PKCS#8 `PrivateKeyInfo` or `EncryptedPrivateKeyInfo`, or a
/// PKCS#12 `PFX`.
fn der_key(der: &[u8], password: Option<&str>) -> Result<KeyMaterial, CredentialsError> {
    if PrivateKeyInfo::from_der(der).is_ok() {
        return Ok(KeyMaterial { pkcs8: plain_pkcs8(der)?, certificates: Vec::new() });
    }
    if LooseEncryptedKeyInfo::from_der(der).is_ok() {
        return Ok(KeyMaterial { pkcs8: encrypted_pkcs8(der, password)?, certificates: Vec::new() });
    }
    pkcs12_key(der, password)
}

/// An unencrypted PKCS#8 key, checked to parse.
fn plain_pkcs8(der: &[u8]) -> Result<pkcs8::SecretDocument, CredentialsError> {
    PrivateKeyInfo::from_der(der).map_err(|e| CredentialsError::UnreadableKey(e.to_string()))?;
    pkcs8::SecretDocument::try_from(der).map_err(|e| CredentialsError::UnreadableKey(e.to_string()))
}

/// An `EncryptedPrivateKeyInfo` (RFC 5958 §3) decrypted with `password` (PBES2, RFC 8018 §6.2).
fn encrypted_pkcs8(der: &[u8], password: Option<&str>) -> Result<pkcs8::SecretDocument, CredentialsError> {
    let info =
        pkcs8::EncryptedPrivateKeyInfo::from_der(der).map_err(|e| match LooseEncryptedKeyInfo::from_der(der) {
            // The shape of an EncryptedPrivateKeyInfo, with a scheme pkcs5 does not know (e.g.
            // PKCS#12's pbeWithSHAAnd3-KeyTripleDES-CBC, RFC 7292 Appendix C).
            Ok(loose) => CredentialsError::UnsupportedEncryption(format!("algorithm {}", loose.algorithm.oid)),
            Err(_) => CredentialsError::UnreadableKey(e.to_string()),
        })?;
    let password = password.ok_or(CredentialsError::PasswordRequired)?;
    let document = info.decrypt(password).map_err(|e| match e {
        pkcs8::Error::EncryptedPrivateKey(
            e @ (pkcs8::pkcs5::Error::UnsupportedAlgorithm { .. } | pkcs8::pkcs5::Error::NoPbes1CryptSupport),
        ) => CredentialsError::UnsupportedEncryption(e.to_string()),
        pkcs8::Error::EncryptedPrivateKey(e @ pkcs8::pkcs5::Error::AlgorithmParametersInvalid { .. }) => {
            CredentialsError::UnreadableKey(e.to_string())
        }
        // A wrong key decrypts to garbage: a bad padding (DecryptFailed), or rarely a valid
        // one over bytes that are not DER.
        _ => CredentialsError::WrongPassword,
    })?;
    PrivateKeyInfo::from_der(document.as_bytes()).map_err(|_| CredentialsError::WrongPassword)?;
    Ok(document)
}

/// The one private key of a PKCS#12 store (RFC 7292) with the store's certificates: the
/// key's certificate first, then its issuers as the store chains them.
fn pkcs12_key(der: &[u8], password: Option<&str>) -> Result<KeyMaterial, CredentialsError> {
    use p12_keystore::error::Error as P12;
    let store = p12_keystore::KeyStore::from_pkcs12(der, password.unwrap_or("")).map_err(|e| match e {
        P12::MacError(_) | P12::UnpadError | P12::Pkcs5Error(_) if password.is_none() => {
            CredentialsError::PasswordRequired
        }
        P12::MacError(_) | P12::UnpadError => CredentialsError::WrongPassword,
        P12::Pkcs5Error(text) if text.contains("unsupported") => CredentialsError::UnsupportedEncryption(text),
        P12::Pkcs5Error(_) => CredentialsError::WrongPassword,
        P12::UnsupportedEncryptionScheme | P12::UnsupportedMacAlgorithm => {
            CredentialsError::UnsupportedEncryption(e.to_string())
        }
        other => CredentialsError::UnreadableKey(format!("not PKCS#8, and not PKCS#12: {other}")),
    })?;
    let chains: Vec<&p12_keystore::PrivateKeyChain> = store
        .entries()
        .filter_map(|(_, entry)| match entry {
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => Some(chain),
            _ => None,
        })
        .collect();
    let chain = match chains.as_slice() {
        [] => return Err(CredentialsError::NoKeyInPkcs12),
        [one] => *one,
        several => return Err(CredentialsError::SeveralKeysInPkcs12(several.len())),
    };
    let pkcs8 = plain_pkcs8(chain.key())?;
    let mut certificates = Vec::new();
    for certificate in chain.chain() {
        certificates.push(
            Certificate::from_der(certificate.as_der())
                .map_err(|e| CredentialsError::UnreadableChain(format!("a certificate of the PKCS#12 file: {e}")))?,
        );
    }
    Ok(KeyMaterial { pkcs8, certificates })
}

/// The ring key of a PKCS#8 `PrivateKeyInfo` (DER).
fn pkcs8_key(der: &[u8], padding: RsaPadding, rng: &SystemRandom) -> Result<Key, CredentialsError> {
    let info = PrivateKeyInfo::from_der(der).map_err(|e| CredentialsError::UnreadableKey(e.to_string()))?;
    let rejected = |e: ring::error::KeyRejected| CredentialsError::UnreadableKey(e.to_string());
    Ok(match info.algorithm.oid {
        rfc5912::RSA_ENCRYPTION => Key::Rsa(RsaKeyPair::from_pkcs8(der).map_err(rejected)?, padding),
        rfc5912::ID_EC_PUBLIC_KEY => {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|_| CredentialsError::UnsupportedKey("an EC key without a named curve".into()))?;
            match curve {
                rfc5912::SECP_256_R_1 => Key::EcdsaP256(
                    EcdsaKeyPair::from_pkcs8(&ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING, der, rng)
                        .map_err(rejected)?,
                ),
                rfc5912::SECP_384_R_1 => Key::EcdsaP384(
                    EcdsaKeyPair::from_pkcs8(&ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING, der, rng)
                        .map_err(rejected)?,
                ),
                other => return Err(CredentialsError::UnsupportedKey(format!("EC curve {other}"))),
            }
        }
        other => return Err(CredentialsError::UnsupportedKey(format!("algorithm {other}"))),
    })
}
