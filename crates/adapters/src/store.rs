//! The store chosen by the scheme of `database.url`: `postgres://` (or `postgresql://`) for
//! PostgreSQL, `sqlite://` for the embedded SQLite file.

use std::sync::Arc;

use esignsp_domain::ports::{RepositoryError, SignerProcessRepository};

use crate::postgres::{self, PoolSettings, PostgresRepository};
use crate::sqlite::{self, SqliteRepository};

/// A connected (lazily) store.
#[derive(Debug, Clone)]
pub enum Store {
    /// PostgreSQL.
    Postgres(PostgresRepository),
    /// Embedded SQLite.
    Sqlite(SqliteRepository),
}

/// Whether `url` names a store this server supports.
#[must_use]
pub fn is_supported_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:")
}

impl Store {
    /// Opens the pool for `url` without connecting yet (the service starts, and answers 503,
    /// while the database is down).
    ///
    /// # Errors
    /// [`RepositoryError::Unexpected`] for an unsupported or malformed URL.
    pub fn connect_lazy(url: &str, settings: &PoolSettings) -> Result<Self, RepositoryError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(SqliteRepository::new(sqlite::connect_lazy(url, settings)?)))
        } else if is_supported_url(url) {
            Ok(Self::Postgres(postgres::connect_lazy(url, settings)?))
        } else {
            Err(RepositoryError::Unexpected("database.url must start with postgres:// or sqlite://".into()))
        }
    }

    /// Applies the store's pending migrations.
    ///
    /// # Errors
    /// [`RepositoryError`] when the database is unreachable or a migration fails.
    pub async fn migrate(&self) -> Result<(), RepositoryError> {
        match self {
            Self::Postgres(r) => postgres::migrate(r).await,
            Self::Sqlite(r) => sqlite::migrate(r.pool()).await,
        }
    }

    /// Checks that the database takes esignsp's session as configured (PostgreSQL: the
    /// start-up options or, behind a pooler, `SET LOCAL` time-outs are in force); nothing for
    /// SQLite.
    ///
    /// # Errors
    /// [`RepositoryError::Unexpected`] with a cause naming the setting to change;
    /// [`RepositoryError::Unavailable`] when the database cannot be reached.
    pub async fn check_session(&self) -> Result<(), RepositoryError> {
        match self {
            Self::Postgres(r) => postgres::check_session(r).await,
            Self::Sqlite(_) => Ok(()),
        }
    }

    /// The repository port.
    #[must_use]
    pub fn repository(&self) -> Arc<dyn SignerProcessRepository> {
        match self {
            Self::Postgres(r) => Arc::new(r.clone()),
            Self::Sqlite(r) => Arc::new(r.clone()),
        }
    }

    /// The webhook port (SPEC §11): endpoints and the outbox's deliveries, in the same
    /// database.
    #[must_use]
    pub fn webhooks(&self) -> Arc<dyn esignsp_domain::webhooks::WebhookRepository> {
        match self {
            Self::Postgres(r) => Arc::new(r.clone()),
            Self::Sqlite(r) => Arc::new(r.clone()),
        }
    }

    /// Pool connections: `(in use, idle)`.
    #[must_use]
    pub fn pool_connections(&self) -> (u32, u32) {
        let (size, idle) = match self {
            Self::Postgres(r) => (r.pool().size(), r.pool().num_idle()),
            Self::Sqlite(r) => (r.pool().size(), r.pool().num_idle()),
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX);
        (size.saturating_sub(idle), idle)
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match self {
            Self::Postgres(r) => r.pool().close().await,
            Self::Sqlite(r) => r.pool().close().await,
        }
    }
}
