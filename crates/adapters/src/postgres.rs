//! PostgreSQL implementation of [`SignerProcessRepository`] (SPEC §8), with sqlx.
//!
//! The transition protocol of SPEC §8 is the domain's; this adapter only loads snapshots
//! ([`sql::LOAD`], without a lock) and writes transitions ([`sql::WRITE`], one statement that
//! applies only while the process's `version` is still the one loaded): the common
//! `PUT …/result` is two statements on one connection, no BEGIN/COMMIT.

use std::collections::HashSet;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use esignsp_domain::content::NewContent;
use esignsp_domain::events::{AuditContext, AuditEvent, EventKind};
use esignsp_domain::ports::{
    CreateError, DeleteDocumentOutcome, RepositoryError, SignerProcessRepository, Transition, TransitionStore,
    WriteOutcome,
};
use esignsp_domain::process::{
    DocumentContent, NewSignerProcess, NewStandaloneDocument, ProcessDocumentSource, SignerProcess, StoredDocument,
};
use esignsp_domain::rules::{DocumentState, ProcessSnapshot};
use esignsp_domain::webhooks::{ClaimedDelivery, Notification};
use esignsp_domain::{Caller, ContentId, DocumentId, EndpointId, ProcessId};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row, Transaction};
use time::OffsetDateTime;

use crate::queries::{
    self, bind_document, bind_process, bind_visible, document_in_use, insert_event, own_document, visible_to_caller,
    Event, Store,
};
use crate::stored::{self, column, document_id, stored_document_result, StoredRow, StoredTransition};

/// The schema migrations of `migrations/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Connection pool settings (`[database]` of the configuration).
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Largest number of open connections (`database.max_connections`).
    pub max_connections: u32,
    /// How long a request waits for a connection before answering 503
    /// (`database.acquire_timeout_seconds`).
    pub acquire_timeout: Duration,
    /// Longest a PostgreSQL statement, or a wait for a lock, may take (`statement_timeout`,
    /// `lock_timeout`); then the request answers 503 (`database.statement_timeout_seconds`).
    pub statement_timeout: Duration,
    /// The URL leads to a pooler in transaction mode (pgbouncer `pool_mode = transaction`),
    /// which may run each transaction of one client connection on another server connection
    /// (`database.transaction_pooling`). Then every operation is one transaction, its
    /// statements are unnamed (nothing prepared outlives the transaction, no statement
    /// cache), no start-up options are sent, and the time-outs are set with `SET LOCAL` at
    /// the start of each transaction.
    pub transaction_pooling: bool,
}

impl Default for PoolSettings {
    /// The defaults of `[database]`: 16 connections, 5 s to acquire one, 10 s per statement,
    /// a direct connection to PostgreSQL.
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            transaction_pooling: false,
        }
    }
}

/// How often, and how long at most, the background probe tries to connect while PostgreSQL
/// is unreachable.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Opens a lazily connecting pool: the service starts, and answers 503, while the database
/// is down, and recovers by itself when it returns.
///
/// Connections made before an event that invalidates them are closed instead of being handed
/// out again: before a statement failed because the schema changed under it (`cached plan
/// must not change result type`, `prepared statement … does not exist`), and before an
/// outage.
///
/// # Errors
/// [`RepositoryError::Unexpected`] when `url` is not a valid PostgreSQL URL.
pub fn connect_lazy(url: &str, settings: &PoolSettings) -> Result<PostgresRepository, RepositoryError> {
    let options: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| RepositoryError::Unexpected(e.into()))?;
    let options = options.application_name("esignsp");
    let millis = settings.statement_timeout.as_millis();
    let options = if settings.transaction_pooling {
        // A pooler in transaction mode passes on no start-up options (pgbouncer refuses them,
        // or drops them with `ignore_startup_parameters`); the time-outs go into each
        // transaction instead, and nothing is prepared beyond one.
        options.extra_float_digits(None).statement_cache_capacity(0)
    } else {
        let millis = millis.to_string();
        options.options([("statement_timeout", millis.as_str()), ("lock_timeout", millis.as_str())])
    };
    let retired = Arc::new(Retirement::default());
    let retire = Arc::clone(&retired);
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(move |_, meta| {
            let keep = !retire.made_before_retirement(meta.age);
            Box::pin(async move { Ok(keep) })
        })
        .connect_lazy_with(options.clone());
    Ok(PostgresRepository {
        statements: Statements {
            pool,
            transaction_pooling: settings.transaction_pooling,
            begin: format!("BEGIN; SET LOCAL statement_timeout = {millis}; SET LOCAL lock_timeout = {millis}"),
            timeout_millis: millis,
            health: Arc::new(Health::new(options, retired)),
        },
    })
}

/// Applies pending migrations. Through a pooler in transaction mode (see
/// [`PoolSettings::transaction_pooling`]) migrations cannot run — they need one session for
/// their lock and their statements — so it only checks that none is pending.
///
/// # Errors
/// [`RepositoryError`] when the database is unreachable or a migration fails;
/// [`RepositoryError::Unexpected`] naming `database.transaction_pooling` when migrations are
/// pending behind a pooler.
pub async fn migrate(repository: &PostgresRepository) -> Result<(), RepositoryError> {
    let statements = &repository.statements;
    if !statements.transaction_pooling {
        return MIGRATOR.run(&statements.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => map_error(inner),
            other => RepositoryError::Unexpected(other.into()),
        });
    }
    let mut tx = statements.begin().await?;
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .persistent(false)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_error)?;
    let applied: Vec<i64> = if table.is_some() {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .persistent(false)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?
    } else {
        Vec::new()
    };
    tx.commit().await.map_err(map_error)?;
    let pending: Vec<String> = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
        .map(|m| format!("{}_{}", m.version, m.description))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    Err(RepositoryError::Unexpected(
        format!(
            "migrations {} are pending, and they cannot run through a pooler in transaction mode \
             (database.transaction_pooling = true): run `esignsp migrate` once with database.url pointing \
             at PostgreSQL itself, then start the service",
            pending.join(", ")
        )
        .into(),
    ))
}

/// Checks, with one connection, that the server takes esignsp's session as configured: the
/// start-up options are accepted, and `statement_timeout` / `lock_timeout` are in force.
/// Start-up calls it so that a pooler configured for other clients is named at once.
///
/// # Errors
/// [`RepositoryError::Unexpected`] naming `database.transaction_pooling` when a pooler
/// refused or dropped the time-outs; [`RepositoryError::Unavailable`] when the database
/// cannot be reached (the service then starts and answers 503 until it can).
pub async fn check_session(repository: &PostgresRepository) -> Result<(), RepositoryError> {
    let statements = &repository.statements;
    let mut session = statements.session().await.inspect_err(|e| {
        if classify(e) == Failure::LostConnection {
            statements.health.suspect();
        }
    })?;
    let timeouts: (String, String) = sqlx::query_as(
        "SELECT (SELECT setting FROM pg_settings WHERE name = 'statement_timeout'), \
                (SELECT setting FROM pg_settings WHERE name = 'lock_timeout')",
    )
    .persistent(false)
    .fetch_one(&mut *session)
    .await
    .map_err(map_error)?;
    session.end().await?;
    let wanted = statements.timeout_millis.to_string();
    if timeouts.0 == wanted && timeouts.1 == wanted {
        return Ok(());
    }
    Err(RepositoryError::Unexpected(
        format!(
            "the server does not apply the start-up options esignsp sends (statement_timeout is {} ms, \
             lock_timeout {} ms, not {wanted}): a pooler such as pgbouncer with `options` in ignore_startup_parameters \
             drops them; set database.transaction_pooling = true behind it",
            timeouts.0, timeouts.1
        )
        .into(),
    ))
}

/// The instant before which pooled connections are retired: they are closed at their next
/// acquire (see `before_acquire` in [`connect_lazy`]), so statements cached before a schema
/// change, and connections that died in an outage, are not handed out again.
#[derive(Debug)]
struct Retirement {
    base: Instant,
    /// Nanoseconds after `base` of the last retirement; 0: none yet.
    at: AtomicU64,
}

