//! What must hold for every parser of client input, one check per fuzz target (the PDF reader
//! of the PAdES signer among them).
//!
//! Each `pub fn name(data: &[u8])` of [`TARGETS`] feeds `data` to the real parser of one kind
//! of client input and panics when a property fails: a panic inside the parser, an accepted
//! value that does not round-trip through its wire form, or a rejection that is not a 4xx
//! problem document. The cargo-fuzz targets in `fuzz/fuzz_targets/` (libFuzzer, built by
//! `scripts/fuzz.sh`) call these functions; `tests/corpora.rs` replays every corpus file and
//! every past finding through the same functions on stable, so `cargo test` keeps them as
//! regression tests.

mod forms;
mod json;
mod pades;
mod paths;
mod tokens;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::ResponseError;
use esignsp_api::error::{ApiError, PROBLEM_JSON};

pub use forms::{content_disposition, multipart_form};
pub use json::{process_json, result_body};
pub use pades::{pades_sign, pades_signer, pades_signs};
pub use paths::path_id;
pub use tokens::{authorization, jwt, query_string};

/// A fuzz target's check.
pub type Check = fn(&[u8]);

/// Every target: its name (the file `fuzz/fuzz_targets/<name>.rs`, the folders
/// `fuzz/corpus/<name>/` and `fuzz/regressions/<name>/`) and its check.
pub const TARGETS: [(&str, Check); 9] = [
    ("result_body", result_body),
    ("process_json", process_json),
    ("multipart_form", multipart_form),
    ("content_disposition", content_disposition),
    ("authorization", authorization),
    ("query_string", query_string),
    ("jwt", jwt),
    ("path_id", path_id),
    ("pades_sign", pades_sign),
];

/// A refused input must be answered with a 4xx RFC 9457 problem document of one of
/// `statuses`, never a 5xx: `error` is the parser's own error, answered through [`ApiError`].
fn assert_client_error(error: impl Into<ApiError>, statuses: &[u16], input: &str) {
    let error = error.into();
    let status = error.status_code().as_u16();
    assert!(statuses.contains(&status), "{input}: refused with {status} ({error:?}), expected one of {statuses:?}");
    let response = error.error_response();
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some(PROBLEM_JSON), "{input}: a problem document");
}

/// Runs a future to its end on this thread's runtime (the checks are single-threaded, as
/// libFuzzer calls them).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    }
    RUNTIME.with(|rt| rt.block_on(future))
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
