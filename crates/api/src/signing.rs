//! The built-in signing application (SPEC §10), as the API holds it: the [`DocumentSigner`] of
//! `[signing]` and the key of the signing page's CSRF tokens.

use std::sync::Arc;

use esignsp_adapters::pades::development::DevelopmentIdentity;
use esignsp_adapters::pades::{PadesOptions, PadesSigner, RsaPadding, SigningCredentials};
use esignsp_domain::{DocumentSigner, ProcessId, SignerIdentity, TaskId};
use ring::hmac;
use secrecy::ExposeSecret;

use crate::config::{ConfigError, RsaPaddingName, Settings, SignerAuthentication};
use crate::signer_login::SignerLogin;

/// The built-in signing application: its signer, the key of its form tokens and signer
/// sessions, and the signer's login when `signing.signer_authentication = "oidc"`.
pub struct BuiltinSigning {
    /// Signs every document of a process on *Sign*.
    pub signer: Arc<dyn DocumentSigner>,
    /// The OpenID Connect login of signers; `None`: the task URL is the capability.
    pub login: Option<SignerLogin>,
    /// What the page says of each document's pages, by the document's SHA-256: a PDF is read
    /// once, not on every view of the page.
    pub pages: moka::future::Cache<String, String>,
    /// One *Sign* at a time per process on this replica: a second (repeated, concurrent) POST
    /// waits for the first and then finds the result established, instead of signing every
    /// document again (and asking the TSA again).
    pub in_flight: moka::future::Cache<ProcessId, Arc<tokio::sync::Mutex<()>>>,
    form_key: hmac::Key,
}

/// How long a signer stays logged in for a task (30 minutes).
pub const SIGNER_SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// A signer logged in for one task (`signing.signer_authentication = "oidc"`): what the
/// session cookie of the signing page holds, HMAC-signed ([`BuiltinSigning::seal_session`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerSession {
    /// The process the login was for.
    pub process: ProcessId,
    /// Its task at login time.
    pub task: TaskId,
    /// Who logged in (the ID token's `iss`, `sub`, `name`, `email`).
    pub identity: SignerIdentity,
    /// When the session ends, in seconds since the Unix epoch.
    pub expires_at: u64,
}

/// The JSON of a sealed [`SignerSession`].
#[derive(serde::Serialize, serde::Deserialize)]
struct SealedSession {
    p: String,
    t: String,
    iss: String,
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    exp: u64,
}

impl std::fmt::Debug for BuiltinSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinSigning").field("level", &self.signer.level()).finish_non_exhaustive()
    }
}

/// The domain-separation label of form tokens.
const FORM_TOKEN_LABEL: &[u8] = b"esignsp signing page form v1\0";
/// The domain-separation label of form tokens bound to a logged-in signer.
const SIGNER_FORM_TOKEN_LABEL: &[u8] = b"esignsp signing page signer form v1\0";
/// The domain-separation label of sealed signer sessions.
const SESSION_LABEL: &[u8] = b"esignsp signer session v1\0";