impl Default for Retirement {
    fn default() -> Self {
        Self { base: Instant::now(), at: AtomicU64::new(0) }
    }
}

impl Retirement {
    fn nanos_since_base(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX).max(1)
    }

    /// Retires every connection made until now.
    fn retire_all(&self) {
        self.at.store(self.nanos_since_base(Instant::now()), Ordering::Release);
    }

    /// Whether a connection of this age was made before the last retirement.
    fn made_before_retirement(&self, age: Duration) -> bool {
        let at = self.at.load(Ordering::Acquire);
        at != 0 && Instant::now().checked_sub(age).is_none_or(|made| self.nanos_since_base(made) <= at)
    }
}

/// Whether PostgreSQL is known to be unreachable, and the probe that finds out when it is back.
///
/// A request that fails because the connection was lost or could not be made starts the probe
/// (one at a time). While its connection attempts fail, requests answer 503 at once instead of
/// waiting `acquire_timeout` each; the first that succeeds ends the outage.
#[derive(Debug)]
struct Health {
    down: AtomicBool,
    probing: AtomicBool,
    /// Wakes requests already waiting for a connection when the outage is confirmed.
    went_down: tokio::sync::watch::Sender<bool>,
    options: PgConnectOptions,
    retired: Arc<Retirement>,
}

impl Health {
    fn new(options: PgConnectOptions, retired: Arc<Retirement>) -> Self {
        Self {
            down: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            went_down: tokio::sync::watch::Sender::new(false),
            options,
            retired,
        }
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// Starts the probe unless one runs.
    fn suspect(self: &Arc<Self>) {
        if self.probing.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return;
        }
        let health = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match tokio::time::timeout(PROBE_TIMEOUT, health.connect_once()).await {
                    Ok(Ok(())) => break,
                    Ok(Err(error)) => health.mark_down(&error.to_string()),
                    Err(_) => health.mark_down("no answer within the probe's time-out"),
                }
                tokio::time::sleep(PROBE_INTERVAL).await;
            }
            if health.down.swap(false, Ordering::AcqRel) {
                health.went_down.send_replace(false);
                tracing::info!("PostgreSQL is reachable again: serving requests");
            }
            health.probing.store(false, Ordering::Release);
        });
    }

    fn mark_down(&self, cause: &str) {
        if !self.down.swap(true, Ordering::AcqRel) {
            // The pool's connections of before the outage are dead or soon will be.
            self.retired.retire_all();
            self.went_down.send_replace(true);
            tracing::error!(
                error = cause,
                "PostgreSQL is unreachable: answering 503 at once until a connection succeeds (probing every {} ms)",
                PROBE_INTERVAL.as_millis()
            );
        }
    }

    async fn connect_once(&self) -> Result<(), sqlx::Error> {
        let mut connection = PgConnection::connect_with(&self.options).await?;
        sqlx::Executor::execute(&mut connection, "SELECT 1").await?;
        connection.close().await
    }

    /// Waits until the outage is confirmed.
    async fn confirmed_down(&self) {
        let mut receiver = self.went_down.subscribe();
        let _ = receiver.wait_for(|down| *down).await;
    }
}

fn unreachable_error() -> RepositoryError {
    RepositoryError::Unavailable("PostgreSQL is unreachable; a background probe reconnects".into())
}

/// The connection of one operation: a pooled connection (directly to PostgreSQL), or a
/// transaction whose first statement set the time-outs (behind a pooler in transaction mode,
/// where an unnamed statement lives only as long as the transaction).
enum Session {
    Direct(PoolConnection<Postgres>),
    Pooled(Transaction<'static, Postgres>),
}

impl Deref for Session {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        match self {
            Self::Direct(c) => c,
            Self::Pooled(t) => t,
        }
    }
}

impl DerefMut for Session {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Self::Direct(c) => c,
            Self::Pooled(t) => t,
        }
    }
}

impl Session {
    /// Ends the operation: commits its transaction behind a pooler; nothing directly.
    async fn end(self) -> Result<(), RepositoryError> {
        match self {
            Self::Direct(_) => Ok(()),
            Self::Pooled(t) => t.commit().await.map_err(map_error),
        }
    }
}

/// The statements of each repository operation, run once (see [`PostgresRepository`] for the
/// retry).
#[derive(Debug, Clone)]
struct Statements {
    pool: PgPool,
    transaction_pooling: bool,
    /// The statement that begins a transaction behind a pooler (time-outs with `SET LOCAL`).
    begin: String,
    /// `statement_timeout` and `lock_timeout`, in milliseconds.
    timeout_millis: u128,
    health: Arc<Health>,
}

impl Statements {
    /// Runs `connecting` (an acquire, or an acquire and `BEGIN`); 503 at once while PostgreSQL
    /// is known to be unreachable, and as soon as that is confirmed for a request already
    /// waiting.
    async fn unless_down<T>(
        &self,
        connecting: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, RepositoryError> {
        if self.health.is_down() {
            return Err(unreachable_error());
        }
        tokio::select! {
            connection = connecting => connection.map_err(map_error),
            () = self.health.confirmed_down() => Err(unreachable_error()),
        }
    }

    /// The connection of an operation that needs no transaction of its own.
    async fn session(&self) -> Result<Session, RepositoryError> {
        if self.transaction_pooling {
            Ok(Session::Pooled(self.begin().await?))
        } else {
            Ok(Session::Direct(self.unless_down(self.pool.acquire()).await?))
        }
    }

    /// A transaction (behind a pooler, with its time-outs set).
    async fn begin(&self) -> Result<Transaction<'static, Postgres>, RepositoryError> {
        if self.transaction_pooling {
            self.unless_down(self.pool.begin_with(self.begin.clone())).await
        } else {
            self.unless_down(self.pool.begin()).await
        }
    }

    /// Whether statements are prepared and cached (directly to PostgreSQL).
    fn persistent(&self) -> bool {
        !self.transaction_pooling
    }

    /// [`Self::query`] answering one column.
    fn query_scalar<'q, O>(&self, sql: &'q str) -> sqlx::query::QueryScalar<'q, Postgres, O, PgArguments>
    where
        (O,): for<'r> sqlx::FromRow<'r, PgRow>,
    {
        sqlx::query_scalar(sql).persistent(!self.transaction_pooling)
    }
}

impl Store for Statements {
    type Database = Postgres;

    /// A statement with parameters: prepared once per connection and cached directly; unnamed
    /// behind a pooler.
    fn query<'q>(&self, sql: &'q str) -> sqlx::query::Query<'q, Postgres, PgArguments> {
        sqlx::query(sql).persistent(!self.transaction_pooling)
    }

    fn map_error(error: sqlx::Error) -> RepositoryError {
        map_error(error)
    }
}

/// The PostgreSQL repository. Each operation that failed because a statement no longer matches
/// the schema (`cached plan must not change result type` after an `ALTER … TYPE`, `prepared
/// statement … does not exist`) is retried once on connections made after the failure; one that
/// lost its connection starts the outage probe.
#[derive(Debug, Clone)]
pub struct PostgresRepository {
    statements: Statements,
}

impl PostgresRepository {
    /// The pool, for metrics and shutdown.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.statements.pool
    }

    /// Runs `attempt`, and once more after retiring every connection when it failed on a
    /// statement that the schema outdated; starts the outage probe when it lost its connection.
    async fn retrying<T, E, F>(&self, mut attempt: impl FnMut() -> F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: HasRepositoryError,
    {
        let mut retried = false;
        loop {
            let outcome = attempt().await;
            let Err(error) = &outcome else { return outcome };
            match error.repository_error().map(classify) {
                Some(Failure::StaleStatement) if !retried => {
                    tracing::warn!(
                        error = %source_of(error.repository_error()),
                        "a statement no longer matches the schema: reconnecting and retrying once"
                    );
                    self.statements.health.retired.retire_all();
                    retried = true;
                }
                Some(Failure::LostConnection) => {
                    self.statements.health.suspect();
                    return outcome;
                }
                _ => return outcome,
            }
        }
    }
}

