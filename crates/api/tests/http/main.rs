//! HTTP tier: the real application on a real port against a real PostgreSQL database,
//! called with real signed tokens.

mod authorization;
mod bad_input;
mod common;
mod processes;
mod result;
