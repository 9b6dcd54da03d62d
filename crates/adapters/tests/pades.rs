//! The PAdES signer against independent validators: poppler's `pdfsig` (NSS), pyHanko
//! (`pyhanko sign validate` and `adesverify`, from the project's `.venv`) and `qpdf --check`.
//! `scripts/test.sh` installs them (Debian `poppler-utils`, `qpdf`, `libnss3-tools`; PyPI
//! `pyHanko`, `pyhanko-cli`, `pyhanko-certvalidator` pinned in `scripts/requirements.txt`).
//!
//! The test PKI is made here with rcgen: a root CA and a signing certificate (digitalSignature
//! and nonRepudiation) for an RSA, a P-256 or a P-384 key. The test PDFs are made here too:
//! with lopdf (PDF 1.4, a classic cross-reference table) and converted by qpdf
//! (`--object-streams=generate`: PDF 1.5 object and cross-reference streams).

use std::path::Path;
use std::process::Command;

use esignsp_adapters::pades::{PadesSigner, RsaPadding, SigningCredentials};
use esignsp_domain::{DocumentSigner, SignatureLevel, SignatureRequest, SigningError};
use esignsp_testkit::pdf::{multi_page_pdf, pdfsig, run, scratch, venv_tool, with_object_streams};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SignatureAlgorithm};

/// A test PKI: the root CA's certificate (PEM) and a signer's key (PKCS#8 PEM) and chain.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    chain_pem: String,
}

/// A test root CA that issues signing certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca() -> Ca {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.distinguished_name.push(DnType::CommonName, "esignsp test root CA");
    ca.distinguished_name.push(DnType::OrganizationName, "esignsp tests");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = ca.self_signed(&ca_key).expect("CA certificate").pem();
    Ca { pem, issuer: Issuer::new(ca, ca_key) }
}

impl Ca {
    /// A signer with a fresh key of `algorithm` and a certificate for `name`.
    fn signer(&self, algorithm: &'static SignatureAlgorithm, name: &str) -> Pki {
        let key = KeyPair::generate_for(algorithm).expect("signer key");
        let mut signer = CertificateParams::new(Vec::<String>::new()).expect("signer params");
        signer.distinguished_name.push(DnType::CommonName, name);
        signer.distinguished_name.push(DnType::OrganizationName, "esignsp tests");
        signer.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment];
        let signer_cert = signer.signed_by(&key, &self.issuer).expect("signer certificate");
        Pki {
            ca_pem: self.pem.clone(),
            cert_pem: signer_cert.pem(),
            key_pem: key.serialize_pem(),
            chain_pem: format!("{}{}", signer_cert.pem(), self.pem),
        }
    }
}

fn pki(algorithm: &'static SignatureAlgorithm) -> Pki {
    ca().signer(algorithm, "esignsp test signer")
}

fn signer(pki: &Pki, padding: RsaPadding) -> PadesSigner {
    PadesSigner::new(
        SigningCredentials::from_pem(pki.key_pem.as_bytes(), pki.chain_pem.as_bytes(), padding).expect("credentials"),
    )
}

/// What the validators said of a signed file.
struct Verdicts {
    pdfsig: String,
    pyhanko: String,
    adesverify: String,
    profile: String,
    qpdf: String,
}

/// Runs every validator on `pdf`, asserting that each accepts it, with `signatures`
/// signatures in it, each trusted under the test root `ca_pem`.
fn validate(dir: &Path, name: &str, pdf: &[u8], ca_pem: &str, signatures: usize) -> Verdicts {
    validate_with(dir, name, pdf, ca_pem, signatures, "")
}

