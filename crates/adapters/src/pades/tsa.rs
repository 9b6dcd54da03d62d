//! An RFC 3161 time-stamp client: the signature time-stamp of PAdES B-T (ETSI EN 319 142-1
//! §6.4, over ETSI EN 319 122-1 §5.3: the `signature-time-stamp` unsigned attribute) and the
//! document time-stamp of B-LTA (EN 319 142-1 §5.4).
//!
//! The request (RFC 3161 §2.4.1) carries the SHA-256 imprint, a random 64-bit nonce and
//! `certReq` TRUE, POSTed as `application/timestamp-query` (RFC 3161 §3.4). The answer is
//! accepted only with the status `granted` or `grantedWithMods` (§2.4.2), a token whose
//! `TSTInfo` has the request's imprint and nonce, and whose signer certificate carries the
//! critical `id-kp-timeStamping` extended key usage (§2.3). Anything else, or no answer in
//! time, is [`SigningError::TimestampUnavailable`].

use cmpv2::status::PkiStatus;
use cms::signed_data::{SignedData, SignerIdentifier};
use const_oid::db::{rfc5280, rfc5911, rfc5912};
use const_oid::ObjectIdentifier;
use der::asn1::{Int, OctetString};
use der::{Any, Decode, Encode, Tagged};
use esignsp_domain::SigningError;
use rand::RngCore;
use sha2::Digest;
use spki::AlgorithmIdentifier;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::Certificate;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion};

/// `id-ct-TSTInfo` (RFC 3161 §2.4.2): the content type of a time-stamp token.
pub(crate) const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");

/// TSTInfo (RFC 3161 §2.4.2) as read here: `x509_tsp::TstInfo` with `genTime` left as it
/// came, since RFC 3161 allows fractional seconds there, which `der`'s `GeneralizedTime`
/// (X.690 DER without fractions) refuses — many TSAs, certomancer's included, send them.
#[derive(Clone, Debug, der::Sequence)]
struct TstInfo {
    version: TspVersion,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint,
    serial_number: Int,
    gen_time: Any,
    #[asn1(optional = "true")]
    accuracy: Option<x509_tsp::Accuracy>,
    #[asn1(default = "Default::default")]
    ordering: bool,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<x509_cert::ext::pkix::name::GeneralName>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    extensions: Option<x509_cert::ext::Extensions>,
}

fn unavailable(detail: impl Into<String>) -> SigningError {
    SigningError::TimestampUnavailable(detail.into().into())
}

/// A time-stamp token (RFC 3161 §2.4.2) as the TSA sent it.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// The DER of the token, a `ContentInfo` holding a `SignedData` over a `TSTInfo`.
    pub(crate) der: Vec<u8>,
    /// The certificates the token carries (the TSA's, and perhaps its chain).
    pub(crate) certificates: Vec<Certificate>,
}

/// The token as an ASN.1 value, to put into an attribute.
impl Token {
    pub(crate) fn to_any(&self) -> Result<Any, SigningError> {
        Any::from_der(&self.der).map_err(|e| SigningError::Unexpected(Box::new(e)))
    }
}

/// Asks the TSA at `url` for a time-stamp token over the SHA-256 digest of `data`.
///
/// # Errors
/// [`SigningError::TimestampUnavailable`] when the TSA cannot be reached in time, answers with
/// an HTTP error or a status other than granted, or its token does not match the request.
pub(crate) async fn timestamp(client: &reqwest::Client, url: &url::Url, data: &[&[u8]]) -> Result<Token, SigningError> {
    let mut hasher = sha2::Sha256::new();
    for part in data {
        hasher.update(part);
    }
    let imprint = MessageImprint {
        hash_algorithm: AlgorithmIdentifier { oid: rfc5912::ID_SHA_256, parameters: None },
        hashed_message: OctetString::new(hasher.finalize().to_vec())
            .map_err(|e| SigningError::Unexpected(Box::new(e)))?,
    };
    let mut nonce = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut nonce);
    nonce[0] &= 0x7f; // a positive INTEGER
    nonce[0] |= 0x01; // of exactly eight octets (no leading zero to strip)
    let nonce = Int::new(&nonce).map_err(|e| SigningError::Unexpected(Box::new(e)))?;
    let request = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: imprint.clone(),
        req_policy: None,
        nonce: Some(nonce.clone()),
        cert_req: true,
        extensions: None,
    };
    let body = request.to_der().map_err(|e| SigningError::Unexpected(Box::new(e)))?;
    let response = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/timestamp-query")
        .header(reqwest::header::ACCEPT, "application/timestamp-reply")
        .body(body)
        .send()
        .await
        .map_err(|e| SigningError::TimestampUnavailable(Box::new(e)))?;
    if !response.status().is_success() {
        return Err(unavailable(format!("the TSA at {url} answered HTTP {}", response.status())));
    }
    let bytes = response.bytes().await.map_err(|e| SigningError::TimestampUnavailable(Box::new(e)))?;
    check_response(&bytes, &imprint, &nonce)
}

