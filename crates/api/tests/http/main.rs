//! HTTP tier: the real application on a real port against a real PostgreSQL database,
//! called with real signed tokens.

mod authorization;
mod bad_input;
mod browser;
mod common;
mod compat;
mod config;
mod database;
mod documents;
mod expiry;
mod framing;
mod oidc;
mod openapi;
mod operations;
mod processes;
mod result;
mod signer_login;
mod signing;
mod webhooks;
