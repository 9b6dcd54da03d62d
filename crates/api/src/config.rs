//! Configuration (SPEC §7): built-in defaults → the TOML file of `--config` / `ESIGNSP_CONFIG`
//! → `ESIGNSP__<SECTION>__<KEY>` environment variables (lists comma-separated).
//! `DATABASE_URL`, when set, is the default for `database.url`.
//!
//! Values are typed where they are read: a URL key holds a parsed [`Url`] (empty: none), a
//! closed set of names an enum, a count or time-out that cannot be 0 a `NonZero…` number. A
//! value that cannot be one fails to deserialize with a line naming its key and what it
//! expects; [`Settings::validate`] keeps only the rules between keys.

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use esignsp_domain::SignatureLevel;
use jsonwebtoken::Algorithm;
use secrecy::{ExposeSecret, SecretString};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

fn invalid(key: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("{key}: {why}"))
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `[server]`.
    pub server: ServerSettings,
    /// `[database]`.
    pub database: DatabaseSettings,
    /// `[auth]`.
    pub auth: AuthSettings,
    /// `[processes]`.
    pub processes: ProcessSettings,
    /// `[ui]`.
    pub ui: UiSettings,
    /// `[signing]`.
    pub signing: SigningSettings,
    /// `[webhooks]`.
    pub webhooks: WebhookSettings,
    /// `[log]`.
    pub log: LogSettings,
    /// True when no authorization is configured at all: a development set-up with a signing
    /// key generated in `server.data_dir`. Only when none of `auth.issuer`,
    /// `auth.public_key_files`, `auth.dev_signing_key_file`, `auth.jwks_url` and
    /// `auth.introspection_url` is present in any layer, not even with an empty value.
    #[serde(skip)]
    pub development: bool,
}

/// The issuer of development tokens (`esignsp token` without configured auth).
pub const DEV_ISSUER: &str = "https://esignsp.dev.invalid";

/// File name of the development signing key in `server.data_dir`.
pub const DEV_KEY_FILE: &str = "dev-signing-key.pem";

/// Longest accepted `processes.ttl_seconds`: ten years.
pub const MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// File name of the embedded database in `server.data_dir`.
pub const SQLITE_FILE: &str = "esignsp.db";

/// `[server]`: the listener and request limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to bind (`127.0.0.1`).
    pub host: String,
    /// Port to bind (`8080`; `0` picks a free port).
    pub port: u16,
    /// Base of the absolute URLs in representations, as clients reach the service (behind a
    /// reverse proxy: its address): an http(s) URL without a query. Unset or empty (the
    /// default): `http://<host>:<bound port>`, see [`ServerSettings::public_base`].
    #[serde(deserialize_with = "base_url", serialize_with = "redacted_http_url")]
    pub public_url: Option<Url>,
    /// Largest JSON body, in bytes after content decoding (256 KiB).
    pub max_json_bytes: NonZeroUsize,
    /// Most document bytes one request may carry (25 MiB).
    pub max_document_bytes: NonZeroUsize,
    /// How long in-flight requests may take to finish on shutdown, in seconds (30).
    #[serde(deserialize_with = "seconds")]
    pub shutdown_timeout_seconds: u64,
    /// How long a client may take to send a request body, in seconds (60); then 408.
    #[serde(deserialize_with = "positive_seconds")]
    pub body_timeout_seconds: NonZeroU64,
    /// Worker threads (0: one per core).
    #[serde(deserialize_with = "workers")]
    pub workers: usize,
    /// Directory of the embedded database and the development key (`esignsp-data`).
    pub data_dir: PathBuf,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            public_url: None,
            max_json_bytes: const { NonZeroUsize::new(256 * 1024).expect("positive") },
            max_document_bytes: const { NonZeroUsize::new(25 * 1024 * 1024).expect("positive") },
            shutdown_timeout_seconds: 30,
            body_timeout_seconds: const { NonZeroU64::new(60).expect("positive") },
            workers: 0,
            data_dir: PathBuf::from("esignsp-data"),
        }
    }
}

impl ServerSettings {
    /// The base of absolute URLs: `server.public_url` when set (as the url crate serializes
    /// it), else `http://<host>:<port>` with the port actually bound (an IPv6 host in
    /// brackets, RFC 3986 §3.2.2).
    #[must_use]
    pub fn public_base(&self, bound_port: u16) -> String {
        if let Some(url) = &self.public_url {
            return url.to_string();
        }
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("http://{host}:{bound_port}")
    }

    /// Why `server.public_url` looks wrong for the port served, if it does: it names another
    /// port than `bound_port`, either explicitly or, for this host or a loopback host, by its
    /// scheme's default. A URL of another host without a port (a reverse proxy's address) is
    /// never questioned.
    #[must_use]
    pub fn public_url_mismatch(&self, bound_port: u16) -> Option<String> {
        let url = self.public_url.as_ref()?;
        let port = url.port_or_known_default()?;
        let local = match url.host()? {
            url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost") || name == self.host,
            url::Host::Ipv4(ip) => ip.is_loopback() || ip.to_string() == self.host,
            url::Host::Ipv6(ip) => ip.is_loopback() || ip.to_string() == self.host.trim_matches(['[', ']']),
        };
        (port != bound_port && (url.port().is_some() || local)).then(|| {
            format!(
                "server.public_url {url} names port {port}, but the service listens on port {bound_port}: links in \
                 representations point there"
            )
        })
    }
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…` or `sqlite://…` URL; empty means `sqlite://<server.data_dir>/esignsp.db`.
    /// Its password is redacted whenever settings are printed.
    #[serde(deserialize_with = "database_url", serialize_with = "redact_url_password")]
    pub url: SecretString,
    /// Pool size (16).
    pub max_connections: NonZeroU32,
    /// How long a request waits for a pooled connection before answering 503, in seconds (5).
    #[serde(deserialize_with = "positive_seconds")]
    pub acquire_timeout_seconds: NonZeroU64,
    /// Run pending migrations when `serve` starts (true).
    pub migrate_on_start: bool,
    /// Longest a PostgreSQL statement or lock wait may take before the request answers 503,
    /// in seconds (10).
    #[serde(deserialize_with = "positive_seconds")]
    pub statement_timeout_seconds: NonZeroU64,
    /// `database.url` leads to a pooler in transaction mode, such as pgbouncer with
    /// `pool_mode = transaction` (false): statements then live only inside a transaction and
    /// the time-outs are set with `SET LOCAL`; migrations must run directly against PostgreSQL.
    pub transaction_pooling: bool,
    /// Coalesce concurrent result requests (O5, O7) into one batch load, one batch write and
    /// one commit on PostgreSQL (true; SPEC §8 group commit). SQLite ignores it: it has one
    /// writer.
    pub group_commit: bool,
    /// Most result requests in one group commit batch (64; at most 1024).
    pub group_commit_max_batch: NonZeroUsize,
    /// Most group commit batches in flight at once (1: the next batch gathers while one is
    /// written — fewer, larger batches cost PostgreSQL less); each holds one pooled connection, so at
    /// most `max_connections`.
    pub group_commit_lanes: NonZeroUsize,
}

