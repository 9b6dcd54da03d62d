//! The result state machine of a document signature process (SPEC §4).
//!
//! A process is *pending* until its result is established; a result is terminal. The machine
//! decides in two steps:
//!
//! 1. **settled** ([`ResultStateMachine::decide`]): a request against a result that is already
//!    there — stored, or given by expiry to a pending process past its `expires_at` — replays
//!    when it asks for that result and is refused otherwise (`terminal`, `expiry`), and a
//!    document result cannot change once the process result is set (`documents frozen`);
//! 2. **rules**: on a pending process, each [`Rule`] of the machine checks the request, in order.
//!
//! An accepted process result then gives documents without a result the one
//! [`derived_status`] names. The default rules are [`ResultStateMachine::default`]'s; to add
//! one, write a [`Rule`] and list it there — the handlers, the adapters and the conformance
//! suite use that set.

use time::OffsetDateTime;

use crate::ids::DocumentId;
use crate::result::{DocumentResult, DocumentResultStatus, ProcessResult, ResultMessage, ResultStatus};

/// A document's id and current result, as loaded with its process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentState {
    /// The document.
    pub id: DocumentId,
    /// Its result, once set.
    pub result: Option<DocumentResult>,
}

/// The optimistic concurrency token of a process: every transition written advances it, and a
/// transition is written only while the process still has the version it was decided on
/// (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub i64);

/// What the rules see of a process: a versioned snapshot, as the repository loads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSnapshot {
    /// The version a transition decided on this snapshot must find.
    pub version: Version,
    /// The established result, if any.
    pub result: Option<ProcessResult>,
    /// The documents in order with their results.
    pub documents: Vec<DocumentState>,
    /// When the process expires while still pending (`created_at + processes.ttl_seconds`).
    pub expires_at: OffsetDateTime,
}

impl ProcessSnapshot {
    /// The process result as the rules take it at `now`: the stored one, or, for a pending
    /// process past its `expires_at`, the one expiry gives it ([`expiry_result`], SPEC §4).
    #[must_use]
    pub fn current_result(&self, now: OffsetDateTime) -> Option<ProcessResult> {
        self.result.clone().or_else(|| (self.expires_at <= now).then(expiry_result))
    }
}

/// The kind of a refused transition; the API turns it into a problem type (HTTP 409).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// A different result is already established (`result-already-established`).
    AlreadyEstablished,
    /// The result contradicts the document results (`result-conflicts-with-documents`).
    ConflictsWithDocuments,
    /// A document result after the process result (`documents-frozen`).
    DocumentsFrozen,
}

/// The current result a conflict reports (`current_result` of the problem document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurrentResult {
    /// The process result.
    Process(ProcessResult),
    /// A document result.
    Document(DocumentResult),
}

/// A refused transition: HTTP 409 of `kind`, with a `detail` that names the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleViolation {
    /// The rule's name ([`Rule::name`], or `terminal`, `expiry`, `documents frozen`).
    pub rule: &'static str,
    /// What kind of conflict it is.
    pub kind: ConflictKind,
    /// Human-readable explanation naming the rule.
    pub detail: String,
    /// The stored result the request conflicts with, when there is one.
    pub current_result: Option<CurrentResult>,
}

impl RuleViolation {
    /// A violation of `rule` of kind [`ConflictKind::ConflictsWithDocuments`].
    #[must_use]
    pub fn conflicts_with_documents(rule: &'static str, detail: impl Into<String>) -> Self {
        Self::new(rule, ConflictKind::ConflictsWithDocuments, detail.into(), None)
    }

    fn new(rule: &'static str, kind: ConflictKind, detail: String, current: Option<CurrentResult>) -> Self {
        Self { rule, kind, detail: format!("rule '{rule}': {detail}"), current_result: current }
    }
}

/// How an accepted request ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    /// Written now, with its derived document results and one audit event.
    Established(T),
    /// The same result was already there: nothing is written.
    Replayed(T),
}

impl<T> Outcome<T> {
    /// What the request answers, whichever way it ended.
    #[must_use]
    pub fn result(&self) -> &T {
        match self {
            Self::Established(r) | Self::Replayed(r) => r,
        }
    }
}

/// A request for a transition: a process result (O5) or one document's result (O7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// Establish this process result.
    Process(&'a ProcessResult),
    /// Set the result of document `index` of the snapshot.
    Document {
        /// Position of the document in [`ProcessSnapshot::documents`].
        index: usize,
        /// The requested result.
        result: &'a DocumentResult,
    },
}

