//! The result state machine of a document signature process (SPEC §4).
//!
//! A process is *pending* until its result is established; a result is terminal. Each rule
//! of SPEC §4 is a named type implementing [`ResultRule`] (process results, operation O5) or
//! [`DocumentRule`] (document results, operation O7). [`ResultStateMachine::with_default_rules`]
//! holds them in order; a developer adds a rule with [`ResultStateMachine::with_rule`] without
//! touching handlers or adapters, which only call [`ResultStateMachine::establish`] and
//! [`ResultStateMachine::set_document_result`] on the state they read inside their transaction.

use crate::ids::DocumentId;
use crate::result::{DocumentResult, DocumentResultStatus, ProcessResult, ResultStatus};

/// Problem type of a result that differs from the one already established (HTTP 409).
pub const PROBLEM_ALREADY_ESTABLISHED: &str = "urn:esignsp:problem:result-already-established";
/// Problem type of a result that contradicts the document results (HTTP 409).
pub const PROBLEM_CONFLICTS_WITH_DOCUMENTS: &str = "urn:esignsp:problem:result-conflicts-with-documents";
/// Problem type of a document result set after the process result (HTTP 409).
pub const PROBLEM_DOCUMENTS_FROZEN: &str = "urn:esignsp:problem:documents-frozen";

/// A document's id and current result, as read inside the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentState {
    /// The document.
    pub id: DocumentId,
    /// Its result, once set.
    pub result: Option<DocumentResult>,
}

/// What the rules see of a process: read inside the transaction that will apply the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessState {
    /// The established result, if any.
    pub result: Option<ProcessResult>,
    /// The documents in order with their results.
    pub documents: Vec<DocumentState>,
    /// True when the process is pending and older than `processes.ttl_seconds`.
    pub expired: bool,
}

/// The current result a conflict reports (`current_result` of the problem document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurrentResult {
    /// The process result.
    Process(ProcessResult),
    /// A document result.
    Document(DocumentResult),
}

/// A refused transition: HTTP 409 with `type` = [`RuleViolation::problem_type`] and a
/// `detail` that names the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleViolation {
    /// The rule's name, as returned by [`ResultRule::name`].
    pub rule: &'static str,
    /// RFC 9457 problem type URI.
    pub problem_type: &'static str,
    /// Human-readable explanation naming the rule.
    pub detail: String,
    /// The stored result the request conflicts with, when there is one.
    pub current_result: Option<CurrentResult>,
}

impl RuleViolation {
    /// A violation of `rule` with the default type [`PROBLEM_CONFLICTS_WITH_DOCUMENTS`].
    #[must_use]
    pub fn conflicts_with_documents(rule: &'static str, detail: impl Into<String>) -> Self {
        Self {
            rule,
            problem_type: PROBLEM_CONFLICTS_WITH_DOCUMENTS,
            detail: format!("rule '{rule}': {}", detail.into()),
            current_result: None,
        }
    }
}

/// What a process-result rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The rule has no objection; later rules run.
    Continue,
    /// The request repeats the stored result: answer it, change nothing, run no other rule.
    Replay,
}

/// A transition in the making: the requested result and the document results it derives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultPlan {
    /// The result the client asked for.
    pub result: ProcessResult,
    /// Results to give documents that have none, derived by the rules.
    pub derived_document_results: Vec<(DocumentId, DocumentResult)>,
}

/// A rule on establishing a process result (operation O5).
pub trait ResultRule: Send + Sync {
    /// The rule's name, used in `detail` and logs.
    fn name(&self) -> &'static str;
    /// Checks `plan` against `state`, possibly deriving document results into it.
    ///
    /// # Errors
    /// A [`RuleViolation`] when the transition breaks the rule.
    fn apply(&self, state: &ProcessState, plan: &mut ResultPlan) -> Result<Verdict, RuleViolation>;
}

/// A rule on setting one document's result (operation O7).
pub trait DocumentRule: Send + Sync {
    /// The rule's name.
    fn name(&self) -> &'static str;
    /// Checks setting `document` of `state` to `requested`.
    ///
    /// # Errors
    /// A [`RuleViolation`] when the transition breaks the rule.
    fn apply(
        &self,
        state: &ProcessState,
        document: &DocumentState,
        requested: &DocumentResult,
    ) -> Result<Verdict, RuleViolation>;
}

