#!/usr/bin/env bash
# Durability drill (docs/PERFORMANCE.md): kill -9 the service during a PUT load, restart it,
# and check that every result acknowledged with 200 is stored; then two replicas on one
# database with conflicting PUTs: exactly one winner per process.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
ensure_build_tools && ensure_postgres
cargo build --release --locked --bin esignsp --bin esignsp-load >&2

work=$(mktemp -d)
db=esignsp_drill
psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
psql "$DATABASE_URL" -qc "CREATE DATABASE $db" >/dev/null
url="$(url_with_database $db)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export ESIGNSP__SERVER__DATA_DIR=$work ESIGNSP__DATABASE__URL=$url ESIGNSP__LOG__LEVEL=warn
unset ESIGNSP_CONFIG
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; }
trap cleanup EXIT
serve() { # port -> pid
  ESIGNSP__SERVER__PORT=$1 target/release/esignsp serve >>"$work/service.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "$pid"
}
target/release/esignsp migrate >/dev/null
n=20000
psql "$url" -qc "INSERT INTO signer_processes (id, client_id, task_id, process_type, request, created_at, expires_at)
  SELECT substr(md5(n::text) || md5(n::text || 'x'), 1, 32), 'drill', substr(md5(n::text || 't'), 1, 32),
         'urn:safelayer:eidas:processes:document:sign:esigp', '{}', now(), now() + interval '1 day'
  FROM generate_series(1, $n) AS n"
psql "$url" -Atc "SELECT substr(md5(n::text) || md5(n::text || 'x'), 1, 32) FROM generate_series(1, $n / 2) AS n" > "$work/ids"
psql "$url" -Atc "SELECT substr(md5(n::text) || md5(n::text || 'x'), 1, 32) FROM generate_series($n / 2 + 1, $n) AS n" > "$work/ids2"

# 1. kill -9 during a PUT load.
port=$(free_port)
pid=$(serve "$port"); pids+=("$pid")
token=$(ESIGNSP__SERVER__PORT=$port target/release/esignsp token --client-id drill --ttl 3600)
target/release/esignsp-load --base "http://127.0.0.1:$port/trustedx-resources/esignsp/v2" --operation put-result \
  --concurrency 64 --requests $((n / 2)) --token "$token" --ids "$work/ids" --acknowledged "$work/acked" > "$work/load.json" &
load=$!
sleep 1.5
kill -9 "$pid"
wait "$load" || true
pid=$(serve "$port"); pids+=("$pid")
acked=$(grep -c . "$work/acked" || true)
psql "$url" -qc "CREATE TEMP TABLE acked (id text)" -c "\\copy acked FROM '$work/acked'" \
  -Atc "SELECT count(*) FROM acked a JOIN signer_processes p USING (id) WHERE p.result_status = 'finished'" > "$work/stored" 2>/dev/null \
  || psql "$url" -Atc "SELECT 0" > "$work/stored"
stored=$(tail -1 "$work/stored")
echo "kill -9 drill: acknowledged $acked, stored $stored, lost $((acked - stored))"
[ "$acked" -gt 0 ] && [ "$acked" = "$stored" ]

# 2. Two replicas, conflicting PUTs on the same processes.
port2=$(free_port)
pid2=$(serve "$port2"); pids+=("$pid2")
m=300
head -n $m "$work/ids2" > "$work/conflict"
while read -r id; do
  for target in "$port:finished" "$port2:failed"; do
    p=${target%%:*}; s=${target##*:}
    curl -s -o /dev/null -w "%{http_code} $id\n" -X PUT -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d "{\"status\":\"$s\"}" "http://127.0.0.1:$p/trustedx-resources/esignsp/v2/signer_processes/$id/result" >> "$work/codes" &
  done
done < "$work/conflict"
wait
winners=$(awk '$1 == 200 {print $2}' "$work/codes" | sort | uniq -c | awk '$1 == 1' | wc -l)
conflicts=$(awk '$1 == 409' "$work/codes" | wc -l)
other=$(awk '$1 != 200 && $1 != 409' "$work/codes" | wc -l)
events=$(psql "$url" -Atc "SELECT count(*) FROM process_events WHERE kind = 'result' AND process_id IN (SELECT id FROM signer_processes WHERE id = ANY(string_to_array('$(paste -sd, "$work/conflict")', ',')))")
echo "two replicas: $m processes, $winners with exactly one 200, $conflicts 409s, $other other answers, $events result events"
[ "$winners" = "$m" ] && [ "$conflicts" = "$m" ] && [ "$other" = 0 ] && [ "$events" = "$m" ]
echo "drill passed"