fn source_of(error: Option<&RepositoryError>) -> String {
    match error {
        Some(
            RepositoryError::Unavailable(e)
            | RepositoryError::Unexpected(e)
            | RepositoryError::ReadOnly(e)
            | RepositoryError::InsufficientStorage(e),
        ) => e.to_string(),
        None => String::new(),
    }
}

/// Errors of repository operations that may carry a [`RepositoryError`].
trait HasRepositoryError {
    fn repository_error(&self) -> Option<&RepositoryError>;
}

impl HasRepositoryError for RepositoryError {
    fn repository_error(&self) -> Option<&RepositoryError> {
        Some(self)
    }
}

impl HasRepositoryError for CreateError {
    fn repository_error(&self) -> Option<&RepositoryError> {
        match self {
            Self::Repository(e) => Some(e),
            _ => None,
        }
    }
}

/// What a failure means for the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// A statement prepared before a schema change (SQLSTATE 0A000 `cached plan must not
    /// change result type`) or lost (26000 `prepared statement … does not exist`).
    StaleStatement,
    /// The connection broke, or none could be made.
    LostConnection,
    Other,
}

fn classify(error: &RepositoryError) -> Failure {
    let source = match error {
        RepositoryError::Unavailable(e)
        | RepositoryError::Unexpected(e)
        | RepositoryError::ReadOnly(e)
        | RepositoryError::InsufficientStorage(e) => e,
    };
    let Some(error) = source.downcast_ref::<sqlx::Error>() else {
        return Failure::Other;
    };
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => Failure::LostConnection,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("26000") => Failure::StaleStatement,
            Some("0A000") if db.message().contains("cached plan must not change result type") => {
                Failure::StaleStatement
            }
            Some(code) if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300") => {
                Failure::LostConnection
            }
            _ => Failure::Other,
        },
        _ => Failure::Other,
    }
}

/// Translates a sqlx error into the domain's terms: connection trouble and time-outs are
/// `Unavailable` (503); everything else — a protocol error, a crashed connection worker, a
/// value that does not decode, a pooler that refuses the start-up options — is `Unexpected`
/// (500, its cause logged), since retrying would not help.
#[must_use]
pub fn map_error(error: sqlx::Error) -> RepositoryError {
    if let sqlx::Error::Database(db) = &error {
        if db.message().starts_with("unsupported startup parameter") {
            return RepositoryError::Unexpected(
                format!(
                    "the server refused a start-up parameter ({}): behind pgbouncer, set \
                     database.transaction_pooling = true, and esignsp sends none",
                    db.message()
                )
                .into(),
            );
        }
    }
    if let sqlx::Error::Database(db) = &error {
        // Class 53: 53100 disk full, 53200 out of memory (a full disk under the WAL shows as
        // either); 25006: a read-only transaction (a standby, or default_transaction_read_only).
        match db.code().as_deref() {
            Some("53100") => return RepositoryError::InsufficientStorage(error.into()),
            Some("25006") => return RepositoryError::ReadOnly(error.into()),
            _ => {}
        }
    }
    let unavailable = match &error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Class 08: connection exception; 57P01-03: shutdown / cannot connect now;
            // 53300: too many connections; 57014 / 55P03: statement or lock time-out.
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300" | "57014" | "55P03")
        }),
        _ => false,
    };
    if unavailable {
        RepositoryError::Unavailable(error.into())
    } else {
        RepositoryError::Unexpected(error.into())
    }
}

/// The audit event of an operation other than a transition (those are in [`sql::WRITE`]).
const INSERT_EVENT: &str = insert_event!("now()", "CAST($8 AS jsonb)");

/// The outbox deliveries of a creation or deletion.
const INSERT_DELIVERIES: &str = queries::insert_deliveries!("now()");

/// The statements of the transition protocol (SPEC §8) on PostgreSQL, public so that
/// `scripts/bench.sh` runs exactly these in pgbench beside the service.
pub mod sql {
    use crate::queries::visible_to_caller;

    /// The columns of a versioned snapshot of process `p` ([`LOAD`], [`LOAD_BATCH`]).
    macro_rules! snapshot_columns {
        () => {
            "p.result_status, p.result_message, p.expires_at, p.version, \
            ARRAY(SELECT pd.document_id FROM process_documents pd WHERE pd.process_id = p.id ORDER BY pd.position) AS doc_ids, \
            ARRAY(SELECT pd.result_status FROM process_documents pd WHERE pd.process_id = p.id ORDER BY pd.position) AS doc_statuses, \
            ARRAY(SELECT pd.result_message FROM process_documents pd WHERE pd.process_id = p.id ORDER BY pd.position) AS doc_messages"
        };
    }

    /// Loads, without a lock, a process's versioned snapshot: its result, `expires_at`,
    /// `version`, and its documents' ids and results in order. Parameters: `$1` process id,
    /// `$2` caller's client id, `$3` caller is trusted (sees every tenant). No row for an
    /// unknown or foreign process.
    pub const LOAD: &str = concat!(
        "SELECT ",
        snapshot_columns!(),
        " FROM signer_processes p WHERE p.id = $1 AND ",
        visible_to_caller!("p")
    );

    /// The group commit's batch load: [`LOAD`] for several requests in one statement, each
    /// with its caller. Parameters (arrays of equal length, one entry per request): `$1`
    /// process ids, `$2` callers' client ids, `$3` callers are trusted. One row per visible
    /// process, with `request`, the request's position in the arrays (from 1).
    pub const LOAD_BATCH: &str = concat!(
        "SELECT r.request, ",
        snapshot_columns!(),
        " FROM unnest($1::text[], $2::text[], $3::bool[]) WITH ORDINALITY AS r(id, client_id, trusted, request) \
        JOIN signer_processes p ON p.id = r.id AND (p.client_id = r.client_id OR r.trusted)"
    );

    /// The group commit's batch write: [`WRITE`] for several transitions of distinct
    /// processes in one statement — one transaction, one commit — each with its own
    /// compare-and-set on the version. A process row another transaction holds locked is
    /// skipped (`FOR UPDATE SKIP LOCKED`), not waited for: its request decides again on its
    /// own, so one locked row never holds up the batch, and concurrent batches (more lanes,
    /// more replicas) never wait on each other's rows — no deadlock. Answers the ids of the
    /// processes written (a stale, locked or gone one is not among them). Parameters, one array entry per transition:
    /// `$1` ids, `$2`/`$3` result status/message (NULL: none), `$4` expected versions, `$5`
    /// actors, `$6` request ids, `$7` event kinds, `$8` event document ids, `$9` event new
    /// statuses, `$10`–`$13` the notification's message id (NULL: none), event type, payload
    /// and event type bit; the document results flattened, one entry per document result:
    /// `$14` its process id, `$15` document id, `$16` status, `$17` message.
    pub const WRITE_BATCH: &str = "WITH r AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], \
                $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[]) \
                AS r(id, status, message, expected, actor, request_id, kind, event_document, new_status, \
                     message_id, event_type, payload, bit)), \
          l AS (SELECT r.id, r.status, r.message, r.expected FROM r JOIN signer_processes sp ON sp.id = r.id \
                WHERE sp.version = r.expected FOR UPDATE OF sp SKIP LOCKED), \
          p AS (UPDATE signer_processes sp \
                SET result_status = COALESCE(l.status, sp.result_status), \
                    result_message = CASE WHEN l.status IS NULL THEN sp.result_message ELSE l.message END, \
                    result_at = CASE WHEN l.status IS NULL THEN sp.result_at ELSE now() END, \
                    version = sp.version + 1 \
                FROM l WHERE sp.id = l.id AND sp.version = l.expected RETURNING sp.id, sp.client_id), \
          d AS (UPDATE process_documents pd SET result_status = u.status, result_message = u.message \
                FROM p, unnest($14::text[], $15::text[], $16::text[], $17::text[]) AS u(process_id, document_id, status, message) \
                WHERE u.process_id = p.id AND pd.process_id = p.id AND pd.document_id = u.document_id AND pd.result_status IS NULL), \
          o AS (INSERT INTO webhook_deliveries (endpoint_id, message_id, event_type, process_id, payload, next_attempt_at, created_at) \
                SELECT we.id, r.message_id, r.event_type, p.id, r.payload, now(), now() \
                FROM p JOIN r ON r.id = p.id JOIN webhook_endpoints we ON we.client_id = p.client_id \
                WHERE r.message_id IS NOT NULL AND we.disabled_at IS NULL AND we.event_mask & r.bit <> 0), \
          e AS (INSERT INTO process_events (process_id, kind, actor, request_id, document_id, old_status, new_status) \
                SELECT p.id, r.kind, r.actor, r.request_id, r.event_document, NULL, r.new_status FROM p JOIN r ON r.id = p.id) \
         SELECT id FROM p";

