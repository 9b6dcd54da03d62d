#!/usr/bin/env bash
# Runs esignsp for development on http://127.0.0.1:8080.
#
# Store: PostgreSQL when DATABASE_URL is set (installed and started with apt when absent, as
# root) or when a local PostgreSQL answers at postgres://postgres@127.0.0.1:5432/postgres —
# in both cases in its database `esignsp`; otherwise the embedded SQLite file
# .esignsp-dev/esignsp.db, with nothing to install.
# Authorization: the development set-up — a signing key generated in .esignsp-dev/ that
# `esignsp token` uses too. Signing: the built-in signing page with a development CA and
# signing certificate generated in .esignsp-dev/ (never trusted by anyone else). Extra
# arguments go to `esignsp serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
explicit_database=${DATABASE_URL:-}
. scripts/postgres.sh

ensure_build_tools || { echo "esignsp: cargo is required" >&2; exit 1; }
if [ -n "$explicit_database" ] || pg_answers "$DATABASE_URL"; then
  ensure_postgres || exit 1
  ensure_database esignsp
  ESIGNSP__DATABASE__URL=$(url_with_database esignsp)
  export ESIGNSP__DATABASE__URL
  echo "esignsp: store: PostgreSQL, database esignsp" >&2
else
  unset DATABASE_URL
  echo "esignsp: store: embedded SQLite in .esignsp-dev/esignsp.db (set DATABASE_URL for PostgreSQL)" >&2
fi
cargo build --release --locked --bin esignsp
# The binary where cargo put it (CARGO_TARGET_DIR, when set, moves it).
bin=${CARGO_TARGET_DIR:-target}/release/esignsp

dev=.esignsp-dev
mkdir -p "$dev"
# The port: ESIGNSP_PORT (or ESIGNSP__SERVER__PORT), 8080 by default; the links follow it.
port=${ESIGNSP_PORT:-${ESIGNSP__SERVER__PORT:-8080}}
cat > "$dev/esignsp.toml" <<TOML
# Development configuration, rewritten by scripts/run.sh on every start. Not for production:
# with no auth.issuer and no keys, esignsp accepts tokens signed by the key it generates in
# server.data_dir (mint them with \`esignsp token\`).
[server]
host = "127.0.0.1"
port = $port
public_url = "http://127.0.0.1:$port"
data_dir = "$PWD/$dev"

[auth]
trusted_clients = ["signing-app"]

# No [ui] signing_app_url: the task URL opens the built-in signing page, which signs with the
# development signing identity generated in server.data_dir (its CA: dev-signing-ca.pem).
[signing]
level = "B-B"
TOML

echo "esignsp: mint a token with: ESIGNSP_CONFIG=$dev/esignsp.toml $bin token --client-id relying-app" >&2
ESIGNSP_CONFIG=$dev/esignsp.toml exec "$bin" serve "$@"
