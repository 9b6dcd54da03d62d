//! Verification keys, each bound to the signature algorithms it may verify (RFC 8725 §3.1):
//! read from PEM files (RFC 7468: `PUBLIC KEY` SubjectPublicKeyInfo, `RSA PUBLIC KEY`
//! PKCS#1, or a private key whose public half is used) and from JWK / JWK Set JSON
//! (RFC 7517).
//!
//! The type of a key is read from its AlgorithmIdentifier (RFC 5280 §4.1.2.7) with the `spki`
//! and `pkcs8` crates: `rsaEncryption` (RFC 8017 App. A.1), `id-ecPublicKey` with the named
//! curve `secp256r1` or `secp384r1` as parameter (RFC 5480 §2.1.1), `id-Ed25519` (RFC 8410 §3).
//! Any other algorithm or curve is refused.
//!
//! This module knows nothing of tokens, HTTP or caches: the JWK Set source
//! (`jwks`) and the verifier (`jwt`) use it.

use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use ring::signature::KeyPair;
use serde_json::Value;
use spki::{AlgorithmIdentifierRef, ObjectIdentifier, SubjectPublicKeyInfoRef};

/// A key that verifies signatures, bound to the algorithms it may verify.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey").field("kid", &self.kid).field("algorithms", &self.algorithms).finish()
    }
}

impl VerificationKey {
    /// The algorithms this key may verify.
    #[must_use]
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// The key id, if it has one.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// This key if it may verify an algorithm of `allow_list`, bound to those.
    fn restricted_to(mut self, allow_list: &[Algorithm]) -> Option<Self> {
        self.algorithms.retain(|a| allow_list.contains(a));
        (!self.algorithms.is_empty()).then_some(self)
    }

    /// The key material, for jsonwebtoken.
    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct KeyError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

pub(crate) fn key_error(path: &Path, reason: impl Into<String>) -> KeyError {
    KeyError { path: path.to_owned(), reason: reason.into() }
}

/// `rsaEncryption` (RFC 8017 App. A.1).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey` (RFC 5480 §2.1.1).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1`, the named curve of P-256 (RFC 5480 §2.1.1.1).
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `secp384r1`, the named curve of P-384 (RFC 5480 §2.1.1.1).
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// `id-Ed25519` (RFC 8410 §3).
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The key types this server verifies with, and the algorithms of each (RFC 7518 §3, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Family {
    fn algorithms(self) -> &'static [Algorithm] {
        match self {
            Self::Rsa => &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            Self::P256 => &[Algorithm::ES256],
            Self::P384 => &[Algorithm::ES384],
            Self::Ed25519 => &[Algorithm::EdDSA],
        }
    }

    /// The family of a SubjectPublicKeyInfo's or PKCS#8 PrivateKeyInfo's AlgorithmIdentifier.
    fn of(algorithm: &AlgorithmIdentifierRef<'_>) -> Result<Self, String> {
        // `oids` reads NULL parameters (rsaEncryption's) as absent.
        match algorithm.oids() {
            Ok((RSA_ENCRYPTION, None)) => Ok(Self::Rsa),
            Ok((EC_PUBLIC_KEY, Some(SECP256R1))) => Ok(Self::P256),
            Ok((EC_PUBLIC_KEY, Some(SECP384R1))) => Ok(Self::P384),
            Ok((ED25519, None)) => Ok(Self::Ed25519),
            Ok((EC_PUBLIC_KEY, Some(curve))) => Err(format!("unsupported EC curve {curve}: expected P-256 or P-384")),
            Ok((EC_PUBLIC_KEY, None)) => Err("an EC key without its named curve".to_owned()),
            Ok((oid, _)) => Err(format!("unsupported key algorithm {oid}: expected RSA, EC P-256/P-384 or Ed25519")),
            Err(e) => Err(format!("invalid key algorithm identifier: {e}")),
        }
    }

    /// The family of a JWK's key type and curve (RFC 7518 §6, RFC 8037 §2).
    fn of_jwk(parameters: &AlgorithmParameters) -> Option<Self> {
        match parameters {
            AlgorithmParameters::RSA(_) => Some(Self::Rsa),
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => Some(Self::P256),
                EllipticCurve::P384 => Some(Self::P384),
                _ => None,
            },
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => Some(Self::Ed25519),
            _ => None,
        }
    }