/// The outcome of an accepted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<T> {
    /// The same result is already stored: answer it, write nothing.
    Replay(T),
    /// Apply this transition.
    Apply(T),
}

/// **terminal** — once a process result is set, the same status and message replay (200),
/// anything else is refused with [`PROBLEM_ALREADY_ESTABLISHED`]. Also applies to document
/// results through [`DocumentTerminal`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Terminal;

impl ResultRule for Terminal {
    fn name(&self) -> &'static str {
        "terminal"
    }

    fn apply(&self, state: &ProcessState, plan: &mut ResultPlan) -> Result<Verdict, RuleViolation> {
        match &state.result {
            None => Ok(Verdict::Continue),
            Some(current) if *current == plan.result => Ok(Verdict::Replay),
            Some(current) => Err(RuleViolation {
                rule: self.name(),
                problem_type: PROBLEM_ALREADY_ESTABLISHED,
                detail: "rule 'terminal': the process already has a different result".to_owned(),
                current_result: Some(CurrentResult::Process(current.clone())),
            }),
        }
    }
}

/// **expiry** — a pending process older than `processes.ttl_seconds` is treated as if its
/// expiry were already materialised (SPEC §4): it has the result `canceled` with message
/// `expired` ([`expiry_result`]). That result itself replays; any other is refused exactly as
/// [`Terminal`] refuses it once the sweeper has stored it — [`PROBLEM_ALREADY_ESTABLISHED`]
/// with `current_result` — so a client sees the same answer whether or not the sweeper ran.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expiry;

fn expired_violation(rule: &'static str, current: CurrentResult) -> RuleViolation {
    RuleViolation {
        rule,
        problem_type: PROBLEM_ALREADY_ESTABLISHED,
        detail: format!("rule '{rule}': the process expired before a result was established, so it is canceled"),
        current_result: Some(current),
    }
}

impl ResultRule for Expiry {
    fn name(&self) -> &'static str {
        "expiry"
    }

    fn apply(&self, state: &ProcessState, plan: &mut ResultPlan) -> Result<Verdict, RuleViolation> {
        if !state.expired || state.result.is_some() {
            return Ok(Verdict::Continue);
        }
        let current = expiry_result();
        if plan.result == current {
            Ok(Verdict::Replay)
        } else {
            Err(expired_violation(self.name(), CurrentResult::Process(current)))
        }
    }
}

/// **finished** — no document may have a result other than `finished`; documents without a
/// result become `finished`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Finished;

impl ResultRule for Finished {
    fn name(&self) -> &'static str {
        "finished"
    }

    fn apply(&self, state: &ProcessState, plan: &mut ResultPlan) -> Result<Verdict, RuleViolation> {
        if plan.result.status != ResultStatus::Finished {
            return Ok(Verdict::Continue);
        }
        if let Some(doc) = state
            .documents
            .iter()
            .find(|d| d.result.as_ref().is_some_and(|r| r.status != DocumentResultStatus::Finished))
        {
            return Err(RuleViolation::conflicts_with_documents(
                self.name(),
                format!("document {} has a result other than finished", doc.id),
            ));
        }
        derive_for_unresulted(state, plan, DocumentResultStatus::Finished);
        Ok(Verdict::Continue)
    }
}

/// **failed / canceled** — no document may be `finished`; documents without a result take
/// the same status.
#[derive(Debug, Clone, Copy, Default)]
pub struct FailedOrCanceled;

impl ResultRule for FailedOrCanceled {
    fn name(&self) -> &'static str {
        "failed/canceled"
    }

    fn apply(&self, state: &ProcessState, plan: &mut ResultPlan) -> Result<Verdict, RuleViolation> {
        let derived = match plan.result.status {
            ResultStatus::Failed => DocumentResultStatus::Failed,
            ResultStatus::Canceled => DocumentResultStatus::Canceled,
            ResultStatus::Finished | ResultStatus::FailedDocuments => return Ok(Verdict::Continue),
        };
        if let Some(doc) = state.documents.iter().find(|d| is_finished(d)) {
            return Err(RuleViolation::conflicts_with_documents(
                self.name(),
                format!("document {} is finished, so the process cannot be {}", doc.id, plan.result.status),
            ));
        }
        derive_for_unresulted(state, plan, derived);
        Ok(Verdict::Continue)
    }
}

