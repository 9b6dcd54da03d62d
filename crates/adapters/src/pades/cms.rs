//! The CMS signature of a PAdES signature (ETSI EN 319 142-1 §5.2 and §6.3, over
//! ETSI EN 319 122-1 CAdES): a detached `SignedData` (RFC 5652 §5) built with the RustCrypto
//! `cms` builder.
//!
//! * `encapContentInfo`: `id-data` without content (the content is the PDF's byte range).
//! * `certificates`: the signer's certificate and the rest of the configured chain.
//! * one `SignerInfo` identified by `issuerAndSerialNumber` (version 1), whose signed
//!   attributes are exactly content-type (RFC 5652 §11.1), message-digest (§11.2) and
//!   signing-certificate-v2 (RFC 5035 §3) — no signing-time (EN 319 142-1 §6.3: the claimed
//!   time is the signature dictionary's `/M`). The builder signs their DER as a SET
//!   (RFC 5652 §5.4).

use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::ContentInfo;
use cms::signed_data::{EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo};
use const_oid::db::{rfc5911, rfc5912};
use der::asn1::{BitString, OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use sha2::Digest;
use spki::{AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, SignatureBitStringEncoding};
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;

use super::credentials::SigningCredentials;

/// ESSCertIDv2 (RFC 5035 §4): `hashAlgorithm` is left out, its DEFAULT `id-sha256` (DER
/// omits a DEFAULT value, X.690 §11.5), so `cert_hash` is the SHA-256 of the certificate's
/// DER.
#[derive(Sequence)]
struct EssCertIdV2 {
    cert_hash: OctetString,
    issuer_serial: IssuerSerial,
}

/// IssuerSerial (RFC 5035 §4): the certificate's issuer as a `directoryName` and its serial.
#[derive(Sequence)]
struct IssuerSerial {
    issuer: Vec<GeneralName>,
    serial_number: SerialNumber,
}

/// SigningCertificateV2 (RFC 5035 §3), without policies.
#[derive(Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

/// The signing-certificate-v2 attribute (`id-aa-signingCertificateV2`,
/// 1.2.840.113549.1.9.16.2.47) naming `certificate`.
fn signing_certificate_v2(certificate: &Certificate) -> der::Result<Attribute> {
    let value = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            cert_hash: OctetString::new(sha2::Sha256::digest(certificate.to_der()?).to_vec())?,
            issuer_serial: IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(certificate.tbs_certificate.issuer.clone())],
                serial_number: certificate.tbs_certificate.serial_number.clone(),
            },
        }],
    };
    let mut values = SetOfVec::new();
    values.insert(Any::encode_from(&value)?)?;
    Ok(Attribute { oid: rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2, values })
}

/// The credentials as the `cms` builder's signer.
struct CmsSigner<'a>(&'a SigningCredentials);

/// A signature value as the builder takes it.
struct SignatureValue(Vec<u8>);

impl SignatureBitStringEncoding for SignatureValue {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

impl signature::Keypair for CmsSigner<'_> {
    type VerifyingKey = spki::SubjectPublicKeyInfoOwned;

    fn verifying_key(&self) -> Self::VerifyingKey {
        self.0.certificate().tbs_certificate.subject_public_key_info.clone()
    }
}

impl DynSignatureAlgorithmIdentifier for CmsSigner<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.0.signature_algorithm()?)
    }
}

impl signature::Signer<SignatureValue> for CmsSigner<'_> {
    fn try_sign(&self, message: &[u8]) -> Result<SignatureValue, signature::Error> {
        self.0.sign(message).map(SignatureValue).map_err(|_| signature::Error::new())
    }
}

/// The digest of `parts` with the credentials' digest algorithm.
pub(crate) fn digest(credentials: &SigningCredentials, parts: &[&[u8]]) -> Vec<u8> {
    fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
        let mut hasher = D::new();
        for part in parts {
            hasher.update(part);
        }
        hasher.finalize().to_vec()
    }
    if credentials.digest_algorithm() == rfc5912::ID_SHA_384 {
        run::<sha2::Sha384>(parts)
    } else {
        run::<sha2::Sha256>(parts)
    }
}

/// An upper bound of the DER length of [`signed_data`]: the certificates, the signature
/// value and 2 KiB for the structure and attributes.
pub(crate) fn max_len(credentials: &SigningCredentials) -> usize {
    let certificates: usize = std::iter::once(credentials.certificate())
        .chain(credentials.chain())
        .map(|c| c.encoded_len().map_or(8192, |l| usize::try_from(u32::from(l)).unwrap_or(8192)))
        .sum();
    certificates + credentials.max_signature_len() + 2048
}

/// Why the CMS could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CmsError {
    /// Encoding or building failed.
    #[error("building the CMS SignedData failed: {0}")]
    Build(String),
}

