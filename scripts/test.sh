#!/usr/bin/env bash
# Runs every test of esignsp: formatting, lints, unit and property tests, the repository
# conformance suite and the HTTP tests against a real PostgreSQL (found at DATABASE_URL, or
# installed and started) and against the embedded SQLite store; the PAdES signer at every level
# against a certomancer PKI, validated by pdfsig, pyHanko and qpdf; the signing page in chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
. scripts/venv.sh
. scripts/pki.sh

ensure_build_tools || { echo "esignsp: cargo is required" >&2; exit 1; }
ensure_postgres || exit 1
# pgbouncer in transaction pooling mode, started by the HTTP tests in front of PostgreSQL.
ensure_pgbouncer || exit 1
# The independent validators of the PAdES signer's tests (crates/adapters/tests/pades*.rs):
# poppler's pdfsig with NSS's certutil for its trust store, and qpdf; pyHanko is in .venv.
# openssl makes the key files of tests/pades_keys.rs (encrypted PKCS#8, PKCS#12).
ensure_apt_tools pdfsig:poppler-utils qpdf:qpdf certutil:libnss3-tools openssl:openssl || exit 1
ensure_venv scripts/requirements.txt || exit 1
echo "esignsp: testing against $(echo "$DATABASE_URL" | sed -E 's#://([^:@/]*):[^@]*@#://\1:***@#')"

drop_test_databases() {
  psql "$DATABASE_URL" -Atqc "select datname from pg_database where datname like 'esignsp\_test\_%'" 2>/dev/null |
    while read -r db; do
      psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
drop_test_databases
trap 'drop_test_databases; stop_test_pki' EXIT
# The test PKI of the PAdES level tests (certomancer: CA, TSA, OCSP, CRLs), stopped on exit.
start_test_pki || exit 1

# The real authorization server of the end-to-end tests: oidc-provider, with Node.js and npm.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
(cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --no-fail-fast
# The HTTP suite once more against the embedded SQLite store (a fresh file per test).
ESIGNSP_TEST_DATABASE=sqlite cargo test -p esignsp-api --test http --locked --no-fail-fast
# The live service against its own OpenAPI document, and the container files.
bash scripts/schemathesis.sh
# /docs in a real browser (Debian's chromium) with the network blocked.
bash scripts/docs-browser.sh
# The built-in signing page in a real browser (chromium driven by Playwright): Sign → the
# downloaded PDF validates in pdfsig and pyHanko; Decline without JavaScript → canceled.
bash scripts/signing-browser.sh
"$VENV/bin/python" scripts/check_container.py
