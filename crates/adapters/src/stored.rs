//! Turning stored values back into domain values, shared by the SQL adapters. Stored data was
//! valid when written; anything else is reported as an unexpected error, never a panic.

use esignsp_domain::ports::{RepositoryError, Transition};
use esignsp_domain::{DocumentId, DocumentResult, DocumentResultStatus, ProcessResult, ResultMessage, ResultStatus};

pub(crate) fn corrupt(what: &str) -> RepositoryError {
    RepositoryError::Unexpected(format!("stored data is not valid: {what}").into())
}

pub(crate) fn stored_message(message: Option<String>) -> Result<Option<ResultMessage>, RepositoryError> {
    message.map(|m| ResultMessage::new(m).map_err(|_| corrupt("result message"))).transpose()
}

pub(crate) fn stored_process_result(
    status: Option<String>,
    message: Option<String>,
) -> Result<Option<ProcessResult>, RepositoryError> {
    status
        .map(|s| {
            Ok(ProcessResult {
                status: ResultStatus::parse(&s).map_err(|_| corrupt("result status"))?,
                message: stored_message(message)?,
            })
        })
        .transpose()
}

pub(crate) fn stored_document_result(
    status: Option<String>,
    message: Option<String>,
) -> Result<Option<DocumentResult>, RepositoryError> {
    status
        .map(|s| {
            Ok(DocumentResult {
                status: DocumentResultStatus::parse(&s).map_err(|_| corrupt("document result status"))?,
                message: stored_message(message)?,
            })
        })
        .transpose()
}

pub(crate) fn document_id(s: &str) -> Result<DocumentId, RepositoryError> {
    DocumentId::parse(s).map_err(|_| corrupt("document id"))
}

/// A [`Transition`] as the SQL adapters bind it: statuses and messages as text, document
/// results as three arrays of equal length.
pub(crate) struct StoredTransition<'t> {
    /// The new process result's status and message, if the transition sets one.
    pub result: Option<(&'static str, Option<&'t str>)>,
    pub documents: StoredDocumentResults<'t>,
    pub event: StoredEvent<'t>,
}

pub(crate) struct StoredDocumentResults<'t> {
    pub ids: Vec<&'t str>,
    pub statuses: Vec<&'static str>,
    pub messages: Vec<Option<&'t str>>,
}

pub(crate) struct StoredEvent<'t> {
    pub kind: &'static str,
    pub actor: &'t str,
    pub request_id: &'t str,
    pub document_id: Option<&'t str>,
    pub new_status: &'static str,
}

impl<'t> StoredTransition<'t> {
    pub(crate) fn of(transition: &'t Transition) -> Self {
        let change = &transition.change;
        let mut documents = StoredDocumentResults {
            ids: Vec::with_capacity(change.document_results.len()),
            statuses: Vec::with_capacity(change.document_results.len()),
            messages: Vec::with_capacity(change.document_results.len()),
        };
        for (id, result) in &change.document_results {
            documents.ids.push(id.as_str());
            documents.statuses.push(result.status.as_str());
            documents.messages.push(result.message.as_ref().map(ResultMessage::as_str));
        }
        let event = &transition.event;
        Self {
            result: change.result.as_ref().map(|r| (r.status.as_str(), r.message.as_ref().map(ResultMessage::as_str))),
            documents,
            event: StoredEvent {
                kind: event.kind.as_str(),
                actor: event.actor.as_str(),
                request_id: &event.request_id,
                document_id: event.document_id.as_ref().map(DocumentId::as_str),
                new_status: event.new_status,
            },
        }
    }
}
