//! Configuration (SPEC §7): built-in defaults → the TOML file of `--config` / `ESIGNSP_CONFIG`
//! → `ESIGNSP__<SECTION>__<KEY>` environment variables (lists comma-separated).
//! `DATABASE_URL`, when set, is the default for `database.url`.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

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
    /// reverse proxy: its address). Empty (the default): `http://<host>:<bound port>`, see
    /// [`ServerSettings::public_base`].
    #[serde(serialize_with = "redact_url_text")]
    pub public_url: String,
    /// Largest JSON body, in bytes after content decoding (256 KiB).
    pub max_json_bytes: usize,
    /// Most document bytes one request may carry (25 MiB).
    pub max_document_bytes: usize,
    /// How long in-flight requests may take to finish on shutdown, in seconds (30).
    pub shutdown_timeout_seconds: u64,
    /// How long a client may take to send a request body, in seconds (60); then 408.
    pub body_timeout_seconds: u64,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// Directory of the embedded database and the development key (`esignsp-data`).
    pub data_dir: PathBuf,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            public_url: String::new(),
            max_json_bytes: 256 * 1024,
            max_document_bytes: 25 * 1024 * 1024,
            shutdown_timeout_seconds: 30,
            body_timeout_seconds: 60,
            workers: 0,
            data_dir: PathBuf::from("esignsp-data"),
        }
    }
}

impl ServerSettings {
    /// The base of absolute URLs: `server.public_url` when set, else `http://<host>:<port>`
    /// with the port actually bound (an IPv6 host in brackets, RFC 3986 §3.2.2).
    #[must_use]
    pub fn public_base(&self, bound_port: u16) -> String {
        if !self.public_url.is_empty() {
            return self.public_url.clone();
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
        let url = url::Url::parse(&self.public_url).ok()?;
        let port = url.port_or_known_default()?;
        let local = match url.host()? {
            url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost") || name == self.host,
            url::Host::Ipv4(ip) => ip.is_loopback() || ip.to_string() == self.host,
            url::Host::Ipv6(ip) => ip.is_loopback() || ip.to_string() == self.host.trim_matches(['[', ']']),
        };
        (port != bound_port && (url.port().is_some() || local)).then(|| {
            format!(
                "server.public_url {} names port {port}, but the service listens on port {bound_port}: links \
                 in representations point there",
                self.public_url
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
    #[serde(serialize_with = "redact_url_password")]
    pub url: SecretString,
    /// Pool size (16).
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before answering 503, in seconds (5).
    pub acquire_timeout_seconds: u64,
    /// Run pending migrations when `serve` starts (true).
    pub migrate_on_start: bool,
    /// Longest a PostgreSQL statement or lock wait may take before the request answers 503,
    /// in seconds (10).
    pub statement_timeout_seconds: u64,
    /// `database.url` leads to a pooler in transaction mode, such as pgbouncer with
    /// `pool_mode = transaction` (false): statements then live only inside a transaction and
    /// the time-outs are set with `SET LOCAL`; migrations must run directly against PostgreSQL.
    pub transaction_pooling: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from(""),
            max_connections: 16,
            acquire_timeout_seconds: 5,
            migrate_on_start: true,
            statement_timeout_seconds: 10,
            transaction_pooling: false,
        }
    }
}

/// `[auth]`: OAuth 2.0 bearer token verification (SPEC §6).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Scope every call needs, matched as a whole token.
    pub required_scope: String,
    /// Exact `iss` of accepted tokens.
    pub issuer: String,
    /// Accepted `aud` values.
    pub audience: Vec<String>,
    /// Allowed signature algorithms.
    pub algorithms: Vec<String>,
    /// PEM or JWK/JWKS files with verification keys.
    pub public_key_files: Vec<PathBuf>,
    /// The issuer's JWK Set URL; empty: discovered from the issuer's metadata when no other
    /// key source is configured.
    #[serde(serialize_with = "redact_url_text")]
    pub jwks_url: String,
    /// Least interval between two JWKS fetches, in seconds.
    pub jwks_min_refresh_seconds: u64,
    /// Allowed clock skew, in seconds.
    pub leeway_seconds: u64,
    /// RFC 7662 introspection endpoint for opaque tokens (empty: none).
    #[serde(serialize_with = "redact_url_text")]
    pub introspection_url: String,
    /// Client id for introspection.
    pub introspection_client_id: String,
    /// Client secret for introspection; redacted whenever settings are printed.
    #[serde(serialize_with = "redact_secret")]
    pub introspection_client_secret: SecretString,
    /// Longest time an introspection answer is cached, in seconds.
    pub introspection_cache_seconds: u64,
    /// `rfc9068` or `lenient`.
    pub profile: String,
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
            algorithms: ["RS256", "PS256", "ES256", "EdDSA"].map(str::to_owned).to_vec(),
            public_key_files: Vec::new(),
            jwks_url: String::new(),
            jwks_min_refresh_seconds: 30,
            leeway_seconds: 60,
            introspection_url: String::new(),
            introspection_client_id: String::new(),
            introspection_client_secret: SecretString::from(""),
            introspection_cache_seconds: 60,
            profile: "rfc9068".to_owned(),
            trusted_clients: Vec::new(),
            dev_signing_key_file: None,
        }
    }
}

