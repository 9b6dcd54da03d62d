//! The webhook delivery worker of a replica (SPEC §11): runs the domain's
//! [`WebhookDispatcher`] round after round — at once again while rounds come back full, else
//! after `webhooks.poll_interval_ms` or when woken — and keeps the delivery metrics. Every
//! replica runs one; the store's claim keeps them from sending the same delivery twice within
//! a lease.

use std::sync::Arc;
use std::time::Duration;

use esignsp_domain::webhooks::{Round, WebhookDispatcher};
use tokio::sync::Notify;

use crate::metrics::Metrics;

/// How often settled deliveries past `webhooks.retention_days` are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// How often the queue gauges are refreshed.
const STATS_INTERVAL: Duration = Duration::from_secs(5);

/// Spawns the worker. `batch` is the dispatcher's batch size: a round that claimed that many
/// runs the next one at once.
pub fn spawn(
    dispatcher: WebhookDispatcher,
    metrics: Metrics,
    wake: Arc<Notify>,
    poll: Duration,
    batch: u32,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut failing = false;
        let mut stats_at: Option<tokio::time::Instant> = None;
        let mut purged_at: Option<tokio::time::Instant> = None;
        loop {
            let full = match dispatcher.run_round().await {
                Ok(round) => {
                    if failing {
                        tracing::info!("webhook deliveries resumed: the database answers again");
                        failing = false;
                    }
                    count(&metrics, round);
                    round.attempts() >= batch
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "webhook delivery round failed; retrying every poll interval");
                        failing = true;
                    }
                    false
                }
            };
            if purged_at.is_none_or(|at| at.elapsed() >= PURGE_INTERVAL) {
                purged_at = Some(tokio::time::Instant::now());
                match dispatcher.purge().await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(purged = n, "purged settled webhook deliveries past webhooks.retention_days")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "purging settled webhook deliveries failed; retrying in an hour")
                    }
                }
            }
            // The outbox's depth is a count over the pending deliveries: at most every 5 s.
            let stale = stats_at.is_none_or(|at| at.elapsed() >= STATS_INTERVAL);
            if stale {
                stats_at = Some(tokio::time::Instant::now());
            }
            if let Some(Ok(stats)) = if stale { Some(dispatcher.queue_stats().await) } else { None } {
                metrics.webhook_queue_depth.set(stats.pending);
                let age = stats
                    .oldest_pending
                    .map_or(0.0, |at| (time::OffsetDateTime::now_utc() - at).as_seconds_f64().max(0.0));
                metrics.webhook_oldest_pending_age.set(age);
            }
            if !full {
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    () = wake.notified() => {}
                }
            }
        }
    })
}

fn count(metrics: &Metrics, round: Round) {
    let counter = &metrics.webhook_deliveries;
    counter.with_label_values(&["delivered"]).inc_by(u64::from(round.delivered));
    counter.with_label_values(&["retrying"]).inc_by(u64::from(round.retrying));
    counter.with_label_values(&["failed"]).inc_by(u64::from(round.failed));
    counter.with_label_values(&["refused"]).inc_by(u64::from(round.refused));
}
