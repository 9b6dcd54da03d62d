#!/usr/bin/env bash
# Measures esignsp's hot path against PostgreSQL's own limit on this machine (see
# docs/PERFORMANCE.md): PUT …/result, GET …/result and O1 with a 100 KiB PDF at 32 and 256
# connections, at 10^4 and 10^6 stored processes, beside pgbench running the service's own PUT
# statements at the same concurrency; then peak memory and CPU time per request.
# Options (environment): SCALES="10000 1000000", CONCURRENCY="32 256", PUTS=4000.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
ensure_build_tools && ensure_postgres
command -v pgbench >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq postgresql-contrib >/dev/null; }

SCALES=${SCALES:-"10000 1000000"}
CONCURRENCY=${CONCURRENCY:-"32 256"}
PUTS=${PUTS:-4000}
cargo build --release --locked --bin esignsp --bin esignsp-load >&2

work=$(mktemp -d)
db=esignsp_bench
url="$(url_with_database $db)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port/trustedx-resources/esignsp/v2"
export ESIGNSP__SERVER__PORT=$port ESIGNSP__SERVER__DATA_DIR=$work ESIGNSP__DATABASE__URL=$url ESIGNSP__LOG__LEVEL=warn
unset ESIGNSP_CONFIG
pid=
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
trap stop EXIT
start() {
  target/release/esignsp serve >>"$work/service.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "esignsp did not start" >&2; exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

# The PUT of the service, statement for statement (crates/adapters/src/postgres.rs: lock_state
# and write_result), on processes without documents, against ids the service does not use.
cat > "$work/put.sql" <<'SQL'
\set n random(:lo, :hi)
BEGIN;
SELECT p.result_status, p.result_message, p.expires_at, ARRAY(SELECT pd.document_id FROM process_documents pd WHERE pd.process_id = p.id ORDER BY pd.position) AS doc_ids, ARRAY(SELECT pd.result_status FROM process_documents pd WHERE pd.process_id = p.id ORDER BY pd.position) AS doc_statuses, ARRAY(SELECT pd.result_message FROM process_documents pd WHERE pd.process_id = p.id ORDER BY pd.position) AS doc_messages FROM signer_processes p WHERE p.id = substr(md5(:n::text) || md5(:n::text || 'x'), 1, 32) AND (p.client_id = 'bench' OR false) FOR UPDATE OF p;
WITH p AS (UPDATE signer_processes SET result_status = 'finished', result_message = 'bench', result_at = now() WHERE id = substr(md5(:n::text) || md5(:n::text || 'x'), 1, 32)), d AS (UPDATE process_documents pd SET result_status = u.status, result_message = u.message FROM unnest('{}'::text[], '{}'::text[], '{}'::text[]) AS u(document_id, status, message) WHERE pd.process_id = substr(md5(:n::text) || md5(:n::text || 'x'), 1, 32) AND pd.document_id = u.document_id AND pd.result_status IS NULL) INSERT INTO process_events (process_id, kind, actor, request_id, old_status, new_status) VALUES (substr(md5(:n::text) || md5(:n::text || 'x'), 1, 32), 'result', 'bench', 'pgbench', NULL, 'finished');
COMMIT;
SQL

p99_of_pgbench_log() { cat "$work"/pgb.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int(NR*0.99)] / 1000}'; rm -f "$work"/pgb.*; }
row() { printf '%-10s %-12s %5s %10s %10s %10s %10s %10s %8s\n' "$@"; }