/// [`validate`], with `pyhanko_status` expected in pyHanko's one-line status of each signature
/// but the last (e.g. `ACCEPTABLE_MODIFICATIONS` for a certification our signature follows).
fn validate_with(
    dir: &Path,
    name: &str,
    pdf: &[u8],
    ca_pem: &str,
    signatures: usize,
    pyhanko_status: &str,
) -> Verdicts {
    let file = dir.join(name);
    std::fs::write(&file, pdf).expect("write");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_pem).expect("write");

    let (ok, qpdf) = run(Command::new("qpdf").arg("--check").arg(&file));
    assert!(ok && qpdf.contains("No syntax or stream encoding errors found"), "qpdf --check:\n{qpdf}");

    let pdfsig = pdfsig(dir, &ca, &file);
    assert_eq!(pdfsig.matches("Signature Validation: Signature is Valid.").count(), signatures, "pdfsig:\n{pdfsig}");
    assert_eq!(
        pdfsig.matches("Certificate Validation: Certificate is Trusted.").count(),
        signatures,
        "pdfsig:\n{pdfsig}"
    );
    assert_eq!(pdfsig.matches("Signature Type: ETSI.CAdES.detached").count(), signatures, "pdfsig:\n{pdfsig}");
    assert!(pdfsig.contains("Total document signed"), "the last signature covers the whole file:\n{pdfsig}");

    let pyhanko = venv_tool("pyhanko");
    let (ok, validate) = run(Command::new(&pyhanko)
        .args(["sign", "validate", "--pretty-print", "--trust"])
        .arg(&ca)
        .arg("--trust-replace")
        .arg(&file));
    assert!(ok, "pyhanko sign validate:\n{validate}");
    assert_eq!(validate.matches("The signature is judged VALID.").count(), signatures, "pyhanko:\n{validate}");
    assert!(!validate.contains("INVALID") && !validate.contains("ILLEGAL"), "pyhanko:\n{validate}");
    let (ok, summary) =
        run(Command::new(&pyhanko).args(["sign", "validate", "--trust"]).arg(&ca).arg("--trust-replace").arg(&file));
    assert!(ok, "pyhanko sign validate:\n{summary}");
    let lines: Vec<&str> = summary.lines().filter(|l| l.contains(":INTACT:")).collect();
    assert_eq!(lines.len(), signatures, "pyhanko:\n{summary}");
    assert!(lines.iter().all(|l| l.contains(":INTACT:TRUSTED")), "pyhanko:\n{summary}");
    assert!(lines.last().is_some_and(|l| l.ends_with(",UNTOUCHED")), "the last signature covers all:\n{summary}");
    assert!(lines[..signatures - 1].iter().all(|l| l.contains(pyhanko_status)), "pyhanko:\n{summary}");

    let (ok, adesverify) = run(Command::new(&pyhanko)
        .args(["sign", "adesverify", "--pretty-print", "--no-revocation-check", "--trust"])
        .arg(&ca)
        .arg("--trust-replace")
        .arg(&file));
    assert!(ok, "pyhanko sign adesverify:\n{adesverify}");
    assert_eq!(adesverify.matches("The signature is judged VALID.").count(), signatures, "adesverify:\n{adesverify}");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pades_profile.py");
    let (ok, profile) = run(Command::new(venv_tool("python")).arg(script).arg(&file));
    assert!(ok, "pades_profile.py:\n{profile}");
    assert_eq!(profile.lines().filter(|l| l.ends_with(" level=B-B")).count(), signatures, "profile:\n{profile}");
    Verdicts { pdfsig, pyhanko: format!("{validate}{summary}"), adesverify, profile, qpdf }
}

/// The `/ByteRange` of the last signature: `[0 a b c]`.
fn last_byte_range(pdf: &[u8]) -> [usize; 4] {
    let text = String::from_utf8_lossy(pdf);
    let at = text.rfind("/ByteRange").expect("a /ByteRange");
    let rest = &text[at + "/ByteRange".len()..];
    let inner = &rest[rest.find('[').expect("[") + 1..rest.find(']').expect("]")];
    let numbers: Vec<usize> = inner.split_whitespace().map(|n| n.parse().expect("a number")).collect();
    numbers.try_into().expect("four numbers")
}

/// The byte range covers the whole file but the `/Contents` hex string, brackets included.
fn assert_byte_range_covers_all_but_contents(pdf: &[u8]) {
    let [start, a, b, c] = last_byte_range(pdf);
    assert_eq!(start, 0);
    assert_eq!(b + c, pdf.len(), "the second range ends at the end of the file");
    assert_eq!(pdf[a], b'<', "the gap starts at the /Contents string's '<'");
    assert_eq!(pdf[b - 1], b'>', "the gap ends just past its '>'");
    assert!(pdf[a + 1..b - 1].iter().all(u8::is_ascii_hexdigit), "only the hex string is left out");
    assert!(String::from_utf8_lossy(&pdf[a - 12..a]).ends_with("/Contents"), "the gap is /Contents");
}

