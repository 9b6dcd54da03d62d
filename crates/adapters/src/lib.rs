//! Adapters of esignsp: PostgreSQL and embedded SQLite persistence (sqlx), JWT access-token
//! verification (jsonwebtoken), the system clock and the CSPRNG id source, and the PAdES
//! document signer ([`pades`]).
//!
//! Token verification depends one way: [`keys`] and [`http`] (over [`redact`]) at the bottom,
//! [`jwks`] (keys, http) and [`introspection`] (http, claims) above them, [`jwt`] (the
//! verifier: keys, claims, jwks, introspection) on top.

mod claims;
pub mod http;
pub mod introspection;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod pades;
pub mod postgres;
mod queries;
pub mod redact;
pub mod sqlite;
pub mod store;
mod stored;
pub mod system;
mod webhook_store;
pub mod webhooks;
