//! The PAdES levels B-B, B-T, B-LT and B-LTA against a real PKI and independent validators.
//!
//! The PKI is certomancer's animator (`scripts/pki.sh`, started by `scripts/test.sh`): a root
//! and an intermediate CA, a time-stamping authority and OCSP responders and CRLs for every
//! non-root certificate, at `ESIGNSP_TEST_PKI_URL`; the signers' keys and chains are in
//! `ESIGNSP_TEST_PKI_DIR`. Without them these tests fail (they do not skip).
//!
//! Each level signs four kinds of PDF — a PDF 1.4 with a classic cross-reference table, a
//! PDF 1.5 with object and cross-reference streams, a 12-page one, and one already signed at
//! the same level by another signer — and every result must pass `qpdf --check`, poppler's
//! `pdfsig`, `pyhanko sign validate` and `adesverify` (with revocation checks), and show the
//! level asked for (`scripts/pades_profile.py`, pyHanko's TIMESTAMP_TOKEN for B-T up); from
//! B-LT up pyHanko's AdES long-term validation must pass offline, from the file's DSS alone
//! (`scripts/pades_ltv.py`), and for B-LTA also its AdES LTA validation, now and five years on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use esignsp_adapters::pades::{PadesOptions, PadesSetupError, PadesSigner, RsaPadding, SigningCredentials};
use esignsp_domain::{DocumentSigner, SignatureLevel, SignatureRequest, SigningError};
use esignsp_testkit::pdf::{multi_page_pdf, pdfsig, run, scratch, script, venv_tool, with_object_streams};

/// The certomancer PKI `scripts/pki.sh` started.
struct Pki {
    url: String,
    dir: PathBuf,
}

fn pki() -> Pki {
    let (Some(url), Some(dir)) = (std::env::var_os("ESIGNSP_TEST_PKI_URL"), std::env::var_os("ESIGNSP_TEST_PKI_DIR"))
    else {
        panic!(
            "ESIGNSP_TEST_PKI_URL and ESIGNSP_TEST_PKI_DIR are not set: run scripts/test.sh, or \
             `bash scripts/pki.sh -- cargo test -p esignsp-adapters --test pades_levels`"
        );
    };
    Pki { url: url.to_string_lossy().into_owned(), dir: PathBuf::from(dir) }
}

impl Pki {
    fn root(&self) -> PathBuf {
        self.dir.join("root.pem")
    }

    fn tsa_url(&self) -> url::Url {
        url::Url::parse(&format!("{}/tsa/tsa", self.url)).expect("TSA URL")
    }

    fn credentials(&self, who: &str) -> SigningCredentials {
        let key = std::fs::read(self.dir.join(format!("{who}.key.pem"))).expect("signer key");
        let chain = std::fs::read(self.dir.join(format!("{who}.chain.pem"))).expect("signer chain");
        SigningCredentials::from_pem(&key, &chain, RsaPadding::Pkcs1v15).expect("credentials")
    }

    fn signer(&self, who: &str, level: SignatureLevel) -> PadesSigner {
        let options = PadesOptions { level, tsa_url: Some(self.tsa_url()), timeout: Duration::from_secs(20) };
        PadesSigner::with_options(self.credentials(who), options).expect("signer")
    }
}

fn request() -> SignatureRequest {
    SignatureRequest {
        time: time::OffsetDateTime::now_utc(),
        signer_name: Some("Level Tester".into()),
        reason: None,
        location: Some("Barcelona".into()),
    }
}

