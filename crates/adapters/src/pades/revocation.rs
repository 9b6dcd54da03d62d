//! The validation data of PAdES B-LT (ETSI EN 319 142-1 §6.5, §5.4.2): the certificates of the
//! signer's and the TSA's chains, and for every certificate but a trust anchor its revocation
//! status — an OCSP response (RFC 6960) from the responder its authority information access
//! names (RFC 5280 §4.2.2.1) and the CRL (RFC 5280 §5) of its CRL distribution points
//! (§4.2.1.13) — with the OCSP responders' certificates.
//!
//! OCSP requests (RFC 6960 §4.1) identify the certificate by SHA-1 hashes of its issuer's name
//! and key (the CertID every responder understands) and carry a random nonce (§4.4.1); they
//! are POSTed as `application/ocsp-request` (RFC 6960 Appendix A.1). An answer is used only
//! when its status is `successful`, it is a basic response whose nonce (when echoed) is the
//! request's, and it holds a `good` status for the certificate. A CRL is fetched with GET and
//! must parse as a `CertificateList` not listing the certificate. A responder or repository that
//! is down or answers otherwise is [`SigningError::RevocationUnavailable`]; a certificate found
//! revoked is [`SigningError::Credentials`].

use const_oid::db::{rfc5280, rfc5912, rfc6960};
use der::asn1::OctetString;
use der::{Decode, Encode, Tagged};
use esignsp_domain::SigningError;
use rand::RngCore;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityInfoAccessSyntax, CrlDistributionPoints};
use x509_cert::ext::Extension;
use x509_cert::Certificate;
use x509_ocsp::{CertId, OcspRequest, OcspResponse, OcspResponseStatus, Request, TbsRequest, Version};

/// BasicOCSPResponse (RFC 6960 §4.2.1) as read here: `x509_ocsp`'s, with the times and the
/// certificate status left as they came. RFC 6960 allows fractional seconds in its
/// GeneralizedTimes, which `der`'s `GeneralizedTime` refuses (certomancer sends them).
#[derive(Clone, Debug, der::Sequence)]
struct BasicOcspResponse {
    tbs_response_data: ResponseData,
    signature_algorithm: spki::AlgorithmIdentifierOwned,
    signature: der::asn1::BitString,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    certs: Option<Vec<Certificate>>,
}

/// ResponseData (RFC 6960 §4.2.1), see [`BasicOcspResponse`].
#[derive(Clone, Debug, der::Sequence)]
struct ResponseData {
    #[asn1(context_specific = "0", default = "Default::default", tag_mode = "EXPLICIT")]
    version: Version,
    responder_id: x509_ocsp::ResponderId,
    produced_at: der::Any,
    responses: Vec<SingleResponse>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    response_extensions: Option<x509_cert::ext::Extensions>,
}

/// SingleResponse (RFC 6960 §4.2.1), see [`BasicOcspResponse`]. `cert_status` is the CHOICE
/// `good [0] IMPLICIT NULL`, `revoked [1] IMPLICIT RevokedInfo`, `unknown [2] IMPLICIT
/// UnknownInfo`.
#[derive(Clone, Debug, der::Sequence)]
struct SingleResponse {
    cert_id: CertId,
    cert_status: der::Any,
    this_update: der::Any,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    next_update: Option<der::Any>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    single_extensions: Option<x509_cert::ext::Extensions>,
}

fn unavailable(detail: impl Into<String>) -> SigningError {
    SigningError::RevocationUnavailable(detail.into().into())
}

fn unexpected(e: impl std::error::Error + Send + Sync + 'static) -> SigningError {
    SigningError::Unexpected(Box::new(e))
}

/// Validation data for a DSS (ISO 32000-2 §12.8.4.3): DER certificates, OCSP responses and
/// CRLs, each once.
#[derive(Debug, Default, Clone)]
pub(crate) struct ValidationData {
    /// DER `Certificate`s.
    pub(crate) certificates: Vec<Vec<u8>>,
    /// DER `OCSPResponse`s (the whole response, RFC 6960 §4.2.1).
    pub(crate) ocsp_responses: Vec<Vec<u8>>,
    /// DER `CertificateList`s.
    pub(crate) crls: Vec<Vec<u8>>,
}

fn push_once(list: &mut Vec<Vec<u8>>, item: Vec<u8>) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The extension `oid` of `certificate`, if present.
fn extension<'a>(certificate: &'a Certificate, oid: &const_oid::ObjectIdentifier) -> Option<&'a Extension> {
    certificate.tbs_certificate.extensions.iter().flatten().find(|e| &e.extn_id == oid)
}

fn uri(name: &GeneralName) -> Option<url::Url> {
    match name {
        GeneralName::UniformResourceIdentifier(uri) => url::Url::parse(uri.as_ref()).ok(),
        _ => None,
    }
}

