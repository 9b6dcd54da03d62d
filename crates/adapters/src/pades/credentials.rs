//! The signing key and its certificate chain: a PKCS#8 private key (RFC 5208/5958) in PEM
//! (RFC 7468 `PRIVATE KEY`), RSA (RFC 8017) or ECDSA on P-256/P-384 (RFC 5480), signing with
//! ring (constant-time); the X.509 chain (RFC 5280) in PEM, read with `x509-cert`.
//!
//! The key's type is read from the PKCS#8 AlgorithmIdentifier (`rsaEncryption`;
//! `id-ecPublicKey` with the named curve `secp256r1` or `secp384r1`); any other is refused.

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
    /// The key is not a PEM `PRIVATE KEY` (PKCS#8) that parses.
    #[error("the signing key is not a readable PKCS#8 PEM private key: {0}")]
    UnreadableKey(String),
    /// The key is of a type or curve this signer does not support.
    #[error("the signing key is of an unsupported type ({0}); use RSA or ECDSA P-256/P-384")]
    UnsupportedKey(String),
    /// The chain file holds no certificate, or one that does not parse.
    #[error("the certificate chain is not readable PEM X.509: {0}")]
    UnreadableChain(String),
    /// No certificate of the chain carries the key's public key.
    #[error("no certificate of the chain belongs to the signing key")]
    NoMatchingCertificate,
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

impl SigningCredentials {
    /// Reads `key_pem` (PKCS#8 `PRIVATE KEY`) and `chain_pem` (one or more `CERTIFICATE`s,
    /// in any order; the one with the key's public key is the signer's).
    ///
    /// # Errors
    /// [`CredentialsError`] for an unreadable or unsupported key, an unreadable chain, or a
    /// chain without the key's certificate.
    pub fn from_pem(key_pem: &[u8], chain_pem: &[u8], padding: RsaPadding) -> Result<Self, CredentialsError> {
        let pem = pem::parse(key_pem).map_err(|e| CredentialsError::UnreadableKey(e.to_string()))?;
        if pem.tag() != "PRIVATE KEY" {
            return Err(CredentialsError::UnreadableKey(format!("a PEM {} block, not PRIVATE KEY", pem.tag())));
        }
        let der = pem.contents();
        let info = PrivateKeyInfo::from_der(der).map_err(|e| CredentialsError::UnreadableKey(e.to_string()))?;
        let rng = SystemRandom::new();
        let rejected = |e: ring::error::KeyRejected| CredentialsError::UnreadableKey(e.to_string());
        let key = match info.algorithm.oid {
            rfc5912::RSA_ENCRYPTION => Key::Rsa(RsaKeyPair::from_pkcs8(der).map_err(rejected)?, padding),
            rfc5912::ID_EC_PUBLIC_KEY => {
                let curve = info
                    .algorithm
                    .parameters_oid()
                    .map_err(|_| CredentialsError::UnsupportedKey("an EC key without a named curve".into()))?;
                match curve {
                    rfc5912::SECP_256_R_1 => Key::EcdsaP256(
                        EcdsaKeyPair::from_pkcs8(&ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng)
                            .map_err(rejected)?,
                    ),
                    rfc5912::SECP_384_R_1 => Key::EcdsaP384(
                        EcdsaKeyPair::from_pkcs8(&ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING, der, &rng)
                            .map_err(rejected)?,
                    ),
                    other => return Err(CredentialsError::UnsupportedKey(format!("EC curve {other}"))),
                }
            }
            other => return Err(CredentialsError::UnsupportedKey(format!("algorithm {other}"))),
        };
        // x509-cert 0.2.5 underflows on input without a PEM block: look for one first.
        if !chain_pem.windows(11).any(|w| w == b"-----BEGIN ") {
            return Err(CredentialsError::UnreadableChain("no PEM certificate".into()));
        }
        let chain =
            Certificate::load_pem_chain(chain_pem).map_err(|e| CredentialsError::UnreadableChain(e.to_string()))?;
        if chain.is_empty() {
            return Err(CredentialsError::UnreadableChain("no certificate".into()));
        }
        let public = match &key {
            Key::Rsa(pair, _) => pair.public_key().as_ref().to_vec(),
            Key::EcdsaP256(pair) | Key::EcdsaP384(pair) => pair.public_key().as_ref().to_vec(),
        };
        let position = chain
            .iter()
            .position(|c| c.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes() == public)
            .ok_or(CredentialsError::NoMatchingCertificate)?;
        let mut others = chain;
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