    /// The compare-and-set update of a transition's process and its document results, and the
    /// outbox deliveries of its notification (one per subscribed, enabled endpoint of the
    /// process's owner): the CTEs `p`, `d` and `o` that [`WRITE`] and [`WRITE_SIGNED`] share
    /// (parameters as [`WRITE`]'s).
    macro_rules! process_and_documents {
        () => {
            "WITH p AS (UPDATE signer_processes \
                    SET result_status = COALESCE($2, result_status), \
                        result_message = CASE WHEN $2::text IS NULL THEN result_message ELSE $3 END, \
                        result_at = CASE WHEN $2::text IS NULL THEN result_at ELSE now() END, \
                        version = version + 1 \
                    WHERE id = $1 AND version = $10 RETURNING id, client_id), \
              d AS (UPDATE process_documents pd SET result_status = u.status, result_message = u.message \
                    FROM p, unnest($4::text[], $5::text[], $6::text[]) AS u(document_id, status, message) \
                    WHERE pd.process_id = p.id AND pd.document_id = u.document_id AND pd.result_status IS NULL), \
              o AS (INSERT INTO webhook_deliveries (endpoint_id, message_id, event_type, process_id, payload, next_attempt_at, created_at) \
                    SELECT we.id, $13, $14, p.id, $15, now(), now() FROM p JOIN webhook_endpoints we ON we.client_id = p.client_id \
                    WHERE $13::text IS NOT NULL AND we.disabled_at IS NULL AND we.event_mask & $16::bigint <> 0), "
        };
    }

    /// Writes a whole transition in one statement, only while the process's `version` is
    /// still `$10` (compare-and-set), and advances it: the process result when `$2` is not
    /// NULL, the document results of the arrays (only where a document has none), and the
    /// audit event. Answers one row: the number of processes written (0: stale, or gone).
    /// Parameters: `$1` id, `$2`/`$3` status/message or NULL, `$4`/`$5`/`$6` document ids,
    /// statuses and messages (arrays of equal length), `$7` actor, `$8` request id, `$9` event
    /// kind, `$10` expected version, `$11` event document id or NULL, `$12` event new status,
    /// `$13` the notification's message id (NULL: webhooks off), `$14` its event type, `$15`
    /// its payload, `$16` its event type's bit (SPEC §11).
    pub const WRITE: &str = concat!(
        process_and_documents!(),
        "e AS (INSERT INTO process_events (process_id, kind, actor, request_id, document_id, old_status, new_status) \
                    SELECT p.id, $9, $7, $8, $11, NULL, $12 FROM p) \
         SELECT count(*) FROM p"
    );

    /// [`WRITE`] for the signing page's transition (SPEC §10): besides, the signed contents
    /// replace the documents' bytes (a new content each, in chunks; the old content and its
    /// chunks are deleted), size and SHA-256, and the event carries its details — all in the
    /// same statement, so all or nothing. Further parameters: `$17` document ids, `$22` their
    /// new content ids, `$19` sizes, `$20` SHA-256 (arrays of equal length), `$21` the event's
    /// details (JSON text) or NULL; the chunks: `$23` content ids, `$24` numbers, `$18` bytes
    /// (arrays of equal length).
    pub const WRITE_SIGNED: &str = concat!(
        process_and_documents!(),
        "x AS (DELETE FROM document_contents dc USING p WHERE dc.document_id = ANY($17::text[])), \
              n AS (INSERT INTO document_contents (content_id, document_id) \
                    SELECT u.content_id, u.document_id FROM p, unnest($17::text[], $22::text[]) AS u(document_id, content_id)), \
              k AS (INSERT INTO document_chunks (content_id, seq, bytes) \
                    SELECT u.content_id, u.seq, u.bytes FROM p, unnest($23::text[], $24::int[], $18::bytea[]) AS u(content_id, seq, bytes)), \
              m AS (UPDATE documents doc SET size = u.size, sha256 = u.sha256 \
                    FROM p, unnest($17::text[], $19::bigint[], $20::text[]) AS u(document_id, size, sha256) \
                    WHERE doc.id = u.document_id), \
              e AS (INSERT INTO process_events (process_id, kind, actor, request_id, document_id, old_status, new_status, details) \
                    SELECT p.id, $9, $7, $8, $11, NULL, $12, CAST($21 AS jsonb) FROM p) \
         SELECT count(*) FROM p"
    );

    /// A new document with its bytes, as the CTEs `c` (its content; one row when stored) and
    /// `d` (the document): `$1`–`$8` as [`crate::queries::insert_document!`], then `whole`:
    /// the bytes `$9` as the one chunk of a content named after the document; `staged`: the
    /// document adopts staged content `$9`, and neither is written when that is gone.
    macro_rules! document_with_content {
        (whole) => {
            concat!(
                "WITH d AS (",
                crate::queries::insert_document!(),
                "), c AS (INSERT INTO document_contents (content_id, document_id) VALUES ($1, $1) RETURNING 1), \
                 k AS (INSERT INTO document_chunks (content_id, seq, bytes) VALUES ($1, 0, $9)) "
            )
        };
        (staged) => {
            "WITH c AS (UPDATE document_contents SET document_id = $1, staged_at = NULL \
                        WHERE content_id = $9 AND document_id IS NULL RETURNING 1), \
                  d AS (INSERT INTO documents (id, client_id, media_type, filename, size, sha256, signers, created_at) \
                        SELECT $1::text, $2::text, $3::text, $4::text, $5::bigint, $6::text, $7::jsonb, $8::timestamptz FROM c) "
        };
    }

    /// The place `$11` of the new document `$1` in process `$10`, after
    /// [`document_with_content!`], written only with the document.
    macro_rules! in_process {
        () => {
            ", pd AS (INSERT INTO process_documents (process_id, position, document_id) \
                     SELECT $10::text, $11::integer, $1::text FROM c) "
        };
    }

    /// The answer of [`INSERT_DOCUMENT_WHOLE`] and its kin: 1 when the document is written,
    /// 0 when its staged content is gone (nothing written).
    macro_rules! written {
        () => {
            "SELECT count(*) FROM c"
        };
    }

    /// A new document (O8) with its bytes whole: see [`document_with_content!`].
    pub const INSERT_DOCUMENT_WHOLE: &str = concat!(document_with_content!(whole), written!());

    /// A new document (O8) adopting staged content `$9`: see [`document_with_content!`].
    pub const INSERT_DOCUMENT_STAGED: &str = concat!(document_with_content!(staged), written!());

    /// [`INSERT_DOCUMENT_WHOLE`] in process `$10` at position `$11` (O1).
    pub const INSERT_PROCESS_DOCUMENT_WHOLE: &str = concat!(document_with_content!(whole), in_process!(), written!());

    /// [`INSERT_DOCUMENT_STAGED`] in process `$10` at position `$11` (O1).
    pub const INSERT_PROCESS_DOCUMENT_STAGED: &str = concat!(document_with_content!(staged), in_process!(), written!());

    /// Begins staged content `$1` (at the database's `now()`) with its first chunk: number
    /// `$2` (0), bytes `$3`.
    pub const STAGE_FIRST_CHUNK: &str =
        "WITH c AS (INSERT INTO document_contents (content_id, staged_at) VALUES ($1, now())) \
        INSERT INTO document_chunks (content_id, seq, bytes) VALUES ($1, $2, $3)";

    /// Deletes every staged content begun more than `$1` seconds ago that no document
    /// adopted (its chunks go by cascade).
    pub const SWEEP_STAGED: &str = "DELETE FROM document_contents \
        WHERE document_id IS NULL AND staged_at < now() - make_interval(secs => $1)";