fn request() -> SignatureRequest {
    SignatureRequest {
        time: time::OffsetDateTime::now_utc(),
        signer_name: Some("Test Signer — Ünïcode".into()),
        reason: None,
        location: Some("Barcelona".into()),
    }
}

async fn sign_and_check(
    dir: &Path,
    name: &str,
    signer: &PadesSigner,
    pki: &Pki,
    original: &[u8],
    signatures: usize,
) -> Vec<u8> {
    std::fs::write(dir.join("signer.key.pem"), &pki.key_pem).expect("write");
    std::fs::write(dir.join("signer.chain.pem"), &pki.chain_pem).expect("write");
    let signed = signer.sign(original, &request()).await.expect("signed");
    assert!(signed.starts_with(original), "{name}: the original bytes are an unchanged prefix");
    assert_byte_range_covers_all_but_contents(&signed);
    let verdicts = validate(dir, name, &signed, &pki.ca_pem, signatures);
    println!(
        "== {name}\n-- qpdf --check\n{}\n-- pdfsig\n{}\n-- pyhanko sign validate\n{}\n-- pyhanko sign adesverify\n{}\n-- pades_profile.py\n{}",
        verdicts.qpdf, verdicts.pdfsig, verdicts.pyhanko, verdicts.adesverify, verdicts.profile
    );
    signed
}

#[tokio::test]
async fn a_pdf_14_with_a_classic_xref_table_is_signed_b_b_and_validates() {
    let dir = scratch("classic");
    let pki = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
    let signer = signer(&pki, RsaPadding::Pkcs1v15);
    assert_eq!(signer.level(), SignatureLevel::BB);
    let original = multi_page_pdf(1);
    assert!(original.starts_with(b"%PDF-1.4"), "a PDF 1.4");
    assert!(original.windows(6).any(|w| w == b"\nxref\n"), "with a classic cross-reference table");
    let signed = sign_and_check(&dir, "classic.signed.pdf", &signer, &pki, &original, 1).await;
    let appended = String::from_utf8_lossy(&signed[original.len()..]);
    assert!(appended.contains("\nxref\n"), "a table after a table");
    assert!(appended.contains("/SubFilter/ETSI.CAdES.detached"));
    assert!(appended.contains("/M(D:"), "the claimed time in /M");
    let file = dir.join("classic.signed.pdf");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pades_profile.py");
    let (_, profile) = run(Command::new(venv_tool("python")).arg(script).arg(&file));
    assert!(profile.contains(" name=Test Signer — Ünïcode "), "pyHanko reads /Name back: {profile}");
}

#[tokio::test]
async fn a_pdf_15_with_object_and_xref_streams_is_signed_with_an_xref_stream_and_validates() {
    let dir = scratch("streams");
    let pki = pki(&rcgen::PKCS_ECDSA_P384_SHA384);
    let signer = signer(&pki, RsaPadding::Pkcs1v15);
    let original = with_object_streams(&dir, &multi_page_pdf(3));
    assert!(String::from_utf8_lossy(&original).contains("/ObjStm"), "qpdf made object streams");
    let signed = sign_and_check(&dir, "streams.signed.pdf", &signer, &pki, &original, 1).await;
    let appended = String::from_utf8_lossy(&signed[original.len()..]);
    assert!(appended.contains("/Type/XRef"), "a cross-reference stream after a stream");
    assert!(!appended.contains("\nxref\n"), "no table after a stream");
}

#[tokio::test]
async fn a_multi_page_pdf_is_signed_with_an_rsa_key_pkcs1_v1_5_and_validates() {
    let dir = scratch("rsa");
    let pki = pki(&rcgen::PKCS_RSA_SHA256);
    let signer = signer(&pki, RsaPadding::Pkcs1v15);
    assert!(signer.credentials().key_description().starts_with("RSA 2048"));
    sign_and_check(&dir, "rsa.signed.pdf", &signer, &pki, &multi_page_pdf(12), 1).await;
}

#[tokio::test]
async fn an_rsa_pss_signature_validates() {
    let dir = scratch("pss");
    let pki = pki(&rcgen::PKCS_RSA_SHA256);
    let signer = signer(&pki, RsaPadding::Pss);
    sign_and_check(&dir, "pss.signed.pdf", &signer, &pki, &multi_page_pdf(2), 1).await;
}