/// Runs every validator on `file`, which holds `signatures` approval signatures at `level`,
/// asserting each accepts it at that level; returns what they printed.
fn validate(dir: &Path, pki: &Pki, file: &Path, level: SignatureLevel, signatures: usize) -> String {
    let mut report = String::new();
    let root = pki.root();

    let (ok, qpdf) = run(Command::new("qpdf").arg("--check").arg(file));
    assert!(ok && qpdf.contains("No syntax or stream encoding errors found"), "qpdf --check:\n{qpdf}");
    report.push_str(&format!("-- qpdf --check\n{qpdf}"));

    let pdfsig = pdfsig(dir, &root, file);
    report.push_str(&format!("-- pdfsig\n{pdfsig}"));
    assert_eq!(pdfsig.matches("Signature Type: ETSI.CAdES.detached").count(), signatures, "pdfsig:\n{pdfsig}");
    assert!(pdfsig.matches("Signature Validation: Signature is Valid.").count() >= signatures, "pdfsig:\n{pdfsig}");
    assert!(!pdfsig.contains("Signature is Invalid") && !pdfsig.contains("Digest Mismatch"), "pdfsig:\n{pdfsig}");
    // pdfsig (poppler 22.12, NSS) checks each signer's chain, fetching OCSP from the
    // certificates' AIA URL: the animator answers in whole seconds (scripts/pki/animate.py),
    // the only form NSS reads. With OCSP off (-no-ocsp) pdfsig 22.12 says "Unknown issue…" for
    // every chain (it reads NSS's leftover error code after a successful check).
    let verdicts: Vec<&str> =
        pdfsig.lines().filter_map(|l| l.trim().strip_prefix("- Certificate Validation: ")).collect();
    assert_eq!(verdicts.len(), signatures, "pdfsig:\n{pdfsig}");
    assert!(verdicts.iter().all(|v| *v == "Certificate is Trusted."), "pdfsig:\n{pdfsig}");

    let pyhanko = venv_tool("pyhanko");
    let (ok, summary) =
        run(Command::new(&pyhanko).args(["sign", "validate", "--trust"]).arg(&root).arg("--trust-replace").arg(file));
    report.push_str(&format!("-- pyhanko sign validate\n{summary}"));
    assert!(ok, "pyhanko sign validate:\n{summary}");
    let lines: Vec<&str> = summary.lines().filter(|l| l.contains(":INTACT:")).collect();
    assert_eq!(lines.len(), signatures, "pyhanko:\n{summary}");
    assert!(lines.iter().all(|l| l.contains(":INTACT:TRUSTED")), "pyhanko:\n{summary}");
    assert!(!summary.contains("INVALID") && !summary.contains("ILLEGAL"), "pyhanko:\n{summary}");
    if level >= SignatureLevel::BT {
        assert!(lines.iter().all(|l| l.contains("TIMESTAMP_TOKEN<INTACT:TRUSTED>")), "pyhanko:\n{summary}");
    }

    let (ok, pretty) = run(Command::new(&pyhanko)
        .args(["sign", "validate", "--pretty-print", "--trust"])
        .arg(&root)
        .arg("--trust-replace")
        .arg(file));
    assert!(ok, "pyhanko sign validate --pretty-print:\n{pretty}");
    assert_eq!(pretty.matches("The signature is judged VALID.").count(), signatures, "pyhanko:\n{pretty}");

    let (ok, ades) = run(Command::new(&pyhanko)
        .args(["sign", "adesverify", "--pretty-print", "--trust"])
        .arg(&root)
        .arg("--trust-replace")
        .arg(file));
    report.push_str(&format!("-- pyhanko sign adesverify (revocation checked)\n{ades}"));
    assert!(ok, "pyhanko sign adesverify:\n{ades}");
    assert_eq!(ades.matches("The signature is judged VALID.").count(), signatures, "adesverify:\n{ades}");

    let (ok, profile) = run(Command::new(venv_tool("python")).arg(script("pades_profile.py")).arg(file));
    report.push_str(&format!("-- pades_profile.py\n{profile}"));
    assert!(ok, "pades_profile.py:\n{profile}");
    let suffix = format!(" level={level}");
    assert_eq!(profile.lines().filter(|l| l.ends_with(&suffix)).count(), signatures, "profile:\n{profile}");

    if level >= SignatureLevel::BLt {
        let mut ltv = Command::new(venv_tool("python"));
        ltv.arg(script("pades_ltv.py")).arg(&root).arg(file);
        if level == SignatureLevel::BLta {
            ltv.args(["--lta", "--future", "5"]);
        }
        let (ok, text) = run(&mut ltv);
        report.push_str(&format!("-- pades_ltv.py (pyHanko, offline: DSS only; AdES LTA for B-LTA)\n{text}"));
        assert!(ok, "pades_ltv.py:\n{text}");
        let dss_only = text.lines().filter(|l| l.contains(" dss-only bottom_line=True ")).count();
        assert_eq!(dss_only, signatures, "ltv:\n{text}");
        if level == SignatureLevel::BLta {
            let passed = text.lines().filter(|l| l.contains("indication=PASSED/")).count();
            assert_eq!(passed, 2 * signatures, "offline and in five years:\n{text}");
        }
    }
    report
}