/// The DER of a `ContentInfo` holding the detached `SignedData` over content whose digest
/// (with [`SigningCredentials::digest_algorithm`]) is `content_digest`.
pub(crate) fn signed_data(credentials: &SigningCredentials, content_digest: &[u8]) -> Result<Vec<u8>, CmsError> {
    let build = |e: &dyn std::fmt::Display| CmsError::Build(e.to_string());
    let certificate = credentials.certificate();
    let digest_algorithm = AlgorithmIdentifierOwned { oid: credentials.digest_algorithm(), parameters: None };
    let content = EncapsulatedContentInfo { econtent_type: rfc5911::ID_DATA, econtent: None };
    let signer = CmsSigner(credentials);
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: certificate.tbs_certificate.issuer.clone(),
        serial_number: certificate.tbs_certificate.serial_number.clone(),
    });
    let mut signer_info =
        SignerInfoBuilder::new(&signer, sid, digest_algorithm.clone(), &content, Some(content_digest))
            .map_err(|e| build(&e))?;
    signer_info
        .add_signed_attribute(signing_certificate_v2(certificate).map_err(|e| build(&e))?)
        .map_err(|e| build(&e))?;
    let mut builder = SignedDataBuilder::new(&content);
    builder.add_digest_algorithm(digest_algorithm).map_err(|e| build(&e))?;
    for c in std::iter::once(certificate).chain(credentials.chain()) {
        builder.add_certificate(CertificateChoices::Certificate(c.clone())).map_err(|e| build(&e))?;
    }
    builder.add_signer_info::<_, SignatureValue>(signer_info).map_err(|e| build(&e))?;
    builder.build().map_err(|e| build(&e))?.to_der().map_err(|e| build(&e))
}

/// `id-aa-signatureTimeStampToken` (RFC 3161 Appendix A; ETSI EN 319 122-1 §5.3).
const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");

/// The only `SignerInfo` of the `SignedData` in the `ContentInfo` `der`, and the `SignedData`.
fn signer_info(der: &[u8]) -> Result<(SignedData, SignerInfo), CmsError> {
    let build = |e: &dyn std::fmt::Display| CmsError::Build(e.to_string());
    let info = ContentInfo::from_der(der).map_err(|e| build(&e))?;
    let signed: SignedData = info.content.decode_as().map_err(|e| build(&e))?;
    let signer = signed.signer_infos.0.get(0).cloned().ok_or_else(|| CmsError::Build("no SignerInfo".into()))?;
    Ok((signed, signer))
}

/// The signature value of the `SignerInfo` in `der` (the octets of its `signature` OCTET
/// STRING): what a signature time-stamp is over (ETSI EN 319 122-1 §5.3).
pub(crate) fn signature_value(der: &[u8]) -> Result<Vec<u8>, CmsError> {
    Ok(signer_info(der)?.1.signature.as_bytes().to_vec())
}

/// `der` (a `ContentInfo` from [`signed_data`]) with the signature time-stamp `token` as the
/// `SignerInfo`'s unsigned attribute `id-aa-signatureTimeStampToken`. Everything signed stays
/// byte for byte (DER decodes and encodes back to the same octets).
pub(crate) fn with_signature_timestamp(der: &[u8], token: &Any) -> Result<Vec<u8>, CmsError> {
    let build = |e: &dyn std::fmt::Display| CmsError::Build(e.to_string());
    let (mut signed, mut signer) = signer_info(der)?;
    let mut values = SetOfVec::new();
    values.insert(token.clone()).map_err(|e| build(&e))?;
    let mut attributes = signer.unsigned_attrs.take().map(SetOfVec::into_vec).unwrap_or_default();
    attributes.push(Attribute { oid: ID_AA_SIGNATURE_TIME_STAMP_TOKEN, values });
    signer.unsigned_attrs = Some(SetOfVec::try_from(attributes).map_err(|e| build(&e))?);
    signed.signer_infos = cms::signed_data::SignerInfos(SetOfVec::try_from(vec![signer]).map_err(|e| build(&e))?);
    let info = ContentInfo {
        content_type: rfc5911::ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(|e| build(&e))?,
    };
    info.to_der().map_err(|e| build(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pades::credentials::RsaPadding;

    fn credentials() -> SigningCredentials {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, "cms test");
        let certificate = params.self_signed(&key).expect("certificate");
        SigningCredentials::from_pem(key.serialize_pem().as_bytes(), certificate.pem().as_bytes(), RsaPadding::Pkcs1v15)
            .expect("credentials")
    }

    #[test]
    fn the_signed_attributes_are_content_type_message_digest_and_signing_certificate_v2_only() {
        let credentials = credentials();
        let digest = digest(&credentials, &[b"part one", b"part two"]);
        let der = signed_data(&credentials, &digest).expect("signed data");
        assert!(der.len() <= max_len(&credentials), "the estimate bounds the size");
        let info = ContentInfo::from_der(&der).expect("ContentInfo");
        assert_eq!(info.content_type, rfc5911::ID_SIGNED_DATA);
        let signed: SignedData = info.content.decode_as().expect("SignedData");
        assert!(signed.encap_content_info.econtent.is_none(), "detached");
        assert_eq!(signed.encap_content_info.econtent_type, rfc5911::ID_DATA);
        let signer = signed.signer_infos.0.get(0).expect("one signer");
        assert!(matches!(signer.sid, SignerIdentifier::IssuerAndSerialNumber(_)));
        let attributes: Vec<_> =
            signer.signed_attrs.as_ref().expect("signed attributes").iter().map(|a| a.oid).collect();
        let mut expected =
            vec![rfc5911::ID_CONTENT_TYPE, rfc5911::ID_MESSAGE_DIGEST, rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2];
        let mut sorted = attributes.clone();
        sorted.sort();
        expected.sort();
        assert_eq!(sorted, expected, "no signing-time (ETSI EN 319 142-1 §6.3)");
        assert!(signer.unsigned_attrs.is_none());
        let message_digest = signer
            .signed_attrs
            .as_ref()
            .and_then(|a| a.iter().find(|a| a.oid == rfc5911::ID_MESSAGE_DIGEST))
            .and_then(|a| a.values.get(0))
            .map(|v| v.value().to_vec());
        assert_eq!(message_digest, Some(sha2::Sha256::digest(b"part onepart two").to_vec()));
    }
}