/// **failed_documents** — needs at least two documents; refused when every document is
/// `finished`, or when every document has a result and none is `finished`. Documents
/// without a result keep none.
#[derive(Debug, Clone, Copy, Default)]
pub struct FailedDocuments;

impl ResultRule for FailedDocuments {
    fn name(&self) -> &'static str {
        "failed_documents"
    }

    fn apply(&self, state: &ProcessState, plan: &mut ResultPlan) -> Result<Verdict, RuleViolation> {
        if plan.result.status != ResultStatus::FailedDocuments {
            return Ok(Verdict::Continue);
        }
        let docs = &state.documents;
        if docs.len() < 2 {
            return Err(RuleViolation::conflicts_with_documents(
                self.name(),
                "failed_documents needs a process with at least two documents",
            ));
        }
        if docs.iter().all(is_finished) {
            return Err(RuleViolation::conflicts_with_documents(
                self.name(),
                "every document is finished: the result is finished, not failed_documents",
            ));
        }
        if docs.iter().all(|d| d.result.is_some()) && !docs.iter().any(is_finished) {
            return Err(RuleViolation::conflicts_with_documents(
                self.name(),
                "no document is finished: the result is failed or canceled, not failed_documents",
            ));
        }
        Ok(Verdict::Continue)
    }
}

fn is_finished(doc: &DocumentState) -> bool {
    doc.result.as_ref().is_some_and(|r| r.status == DocumentResultStatus::Finished)
}

fn derive_for_unresulted(state: &ProcessState, plan: &mut ResultPlan, status: DocumentResultStatus) {
    plan.derived_document_results.extend(
        state
            .documents
            .iter()
            .filter(|d| d.result.is_none())
            .map(|d| (d.id.clone(), DocumentResult { status, message: None })),
    );
}

/// **terminal** for documents — a document result is set once: the same result replays,
/// another is refused with [`PROBLEM_ALREADY_ESTABLISHED`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DocumentTerminal;

impl DocumentRule for DocumentTerminal {
    fn name(&self) -> &'static str {
        "terminal"
    }

    fn apply(
        &self,
        _: &ProcessState,
        document: &DocumentState,
        requested: &DocumentResult,
    ) -> Result<Verdict, RuleViolation> {
        match &document.result {
            None => Ok(Verdict::Continue),
            Some(current) if current == requested => Ok(Verdict::Replay),
            Some(current) => Err(RuleViolation {
                rule: self.name(),
                problem_type: PROBLEM_ALREADY_ESTABLISHED,
                detail: "rule 'terminal': the document already has a different result".to_owned(),
                current_result: Some(CurrentResult::Document(current.clone())),
            }),
        }
    }
}

/// **documents frozen** — after the process result is set, document results cannot change.
#[derive(Debug, Clone, Copy, Default)]
pub struct DocumentsFrozen;

impl DocumentRule for DocumentsFrozen {
    fn name(&self) -> &'static str {
        "documents frozen"
    }

    fn apply(&self, state: &ProcessState, _: &DocumentState, _: &DocumentResult) -> Result<Verdict, RuleViolation> {
        match &state.result {
            None => Ok(Verdict::Continue),
            Some(current) => Err(RuleViolation {
                rule: self.name(),
                problem_type: PROBLEM_DOCUMENTS_FROZEN,
                detail: "rule 'documents frozen': the process result is established, document results cannot change"
                    .to_owned(),
                current_result: Some(CurrentResult::Process(current.clone())),
            }),
        }
    }
}

/// **expiry** for documents — on an expired pending process a document without a result is
/// treated as having the one expiry gives it (`canceled`, message `expired`): the same result
/// replays, another is refused with [`PROBLEM_ALREADY_ESTABLISHED`] and `current_result`, as
/// [`DocumentTerminal`] answers once expiry is materialised. (A document that has a result is
/// answered by [`DocumentTerminal`], which runs first.)
#[derive(Debug, Clone, Copy, Default)]
pub struct DocumentExpiry;

impl DocumentRule for DocumentExpiry {
    fn name(&self) -> &'static str {
        "expiry"
    }

    fn apply(
        &self,
        state: &ProcessState,
        document: &DocumentState,
        requested: &DocumentResult,
    ) -> Result<Verdict, RuleViolation> {
        if !state.expired || state.result.is_some() {
            return Ok(Verdict::Continue);
        }
        let current = document.result.clone().unwrap_or_else(expiry_document_result);
        if *requested == current {
            Ok(Verdict::Replay)
        } else {
            Err(expired_violation(self.name(), CurrentResult::Document(current)))
        }
    }
}

