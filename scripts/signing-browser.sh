#!/usr/bin/env bash
# The built-in signing page in a real browser (SPEC §10, issue #14 item 6): runs the live
# service (the debug binary that `cargo test` built, development set-up on a throw-away SQLite
# store, so its development signing identity is generated on start), creates two processes
# with the three-page docs/examples/contract.pdf, and drives Debian's chromium with Playwright
# (tests/browser, npm):
#   * process 1, JavaScript on: Sign → lands on the callback with status=finished; the
#     document downloaded with O10 validates in pdfsig and pyHanko against the generated
#     development CA, and qpdf --check accepts it;
#   * process 2, JavaScript off: Decline → lands with status=canceled.
# KEEP=1 keeps the work directory (screenshots, logs, the signed PDF).
# Installs chromium (apt) and playwright-core (npm ci) when missing (Debian, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  [ "$(id -u)" = 0 ] || { echo "esignsp: chromium is required (apt-get install chromium)" >&2; exit 1; }
  echo "esignsp: installing chromium with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
  browser=$(command -v chromium)
fi
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
port=$(free_port)
bin=${ESIGNSP_BIN:-$PWD/target/debug/esignsp}
export ESIGNSP__SERVER__PORT=$port ESIGNSP__SERVER__DATA_DIR=$work ESIGNSP__DATABASE__URL=sqlite://$work/esignsp.db
export ESIGNSP__LOG__LEVEL=warn
unset ESIGNSP_CONFIG DATABASE_URL
(cd "$work" && exec "$bin" serve) > "$work/service.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
for _ in $(seq 1 150); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
grep -q "DEVELOPMENT SIGNING IDENTITY" "$work/service.log" || {
  echo "esignsp: the development set-up did not announce its signing identity:" >&2; cat "$work/service.log" >&2; exit 1
}
token=$(cd "$work" && "$bin" token --client-id relying-app)
base=http://127.0.0.1:$port/trustedx-resources/esignsp/v2
# The relying application's landing page: the service's own /healthz stands in for it.
callback="http://127.0.0.1:$port/healthz?relying=app"
echo '{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","finish_callback_url":"'"$callback"'"}' > "$work/process.json"
create() {
  curl -fsS -H "Authorization: Bearer $token" -F "process=@$work/process.json" \
    -F "document=@docs/examples/contract.pdf;type=application/pdf" "$base/signer_processes" > "$work/$1.json"
}
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }
create p1
create p2

node tests/browser/signing.mjs "$browser" "$(json "$work/p1.json" 'd["tasks"]["pending"][0]["url"]')" sign finished "$work/page.png" "$callback"
NO_JS=1 node tests/browser/signing.mjs "$browser" "$(json "$work/p2.json" 'd["tasks"]["pending"][0]["url"]')" decline canceled "$work/page2.png" "$callback"

# The signed document, as the relying application downloads it.
document=$(json "$work/p1.json" 'd["documents"][0]["id"]')
curl -fsS -H "Authorization: Bearer $token" "$base/documents/$document/content" -o "$work/signed.pdf"
cmp -s docs/examples/contract.pdf "$work/signed.pdf" && { echo "esignsp: the downloaded document is not signed" >&2; exit 1; }
ca=$work/dev-signing-ca.pem
qpdf --check "$work/signed.pdf" | grep -q "No syntax or stream encoding errors found"
mkdir "$work/nss"
certutil -N --empty-password -d "sql:$work/nss"
certutil -A -d "sql:$work/nss" -n "esignsp development CA" -t "CT,C,C" -i "$ca"
pdfsig -nssdir "sql:$work/nss" "$work/signed.pdf" | tee "$work/pdfsig.txt"
grep -q "Signature Validation: Signature is Valid." "$work/pdfsig.txt"
grep -q "Certificate Validation: Certificate is Trusted." "$work/pdfsig.txt"
grep -q "Total document signed" "$work/pdfsig.txt"
"$VENV/bin/pyhanko" sign validate --pretty-print --trust "$ca" --trust-replace "$work/signed.pdf" | tee "$work/pyhanko.txt" | tail -3
grep -q "The signature is judged VALID." "$work/pyhanko.txt"
decline=$(json "$work/p2.json" 'd["id"]')
curl -fsS -H "Authorization: Bearer $token" "$base/signer_processes/$decline/result" | tee "$work/declined.json"; echo
grep -q '"declined by the signer"' "$work/declined.json"
echo "signing page in headless chromium: Sign → finished, the downloaded PDF validates in pdfsig and pyHanko; Decline (no JavaScript) → canceled"
