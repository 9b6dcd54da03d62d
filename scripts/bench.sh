#!/usr/bin/env bash
# Measures esignsp's hot path against PostgreSQL's own limit on this machine (see
# docs/PERFORMANCE.md): PUT …/result at 32 and 256 connections, at 10^4 and 10^6 stored
# processes, beside pgbench running the service's own PUT statements at the same concurrency;
# GET …/result and O1 with a 100 KiB PDF; peak memory and CPU time per request; peak memory
# with 256 concurrent uploads of 1 MiB and of 10 MiB documents.
#
# PostgreSQL: a private cluster of this machine's PostgreSQL (initdb in a temporary directory,
# default settings but max_connections above the largest C, so pgbench runs at the same
# concurrency as the service); BENCH_DATABASE_URL=postgres://… uses that server instead.
# Options (environment): SCALES="10000 1000000", CONCURRENCY="32 256", PUTS=10000 (a round's
# requests, at most half of the scale), ROUNDS=3 (service and pgbench alternate; the table
# shows medians), POOL (the service's database.max_connections; default its own default),
# SIGNING=0 (leave out scripts/bench-signing.sh, the signing throughput rows), GROUP_COMMIT=false
# (the service without its group commit, database.group_commit), UPLOAD_MIB="1 10" (the document
# sizes of the upload memory rows; UPLOADS=0 leaves them out).
#
# PUT rows: the service (group commit on, its default) against pgbench running the service's
# single-request statements (`PUT result`: PostgreSQL's per-transaction limit) and against
# pgbench running the group commit's batch statements with the mean batch size the service
# made in that round (`PUT vs batch`, pgbench's rps = its tps × the batch size, with C clients
# or fewer, so that each takes 4 batches at least).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
ensure_build_tools && ensure_postgres
command -v pgbench >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq postgresql-contrib >/dev/null; }

SCALES=${SCALES:-"10000 1000000"}
CONCURRENCY=${CONCURRENCY:-"32 256"}
PUTS=${PUTS:-10000}
ROUNDS=${ROUNDS:-3}
# The `profiling` profile: release code with symbols and line tables, so `perf record` on the
# running service (or the load generator) names functions and lines.
cargo build --profile profiling --locked --bin esignsp --bin esignsp-load --bin esignsp-pgbench-script >&2
bin=target/profiling

work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pid= pgdir=
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
cleanup() {
  stop
  [ -n "$pgdir" ] && as_postgres "$pgbin/pg_ctl" -D "$pgdir" -m immediate stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

max_c=$(printf '%s\n' $CONCURRENCY | sort -n | tail -1)
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "${BENCH_DATABASE_URL:-}" ] && [ -x "$pgbin/initdb" ]; then
  pgdir=$work/pg pgport=$(free_port)
  mkdir -p "$pgdir" && chmod 755 "$work" && { [ "$(id -u)" != 0 ] || chown postgres "$pgdir"; }
  as_postgres "$pgbin/initdb" -D "$pgdir" -U postgres -A trust >/dev/null
  as_postgres "$pgbin/pg_ctl" -D "$pgdir" -l "$pgdir/log" -w start \
    -o "-p $pgport -k $pgdir -c listen_addresses=127.0.0.1 -c max_connections=$((max_c + 50))" >/dev/null
  admin_url="postgres://postgres@127.0.0.1:$pgport/postgres"
else
  admin_url=${BENCH_DATABASE_URL:-$DATABASE_URL}