    /// The pending processes due to expire: `$1` the time, `$2` at most this many, soonest
    /// first.
    pub const DUE_EXPIRIES: &str = crate::queries::DUE_EXPIRIES;
}

/// `$9` of [`sql::INSERT_DOCUMENT_WHOLE`] and its kin: the bytes, or the staged content's id.
enum ContentArg<'a> {
    Whole(&'a [u8]),
    Staged(&'a str),
}

impl<'a> ContentArg<'a> {
    /// The statement for `content` (`whole` or `staged`) and its `$9`.
    fn of(content: &'a NewContent, whole: &'static str, staged: &'static str) -> (&'static str, Self) {
        match content {
            NewContent::Inline(bytes) => (whole, Self::Whole(bytes)),
            NewContent::Staged(s) => (staged, Self::Staged(s.id().as_str())),
        }
    }

    fn bind(
        self,
        query: sqlx::query::Query<'a, Postgres, PgArguments>,
    ) -> sqlx::query::Query<'a, Postgres, PgArguments> {
        match self {
            Self::Whole(bytes) => query.bind(bytes),
            Self::Staged(id) => query.bind(id),
        }
    }
}

/// Loads a versioned snapshot with [`sql::LOAD`]. `None` for an unknown or foreign process.
async fn load(
    connection: &mut PgConnection,
    persistent: bool,
    id: &ProcessId,
    caller: &Caller,
) -> Result<Option<ProcessSnapshot>, RepositoryError> {
    let row = bind_visible(sqlx::query(sql::LOAD).persistent(persistent), id.as_str(), caller)
        .fetch_optional(connection)
        .await
        .map_err(map_error)?;
    row.as_ref().map(snapshot_of).transpose()
}

/// The snapshot of a row of [`sql::LOAD`] or [`sql::LOAD_BATCH`].
fn snapshot_of(row: &PgRow) -> Result<ProcessSnapshot, RepositoryError> {
    let ids: Vec<String> = column(row, "doc_ids")?;
    let statuses: Vec<Option<String>> = column(row, "doc_statuses")?;
    let messages: Vec<Option<String>> = column(row, "doc_messages")?;
    let documents = ids
        .iter()
        .zip(statuses)
        .zip(messages)
        .map(|((id, status), message)| {
            Ok(DocumentState { id: document_id(id)?, result: stored_document_result(status, message)? })
        })
        .collect::<Result<Vec<_>, RepositoryError>>()?;
    stored::snapshot(row, documents)
}

/// Loads the snapshots of a batch with [`sql::LOAD_BATCH`], one entry per request in order.
async fn load_batch(
    connection: &mut PgConnection,
    persistent: bool,
    requests: &[(&ProcessId, &Caller)],
) -> Result<Vec<Option<ProcessSnapshot>>, RepositoryError> {
    let ids: Vec<&str> = requests.iter().map(|(id, _)| id.as_str()).collect();
    let clients: Vec<&str> = requests.iter().map(|(_, caller)| caller.client_id.as_str()).collect();
    let trusted: Vec<bool> = requests.iter().map(|(_, caller)| caller.trusted).collect();
    let rows = sqlx::query(sql::LOAD_BATCH)
        .persistent(persistent)
        .bind(ids)
        .bind(clients)
        .bind(trusted)
        .fetch_all(connection)
        .await
        .map_err(map_error)?;
    let mut snapshots: Vec<Option<ProcessSnapshot>> = requests.iter().map(|_| None).collect();
    for row in &rows {
        let request: i64 = column(row, "request")?;
        let slot = usize::try_from(request - 1)
            .ok()
            .and_then(|i| snapshots.get_mut(i))
            .ok_or_else(|| RepositoryError::Unexpected("the batch load answered an unknown request".into()))?;
        *slot = Some(snapshot_of(row)?);
    }
    Ok(snapshots)
}

/// Whether PostgreSQL aborted the statement to resolve a conflict with another transaction
/// — a deadlock (40P01) or a serialization failure (40001): nothing was written, and deciding
/// again on a fresh snapshot settles it, as for a stale version.
fn is_write_conflict(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
}

/// Writes a batch of transitions of distinct processes with [`sql::WRITE_BATCH`].
async fn write_batch(
    connection: &mut PgConnection,
    persistent: bool,
    transitions: &[Transition],
) -> Result<Vec<WriteOutcome>, RepositoryError> {
    let stored: Vec<StoredTransition<'_>> = transitions.iter().map(StoredTransition::of).collect();
    let (mut document_processes, mut document_ids, mut statuses, mut messages) = (vec![], vec![], vec![], vec![]);
    for (transition, s) in transitions.iter().zip(&stored) {
        for ((id, status), message) in s.documents.ids.iter().zip(&s.documents.statuses).zip(&s.documents.messages) {
            document_processes.push(transition.process.as_str());
            document_ids.push(*id);
            statuses.push(*status);
            messages.push(*message);
        }
    }
    let notifications: Vec<Option<&Notification>> = transitions.iter().map(|t| t.notification.as_ref()).collect();
    let written: Result<Vec<String>, sqlx::Error> = sqlx::query_scalar(sql::WRITE_BATCH)
        .persistent(persistent)
        .bind(transitions.iter().map(|t| t.process.as_str()).collect::<Vec<_>>())
        .bind(stored.iter().map(|s| s.result.map(|r| r.0)).collect::<Vec<_>>())
        .bind(stored.iter().map(|s| s.result.and_then(|r| r.1)).collect::<Vec<_>>())
        .bind(transitions.iter().map(|t| t.expected.0).collect::<Vec<_>>())
        .bind(stored.iter().map(|s| s.event.actor).collect::<Vec<_>>())
        .bind(stored.iter().map(|s| s.event.request_id).collect::<Vec<_>>())
        .bind(stored.iter().map(|s| s.event.kind).collect::<Vec<_>>())
        .bind(stored.iter().map(|s| s.event.document_id).collect::<Vec<_>>())
        .bind(stored.iter().map(|s| s.event.new_status).collect::<Vec<_>>())
        .bind(notifications.iter().map(|n| n.map(|n| n.message_id.as_str())).collect::<Vec<_>>())
        .bind(notifications.iter().map(|n| n.map(|n| n.event_type.as_str())).collect::<Vec<_>>())
        .bind(notifications.iter().map(|n| n.map(|n| n.payload.as_str())).collect::<Vec<_>>())
        .bind(notifications.iter().map(|n| n.map(|n| n.event_type.bit())).collect::<Vec<_>>())
        .bind(document_processes)
        .bind(document_ids)
        .bind(statuses)
        .bind(messages)
        .fetch_all(connection)
        .await;
    let written = match written {
        Ok(written) => written,
        Err(e) if is_write_conflict(&e) => return Ok(vec![WriteOutcome::Stale; transitions.len()]),
        Err(e) => return Err(map_error(e)),
    };
    let written: HashSet<&str> = written.iter().map(String::as_str).collect();
    Ok(transitions
        .iter()
        .map(|t| if written.contains(t.process.as_str()) { WriteOutcome::Written } else { WriteOutcome::Stale })
        .collect())
}

/// Binds a notification's message id, event type, payload and event type bit (all NULL
/// without one), the outbox parameters of [`sql::WRITE`] and of the create and delete
/// statements.
fn bind_notification<'q, O>(
    query: sqlx::query::QueryScalar<'q, Postgres, O, PgArguments>,
    notification: Option<&'q Notification>,
) -> sqlx::query::QueryScalar<'q, Postgres, O, PgArguments> {
    query
        .bind(notification.map(|n| n.message_id.as_str()))
        .bind(notification.map(|n| n.event_type.as_str()))
        .bind(notification.map(|n| n.payload.as_str()))
        .bind(notification.map(|n| n.event_type.bit()))
}

