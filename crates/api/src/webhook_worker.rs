//! The webhook delivery worker of a replica (SPEC §11): claims due deliveries through the
//! domain's [`WebhookDispatcher`] and makes each attempt in a task of its own, at most
//! `webhooks.concurrency` at once and at most [`PER_ENDPOINT`] per endpoint, so that one slow
//! or silent endpoint holds up neither the other endpoints nor the other clients. It claims
//! again as soon as capacity frees, else after `webhooks.poll_interval_ms` or when woken; it
//! keeps the delivery metrics and purges settled deliveries past the retention. Every replica
//! runs one; the store's claim keeps them from sending the same delivery twice within a lease.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use esignsp_domain::webhooks::{Attempted, DeliveryStatus, WebhookDispatcher};
use esignsp_domain::EndpointId;
use tokio::sync::{Notify, Semaphore};

use crate::metrics::Metrics;

/// Attempts to one endpoint this replica makes at once at most.
pub const PER_ENDPOINT: usize = 4;

/// How often settled deliveries past `webhooks.retention_days` are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// How often the queue gauges are refreshed.
const STATS_INTERVAL: Duration = Duration::from_secs(5);

/// Attempts in flight per endpoint.
type InFlight = Arc<Mutex<HashMap<EndpointId, usize>>>;

/// Spawns the worker: at most `concurrency` attempts at once.
pub fn spawn(
    dispatcher: WebhookDispatcher,
    metrics: Metrics,
    wake: Arc<Notify>,
    poll: Duration,
    concurrency: u32,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(usize::try_from(concurrency).unwrap_or(1).max(1)));
        let in_flight: InFlight = Arc::default();
        let mut failing = false;
        let mut stats_at: Option<tokio::time::Instant> = None;
        let mut purged_at: Option<tokio::time::Instant> = None;
        loop {
            let free = permits.available_permits();
            let mut claimed_all = false;
            if free > 0 {
                let busy: Vec<EndpointId> = {
                    let counts = in_flight.lock().unwrap_or_else(PoisonError::into_inner);
                    counts.iter().filter(|(_, n)| **n >= PER_ENDPOINT).map(|(e, _)| e.clone()).collect()
                };
                match dispatcher.claim(u32::try_from(free).unwrap_or(u32::MAX), &busy).await {
                    Ok(claimed) => {
                        if failing {
                            tracing::info!("webhook deliveries resumed: the database answers again");
                            failing = false;
                        }
                        claimed_all = !claimed.is_empty() && claimed.len() == free;
                        for delivery in claimed {
                            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else { return };
                            *in_flight
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .entry(delivery.endpoint.clone())
                                .or_default() += 1;
                            let (dispatcher, metrics, wake, in_flight) =
                                (dispatcher.clone(), metrics.clone(), Arc::clone(&wake), Arc::clone(&in_flight));
                            tokio::spawn(async move {
                                match dispatcher.deliver(&delivery).await {
                                    Ok(attempted) => count(&metrics, attempted),
                                    Err(e) => tracing::warn!(
                                        delivery = delivery.id,
                                        error = %e,
                                        cause = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default(),
                                        "a webhook attempt could not be recorded; it is made again when its lease runs out"
                                    ),
                                }
                                let mut counts = in_flight.lock().unwrap_or_else(PoisonError::into_inner);
                                if let Some(n) = counts.get_mut(&delivery.endpoint) {
                                    *n -= 1;
                                    if *n == 0 {
                                        counts.remove(&delivery.endpoint);
                                    }
                                }
                                drop(counts);
                                drop(permit);
                                wake.notify_one();
                            });
                        }
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(
                                error = %e,
                                cause = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default(),
                                "claiming webhook deliveries failed; retrying every poll interval"
                            );
                            failing = true;
                        }
                    }
                }
            }
            maintain(&dispatcher, &metrics, &mut stats_at, &mut purged_at).await;
            if !claimed_all {
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    () = wake.notified() => {}
                }
            }
        }
    })
}

/// The hourly purge and the queue gauges (every [`STATS_INTERVAL`]).
async fn maintain(
    dispatcher: &WebhookDispatcher,
    metrics: &Metrics,
    stats_at: &mut Option<tokio::time::Instant>,
    purged_at: &mut Option<tokio::time::Instant>,
) {
    if purged_at.is_none_or(|at| at.elapsed() >= PURGE_INTERVAL) {
        *purged_at = Some(tokio::time::Instant::now());
        match dispatcher.purge().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "purged settled webhook deliveries past webhooks.retention_days"),
            Err(e) => tracing::warn!(error = %e, "purging settled webhook deliveries failed; retrying in an hour"),
        }
    }
    if stats_at.is_none_or(|at| at.elapsed() >= STATS_INTERVAL) {
        *stats_at = Some(tokio::time::Instant::now());
        if let Ok(stats) = dispatcher.queue_stats().await {
            metrics.webhook_queue_depth.set(stats.pending);
            let age =
                stats.oldest_pending.map_or(0.0, |at| (time::OffsetDateTime::now_utc() - at).as_seconds_f64().max(0.0));
            metrics.webhook_oldest_pending_age.set(age);
        }
    }
}

fn count(metrics: &Metrics, attempted: Attempted) {
    let counter = &metrics.webhook_deliveries;
    let outcome = match attempted.status {
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Pending => "retrying",
        DeliveryStatus::Failed => "failed",
    };
    counter.with_label_values(&[outcome]).inc();
    if attempted.refused {
        counter.with_label_values(&["refused"]).inc();
    }
}