/// What an accepted transition changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Change {
    /// The new process result, if the transition establishes one.
    pub result: Option<ProcessResult>,
    /// Document results to set (only on documents that have none).
    pub document_results: Vec<(DocumentId, DocumentResult)>,
}

/// A rule on a transition of a *pending* process (SPEC §4).
pub trait Rule: Send + Sync {
    /// The rule's name, used in `detail` and logs.
    fn name(&self) -> &'static str;
    /// Checks `request` against `process`.
    ///
    /// # Errors
    /// The `detail` of the violation when the request breaks the rule (answered as a 409
    /// [`ConflictKind::ConflictsWithDocuments`] that names the rule).
    fn check(&self, process: &ProcessSnapshot, request: Request<'_>) -> Result<(), String>;
}

fn is_finished(d: &DocumentState) -> bool {
    d.result.as_ref().is_some_and(|r| r.status == DocumentResultStatus::Finished)
}

fn process_status(request: Request<'_>) -> Option<ResultStatus> {
    match request {
        Request::Process(r) => Some(r.status),
        Request::Document { .. } => None,
    }
}

/// **finished** — no document may have a result other than `finished`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Finished;

impl Rule for Finished {
    fn name(&self) -> &'static str {
        "finished"
    }

    fn check(&self, p: &ProcessSnapshot, request: Request<'_>) -> Result<(), String> {
        if process_status(request) != Some(ResultStatus::Finished) {
            return Ok(());
        }
        match p.documents.iter().find(|d| d.result.is_some() && !is_finished(d)) {
            Some(d) => Err(format!("document {} has a result other than finished", d.id)),
            None => Ok(()),
        }
    }
}

/// **failed / canceled** — no document may be `finished`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FailedOrCanceled;

impl Rule for FailedOrCanceled {
    fn name(&self) -> &'static str {
        "failed/canceled"
    }

    fn check(&self, p: &ProcessSnapshot, request: Request<'_>) -> Result<(), String> {
        let Some(status @ (ResultStatus::Failed | ResultStatus::Canceled)) = process_status(request) else {
            return Ok(());
        };
        match p.documents.iter().find(|d| is_finished(d)) {
            Some(d) => Err(format!("document {} is finished, so the process cannot be {status}", d.id)),
            None => Ok(()),
        }
    }
}

/// **failed_documents** — needs at least two documents; refused when every document is
/// `finished`, or when every document has a result and none is `finished`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FailedDocuments;

impl Rule for FailedDocuments {
    fn name(&self) -> &'static str {
        "failed_documents"
    }

    fn check(&self, p: &ProcessSnapshot, request: Request<'_>) -> Result<(), String> {
        if process_status(request) != Some(ResultStatus::FailedDocuments) {
            return Ok(());
        }
        let docs = &p.documents;
        if docs.len() < 2 {
            Err("failed_documents needs a process with at least two documents".to_owned())
        } else if docs.iter().all(is_finished) {
            Err("every document is finished: the result is finished, not failed_documents".to_owned())
        } else if docs.iter().all(|d| d.result.is_some()) && !docs.iter().any(is_finished) {
            Err("no document is finished: the result is failed or canceled, not failed_documents".to_owned())
        } else {
            Ok(())
        }
    }
}

/// The message of a result established by expiry.
pub const EXPIRED_MESSAGE: &str = "expired";

fn expired_message() -> Option<ResultMessage> {
    ResultMessage::new(EXPIRED_MESSAGE).ok()
}

/// The result expiry gives a process: `canceled` with message [`EXPIRED_MESSAGE`] (SPEC §4).
#[must_use]
pub fn expiry_result() -> ProcessResult {
    ProcessResult { status: ResultStatus::Canceled, message: expired_message() }
}

/// The result expiry gives a document that has none: `canceled` with message
/// [`EXPIRED_MESSAGE`], like its process.
#[must_use]
pub fn expiry_document_result() -> DocumentResult {
    DocumentResult { status: DocumentResultStatus::Canceled, message: expired_message() }
}

/// The status a document without a result takes when its process gets `status` (SPEC §4):
/// `finished`, `failed` and `canceled` pass on; `failed_documents` leaves it without one.
#[must_use]
pub const fn derived_status(status: ResultStatus) -> Option<DocumentResultStatus> {
    match status {
        ResultStatus::Finished => Some(DocumentResultStatus::Finished),
        ResultStatus::Failed => Some(DocumentResultStatus::Failed),
        ResultStatus::Canceled => Some(DocumentResultStatus::Canceled),
        ResultStatus::FailedDocuments => None,
    }
}