/// Writes a transition with [`sql::WRITE`].
async fn write(
    connection: &mut PgConnection,
    persistent: bool,
    transition: &Transition,
) -> Result<WriteOutcome, RepositoryError> {
    let StoredTransition { result, documents, event, signed } = StoredTransition::of(transition);
    let statement =
        if transition.signed.is_empty() && event.details.is_none() { sql::WRITE } else { sql::WRITE_SIGNED };
    let mut query = sqlx::query_scalar(statement)
        .persistent(persistent)
        .bind(transition.process.as_str())
        .bind(result.map(|r| r.0))
        .bind(result.and_then(|r| r.1))
        .bind(&documents.ids)
        .bind(&documents.statuses)
        .bind(&documents.messages)
        .bind(event.actor)
        .bind(event.request_id)
        .bind(event.kind)
        .bind(transition.expected.0)
        .bind(event.document_id)
        .bind(event.new_status);
    query = bind_notification(query, transition.notification.as_ref());
    if statement == sql::WRITE_SIGNED {
        let chunks = queries::SignedChunks::of(&transition.signed);
        query = query
            .bind(signed.ids)
            .bind(chunks.bytes)
            .bind(signed.sizes)
            .bind(signed.sha256s)
            .bind(event.details)
            .bind(signed.content_ids)
            .bind(chunks.content_ids)
            .bind(chunks.seqs);
    }
    let written: i64 = match query.fetch_one(connection).await {
        Ok(written) => written,
        Err(e) if is_write_conflict(&e) => return Ok(WriteOutcome::Stale),
        Err(e) => return Err(map_error(e)),
    };
    Ok(if written == 1 { WriteOutcome::Written } else { WriteOutcome::Stale })
}

/// The unit of work of the transition protocol on PostgreSQL: one pooled connection for
/// every statement of a request (sqlx checks a connection with a round trip each time it goes
/// back to the pool), or, behind a pooler in transaction mode, one transaction from a load to
/// the write that commits it. A statement that the schema outdated is retried once on a new
/// connection; a lost connection starts the outage probe.
struct PgTransitions<'r> {
    statements: &'r Statements,
    session: Option<Session>,
    retried: bool,
}

impl PgTransitions<'_> {
    async fn session(&mut self) -> Result<&mut Session, RepositoryError> {
        if self.session.is_none() {
            self.session = Some(self.statements.session().await?);
        }
        Ok(self.session.as_mut().unwrap_or_else(|| unreachable!("set above")))
    }

    /// `Some(outcome)` to answer, `None` to run the statement again on a new connection.
    fn settle<T>(&mut self, outcome: Result<T, RepositoryError>) -> Option<Result<T, RepositoryError>> {
        let Err(error) = &outcome else { return Some(outcome) };
        match classify(error) {
            Failure::StaleStatement if !self.retried => {
                tracing::warn!(error = %source_of(Some(error)), "a statement no longer matches the schema: reconnecting and retrying once");
                self.statements.health.retired.retire_all();
                self.session = None;
                self.retried = true;
                None
            }
            Failure::LostConnection => {
                self.statements.health.suspect();
                self.session = None;
                Some(outcome)
            }
            _ => {
                self.session = None;
                Some(outcome)
            }
        }
    }
}

#[async_trait]
impl TransitionStore for PgTransitions<'_> {
    #[tracing::instrument(skip_all, fields(process_id = %id))]
    async fn load(&mut self, id: &ProcessId, caller: &Caller) -> Result<Option<ProcessSnapshot>, RepositoryError> {
        let persistent = self.statements.persistent();
        loop {
            let outcome = match self.session().await {
                Ok(session) => load(session, persistent, id, caller).await,
                Err(e) => Err(e),
            };
            if let Some(outcome) = self.settle(outcome) {
                return outcome;
            }
        }
    }

    #[tracing::instrument(skip_all, fields(process_id = %transition.process, kind = transition.event.kind.as_str()))]
    async fn write(&mut self, transition: &Transition) -> Result<WriteOutcome, RepositoryError> {
        let persistent = self.statements.persistent();
        loop {
            let outcome = match self.session().await {
                Ok(session) => write(session, persistent, transition).await,
                Err(e) => Err(e),
            };
            let Some(outcome) = self.settle(outcome) else { continue };
            // Behind a pooler the load and the write share a transaction: it ends here.
            if let Some(session) = self.session.take_if(|s| matches!(s, Session::Pooled(_))) {
                session.end().await?;
            }
            return outcome;
        }
    }

    #[tracing::instrument(skip_all, fields(requests = requests.len()))]
    async fn load_batch(
        &mut self,
        requests: &[(&ProcessId, &Caller)],
    ) -> Result<Vec<Option<ProcessSnapshot>>, RepositoryError> {
        if let [(id, caller)] = requests {
            // A lone request: the single-row statement costs PostgreSQL less.
            return Ok(vec![self.load(id, caller).await?]);
        }
        let persistent = self.statements.persistent();
        loop {
            let outcome = match self.session().await {
                Ok(session) => load_batch(session, persistent, requests).await,
                Err(e) => Err(e),
            };
            if let Some(outcome) = self.settle(outcome) {
                return outcome;
            }
        }
    }

    #[tracing::instrument(skip_all, fields(transitions = transitions.len()))]
    async fn write_batch(&mut self, transitions: &[Transition]) -> Result<Vec<WriteOutcome>, RepositoryError> {
        // Even a lone transition takes the batch statement: it never waits for a row lock, so
        // the group commit's lane never stalls (a locked row is stale, decided again alone).
        if transitions.iter().any(|t| !t.signed.is_empty() || t.event.signing.is_some()) {
            // The signing page's transitions carry bytes: as `write` writes them.
            let mut outcomes = Vec::with_capacity(transitions.len());
            for transition in transitions {
                outcomes.push(self.write(transition).await?);
            }
            return Ok(outcomes);
        }
        let persistent = self.statements.persistent();
        loop {
            let outcome = match self.session().await {
                Ok(session) => write_batch(session, persistent, transitions).await,
                Err(e) => Err(e),
            };
            let Some(outcome) = self.settle(outcome) else { continue };
            if let Some(session) = self.session.take_if(|s| matches!(s, Session::Pooled(_))) {
                session.end().await?;
            }
            return outcome;
        }
    }
}