/// The largest `database.group_commit_max_batch`.
pub const MAX_GROUP_COMMIT_BATCH: usize = 1024;

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from(""),
            max_connections: const { NonZeroU32::new(16).expect("positive") },
            acquire_timeout_seconds: const { NonZeroU64::new(5).expect("positive") },
            migrate_on_start: true,
            statement_timeout_seconds: const { NonZeroU64::new(10).expect("positive") },
            transaction_pooling: false,
            group_commit: true,
            group_commit_max_batch: const { NonZeroUsize::new(64).expect("positive") },
            group_commit_lanes: const { NonZeroUsize::new(1).expect("positive") },
        }
    }
}

/// `[auth]`: OAuth 2.0 bearer token verification (SPEC §6).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Scope every call needs, matched as a whole token: one scope token (RFC 6749 §3.3).
    #[serde(deserialize_with = "scope_token")]
    pub required_scope: String,
    /// Exact `iss` of accepted tokens.
    pub issuer: String,
    /// Accepted `aud` values: at least one, none empty.
    #[serde(deserialize_with = "audiences")]
    pub audience: Vec<String>,
    /// Allowed signature algorithms (RFC 7518 §3, RFC 8037): at least one, asymmetric only.
    #[serde(deserialize_with = "algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// PEM or JWK/JWKS files with verification keys.
    pub public_key_files: Vec<PathBuf>,
    /// The issuer's JWK Set URL (http or https); unset or empty: discovered from the issuer's
    /// metadata when no other key source is configured.
    #[serde(deserialize_with = "http_url", serialize_with = "redacted_http_url")]
    pub jwks_url: Option<Url>,
    /// Least interval between two JWKS fetches, in seconds.
    #[serde(deserialize_with = "positive_seconds")]
    pub jwks_min_refresh_seconds: NonZeroU64,
    /// Allowed clock skew, in seconds.
    #[serde(deserialize_with = "seconds")]
    pub leeway_seconds: u64,
    /// RFC 7662 introspection endpoint for opaque tokens (http or https; unset or empty: none).
    #[serde(deserialize_with = "http_url", serialize_with = "redacted_http_url")]
    pub introspection_url: Option<Url>,
    /// Client id for introspection.
    pub introspection_client_id: String,
    /// Client secret for introspection; redacted whenever settings are printed.
    #[serde(serialize_with = "redact_secret")]
    pub introspection_client_secret: SecretString,
    /// Longest time an introspection answer is cached, in seconds.
    #[serde(deserialize_with = "seconds")]
    pub introspection_cache_seconds: u64,
    /// How strict the claims of a token must be.
    pub profile: TokenProfile,
    /// Clients that may act on every process.
    pub trusted_clients: Vec<String>,
    /// Private key used by `esignsp token` (development only); its public half is trusted.
    pub dev_signing_key_file: Option<PathBuf>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            required_scope: "urn:safelayer:eidas:sign:process:document".to_owned(),
            issuer: String::new(),
            audience: vec!["esignsp".to_owned()],
            algorithms: vec![Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA],
            public_key_files: Vec::new(),
            jwks_url: None,
            jwks_min_refresh_seconds: const { NonZeroU64::new(30).expect("positive") },
            leeway_seconds: 60,
            introspection_url: None,
            introspection_client_id: String::new(),
            introspection_client_secret: SecretString::from(""),
            introspection_cache_seconds: 60,
            profile: TokenProfile::default(),
            trusted_clients: Vec::new(),
            dev_signing_key_file: None,
        }
    }
}

/// `auth.profile`: how strict the claims of an access token must be (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum TokenProfile {
    /// `rfc9068` (the default): RFC 9068 access tokens, `typ` `at+jwt`; `iss`, `exp`, `aud`,
    /// `sub`, `client_id`, `iat`, `jti` required.
    #[default]
    Rfc9068,
    /// `lenient`: for authorization servers that do not issue RFC 9068 tokens yet.
    Lenient,
}

impl FromStr for TokenProfile {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "rfc9068" => Ok(Self::Rfc9068),
            "lenient" => Ok(Self::Lenient),
            other => Err(expected_one_of(&["rfc9068", "lenient"], other)),
        }
    }
}

impl TryFrom<String> for TokenProfile {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        name.parse()
    }
}

impl From<TokenProfile> for esignsp_adapters::jwt::Profile {
    fn from(profile: TokenProfile) -> Self {
        match profile {
            TokenProfile::Rfc9068 => Self::Rfc9068,
            TokenProfile::Lenient => Self::Lenient,
        }
    }
}

/// `[processes]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessSettings {
    /// How long a process may stay pending, in seconds (3600; 1 to [`MAX_TTL_SECONDS`]).
    #[serde(deserialize_with = "ttl_seconds")]
    pub ttl_seconds: NonZeroU64,
    /// How often the background sweeper expires overdue processes, in seconds (30; 0: never,
    /// expiry then happens on read only).
    #[serde(deserialize_with = "seconds")]
    pub sweep_interval_seconds: u64,
}

impl Default for ProcessSettings {
    fn default() -> Self {
        Self { ttl_seconds: const { NonZeroU64::new(3600).expect("positive") }, sweep_interval_seconds: 30 }
    }
}