/// Checks the structure a level adds, read back from the bytes.
fn assert_structure(signed: &[u8], original: &[u8], level: SignatureLevel) {
    assert!(signed.starts_with(original), "the original bytes are an unchanged prefix");
    let appended = String::from_utf8_lossy(&signed[original.len()..]);
    let whole = String::from_utf8_lossy(signed);
    assert_eq!(whole.contains("/DSS"), level >= SignatureLevel::BLt, "a /DSS from B-LT up");
    assert_eq!(
        appended.contains("/Type/DocTimeStamp") && appended.contains("/SubFilter/ETSI.RFC3161"),
        level == SignatureLevel::BLta,
        "a document time-stamp for B-LTA"
    );
    if level >= SignatureLevel::BLt {
        for key in ["/Certs", "/OCSPs", "/CRLs"] {
            assert!(appended.contains(key), "the DSS has {key}");
        }
    }
}

async fn sign_every_kind(level: SignatureLevel) {
    let pki = pki();
    let signer = pki.signer("signer", level);
    assert_eq!(signer.level(), level);
    let dir = scratch(level.as_str());
    let classic = multi_page_pdf(1);
    assert!(classic.windows(6).any(|w| w == b"\nxref\n"), "a classic table");
    let streams = with_object_streams(&dir, &multi_page_pdf(3));
    assert!(String::from_utf8_lossy(&streams).contains("/ObjStm"), "object streams");
    let first = pki.signer("signer2", level).sign(&streams, &request()).await.expect("the first signature");
    let kinds = [
        ("pdf14-classic", classic, 1),
        ("pdf15-streams", streams, 1),
        ("multipage", multi_page_pdf(12), 1),
        ("already-signed", first, 2),
    ];
    for (kind, original, signatures) in kinds {
        let signed = signer.sign(&original, &request()).await.unwrap_or_else(|e| panic!("{level} {kind}: {e:?}"));
        assert_structure(&signed, &original, level);
        let file = dir.join(format!("{kind}.{level}.pdf"));
        std::fs::write(&file, &signed).expect("write");
        let report = validate(&dir, &pki, &file, level, signatures);
        println!("==== {level} / {kind}\n{report}");
    }
}

#[tokio::test]
async fn b_b_validates_on_every_kind_of_pdf() {
    sign_every_kind(SignatureLevel::BB).await;
}

#[tokio::test]
async fn b_t_carries_a_trusted_signature_time_stamp_on_every_kind_of_pdf() {
    sign_every_kind(SignatureLevel::BT).await;
}

#[tokio::test]
async fn b_lt_adds_a_dss_that_validates_offline_on_every_kind_of_pdf() {
    sign_every_kind(SignatureLevel::BLt).await;
}

#[tokio::test]
async fn b_lta_adds_a_document_time_stamp_on_every_kind_of_pdf() {
    sign_every_kind(SignatureLevel::BLta).await;
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    port
}