#[tokio::test]
async fn a_signed_pdf_signed_again_keeps_both_signatures_valid() {
    for (kind, original) in
        [("classic", multi_page_pdf(2)), ("streams", with_object_streams(&scratch("twice-src"), &multi_page_pdf(2)))]
    {
        let dir = scratch(&format!("twice-{kind}"));
        // Two signers: pdfsig 22.12 reports "Unknown issue with Certificate" for a second
        // signature by the same certificate, also when pyHanko makes it (NSS's cache).
        let ca = ca();
        let (first, second) = (
            ca.signer(&rcgen::PKCS_ECDSA_P256_SHA256, "first signer"),
            ca.signer(&rcgen::PKCS_RSA_SHA256, "second signer"),
        );
        let once = sign_and_check(
            &dir,
            &format!("{kind}.once.pdf"),
            &signer(&first, RsaPadding::Pkcs1v15),
            &first,
            &original,
            1,
        )
        .await;
        let twice = sign_and_check(
            &dir,
            &format!("{kind}.twice.pdf"),
            &signer(&second, RsaPadding::Pkcs1v15),
            &second,
            &once,
            2,
        )
        .await;
        let appended = String::from_utf8_lossy(&twice[once.len()..]);
        assert!(appended.contains("(Signature2)"), "{kind}: the second field gets a name of its own");
    }
}

#[tokio::test]
async fn documents_that_cannot_be_signed_fail_with_the_reason() {
    let dir = scratch("refused");
    let pki = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
    let signer = signer(&pki, RsaPadding::Pkcs1v15);
    let original = multi_page_pdf(1);

    let plain = dir.join("plain.pdf");
    std::fs::write(&plain, &original).expect("write");
    let encrypted = dir.join("encrypted.pdf");
    let (ok, text) =
        run(Command::new("qpdf").args(["--encrypt", "", "owner", "256", "--"]).arg(&plain).arg(&encrypted));
    assert!(ok, "qpdf --encrypt: {text}");
    let encrypted = std::fs::read(encrypted).expect("read");
    assert!(matches!(signer.sign(&encrypted, &request()).await, Err(SigningError::Encrypted)), "an encrypted PDF");

    assert!(matches!(signer.sign(b"not a pdf", &request()).await, Err(SigningError::NotPdf)), "not a PDF");
    assert!(matches!(signer.sign(b"", &request()).await, Err(SigningError::NotPdf)), "no bytes");

    let truncated = &original[..original.len() / 2];
    assert!(matches!(signer.sign(truncated, &request()).await, Err(SigningError::Damaged(_))), "a truncated PDF");

    let mut bad_xref = original.clone();
    let at = bad_xref.windows(10).rposition(|w| w == b"startxref\n").expect("startxref") + "startxref\n".len();
    bad_xref[at] = b'9';
    let outcome = signer.sign(&bad_xref, &request()).await;
    assert!(matches!(outcome, Err(SigningError::Damaged(_))), "a wrong startxref: {outcome:?}");

    // Every prefix of a PDF: a clear error or a signature, never a panic.
    for len in (0..original.len()).step_by(7) {
        let outcome = signer.sign_blocking(&original[..len], &request());
        assert!(outcome.is_err() || len > original.len() - 40, "prefix {len}: {outcome:?}");
    }
}

#[tokio::test]
async fn credentials_that_cannot_sign_are_refused() {
    let one = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
    let other = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
    let mismatch =
        SigningCredentials::from_pem(one.key_pem.as_bytes(), other.chain_pem.as_bytes(), RsaPadding::Pkcs1v15);
    assert!(
        matches!(mismatch, Err(esignsp_adapters::pades::CredentialsError::NoMatchingCertificate)),
        "a key without its certificate"
    );
    let ed25519 = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key").serialize_pem();
    let unsupported = SigningCredentials::from_pem(ed25519.as_bytes(), one.chain_pem.as_bytes(), RsaPadding::Pkcs1v15);
    assert!(matches!(unsupported, Err(esignsp_adapters::pades::CredentialsError::UnsupportedKey(_))), "Ed25519");
    let garbage = SigningCredentials::from_pem(b"nope", one.chain_pem.as_bytes(), RsaPadding::Pkcs1v15);
    assert!(matches!(garbage, Err(esignsp_adapters::pades::CredentialsError::UnreadableKey(_))));
    let no_chain = SigningCredentials::from_pem(one.key_pem.as_bytes(), b"", RsaPadding::Pkcs1v15);
    assert!(matches!(no_chain, Err(esignsp_adapters::pades::CredentialsError::UnreadableChain(_))));

    // rcgen's default validity ends in 4096; a time before 1975 is outside it.
    let signer = signer(&one, RsaPadding::Pkcs1v15);
    let outcome = signer.sign(&multi_page_pdf(1), &SignatureRequest::at(time::OffsetDateTime::UNIX_EPOCH)).await;
    assert!(matches!(outcome, Err(SigningError::Credentials(_))), "a certificate not valid at the time: {outcome:?}");
}

