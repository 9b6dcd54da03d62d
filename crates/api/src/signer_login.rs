//! The signer's login on the built-in signing page (`signing.signer_authentication = "oidc"`,
//! SPEC §10): esignsp as an OpenID Connect relying party with the `openidconnect` crate.
//!
//! * [`SignerLogin::start`]: the authorization request of the code flow (OpenID Connect Core
//!   1.0 §3.1.2) with PKCE S256 (RFC 7636), a random `state` and `nonce`. What the callback
//!   needs (the PKCE verifier, the nonce, the process and task) is kept server side for
//!   [`PENDING_LOGIN_TTL`], keyed by `state`, and used once.
//! * [`SignerLogin::finish`]: the callback's code exchanged at the token endpoint
//!   (§3.1.3), the ID token verified (signature with the provider's keys, `iss`, `aud`, `exp`,
//!   `nonce`, §3.1.3.7) and, when it carries neither `name` nor `email`, the UserInfo endpoint
//!   asked for them (§5.3, its `sub` checked against the ID token's).
//!
//! The provider's metadata and keys are discovered (OpenID Connect Discovery 1.0 §4) on first
//! use, kept for [`METADATA_TTL`] and discovered again when an ID token's signature does not
//! verify with them (key rotation). The server starts while the provider is down; logins then
//! answer 503.
//!
//! The pending logins live in this process's memory: replicas behind one address need sticky
//! sessions for the few minutes of a login (the signer sessions that follow are cookies any
//! replica with the same `signing.form_secret` reads).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use esignsp_domain::{ProcessId, SignerIdentity, TaskId};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use secrecy::ExposeSecret;

use crate::config::{ConfigError, SigningSettings};

/// How long a started login may take to come back to the callback (10 minutes).
pub const PENDING_LOGIN_TTL: Duration = Duration::from_secs(600);

/// How long discovered provider metadata and keys are used before they are discovered again
/// (1 hour).
pub const METADATA_TTL: Duration = Duration::from_secs(3600);

/// Most logins pending at once; past it the oldest are forgotten.
const MAX_PENDING_LOGINS: u64 = 100_000;

/// Time-out of each request to the provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// The client of a discovered provider (authorization endpoint set; token and UserInfo
/// endpoints as the metadata has them).
type ProviderClient =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// A login started for one task, waiting for the provider's callback.
struct PendingLogin {
    process: ProcessId,
    task: TaskId,
    verifier: PkceCodeVerifier,
    nonce: Nonce,
}

/// A finished login: who logged in, for which task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    /// The process the login was started for.
    pub process: ProcessId,
    /// Its task when the login started.
    pub task: TaskId,
    /// The verified identity (`iss`, `sub`, `name`, `email`).
    pub identity: SignerIdentity,
}

/// Why a login cannot go on. Each is answered with an HTML page: 400 for
/// [`LoginError::Refused`] and [`LoginError::UnknownState`], 503 for
/// [`LoginError::Unavailable`].
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The provider cannot be reached, or answered with a server error (discovery, token or
    /// UserInfo endpoint).
    #[error("the OpenID Provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused (an `error` on the callback, a code it does not exchange) or its
    /// answer does not verify (ID token signature, `iss`, `aud`, `nonce`, `exp`).
    #[error("the login was refused: {0}")]
    Refused(String),
    /// The callback's `state` is not one of a login started here (forged, used, or older than
    /// [`PENDING_LOGIN_TTL`]).
    #[error("the login is unknown or has expired")]
    UnknownState,
}

/// The OpenID Connect login of signers.
pub struct SignerLogin {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<ClientSecret>,
    scopes: Vec<Scope>,
    http: reqwest::Client,
    provider: moka::future::Cache<(), Arc<ProviderClient>>,
    pending: moka::future::Cache<String, Arc<PendingLogin>>,
}

impl std::fmt::Debug for SignerLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerLogin")
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id.as_str())
            .finish_non_exhaustive()
    }
}