fi
db=esignsp_bench
url="$(DATABASE_URL=$admin_url url_with_database $db)"
port=$(free_port)
base="http://127.0.0.1:$port/trustedx-resources/esignsp/v2"
export ESIGNSP__SERVER__PORT=$port ESIGNSP__SERVER__DATA_DIR=$work ESIGNSP__DATABASE__URL=$url ESIGNSP__LOG__LEVEL=warn
[ -n "${POOL:-}" ] && export ESIGNSP__DATABASE__MAX_CONNECTIONS=$POOL
[ -n "${GROUP_COMMIT:-}" ] && export ESIGNSP__DATABASE__GROUP_COMMIT=$GROUP_COMMIT
unset ESIGNSP_CONFIG
start() {
  $bin/esignsp serve >>"$work/service.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "esignsp did not start" >&2; exit 1
}
service_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
TIMEFORMAT='%U %S'
# Runs "$@" (stdout to $work/out); prints its user + system CPU seconds.
cpu_of() { { time "$@" >"$work/out" 2>/dev/null; } 2>&1 | awk '{print $1 + $2}'; }
json() { python3 -c "import json,sys; print(json.load(open('$work/out'))$1)"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
calc() { python3 -c "print(f'{$1:$2}')"; }
row() { printf '%-8s %-18s %4s %9s %9s %9s %10s %10s %9s\n' "$@"; }

# The statements of one PUT on the service's optimistic path, taken from the code
# (esignsp_adapters::postgres::sql), each pgbench client taking pending processes of its own.
$bin/esignsp-pgbench-script > "$work/put.sql"

# The service's group commit counter (0 without one).
group_counter() {
  curl -fs "http://127.0.0.1:$port/metrics" | awk -v name="esignsp_group_commit_$1_total" '$1 == name {print $2; f = 1} END {if (!f) print 0}'
}

# One round's PUTs from the service (ids of $work/ids) and from pgbench (the other half);
# they alternate which goes first.
run_service() {
  local t0 b0 r0
  t0=$(service_ticks) b0=$(group_counter batches) r0=$(group_counter requests)
  load_cpu=$(calc "$load_cpu + $(cpu_of $bin/esignsp-load --base "$base" --operation put-result \
    --concurrency "$c" --requests "$n" --token "$token" --ids "$work/ids")" .3f)
  ticks=$(( ticks + $(service_ticks) - t0 ))
  [ "$(json '["statuses"]')" = "{'200': $n}" ] || { echo "PUT answers: $(cat "$work/out")" >&2; exit 1; }
  svc_rps+=("$(json '["rps"]')") svc_p99+=("$(json '["p99_ms"]')")
  local batches=$(( $(group_counter batches) - b0 )) requests=$(( $(group_counter requests) - r0 ))
  batch_size=$([ "$batches" -gt 0 ] && calc "$requests / $batches" .1f || echo 1)
  svc_batch+=("$batch_size")
}
# pgbench on the group commit's batch statements, batches of the service's last mean size, on
# the same processes as run_pgbench (pending again first).
run_pgbench_batched() {
  local b
  b=$(calc "max(1, round($batch_size))" .0f)
  psql "$url" -qc "UPDATE signer_processes SET result_status = NULL, result_message = NULL, result_at = NULL
    WHERE result_status IS NOT NULL" -c "VACUUM ANALYZE signer_processes"
  $bin/esignsp-pgbench-script --batch "$b" > "$work/put-batch.sql"
  # As many clients as the service's connections, while each still gets 4 batches of the round's
  # processes (C = 256 with batches of 60 leaves fewer clients).
  local clients=$(( n / (b * 4) < c ? n / (b * 4) : c ))
  clients=$(( clients > 0 ? clients : 1 )) batch_clients=$clients
  pgbench -n -M prepared -c "$clients" -j 2 -t $(( n / clients / b > 0 ? n / clients / b : 1 )) -D lo=$((half + 1)) \
    -D clients="$clients" -D i=0 -f "$work/put-batch.sql" -l --log-prefix="$work/pgb" "$url" >"$work/out" 2>&1 \
    || { echo "pgbench (batch $b): $(cat "$work/out")" >&2; exit 1; }
  pgbb_rps+=("$(awk -v b="$b" '/^tps/ {print $3 * b; exit}' "$work/out")")
  pgbb_p99+=("$(cat "$work"/pgb.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int(NR * 0.99)] / 1000}')")
  rm -f "$work"/pgb.*
}
run_pgbench() {
  pgb_cpu=$(calc "$pgb_cpu + $(cpu_of pgbench -n -M prepared -c "$c" -j 2 -t $((n / c)) -D lo=$((half + 1)) \
    -D clients="$c" -D i=0 -f "$work/put.sql" -l --log-prefix="$work/pgb" "$url")" .3f)
  pgb_tps+=("$(awk '/^tps/ {print $3; exit}' "$work/out")")
  pgb_p99+=("$(cat "$work"/pgb.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int(NR * 0.99)] / 1000}')")
  rm -f "$work"/pgb.*
}

declare -A put_median upload_peak
echo
row scale operation C "svc rps" "pgb rps" "rps ratio" "svc p99ms" "pgb p99ms" "p99 ratio"
for scale in $SCALES; do
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  psql "$admin_url" -qc "CREATE DATABASE $db" >/dev/null
  $bin/esignsp migrate >/dev/null
  # Bulk load (not through the API): scale pending processes, ids derived from their number.
  psql "$url" -qc "INSERT INTO signer_processes (id, client_id, task_id, process_type, request, created_at, expires_at)
    SELECT substr(md5(n::text) || md5(n::text || 'x'), 1, 32), 'bench', substr(md5(n::text || 't'), 1, 32),
           'urn:safelayer:eidas:processes:document:sign:esigp', '{}', now(), now() + interval '10 days'
    FROM generate_series(1, $scale) AS n" -c "VACUUM ANALYZE signer_processes"
  half=$((scale / 2))
  n=$(( PUTS < half ? PUTS : half ))
  psql "$url" -Atc "SELECT substr(md5(n::text) || md5(n::text || 'x'), 1, 32) FROM generate_series(1, $n) AS n" > "$work/ids"
  start
  token=$($bin/esignsp token --client-id bench --ttl 86400)
  for c in $CONCURRENCY; do
    svc_rps=() svc_p99=() pgb_tps=() pgb_p99=() svc_batch=() pgbb_rps=() pgbb_p99=() load_cpu=0 pgb_cpu=0 ticks=0
    echo 5 > "/proc/$pid/clear_refs" 2>/dev/null || true   # resets the peak (VmHWM) for the PUT phase
    for round in $(seq 1 "$ROUNDS"); do
      # Every round starts from the same state: the processes of the last round pending again.
      psql "$url" -qc "UPDATE signer_processes SET result_status = NULL, result_message = NULL, result_at = NULL
        WHERE result_status IS NOT NULL" -c "VACUUM ANALYZE signer_processes"
      if [ $((round % 2)) = 1 ]; then run_service; run_pgbench; else run_pgbench; run_service; fi
      run_pgbench_batched
      echo "round $round scale $scale C $c: service $(calc "${svc_rps[-1]}" .0f) rps p99 ${svc_p99[-1]} ms" \
        "(mean batch ${svc_batch[-1]});" "pgbench $(calc "${pgb_tps[-1]}" .0f) tps p99 ${pgb_p99[-1]} ms;" \
        "pgbench batched $(calc "${pgbb_rps[-1]}" .0f) rps p99 ${pgbb_p99[-1]} ms ($batch_clients clients)" >> "$work/rounds"
    done
    s=$(median "${svc_rps[@]}") p=$(median "${pgb_tps[@]}") sp=$(median "${svc_p99[@]}") pp=$(median "${pgb_p99[@]}")
    put_median[$scale,$c]=$s
    row "$scale" "PUT result" "$c" "$(calc "$s" .0f)" "$(calc "$p" .0f)" "$(calc "$s / $p" .2f)" "$sp" "$pp" "$(calc "$sp / $pp" .2f)"
    bb=$(median "${pgbb_rps[@]}") bp=$(median "${pgbb_p99[@]}")
    row "$scale" "PUT vs batch $(median "${svc_batch[@]}")" "$c" "$(calc "$s" .0f)" "$(calc "$bb" .0f)" "$(calc "$s / $bb" .2f)" "$sp" "$bp" "$(calc "$sp / $bp" .2f)"
    {
      echo "peak_rss_mib_put_${scale}_${c}=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status")"
      echo "cpu_ms_per_put_${scale}_${c}: service $(calc "$ticks * 1000 / $(getconf CLK_TCK) / ($n * $ROUNDS)" .3f)," \
        "load generator $(calc "$load_cpu * 1000 / ($n * $ROUNDS)" .3f), pgbench client $(calc "$pgb_cpu * 1000 / ($n * $ROUNDS)" .3f)"
    } >> "$work/cpu"
    cpu_of $bin/esignsp-load --base "$base" --operation get-result --concurrency "$c" --requests "$n" \
      --token "$token" --ids "$work/ids" >/dev/null
    row "$scale" "GET result" "$c" "$(json '["rps"]' | cut -d. -f1)" - - "$(json '["p99_ms"]')" - -
    cpu_of $bin/esignsp-load --base "$base" --operation create --concurrency "$c" --requests $(( n / 4 )) \
      --token "$token" --pdf-bytes 102400 >/dev/null
    row "$scale" "O1 100KiB" "$c" "$(json '["rps"]' | cut -d. -f1)" - - "$(json '["p99_ms"]')" - -
  done
  echo "peak_rss_mib_whole_run_${scale}=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status")" >> "$work/cpu"
  stop
