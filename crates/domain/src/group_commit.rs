//! Group commit of result transitions (SPEC §8): concurrent result requests (O5 `PUT
//! …/result`, O7 `PUT …/documents/{id}/result`) decided and written together, so that a burst
//! of them costs the store one batch load, one batch write and one commit instead of one
//! each.
//!
//! The protocol is the one of [`SignerProcessService::transition`], on the repository port's
//! batch methods ([`TransitionStore::load_batch`], [`TransitionStore::write_batch`]): each
//! request is decided by the domain on its own snapshot and written with its own
//! compare-and-set on the version. Each request gets the answer it would get alone: its
//! outcome only after the batch's commit; a refusal or a replay at once; a stale write (another
//! transition committed first) and a second request for a process already in the batch decide
//! again on their own, through the single-request path; a batch whose load or write fails
//! answers the failure to its own requests only.
//!
//! [`GroupCommit::run`] takes the requests waiting when a batch can start — at most
//! [`GroupCommitSettings::max_batch`], without waiting for more when there are none — and
//! runs at most [`GroupCommitSettings::lanes`] batches at once, so a busy service makes larger
//! batches. A request found alone is handed straight back to be decided on its own with the
//! single-request statements, which cost PostgreSQL less than the batch ones for one row (at
//! one connection: 1 261 PUT/s so, 810 through a batch of one).

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::auth::Caller;
use crate::events::AuditContext;
use crate::ids::ProcessId;
use crate::ports::{EstablishResultError, RepositoryError, Transition, TransitionStore, WriteOutcome};
use crate::rules::{Change, Outcome};
use crate::service::{Decide, Prepared, SignerProcessService};

/// How the group commit batches (`database.group_commit_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitSettings {
    /// Most requests in one batch (64).
    pub max_batch: NonZeroUsize,
    /// Most batches in flight at once (1): while they run, new requests gather for the next.
    /// On a 2-core machine one lane made batches of ~16 at 32 connections; 2, 4 and 8 lanes
    /// made smaller batches and fewer requests per second (docs/PERFORMANCE.md).
    pub lanes: NonZeroUsize,
}

impl Default for GroupCommitSettings {
    fn default() -> Self {
        Self { max_batch: NonZeroUsize::new(64).unwrap_or(NonZeroUsize::MIN), lanes: NonZeroUsize::MIN }
    }
}

/// What the group commit has done since it started (for `esignsp_group_commit_*` metrics):
/// their ratio is the mean batch size.
#[derive(Debug, Default)]
pub struct GroupCommitStats {
    batches: AtomicU64,
    requests: AtomicU64,
}

impl GroupCommitStats {
    /// Batches loaded.
    #[must_use]
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Requests loaded in them (each process once a batch).
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// A request's answer from the batch: `None` to decide again on its own.
type Answer = Option<Result<Option<Outcome<Change>>, EstablishResultError>>;

/// A result request waiting for a batch.
struct Pending {
    process: ProcessId,
    caller: Caller,
    audit: AuditContext,
    decide: Decide,
    answer: oneshot::Sender<Answer>,
}

impl Pending {
    fn answer(self, answer: Answer) {
        // The request may be gone (its client disconnected); its write stands regardless.
        let _ = self.answer.send(answer);
    }
}

/// The sending side of the group commit, held by the service.
#[derive(Clone)]
pub(crate) struct GroupCommitQueue {
    sender: mpsc::Sender<Pending>,
    pub(crate) stats: Arc<GroupCommitStats>,
}

impl GroupCommitQueue {
    /// Queues a request and waits for its batch: `Some(answer)`, or `None` when it is to be
    /// decided on its own (found alone, stale in the batch, or its process already in it).
    pub(crate) async fn submit(
        &self,
        process: &ProcessId,
        caller: &Caller,
        audit: &AuditContext,
        decide: Decide,
    ) -> Answer {
        let (answer, answered) = oneshot::channel();
        let pending =
            Pending { process: process.clone(), caller: caller.clone(), audit: audit.clone(), decide, answer };
        if self.sender.send(pending).await.is_err() {
            return Some(Err(stopped()));
        }
        answered.await.unwrap_or_else(|_| Some(Err(stopped())))
    }
}

/// The answer when the group commit's task is gone (shutting down).
fn stopped() -> EstablishResultError {
    EstablishResultError::Repository(RepositoryError::Unavailable("the group commit is not running".into()))
}

/// The group commit's task: run it once ([`Self::run`]) for the service of
/// [`SignerProcessService::with_group_commit`] to answer result requests.
pub struct GroupCommit {
    service: SignerProcessService,
    receiver: mpsc::Receiver<Pending>,
    settings: GroupCommitSettings,
    stats: Arc<GroupCommitStats>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// The queue for the service and the task that serves it; `service` decides and writes
    /// (without a group commit of its own).
    pub(crate) fn new(service: SignerProcessService, settings: GroupCommitSettings) -> (GroupCommitQueue, Self) {
        let (sender, receiver) = mpsc::channel(settings.max_batch.get() * settings.lanes.get() * 4);
        let stats = Arc::new(GroupCommitStats::default());
        (GroupCommitQueue { sender, stats: Arc::clone(&stats) }, Self { service, receiver, settings, stats })
    }