/// `[webhooks]`: notifications of state changes to the clients' endpoints (SPEC §11).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Whether state changes write webhook notifications and this replica delivers them
    /// (true). Off, the endpoints resource answers 404 and the transition writes no outbox row.
    pub enabled: bool,
    /// Plain `http` endpoint URLs are accepted (false; development only).
    pub allow_insecure: bool,
    /// Private, loopback, link-local and other non-public targets are accepted (false;
    /// development only): server-side request forgery protection.
    pub allow_private_targets: bool,
    /// Attempts per delivery, the first included (8; 1 to 100).
    pub max_attempts: u32,
    /// The wait before the first retry, in seconds (60); each next wait is 4 times longer, up
    /// to `retry_max_delay_seconds`, with ±20 % jitter.
    pub retry_initial_delay_seconds: f64,
    /// The longest wait between two attempts, in seconds (36000: 10 h).
    pub retry_max_delay_seconds: f64,
    /// An endpoint whose deliveries fail, without a success, for this many hours is disabled
    /// (120).
    pub disable_after_hours: f64,
    /// Longest exchange with an endpoint, in seconds (10; 1 to 86400).
    #[serde(deserialize_with = "positive_seconds")]
    pub timeout_seconds: NonZeroU64,
    /// How often the worker looks for due deliveries when it was not woken by a local change,
    /// in milliseconds (1000; 10 to 60000).
    pub poll_interval_ms: u64,
    /// Attempts this replica makes at once (64; 1 to 1000), at most 4 to one endpoint.
    pub concurrency: u32,
    /// Endpoints one client may register (16).
    pub max_endpoints_per_client: u32,
    /// Days a settled (delivered or failed) delivery and its attempts are kept in the delivery
    /// log before they are purged (30; more than 0, at most 3650).
    pub retention_days: f64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_insecure: false,
            allow_private_targets: false,
            max_attempts: 8,
            retry_initial_delay_seconds: 60.0,
            retry_max_delay_seconds: 36000.0,
            disable_after_hours: 120.0,
            timeout_seconds: const { NonZeroU64::new(10).expect("positive") },
            poll_interval_ms: 1000,
            concurrency: 64,
            max_endpoints_per_client: 16,
            retention_days: 30.0,
        }
    }
}

impl WebhookSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let positive = |key: &str, v: f64, max: f64| {
            if v.is_finite() && v > 0.0 && v <= max {
                Ok(())
            } else {
                Err(invalid(key, format!("expected more than 0 and at most {max}, not {v}")))
            }
        };
        if !(1..=100).contains(&self.max_attempts) {
            return Err(invalid("webhooks.max_attempts", format!("expected 1 to 100, not {}", self.max_attempts)));
        }
        positive("webhooks.retry_initial_delay_seconds", self.retry_initial_delay_seconds, 86_400.0)?;
        positive("webhooks.retry_max_delay_seconds", self.retry_max_delay_seconds, 7.0 * 86_400.0)?;
        positive("webhooks.disable_after_hours", self.disable_after_hours, 24.0 * 365.0)?;
        positive("webhooks.retention_days", self.retention_days, 3650.0)?;
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return Err(invalid(
                "webhooks.poll_interval_ms",
                format!("expected 10 to 60000, not {}", self.poll_interval_ms),
            ));
        }
        if !(1..=1000).contains(&self.concurrency) {
            return Err(invalid("webhooks.concurrency", format!("expected 1 to 1000, not {}", self.concurrency)));
        }
        if !(1..=1000).contains(&self.max_endpoints_per_client) {
            return Err(invalid(
                "webhooks.max_endpoints_per_client",
                format!("expected 1 to 1000, not {}", self.max_endpoints_per_client),
            ));
        }
        Ok(())
    }

    /// The retry policy these settings give.
    #[must_use]
    pub fn retry_policy(&self) -> esignsp_domain::webhooks::RetryPolicy {
        esignsp_domain::webhooks::RetryPolicy {
            max_attempts: self.max_attempts,
            initial_delay: time::Duration::seconds_f64(self.retry_initial_delay_seconds),
            max_delay: time::Duration::seconds_f64(self.retry_max_delay_seconds),
            jitter: 0.2,
            disable_after: time::Duration::seconds_f64(self.disable_after_hours * 3600.0),
            retention: time::Duration::seconds_f64(self.retention_days * 86_400.0),
        }
    }
}

/// `[ui]`.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct UiSettings {
    /// The external signing application that O12 redirects to while a process is pending
    /// (http or https; unset or empty: none).
    #[serde(deserialize_with = "http_url", serialize_with = "redacted_http_url")]
    pub signing_app_url: Option<Url>,
}

/// `[signing]`: the built-in signing application (SPEC §10).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigningSettings {
    /// `builtin` (the default): O12 shows the built-in signing page while a process is pending
    /// — unless `ui.signing_app_url` is set, which always wins.
    pub provider: SigningProvider,
    /// The PAdES baseline level of every signature (ETSI EN 319 142-1 §6): `B-B` (default),
    /// `B-T`, `B-LT` or `B-LTA`.
    #[serde(deserialize_with = "signature_level", serialize_with = "signature_level_name")]
    pub level: SignatureLevel,
    /// The signing key: PKCS#8 PEM (plain or encrypted) or PKCS#12. Unset: none (the
    /// development set-up generates one in `server.data_dir`).
    #[serde(deserialize_with = "optional_path")]
    pub key_file: Option<PathBuf>,
    /// The password of an encrypted `key_file`; redacted whenever settings are printed.
    #[serde(serialize_with = "redact_secret")]
    pub key_password: SecretString,
    /// The signer's certificate then its CA certificates, PEM (optional for a PKCS#12 key that
    /// carries them).
    #[serde(deserialize_with = "optional_path")]
    pub certificate_chain_file: Option<PathBuf>,
    /// RSA signature scheme: `pkcs1v15` (default) or `pss` (RFC 8017 §8).
    pub rsa_padding: RsaPaddingName,
    /// The RFC 3161 time-stamping authority for `B-T` and above (http or https).
    #[serde(deserialize_with = "http_url", serialize_with = "redacted_http_url")]
    pub tsa_url: Option<Url>,
    /// Time-out of each request to the TSA and to OCSP/CRL sources, in seconds.
    #[serde(deserialize_with = "positive_seconds")]
    pub timeout_seconds: NonZeroU64,
    /// How the signer is identified on the signing page: `none` (the unguessable task URL is
    /// the capability; the development default) or `oidc` (the signer logs in at
    /// `signing.oidc_issuer` first, SPEC §10).
    pub signer_authentication: SignerAuthentication,
    /// The OpenID Provider of `signer_authentication = "oidc"`: its issuer identifier, from
    /// which its metadata is discovered (`{issuer}/.well-known/openid-configuration`, OpenID
    /// Connect Discovery 1.0 §4), http or https. Kept exactly as written (`https://op.example`
    /// and `https://op.example/` are different issuers, §4.3). Unset or empty: none.
    #[serde(deserialize_with = "issuer_identifier")]
    pub oidc_issuer: Option<String>,
    /// The client id esignsp is registered with at the provider (its redirect URI is
    /// `{server.public_url}/trustedx-resources/esignsp/v2/ui/login`).
    pub oidc_client_id: String,
    /// The client secret (`client_secret_basic`, RFC 6749 §2.3.1); empty: a public client,
    /// which PKCE alone protects. Redacted whenever settings are printed.
    #[serde(serialize_with = "redact_secret")]
    pub oidc_client_secret: SecretString,
    /// The scopes asked for (`openid`, `profile`, `email`); `openid` must be among them.
    pub oidc_scopes: Vec<String>,
    /// The key of the signing page's CSRF tokens (HMAC-SHA-256, RFC 2104), at least 32
    /// characters; every replica behind one address needs the same. Unset: a key made once in
    /// `server.data_dir` (`signing-form-secret`, kept across restarts; one replica). Redacted
    /// whenever settings are printed.
    #[serde(serialize_with = "redact_secret")]
    pub form_secret: SecretString,
    /// True when `key_file` and `certificate_chain_file` are the development identity that
    /// `esignsp serve` generates in `server.data_dir` (the development set-up, no key set).
    #[serde(skip)]
    pub development_identity: bool,
}