/// The message of a result established by expiry.
pub const EXPIRED_MESSAGE: &str = "expired";

fn expired_message() -> Option<crate::result::ResultMessage> {
    crate::result::ResultMessage::new(EXPIRED_MESSAGE).ok()
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

/// **expiry** materialised: the result a pending process takes when it outlives
/// `processes.ttl_seconds` — [`expiry_result`]; documents without a result take
/// [`expiry_document_result`] (SPEC §4). Returns `None` unless the process is pending and
/// expired.
#[must_use]
pub fn expiry_plan(state: &ProcessState) -> Option<ResultPlan> {
    if state.result.is_some() || !state.expired {
        return None;
    }
    let derived = expiry_document_result();
    let derived_document_results =
        state.documents.iter().filter(|d| d.result.is_none()).map(|d| (d.id.clone(), derived.clone())).collect();
    Some(ResultPlan { result: expiry_result(), derived_document_results })
}

/// The ordered rules that decide every result transition.
pub struct ResultStateMachine {
    result_rules: Vec<Box<dyn ResultRule>>,
    document_rules: Vec<Box<dyn DocumentRule>>,
}

impl std::fmt::Debug for ResultStateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultStateMachine")
            .field("result_rules", &self.result_rules.iter().map(|r| r.name()).collect::<Vec<_>>())
            .field("document_rules", &self.document_rules.iter().map(|r| r.name()).collect::<Vec<_>>())
            .finish()
    }
}

impl Default for ResultStateMachine {
    fn default() -> Self {
        Self::with_default_rules()
    }
}

impl ResultStateMachine {
    /// The rules of SPEC §4, in order: terminal, expiry, finished, failed/canceled,
    /// failed_documents; for documents: terminal, documents frozen, expiry.
    #[must_use]
    pub fn with_default_rules() -> Self {
        Self {
            result_rules: vec![
                Box::new(Terminal),
                Box::new(Expiry),
                Box::new(Finished),
                Box::new(FailedOrCanceled),
                Box::new(FailedDocuments),
            ],
            document_rules: vec![Box::new(DocumentTerminal), Box::new(DocumentsFrozen), Box::new(DocumentExpiry)],
        }
    }

    /// Adds a process-result rule after the existing ones.
    #[must_use]
    pub fn with_rule(mut self, rule: impl ResultRule + 'static) -> Self {
        self.result_rules.push(Box::new(rule));
        self
    }

    /// Adds a document-result rule after the existing ones.
    #[must_use]
    pub fn with_document_rule(mut self, rule: impl DocumentRule + 'static) -> Self {
        self.document_rules.push(Box::new(rule));
        self
    }

    /// Decides establishing `requested` as the result of the process in `state` (O5).
    ///
    /// # Errors
    /// The first [`RuleViolation`] met; nothing is to be written then.
    pub fn establish(
        &self,
        state: &ProcessState,
        requested: ProcessResult,
    ) -> Result<Decision<ResultPlan>, RuleViolation> {
        let mut plan = ResultPlan { result: requested, derived_document_results: Vec::new() };
        for rule in &self.result_rules {
            if rule.apply(state, &mut plan)? == Verdict::Replay {
                plan.derived_document_results.clear();
                return Ok(Decision::Replay(plan));
            }
        }
        Ok(Decision::Apply(plan))
    }

    /// Decides setting `requested` as the result of document `index` of `state` (O7).
    ///
    /// # Errors
    /// The first [`RuleViolation`] met; nothing is to be written then.
    ///
    /// # Panics
    /// Never: an `index` outside `state.documents` is a caller bug reported as a violation.
    pub fn set_document_result(
        &self,
        state: &ProcessState,
        index: usize,
        requested: DocumentResult,
    ) -> Result<Decision<DocumentResult>, RuleViolation> {
        let Some(document) = state.documents.get(index) else {
            return Err(RuleViolation::conflicts_with_documents("document", "no such document in the process"));
        };
        for rule in &self.document_rules {
            if rule.apply(state, document, &requested)? == Verdict::Replay {
                return Ok(Decision::Replay(requested));
            }
        }
        Ok(Decision::Apply(requested))
    }
}

#[cfg(test)]
mod tests;
