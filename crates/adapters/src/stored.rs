//! Turning stored values back into domain values, shared by the SQL adapters. Stored data was
//! valid when written; anything else is reported as an unexpected error, never a panic.

use esignsp_domain::ports::RepositoryError;
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