impl BuiltinSigning {
    /// The signing application of `signer`, with form tokens keyed by `form_secret` (random
    /// when empty).
    #[must_use]
    pub fn new(signer: Arc<dyn DocumentSigner>, form_secret: &str) -> Self {
        let form_key = if form_secret.is_empty() {
            hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
                .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, &rand::random::<[u8; 32]>()))
        } else {
            hmac::Key::new(hmac::HMAC_SHA256, form_secret.as_bytes())
        };
        Self {
            signer,
            login: None,
            pages: moka::future::Cache::builder().max_capacity(10_000).build(),
            in_flight: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(std::time::Duration::from_secs(600))
                .build(),
            form_key,
        }
    }

    /// This signing application with signers logging in through `login` first.
    #[must_use]
    pub fn with_login(mut self, login: SignerLogin) -> Self {
        self.login = Some(login);
        self
    }

    /// The CSRF token of the signing page's forms for one task: base64url of
    /// HMAC-SHA-256(key, label ‖ process id ‖ NUL ‖ task id) (RFC 2104). It binds a POST to the
    /// task it was shown for; it changes with neither time nor session, since the task URL
    /// itself is the capability (`signing.signer_authentication = "none"`).
    #[must_use]
    pub fn form_token(&self, process: &ProcessId, task: &TaskId) -> String {
        let tag = hmac::sign(&self.form_key, &Self::message(process, task));
        data_encoding::BASE64URL_NOPAD.encode(tag.as_ref())
    }

    /// Whether `token` is [`BuiltinSigning::form_token`] of this task (compared in constant
    /// time).
    #[must_use]
    pub fn check_form_token(&self, process: &ProcessId, task: &TaskId, token: &str) -> bool {
        data_encoding::BASE64URL_NOPAD
            .decode(token.as_bytes())
            .is_ok_and(|tag| hmac::verify(&self.form_key, &Self::message(process, task), &tag).is_ok())
    }

    fn message(process: &ProcessId, task: &TaskId) -> Vec<u8> {
        [FORM_TOKEN_LABEL, process.as_str().as_bytes(), b"\0", task.as_str().as_bytes()].concat()
    }

    /// The CSRF token of the signing page's forms for one task and the signer logged in for
    /// it: base64url of HMAC-SHA-256(key, label ‖ process ‖ NUL ‖ task ‖ NUL ‖ iss ‖ NUL ‖ sub)
    /// (RFC 2104), so that a form shown to one signer cannot be posted with another's session.
    #[must_use]
    pub fn signer_form_token(&self, session: &SignerSession) -> String {
        let tag = hmac::sign(&self.form_key, &Self::signer_message(session));
        data_encoding::BASE64URL_NOPAD.encode(tag.as_ref())
    }

    /// Whether `token` is [`BuiltinSigning::signer_form_token`] of `session` (constant time).
    #[must_use]
    pub fn check_signer_form_token(&self, session: &SignerSession, token: &str) -> bool {
        data_encoding::BASE64URL_NOPAD
            .decode(token.as_bytes())
            .is_ok_and(|tag| hmac::verify(&self.form_key, &Self::signer_message(session), &tag).is_ok())
    }

    fn signer_message(session: &SignerSession) -> Vec<u8> {
        let SignerIdentity { issuer, subject, .. } = &session.identity;
        [
            SIGNER_FORM_TOKEN_LABEL,
            session.process.as_str().as_bytes(),
            b"\0",
            session.task.as_str().as_bytes(),
            b"\0",
            issuer.as_bytes(),
            b"\0",
            subject.as_bytes(),
        ]
        .concat()
    }

    /// The value of a session cookie holding `session`: base64url(JSON) `.`
    /// base64url(HMAC-SHA-256(key, label ‖ JSON)) (RFC 2104). Readable by the browser, which
    /// sees only its own identity; unforgeable without the key (`signing.form_secret`).
    #[must_use]
    pub fn seal_session(&self, session: &SignerSession) -> String {
        let sealed = SealedSession {
            p: session.process.as_str().to_owned(),
            t: session.task.as_str().to_owned(),
            iss: session.identity.issuer.clone(),
            sub: session.identity.subject.clone(),
            name: session.identity.name.clone(),
            email: session.identity.email.clone(),
            exp: session.expires_at,
        };
        // A struct of strings and a number always serializes.
        let json = serde_json::to_vec(&sealed).unwrap_or_default();
        let tag = hmac::sign(&self.form_key, &[SESSION_LABEL, &json].concat());
        format!(
            "{}.{}",
            data_encoding::BASE64URL_NOPAD.encode(&json),
            data_encoding::BASE64URL_NOPAD.encode(tag.as_ref())
        )
    }

    /// The session sealed in `cookie` by [`BuiltinSigning::seal_session`] with this key, if
    /// its tag verifies (constant time) and it has not expired at `now` (seconds since the
    /// Unix epoch). Anything else — tampered, foreign, expired, malformed — is `None`.
    #[must_use]
    pub fn open_session(&self, cookie: &str, now: u64) -> Option<SignerSession> {
        let (json, tag) = cookie.split_once('.')?;
        let json = data_encoding::BASE64URL_NOPAD.decode(json.as_bytes()).ok()?;
        let tag = data_encoding::BASE64URL_NOPAD.decode(tag.as_bytes()).ok()?;
        hmac::verify(&self.form_key, &[SESSION_LABEL, &json].concat(), &tag).ok()?;
        let sealed: SealedSession = serde_json::from_slice(&json).ok()?;
        if sealed.exp <= now {
            return None;
        }
        Some(SignerSession {
            process: ProcessId::parse(&sealed.p).ok()?,
            task: TaskId::parse(&sealed.t).ok()?,
            identity: SignerIdentity {
                issuer: sealed.iss,
                subject: sealed.sub,
                name: sealed.name,
                email: sealed.email,
            },
            expires_at: sealed.exp,
        })
    }
}

