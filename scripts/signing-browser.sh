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
#   * then a second service whose signers log in with OpenID Connect
#     (signing.signer_authentication = "oidc") at oidc-provider (tests/oidc): the task URL leads
#     to the provider's login and consent forms, back to the page naming the signer; Sign →
#     finished, and pyHanko reads the signer's name as the signature's /Name.
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

# The same page with the signer's OpenID Connect login, at oidc-provider.
[ -d tests/oidc/node_modules/oidc-provider ] || (cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
op_port=$(free_port)
port2=$(free_port)
work2=$work/oidc
mkdir -p "$work2"
node tests/oidc/genkey.mjs "$work2/op-keys.json" op-1 RS256
node tests/oidc/provider.mjs "$op_port" jwt "$work2/op-keys.json" \
  "http://127.0.0.1:$port2/trustedx-resources/esignsp/v2/ui/login" > "$work2/provider.log" 2>&1 &
op_pid=$!
(cd "$work2" && ESIGNSP__SERVER__PORT=$port2 ESIGNSP__SERVER__DATA_DIR=$work2 \
  ESIGNSP__DATABASE__URL=sqlite://$work2/esignsp.db ESIGNSP__SIGNING__SIGNER_AUTHENTICATION=oidc \
  ESIGNSP__SIGNING__OIDC_ISSUER=http://127.0.0.1:$op_port ESIGNSP__SIGNING__OIDC_CLIENT_ID=signing-page \
  ESIGNSP__SIGNING__OIDC_CLIENT_SECRET=signing-page-secret exec "$bin" serve) > "$work2/service.log" 2>&1 &
pid2=$!
trap 'kill $pid $pid2 $op_pid 2>/dev/null || true; wait $pid $pid2 $op_pid 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
for _ in $(seq 1 150); do
  curl -fs "http://127.0.0.1:$port2/readyz" >/dev/null 2>&1 &&
    curl -fs "http://127.0.0.1:$op_port/.well-known/openid-configuration" >/dev/null 2>&1 && break
  sleep 0.1
done
token2=$(cd "$work2" && ESIGNSP__SERVER__DATA_DIR=$work2 "$bin" token --client-id relying-app)
base2=http://127.0.0.1:$port2/trustedx-resources/esignsp/v2
callback2="http://127.0.0.1:$port2/healthz?relying=app"
echo '{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","finish_callback_url":"'"$callback2"'"}' > "$work2/process.json"
curl -fsS -H "Authorization: Bearer $token2" -F "process=@$work2/process.json" \
  -F "document=@docs/examples/contract.pdf;type=application/pdf" "$base2/signer_processes" > "$work2/p3.json"
LOGIN=ada LOGIN_NAME="Ada Lovelace" node tests/browser/signing.mjs "$browser" \
  "$(json "$work2/p3.json" 'd["tasks"]["pending"][0]["url"]')" sign finished "$work2/page3.png" "$callback2"
document=$(json "$work2/p3.json" 'd["documents"][0]["id"]')
curl -fsS -H "Authorization: Bearer $token2" "$base2/documents/$document/content" -o "$work2/signed.pdf"
"$VENV/bin/pyhanko" sign validate --pretty-print --trust "$work2/dev-signing-ca.pem" --trust-replace "$work2/signed.pdf" \
  > "$work2/pyhanko.txt"
grep -q "The signature is judged VALID." "$work2/pyhanko.txt"
"$VENV/bin/python" scripts/pades_profile.py "$work2/signed.pdf" | tee "$work2/profile.txt"
grep -q " name=Ada Lovelace " "$work2/profile.txt"
echo "signer login in headless chromium: the provider's login and consent, the page names Ada Lovelace; Sign → finished, the signature's /Name is hers"
