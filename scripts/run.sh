#!/usr/bin/env bash
# Runs esignsp for development against local PostgreSQL: finds (or installs and starts)
# PostgreSQL, builds the release binary, creates a development signing key and
# configuration in .esignsp-dev/ on first use, then serves on http://127.0.0.1:8080.
# Extra arguments go to `esignsp serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh

ensure_build_tools || { echo "esignsp: cargo is required" >&2; exit 1; }
ensure_postgres || exit 1
ensure_database esignsp
cargo build --release --locked --bin esignsp

dev=.esignsp-dev
mkdir -p "$dev"
[ -f "$dev/dev-key.pem" ] || target/release/esignsp keygen --out "$dev/dev-key.pem" >/dev/null
if [ ! -f "$dev/esignsp.toml" ]; then
  cat > "$dev/esignsp.toml" <<TOML
# Development configuration written by scripts/run.sh. Not for production.
[server]
host = "127.0.0.1"
port = 8080
public_url = "http://127.0.0.1:8080"

[database]
url = "$(url_with_database esignsp)"

[auth]
issuer = "https://esignsp.dev.invalid"
audience = ["esignsp"]
dev_signing_key_file = "$PWD/$dev/dev-key.pem"
trusted_clients = ["signing-app"]

[ui]
# Where the browser task URL sends users while a process is pending (a placeholder here).
signing_app_url = "https://signing-app.example/start"
TOML
fi

echo "esignsp: DEVELOPMENT set-up (dev signing key in $dev/). Mint a token with:" >&2
echo "  ESIGNSP_CONFIG=$dev/esignsp.toml target/release/esignsp token --client-id relying-app" >&2
exec target/release/esignsp serve --config "$dev/esignsp.toml" "$@"
