#!/usr/bin/env bash
# Runs schemathesis against the live service (the debug binary that `cargo test` built) with a
# valid token: no server errors, no response that breaks the OpenAPI document. Also validates
# the document itself. Sourced environment: DATABASE_URL (a reachable PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v curl >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; }
. scripts/venv.sh
ensure_venv scripts/requirements.txt
st_bin=$VENV/bin/st

work=$(mktemp -d)
database=esignsp_test_schemathesis
psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null
psql "$DATABASE_URL" -qc "CREATE DATABASE $database" >/dev/null
url=${DATABASE_URL%%\?*}; url="${url%/*}/$database"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export ESIGNSP__SERVER__PORT=$port ESIGNSP__SERVER__PUBLIC_URL=http://127.0.0.1:$port ESIGNSP__SERVER__DATA_DIR=$work
export ESIGNSP__DATABASE__URL=$url ESIGNSP__LOG__LEVEL=warn
unset ESIGNSP_CONFIG
target/debug/esignsp serve > "$work/service.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/openapi.json" -o "$work/openapi.json"
"$VENV/bin/python" -c "import json,sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('openapi.json: valid OpenAPI', json.load(open(sys.argv[1]))['openapi'])" "$work/openapi.json"
token=$(target/debug/esignsp token --client-id schemathesis)
"$st_bin" --config-file scripts/schemathesis.toml run "http://127.0.0.1:$port/openapi.json" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,response_schema_conformance,content_type_conformance \
  --max-examples 25 --request-timeout 20 --seed 1
# What the generated requests reached, from the service's own metrics: the id-taking operations
# must see real ids (OpenAPI links from O1's 201 response, followed in the stateful phase), not
# only 404. 200/409 on PUT …/result means the process existed.
curl -fs "http://127.0.0.1:$port/metrics" -o "$work/metrics.txt"
"$VENV/bin/python" - "$work/metrics.txt" <<'PY'
import collections, re, sys
counts = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    m = re.match(r'esignsp_http_requests_total\{method="(\w+)",route="([^"]+)",status="(\d+)"\} (\d+)', line)
    if m:
        counts[f"{m[1]} {m[2]}"][m[3]] += int(m[4])
for op in sorted(counts):
    print(f"  {op}: " + ", ".join(f"{s}×{n}" for s, n in sorted(counts[op].items())))
put = counts.get("PUT /trustedx-resources/esignsp/v2/signer_processes/{id}/result", collections.Counter())
existing = put["200"] + put["409"]
print(f"PUT …/result: {sum(put.values())} requests, {existing} with an existing process id (200/409)")
if existing == 0:
    sys.exit("schemathesis never reached PUT …/result with an existing process id")
PY
if grep -q '"level":"ERROR"\|ERROR' "$work/service.log" && grep -q 'panicked' "$work/service.log"; then
  echo "esignsp panicked under schemathesis:" >&2; cat "$work/service.log" >&2; exit 1
fi