/// The OCSP responder URLs of `certificate`'s authority information access (RFC 5280
/// §4.2.2.1, `id-ad-ocsp`).
fn ocsp_urls(certificate: &Certificate) -> Vec<url::Url> {
    let Some(e) = extension(certificate, &rfc5280::ID_PE_AUTHORITY_INFO_ACCESS) else { return Vec::new() };
    let Ok(access) = AuthorityInfoAccessSyntax::from_der(e.extn_value.as_bytes()) else { return Vec::new() };
    access.0.iter().filter(|a| a.access_method == rfc5280::ID_AD_OCSP).filter_map(|a| uri(&a.access_location)).collect()
}

/// The CRL URLs of `certificate`'s distribution points (RFC 5280 §4.2.1.13, full names).
fn crl_urls(certificate: &Certificate) -> Vec<url::Url> {
    let Some(e) = extension(certificate, &rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS) else { return Vec::new() };
    let Ok(points) = CrlDistributionPoints::from_der(e.extn_value.as_bytes()) else { return Vec::new() };
    points
        .0
        .iter()
        .filter_map(|p: &DistributionPoint| match &p.distribution_point {
            Some(DistributionPointName::FullName(names)) => names.iter().find_map(uri),
            _ => None,
        })
        .collect()
}

fn is_self_issued(certificate: &Certificate) -> bool {
    certificate.tbs_certificate.issuer == certificate.tbs_certificate.subject
}

/// Whether `certificate` is an OCSP responder's marked `id-pkix-ocsp-nocheck` (RFC 6960
/// §4.2.2.2.1): its status is not checked.
fn is_ocsp_no_check(certificate: &Certificate) -> bool {
    extension(certificate, &rfc6960::ID_PKIX_OCSP_NOCHECK).is_some()
}

/// The CertID of `certificate` issued by `issuer` (RFC 6960 §4.1.1) with SHA-1.
fn cert_id(certificate: &Certificate, issuer: &Certificate) -> Result<CertId, SigningError> {
    let sha1 = |data: &[u8]| ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref().to_vec();
    let name = issuer.tbs_certificate.subject.to_der().map_err(unexpected)?;
    let key = issuer.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes();
    Ok(CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: rfc5912::ID_SHA_1,
            parameters: Some(der::asn1::Null.into()),
        },
        issuer_name_hash: OctetString::new(sha1(&name)).map_err(unexpected)?,
        issuer_key_hash: OctetString::new(sha1(key)).map_err(unexpected)?,
        serial_number: certificate.tbs_certificate.serial_number.clone(),
    })
}

/// Collects the validation data of `chains` (each certificate once, in any order; the trust
/// anchors among them are the self-issued ones).
///
/// # Errors
/// [`SigningError::RevocationUnavailable`] when a certificate's issuer is not among them, a
/// certificate (other than a trust anchor or an OCSP no-check responder) names neither an OCSP
/// responder nor a CRL, or a responder or repository cannot be reached or answers otherwise;
/// [`SigningError::Credentials`] when a certificate is revoked.
pub(crate) async fn collect(client: &reqwest::Client, chains: &[Certificate]) -> Result<ValidationData, SigningError> {
    let mut data = ValidationData::default();
    let mut known: Vec<Certificate> = Vec::new();
    for c in chains {
        if !known.contains(c) {
            known.push(c.clone());
        }
    }
    let mut checked: Vec<Certificate> = Vec::new();
    let mut index = 0;
    // `known` grows with the OCSP responders' certificates, which are checked in turn.
    while index < known.len() {
        let certificate = known[index].clone();
        index += 1;
        push_once(&mut data.certificates, certificate.to_der().map_err(unexpected)?);
        if is_self_issued(&certificate) || is_ocsp_no_check(&certificate) || checked.contains(&certificate) {
            continue;
        }
        checked.push(certificate.clone());
        let subject = certificate.tbs_certificate.subject.to_string();
        let issuer = known
            .iter()
            .find(|i| i.tbs_certificate.subject == certificate.tbs_certificate.issuer)
            .cloned()
            .ok_or_else(|| unavailable(format!("the issuer of {subject} is not in the chain")))?;
        let (ocsp, crl) = (ocsp_urls(&certificate), crl_urls(&certificate));
        if ocsp.is_empty() && crl.is_empty() {
            return Err(unavailable(format!("{subject} names no OCSP responder and no CRL")));
        }
        for url in ocsp {
            let (response, responders) = fetch_ocsp(client, &url, &certificate, &issuer).await?;
            push_once(&mut data.ocsp_responses, response);
            for responder in responders {
                if !known.contains(&responder) {
                    known.push(responder);
                }
            }
        }
        for url in crl {
            push_once(&mut data.crls, fetch_crl(client, &url, &certificate).await?);
        }
    }
    Ok(data)
}