/// Each operation once; `persistent` below is `!transaction_pooling`.
impl Statements {
    #[tracing::instrument(skip_all, fields(process_id = %process.id))]
    async fn create(
        &self,
        process: &NewSignerProcess,
        audit: &AuditContext,
        notification: Option<&Notification>,
    ) -> Result<SignerProcess, CreateError> {
        let mut tx = self.begin().await?;
        bind_process(self.query(queries::INSERT_PROCESS), process).execute(&mut *tx).await.map_err(map_error)?;
        let mut documents = Vec::with_capacity(process.documents.len());
        for placed in stored::placed_documents(process) {
            let (position, source) = placed?;
            let document = match source {
                ProcessDocumentSource::Upload(doc) => {
                    // One statement: the document, its bytes and its place in the process.
                    let (insert, content) = ContentArg::of(
                        &doc.content,
                        sql::INSERT_PROCESS_DOCUMENT_WHOLE,
                        sql::INSERT_PROCESS_DOCUMENT_STAGED,
                    );
                    let stored: i64 = content
                        .bind(bind_document(self.query(insert), doc, process.owner.as_str(), None, process.created_at))
                        .bind(process.id.as_str())
                        .bind(position)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_error)
                        .and_then(|r| r.try_get(0).map_err(map_error))?;
                    if stored != 1 {
                        return Err(queries::staged_content_gone().into());
                    }
                    stored::uploaded_document(doc)
                }
                ProcessDocumentSource::Existing(id) => {
                    // FOR SHARE: a concurrent O11 cannot delete it before this commits.
                    let row = self
                        .query(own_document!(" FOR SHARE"))
                        .bind(id.as_str())
                        .bind(process.owner.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(map_error)?;
                    let document = stored::taken_document(id, row.as_ref())?;
                    self.query(queries::INSERT_PROCESS_DOCUMENT)
                        .bind(process.id.as_str())
                        .bind(position)
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(map_error)?;
                    document
                }
            };
            documents.push(document);
        }
        let event = Event::of(process.id.as_str(), EventKind::Created, audit);
        queries::bind_event(self.query(INSERT_EVENT), event).execute(&mut *tx).await.map_err(map_error)?;
        if let Some(notification) = notification {
            queries::bind_deliveries(self.query(INSERT_DELIVERIES), notification, process.id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
        }
        tx.commit().await.map_err(map_error)?;
        Ok(stored::created_process(process, documents))
    }

    #[tracing::instrument(skip_all, fields(process_id = %id))]
    async fn find(&self, id: &ProcessId, caller: &Caller) -> Result<Option<SignerProcess>, RepositoryError> {
        let mut session = self.session().await?;
        let Some(row) = bind_visible(self.query(queries::FIND_PROCESS), id.as_str(), caller)
            .fetch_optional(&mut *session)
            .await
            .map_err(map_error)?
        else {
            return Ok(None);
        };
        let documents = self
            .query(queries::PROCESS_DOCUMENTS)
            .bind(id.as_str())
            .fetch_all(&mut *session)
            .await
            .map_err(map_error)?;
        session.end().await?;
        stored::signer_process(id, &row, &documents).map(Some)
    }

    #[tracing::instrument(skip_all, fields(process_id = %id))]
    async fn delete(
        &self,
        id: &ProcessId,
        caller: &Caller,
        audit: &AuditContext,
        notification: Option<&Notification>,
    ) -> Result<bool, RepositoryError> {
        let mut tx = self.begin().await?;
        let locked = concat!(
            "SELECT p.result_status, \
                ARRAY(SELECT pd.document_id FROM process_documents pd WHERE pd.process_id = p.id) AS doc_ids \
             FROM signer_processes p WHERE p.id = $1 AND ",
            visible_to_caller!("p"),
            " FOR UPDATE OF p"
        );
        let Some(row) =
            bind_visible(self.query(locked), id.as_str(), caller).fetch_optional(&mut *tx).await.map_err(map_error)?
        else {
            return Ok(false);
        };
        let old_status = row.optional_text("result_status")?;
        let doc_ids: Vec<String> = column(&row, "doc_ids")?;
        if let Some(notification) = notification {
            queries::bind_deliveries(self.query(INSERT_DELIVERIES), notification, id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
        }
        self.query(queries::DELETE_PROCESS).bind(id.as_str()).execute(&mut *tx).await.map_err(map_error)?;
        // Its documents go with it, unless another process still uses them (its own
        // process_documents rows are gone by cascade; contents follow by cascade). A process
        // that took one of them while this statement waited for its row lock is caught by the
        // foreign key: then they all stay (in a savepoint, so the deletion itself stands).
        let mut documents = Connection::begin(&mut *tx).await.map_err(map_error)?;
        let deleted = self
            .query(
                "DELETE FROM documents d WHERE d.id = ANY($1) \
             AND NOT EXISTS (SELECT 1 FROM process_documents pd WHERE pd.document_id = d.id)",
            )
            .bind(&doc_ids)
            .execute(&mut *documents)
            .await;
        match deleted {
            Ok(_) => documents.commit().await.map_err(map_error)?,
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                documents.rollback().await.map_err(map_error)?;
            }
            Err(e) => return Err(map_error(e)),
        }
        let event = Event { old_status: old_status.as_deref(), ..Event::of(id.as_str(), EventKind::Deleted, audit) };
        queries::bind_event(self.query(INSERT_EVENT), event).execute(&mut *tx).await.map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(true)
    }

    #[tracing::instrument(skip_all)]
    async fn due_expiries(&self, at: OffsetDateTime, limit: u32) -> Result<Vec<ProcessId>, RepositoryError> {
        let mut session = self.session().await?;
        let due: Vec<String> = self
            .query_scalar(sql::DUE_EXPIRIES)
            .bind(at)
            .bind(i64::from(limit))
            .fetch_all(&mut *session)
            .await
            .map_err(map_error)?;
        session.end().await?;
        stored::process_ids(&due)
    }

    #[tracing::instrument(skip_all, fields(document_id = %document.document.id))]
    async fn create_document(&self, document: &NewStandaloneDocument) -> Result<StoredDocument, RepositoryError> {
        let doc = &document.document;
        let mut session = self.session().await?;
        let (insert, content) = ContentArg::of(&doc.content, sql::INSERT_DOCUMENT_WHOLE, sql::INSERT_DOCUMENT_STAGED);
        let query = bind_document(
            self.query(insert),
            doc,
            document.owner.as_str(),
            document.signers.as_ref(),
            document.created_at,
        );
        let stored: i64 = content
            .bind(query)
            .fetch_one(&mut *session)
            .await
            .map_err(map_error)
            .and_then(|r| r.try_get(0).map_err(map_error))?;
        session.end().await?;
        if stored != 1 {
            return Err(queries::staged_content_gone());
        }
        Ok(stored::created_document(document))
    }

    #[tracing::instrument(skip_all, fields(document_id = %id))]
    async fn find_document(&self, id: &DocumentId, caller: &Caller) -> Result<Option<StoredDocument>, RepositoryError> {
        let mut session = self.session().await?;
        let row = bind_visible(self.query(queries::FIND_DOCUMENT), id.as_str(), caller)
            .fetch_optional(&mut *session)
            .await
            .map_err(map_error)?;
        session.end().await?;
        row.map(|r| stored::stored_document(id, &r)).transpose()
    }

    #[tracing::instrument(skip_all, fields(document_id = %id))]
    async fn delete_document(
        &self,
        id: &DocumentId,
        caller: &Caller,
    ) -> Result<DeleteDocumentOutcome, RepositoryError> {
        let tx = self.begin().await?;
        queries::delete_document(self, tx, document_in_use!(" FOR UPDATE OF d"), id, caller).await
    }

    #[tracing::instrument(skip_all, fields(document_id = %id))]
    async fn document_content(
        &self,
        id: &DocumentId,
        caller: &Caller,
    ) -> Result<Option<DocumentContent>, RepositoryError> {
        let mut session = self.session().await?;
        let row = bind_visible(self.query(queries::DOCUMENT_CONTENT), id.as_str(), caller)
            .fetch_optional(&mut *session)
            .await
            .map_err(map_error)?;
        session.end().await?;
        row.map(|r| stored::document_content(&r)).transpose()
    }

    #[tracing::instrument(skip_all, fields(process_id = %id))]
    async fn events(&self, id: &ProcessId, caller: &Caller) -> Result<Option<Vec<AuditEvent>>, RepositoryError> {
        let mut session = self.session().await?;
        let visible = bind_visible(self.query(queries::PROCESS_VISIBLE), id.as_str(), caller)
            .fetch_optional(&mut *session)
            .await
            .map_err(map_error)?;
        if visible.is_none() {
            return Ok(None);
        }
        let rows = self.query(queries::EVENTS).bind(id.as_str()).fetch_all(&mut *session).await.map_err(map_error)?;
        session.end().await?;
        rows.iter().map(stored::audit_event).collect::<Result<Vec<_>, _>>().map(Some)
    }

    #[tracing::instrument(skip_all, fields(content_id = %content, seq))]
    async fn stage_chunk(&self, content: &ContentId, seq: u32, bytes: &[u8]) -> Result<(), RepositoryError> {
        let mut session = self.session().await?;
        let statement = if seq == 0 { sql::STAGE_FIRST_CHUNK } else { queries::INSERT_CHUNK };
        self.query(statement)
            .bind(content.as_str())
            .bind(i32::try_from(seq).unwrap_or(i32::MAX))
            .bind(bytes)
            .execute(&mut *session)
            .await
            .map_err(map_error)?;
        session.end().await
    }

    #[tracing::instrument(skip_all, fields(content_id = %content))]
    async fn discard_staged(&self, content: &ContentId) -> Result<(), RepositoryError> {
        let mut session = self.session().await?;
        self.query(queries::DISCARD_STAGED).bind(content.as_str()).execute(&mut *session).await.map_err(map_error)?;
        session.end().await
    }

    #[tracing::instrument(skip_all)]
    async fn sweep_staged(&self, older_than: Duration) -> Result<u64, RepositoryError> {
        let mut session = self.session().await?;
        let swept = self
            .query(sql::SWEEP_STAGED)
            .bind(older_than.as_secs_f64())
            .execute(&mut *session)
            .await
            .map_err(map_error)?;
        session.end().await?;
        Ok(swept.rows_affected())
    }

    #[tracing::instrument(skip_all, fields(content_id = %content, from))]
    async fn content_chunks(
        &self,
        content: &ContentId,
        from: u32,
        limit: u32,
    ) -> Result<Vec<Vec<u8>>, RepositoryError> {
        let mut session = self.session().await?;
        let chunks: Vec<Vec<u8>> = self
            .query_scalar(queries::CONTENT_CHUNKS)
            .bind(content.as_str())
            .bind(i32::try_from(from).unwrap_or(i32::MAX))
            .bind(i64::from(limit))
            .fetch_all(&mut *session)
            .await
            .map_err(map_error)?;
        session.end().await?;
        Ok(chunks)
    }

    async fn ping(&self) -> Result<(), RepositoryError> {
        // The simple query protocol: one message, safe behind any pooler.
        let mut connection = self.unless_down(self.pool.acquire()).await?;
        sqlx::Executor::execute(&mut *connection, "SELECT 1").await.map_err(map_error).map(|_| ())
    }
}

#[async_trait]
impl SignerProcessRepository for PostgresRepository {
    async fn create(
        &self,
        process: NewSignerProcess,
        audit: &AuditContext,
        notification: Option<&Notification>,
    ) -> Result<SignerProcess, CreateError> {
        self.retrying(|| self.statements.create(&process, audit, notification)).await
    }