/// An error and its causes in one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl SignerLogin {
    /// The login of `signing.oidc_issuer` as `signing.oidc_client_id` (with
    /// `signing.oidc_client_secret` unless empty), asking for `signing.oidc_scopes`. Nothing
    /// is fetched yet.
    ///
    /// # Errors
    /// [`ConfigError`] naming `signing.oidc_issuer` when it is not set.
    pub fn new(signing: &SigningSettings) -> Result<Self, ConfigError> {
        let issuer =
            signing.oidc_issuer.as_ref().ok_or_else(|| ConfigError("signing.oidc_issuer: not set".to_owned()))?;
        let issuer = IssuerUrl::new(issuer.clone()).map_err(|e| ConfigError(format!("signing.oidc_issuer: {e}")))?;
        let secret = signing.oidc_client_secret.expose_secret();
        let http = reqwest::Client::builder()
            // Following redirects would let the provider's answers send us anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|e| ConfigError(format!("signing.oidc_issuer: cannot build an HTTP client: {e}")))?;
        Ok(Self {
            issuer,
            client_id: ClientId::new(signing.oidc_client_id.clone()),
            client_secret: (!secret.is_empty()).then(|| ClientSecret::new(secret.to_owned())),
            scopes: signing.oidc_scopes.iter().filter(|s| *s != "openid").cloned().map(Scope::new).collect(),
            http,
            provider: moka::future::Cache::builder().max_capacity(1).time_to_live(METADATA_TTL).build(),
            pending: moka::future::Cache::builder()
                .max_capacity(MAX_PENDING_LOGINS)
                .time_to_live(PENDING_LOGIN_TTL)
                .build(),
        })
    }

    /// The provider's issuer identifier.
    #[must_use]
    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// The discovered client, discovering once for all concurrent callers.
    async fn client(&self) -> Result<Arc<ProviderClient>, LoginError> {
        self.provider
            .try_get_with((), async {
                let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http).await.map_err(
                    |e| {
                        tracing::warn!(issuer = %self.issuer.as_str(), error = %chain(&e), "OpenID Provider discovery failed");
                        LoginError::Unavailable(format!("discovery of {} failed: {}", self.issuer.as_str(), chain(&e)))
                    },
                )?;
                Ok(Arc::new(CoreClient::from_provider_metadata(
                    metadata,
                    self.client_id.clone(),
                    self.client_secret.clone(),
                )))
            })
            .await
            .map_err(|e: Arc<LoginError>| match &*e {
                LoginError::Unavailable(why) => LoginError::Unavailable(why.clone()),
                LoginError::Refused(why) => LoginError::Refused(why.clone()),
                LoginError::UnknownState => LoginError::UnknownState,
            })
    }

    /// Starts a login for `task` of `process`: the provider's authorization URL (code flow,
    /// PKCE S256, `state`, `nonce`, this configuration's scopes) to redirect the browser to,
    /// and the `state` (to bind to the browser too).
    ///
    /// # Errors
    /// [`LoginError::Unavailable`] when the provider's metadata cannot be discovered.
    pub async fn start(
        &self,
        process: &ProcessId,
        task: &TaskId,
        redirect_uri: &str,
    ) -> Result<(url::Url, String), LoginError> {
        let client = self.client().await?;
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| LoginError::Unavailable(format!("redirect URI {redirect_uri}: {e}")))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scopes(self.scopes.iter().cloned())
            .set_pkce_challenge(challenge)
            .set_redirect_uri(Cow::Owned(redirect))
            .url();
        let state = state.secret().clone();
        let pending = PendingLogin { process: process.clone(), task: task.clone(), verifier, nonce };
        self.pending.insert(state.clone(), Arc::new(pending)).await;
        Ok((url, state))
    }

    /// The process a pending login of `state` is for, without using it up.
    pub async fn pending_process(&self, state: &str) -> Option<ProcessId> {
        self.pending.get(state).await.map(|p| p.process.clone())
    }

    /// Forgets the pending login of `state` (the provider answered with an error).
    pub async fn forget(&self, state: &str) {
        self.pending.invalidate(state).await;
    }

    /// Finishes the login of `state` with the callback's `code`: exchanges it (with the PKCE
    /// verifier and `redirect_uri`), verifies the ID token and reads the identity. The
    /// pending login is used up whatever the outcome.
    ///
    /// # Errors
    /// [`LoginError::UnknownState`] for a `state` not pending here; [`LoginError::Refused`]
    /// when the token endpoint refuses the code or the ID token does not verify;
    /// [`LoginError::Unavailable`] when the provider cannot be reached.
    pub async fn finish(&self, state: &str, code: &str, redirect_uri: &str) -> Result<LoggedIn, LoginError> {
        // Removed, so that it is used once; the cache may still hold the value's `Arc` for a
        // moment, hence a copy of the verifier.
        let pending = self.pending.remove(state).await.ok_or(LoginError::UnknownState)?;
        let verifier = PkceCodeVerifier::new(pending.verifier.secret().clone());
        let client = self.client().await?;
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| LoginError::Unavailable(format!("redirect URI {redirect_uri}: {e}")))?;
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| LoginError::Unavailable(format!("the provider's metadata has no token endpoint: {e}")))?
            .set_pkce_verifier(verifier)
            .set_redirect_uri(Cow::Owned(redirect));
        let tokens = request.request_async(&self.http).await.map_err(|e| {
            use openidconnect::RequestTokenError as E;
            let why = chain(&e);
            tracing::warn!(error = %why, "the OpenID Provider's token endpoint did not exchange the code");
            match e {
                E::Request(_) => LoginError::Unavailable(format!("token endpoint: {why}")),
                E::ServerResponse(answer) => LoginError::Refused(format!("the token endpoint answered {answer}")),
                E::Parse(..) | E::Other(_) => LoginError::Refused(format!("token endpoint: {why}")),
            }
        })?;
        let id_token =
            tokens.id_token().ok_or_else(|| LoginError::Refused("the token endpoint gave no ID token".to_owned()))?;
        let verify = |client: &ProviderClient| {
            id_token.claims(&client.id_token_verifier(), &pending.nonce).map(|claims| {
                let name = claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_owned());
                let email = claims.email().map(|e| e.as_str().to_owned());
                (claims.issuer().as_str().to_owned(), claims.subject().clone(), name, email)
            })
        };
        let (issuer, subject, mut name, mut email) = match verify(&client) {
            Err(ClaimsVerificationError::SignatureVerification(e)) => {
                // Perhaps the provider rotated its keys: discover them again, once.
                tracing::info!(error = %chain(&e), "ID token signature did not verify; discovering the provider's keys again");
                self.provider.invalidate(&()).await;
                verify(&*self.client().await?)
            }
            other => other,
        }
        .map_err(|e| {
            tracing::warn!(error = %chain(&e), "the ID token does not verify");
            LoginError::Refused(format!("the ID token does not verify: {}", chain(&e)))
        })?;
        if name.is_none() && email.is_none() {
            if let Ok(request) = client.user_info(tokens.access_token().clone(), Some(subject.clone())) {
                // The UserInfo answer's `sub` must be the ID token's (Core 1.0 §5.3.2).
                let claims: CoreUserInfoClaims = request.request_async(&self.http).await.map_err(|e| {
                    use openidconnect::UserInfoError as E;
                    let why = chain(&e);
                    tracing::warn!(error = %why, "the OpenID Provider's UserInfo endpoint failed");
                    match e {
                        E::Request(_) => LoginError::Unavailable(format!("UserInfo endpoint: {why}")),
                        _ => LoginError::Refused(format!("UserInfo endpoint: {why}")),
                    }
                })?;
                name = claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_owned());
                email = claims.email().map(|e| e.as_str().to_owned());
            }
        }
        Ok(LoggedIn {
            process: pending.process.clone(),
            task: pending.task.clone(),
            identity: SignerIdentity { issuer, subject: subject.as_str().to_owned(), name, email },
        })
    }
}