done
# Memory with 256 concurrent uploads (O1) of UPLOAD_MIB documents (default "1 10"), each size on
# a service of its own, so that its peak (VmHWM) is that phase's: documents go to the store in
# chunks as they arrive, so the peak must not grow with their size. UPLOADS=0 leaves it out.
upload_rows=()
if [ "${UPLOADS:-1}" != 0 ]; then
  $bin/esignsp migrate >/dev/null
  for mib in ${UPLOAD_MIB:-1 10}; do
    export ESIGNSP__SERVER__BODY_TIMEOUT_SECONDS=600
    start
    unset ESIGNSP__SERVER__BODY_TIMEOUT_SECONDS
    idle=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
    token=$($bin/esignsp token --client-id bench --ttl 86400)
    requests=$(( mib >= 10 ? 256 : 512 ))
    $bin/esignsp-load --base "$base" --operation create --concurrency 256 --requests "$requests" \
      --token "$token" --pdf-bytes $(( mib * 1024 * 1024 )) --timeout-seconds 600 > "$work/out"
    [ "$(json '["statuses"]')" = "{'201': $requests}" ] || { echo "O1 ${mib} MiB answers: $(cat "$work/out")" >&2; exit 1; }
    peak=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
    upload_rows+=("$(printf '%-8s %-18s %4s %9s %10s %12s %14s' "-" "O1 ${mib}MiB" 256 "$(json '["rps"]' | cut -d. -f1)" \
      "$(json '["p99_ms"]')" "$idle" "$peak")")
    upload_peak[$mib]=$peak
    stop
    psql "$url" -qc "TRUNCATE signer_processes, documents CASCADE" >/dev/null
  done
  echo
  printf '%-8s %-18s %4s %9s %10s %12s %14s\n' scale operation C "svc rps" "svc p99ms" "idle RSS MiB" "peak RSS MiB"
  printf '%s\n' "${upload_rows[@]}"
  sizes=(${UPLOAD_MIB:-1 10})
  [ "${#sizes[@]}" -gt 1 ] && echo "peak RSS with ${sizes[-1]} MiB documents / with ${sizes[0]} MiB: $(calc "${upload_peak[${sizes[-1]}]} / ${upload_peak[${sizes[0]}]}" .2f)"
fi

scales=($SCALES)
if [ "${#scales[@]}" -gt 1 ]; then
  first=${scales[0]} last=${scales[-1]}
  for c in $CONCURRENCY; do
    echo "PUT rps at $last stored processes / at $first, C $c: $(calc "${put_median[$last,$c]} / ${put_median[$first,$c]}" .2f)"
  done
fi
echo
cat "$work/cpu"
echo
cat "$work/rounds"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
  "PostgreSQL $(psql "$admin_url" -Atc 'show server_version') ($([ -n "$pgdir" ] && echo "private cluster, max_connections $((max_c + 50))" || echo "$admin_url"))," \
  "service pool ${POOL:-default (16)}, rounds: $ROUNDS of $n PUTs each (table: medians of each column)"
echo
# Signing throughput against the machine's limit and pyHanko (SIGNING=0 leaves it out).
[ "${SIGNING:-1}" = 0 ] || bash scripts/bench-signing.sh
