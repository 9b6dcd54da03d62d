//! Adapters of esignsp: PostgreSQL and embedded SQLite persistence (sqlx), JWT access-token
//! verification (jsonwebtoken), the system clock and the CSPRNG id source.

mod claims;
pub mod introspection;
pub mod jwks;
pub mod jwt;
pub mod postgres;
mod queries;
pub mod redact;
pub mod sqlite;
pub mod store;
mod stored;
pub mod system;