#[tokio::test]
async fn a_tsa_that_is_down_or_refuses_gives_timestamp_unavailable_never_a_lower_level() {
    let pki = pki();
    for level in [SignatureLevel::BT, SignatureLevel::BLt, SignatureLevel::BLta] {
        for tsa in [format!("http://127.0.0.1:{}/tsa", closed_port()), format!("{}/tsa/no-such-tsa", pki.url)] {
            let options = PadesOptions {
                level,
                tsa_url: Some(url::Url::parse(&tsa).expect("url")),
                timeout: Duration::from_secs(5),
            };
            let signer = PadesSigner::with_options(pki.credentials("signer"), options).expect("signer");
            let outcome = signer.sign(&multi_page_pdf(1), &request()).await;
            assert!(matches!(outcome, Err(SigningError::TimestampUnavailable(_))), "{level} {tsa}: {outcome:?}");
        }
    }
}

#[tokio::test]
async fn an_ocsp_responder_that_is_down_gives_revocation_unavailable() {
    use der::Encode;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax};

    let pki = pki();
    // A signer whose certificate names an OCSP responder on a closed port (and no CRL); its
    // time-stamps still come from the live TSA.
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.distinguished_name.push(rcgen::DnType::CommonName, "offline OCSP test CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).expect("CA").pem();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, "signer with an unreachable OCSP responder");
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature, rcgen::KeyUsagePurpose::ContentCommitment];
    let ocsp = format!("http://127.0.0.1:{}/ocsp", closed_port());
    let aia = AuthorityInfoAccessSyntax(vec![AccessDescription {
        access_method: const_oid::db::rfc5280::ID_AD_OCSP,
        access_location: GeneralName::UniformResourceIdentifier(der::asn1::Ia5String::new(&ocsp).expect("ia5")),
    }]);
    params.custom_extensions =
        vec![rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], aia.to_der().expect("AIA"))];
    let cert = params.signed_by(&key, &issuer).expect("certificate");
    let (key_pem, chain_pem) = (key.serialize_pem(), format!("{}{ca_pem}", cert.pem()));
    let credentials = || {
        SigningCredentials::from_pem(key_pem.as_bytes(), chain_pem.as_bytes(), RsaPadding::Pkcs1v15)
            .expect("credentials")
    };
    for level in [SignatureLevel::BLt, SignatureLevel::BLta] {
        let options = PadesOptions { level, tsa_url: Some(pki.tsa_url()), timeout: Duration::from_secs(5) };
        let signer = PadesSigner::with_options(credentials(), options).expect("signer");
        let outcome = signer.sign(&multi_page_pdf(1), &request()).await;
        assert!(matches!(outcome, Err(SigningError::RevocationUnavailable(_))), "{level}: {outcome:?}");
    }
    // B-T needs no revocation data: the same signer signs at B-T.
    let options =
        PadesOptions { level: SignatureLevel::BT, tsa_url: Some(pki.tsa_url()), timeout: Duration::from_secs(5) };
    let signer = PadesSigner::with_options(credentials(), options).expect("signer");
    signer.sign(&multi_page_pdf(1), &request()).await.expect("B-T without revocation data");
}

#[test]
fn levels_from_b_t_up_need_a_tsa() {
    let pki = pki();
    for level in [SignatureLevel::BT, SignatureLevel::BLt, SignatureLevel::BLta] {
        let options = PadesOptions { level, tsa_url: None, timeout: Duration::from_secs(5) };
        let outcome = PadesSigner::with_options(pki.credentials("signer"), options);
        assert!(matches!(outcome, Err(PadesSetupError::NoTsa(l)) if l == level), "{level}");
    }
    let options = PadesOptions { level: SignatureLevel::BB, tsa_url: None, timeout: Duration::from_secs(5) };
    let signer = PadesSigner::with_options(pki.credentials("signer"), options).expect("B-B needs none");
    assert_eq!(signer.level(), SignatureLevel::BB);
    assert_eq!(PadesSigner::new(pki.credentials("signer")).level(), SignatureLevel::BB);
}
