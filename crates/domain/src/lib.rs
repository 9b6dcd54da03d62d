//! Domain of esignsp: the eSignSP v2 document signature process, its result state machine
//! (SPEC §4) and the ports its adapters implement.
//!
//! Nothing here does I/O; persistence and token verification are behind the traits of
//! [`ports`], signing documents behind [`signing::DocumentSigner`].

pub mod auth;
pub mod content;
pub mod events;
pub mod group_commit;
pub mod ids;
pub mod ports;
pub mod process;
pub mod result;
pub mod rules;
pub mod service;
pub mod signing;
pub mod text;
pub mod webhooks;

pub use auth::{Caller, InvalidTokenReason, TokenRejection};
pub use events::{AuditContext, AuditEvent, DocumentSigningRecord, EventKind, SignerIdentity, SigningRecord};
pub use ids::{ClientId, ContentId, DocumentId, EndpointId, MalformedId, MessageId, ProcessId, TaskId};
pub use ports::{
    AccessTokenVerifier, Clock, CreateError, DeleteDocumentOutcome, EstablishResultError, IdGenerator, RepositoryError,
    SignedContent, SignerProcessRepository, Transition, TransitionEvent, TransitionStore, WriteOutcome,
};
pub use process::{
    DocumentContent, InvalidProcess, NewDocument, NewSignerProcess, NewStandaloneDocument, ProcessDocument,
    ProcessDocumentSource, ProcessRequest, ProcessType, SignerProcess, StoredDocument,
};
pub use result::{DocumentResult, DocumentResultStatus, ProcessResult, ResultMessage, ResultStatus};
pub use rules::{Outcome, ProcessSnapshot, ResultStateMachine, RuleViolation, Version};
pub use service::SignerProcessService;
pub use signing::{
    DocumentSigner, SignatureLevel, SignatureRequest, SigningCause, SigningError, UnknownSignatureLevel,
};
pub use text::{InvalidText, Text, TextDefect, TextKind};