/// `pdf` certified by pyHanko (scripts/pades_certify.py) with DocMDP `permission`.
fn certified(dir: &Path, pki: &Pki, permission: &str, pdf: &[u8]) -> Vec<u8> {
    let (key, cert, input, output) =
        (dir.join("certifier.key.pem"), dir.join("certifier.pem"), dir.join("plain.pdf"), dir.join("certified.pdf"));
    std::fs::write(&key, &pki.key_pem).expect("write");
    std::fs::write(&cert, &pki.cert_pem).expect("write");
    std::fs::write(&input, pdf).expect("write");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pades_certify.py");
    let (ok, text) = run(Command::new(venv_tool("python"))
        .arg(script)
        .arg(&key)
        .arg(&cert)
        .arg(permission)
        .arg(&input)
        .arg(&output));
    assert!(ok, "pades_certify.py: {text}");
    std::fs::read(output).expect("read")
}

#[tokio::test]
async fn a_pdf_certified_for_form_filling_is_signed_and_the_certification_stays_valid() {
    let dir = scratch("certified");
    let ca = ca();
    let (certifier, second) =
        (ca.signer(&rcgen::PKCS_ECDSA_P256_SHA256, "certifier"), ca.signer(&rcgen::PKCS_ECDSA_P256_SHA256, "signer"));
    let original = certified(&dir, &certifier, "FILL_FORMS", &with_object_streams(&dir, &multi_page_pdf(2)));
    let signed = signer(&second, RsaPadding::Pkcs1v15).sign(&original, &request()).await.expect("signed");
    assert!(signed.starts_with(&original));
    let verdicts = validate_with(&dir, "certified.signed.pdf", &signed, &ca.pem, 2, "ACCEPTABLE_MODIFICATIONS");
    println!("== certified.signed.pdf\n{}\n{}", verdicts.pdfsig, verdicts.pyhanko);
}

#[tokio::test]
async fn a_pdf_certified_without_changes_is_refused() {
    let dir = scratch("locked");
    let pki = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
    let original = certified(&dir, &pki, "NO_CHANGES", &multi_page_pdf(1));
    let outcome = signer(&pki, RsaPadding::Pkcs1v15).sign(&original, &request()).await;
    assert!(matches!(outcome, Err(SigningError::ChangesNotPermitted)), "{outcome:?}");
}

#[test]
fn damaged_bytes_give_an_error_or_a_signature_never_a_panic() {
    let dir = scratch("mutations");
    let pki = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
    let signer = signer(&pki, RsaPadding::Pkcs1v15);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64: a fixed sequence, so a failure repeats.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut signed, mut refused) = (0, 0);
    for original in [multi_page_pdf(2), with_object_streams(&dir, &multi_page_pdf(2))] {
        for round in 0..250 {
            let mut pdf = original.clone();
            for _ in 0..=(next() % 4) {
                let at = usize::try_from(next() % pdf.len() as u64).expect("index");
                match next() % 3 {
                    0 => pdf[at] = (next() & 0xff) as u8,
                    1 => {
                        pdf.remove(at);
                    }
                    _ => pdf.insert(at, b"0 R<>[]/ \n"[usize::try_from(next() % 10).expect("index")]),
                }
            }
            // The signer holds an HTTP client (not RefUnwindSafe); nothing of it is used after a panic.
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| signer.sign_blocking(&pdf, &request())));
            match outcome {
                Ok(Ok(_)) => signed += 1,
                Ok(Err(_)) => refused += 1,
                Err(_) => panic!("round {round}: signing a mutated PDF panicked"),
            }
        }
    }
    println!("mutated PDFs: {signed} signed, {refused} refused");
    assert!(signed > 0 && refused > 0, "both outcomes occur: {signed} signed, {refused} refused");
}
