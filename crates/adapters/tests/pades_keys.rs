//! Signing keys in every form `SigningCredentials::from_key_material` reads, made by the
//! `openssl` CLI (OpenSSL 3): PKCS#8 PEM and DER, encrypted PKCS#8 (`openssl pkcs8 -topk8 -v2
//! aes-256-cbc`, PBKDF2; `-scrypt`), PKCS#12 (`openssl pkcs12 -export`: PBES2 AES-256-CBC with
//! PBKDF2 and an HMAC-SHA-256 MAC; `-legacy`: 3DES keys, RC2-40 certificates, SHA-1 MAC), for
//! RSA 2048, P-256 and P-384 keys. A PDF signed with each is checked by poppler's `pdfsig`
//! (NSS) and pyHanko (`pyhanko sign validate`, from the project's `.venv`); `scripts/test.sh`
//! installs them and `openssl` (Debian `openssl`, `poppler-utils`, `qpdf`, `libnss3-tools`).
//!
//! The test PKI: a root CA made by rcgen certifies each key that openssl generates.

use std::path::{Path, PathBuf};
use std::process::Command;

use esignsp_adapters::pades::{CredentialsError, PadesSigner, RsaPadding, SigningCredentials};
use esignsp_domain::SignatureRequest;
use esignsp_testkit::pdf::{multi_page_pdf, pdfsig, run, scratch, venv_tool};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

const PASSWORD: &str = "correct horse — bättery";

/// Runs `openssl args…` in `dir`, asserting that it succeeds.
fn openssl(dir: &Path, args: &[&str]) {
    let (ok, text) = run(Command::new("openssl").current_dir(dir).args(args));
    assert!(ok, "openssl {}: {text}", args.join(" "));
}

/// The kinds of key this signer takes, with the `openssl genpkey` options that make one.
#[derive(Debug, Clone, Copy)]
enum Algorithm {
    Rsa2048,
    P256,
    P384,
}

impl Algorithm {
    const ALL: [Self; 3] = [Self::Rsa2048, Self::P256, Self::P384];

    fn genpkey(self) -> &'static [&'static str] {
        match self {
            Self::Rsa2048 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Self::P256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Self::P384 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        }
    }

    /// The start of [`SigningCredentials::key_description`] for this kind.
    fn description(self) -> &'static str {
        match self {
            Self::Rsa2048 => "RSA 2048",
            Self::P256 => "ECDSA P-256",
            Self::P384 => "ECDSA P-384",
        }
    }
}

/// A test root CA (rcgen) and, in `dir`, its certificate `ca.pem`.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(dir: &Path) -> Ca {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.distinguished_name.push(DnType::CommonName, "esignsp test root CA");
    ca.distinguished_name.push(DnType::OrganizationName, "esignsp tests");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = ca.self_signed(&ca_key).expect("CA certificate").pem();
    std::fs::write(dir.join("ca.pem"), &pem).expect("write");
    Ca { pem, issuer: Issuer::new(ca, ca_key) }
}

/// A signer's files in a scratch directory: `<name>.key.pem` (openssl's PKCS#8),
/// `<name>.cert.pem` (certified by the CA) and `<name>.chain.pem` (certificate and CA).
struct Signer {
    key: PathBuf,
    cert: PathBuf,
    chain: PathBuf,
}