impl Default for SigningSettings {
    fn default() -> Self {
        Self {
            provider: SigningProvider::Builtin,
            level: SignatureLevel::BB,
            key_file: None,
            key_password: SecretString::from(""),
            certificate_chain_file: None,
            rsa_padding: RsaPaddingName::Pkcs1v15,
            tsa_url: None,
            timeout_seconds: const { NonZeroU64::new(10).expect("positive") },
            signer_authentication: SignerAuthentication::None,
            oidc_issuer: None,
            oidc_client_id: String::new(),
            oidc_client_secret: SecretString::from(""),
            oidc_scopes: ["openid", "profile", "email"].map(str::to_owned).to_vec(),
            form_secret: SecretString::from(""),
            development_identity: false,
        }
    }
}

/// `signing.provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigningProvider {
    /// The built-in signing page signs with `signing.key_file` (SPEC §10).
    #[default]
    Builtin,
}

/// `signing.rsa_padding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RsaPaddingName {
    /// RSASSA-PKCS1-v1_5 (RFC 8017 §8.2).
    #[default]
    Pkcs1v15,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (RFC 8017 §8.1, RFC 4055).
    Pss,
}

/// `signing.signer_authentication`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignerAuthentication {
    /// No login: whoever has the task URL signs.
    #[default]
    None,
    /// The signer logs in at `signing.oidc_issuer` (OpenID Connect Core 1.0 §3.1, the
    /// authorization code flow, with PKCE S256, RFC 7636) before the page is shown; the ID
    /// token's `sub`, `name` and `email` go into the audit trail and the signature's `/Name`.
    Oidc,
}

/// A file path; empty means none.
fn optional_path<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<PathBuf>, D::Error> {
    let path = Option::<PathBuf>::deserialize(deserializer)?;
    Ok(path.filter(|p| !p.as_os_str().is_empty()))
}

fn signature_level<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SignatureLevel, D::Error> {
    let name = String::deserialize(deserializer)?;
    SignatureLevel::parse(&name).map_err(|_| D::Error::custom(expected_one_of(&["B-B", "B-T", "B-LT", "B-LTA"], &name)))
}

fn signature_level_name<S: Serializer>(level: &SignatureLevel, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(level.as_str())
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// How each line is written.
    pub format: LogFormat,
    /// A `tracing` filter (`info`); `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { format: LogFormat::default(), level: "info".to_owned() }
    }
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum LogFormat {
    /// `text` (the default): human-readable lines.
    #[default]
    Text,
    /// `json`: one JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(expected_one_of(&["text", "json"], other)),
        }
    }
}

impl TryFrom<String> for LogFormat {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        name.parse()
    }
}

/// `expected "a" or "b", not "c"`: the error of a name outside a closed set.
fn expected_one_of(names: &[&str], got: &str) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    format!("expected {}, not {got:?}", names.join(" or "))
}

/// A URL key: an absolute http(s) URL, or none when empty. The error never repeats the value,
/// which may carry a secret.
fn http_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Url>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.is_empty() {
        return Ok(None);
    }
    let url = Url::parse(&text).map_err(|e| D::Error::custom(format!("{e}: expected an absolute http(s) URL")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(D::Error::custom(format!("expected an http(s) URL, not a {}: URL", url.scheme())));
    }
    Ok(Some(url))
}

/// `signing.oidc_issuer`: an http(s) URL without a query or fragment (OpenID Connect
/// Discovery 1.0 §2), kept as written; empty means none.
fn issuer_identifier<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.is_empty() {
        return Ok(None);
    }
    let url = Url::parse(&text).map_err(|e| D::Error::custom(format!("{e}: expected an absolute http(s) URL")))?;
    if !matches!(url.scheme(), "http" | "https") || url.query().is_some() || url.fragment().is_some() {
        return Err(D::Error::custom("expected an http(s) URL without a query or fragment"));
    }
    Ok(Some(text))
}

/// `server.public_url`: an [`http_url`] without a query (paths are appended to it).
fn base_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Url>, D::Error> {
    let url = http_url(deserializer)?;
    if url.as_ref().is_some_and(|u| u.query().is_some()) {
        return Err(D::Error::custom("expected an http(s) URL without a query"));
    }
    Ok(url)
}

/// `database.url`: empty (the embedded default) or a URL of a supported store; the error
/// never repeats the value.
fn database_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
    let url = SecretString::deserialize(deserializer)?;
    let text = url.expose_secret();
    if text.is_empty() || esignsp_adapters::store::is_supported_url(text) {
        Ok(url)
    } else {
        Err(D::Error::custom("expected a postgres:// or sqlite:// URL"))
    }
}

/// `auth.required_scope`: one scope token, neither empty nor with a space.
fn scope_token<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let scope = String::deserialize(deserializer)?;
    if scope.is_empty() || scope.contains(' ') {
        return Err(D::Error::custom("expected one scope token, not empty and without spaces"));
    }
    Ok(scope)
}

/// `auth.audience`: at least one value, none empty.
fn audiences<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let audience = Vec::<String>::deserialize(deserializer)?;
    if audience.is_empty() || audience.iter().any(String::is_empty) {
        return Err(D::Error::custom("expected at least one non-empty audience"));
    }
    Ok(audience)
}

/// `auth.algorithms`: at least one name, each an asymmetric JWS algorithm
/// ([`esignsp_adapters::jwt::parse_algorithm`]).
fn algorithms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Algorithm>, D::Error> {
    let names = Vec::<String>::deserialize(deserializer)?;
    if names.is_empty() {
        return Err(D::Error::custom("expected at least one algorithm"));
    }
    names
        .iter()
        .map(|name| esignsp_adapters::jwt::parse_algorithm(name))
        .collect::<Result<_, _>>()
        .map_err(D::Error::custom)
}

/// Longest accepted time-out, leeway or interval: one day (a longer one is a typo, and some
/// overflow what they are added to or sent as, such as PostgreSQL's `statement_timeout` in
/// milliseconds).
pub const MAX_SECONDS: u64 = 86_400;

