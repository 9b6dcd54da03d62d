//! The composition root: the only place that knows the concrete adapters.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, DefaultHeaders, NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpResponse, HttpServer};
use esignsp_adapters::introspection::{IntrospectionSettings, Introspector};
use esignsp_adapters::jwks::{JwksLocation, JwksSource};
use esignsp_adapters::jwt::{DevSigningKey, JwtVerifier, VerifierSettings};
use esignsp_adapters::keys::load_key_file;
use esignsp_adapters::postgres::PoolSettings;
use esignsp_adapters::sqlite::StorageProblem;
use esignsp_adapters::store::Store;
use esignsp_adapters::system::{OsRandomIds, SystemClock};
use esignsp_adapters::webhooks::{HttpWebhookSender, OutboundPolicy};
use esignsp_domain::group_commit::GroupCommitSettings;
use esignsp_domain::ports::{AccessTokenVerifier, RepositoryError};
use esignsp_domain::webhooks::{WebhookDispatcher, WebhookService};
use esignsp_domain::{ResultStateMachine, SignerProcessService};
use secrecy::ExposeSecret;

use crate::auth::BearerAuth;
use crate::body::FormLimits;
use crate::config::{ConfigError, Settings};
use crate::dto::Urls;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::state::{AppState, Webhooks};

/// Builds the verifier of `[auth]`: keys of `auth.public_key_files` plus the public half of
/// `auth.dev_signing_key_file`.
///
/// # Errors
/// [`ConfigError`] naming the key whose file cannot be used.
pub fn build_verifier(settings: &Settings) -> Result<JwtVerifier, ConfigError> {
    let auth = &settings.auth;
    let algorithms = auth.algorithms.clone();
    let mut keys = Vec::new();
    for file in &auth.public_key_files {
        keys.extend(load_key_file(file, &algorithms).map_err(|e| ConfigError(format!("auth.public_key_files: {e}")))?);
    }
    if let Some(file) = &auth.dev_signing_key_file {
        let dev = DevSigningKey::load(file).map_err(|e| ConfigError(format!("auth.dev_signing_key_file: {e}")))?;
        if !algorithms.contains(&dev.algorithm()) {
            return Err(ConfigError(format!(
                "auth.dev_signing_key_file: its algorithm {:?} is not in auth.algorithms",
                dev.algorithm()
            )));
        }
        keys.push(dev.verification_key());
    }
    let trusted_clients = auth.trusted_clients.iter().cloned().collect::<HashSet<_>>();
    let mut verifier = JwtVerifier::new(
        VerifierSettings {
            issuer: auth.issuer.clone(),
            audience: auth.audience.clone(),
            algorithms: algorithms.clone(),
            leeway_seconds: auth.leeway_seconds,
            required_scope: auth.required_scope.clone(),
            profile: auth.profile.into(),
            trusted_clients,
        },
        keys,
    );
    let location = if let Some(url) = &auth.jwks_url {
        Some(JwksLocation::Url(url.to_string()))
    } else if !verifier.has_keys() && auth.introspection_url.is_none() {
        Some(JwksLocation::Discover { issuer: auth.issuer.clone() })
    } else {
        None
    };
    if let Some(location) = location {
        let min_refresh = Duration::from_secs(auth.jwks_min_refresh_seconds.get());
        verifier = verifier.with_jwks(Arc::new(JwksSource::new(location, algorithms, min_refresh)));
    }
    if let Some(url) = &auth.introspection_url {
        verifier = verifier.with_introspection(Arc::new(Introspector::new(IntrospectionSettings {
            url: url.to_string(),
            client_id: auth.introspection_client_id.clone(),
            client_secret: auth.introspection_client_secret.expose_secret().to_owned(),
            cache_for: Duration::from_secs(auth.introspection_cache_seconds),
            issuer: auth.issuer.clone(),
            audience: auth.audience.clone(),
        })));
    }
    Ok(verifier)
}

