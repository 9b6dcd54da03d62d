//! Adapters of esignsp: PostgreSQL persistence (sqlx) and JWT access-token verification
//! (jsonwebtoken), plus the system clock and the CSPRNG id source.

pub mod jwt;
pub mod postgres;
pub mod system;