/// Most worker threads (actix-server's limit).
pub const MAX_WORKERS: usize = 512;

/// A number of seconds, 0 to [`MAX_SECONDS`].
fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let n = u64::deserialize(deserializer)?;
    if n > MAX_SECONDS {
        return Err(D::Error::custom(format!("expected 0 to {MAX_SECONDS} seconds (one day), not {n}")));
    }
    Ok(n)
}

/// A number of seconds, 1 to [`MAX_SECONDS`].
fn positive_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NonZeroU64, D::Error> {
    let n = u64::deserialize(deserializer)?;
    NonZeroU64::new(n)
        .filter(|n| n.get() <= MAX_SECONDS)
        .ok_or_else(|| D::Error::custom(format!("expected 1 to {MAX_SECONDS} seconds (one day), not {n}")))
}

/// `server.workers`: 0 (one per core) to [`MAX_WORKERS`].
fn workers<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(deserializer)?;
    if n > MAX_WORKERS {
        return Err(D::Error::custom(format!("expected 0 (one per core) to {MAX_WORKERS}, not {n}")));
    }
    Ok(n)
}

/// `processes.ttl_seconds`: 1 to [`MAX_TTL_SECONDS`].
fn ttl_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NonZeroU64, D::Error> {
    let ttl = u64::deserialize(deserializer)?;
    NonZeroU64::new(ttl)
        .filter(|ttl| ttl.get() <= MAX_TTL_SECONDS)
        .ok_or_else(|| D::Error::custom(format!("expected 1 to {MAX_TTL_SECONDS} (ten years), not {ttl}")))
}

fn redact_secret<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if secret.expose_secret().is_empty() { "" } else { "[redacted]" })
}

fn redact_url_password<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redacted_url(secret.expose_secret()))
}

/// A URL key printed without its secrets; none is printed empty, as it is written.
#[allow(clippy::ref_option)] // serde's `serialize_with` passes `&Option<Url>`
fn redacted_http_url<S: Serializer>(url: &Option<Url>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&url.as_ref().map(|url| redacted_url(url.as_str())).unwrap_or_default())
}

pub use esignsp_adapters::redact::redacted_url;

/// Keys whose environment values are comma-separated lists. Every other environment value is
/// taken as text: a string key keeps it exactly (`0042` stays `0042`), a number or boolean key
/// parses it.
const LIST_KEYS: [&str; 5] =
    ["auth.audience", "auth.algorithms", "auth.public_key_files", "auth.trusted_clients", "signing.oidc_scopes"];

/// Prefix of the configuration variables: `ESIGNSP__<SECTION>__<KEY>`.
const ENV_PREFIX: &str = "esignsp__";

/// The keys that configure where accepted tokens come from. The development set-up is on only
/// when none of them is present in any layer, even with an empty value.
const AUTH_SOURCE_KEYS: [&str; 5] =
    ["auth.issuer", "auth.public_key_files", "auth.dev_signing_key_file", "auth.jwks_url", "auth.introspection_url"];

/// The configuration key of an `ESIGNSP__SECTION__KEY` variable (`section.key`), if it is one.
fn env_key(variable: &str) -> Option<String> {
    let lower = variable.to_lowercase();
    lower.strip_prefix(ENV_PREFIX).map(|rest| rest.replace("__", "."))
}

/// The items of a comma-separated list value, each kept as written; an empty value is an
/// empty list, a value without a comma a list of one.
fn list_items(value: &str) -> Vec<String> {
    if value.is_empty() {
        Vec::new()
    } else {
        value.split(',').map(str::to_owned).collect()
    }
}

/// An error of the config crate as one line that starts with the key it is about
/// (`server.port: invalid type: …`), where it names one.
fn layer_error(error: config::ConfigError) -> ConfigError {
    let place = |origin: Option<String>| origin.map(|o| format!(" in {o}")).unwrap_or_default();
    match error {
        config::ConfigError::Type { origin, unexpected, expected, key: Some(key) } => {
            invalid(&key, format!("invalid type: {unexpected}, expected {expected}{}", place(origin)))
        }
        config::ConfigError::At { error, origin, key: Some(key) } => invalid(&key, format!("{error}{}", place(origin))),
        other => ConfigError(other.to_string()),
    }
}