impl Ca {
    /// A fresh openssl key of `algorithm` in `dir` with a certificate for `name`.
    fn signer(&self, dir: &Path, algorithm: Algorithm, name: &str) -> Signer {
        let key = dir.join(format!("{name}.key.pem"));
        let mut args = vec!["genpkey"];
        args.extend(algorithm.genpkey());
        args.extend(["-out", key.to_str().expect("a UTF-8 path")]);
        openssl(dir, &args);
        let key_pem = std::fs::read_to_string(&key).expect("read");
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"), "openssl genpkey writes PKCS#8");
        let key_pair = KeyPair::from_pem(&key_pem).expect("rcgen reads openssl's key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("signer params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.distinguished_name.push(DnType::OrganizationName, "esignsp tests");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment];
        let cert_pem = params.signed_by(&key_pair, &self.issuer).expect("signer certificate").pem();
        let (cert, chain) = (dir.join(format!("{name}.cert.pem")), dir.join(format!("{name}.chain.pem")));
        std::fs::write(&cert, &cert_pem).expect("write");
        std::fs::write(&chain, format!("{cert_pem}{}", self.pem)).expect("write");
        Signer { key, cert, chain }
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// The forms a key file takes, each made from a signer's PKCS#8 PEM by openssl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `openssl genpkey`'s PKCS#8 PEM, with the chain file.
    Pkcs8Pem,
    /// `openssl pkcs8 -topk8 -nocrypt -outform DER`, with the chain file.
    Pkcs8Der,
    /// `openssl pkcs8 -topk8 -v2 aes-256-cbc` (PBES2, PBKDF2 with HMAC-SHA-256), with the chain.
    EncryptedAes256Pbkdf2,
    /// `openssl pkcs8 -topk8 -v2 aes-128-cbc -scrypt`, DER, with the chain file.
    EncryptedScryptDer,
    /// `openssl pkcs12 -export` with `-certfile ca.pem` (OpenSSL 3's default: PBES2
    /// AES-256-CBC, PBKDF2, HMAC-SHA-256 MAC); no chain file.
    Pkcs12,
    /// `openssl pkcs12 -export -legacy` (3DES key bag, RC2-40 certificates, SHA-1 MAC); no
    /// chain file.
    Pkcs12Legacy,
}

impl Form {
    const ALL: [Self; 6] = [
        Self::Pkcs8Pem,
        Self::Pkcs8Der,
        Self::EncryptedAes256Pbkdf2,
        Self::EncryptedScryptDer,
        Self::Pkcs12,
        Self::Pkcs12Legacy,
    ];

    fn is_pkcs12(self) -> bool {
        matches!(self, Self::Pkcs12 | Self::Pkcs12Legacy)
    }

    fn needs_password(self) -> bool {
        !matches!(self, Self::Pkcs8Pem | Self::Pkcs8Der)
    }

    /// Writes the key file of this form for `signer` into `dir`; its path.
    fn write(self, dir: &Path, signer: &Signer, name: &str) -> PathBuf {
        let out = dir.join(format!("{name}.{self:?}"));
        let pass = format!("pass:{PASSWORD}");
        let (key, out_s, cert, ca) = (path(&signer.key), path(&out), path(&signer.cert), "ca.pem");
        match self {
            Self::Pkcs8Pem => std::fs::copy(&signer.key, &out).map(|_| ()).expect("copy"),
            Self::Pkcs8Der => {
                openssl(dir, &["pkcs8", "-topk8", "-nocrypt", "-in", key, "-outform", "DER", "-out", out_s])
            }
            Self::EncryptedAes256Pbkdf2 => openssl(
                dir,
                &[
                    "pkcs8",
                    "-topk8",
                    "-v2",
                    "aes-256-cbc",
                    "-v2prf",
                    "hmacWithSHA256",
                    "-in",
                    key,
                    "-out",
                    out_s,
                    "-passout",
                    &pass,
                ],
            ),
            Self::EncryptedScryptDer => openssl(
                dir,
                &[
                    "pkcs8",
                    "-topk8",
                    "-v2",
                    "aes-128-cbc",
                    "-scrypt",
                    "-in",
                    key,
                    "-outform",
                    "DER",
                    "-out",
                    out_s,
                    "-passout",
                    &pass,
                ],
            ),
            Self::Pkcs12 => openssl(
                dir,
                &["pkcs12", "-export", "-inkey", key, "-in", cert, "-certfile", ca, "-out", out_s, "-passout", &pass],
            ),
            Self::Pkcs12Legacy => openssl(
                dir,
                &[
                    "pkcs12",
                    "-export",
                    "-legacy",
                    "-inkey",
                    key,
                    "-in",
                    cert,
                    "-certfile",
                    ca,
                    "-out",
                    out_s,
                    "-passout",
                    &pass,
                ],
            ),
        }
        out
    }