/// The signer of `[signing]`, or `None` when O12 redirects to `ui.signing_app_url` instead.
/// In the development set-up the development identity is generated in `server.data_dir` on
/// first start (with a loud warning). The certificate must be valid now.
///
/// # Errors
/// [`ConfigError`] naming `signing.key_file` or `signing.certificate_chain_file` when they
/// cannot be read or used, or the certificate is not valid now.
pub fn build_signing(settings: &Settings) -> Result<Option<BuiltinSigning>, ConfigError> {
    if !settings.builtin_signing() {
        return Ok(None);
    }
    let signing = &settings.signing;
    require_key(settings)?;
    if signing.development_identity {
        let (identity, generated) = DevelopmentIdentity::ensure(&settings.server.data_dir)
            .map_err(|e| ConfigError(format!("server.data_dir: {e}")))?;
        tracing::warn!(
            generated,
            trust_root = %identity.ca_file.display(),
            "DEVELOPMENT SIGNING IDENTITY: documents are signed with a certificate of a development CA made in the \
             data directory, which no one trusts. Never use it in production: set signing.key_file and \
             signing.certificate_chain_file"
        );
    }
    let signer = load_signer(settings)?;
    tracing::info!(identity = %describe(&signer), level = %signing.level, "built-in signing page enabled");
    let form_secret = form_secret(settings)?;
    let mut builtin = BuiltinSigning::new(Arc::new(signer), &form_secret);
    if signing.signer_authentication == SignerAuthentication::Oidc {
        let login = SignerLogin::new(signing)?;
        tracing::info!(issuer = %login.issuer(), "signers log in with OpenID Connect");
        builtin = builtin.with_login(login);
    }
    Ok(Some(builtin))
}

/// File name, in `server.data_dir`, of the form-token key made when `signing.form_secret` is
/// unset: kept across restarts, so that a page opened before one still signs after it.
pub const FORM_SECRET_FILE: &str = "signing-form-secret";

/// `signing.form_secret`, or, when unset, the key in [`FORM_SECRET_FILE`] (32 random bytes as
/// hex, written owner-only on first start). Several replicas behind one address need the same
/// `signing.form_secret`: each has its own file otherwise (logged at start).
///
/// # Errors
/// [`ConfigError`] naming `server.data_dir` when the file cannot be read or written.
fn form_secret(settings: &Settings) -> Result<String, ConfigError> {
    let configured = settings.signing.form_secret.expose_secret();
    if !configured.is_empty() {
        return Ok(configured.to_owned());
    }
    let dir = &settings.server.data_dir;
    let path = dir.join(FORM_SECRET_FILE);
    let fail = |e: std::io::Error| ConfigError(format!("server.data_dir: {}: {e}", path.display()));
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= 32 => return Ok(secret.trim().to_owned()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        _ => {}
    }
    std::fs::create_dir_all(dir).map_err(fail)?;
    let secret = data_encoding::HEXLOWER.encode(&rand::random::<[u8; 32]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&path).map_err(fail)?, secret.as_bytes()).map_err(fail)?;
    if !settings.development {
        tracing::warn!(
            file = %path.display(),
            "signing.form_secret is unset: the signing page's form tokens use a key made in the data directory; \
             replicas behind one address need one signing.form_secret"
        );
    }
    Ok(secret)
}

