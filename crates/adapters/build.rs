//! Rebuilds the adapters crate when a migration changes (they are embedded by `sqlx::migrate!`).
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
    println!("cargo:rerun-if-changed=../../migrations-sqlite");
}