    /// What `openssl` says of the file's encryption: the lines naming the algorithms.
    fn describe(self, dir: &Path, file: &Path) -> String {
        let pass = format!("pass:{PASSWORD}");
        let (ok, text) = if self.is_pkcs12() {
            let mut args = vec!["pkcs12", "-info", "-noout", "-in", path(file), "-passin", &pass];
            if self == Self::Pkcs12Legacy {
                args.push("-legacy");
            }
            run(Command::new("openssl").current_dir(dir).args(args))
        } else if self.needs_password() {
            let inform = if self == Self::EncryptedScryptDer { "DER" } else { "PEM" };
            run(Command::new("openssl").current_dir(dir).args(["asn1parse", "-inform", inform, "-in", path(file)]))
        } else {
            return "unencrypted".into();
        };
        assert!(ok, "openssl describing {}: {text}", file.display());
        text.lines()
            .filter(|l| {
                ["MAC:", "Shrouded", "Encrypted data", "PBES2", "PBKDF2", "scrypt", "aes-", "hmacWith"]
                    .iter()
                    .any(|k| l.contains(k))
            })
            .map(|l| l.split(':').next_back().unwrap_or(l).trim().to_owned())
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

fn request() -> SignatureRequest {
    SignatureRequest {
        time: time::OffsetDateTime::now_utc(),
        signer_name: Some("Key Test Signer".into()),
        reason: None,
        location: None,
    }
}

/// `file` validated by pdfsig (with an NSS database trusting `dir/ca.pem`) and pyHanko
/// (trusting only `ca.pem`): one valid, trusted signature over the whole file. What each said.
fn validate(dir: &Path, file: &Path) -> (String, String) {
    let pdfsig = pdfsig(dir, &dir.join("ca.pem"), file);
    assert_eq!(pdfsig.matches("Signature Validation: Signature is Valid.").count(), 1, "pdfsig:\n{pdfsig}");
    assert_eq!(pdfsig.matches("Certificate Validation: Certificate is Trusted.").count(), 1, "pdfsig:\n{pdfsig}");
    assert!(pdfsig.contains("Total document signed"), "pdfsig:\n{pdfsig}");

    let (ok, pyhanko) = run(Command::new(venv_tool("pyhanko"))
        .args(["sign", "validate", "--pretty-print", "--trust"])
        .arg(dir.join("ca.pem"))
        .arg("--trust-replace")
        .arg(file));
    assert!(ok, "pyhanko sign validate:\n{pyhanko}");
    assert_eq!(pyhanko.matches("The signature is judged VALID.").count(), 1, "pyhanko:\n{pyhanko}");
    assert!(pyhanko.contains("The signer's certificate is trusted."), "pyhanko:\n{pyhanko}");
    assert!(!pyhanko.contains("INVALID") && !pyhanko.contains("ILLEGAL"), "pyhanko:\n{pyhanko}");
    (pdfsig, pyhanko)
}

/// The lines of a validator's report that name the outcome and the algorithms.
fn excerpt(report: &str) -> String {
    report
        .lines()
        .map(str::trim)
        .filter(|l| {
            [
                "Signer Certificate Common Name",
                "Signature Validation",
                "Certificate Validation",
                "Hash Algorithm",
                "judged",
                "Signature mechanism",
                "Certificate subject",
                "trusted",
            ]
            .iter()
            .any(|k| l.contains(k))
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// Makes a key file of `form` for each algorithm, reads it with `from_key_material` (the
/// chain file only where the form has no certificates), signs a PDF with it and validates it.
fn every_algorithm_signs_from(form: Form) {
    let dir = scratch(&format!("{form:?}"));
    let ca = ca(&dir);
    for algorithm in Algorithm::ALL {
        let name = format!("{algorithm:?}");
        let signer = ca.signer(&dir, algorithm, &format!("signer {name}"));
        let file = form.write(&dir, &signer, &name);
        let key = std::fs::read(&file).expect("read");
        let chain = std::fs::read(&signer.chain).expect("read");
        let chain = (!form.is_pkcs12()).then_some(chain.as_slice());
        let password = form.needs_password().then_some(PASSWORD);
        let paddings: &[RsaPadding] = match algorithm {
            Algorithm::Rsa2048 => &[RsaPadding::Pkcs1v15, RsaPadding::Pss],
            _ => &[RsaPadding::Pkcs1v15],
        };
        for &padding in paddings {
            let credentials = SigningCredentials::from_key_material(&key, chain, password, padding)
                .unwrap_or_else(|e| panic!("{form:?} {name}: {e}"));
            let identity = credentials.identity();
            assert!(identity.key.starts_with(algorithm.description()), "{form:?} {name}: {identity}");
            assert_eq!(identity.subject, format!("O=esignsp tests,CN=signer {name}"), "{form:?}");
            assert_eq!(
                identity.issuer, "O=esignsp tests,CN=esignsp test root CA",
                "{form:?}: RFC 4514 order, the last RDN first"
            );
            assert_eq!(identity.chain_len, 1, "{form:?} {name}: the CA, from the PKCS#12 or the chain file");
            assert!(identity.not_before < identity.not_after, "{identity}");
            let original = multi_page_pdf(2);
            let signed = PadesSigner::new(credentials).sign_blocking(&original, &request()).expect("signed");
            assert!(signed.starts_with(&original), "the original is an unchanged prefix");
            let out = dir.join(format!("{name}.{padding:?}.signed.pdf"));
            std::fs::write(&out, &signed).expect("write");
            let (pdfsig, pyhanko) = validate(&dir, &out);
            println!(
                "== {form:?} {name} {padding:?}: {}\n-- identity: {identity}\n-- pdfsig\n  {}\n-- pyhanko\n  {}",
                form.describe(&dir, &file),
                excerpt(&pdfsig),
                excerpt(&pyhanko)
            );
        }
    }
}

#[test]
fn openssl_pkcs8_pem_keys_sign_and_validate() {
    every_algorithm_signs_from(Form::Pkcs8Pem);
}

#[test]
fn openssl_pkcs8_der_keys_sign_and_validate() {
    every_algorithm_signs_from(Form::Pkcs8Der);
}

#[test]
fn encrypted_pkcs8_aes_256_cbc_pbkdf2_keys_sign_and_validate() {
    every_algorithm_signs_from(Form::EncryptedAes256Pbkdf2);
}

#[test]
fn encrypted_pkcs8_scrypt_der_keys_sign_and_validate() {
    every_algorithm_signs_from(Form::EncryptedScryptDer);
}

#[test]
fn pkcs12_files_of_openssl_3_sign_and_validate_with_the_chain_they_carry() {
    every_algorithm_signs_from(Form::Pkcs12);
}

#[test]
fn legacy_pkcs12_files_sign_and_validate_with_the_chain_they_carry() {
    every_algorithm_signs_from(Form::Pkcs12Legacy);
}

fn load(key: &[u8], chain: Option<&[u8]>, password: Option<&str>) -> Result<SigningCredentials, CredentialsError> {
    SigningCredentials::from_key_material(key, chain, password, RsaPadding::Pkcs1v15)
}

#[test]
fn a_wrong_or_missing_password_is_told_apart_from_a_damaged_file() {
    let dir = scratch("passwords");
    let ca = ca(&dir);
    let signer = ca.signer(&dir, Algorithm::P256, "signer");
    let chain = std::fs::read(&signer.chain).expect("read");
    for form in Form::ALL.into_iter().filter(|f| f.needs_password()) {
        let key = std::fs::read(form.write(&dir, &signer, "p256")).expect("read");
        let chain = (!form.is_pkcs12()).then_some(chain.as_slice());
        assert!(load(&key, chain, Some(PASSWORD)).is_ok(), "{form:?}: the right password opens it");
        let wrong = load(&key, chain, Some("Tr0ub4dor&3"));
        assert!(matches!(wrong, Err(CredentialsError::WrongPassword)), "{form:?}, a wrong password: {wrong:?}");
        let empty = load(&key, chain, Some(""));
        assert!(matches!(empty, Err(CredentialsError::WrongPassword)), "{form:?}, the empty password: {empty:?}");
        let missing = load(&key, chain, None);
        assert!(matches!(missing, Err(CredentialsError::PasswordRequired)), "{form:?}, no password: {missing:?}");
        println!(
            "{form:?}: wrong → {}; none → {}",
            wrong.err().map(|e| e.to_string()).unwrap_or_default(),
            missing.err().map(|e| e.to_string()).unwrap_or_default()
        );

        // Every prefix: a clear error, never a panic nor a key.
        for len in (0..key.len()).step_by(13) {
            let outcome = std::panic::catch_unwind(|| load(&key[..len], chain, Some(PASSWORD)));
            let outcome = outcome.unwrap_or_else(|_| panic!("{form:?}: the first {len} bytes panicked"));
            assert!(
                matches!(outcome, Err(CredentialsError::UnreadableKey(_) | CredentialsError::WrongPassword)),
                "{form:?}, the first {len} of {} bytes: {outcome:?}",
                key.len()
            );
        }
    }
}

#[test]
fn garbage_and_damaged_key_files_are_unreadable_never_a_panic() {
    let dir = scratch("garbage");
    let ca = ca(&dir);
    let signer = ca.signer(&dir, Algorithm::Rsa2048, "signer");
    let chain = std::fs::read(&signer.chain).expect("read");
    for garbage in [
        &b""[..],
        b"nope",
        b"\x30",
        b"\x30\x82\xff\xff",
        b"\x30\x03\x02\x01\x03",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
    ] {
        let outcome = load(garbage, Some(&chain), Some(PASSWORD));
        assert!(matches!(outcome, Err(CredentialsError::UnreadableKey(_))), "{garbage:?}: {outcome:?}");
    }
    // Random bytes and random changes to each form: an error or (for a change the file
    // survives) a key, never a panic.
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        // xorshift64: a fixed sequence, so a failure repeats.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    for form in Form::ALL {
        let key = std::fs::read(form.write(&dir, &signer, "rsa")).expect("read");
        let chain = (!form.is_pkcs12()).then_some(chain.as_slice());
        for round in 0..60 {
            let mut bytes = key.clone();
            for _ in 0..=(next() % 3) {
                let at = usize::try_from(next() % bytes.len() as u64).expect("index");
                bytes[at] = (next() & 0xff) as u8;
            }
            let outcome = std::panic::catch_unwind(|| load(&bytes, chain, Some(PASSWORD)))
                .unwrap_or_else(|_| panic!("{form:?} round {round}: a changed key file panicked"));
            let kind = match outcome {
                Ok(_) => "loaded".to_owned(),
                Err(e) => format!("{e:?}").split('(').next().unwrap_or_default().to_owned(),
            };
            *errors.entry(kind).or_default() += 1;
        }
    }
    for len in [1, 100, 1000, 5000] {
        let bytes: Vec<u8> = (0..len).map(|_| (next() & 0xff) as u8).collect();
        let outcome = load(&bytes, Some(&chain), Some(PASSWORD));
        assert!(matches!(outcome, Err(CredentialsError::UnreadableKey(_))), "{len} random bytes: {outcome:?}");
    }
    println!("changed key files: {errors:?}");
    assert!(errors.contains_key("WrongPassword"), "a changed PKCS#12 fails its MAC: {errors:?}");
    assert!(errors.contains_key("UnreadableKey"), "{errors:?}");
}

#[test]
fn key_files_without_a_usable_key_or_certificate_are_refused_with_the_reason() {
    let dir = scratch("refused");
    let ca = ca(&dir);
    let signer = ca.signer(&dir, Algorithm::P384, "signer");
    let other = ca.signer(&dir, Algorithm::P384, "other");
    let pass = format!("pass:{PASSWORD}");
    let read = |name: &str| std::fs::read(dir.join(name)).expect("read");
    let key_pem = std::fs::read(&signer.key).expect("read");

    // A PEM key without any certificate.
    let outcome = load(&key_pem, None, None);
    assert!(matches!(outcome, Err(CredentialsError::NoCertificate)), "a key alone: {outcome:?}");
    // A PEM key with its certificate in the same file: no chain file needed.
    let mut combined = key_pem.clone();
    combined.extend(std::fs::read(&signer.chain).expect("read"));
    let loaded = load(&combined, None, None).expect("a key with its certificates in one PEM file");
    assert_eq!(loaded.identity().chain_len, 1);
    // A key with another signer's chain.
    let encrypted = std::fs::read(Form::EncryptedAes256Pbkdf2.write(&dir, &signer, "p384")).expect("read");
    let outcome = load(&encrypted, Some(&std::fs::read(&other.chain).expect("read")), Some(PASSWORD));
    assert!(matches!(outcome, Err(CredentialsError::NoMatchingCertificate)), "another's chain: {outcome:?}");
    // An empty chain file.
    let outcome = load(&encrypted, Some(b""), Some(PASSWORD));
    assert!(matches!(outcome, Err(CredentialsError::UnreadableChain(_))), "an empty chain file: {outcome:?}");

    // A PKCS#12 trust store (certificates, no key).
    openssl(
        &dir,
        &["pkcs12", "-export", "-nokeys", "-in", path(&signer.chain), "-out", "certs.p12", "-passout", &pass],
    );
    let outcome = load(&read("certs.p12"), None, Some(PASSWORD));
    assert!(matches!(outcome, Err(CredentialsError::NoKeyInPkcs12)), "certificates only: {outcome:?}");
    // A PKCS#12 with a key and no certificate.
    openssl(
        &dir,
        &["pkcs12", "-export", "-nocerts", "-inkey", path(&signer.key), "-out", "key.p12", "-passout", &pass],
    );
    let outcome = load(&read("key.p12"), Some(&std::fs::read(&signer.chain).expect("read")), Some(PASSWORD));
    assert!(matches!(outcome, Err(CredentialsError::NoKeyInPkcs12)), "a key without its certificate: {outcome:?}");
    // A PKCS#12 whose certificate is not the key's: openssl refuses to write one, so pair
    // the signer's key with the other's certificate in a PEM file instead.
    let mut mismatched = key_pem.clone();
    mismatched.extend(std::fs::read(&other.cert).expect("read"));
    let outcome = load(&mismatched, None, None);
    assert!(matches!(outcome, Err(CredentialsError::NoMatchingCertificate)), "another's certificate: {outcome:?}");

    // An Ed25519 key in a PKCS#12 file, with a self-signed certificate.
    openssl(&dir, &["genpkey", "-algorithm", "ED25519", "-out", "ed.key.pem"]);
    openssl(&dir, &["req", "-x509", "-key", "ed.key.pem", "-subj", "/CN=ed", "-days", "2", "-out", "ed.pem"]);
    openssl(&dir, &["pkcs12", "-export", "-inkey", "ed.key.pem", "-in", "ed.pem", "-out", "ed.p12", "-passout", &pass]);
    let outcome = load(&read("ed.p12"), None, Some(PASSWORD));
    assert!(matches!(outcome, Err(CredentialsError::UnsupportedKey(_))), "Ed25519: {outcome:?}");

    // PKCS#8 with PBES1 (pbeWithSHA1And3-KeyTripleDES-CBC) and OpenSSL's own PEM encryption.
    openssl(
        &dir,
        &["pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES", "-in", path(&signer.key), "-out", "pbes1.pem", "-passout", &pass],
    );
    let outcome = load(&read("pbes1.pem"), None, Some(PASSWORD));
    assert!(matches!(outcome, Err(CredentialsError::UnsupportedEncryption(_))), "PBES1: {outcome:?}");
    openssl(
        &dir,
        &["pkey", "-in", path(&signer.key), "-traditional", "-aes256", "-out", "trad.pem", "-passout", &pass],
    );
    let traditional = read("trad.pem");
    assert!(String::from_utf8_lossy(&traditional).contains("Proc-Type: 4,ENCRYPTED"), "OpenSSL's own PEM encryption");
    let outcome = load(&traditional, None, Some(PASSWORD));
    assert!(matches!(outcome, Err(CredentialsError::UnsupportedEncryption(_))), "traditional: {outcome:?}");
    // An unencrypted SEC1 key: not PKCS#8.
    openssl(&dir, &["pkey", "-in", path(&signer.key), "-traditional", "-out", "sec1.pem"]);
    let outcome = load(&read("sec1.pem"), None, None);
    assert!(matches!(outcome, Err(CredentialsError::UnreadableKey(_))), "SEC1: {outcome:?}");
    println!("errors say, e.g.: {}", outcome.err().map(|e| e.to_string()).unwrap_or_default());
}