/// Asks the OCSP responder at `url` for the status of `certificate`: the DER of the whole
/// response and the certificates it carries.
async fn fetch_ocsp(
    client: &reqwest::Client,
    url: &url::Url,
    certificate: &Certificate,
    issuer: &Certificate,
) -> Result<(Vec<u8>, Vec<Certificate>), SigningError> {
    let id = cert_id(certificate, issuer)?;
    let mut nonce = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut nonce);
    let nonce_value = OctetString::new(nonce.to_vec()).map_err(unexpected)?;
    let nonce_extension = Extension {
        extn_id: rfc6960::ID_PKIX_OCSP_NONCE,
        critical: false,
        extn_value: OctetString::new(nonce_value.to_der().map_err(unexpected)?).map_err(unexpected)?,
    };
    let request = OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request { req_cert: id.clone(), single_request_extensions: None }],
            request_extensions: Some(vec![nonce_extension]),
        },
        optional_signature: None,
    };
    let body = request.to_der().map_err(unexpected)?;
    let response = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/ocsp-request")
        .header(reqwest::header::ACCEPT, "application/ocsp-response")
        .body(body)
        .send()
        .await
        .map_err(|e| SigningError::RevocationUnavailable(Box::new(e)))?;
    if !response.status().is_success() {
        return Err(unavailable(format!("the OCSP responder at {url} answered HTTP {}", response.status())));
    }
    let der = response.bytes().await.map_err(|e| SigningError::RevocationUnavailable(Box::new(e)))?.to_vec();
    let answer = OcspResponse::from_der(&der).map_err(|e| unavailable(format!("{url} sent no OCSPResponse: {e}")))?;
    if answer.response_status != OcspResponseStatus::Successful {
        return Err(unavailable(format!("the OCSP responder at {url} answered {:?}", answer.response_status)));
    }
    let bytes = answer.response_bytes.ok_or_else(|| unavailable(format!("{url}: a response without bytes")))?;
    if bytes.response_type != rfc6960::ID_PKIX_OCSP_BASIC {
        return Err(unavailable(format!("{url}: not a basic OCSP response")));
    }
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes())
        .map_err(|e| unavailable(format!("{url}: the basic OCSP response is unreadable: {e}")))?;
    if let Some(echoed) =
        basic.tbs_response_data.response_extensions.iter().flatten().find(|e| e.extn_id == rfc6960::ID_PKIX_OCSP_NONCE)
    {
        let echoed = OctetString::from_der(echoed.extn_value.as_bytes()).ok();
        if echoed.as_ref() != Some(&nonce_value) {
            return Err(unavailable(format!("{url}: the response's nonce is not the request's")));
        }
    }
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| r.cert_id == id)
        .ok_or_else(|| unavailable(format!("{url}: no status for the certificate asked about")))?;
    match single.cert_status.tag() {
        der::Tag::ContextSpecific { number, .. } if number == der::TagNumber::N0 => {}
        der::Tag::ContextSpecific { number, .. } if number == der::TagNumber::N1 => {
            return Err(SigningError::Credentials(
                format!("{} is revoked (OCSP)", certificate.tbs_certificate.subject).into(),
            ))
        }
        _ => return Err(unavailable(format!("{url}: the certificate's status is unknown"))),
    }
    Ok((der, basic.certs.unwrap_or_default()))
}

/// Fetches the CRL at `url` and checks it does not list `certificate`.
async fn fetch_crl(
    client: &reqwest::Client,
    url: &url::Url,
    certificate: &Certificate,
) -> Result<Vec<u8>, SigningError> {
    let response =
        client.get(url.clone()).send().await.map_err(|e| SigningError::RevocationUnavailable(Box::new(e)))?;
    if !response.status().is_success() {
        return Err(unavailable(format!("the CRL at {url} answered HTTP {}", response.status())));
    }
    let der = response.bytes().await.map_err(|e| SigningError::RevocationUnavailable(Box::new(e)))?.to_vec();
    let crl = CertificateList::from_der(&der).map_err(|e| unavailable(format!("{url} is not a CRL: {e}")))?;
    if crl.tbs_cert_list.issuer != certificate.tbs_certificate.issuer {
        return Err(unavailable(format!("the CRL at {url} is not of the certificate's issuer")));
    }
    let serial = &certificate.tbs_certificate.serial_number;
    if crl.tbs_cert_list.revoked_certificates.iter().flatten().any(|r| &r.serial_number == serial) {
        return Err(SigningError::Credentials(
            format!("{} is revoked (CRL)", certificate.tbs_certificate.subject).into(),
        ));
    }
    Ok(der)
}