    /// A decoding key from the raw public key of this family: a PKCS#1 RSAPublicKey, an
    /// uncompressed EC point, or 32 Ed25519 bytes (what a SubjectPublicKeyInfo's BIT STRING
    /// holds).
    fn decoding_key(self, public: &[u8]) -> DecodingKey {
        match self {
            Self::Rsa => DecodingKey::from_rsa_der(public),
            Self::P256 | Self::P384 => DecodingKey::from_ec_der(public),
            Self::Ed25519 => DecodingKey::from_ed_der(public),
        }
    }
}

fn allowed(family: &[Algorithm], allow_list: &[Algorithm]) -> Vec<Algorithm> {
    family.iter().copied().filter(|a| allow_list.contains(a)).collect()
}

/// Loads the verification keys of one file of `auth.public_key_files`.
///
/// PEM files may hold several `PUBLIC KEY` / `RSA PUBLIC KEY` blocks, or a private key
/// (`PRIVATE KEY`, `RSA PRIVATE KEY`) whose public half is used. JSON files hold a JWK or a
/// JWK Set (RFC 7517); members that cannot verify signatures (encryption keys, symmetric or
/// unknown key types) are skipped.
///
/// # Errors
/// [`KeyError`] when the file cannot be read or holds no usable key.
pub fn load_key_file(path: &Path, allow_list: &[Algorithm]) -> Result<Vec<VerificationKey>, KeyError> {
    let bytes = std::fs::read(path).map_err(|e| key_error(path, format!("cannot read: {e}")))?;
    let keys = if bytes.trim_ascii_start().starts_with(b"{") {
        keys_from_jwk_json(&bytes, allow_list).map_err(|r| key_error(path, r))?
    } else {
        keys_from_pem(&bytes, allow_list).map_err(|r| key_error(path, r))?
    };
    if keys.is_empty() {
        return Err(key_error(path, "no key usable with the allowed algorithms"));
    }
    Ok(keys)
}

fn keys_from_pem(bytes: &[u8], allow_list: &[Algorithm]) -> Result<Vec<VerificationKey>, String> {
    let blocks = pem::parse_many(bytes).map_err(|e| format!("not PEM: {e}"))?;
    if blocks.is_empty() {
        return Err("no PEM block".to_owned());
    }
    let mut keys = Vec::new();
    for block in blocks {
        let (family, key): (&[Algorithm], DecodingKey) = match block.tag() {
            "PUBLIC KEY" => {
                let spki = SubjectPublicKeyInfoRef::try_from(block.contents())
                    .map_err(|e| format!("invalid SubjectPublicKeyInfo: {e}"))?;
                let family = Family::of(&spki.algorithm)?;
                let public =
                    spki.subject_public_key.as_bytes().ok_or("the public key is not a whole number of bytes")?;
                (family.algorithms(), family.decoding_key(public))
            }
            // PKCS#1 RSAPublicKey (RFC 8017 App. A.1.1): no algorithm identifier, the tag says RSA.
            "RSA PUBLIC KEY" => {
                let key = DecodingKey::from_rsa_pem(pem::encode(&block).as_bytes())
                    .map_err(|e| format!("invalid RSA public key: {e}"))?;
                (Family::Rsa.algorithms(), key)
            }
            // The public half verifies the one algorithm the key signs with, as in `esignsp token`.
            "PRIVATE KEY" | "RSA PRIVATE KEY" => {
                let private = PrivateKey::from_pem_block(&block)?;
                keys.extend(private.verification_key().restricted_to(allow_list));
                continue;
            }
            "CERTIFICATE" => return Err("certificates are not supported: give the PUBLIC KEY".to_owned()),
            other => return Err(format!("unsupported PEM block {other:?}")),
        };
        let algorithms = allowed(family, allow_list);
        if !algorithms.is_empty() {
            keys.push(VerificationKey { kid: None, algorithms, key });
        }
    }
    Ok(keys)
}