    /// Serves batches until every sender (every clone of the service) is gone, then finishes
    /// the batches in flight.
    pub async fn run(self) {
        let Self { service, mut receiver, settings, stats } = self;
        let mut running = FuturesUnordered::new();
        loop {
            if running.len() >= settings.lanes.get() {
                running.next().await;
                continue;
            }
            tokio::select! {
                first = receiver.recv() => {
                    let Some(first) = first else { break };
                    let mut batch = vec![first];
                    while batch.len() < settings.max_batch.get() {
                        match receiver.try_recv() {
                            Ok(pending) => batch.push(pending),
                            Err(_) => break,
                        }
                    }
                    running.push(commit(&service, &stats, batch));
                }
                Some(()) = running.next(), if !running.is_empty() => {}
            }
        }
        while running.next().await.is_some() {}
    }
}

/// A copy of `error` for each request of a failed batch (same kind, same message).
fn for_each_request(error: &RepositoryError) -> RepositoryError {
    let message = format!("{error}: {}", std::error::Error::source(error).map(ToString::to_string).unwrap_or_default());
    match error {
        RepositoryError::Unavailable(_) => RepositoryError::Unavailable(message.into()),
        RepositoryError::InsufficientStorage(_) => RepositoryError::InsufficientStorage(message.into()),
        RepositoryError::ReadOnly(_) => RepositoryError::ReadOnly(message.into()),
        RepositoryError::Unexpected(_) => RepositoryError::Unexpected(message.into()),
    }
}

/// Answers every request of `batch` with `error`.
fn fail(batch: impl IntoIterator<Item = Pending>, error: &RepositoryError) {
    tracing::warn!(error = %error, "a group commit batch failed");
    for pending in batch {
        pending.answer(Some(Err(for_each_request(error).into())));
    }
}

/// One batch: load every snapshot, decide each request, write the established ones, answer.
async fn commit(service: &SignerProcessService, stats: &GroupCommitStats, batch: Vec<Pending>) {
    if batch.len() == 1 {
        // Alone: nothing to share a commit with. It is decided on its own, at once, with the
        // single-request statements (cheaper than the batch ones), in its own task.
        for pending in batch {
            pending.answer(None);
        }
        return;
    }
    let mut seen = HashSet::with_capacity(batch.len());
    let (batch, again): (Vec<Pending>, Vec<Pending>) = batch.into_iter().partition(|p| seen.insert(p.process.clone()));
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats.requests.fetch_add(batch.len() as u64, Ordering::Relaxed);
    let mut store = match service.repository().transitions().await {
        Ok(store) => store,
        Err(e) => return fail(batch.into_iter().chain(again), &e),
    };
    let written = decide_and_write(service, &mut *store, batch).await;
    drop(store);
    for (pending, change) in written {
        pending.answer(change.map(|change| Ok(Some(Outcome::Established(change)))));
    }
    for pending in again {
        pending.answer(None);
    }
}

/// Loads, decides and writes `batch` (distinct processes) on `store`, answering every request
/// that needs no commit (unknown, refused, replayed, failed); returns the written ones with
/// their change — `None` for a stale one, to decide again on its own — to answer once the
/// store is released.
async fn decide_and_write(
    service: &SignerProcessService,
    store: &mut (dyn TransitionStore + '_),
    batch: Vec<Pending>,
) -> Vec<(Pending, Option<Change>)> {
    let keys: Vec<(&ProcessId, &Caller)> = batch.iter().map(|p| (&p.process, &p.caller)).collect();
    let snapshots = match store.load_batch(&keys).await {
        Ok(snapshots) if snapshots.len() == batch.len() => snapshots,
        Ok(_) => {
            let error = RepositoryError::Unexpected("the batch load answered another number of snapshots".into());
            fail(batch, &error);
            return Vec::new();
        }
        Err(e) => {
            fail(batch, &e);
            return Vec::new();
        }
    };
    let mut writers = Vec::new();
    let mut transitions: Vec<Transition> = Vec::new();
    for (pending, snapshot) in batch.into_iter().zip(snapshots) {
        let Some(snapshot) = snapshot else {
            pending.answer(Some(Ok(None)));
            continue;
        };
        match service.prepare(&pending.process, &pending.audit, &snapshot, &[], None, &*pending.decide) {
            Ok(Prepared::Answer(outcome)) => pending.answer(Some(Ok(Some(outcome)))),
            Ok(Prepared::Write(transition)) => {
                writers.push(pending);
                transitions.push(*transition);
            }
            Err(refused) => pending.answer(Some(Err(refused))),
        }
    }
    if transitions.is_empty() {
        return Vec::new();
    }
    match store.write_batch(&transitions).await {
        Ok(outcomes) if outcomes.len() == transitions.len() => writers
            .into_iter()
            .zip(transitions)
            .zip(outcomes)
            .map(|((pending, transition), outcome)| {
                (pending, (outcome == WriteOutcome::Written).then_some(transition.change))
            })
            .collect(),
        Ok(_) => {
            fail(writers, &RepositoryError::Unexpected("the batch write answered another number of outcomes".into()));
            Vec::new()
        }
        Err(e) => {
            fail(writers, &e);
            Vec::new()
        }
    }
}