/// In the development set-up ([`Settings::development`]), creates the signing key in
/// `server.data_dir` on first use. Does nothing otherwise.
///
/// # Errors
/// [`ConfigError`] when the key cannot be written.
pub fn ensure_dev_key(settings: &Settings) -> Result<(), ConfigError> {
    match &settings.auth.dev_signing_key_file {
        Some(path) if settings.development && !path.exists() => {
            DevSigningKey::generate_ed25519(path).map_err(|e| ConfigError(format!("server.data_dir: {e}")))
        }
        _ => Ok(()),
    }
}

/// Opens the (lazy) store of `[database]`, chosen by the URL's scheme.
///
/// # Errors
/// [`ConfigError`] for an unusable `database.url`.
pub fn connect(settings: &Settings) -> Result<Store, ConfigError> {
    Store::connect_lazy(
        settings.database.url.expose_secret(),
        &PoolSettings {
            max_connections: settings.database.max_connections.get(),
            acquire_timeout: Duration::from_secs(settings.database.acquire_timeout_seconds.get()),
            statement_timeout: Duration::from_secs(settings.database.statement_timeout_seconds.get()),
            transaction_pooling: settings.database.transaction_pooling,
        },
    )
    .map_err(|e| ConfigError(format!("database.url: {e}")))
}

/// Why the SQLite database of `store` cannot take writes, if it cannot: a read-only data
/// directory or file, or a full file system (PostgreSQL: never).
#[must_use]
pub fn storage_problem(store: &Store) -> Option<StorageProblem> {
    let Store::Sqlite(repository) = store else { return None };
    esignsp_adapters::sqlite::check_storage(&repository.file()?).err()
}

/// Logs, at start, a SQLite database that cannot take writes. The service starts anyway and
/// answers 503 (read-only) or 507 (full) until the cause is fixed; `/readyz` reports it.
fn report_storage(problem: &StorageProblem) {
    match problem {
        StorageProblem::ReadOnly { .. } => tracing::error!(
            "server.data_dir: {problem}: the database cannot be written; requests and /readyz answer 503 until it \
             is writable"
        ),
        StorageProblem::Full { .. } => {
            tracing::error!("server.data_dir: {problem}: writes answer 507 and /readyz 503 until space is freed");
        }
    }
}

/// A built, listening, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    store: Store,
    sweeper: Option<tokio::task::JoinHandle<()>>,
    webhook_worker: Option<tokio::task::JoinHandle<()>>,
}

/// On SIGINT or SIGTERM: stop accepting, let in-flight requests finish within
/// `server.shutdown_timeout_seconds`, then [`Application::run_until_stopped`] closes the pool.
fn spawn_signal_handler(handle: actix_web::dev::ServerHandle) {
    tokio::spawn(async move {
        let interrupt = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = interrupt => tracing::info!("SIGINT received: shutting down gracefully"),
            () = terminate => tracing::info!("SIGTERM received: shutting down gracefully"),
        }
        handle.stop(true).await;
    });
}

/// How many overdue processes one sweep expires at most (one transaction).
const SWEEP_BATCH: u32 = 100;

/// How long staged upload bytes may stay unadopted before the sweep removes them: twice the
/// time a body may take to arrive (`server.body_timeout_seconds`) and five minutes more, so
/// that only the leftovers of a crash or of a lost connection to the store are taken.
fn staged_upload_age(body_timeout: Duration) -> Duration {
    body_timeout.saturating_mul(2).saturating_add(Duration::from_secs(300))
}

/// Every `interval`: expires overdue pending processes (SPEC §4), and removes staged upload
/// bytes older than `staged_age` that no document adopted ([`esignsp_domain::content`]). Each
/// expiry batch locks rows with `SKIP LOCKED`, and removing staged bytes is idempotent, so
/// several replicas sweep one database safely.
fn spawn_expiry_sweeper(
    service: SignerProcessService,
    interval: Duration,
    staged_age: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match service.sweep_staged(staged_age).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "removed the staged bytes of abandoned uploads"),
                Err(e) => tracing::warn!(error = %e, "sweep of staged uploads failed; retrying at the next interval"),
            }
            loop {
                match service.expire_overdue(SWEEP_BATCH).await {
                    Ok(n) if n == u64::from(SWEEP_BATCH) => continue,
                    Ok(n) => {
                        if n > 0 {
                            tracing::info!(expired = n, "expired overdue signature processes");
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "expiry sweep failed; retrying at the next interval");
                        break;
                    }
                }
            }
        }
    })
}