/// Parses a JWK or a JWK Set, skipping members that cannot verify signatures.
///
/// # Errors
/// A message when the JSON is neither a JWK nor a JWK Set.
pub fn keys_from_jwk_json(bytes: &[u8], allow_list: &[Algorithm]) -> Result<Vec<VerificationKey>, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let members = match value {
        Value::Object(mut o) if o.contains_key("keys") => match o.remove("keys") {
            Some(Value::Array(keys)) => keys,
            _ => return Err("\"keys\" must be an array".to_owned()),
        },
        jwk @ Value::Object(_) => vec![jwk],
        _ => return Err("expected a JWK or a JWK Set object".to_owned()),
    };
    Ok(members.into_iter().filter_map(|m| key_from_jwk(m, allow_list)).collect())
}

fn key_from_jwk(member: Value, allow_list: &[Algorithm]) -> Option<VerificationKey> {
    let jwk: Jwk = serde_json::from_value(member).ok()?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))) {
        return None;
    }
    let family = Family::of_jwk(&jwk.algorithm)?.algorithms();
    let algorithms = match jwk.common.key_algorithm {
        None => allowed(family, allow_list),
        Some(declared) => {
            let alg = signature_algorithm(declared)?;
            if !family.contains(&alg) {
                return None;
            }
            allowed(&[alg], allow_list)
        }
    };
    if algorithms.is_empty() {
        return None;
    }
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(VerificationKey { kid: jwk.common.key_id.clone(), algorithms, key })
}