/// The change that establishes `result` on `p`: the result, and for each document without a
/// result its [`derived_status`] with `message` (expiry's, or none).
fn establishing(p: &ProcessSnapshot, result: ProcessResult, message: Option<ResultMessage>) -> Change {
    let document_results = derived_status(result.status)
        .map(|status| {
            let unresulted = p.documents.iter().filter(|d| d.result.is_none());
            unresulted.map(|d| (d.id.clone(), DocumentResult { status, message: message.clone() })).collect()
        })
        .unwrap_or_default();
    Change { result: Some(result), document_results }
}

/// The ordered rules that decide every result transition.
pub struct ResultStateMachine {
    rules: Vec<Box<dyn Rule>>,
}

impl std::fmt::Debug for ResultStateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.rules.iter().map(|r| r.name())).finish()
    }
}

impl Default for ResultStateMachine {
    /// The rules of SPEC §4, in order: finished, failed/canceled, failed_documents. The
    /// conformance suite and the service use this set; a new default rule is added here.
    fn default() -> Self {
        Self { rules: vec![Box::new(Finished), Box::new(FailedOrCanceled), Box::new(FailedDocuments)] }
    }
}

impl ResultStateMachine {
    /// [`Self::default`].
    #[must_use]
    pub fn with_default_rules() -> Self {
        Self::default()
    }

    /// Adds a rule after the existing ones.
    #[must_use]
    pub fn with_rule(mut self, rule: impl Rule + 'static) -> Self {
        self.rules.push(Box::new(rule));
        self
    }

    /// Decides `request` on `p` at `now`: replay or refusal against a settled result, then the
    /// rules, then the change to write.
    ///
    /// # Errors
    /// The [`RuleViolation`] met; nothing is to be written then.
    pub fn decide(
        &self,
        p: &ProcessSnapshot,
        now: OffsetDateTime,
        request: Request<'_>,
    ) -> Result<Outcome<Change>, RuleViolation> {
        let expired = p.result.is_none() && p.expires_at <= now;
        // A result already there: the stored one, or (`by_expiry`) the one expiry gives.
        let settled = |current: CurrentResult, by_expiry: bool, same: bool| {
            let (rule, detail) = match (&current, by_expiry) {
                (_, true) => ("expiry", "the process expired before a result was established, so it is canceled"),
                (CurrentResult::Process(_), false) => ("terminal", "the process already has a different result"),
                (CurrentResult::Document(_), false) => ("terminal", "the document already has a different result"),
            };
            if same {
                Ok(Outcome::Replayed(Change::default()))
            } else {
                Err(RuleViolation::new(rule, ConflictKind::AlreadyEstablished, detail.to_owned(), Some(current)))
            }
        };
        let change = match request {
            Request::Process(requested) => {
                if let Some(current) = p.current_result(now) {
                    let same = current == *requested;
                    return settled(CurrentResult::Process(current), expired, same);
                }
                establishing(p, requested.clone(), None)
            }
            Request::Document { index, result: requested } => {
                let Some(document) = p.documents.get(index) else {
                    return Err(RuleViolation::conflicts_with_documents("document", "no such document in the process"));
                };
                let by_expiry = expired && document.result.is_none();
                if let Some(current) = document.result.clone().or_else(|| by_expiry.then(expiry_document_result)) {
                    let same = current == *requested;
                    return settled(CurrentResult::Document(current), by_expiry, same);
                }
                if let Some(current) = &p.result {
                    let detail = "the process result is established, document results cannot change".to_owned();
                    let current = Some(CurrentResult::Process(current.clone()));
                    return Err(RuleViolation::new("documents frozen", ConflictKind::DocumentsFrozen, detail, current));
                }
                Change { result: None, document_results: vec![(document.id.clone(), requested.clone())] }
            }
        };
        for rule in &self.rules {
            rule.check(p, request).map_err(|detail| RuleViolation::conflicts_with_documents(rule.name(), detail))?;
        }
        Ok(Outcome::Established(change))
    }

    /// The change expiry makes at `now` (SPEC §4): `None` unless `p` is pending and past its
    /// `expires_at`; else [`expiry_result`] for the process and [`expiry_document_result`] for
    /// each document without a result.
    #[must_use]
    pub fn expire(&self, p: &ProcessSnapshot, now: OffsetDateTime) -> Option<Change> {
        (p.result.is_none() && p.expires_at <= now).then(|| establishing(p, expiry_result(), expired_message()))
    }
}

#[cfg(test)]
mod tests;
