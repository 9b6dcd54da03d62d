//! HTTP API, configuration and command line of esignsp, the eSignSP v2 document signature
//! process server. The binary `esignsp` is in `main.rs`; [`startup::Application`] is the
//! composition root used by it and by the tests.

pub mod auth;
pub mod body;
pub mod cli;
pub mod config;
pub mod dto;
pub mod error;
pub mod extract;
pub mod framing;
pub mod metrics;
pub mod openapi;
pub mod panic;
pub mod request_id;
pub mod routes;
pub mod signer_login;
pub mod signing;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod webhook_worker;