fn signature_algorithm(declared: KeyAlgorithm) -> Option<Algorithm> {
    Some(match declared {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// A private key (PKCS#8 `PRIVATE KEY`, RFC 5958, or PKCS#1 `RSA PRIVATE KEY`): the signature
/// algorithm it signs with and its public half.
pub(crate) struct PrivateKey {
    /// `RS256`, `ES256`, `ES384` or `EdDSA`: the one algorithm a development key signs with.
    pub(crate) algorithm: Algorithm,
    public: DecodingKey,
}

impl PrivateKey {
    /// Reads the key of one PEM block; the type of a PKCS#8 key is its AlgorithmIdentifier.
    pub(crate) fn from_pem_block(block: &pem::Pem) -> Result<Self, String> {
        use ring::signature as sig;
        let der = block.contents();
        let rng = ring::rand::SystemRandom::new();
        let (family, public) = if block.tag() == "RSA PRIVATE KEY" {
            let pair = sig::RsaKeyPair::from_der(der).map_err(|e| format!("invalid RSA private key: {e}"))?;
            (Family::Rsa, pair.public_key().as_ref().to_vec())
        } else {
            let info = pkcs8::PrivateKeyInfo::try_from(der).map_err(|e| format!("invalid PKCS#8 private key: {e}"))?;
            let family = Family::of(&info.algorithm)?;
            let invalid = |e: ring::error::KeyRejected| format!("invalid {family:?} private key: {e}");
            let public = match family {
                Family::Rsa => sig::RsaKeyPair::from_pkcs8(der).map_err(invalid)?.public_key().as_ref().to_vec(),
                Family::P256 => sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                    .map_err(invalid)?
                    .public_key()
                    .as_ref()
                    .to_vec(),
                Family::P384 => sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P384_SHA384_FIXED_SIGNING, der, &rng)
                    .map_err(invalid)?
                    .public_key()
                    .as_ref()
                    .to_vec(),
                Family::Ed25519 => sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(invalid)?
                    .public_key()
                    .as_ref()
                    .to_vec(),
            };
            (family, public)
        };
        Ok(Self { algorithm: family.algorithms()[0], public: family.decoding_key(&public) })
    }

    /// The public half, verifying [`Self::algorithm`] only.
    pub(crate) fn verification_key(&self) -> VerificationKey {
        VerificationKey { kid: None, algorithms: vec![self.algorithm], key: self.public.clone() }
    }
}

#[cfg(test)]
mod tests {
    use spki::der::asn1::{AnyRef, BitStringRef};
    use spki::der::Encode;

    use super::*;

    const ALL: [Algorithm; 5] =
        [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA];

    fn spki_pem(algorithm: ObjectIdentifier, parameters: Option<AnyRef<'_>>, public: &[u8]) -> Vec<u8> {
        let info = SubjectPublicKeyInfoRef {
            algorithm: AlgorithmIdentifierRef { oid: algorithm, parameters },
            subject_public_key: BitStringRef::from_bytes(public).expect("bit string"),
        };
        pem::encode(&pem::Pem::new("PUBLIC KEY", info.to_der().expect("DER"))).into_bytes()
    }

    fn summary(keys: &[VerificationKey]) -> Vec<Vec<Algorithm>> {
        keys.iter().map(|k| k.algorithms().to_vec()).collect()
    }

    #[test]
    fn the_type_of_a_public_key_is_its_algorithm_identifier() {
        let rng = ring::rand::SystemRandom::new();
        let p384 =
            ring::signature::EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
                .expect("P-384");
        let p384 = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            p384.as_ref(),
            &rng,
        )
        .expect("pair");
        let p384 = spki_pem(EC_PUBLIC_KEY, Some(AnyRef::from(&SECP384R1)), p384.public_key().as_ref());
        assert_eq!(summary(&keys_from_pem(&p384, &ALL).expect("P-384")), [vec![Algorithm::ES384]], "P-384");

        let testkit = esignsp_testkit::keys();
        let expected = [Family::Rsa.algorithms(), Family::P256.algorithms(), Family::Ed25519.algorithms()];
        for (file, family) in testkit.public_key_files.iter().zip(expected) {
            let keys = keys_from_pem(&std::fs::read(file).expect("read"), family).expect("loads");
            assert_eq!(summary(&keys), [family.to_vec()], "{}", file.display());
        }
    }

    #[test]
    fn unsupported_key_types_and_curves_are_named() {
        let point = [4u8; 65];
        let cases: [(Vec<u8>, &str, &str); 5] = [
            (
                spki_pem(EC_PUBLIC_KEY, Some(AnyRef::from(&ObjectIdentifier::new_unwrap("1.3.132.0.35"))), &point),
                "unsupported EC curve 1.3.132.0.35",
                "P-521",
            ),
            (spki_pem(EC_PUBLIC_KEY, None, &point), "without its named curve", "EC without a curve"),
            (
                spki_pem(ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10"), None, &point),
                "unsupported key algorithm 1.2.840.113549.1.1.10",
                "RSASSA-PSS keys (an OID one byte from rsaEncryption)",
            ),
            (
                spki_pem(ObjectIdentifier::new_unwrap("1.3.101.113"), None, &[0; 57]),
                "unsupported key algorithm 1.3.101.113",
                "Ed448",
            ),
            (
                pem::encode(&pem::Pem::new("PUBLIC KEY", vec![0x30, 0x03, 0x02, 0x01, 0x00])).into_bytes(),
                "invalid SubjectPublicKeyInfo",
                "not a SubjectPublicKeyInfo",
            ),
        ];
        for (pem, message, why) in cases {
            let error = keys_from_pem(&pem, &ALL).expect_err(why);
            assert!(error.contains(message), "{why}: {error}");
        }
    }

    #[test]
    fn a_private_key_gives_its_algorithm_and_public_half() {
        let rng = ring::rand::SystemRandom::new();
        let ed = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("Ed25519");
        let p256 =
            ring::signature::EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .expect("P-256");
        let p384 =
            ring::signature::EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
                .expect("P-384");
        for (der, algorithm) in
            [(ed.as_ref(), Algorithm::EdDSA), (p256.as_ref(), Algorithm::ES256), (p384.as_ref(), Algorithm::ES384)]
        {
            let key = PrivateKey::from_pem_block(&pem::Pem::new("PRIVATE KEY", der)).expect("private key");
            assert_eq!(key.algorithm, algorithm);
            assert_eq!(key.verification_key().algorithms(), [algorithm]);
        }
        let x25519 = pkcs8::PrivateKeyInfo::new(
            AlgorithmIdentifierRef { oid: ObjectIdentifier::new_unwrap("1.3.101.110"), parameters: None },
            &[0x04, 0x20, 1, 2, 3],
        );
        let der = x25519.to_der().expect("DER");
        let error = PrivateKey::from_pem_block(&pem::Pem::new("PRIVATE KEY", der)).err().expect("X25519 is refused");
        assert!(error.contains("unsupported key algorithm 1.3.101.110"), "{error}");
    }
}