impl Settings {
    /// Loads the layers: defaults, `DATABASE_URL`, the file (`file`, else `ESIGNSP_CONFIG`),
    /// then `ESIGNSP__SECTION__KEY` variables; then validates.
    ///
    /// # Errors
    /// [`ConfigError`] naming the offending key.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// [`Settings::load`] with an explicit environment (for tests).
    ///
    /// # Errors
    /// [`ConfigError`] naming the offending key.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: std::collections::HashMap<String, String> = env.into_iter().collect();
        let mut builder = config::Config::builder();
        if let Some(url) = env.get("DATABASE_URL").filter(|u| !u.is_empty()) {
            builder = builder.set_default("database.url", url.as_str()).map_err(layer_error)?;
        }
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env.get("ESIGNSP_CONFIG").filter(|p| !p.is_empty()).map(PathBuf::from));
        if let Some(path) = &file {
            if !path.is_file() {
                return Err(ConfigError(format!("--config: no such file {}", path.display())));
            }
            builder =
                builder.add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml).required(true));
        }
        // The config crate's own parsing of environment values (`try_parsing`) turns text that
        // looks like a number or a boolean into one (`0042` → 42, `TRUE` → true) and splits lists
        // only when the value does not look like a number: so every value goes in as text here,
        // and list keys are split by us.
        let (lists, scalars): (Vec<_>, Vec<_>) = env
            .into_iter()
            .filter_map(|(variable, value)| env_key(&variable).map(|key| (variable, key, value)))
            .partition(|(_, key, _)| LIST_KEYS.contains(&key.as_str()));
        let environment = config::Environment::default()
            .prefix("ESIGNSP")
            .prefix_separator("__")
            .separator("__")
            .source(Some(scalars.into_iter().map(|(variable, _, value)| (variable, value)).collect()));
        builder = builder.add_source(environment);
        for (_, key, value) in lists {
            builder = builder.set_override(key, list_items(&value)).map_err(layer_error)?;
        }
        let layers = builder.build().map_err(layer_error)?;
        let is_set = |key: &str| layers.get::<config::Value>(key).is_ok();
        let development = !AUTH_SOURCE_KEYS.iter().any(|key| is_set(key));
        let issuer_set = is_set("auth.issuer");
        let mut settings: Settings = layers.try_deserialize().map_err(layer_error)?;
        if issuer_set && settings.auth.issuer.trim().is_empty() {
            return Err(invalid(
                "auth.issuer",
                "is empty: set it to the exact `iss` of accepted tokens (only without any auth.issuer at all \
                 does the development set-up start)",
            ));
        }
        settings.development = development;
        settings.resolve_defaults();
        settings.validate()?;
        Ok(settings)
    }

    /// Fills what depends on other keys: the embedded database URL, and, in the development
    /// set-up ([`Settings::development`]), the development issuer and key.
    pub fn resolve_defaults(&mut self) {
        if self.database.url.expose_secret().is_empty() {
            let path = self.server.data_dir.join(SQLITE_FILE);
            self.database.url = SecretString::from(format!("sqlite://{}", path.display()));
        }
        if self.development {
            self.auth.issuer = DEV_ISSUER.to_owned();
            self.auth.dev_signing_key_file = Some(self.server.data_dir.join(DEV_KEY_FILE));
            if self.builtin_signing() && self.signing.key_file.is_none() {
                let identity = esignsp_adapters::pades::development::DevelopmentIdentity::in_dir(&self.server.data_dir);
                self.signing.key_file = Some(identity.key_file);
                self.signing.certificate_chain_file = Some(identity.chain_file);
                self.signing.development_identity = true;
            }
        }
    }

    /// Checks the rules between keys, which no single value's type can: an issuer unless the
    /// development set-up supplies one, and client credentials for introspection. Every value
    /// on its own was checked when it was deserialized.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_signing()?;
        self.webhooks.validate()?;
        let database = &self.database;
        if database.group_commit_max_batch.get() > MAX_GROUP_COMMIT_BATCH {
            return Err(invalid(
                "database.group_commit_max_batch",
                format!("must be at most {MAX_GROUP_COMMIT_BATCH} (one statement writes the whole batch)"),
            ));
        }
        if database.group_commit_lanes.get() > database.max_connections.get() as usize {
            return Err(invalid(
                "database.group_commit_lanes",
                "must be at most database.max_connections (each batch in flight holds a connection)",
            ));
        }
        let auth = &self.auth;
        if auth.issuer.trim().is_empty() {
            return Err(invalid("auth.issuer", "must be set to the exact `iss` of accepted tokens"));
        }
        if auth.introspection_url.is_some()
            && (auth.introspection_client_id.is_empty() || auth.introspection_client_secret.expose_secret().is_empty())
        {
            return Err(invalid("auth.introspection_client_id", "introspection needs a client id and secret"));
        }
        Ok(())
    }

    /// Whether O12 shows the built-in signing page (no `ui.signing_app_url`, SPEC §5, §10).
    #[must_use]
    pub fn builtin_signing(&self) -> bool {
        self.ui.signing_app_url.is_none()
    }

    fn validate_signing(&self) -> Result<(), ConfigError> {
        let signing = &self.signing;
        if !self.builtin_signing() {
            return Ok(());
        }
        if signing.level > SignatureLevel::BB && signing.tsa_url.is_none() {
            return Err(invalid(
                "signing.tsa_url",
                format!("signing.level {} needs an RFC 3161 time-stamping authority", signing.level),
            ));
        }
        let secret = signing.form_secret.expose_secret();
        if !secret.is_empty() && secret.chars().count() < 32 {
            return Err(invalid("signing.form_secret", "must be at least 32 characters (or unset)"));
        }
        if signing.signer_authentication == SignerAuthentication::Oidc {
            let needs = "is needed by signing.signer_authentication = \"oidc\"";
            if signing.oidc_issuer.is_none() {
                return Err(invalid("signing.oidc_issuer", format!("{needs}: the OpenID Provider's issuer URL")));
            }
            if signing.oidc_client_id.trim().is_empty() {
                return Err(invalid("signing.oidc_client_id", format!("{needs}: esignsp's client id at the provider")));
            }
            if !signing.oidc_scopes.iter().any(|s| s == "openid") {
                return Err(invalid("signing.oidc_scopes", "must contain openid (OpenID Connect Core 1.0 §3.1.2.1)"));
            }
            if let Some(bad) = signing.oidc_scopes.iter().find(|s| s.is_empty() || s.contains(char::is_whitespace)) {
                return Err(invalid("signing.oidc_scopes", format!("{bad:?} is not one scope token (RFC 6749 §3.3)")));
            }
        }
        Ok(())
    }

    /// The effective configuration as TOML (the `toml` crate), secrets redacted
    /// (`esignsp check-config`). Unset URL keys are printed empty; an unset
    /// `auth.dev_signing_key_file` is left out.
    ///
    /// # Errors
    /// [`ConfigError`] for a value TOML cannot hold (an integer above 2⁶³ − 1, a path that is
    /// not UTF-8).
    pub fn to_redacted_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError(format!("cannot print the configuration as TOML: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        v.push(("ESIGNSP__AUTH__ISSUER".into(), "https://as.example".into()));
        v.push(("ESIGNSP__AUTH__PUBLIC_KEY_FILES".into(), "/k1.pem,/k2.pem".into()));
        v
    }

    #[test]
    fn environment_overrides_defaults_with_nested_keys_and_lists() {
        let s = Settings::load_from(
            None,
            env(&[
                ("ESIGNSP__SERVER__PORT", "9000"),
                ("ESIGNSP__AUTH__AUDIENCE", "a,b"),
                ("DATABASE_URL", "postgres://u:pw@h/db"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.server.port, 9000);
        assert_eq!(s.auth.audience, ["a", "b"]);
        assert_eq!(s.auth.public_key_files, [PathBuf::from("/k1.pem"), PathBuf::from("/k2.pem")]);
        assert_eq!(s.database.url.expose_secret(), "postgres://u:pw@h/db");
        let printed = s.to_redacted_toml().expect("printable");
        assert!(printed.contains("postgres://u:%5Bredacted%5D@h/db") || printed.contains("[redacted]"), "{printed}");
        assert!(!printed.contains(":pw@"), "password must not be printed: {printed}");
    }

    #[test]
    fn without_any_configuration_the_development_set_up_uses_sqlite_and_a_generated_key() {
        let s = Settings::load_from(None, Vec::new()).expect("zero configuration is valid");
        assert!(s.development);
        assert_eq!(s.database.url.expose_secret(), "sqlite://esignsp-data/esignsp.db");
        assert_eq!(s.auth.issuer, DEV_ISSUER);
        assert_eq!(s.auth.dev_signing_key_file, Some(PathBuf::from("esignsp-data/dev-signing-key.pem")));
    }

    #[test]
    fn configuring_an_issuer_or_keys_switches_the_development_set_up_off() {
        let s = Settings::load_from(None, env(&[])).expect("valid");
        assert!(!s.development);
        assert_eq!(s.auth.dev_signing_key_file, None);
        let s = Settings::load_from(None, vec![("ESIGNSP__AUTH__ISSUER".to_owned(), "https://as.example".to_owned())])
            .expect("an issuer alone: its keys are discovered from its metadata");
        assert!(!s.development);
        assert_eq!(s.auth.dev_signing_key_file, None);
        for (key, value) in [
            ("ESIGNSP__AUTH__JWKS_URL", "https://as.example/jwks"),
            ("ESIGNSP__AUTH__INTROSPECTION_URL", "https://as.example/introspect"),
        ] {
            let mut env = vec![("ESIGNSP__AUTH__ISSUER".to_owned(), "https://as.example".to_owned())];
            env.push((key.to_owned(), value.to_owned()));
            env.push(("ESIGNSP__AUTH__INTROSPECTION_CLIENT_ID".to_owned(), "esignsp".to_owned()));
            env.push(("ESIGNSP__AUTH__INTROSPECTION_CLIENT_SECRET".to_owned(), "s".to_owned()));
            Settings::load_from(None, env).unwrap_or_else(|e| panic!("{key} is a key source: {e}"));
        }
        let err = Settings::load_from(
            None,
            vec![
                ("ESIGNSP__AUTH__ISSUER".to_owned(), "https://as.example".to_owned()),
                ("ESIGNSP__AUTH__INTROSPECTION_URL".to_owned(), "https://as.example/introspect".to_owned()),
            ],
        )
        .expect_err("introspection without credentials");
        assert!(err.to_string().contains("auth.introspection_client_id"), "{err}");
    }

    #[test]
    fn a_file_layer_sits_between_defaults_and_environment() {
        let dir = std::env::temp_dir().join(format!("esignsp-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("c.toml");
        std::fs::write(&file, "[server]\nport = 7000\nhost = \"0.0.0.0\"\n[processes]\nttl_seconds = 5\n")
            .expect("write");
        let s = Settings::load_from(Some(&file), env(&[("ESIGNSP__SERVER__PORT", "7001")])).expect("valid");
        assert_eq!((s.server.port, s.server.host.as_str(), s.processes.ttl_seconds.get()), (7001, "0.0.0.0", 5));
    }

    #[test]
    fn every_secret_a_url_can_carry_is_redacted() {
        for (raw, shown) in [
            ("postgres://svc:pw@h/db", "postgres://svc:[redacted]@h/db"),
            ("postgres://svc@h/db?password=pw", "postgres://svc@h/db?password=[redacted]"),
            (
                "postgres://svc@h/db?sslpassword=pw&sslmode=require",
                "postgres://svc@h/db?sslpassword=[redacted]&sslmode=require",
            ),
            ("postgres://h/db?PassWord=pw&user=svc", "postgres://h/db?PassWord=[redacted]&user=svc"),
            ("https://as.example/jwks?access_token=t", "https://as.example/jwks?access_token=[redacted]"),
            ("sqlite://esignsp-data/esignsp.db", "sqlite://esignsp-data/esignsp.db"),
            ("not a url with pw", "[redacted]"),
        ] {
            assert_eq!(redacted_url(raw), shown, "{raw}");
        }
    }

    #[test]
    fn the_public_url_follows_the_port_and_a_mismatch_is_named() {
        let mut server = ServerSettings { port: 9000, ..ServerSettings::default() };
        assert_eq!(server.public_base(9000), "http://127.0.0.1:9000");
        server.host = "::1".to_owned();
        assert_eq!(server.public_base(9000), "http://[::1]:9000", "RFC 3986 brackets");
        server.host = "127.0.0.1".to_owned();
        for (public_url, port, warned) in [
            ("http://127.0.0.1:8080", 9000, true),
            ("http://127.0.0.1:9000/", 9000, false),
            ("http://localhost", 9000, true),
            ("https://esignsp.example:8443", 9000, true),
            ("https://esignsp.example", 9000, false),
            ("http://127.0.0.1", 80, false),
        ] {
            server.public_url = Some(Url::parse(public_url).expect("a URL"));
            assert_eq!(server.public_url_mismatch(port).is_some(), warned, "{public_url} served on {port}");
            assert_eq!(
                server.public_base(port).trim_end_matches('/'),
                public_url.trim_end_matches('/'),
                "a configured public URL is used as it is (links drop a trailing slash)"
            );
        }
    }

    #[test]
    fn a_bad_setting_names_its_key() {
        for (pairs, key) in [
            (vec![("ESIGNSP__SERVER__PORT", "nope")], "server.port"),
            (vec![("ESIGNSP__AUTH__ALGORITHMS", "HS256")], "auth.algorithms"),
            (vec![("ESIGNSP__AUTH__PROFILE", "strict")], "auth.profile"),
            (vec![("ESIGNSP__SERVER__PUBLIC_URL", "not a url")], "server.public_url"),
            (vec![("ESIGNSP__DATABASE__URL", "mysql://x")], "database.url"),
            (vec![("ESIGNSP__PROCESSES__TTL_SECONDS", "315360000000")], "processes.ttl_seconds"),
            (vec![("ESIGNSP__SERVER__NOPE", "1")], "nope"),
            (vec![("ESIGNSP__SERVER__MAX_JSON_BYTES", "0")], "server.max_json_bytes"),
            (vec![("ESIGNSP__DATABASE__MAX_CONNECTIONS", "0")], "database.max_connections"),
            (vec![("ESIGNSP__DATABASE__GROUP_COMMIT_MAX_BATCH", "100000000")], "database.group_commit_max_batch"),
            (vec![("ESIGNSP__DATABASE__GROUP_COMMIT_LANES", "17")], "database.group_commit_lanes"),
            (vec![("ESIGNSP__DATABASE__GROUP_COMMIT_LANES", "0")], "database.group_commit_lanes"),
            (vec![("ESIGNSP__AUTH__JWKS_URL", "ftp://as.example/jwks")], "auth.jwks_url"),
            (vec![("ESIGNSP__AUTH__AUDIENCE", "")], "auth.audience"),
            (vec![("ESIGNSP__AUTH__REQUIRED_SCOPE", "a b")], "auth.required_scope"),
            (vec![("ESIGNSP__LOG__FORMAT", "xml")], "log.format"),
            (vec![("ESIGNSP__UI__SIGNING_APP_URL", "/relative")], "ui.signing_app_url"),
        ] {
            let err = Settings::load_from(None, env(&pairs)).expect_err(key).to_string();
            assert!(err.contains(key), "{key} not named in: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn a_bad_value_says_what_is_expected_and_never_repeats_a_url() {
        for (variable, value, expected) in [
            ("ESIGNSP__AUTH__PROFILE", "strict", r#"auth.profile: expected "rfc9068" or "lenient", not "strict""#),
            ("ESIGNSP__LOG__FORMAT", "xml", r#"log.format: expected "text" or "json", not "xml""#),
            (
                "ESIGNSP__DATABASE__ACQUIRE_TIMEOUT_SECONDS",
                "0",
                "database.acquire_timeout_seconds: expected 1 to 86400",
            ),
            (
                "ESIGNSP__DATABASE__ACQUIRE_TIMEOUT_SECONDS",
                "18446744073709551615",
                "database.acquire_timeout_seconds: expected 1 to 86400 seconds (one day), not 18446744073709551615",
            ),
            ("ESIGNSP__DATABASE__STATEMENT_TIMEOUT_SECONDS", "86401", "database.statement_timeout_seconds: expected"),
            ("ESIGNSP__AUTH__LEEWAY_SECONDS", "99999999999", "auth.leeway_seconds: expected 0 to 86400"),
            ("ESIGNSP__SERVER__WORKERS", "100000", "server.workers: expected 0 (one per core) to 512, not 100000"),
            ("ESIGNSP__PROCESSES__TTL_SECONDS", "0", "processes.ttl_seconds: expected 1 to 315360000 (ten years)"),
            (
                "ESIGNSP__SERVER__PUBLIC_URL",
                "https://h.example/?x=1",
                "server.public_url: expected an http(s) URL without",
            ),
            ("ESIGNSP__SERVER__PORT", "nope", r#"server.port: invalid type: string "nope""#),
        ] {
            let err = Settings::load_from(None, env(&[(variable, value)])).expect_err(variable).to_string();
            assert!(err.contains(expected), "{variable}={value}: {err}");
        }
        for (variable, value) in [
            ("ESIGNSP__AUTH__JWKS_URL", "https://svc:pw-secret@/jwks"),
            ("ESIGNSP__AUTH__INTROSPECTION_URL", "ldap://svc:pw-secret@as.example/"),
            ("ESIGNSP__DATABASE__URL", "mysql://svc:pw-secret@h/db"),
        ] {
            let err = Settings::load_from(None, env(&[(variable, value)])).expect_err(variable).to_string();
            assert!(!err.contains("pw-secret"), "{variable}: the value may carry a secret: {err}");
        }
    }

    #[test]
    fn every_name_of_a_closed_set_prints_as_it_is_read() {
        for profile in [TokenProfile::Rfc9068, TokenProfile::Lenient] {
            let name = serde_json::to_value(profile).expect("serialize");
            assert_eq!(name.as_str().map(str::parse), Some(Ok(profile)), "{name}");
        }
        for format in [LogFormat::Text, LogFormat::Json] {
            let name = serde_json::to_value(format).expect("serialize");
            assert_eq!(name.as_str().map(str::parse), Some(Ok(format)), "{name}");
        }
    }

    #[test]
    fn the_printed_configuration_reads_back_as_the_same_configuration() {
        let s = Settings::load_from(
            None,
            env(&[
                ("ESIGNSP__AUTH__JWKS_URL", "https://as.example/jwks"),
                ("ESIGNSP__AUTH__PROFILE", "lenient"),
                ("ESIGNSP__AUTH__ALGORITHMS", "ES384,EdDSA"),
                ("ESIGNSP__LOG__FORMAT", "json"),
                ("ESIGNSP__PROCESSES__TTL_SECONDS", "60"),
            ]),
        )
        .expect("valid");
        let printed = s.to_redacted_toml().expect("printable");
        for line in [
            "jwks_url = \"https://as.example/jwks\"",
            "introspection_url = \"\"",
            "profile = \"lenient\"",
            "algorithms = [\"ES384\", \"EdDSA\"]",
            "format = \"json\"",
            "ttl_seconds = 60",
            "[ui]\nsigning_app_url = \"\"",
        ] {
            assert!(printed.contains(line), "{line} in:\n{printed}");
        }
        let dir = std::env::temp_dir().join(format!("esignsp-config-print-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("printed.toml");
        std::fs::write(&file, &printed).expect("write");
        let again = Settings::load_from(Some(&file), Vec::new()).expect("the printed configuration is valid");
        assert_eq!(again.to_redacted_toml().expect("printable"), printed, "printing is a fixed point");
    }
    #[test]
    fn oidc_signer_login_needs_an_issuer_a_client_and_the_openid_scope() {
        let oidc = [
            ("ESIGNSP__SIGNING__SIGNER_AUTHENTICATION", "oidc"),
            ("ESIGNSP__SIGNING__OIDC_ISSUER", "https://op.example"),
            ("ESIGNSP__SIGNING__OIDC_CLIENT_ID", "esignsp-page"),
            ("ESIGNSP__SIGNING__OIDC_CLIENT_SECRET", "page-secret"),
        ];
        let s = Settings::load_from(None, env(&oidc)).expect("valid");
        assert_eq!(s.signing.signer_authentication, SignerAuthentication::Oidc);
        assert_eq!(s.signing.oidc_scopes, ["openid", "profile", "email"], "the default scopes");
        let printed = s.to_redacted_toml().expect("printable");
        assert!(printed.contains("oidc_client_secret = \"[redacted]\""), "{printed}");
        assert!(!printed.contains("page-secret"), "{printed}");
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[("ESIGNSP__SIGNING__OIDC_ISSUER", "")], "signing.oidc_issuer"),
            (&[("ESIGNSP__SIGNING__OIDC_ISSUER", "ftp://op.example")], "signing.oidc_issuer"),
            (&[("ESIGNSP__SIGNING__OIDC_CLIENT_ID", " ")], "signing.oidc_client_id"),
            (&[("ESIGNSP__SIGNING__OIDC_SCOPES", "profile,email")], "signing.oidc_scopes"),
            (&[("ESIGNSP__SIGNING__OIDC_SCOPES", "openid,a b")], "signing.oidc_scopes"),
        ];
        for (change, key) in cases {
            let mut vars: Vec<(&str, &str)> =
                oidc.iter().filter(|(k, _)| !change.iter().any(|(c, _)| c == k)).copied().collect();
            vars.extend_from_slice(change);
            let error = Settings::load_from(None, env(&vars)).expect_err(key).to_string();
            assert!(error.contains(key), "{change:?} is refused naming {key}: {error}");
        }
        let public = Settings::load_from(None, env(&oidc[..3])).expect("an empty secret: a public client");
        assert!(public.signing.oidc_client_secret.expose_secret().is_empty());
        let none = Settings::load_from(None, env(&oidc[1..])).expect("the oidc keys are ignored without oidc");
        assert_eq!(none.signing.signer_authentication, SignerAuthentication::None);
    }
}