echo
row scale operation C "svc rps" "pgb rps" "rps ratio" "svc p99ms" "pgb p99ms" "p99 ratio"
for scale in $SCALES; do
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  psql "$DATABASE_URL" -qc "CREATE DATABASE $db" >/dev/null
  target/release/esignsp migrate >/dev/null
  # Bulk load (not through the API): scale pending processes, ids derived from their number.
  psql "$url" -qc "INSERT INTO signer_processes (id, client_id, task_id, process_type, request, created_at, expires_at)
    SELECT substr(md5(n::text) || md5(n::text || 'x'), 1, 32), 'bench', substr(md5(n::text || 't'), 1, 32),
           'urn:safelayer:eidas:processes:document:sign:esigp', '{}', now(), now() + interval '10 days'
    FROM generate_series(1, $scale) AS n; ANALYZE signer_processes;"
  half=$((scale / 2))
  psql "$url" -Atc "SELECT substr(md5(n::text) || md5(n::text || 'x'), 1, 32) FROM generate_series(1, $half) AS n" > "$work/ids"
  start
  token=$(target/release/esignsp token --client-id bench --ttl 86400)
  offset=0
  for c in $CONCURRENCY; do
    n=$(( PUTS < half / 2 ? PUTS : half / 2 ))
    sed -n "$((offset + 1)),$((offset + n))p" "$work/ids" > "$work/put-ids"; offset=$((offset + n))
    echo 5 > "/proc/$pid/clear_refs" 2>/dev/null || true   # resets the peak (VmHWM) for the PUT phase
    t0=$(cpu_ticks)
    svc=$(target/release/esignsp-load --base "$base" --operation put-result --concurrency "$c" --requests "$n" --token "$token" --ids "$work/put-ids")
    t1=$(cpu_ticks)
    echo "peak_rss_mib_put_${scale}_${c}=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status")" >> "$work/cpu"
    # pgbench opens one server connection per client: PostgreSQL's max_connections caps it.
    maxc=$(( $(psql "$DATABASE_URL" -Atc 'show max_connections') - 20 ))
    pc=$(( c < maxc ? c : maxc ))
    pgb=$(pgbench -n -M prepared -c "$pc" -j 2 -t $(( (n + pc - 1) / pc )) -D lo=$((half + 1)) -D hi="$scale" -f "$work/put.sql" -l --log-prefix="$work/pgb" "$url" 2>/dev/null)
    pgb_tps=$(echo "$pgb" | awk '/^tps/ {print $3; exit}')
    pgb_p99=$(p99_of_pgbench_log)
    svc_rps=$(echo "$svc" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["rps"]))')
    svc_p99=$(echo "$svc" | python3 -c 'import json,sys; print(json.load(sys.stdin)["p99_ms"])')
    [ "$pc" = "$c" ] || echo "(pgbench at $pc clients: max_connections)"
    row "$scale" "PUT result" "$c" "$svc_rps" "${pgb_tps%.*}" "$(python3 -c "print(f'{$svc_rps/$pgb_tps:.2f}')")" "$svc_p99" "$pgb_p99" "$(python3 -c "print(f'{$svc_p99/$pgb_p99:.2f}')")"
    echo "$svc" > "$work/put-$scale-$c.json"
    echo "cpu_ms_per_put_${scale}_${c}=$(python3 -c "print(f'{($t1-$t0)*1000/$(getconf CLK_TCK)/$n:.3f}')")" >> "$work/cpu"
    svc=$(target/release/esignsp-load --base "$base" --operation get-result --concurrency "$c" --requests "$n" --token "$token" --ids "$work/put-ids")
    row "$scale" "GET result" "$c" "$(echo "$svc" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["rps"]))')" - - "$(echo "$svc" | python3 -c 'import json,sys; print(json.load(sys.stdin)["p99_ms"])')" - -
    svc=$(target/release/esignsp-load --base "$base" --operation create --concurrency "$c" --requests $(( n / 4 )) --token "$token" --pdf-bytes 102400)
    row "$scale" "O1 100KiB" "$c" "$(echo "$svc" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["rps"]))')" - - "$(echo "$svc" | python3 -c 'import json,sys; print(json.load(sys.stdin)["p99_ms"])')" - -
  done
  echo "peak_rss_mib_whole_run_${scale}=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status")" >> "$work/cpu"
  stop
done
echo
cat "$work/cpu"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(psql "$DATABASE_URL" -Atc 'show server_version') PostgreSQL"
psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