/// Outside the development set-up, the built-in signing page needs `signing.key_file`
/// (SPEC §10): one line naming both ways out.
fn require_key(settings: &Settings) -> Result<(), ConfigError> {
    if settings.signing.key_file.is_some() {
        return Ok(());
    }
    Err(ConfigError(
        "signing.key_file, ui.signing_app_url: neither is set: set signing.key_file (with \
         signing.certificate_chain_file) for the built-in signing page, or ui.signing_app_url for an external \
         signing application"
            .to_owned(),
    ))
}

/// What `esignsp check-config` says of signing, without creating anything: the signing
/// identity ([`describe`]) and level, that the development identity will be generated, or
/// that an external signing application is used.
///
/// # Errors
/// As [`build_signing`]: no key, a key or chain that cannot be used, a certificate not valid
/// now.
pub fn check(settings: &Settings) -> Result<String, ConfigError> {
    if !settings.builtin_signing() {
        return Ok("signing: the external signing application of ui.signing_app_url".to_owned());
    }
    require_key(settings)?;
    let identity = DevelopmentIdentity::in_dir(&settings.server.data_dir);
    if settings.signing.development_identity && !identity.exists() {
        return Ok(format!(
            "signing: development set-up: `esignsp serve` will generate a development signing identity in {}",
            settings.server.data_dir.display()
        ));
    }
    let signer = load_signer(settings)?;
    let login = match (&settings.signing.signer_authentication, &settings.signing.oidc_issuer) {
        (SignerAuthentication::Oidc, Some(issuer)) => {
            format!("; signers log in with OpenID Connect at {issuer} as client {}", settings.signing.oidc_client_id)
        }
        _ => String::new(),
    };
    Ok(format!("signing: built-in, level {}, identity: {}{login}", settings.signing.level, describe(&signer)))
}

/// The PAdES signer of `[signing]`, its certificate checked to be valid now.
///
/// # Errors
/// As [`build_signing`].
pub fn load_signer(settings: &Settings) -> Result<PadesSigner, ConfigError> {
    let signing = &settings.signing;
    let key = signing.key_file.as_deref().ok_or_else(|| ConfigError("signing.key_file: not set".to_owned()))?;
    let padding = match signing.rsa_padding {
        RsaPaddingName::Pkcs1v15 => RsaPadding::Pkcs1v15,
        RsaPaddingName::Pss => RsaPadding::Pss,
    };
    let read = |name: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| ConfigError(format!("{name}: cannot read {}: {e}", path.display())))
    };
    let key_material = read("signing.key_file", key)?;
    let chain =
        signing.certificate_chain_file.as_deref().map(|f| read("signing.certificate_chain_file", f)).transpose()?;
    let password = signing.key_password.expose_secret();
    let credentials = SigningCredentials::from_key_material(
        &key_material,
        chain.as_deref(),
        (!password.is_empty()).then_some(password),
        padding,
    )
    .map_err(|e| ConfigError(format!("signing.key_file, signing.key_password, signing.certificate_chain_file: {e}")))?;
    let options = PadesOptions {
        level: signing.level,
        tsa_url: signing.tsa_url.clone(),
        timeout: std::time::Duration::from_secs(signing.timeout_seconds.get()),
    };
    let signer =
        PadesSigner::with_options(credentials, options).map_err(|e| ConfigError(format!("signing.tsa_url: {e}")))?;
    let validity = &signer.credentials().certificate().tbs_certificate.validity;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    if now < validity.not_before.to_unix_duration() || validity.not_after.to_unix_duration() < now {
        return Err(ConfigError(format!(
            "signing.certificate_chain_file: the signing certificate is not valid now (valid from {} to {})",
            validity.not_before, validity.not_after
        )));
    }
    Ok(signer)
}

