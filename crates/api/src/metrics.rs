//! Prometheus metrics (`GET /metrics`, text exposition format 0.0.4): requests and latency by
//! route and status, pool connections, results established by status, token rejections by
//! reason, connections closed on client errors before any handler ran, by kind, and webhook
//! deliveries by outcome with the outbox's depth and oldest pending age.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// `esignsp_http_client_errors_total{kind}`: connections actix-http closed on a client's
/// mistake before any handler ran (a malformed request head answered 400 or 431, a reset,
/// a request head not sent in time), by kind (see [`crate::telemetry::classify`]). Counted
/// by [`crate::telemetry::ClientErrors`] from actix-http's log events, so process-wide; every
/// [`Metrics`] registry shows it.
pub static CLIENT_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let counter = IntCounterVec::new(
        Opts::new(
            "esignsp_http_client_errors_total",
            "Connections closed on a client error before any handler ran (malformed request head, reset), by kind",
        ),
        &["kind"],
    )
    .expect("valid metric");
    for kind in crate::telemetry::CLIENT_ERROR_KINDS {
        counter.with_label_values(&[kind]);
    }
    counter
});

/// The service's metrics, registered in their own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `esignsp_http_requests_total{method, route, status}`.
    pub requests: IntCounterVec,
    /// `esignsp_http_request_duration_seconds{method, route, status}`.
    pub latency: HistogramVec,
    /// `esignsp_db_pool_connections{state="in_use"|"idle"}`, refreshed at each scrape.
    pub pool: IntGaugeVec,
    /// `esignsp_results_established_total{status}`: process results stored (not replays).
    pub results: IntCounterVec,
    /// `esignsp_token_rejections_total{reason}`.
    pub token_rejections: IntCounterVec,
    /// `esignsp_webhook_deliveries_total{outcome="delivered"|"retrying"|"failed"|"refused"}`:
    /// webhook attempts by how they ended (`refused`: not sent, the target is not allowed;
    /// counted besides `retrying` or `failed`).
    pub webhook_deliveries: IntCounterVec,
    /// `esignsp_webhook_queue_depth`: pending deliveries of enabled endpoints (whole database).
    pub webhook_queue_depth: IntGauge,
    /// `esignsp_webhook_oldest_pending_age_seconds`: age of the oldest pending delivery (0: none).
    pub webhook_oldest_pending_age: Gauge,
    /// `esignsp_group_commit_batches_total`: group commit batches (PostgreSQL), refreshed at
    /// each scrape.
    pub group_commit_batches: IntCounter,
    /// `esignsp_group_commit_requests_total`: result requests in them; over the batches, the
    /// mean batch size.
    pub group_commit_requests: IntCounter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    ///
    /// # Panics
    /// Never in practice: the names and labels below are valid and registered once.
    #[must_use]
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("esignsp_http_requests_total", "HTTP requests answered, by method, route pattern and status"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("esignsp_http_request_duration_seconds", "Time to answer HTTP requests, in seconds")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let pool = IntGaugeVec::new(
            Opts::new("esignsp_db_pool_connections", "Database pool connections by state"),
            &["state"],
        )
        .expect("valid metric");
        let results = IntCounterVec::new(
            Opts::new("esignsp_results_established_total", "Process results established, by status"),
            &["status"],
        )
        .expect("valid metric");
        let token_rejections = IntCounterVec::new(
            Opts::new("esignsp_token_rejections_total", "Requests refused by bearer-token checks, by reason"),
            &["reason"],
        )
        .expect("valid metric");
        let webhook_deliveries = IntCounterVec::new(
            Opts::new("esignsp_webhook_deliveries_total", "Webhook delivery attempts, by outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        for outcome in ["delivered", "retrying", "failed", "refused"] {
            webhook_deliveries.with_label_values(&[outcome]);
        }
        let webhook_queue_depth =
            IntGauge::new("esignsp_webhook_queue_depth", "Pending webhook deliveries of enabled endpoints")
                .expect("valid metric");
        let webhook_oldest_pending_age = Gauge::new(
            "esignsp_webhook_oldest_pending_age_seconds",
            "Age of the oldest pending webhook delivery, in seconds (0: none)",
        )
        .expect("valid metric");
        let group_commit_batches =
            IntCounter::new("esignsp_group_commit_batches_total", "Group commit batches of result requests")
                .expect("valid metric");
        let group_commit_requests = IntCounter::new(
            "esignsp_group_commit_requests_total",
            "Result requests written through group commit batches",
        )
        .expect("valid metric");
        registry.register(Box::new(group_commit_batches.clone())).expect("registered once");
        registry.register(Box::new(group_commit_requests.clone())).expect("registered once");
        registry.register(Box::new(webhook_queue_depth.clone())).expect("registered once");
        registry.register(Box::new(webhook_oldest_pending_age.clone())).expect("registered once");
        for c in [&requests, &results, &token_rejections, &webhook_deliveries] {
            registry.register(Box::new(c.clone())).expect("registered once");
        }
        registry.register(Box::new(latency.clone())).expect("registered once");
        registry.register(Box::new(pool.clone())).expect("registered once");
        registry.register(Box::new(CLIENT_ERRORS.clone())).expect("registered once");
        Self {
            registry,
            requests,
            latency,
            pool,
            results,
            token_rejections,
            webhook_deliveries,
            webhook_queue_depth,
            webhook_oldest_pending_age,
            group_commit_batches,
            group_commit_requests,
        }
    }

    /// Brings the group commit counters up to `stats`.
    pub fn observe_group_commit(&self, stats: &esignsp_domain::group_commit::GroupCommitStats) {
        self.group_commit_batches.inc_by(stats.batches().saturating_sub(self.group_commit_batches.get()));
        self.group_commit_requests.inc_by(stats.requests().saturating_sub(self.group_commit_requests.get()));
    }

    /// Records one answered request. A method that is not one of RFC 9110 §9's is counted as
    /// `other`: a client must not add label values (and memory) at will.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "CONNECT" | "OPTIONS" | "TRACE" | "PATCH" => method,
            _ => "other",
        };
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// The text exposition of every metric.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