/// The token of a `TimeStampResp` (`der`) answering a request with `imprint` and `nonce`.
fn check_response(der: &[u8], imprint: &MessageImprint, nonce: &Int) -> Result<Token, SigningError> {
    let response = TimeStampResp::from_der(der)
        .map_err(|e| unavailable(format!("the TSA's answer is not a TimeStampResp: {e}")))?;
    if !matches!(response.status.status, PkiStatus::Accepted | PkiStatus::GrantedWithMods) {
        return Err(unavailable(format!("the TSA refused the request: {:?}", response.status.status)));
    }
    let token = response.time_stamp_token.ok_or_else(|| unavailable("the TSA's answer has no token"))?;
    if token.content_type != rfc5911::ID_SIGNED_DATA {
        return Err(unavailable("the token is not a SignedData"));
    }
    let signed: SignedData =
        token.content.decode_as().map_err(|e| unavailable(format!("the token is not a SignedData: {e}")))?;
    if signed.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err(unavailable("the token does not hold a TSTInfo"));
    }
    let content = signed.encap_content_info.econtent.as_ref().ok_or_else(|| unavailable("the token has no TSTInfo"))?;
    let info =
        TstInfo::from_der(content.value()).map_err(|e| unavailable(format!("the TSTInfo is unreadable: {e}")))?;
    if info.gen_time.tag() != der::Tag::GeneralizedTime {
        return Err(unavailable("the TSTInfo's genTime is not a GeneralizedTime"));
    }
    if info.message_imprint.hash_algorithm.oid != imprint.hash_algorithm.oid
        || info.message_imprint.hashed_message != imprint.hashed_message
    {
        return Err(unavailable("the token's message imprint is not the one asked for"));
    }
    if info.nonce.as_ref() != Some(nonce) {
        return Err(unavailable("the token's nonce is not the request's"));
    }
    let certificates: Vec<Certificate> = signed
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|c| match c {
            cms::cert::CertificateChoices::Certificate(c) => Some(c.clone()),
            cms::cert::CertificateChoices::Other(_) => None,
        })
        .collect();
    let signer = signed.signer_infos.0.get(0).ok_or_else(|| unavailable("the token has no signer"))?;
    let tsa = certificates
        .iter()
        .find(|c| match &signer.sid {
            SignerIdentifier::IssuerAndSerialNumber(id) => {
                c.tbs_certificate.issuer == id.issuer && c.tbs_certificate.serial_number == id.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(_) => true,
        })
        .ok_or_else(|| unavailable("the token does not carry the TSA's certificate (certReq was set)"))?;
    if !has_critical_time_stamping_usage(tsa) {
        return Err(unavailable("the TSA's certificate lacks the critical id-kp-timeStamping usage (RFC 3161 §2.3)"));
    }
    let der = token.to_der().map_err(|e| SigningError::Unexpected(Box::new(e)))?;
    Ok(Token { der, certificates })
}

/// Whether `certificate` has a critical extended key usage of exactly `id-kp-timeStamping`
/// (RFC 3161 §2.3).
fn has_critical_time_stamping_usage(certificate: &Certificate) -> bool {
    certificate.tbs_certificate.extensions.iter().flatten().any(|e| {
        e.extn_id == rfc5280::ID_CE_EXT_KEY_USAGE
            && e.critical
            && ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).is_ok_and(|u| u.0 == [rfc5280::ID_KP_TIME_STAMPING])
    })
}