impl Application {
    /// Wires adapters into the service, migrates when `database.migrate_on_start`, and binds
    /// `server.host:server.port` (port 0 picks a free port).
    ///
    /// # Errors
    /// A configuration error naming its key, an unreachable database when migrating, or a
    /// port that cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, |_| {}).await
    }

    /// [`Application::build`] with `extra_routes` added beside the API's own (tests use it for
    /// routes that production must not have, such as one that panics).
    ///
    /// # Errors
    /// As [`Application::build`].
    pub async fn build_with(settings: Settings, extra_routes: fn(&mut web::ServiceConfig)) -> anyhow::Result<Self> {
        ensure_dev_key(&settings)?;
        let signing = crate::signing::build_signing(&settings)?.map(Arc::new);
        let jwt_verifier = build_verifier(&settings)?;
        let warming = jwt_verifier.clone();
        tokio::spawn(async move { warming.warm_up().await });
        let verifier: Arc<dyn AccessTokenVerifier> = Arc::new(jwt_verifier);
        if settings.development {
            let config = std::env::var("ESIGNSP_CONFIG").map(|c| format!("ESIGNSP_CONFIG={c} ")).unwrap_or_default();
            tracing::warn!(
                data_dir = %settings.server.data_dir.display(),
                "DEVELOPMENT SET-UP: no authorization is configured, so tokens signed with the generated key \
                 in the data directory are accepted. Never run this in production: set auth.issuer and \
                 auth.public_key_files. Mint a token with: {config}esignsp token --client-id <client id>"
            );
        }
        let store = connect(&settings)?;
        let url = crate::config::redacted_url(settings.database.url.expose_secret());
        // Bounded: the service starts while the database is down.
        match tokio::time::timeout(Duration::from_secs(2), store.check_session())
            .await
            .unwrap_or_else(|_| Err(RepositoryError::Unavailable("no connection within 2 s".into())))
        {
            Ok(()) => {}
            // The service starts while the database is down, and answers 503 until it is back.
            Err(RepositoryError::Unavailable(e)) => tracing::warn!(error = %e, "database.url: {url} is unreachable"),
            // A read-only or full database: the service starts and answers 503 or 507 meanwhile.
            Err(RepositoryError::ReadOnly(e) | RepositoryError::InsufficientStorage(e)) => {
                tracing::warn!(error = %e, "database.url: {url} cannot take writes");
            }
            Err(RepositoryError::Unexpected(e)) => anyhow::bail!("database.url: {url}: {e}"),
        }
        let storage = storage_problem(&store);
        if let Some(problem) = &storage {
            report_storage(problem);
        }
        if settings.database.migrate_on_start {
            match (store.migrate().await, &storage) {
                (Ok(()), _) => {}
                // Serve (503) rather than stop: the service recovers once the directory is writable.
                (Err(e), Some(StorageProblem::ReadOnly { .. })) => {
                    tracing::error!(error = %e, "migrations not run: the database is read-only");
                }
                (Err(e), _) => {
                    let cause = std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default();
                    return Err(anyhow::anyhow!("database.url: cannot migrate {url}: {e}{cause}"));
                }
            }
        }
        let mut service = SignerProcessService::new(
            store.repository(),
            Arc::new(OsRandomIds),
            Arc::new(SystemClock),
            Arc::new(ResultStateMachine::with_default_rules()),
            time::Duration::seconds(i64::try_from(settings.processes.ttl_seconds.get()).unwrap_or(i64::MAX)),
        );
        let webhooks = settings.webhooks.enabled.then(|| {
            service = service.clone().with_webhooks();
            let outbound = OutboundPolicy {
                allow_insecure: settings.webhooks.allow_insecure,
                allow_private_targets: settings.webhooks.allow_private_targets,
            };
            if outbound.allow_insecure || outbound.allow_private_targets {
                tracing::warn!(
                    allow_insecure = outbound.allow_insecure,
                    allow_private_targets = outbound.allow_private_targets,
                    "webhooks may be delivered over plain HTTP or to private addresses: development only"
                );
            }
            Webhooks {
                service: WebhookService::new(
                    store.webhooks(),
                    Arc::new(OsRandomIds),
                    Arc::new(SystemClock),
                    Arc::new(esignsp_adapters::system::random_256),
                    settings.webhooks.max_endpoints_per_client,
                ),
                outbound,
                wake: Arc::new(tokio::sync::Notify::new()),
            }
        });
        if settings.database.group_commit && matches!(store, Store::Postgres(_)) {
            let (batched, group) = service.clone().with_group_commit(GroupCommitSettings {
                max_batch: settings.database.group_commit_max_batch,
                lanes: settings.database.group_commit_lanes,
            });
            service = batched;
            // Ends once the last clone of the service (the app state) is dropped.
            tokio::spawn(group.run());
        }
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port)).map_err(|e| {
            anyhow::anyhow!(
                "server.host, server.port: cannot bind {}:{}: {e}",
                settings.server.host,
                settings.server.port
            )
        })?;
        let port = listener.local_addr()?.port();
        let public_url = settings.server.public_base(port);
        if let Some(warning) = settings.server.public_url_mismatch(port) {
            tracing::warn!(public_url = %public_url, port, "{warning}");
        }
        let state = web::Data::new(AppState {
            service,
            urls: Urls::new(&public_url),
            form_limits: FormLimits {
                max_json_bytes: settings.server.max_json_bytes.get(),
                max_document_bytes: settings.server.max_document_bytes.get(),
                body_timeout: Duration::from_secs(settings.server.body_timeout_seconds.get()),
            },
            signing_app_url: settings.ui.signing_app_url.as_ref().map(ToString::to_string).unwrap_or_default(),
            store: store.clone(),
            verifier: verifier.clone(),
            signing,
            webhooks: webhooks.clone(),
        });
        let metrics = web::Data::new(Metrics::new());
        let webhook_worker = webhooks.map(|w| {
            let timeout = Duration::from_secs(settings.webhooks.timeout_seconds.get());
            let dispatcher = WebhookDispatcher::new(
                store.webhooks(),
                Arc::new(HttpWebhookSender::new(w.outbound, timeout)),
                Arc::new(SystemClock),
                Arc::new(esignsp_adapters::system::RandomJitter),
                settings.webhooks.retry_policy(),
                // A lease outlives the longest exchange, so no other worker sends meanwhile.
                time::Duration::seconds(
                    i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX / 2).saturating_mul(2) + 30,
                ),
            );
            crate::webhook_worker::spawn(
                dispatcher,
                metrics.get_ref().clone(),
                w.wake,
                Duration::from_millis(settings.webhooks.poll_interval_ms),
                settings.webhooks.concurrency,
            )
        });
        let sweeper = (settings.processes.sweep_interval_seconds > 0).then(|| {
            spawn_expiry_sweeper(
                state.service.clone(),
                Duration::from_secs(settings.processes.sweep_interval_seconds),
                staged_upload_age(state.form_limits.body_timeout),
            )
        });
        let auth = web::Data::new(BearerAuth { verifier, required_scope: settings.auth.required_scope.clone() });
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(auth.clone())
                .app_data(metrics.clone())
                .configure(crate::routes::configure)
                .configure(extra_routes)
                .default_service(web::to(|| async { Err::<HttpResponse, _>(ApiError::NotFound) }))
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .wrap(from_fn(crate::panic::middleware))
                .wrap(DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
                .wrap(from_fn(crate::framing::middleware))
                .wrap(from_fn(crate::request_id::middleware))
        })
        .shutdown_timeout(settings.server.shutdown_timeout_seconds)
        // SIGINT and SIGTERM both stop gracefully (actix would treat SIGINT as forced).
        .disable_signals()
        .listen(listener)?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.run();
        spawn_signal_handler(server.handle());
        Ok(Self { port, server, store, sweeper, webhook_worker })
    }

    /// The bound port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server (graceful by default).
    #[must_use]
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT or SIGTERM, lets in-flight requests finish within
    /// `server.shutdown_timeout_seconds`, then closes the pool.
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for task in [self.sweeper, self.webhook_worker].into_iter().flatten() {
            task.abort();
        }
        self.store.close().await;
        result
    }
}