/// `[processes]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessSettings {
    /// How long a process may stay pending, in seconds (3600).
    pub ttl_seconds: u64,
    /// How often the background sweeper expires overdue processes, in seconds (30; 0: never,
    /// expiry then happens on read only).
    pub sweep_interval_seconds: u64,
}

impl Default for ProcessSettings {
    fn default() -> Self {
        Self { ttl_seconds: 3600, sweep_interval_seconds: 30 }
    }
}

/// `[ui]`.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct UiSettings {
    /// The external signing application that O12 redirects to while a process is pending.
    #[serde(serialize_with = "redact_url_text")]
    pub signing_app_url: String,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter (`info`); `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { format: "text".to_owned(), level: "info".to_owned() }
    }
}

fn redact_secret<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if secret.expose_secret().is_empty() { "" } else { "[redacted]" })
}

fn redact_url_password<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redacted_url(secret.expose_secret()))
}

/// An optional URL key (empty: unset), printed without its secrets.
fn redact_url_text<S: Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&if url.is_empty() { String::new() } else { redacted_url(url) })
}

pub use esignsp_adapters::redact::redacted_url;

/// Keys whose environment values are comma-separated lists. Every other environment value is
/// taken as text: a string key keeps it exactly (`0042` stays `0042`), a number or boolean key
/// parses it.
const LIST_KEYS: [&str; 4] = ["auth.audience", "auth.algorithms", "auth.public_key_files", "auth.trusted_clients"];

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
            builder = builder.set_default("database.url", url.as_str()).map_err(|e| ConfigError(e.to_string()))?;
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
            builder = builder.set_override(key, list_items(&value)).map_err(|e| ConfigError(e.to_string()))?;
        }
        let layers = builder.build().map_err(|e| ConfigError(e.to_string()))?;
        let is_set = |key: &str| layers.get::<config::Value>(key).is_ok();
        let development = !AUTH_SOURCE_KEYS.iter().any(|key| is_set(key));
        let issuer_set = is_set("auth.issuer");
        let mut settings: Settings = layers.try_deserialize().map_err(|e| ConfigError(e.to_string()))?;
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
        }
    }

    /// Checks values that deserialize but cannot work.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.server.public_url.is_empty() {
            let public = url::Url::parse(&self.server.public_url).map_err(|e| invalid("server.public_url", e))?;
            if !matches!(public.scheme(), "http" | "https") || public.query().is_some() {
                return Err(invalid("server.public_url", "must be an http(s) URL without a query"));
            }
        }
        if self.server.max_json_bytes == 0 {
            return Err(invalid("server.max_json_bytes", "must be positive"));
        }
        if self.server.max_document_bytes == 0 {
            return Err(invalid("server.max_document_bytes", "must be positive"));
        }
        if !esignsp_adapters::store::is_supported_url(self.database.url.expose_secret()) {
            return Err(invalid("database.url", "must be a postgres:// or sqlite:// URL"));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be positive"));
        }
        if self.database.acquire_timeout_seconds == 0 {
            return Err(invalid("database.acquire_timeout_seconds", "must be positive"));
        }
        let auth = &self.auth;
        if auth.issuer.trim().is_empty() {
            return Err(invalid("auth.issuer", "must be set to the exact `iss` of accepted tokens"));
        }
        if auth.audience.is_empty() || auth.audience.iter().any(String::is_empty) {
            return Err(invalid("auth.audience", "must list at least one non-empty audience"));
        }
        if auth.required_scope.is_empty() || auth.required_scope.contains(' ') {
            return Err(invalid("auth.required_scope", "must be one scope token"));
        }
        if auth.algorithms.is_empty() {
            return Err(invalid("auth.algorithms", "must list at least one algorithm"));
        }
        for name in &auth.algorithms {
            esignsp_adapters::jwt::parse_algorithm(name).map_err(|e| invalid("auth.algorithms", e))?;
        }
        auth.profile.parse::<esignsp_adapters::jwt::Profile>().map_err(|e| invalid("auth.profile", e))?;
        for (key, value) in [("auth.jwks_url", &auth.jwks_url), ("auth.introspection_url", &auth.introspection_url)] {
            if !value.is_empty() {
                let url = url::Url::parse(value).map_err(|e| invalid(key, e))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(invalid(key, "must be an http(s) URL"));
                }
            }
        }
        if !auth.introspection_url.is_empty()
            && (auth.introspection_client_id.is_empty() || auth.introspection_client_secret.expose_secret().is_empty())
        {
            return Err(invalid("auth.introspection_client_id", "introspection needs a client id and secret"));
        }
        if auth.jwks_min_refresh_seconds == 0 {
            return Err(invalid("auth.jwks_min_refresh_seconds", "must be positive"));
        }
        if self.database.statement_timeout_seconds == 0 {
            return Err(invalid("database.statement_timeout_seconds", "must be positive"));
        }
        if self.processes.ttl_seconds == 0 || self.processes.ttl_seconds > MAX_TTL_SECONDS {
            return Err(invalid("processes.ttl_seconds", format!("must be 1 to {MAX_TTL_SECONDS} (ten years)")));
        }
        if self.server.body_timeout_seconds == 0 {
            return Err(invalid("server.body_timeout_seconds", "must be positive"));
        }
        if !self.ui.signing_app_url.is_empty() {
            let app = url::Url::parse(&self.ui.signing_app_url).map_err(|e| invalid("ui.signing_app_url", e))?;
            if !matches!(app.scheme(), "http" | "https") {
                return Err(invalid("ui.signing_app_url", "must be an http(s) URL"));
            }
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(invalid("log.format", "must be \"text\" or \"json\""));
        }
        Ok(())
    }

    /// The effective configuration as TOML, secrets redacted (`esignsp check-config`).
    #[must_use]
    pub fn to_redacted_toml(&self) -> String {
        toml_string(self)
    }
}

fn toml_string(settings: &Settings) -> String {
    // serde_json → toml-like rendering without adding a TOML serializer: sections of
    // `key = value` lines with JSON-compatible values, which TOML accepts.
    let Ok(serde_json::Value::Object(sections)) = serde_json::to_value(settings) else {
        return String::new();
    };
    let mut out = String::new();
    for (section, values) in sections {
        out.push_str(&format!("[{section}]\n"));
        if let serde_json::Value::Object(values) = values {
            for (key, value) in values {
                if !value.is_null() {
                    out.push_str(&format!("{key} = {value}\n"));
                }
            }
        }
        out.push('\n');
    }
    out
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
        let printed = s.to_redacted_toml();
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
        assert_eq!((s.server.port, s.server.host.as_str(), s.processes.ttl_seconds), (7001, "0.0.0.0", 5));
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
            server.public_url = public_url.to_owned();
            assert_eq!(server.public_url_mismatch(port).is_some(), warned, "{public_url} served on {port}");
            assert_eq!(server.public_base(port), public_url, "a configured public URL is used as it is");
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
        ] {
            let err = Settings::load_from(None, env(&pairs)).expect_err(key).to_string();
            assert!(err.contains(key), "{key} not named in: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }
}