    async fn find(&self, id: &ProcessId, caller: &Caller) -> Result<Option<SignerProcess>, RepositoryError> {
        self.retrying(|| self.statements.find(id, caller)).await
    }

    async fn delete(
        &self,
        id: &ProcessId,
        caller: &Caller,
        audit: &AuditContext,
        notification: Option<&Notification>,
    ) -> Result<bool, RepositoryError> {
        self.retrying(|| self.statements.delete(id, caller, audit, notification)).await
    }

    async fn transitions(&self) -> Result<Box<dyn TransitionStore + '_>, RepositoryError> {
        Ok(Box::new(PgTransitions { statements: &self.statements, session: None, retried: false }))
    }

    async fn due_expiries(&self, at: OffsetDateTime, limit: u32) -> Result<Vec<ProcessId>, RepositoryError> {
        self.retrying(|| self.statements.due_expiries(at, limit)).await
    }

    async fn create_document(&self, document: NewStandaloneDocument) -> Result<StoredDocument, RepositoryError> {
        self.retrying(|| self.statements.create_document(&document)).await
    }

    async fn find_document(&self, id: &DocumentId, caller: &Caller) -> Result<Option<StoredDocument>, RepositoryError> {
        self.retrying(|| self.statements.find_document(id, caller)).await
    }

    async fn delete_document(
        &self,
        id: &DocumentId,
        caller: &Caller,
    ) -> Result<DeleteDocumentOutcome, RepositoryError> {
        self.retrying(|| self.statements.delete_document(id, caller)).await
    }

    async fn document_content(
        &self,
        id: &DocumentId,
        caller: &Caller,
    ) -> Result<Option<DocumentContent>, RepositoryError> {
        self.retrying(|| self.statements.document_content(id, caller)).await
    }

    async fn stage_chunk(&self, content: &ContentId, seq: u32, bytes: &[u8]) -> Result<(), RepositoryError> {
        self.retrying(|| self.statements.stage_chunk(content, seq, bytes)).await
    }

    async fn discard_staged(&self, content: &ContentId) -> Result<(), RepositoryError> {
        self.retrying(|| self.statements.discard_staged(content)).await
    }

    async fn sweep_staged(&self, older_than: Duration) -> Result<u64, RepositoryError> {
        self.retrying(|| self.statements.sweep_staged(older_than)).await
    }

    async fn content_chunks(
        &self,
        content: &ContentId,
        from: u32,
        limit: u32,
    ) -> Result<Vec<Vec<u8>>, RepositoryError> {
        self.retrying(|| self.statements.content_chunks(content, from, limit)).await
    }

    async fn events(&self, id: &ProcessId, caller: &Caller) -> Result<Option<Vec<AuditEvent>>, RepositoryError> {
        self.retrying(|| self.statements.events(id, caller)).await
    }

    async fn ping(&self) -> Result<(), RepositoryError> {
        self.retrying(|| self.statements.ping()).await
    }
}

/// Claims due deliveries in one statement: rows locked by another replica's claim are
/// skipped (`FOR UPDATE SKIP LOCKED`), so each is claimed once per lease.
const CLAIM_DUE: &str = "WITH due AS (SELECT d.id FROM webhook_deliveries d \
        JOIN webhook_endpoints e ON e.id = d.endpoint_id \
        WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.disabled_at IS NULL \
        AND NOT (d.endpoint_id = ANY($4::text[])) \
        ORDER BY d.next_attempt_at LIMIT $3 FOR UPDATE OF d SKIP LOCKED) \
    UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = $2 \
    FROM due, webhook_endpoints e WHERE d.id = due.id AND e.id = d.endpoint_id \
    RETURNING d.id, d.endpoint_id, e.url, d.message_id, d.payload, d.attempts, e.secret, e.previous_secret, \
        e.previous_secret_expires_at";

impl PostgresRepository {
    fn webhook_query<'q>(&self, sql: &'q str) -> sqlx::query::Query<'q, Postgres, PgArguments> {
        self.statements.query(sql)
    }

    fn webhook_pool(&self) -> &PgPool {
        &self.statements.pool
    }

    /// A transaction in which endpoints of `owner` are counted and added one at a time (a
    /// transaction-scoped advisory lock on the owner), so that concurrent registrations keep
    /// to the limit.
    async fn endpoint_registration(&self, owner: &str) -> Result<Transaction<'static, Postgres>, RepositoryError> {
        let mut tx = self.statements.begin().await?;
        self.webhook_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 20261201))")
            .bind(owner)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        Ok(tx)
    }

    async fn claim_due_rows(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
        busy: &[EndpointId],
    ) -> Result<Vec<ClaimedDelivery>, RepositoryError> {
        let busy: Vec<&str> = busy.iter().map(EndpointId::as_str).collect();
        let rows = self
            .webhook_query(CLAIM_DUE)
            .bind(now)
            .bind(lease_until)
            .bind(i64::from(limit))
            .bind(&busy)
            .fetch_all(self.webhook_pool())
            .await
            .map_err(map_error)?;
        rows.iter().map(|row| crate::webhook_store::claimed(row, now)).collect()
    }
}

crate::webhook_store::webhook_repository!(PostgresRepository, map_error);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_errors_and_crashed_workers_are_unexpected_not_unavailable() {
        for error in [sqlx::Error::Protocol("unexpected message".into()), sqlx::Error::WorkerCrashed] {
            let text = error.to_string();
            assert!(
                matches!(map_error(error), RepositoryError::Unexpected(_)),
                "{text}: a 500, retrying would not help"
            );
        }
        let decode = sqlx::Error::ColumnDecode { index: "version".into(), source: "mismatched types".into() };
        assert!(matches!(map_error(decode), RepositoryError::Unexpected(_)), "a value that does not decode");
    }

    #[test]
    fn connection_trouble_is_unavailable_and_starts_the_probe() {
        let refused = || sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(map_error(refused()), RepositoryError::Unavailable(_)));
        assert_eq!(classify(&map_error(refused())), Failure::LostConnection);
        assert_eq!(classify(&map_error(sqlx::Error::PoolTimedOut)), Failure::LostConnection);
        assert_eq!(classify(&map_error(sqlx::Error::Protocol("x".into()))), Failure::Other);
    }

    #[test]
    fn a_connection_is_retired_only_when_it_was_made_before_the_retirement() {
        let retirement = Retirement::default();
        assert!(!retirement.made_before_retirement(Duration::from_secs(3600)), "nothing retired yet");
        std::thread::sleep(Duration::from_millis(5));
        retirement.retire_all();
        assert!(retirement.made_before_retirement(Duration::from_millis(3)), "made before");
        std::thread::sleep(Duration::from_millis(5));
        assert!(!retirement.made_before_retirement(Duration::from_millis(1)), "made after");
    }
}
