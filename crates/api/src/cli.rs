//! The command line (SPEC §7): `serve` (default), `migrate`, `token`, `check-config`, and
//! `keygen` (writes a development signing key).

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use esignsp_adapters::jwt::{DevSigningKey, DevTokenRequest};

use crate::config::Settings;
use crate::startup::{connect, Application};

/// esignsp: a server for the eSignSP v2 document signature process API.
#[derive(Debug, Parser)]
#[command(name = "esignsp", version, about)]
pub struct Cli {
    /// TOML configuration file (layered between built-in defaults and ESIGNSP__* variables).
    #[arg(long, global = true, env = "ESIGNSP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run pending migrations, then serve the API until SIGINT or SIGTERM.
    Serve,
    /// Run pending migrations and exit.
    Migrate,
    /// Print an access token signed with auth.dev_signing_key_file (development only).
    Token {
        /// The client id (`client_id` and `sub` claims).
        #[arg(long)]
        client_id: String,
        /// The scope (default: auth.required_scope).
        #[arg(long)]
        scope: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Validate the configuration and print it, secrets redacted.
    CheckConfig,
    /// Write a new Ed25519 development signing key (PKCS#8 PEM) for auth.dev_signing_key_file.
    Keygen {
        /// Where to write it; refuses to overwrite.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs the command line; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    if let Some(Command::Keygen { out }) = &cli.command {
        return match DevSigningKey::generate_ed25519(out) {
            Ok(()) => {
                println!("wrote {}", out.display());
                0
            }
            Err(e) => fail(&e),
        };
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            crate::telemetry::init(&settings.log);
            match Application::build(settings).await {
                Ok(app) => {
                    tracing::info!(port = app.port(), "esignsp listening");
                    match app.run_until_stopped().await {
                        Ok(()) => 0,
                        Err(e) => fail(&e),
                    }
                }
                Err(e) => fail(&e),
            }
        }
        Command::Migrate => {
            let store = match connect(&settings) {
                Ok(s) => s,
                Err(e) => return fail(&e),
            };
            match store.migrate().await {
                Ok(()) => {
                    // Behind a transaction pooler nothing is applied, only checked (see `Store::migrate`).
                    println!("the database schema is up to date");
                    0
                }
                Err(e) => match crate::startup::storage_problem(&store) {
                    Some(problem) => fail(&format!("server.data_dir: {problem}: {e}")),
                    None => fail(&format!("database.url: {e}: {}", source_text(&e))),
                },
            }
        }
        Command::Token { client_id, scope, ttl } => {
            let Some(file) = &settings.auth.dev_signing_key_file else {
                return fail(&"auth.dev_signing_key_file: not set; `esignsp token` signs only with a development key");
            };
            if !file.exists() {
                return fail(&missing_dev_key(&settings, file));
            }
            let key = match DevSigningKey::load(file) {
                Ok(k) => k,
                Err(e) => return fail(&format!("auth.dev_signing_key_file: {e}")),
            };
            let scope = scope.unwrap_or_else(|| settings.auth.required_scope.clone());
            let request = DevTokenRequest {
                issuer: &settings.auth.issuer,
                audience: &settings.auth.audience[0],
                client_id: &client_id,
                scope: &scope,
                ttl_seconds: ttl,
            };
            match key.sign(&request) {
                Ok(token) => {
                    println!("{token}");
                    0
                }
                Err(e) => fail(&e),
            }
        }
        Command::CheckConfig => {
            // A fresh development set-up has no key yet: `serve` generates it on first start,
            // and checking must not.
            let mut checked = settings.clone();
            if settings.development && settings.auth.dev_signing_key_file.as_ref().is_some_and(|f| !f.exists()) {
                checked.auth.dev_signing_key_file = None;
                eprintln!(
                    "esignsp: development set-up: `esignsp serve` will generate the signing key {}",
                    settings
                        .auth
                        .dev_signing_key_file
                        .as_deref()
                        .map(Path::display)
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                );
            }
            if let Err(e) = crate::startup::build_verifier(&checked) {
                return fail(&e);
            }
            match crate::signing::check(&settings) {
                Ok(line) => eprintln!("esignsp: {line}"),
                Err(e) => return fail(&e),
            }
            match settings.to_redacted_toml() {
                Ok(printed) => {
                    print!("{printed}");
                    0
                }
                Err(e) => fail(&e),
            }
        }
        Command::Keygen { .. } => 0,
    }
}

/// The line of `esignsp token` when the key it signs with does not exist: which file it looked
/// for, and where to run it.
fn missing_dev_key(settings: &Settings, file: &Path) -> String {
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| ".".to_owned());
    let absolute = if file.is_absolute() { file.to_path_buf() } else { Path::new(&cwd).join(file) };
    if settings.development {
        format!(
            "auth.dev_signing_key_file: no development key {} (looked for it from {cwd}); `esignsp token` never \
             generates one. Run it in the directory where `esignsp serve` runs (serve creates the key in its \
             server.data_dir on first start), or point ESIGNSP__SERVER__DATA_DIR (or ESIGNSP_CONFIG) at that \
             service's data directory",
            absolute.display()
        )
    } else {
        format!(
            "auth.dev_signing_key_file: no such file {} (looked for it from {cwd}); `esignsp token` never \
             generates a key: create one with `esignsp keygen --out {}` and configure it for the service too",
            absolute.display(),
            file.display()
        )
    }
}

fn source_text(e: &dyn std::error::Error) -> String {
    e.source().map(ToString::to_string).unwrap_or_default()
}

fn fail(e: &dyn std::fmt::Display) -> i32 {
    eprintln!("esignsp: {}", e.to_string().replace('\n', " "));
    2
}