/// The signing identity in one line (`esignsp check-config`, the start-up log): subject,
/// issuer, serial, validity, key type and the rest of the chain.
#[must_use]
pub fn describe(signer: &PadesSigner) -> String {
    signer.credentials().identity().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    #[async_trait::async_trait]
    impl DocumentSigner for Nothing {
        fn level(&self) -> esignsp_domain::SignatureLevel {
            esignsp_domain::SignatureLevel::BB
        }

        async fn sign(
            &self,
            _: &[u8],
            _: &esignsp_domain::SignatureRequest,
        ) -> Result<Vec<u8>, esignsp_domain::SigningError> {
            Err(esignsp_domain::SigningError::NotPdf)
        }
    }

    #[test]
    fn a_form_token_is_bound_to_its_task_and_key() {
        let process = ProcessId::from_random([1; 20]);
        let (task, other_task) = (TaskId::from_random([2; 20]), TaskId::from_random([3; 20]));
        let signing = BuiltinSigning::new(Arc::new(Nothing), "a form secret of at least 32 characters");
        let token = signing.form_token(&process, &task);
        assert!(signing.check_form_token(&process, &task, &token));
        assert!(!signing.check_form_token(&process, &other_task, &token));
        assert!(!signing.check_form_token(&ProcessId::from_random([4; 20]), &task, &token));
        assert!(!signing.check_form_token(&process, &task, ""));
        assert!(!signing.check_form_token(&process, &task, "not base64 !"));
        let same_key = BuiltinSigning::new(Arc::new(Nothing), "a form secret of at least 32 characters");
        assert!(same_key.check_form_token(&process, &task, &token), "replicas with one secret agree");
        let random = BuiltinSigning::new(Arc::new(Nothing), "");
        assert!(!random.check_form_token(&process, &task, &token));
    }

    #[test]
    fn a_sealed_session_opens_only_untouched_with_its_key_and_before_it_expires() {
        let signing = BuiltinSigning::new(Arc::new(Nothing), "a form secret of at least 32 characters");
        let session = SignerSession {
            process: ProcessId::from_random([1; 20]),
            task: TaskId::from_random([2; 20]),
            identity: SignerIdentity {
                issuer: "https://op.example".to_owned(),
                subject: "ada".to_owned(),
                name: Some("Ada Lovelace".to_owned()),
                email: None,
            },
            expires_at: 1_000,
        };
        let cookie = signing.seal_session(&session);
        assert_eq!(signing.open_session(&cookie, 999), Some(session.clone()));
        assert_eq!(signing.open_session(&cookie, 1_000), None, "expired");
        let other_key = BuiltinSigning::new(Arc::new(Nothing), "another form secret of 32 characters!");
        assert_eq!(other_key.open_session(&cookie, 0), None, "sealed with another key");
        let (json, tag) = cookie.split_once('.').expect("two parts");
        let mut forged = data_encoding::BASE64URL_NOPAD.decode(json.as_bytes()).expect("base64");
        let at = forged.iter().position(|b| *b == b'a').expect("an a in the JSON");
        forged[at] = b'b';
        let forged = format!("{}.{tag}", data_encoding::BASE64URL_NOPAD.encode(&forged));
        assert_eq!(signing.open_session(&forged, 0), None, "a changed payload");
        for garbage in ["", ".", "x.y", "not base64!.x", &format!("{json}.")] {
            assert_eq!(signing.open_session(garbage, 0), None, "{garbage:?}");
        }

        let token = signing.signer_form_token(&session);
        assert!(signing.check_signer_form_token(&session, &token));
        let mallory = SignerSession {
            identity: SignerIdentity { subject: "mallory".to_owned(), ..session.identity.clone() },
            ..session.clone()
        };
        assert!(!signing.check_signer_form_token(&mallory, &token), "bound to the signer");
        assert!(
            !signing.check_form_token(&session.process, &session.task, &token),
            "not a token of the page without login"
        );
        assert!(!signing.check_signer_form_token(&session, &signing.form_token(&session.process, &session.task)));
    }
}
