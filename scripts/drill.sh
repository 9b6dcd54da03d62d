#!/usr/bin/env bash
# Durability drill (docs/PERFORMANCE.md): kill -9 the service during a PUT load, restart it,
# and check that every result acknowledged with 200 is stored; then two replicas on one
# database with conflicting PUTs: exactly one winner per process; then, on a private
# PostgreSQL cluster (initdb on another port, as scripts/bench.sh makes it), a column type
# changed under load (`column-type`) and a 30 s outage (`outage`); then a full disk under the
# SQLite store on a tmpfs (`full-disk`; `scripts/drill.sh full-disk` runs only that one).
# Then the webhook drills on the private cluster (`webhooks`, SPEC §11): kill -9 during a burst
# of results, the receiver down for a while, two replicas, PostgreSQL restarted while
# deliveries are pending — every committed result delivered, nothing uncommitted, duplicates
# only with the same webhook-id, every signature verified by the standardwebhooks package.
# DRILLS="kill-9 replicas column-type outage full-disk webhooks" (the default) chooses the drills;
# ESIGNSP_BIN runs the private-cluster drills with another build of the service (say, an
# older one, to compare).
set -euo pipefail
cd "$(dirname "$0")/.."

# Full-disk drill (issue 12, item 3): the SQLite store on a small tmpfs. Fill the file system
# under a write load, free it, fill it again; check that a full disk answers 507 (never 500),
# that /readyz reports it, that writes work again as soon as there is space without a restart,
# and that every acknowledged write is stored and nothing is half-written. Needs root (mount).
# Self-contained: `scripts/drill.sh full-disk` runs only this step.
full_disk_drill() {
  local bin=${ESIGNSP_BIN:-target/release/esignsp}
  local fs data port pid token
  fs=$(mktemp -d /tmp/esignsp-full-disk.XXXXXX)
  mount -t tmpfs -o size=32m tmpfs "$fs"
  data=$fs/data
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # Only this step's own variables: a development set-up with SQLite in the tmpfs.
  local -a env=(env -u ESIGNSP_CONFIG -u DATABASE_URL -u ESIGNSP__DATABASE__URL
    ESIGNSP__SERVER__DATA_DIR="$data" ESIGNSP__SERVER__PORT="$port" ESIGNSP__LOG__LEVEL=warn
    ESIGNSP__PROCESSES__SWEEP_INTERVAL_SECONDS=0)
  "${env[@]}" "$bin" serve >"$fs.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  token=$("${env[@]}" "$bin" token --client-id drill --ttl 3600)
  local status=0
  python3 - "$port" "$token" "$fs" "$data/esignsp.db" "$pid" <<'PY' || status=$?
import collections, concurrent.futures, http.client, json, os, sqlite3, subprocess, sys, time
port, token, fs, db, pid = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
base = "/trustedx-resources/esignsp/v2"
pdf = b"%PDF-1.7\n" + b"%" * (48 * 1024)
boundary = "drillboundary"
form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"process\"\r\nContent-Type: application/json\r\n\r\n"
        '{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp"}\r\n'
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"document\"; filename=\"d.pdf\"\r\n"
        "Content-Type: application/pdf\r\n\r\n").encode() + pdf + f"\r\n--{boundary}--\r\n".encode()

def call(method, path, body=None, content_type=None, auth=True):
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    headers = {"Authorization": f"Bearer {token}"} if auth else {}
    if content_type:
        headers["Content-Type"] = content_type
    try:
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        return r.status, r.getheader("Content-Type", ""), data
    except Exception:
        return 0, "", b""
    finally:
        c.close()

def create(_):
    s, ct, data = call("POST", base + "/signer_processes", form, f"multipart/form-data; boundary={boundary}")
    return ("create", s, ct, json.loads(data)["id"] if s == 201 else None)

def put(pid_):
    s, ct, _ = call("PUT", f"{base}/signer_processes/{pid_}/result", b'{"status":"finished"}', "application/json")
    return ("put", s, ct, pid_ if s == 200 else None)

def readyz():
    s, _, data = call("GET", "/readyz", auth=False)
    return s, (json.loads(data).get("detail", "") if data[:1] == b"{" else "")

created, finished, pending = [], [], collections.deque()
totals = collections.Counter()
bad_bodies = 0

def phase(name, creates, puts):
    global bad_bodies
    codes = collections.Counter()
    jobs = [("c", i) for i in range(creates)]
    for _ in range(min(puts, len(pending))):
        jobs.append(("p", pending.popleft()))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for kind, s, ct, acked in pool.map(lambda j: create(j[1]) if j[0] == "c" else put(j[1]), jobs):
            codes[f"{kind} {s}"] += 1
            totals[s] += 1
            if s >= 500 and "application/problem+json" not in ct:
                bad_bodies += 1
            if acked and kind == "create":
                created.append(acked); pending.append(acked)
            elif acked:
                finished.append(acked)
    for kind, pid_ in jobs:
        if kind == "p" and pid_ not in finished:
            pending.append(pid_)
    ready = readyz()
    print(f"  {name}: {len(jobs)} requests: {dict(sorted(codes.items()))}; /readyz {ready[0]} {ready[1]!r}")
    return codes, ready

def fill():
    with open(os.path.join(fs, "filler"), "ab") as f:
        try:
            while True:
                f.write(b"\0" * 65536); f.flush()
        except OSError:
            pass
        try:
            os.fsync(f.fileno())
        except OSError:
            pass
    st = os.statvfs(fs)
    return st.f_bavail * st.f_frsize

def free():
    os.remove(os.path.join(fs, "filler"))

ok = True
print("full-disk drill (SQLite on a 32 MiB tmpfs, 48 KiB documents, 8 concurrent clients):")
phase("warm-up", 20, 0)
for round_ in (1, 2):
    left = fill()
    print(f"  round {round_}: file system filled ({left} bytes left)")
    codes, ready = phase(f"round {round_}, full", 60, 20)
    ok &= ready[0] == 503
    ok &= not any(k.endswith(" 500") for k in codes)
    free()
    time.sleep(0.2)
    codes, ready = phase(f"round {round_}, space freed", 20, 20)
    ok &= ready[0] == 200
    ok &= codes["create 201"] == 20 and codes["put 200"] == sum(v for k, v in codes.items() if k.startswith("put "))
    ok &= not any(int(k.split()[1]) >= 500 for k in codes)
subprocess.run(["kill", "-TERM", str(pid)])
for _ in range(100):
    if subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0:
        break
    time.sleep(0.1)
con = sqlite3.connect(db)
stored = {r[0] for r in con.execute("SELECT id FROM signer_processes")}
results = {r[0] for r in con.execute("SELECT id FROM signer_processes WHERE result_status = 'finished'")}
lost = [i for i in created if i not in stored] + [i for i in finished if i not in results]
half = con.execute("""SELECT
    (SELECT count(*) FROM signer_processes p WHERE NOT EXISTS (SELECT 1 FROM process_documents d WHERE d.process_id = p.id))
  + (SELECT count(*) FROM signer_processes p WHERE NOT EXISTS (SELECT 1 FROM process_events e WHERE e.process_id = p.id AND e.kind = 'created'))
  + (SELECT count(*) FROM signer_processes p WHERE result_status IS NOT NULL AND NOT EXISTS (SELECT 1 FROM process_events e WHERE e.process_id = p.id AND e.kind = 'result'))
  + (SELECT count(*) FROM documents d WHERE NOT EXISTS (SELECT 1 FROM document_contents c WHERE c.document_id = d.id))
  + (SELECT count(*) FROM documents d WHERE NOT EXISTS (SELECT 1 FROM process_documents p WHERE p.document_id = d.id))""").fetchone()[0]
integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
five = {k: v for k, v in sorted(totals.items()) if k >= 500 or k == 0}
print(f"  total {sum(totals.values())} requests, 5xx by code {five}, 5xx without a problem document {bad_bodies}")
print(f"  acknowledged: {len(created)} creates, {len(finished)} results; stored: {len(stored)} processes, "
      f"{len(results)} results; lost {len(lost)}; half-written rows {half}; integrity_check {integrity}")
ok &= not lost and half == 0 and integrity == "ok" and bad_bodies == 0 and 0 not in totals
sys.exit(0 if ok else 1)
PY
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if grep -q "transaction depth\|panicked" "$fs.log"; then echo "  service log:"; grep -m3 "transaction depth\|panicked" "$fs.log"; status=1; fi
  umount "$fs" && rmdir "$fs" && rm -f "$fs.log"
  [ "$status" = 0 ] && echo "full-disk drill passed" || { echo "full-disk drill FAILED"; return 1; }
}

if [ "${1:-}" = full-disk ]; then
  cargo build --release --locked --bin esignsp >&2
  full_disk_drill
  exit
fi

. scripts/postgres.sh
ensure_build_tools && ensure_postgres
cargo build --release --locked --bin esignsp --bin esignsp-load >&2

work=$(mktemp -d)
want() { case " ${DRILLS:-kill-9 replicas column-type outage full-disk webhooks} " in *" $1 "*) return 0 ;; esac; return 1; }
db=esignsp_drill
psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
psql "$DATABASE_URL" -qc "CREATE DATABASE $db" >/dev/null
url="$(url_with_database $db)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export ESIGNSP__SERVER__DATA_DIR=$work ESIGNSP__DATABASE__URL=$url ESIGNSP__LOG__LEVEL=warn
# The webhook drills' receiver is a plain-HTTP process on 127.0.0.1, and their retry schedule
# is seconds (1 s, 4 s, then 5 s) instead of the production minutes to hours.
export ESIGNSP__WEBHOOKS__ALLOW_INSECURE=true ESIGNSP__WEBHOOKS__ALLOW_PRIVATE_TARGETS=true \
  ESIGNSP__WEBHOOKS__POLL_INTERVAL_MS=100 ESIGNSP__WEBHOOKS__RETRY_INITIAL_DELAY_SECONDS=1 \
  ESIGNSP__WEBHOOKS__RETRY_MAX_DELAY_SECONDS=5 ESIGNSP__WEBHOOKS__MAX_ATTEMPTS=20 ESIGNSP__WEBHOOKS__CONCURRENCY=64
unset ESIGNSP_CONFIG
pids=()
pgdir=
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  [ -z "$pgdir" ] || cluster stop 2>/dev/null || true
}
trap cleanup EXIT
serve() { # port -> pid
  ESIGNSP__SERVER__PORT=$1 "${ESIGNSP_BIN:-target/release/esignsp}" serve >>"$work/service.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "$pid"
}
if want kill-9 || want replicas; then
target/release/esignsp migrate >/dev/null
n=20000
psql "$url" -qc "INSERT INTO signer_processes (id, client_id, task_id, process_type, request, created_at, expires_at)
  SELECT substr(md5(n::text) || md5(n::text || 'x'), 1, 32), 'drill', substr(md5(n::text || 't'), 1, 32),
         'urn:safelayer:eidas:processes:document:sign:esigp', '{}', now(), now() + interval '1 day'
  FROM generate_series(1, $n) AS n"
psql "$url" -Atc "SELECT substr(md5(n::text) || md5(n::text || 'x'), 1, 32) FROM generate_series(1, $n / 2) AS n" > "$work/ids"
psql "$url" -Atc "SELECT substr(md5(n::text) || md5(n::text || 'x'), 1, 32) FROM generate_series($n / 2 + 1, $n) AS n" > "$work/ids2"

fi

# kill -9s the service (pid $3, on port $1) once it has established $2 results (read off
# /metrics: whatever the service's speed, the kill falls in the middle of the load), at most
# after 10 s.
kill_when_established() {
  local established
  for _ in $(seq 1 200); do
    established=$(curl -fs "http://127.0.0.1:$1/metrics" 2>/dev/null \
      | awk '/^esignsp_results_established_total\{/ {n += $2} END {print n + 0}')
    [ "${established:-0}" -ge "$2" ] && break
    sleep 0.05
  done
  kill -9 "$3"
}

# 1. kill -9 during a PUT load.
if want kill-9; then
port=$(free_port)
pid=$(serve "$port"); pids+=("$pid")
token=$(ESIGNSP__SERVER__PORT=$port target/release/esignsp token --client-id drill --ttl 3600)
target/release/esignsp-load --base "http://127.0.0.1:$port/trustedx-resources/esignsp/v2" --operation put-result \
  --concurrency 64 --requests $((n / 2)) --token "$token" --ids "$work/ids" --acknowledged "$work/acked" > "$work/load.json" &
load=$!
# Kill once a quarter of the PUTs are established, so that many are in flight.
kill_when_established "$port" $((n / 8)) "$pid"
wait "$load" || true
pid=$(serve "$port"); pids+=("$pid")
acked=$(grep -c . "$work/acked" || true)
[ "$acked" -lt $((n / 2)) ] || { echo "kill -9 drill: the load ended before the kill (nothing in flight)" >&2; exit 1; }
psql "$url" -qc "CREATE TEMP TABLE acked (id text)" -c "\\copy acked FROM '$work/acked'" \
  -Atc "SELECT count(*) FROM acked a JOIN signer_processes p USING (id) WHERE p.result_status = 'finished'" > "$work/stored" 2>/dev/null \
  || psql "$url" -Atc "SELECT 0" > "$work/stored"
stored=$(tail -1 "$work/stored")
echo "kill -9 drill: acknowledged $acked, stored $stored, lost $((acked - stored))"
[ "$acked" -gt 0 ] && [ "$acked" = "$stored" ]
fi

# 2. Two replicas, conflicting PUTs on the same processes.
if want replicas; then
[ -n "${port:-}" ] || { port=$(free_port); pid=$(serve "$port"); pids+=("$pid"); }
token=$(ESIGNSP__SERVER__PORT=$port target/release/esignsp token --client-id drill --ttl 3600)
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
fi

# --- Drills on a private PostgreSQL cluster (they stop it and change its schema). ---
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cluster() { # start | stop (immediate: like a crash)
  case $1 in
    start) as_postgres "$pgbin/pg_ctl" -D "$pgdir" -l "$pgdir/log" -w start \
             -o "-p $pgport -k $pgdir -c listen_addresses=127.0.0.1" >/dev/null ;;
    stop) as_postgres "$pgbin/pg_ctl" -D "$pgdir" -m immediate stop >/dev/null ;;
  esac
}
# Creates and starts the cluster once; sets purl to a migrated database with $n pending
# processes (ids of line k: process k, in $work/pids).
private_cluster() {
  [ -z "$pgdir" ] || return 0
  pgdir=$work/pg pgport=$(free_port) n=20000
  mkdir -p "$pgdir" && chmod 755 "$work" && { [ "$(id -u)" != 0 ] || chown postgres "$pgdir"; }
  as_postgres "$pgbin/initdb" -D "$pgdir" -U postgres -A trust >/dev/null
  cluster start
  purl="postgres://postgres@127.0.0.1:$pgport/postgres"
  ESIGNSP__DATABASE__URL=$purl target/release/esignsp migrate >/dev/null
  psql "$purl" -qc "INSERT INTO signer_processes (id, client_id, task_id, process_type, request, created_at, expires_at)
    SELECT substr(md5(n::text) || md5(n::text || 'x'), 1, 32), 'drill', substr(md5(n::text || 't'), 1, 32),
           'urn:safelayer:eidas:processes:document:sign:esigp', '{}', now(), now() + interval '1 day'
    FROM generate_series(1, $n) AS n"
  psql "$purl" -Atc "SELECT substr(md5(n::text) || md5(n::text || 'x'), 1, 32) FROM generate_series(1, $n) AS n" > "$work/pids"
  pport=$(free_port)
  ppid=$(ESIGNSP__DATABASE__URL=$purl serve "$pport"); pids+=("$ppid")
  ptoken=$(ESIGNSP__SERVER__PORT=$pport target/release/esignsp token --client-id drill --ttl 3600)
}
# Runs esignsp-load on the private cluster's service: operation, concurrency, requests, ids
# lines from-to; acknowledged ids are appended to $work/packed. Prints its JSON line.
pload() {
  sed -n "$4,$5p" "$work/pids" > "$work/slice"
  target/release/esignsp-load --base "http://127.0.0.1:$pport/trustedx-resources/esignsp/v2" --operation "$1" \
    --concurrency "$2" --requests "$3" --token "$ptoken" --ids "$work/slice" --acknowledged "$work/ack1"
  if [ "$1" = put-result ]; then cat "$work/ack1" >> "$work/packed"; echo >> "$work/packed"; fi
}
# Statuses of JSON lines (stdin) summed: {"200": 123, "503": 4}.
statuses() { python3 -c 'import json,sys,collections
c=collections.Counter()
for l in sys.stdin:
    l=l.strip()
    if l: c.update({k: v for k, v in json.loads(l)["statuses"].items()})
print(dict(sorted(c.items())))'; }
# Acknowledged (200) PUTs and how many of them are stored as finished.
acked_vs_stored() {
  grep -v '^$' "$work/packed" | sort -u > "$work/packed.u" || true
  local acked stored
  acked=$(grep -c . "$work/packed.u" || true)
  stored=$(psql "$purl" -qAt -c "CREATE TEMP TABLE a (id text)" -c "\\copy a FROM '$work/packed.u'" \
    -c "SELECT count(*) FROM a JOIN signer_processes p USING (id) WHERE p.result_status = 'finished'" | tail -1)
  echo "acknowledged $acked, stored $stored"
  [ "$acked" = "$stored" ]
}

# 3. ALTER COLUMN … TYPE on the live database: statements cached before it must not fail
# for ever (`cached plan must not change result type`).
column_type_drill() {
  private_cluster
  : > "$work/packed"
  pload put-result 32 2000 1 2000 > "$work/ct"                 # every connection prepares its statements
  pload get-result 32 2000 1 2000 >> "$work/ct"
  pload put-result 32 6000 2001 8000 > "$work/ct-during" &
  local load=$!
  sleep 0.5
  psql "$purl" -qc "ALTER TABLE signer_processes ALTER COLUMN result_message TYPE varchar(2000)"
  wait "$load" || true
  pload get-result 32 6000 1 8000 > "$work/ct-after"
  pload put-result 32 4000 8001 12000 >> "$work/ct-after"
  echo "column type drill: before the ALTER $(statuses < "$work/ct"); PUTs during it $(statuses < "$work/ct-during");" \
    "GET and PUT after it $(statuses < "$work/ct-after"); $(acked_vs_stored)"
  [ "$(statuses < "$work/ct-after")" = "{'200': 10000}" ]
}

# 4. PostgreSQL down for 30 s under a PUT load: 503 at once (not after acquire_timeout) while
# it is down, then recovery without a restart of the service.
outage_drill() {
  private_cluster
  : > "$work/packed"
  pload put-result 32 2000 12001 14000 > "$work/out-before"
  cluster stop
  local start=$SECONDS from=14001
  : > "$work/out-during"
  while [ $((SECONDS - start)) -lt 30 ]; do
    pload put-result 32 320 "$from" $((from + 319)) >> "$work/out-during"
    from=$((from + 320)); [ "$from" -lt 19000 ] || from=14001
  done
  local window=$((SECONDS - start))
  cluster start
  local t0 ready=""
  t0=$(date +%s.%N)
  for _ in $(seq 1 300); do
    if curl -fs "http://127.0.0.1:$pport/readyz" >/dev/null 2>&1; then ready=$(date +%s.%N); break; fi
    sleep 0.1
  done
  pload put-result 32 1000 19001 20000 > "$work/out-after"
  python3 - "$work/out-during" "$window" <<'PY' > "$work/out-figures"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
requests = sum(l["requests"] for l in lines)
print(f"{requests} requests in {sys.argv[2]} s ({requests / float(sys.argv[2]):.0f}/s),",
      f"p50 {max(l['p50_ms'] for l in lines):.1f} ms, p99 {max(l['p99_ms'] for l in lines):.1f} ms (worst batch)")
PY
  echo "outage drill: before $(statuses < "$work/out-before"); during 30 s down $(statuses < "$work/out-during")," \
    "$(cat "$work/out-figures"); ready again $([ -n "$ready" ] && python3 -c "print(f'{$ready - $t0:.1f}')" || echo never) s" \
    "after PostgreSQL restarted; then $(statuses < "$work/out-after"); $(acked_vs_stored)"
  [ -n "$ready" ] && [ "$(statuses < "$work/out-after")" = "{'200': 1000}" ]
}

# 5. Webhooks (SPEC §11) on the private cluster: processes of client `whdrill`, one endpoint
# subscribed to results, a real receiver (scripts/webhook_receiver.py) that verifies each
# delivery with the standardwebhooks package and logs it to $work/wh.log across restarts.
webhook_drills() {
  private_cluster
  . scripts/venv.sh
  ensure_venv scripts/requirements.txt >&2
  local rport rpid wport wtoken secret m=4300
  psql "$purl" -qc "INSERT INTO signer_processes (id, client_id, task_id, process_type, request, created_at, expires_at)
    SELECT substr(md5('w' || n) || md5('wx' || n), 1, 32), 'whdrill', substr(md5('wt' || n), 1, 32),
           'urn:safelayer:eidas:processes:document:sign:esigp', '{}', now(), now() + interval '1 day'
    FROM generate_series(1, $m) AS n"
  psql "$purl" -Atc "SELECT substr(md5('w' || n) || md5('wx' || n), 1, 32) FROM generate_series(1, $m) AS n" > "$work/wids"
  rport=$(free_port)
  receiver() { "$VENV/bin/python" scripts/webhook_receiver.py --port "$rport" --log "$work/wh.log" --secret "$secret" >/dev/null & rpid=$!; pids+=("$rpid"); sleep 0.5; }
  wtoken=$(ESIGNSP__SERVER__PORT=$pport target/release/esignsp token --client-id whdrill --ttl 3600)
  secret=$(curl -fsS -X POST -H "Authorization: Bearer $wtoken" -H 'Content-Type: application/json' \
    -d "{\"url\":\"http://127.0.0.1:$rport/hook\",\"events\":[\"signer_process.result\"]}" \
    "http://127.0.0.1:$pport/trustedx-resources/esignsp/v2/webhook_endpoints" | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
  receiver
  wload() { # port concurrency from to ack-file
    sed -n "$3,$4p" "$work/wids" > "$work/wslice"
    target/release/esignsp-load --base "http://127.0.0.1:$1/trustedx-resources/esignsp/v2" --operation put-result \
      --concurrency "$2" --requests $(($4 - $3 + 1)) --token "$wtoken" --ids "$work/wslice" --acknowledged "$5" >/dev/null || true
  }
  pending() { psql "$purl" -Atc "SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'"; }
  drain() { # seconds: waits until every delivery is delivered
    for _ in $(seq 1 $(($1 * 10))); do [ "$(pending)" = 0 ] && return 0; sleep 0.1; done
    echo "  deliveries still not delivered after $1 s: $(pending)"; return 1
  }
  # (a) kill -9 during a burst of 3000 results.
  wload "$pport" 64 1 3000 "$work/wa" &
  local load=$!
  kill_when_established "$pport" 750 "$ppid"
  wait "$load" || true
  ppid=$(ESIGNSP__DATABASE__URL=$purl serve "$pport"); pids+=("$ppid")
  drain 60
  # (b) the receiver down for 12 s while 500 results are established, then up.
  kill "$rpid"; wait "$rpid" 2>/dev/null || true
  local down_at=$SECONDS
  wload "$pport" 32 3001 3500 "$work/wb"
  sleep $((12 - (SECONDS - down_at) > 0 ? 12 - (SECONDS - down_at) : 0))
  receiver
  drain 60
  # (c) two replicas on one database, conflicting results on 300 processes.
  wport=$(free_port)
  local wpid; wpid=$(ESIGNSP__DATABASE__URL=$purl serve "$wport"); pids+=("$wpid")
  sed -n "3501,3800p" "$work/wids" > "$work/wc-ids"
  : > "$work/wc"
  while read -r id; do
    for target in "$pport:finished" "$wport:failed"; do
      curl -s -o /dev/null -w "%{http_code} $id\n" -X PUT -H "Authorization: Bearer $wtoken" -H 'Content-Type: application/json' \
        -d "{\"status\":\"${target##*:}\"}" "http://127.0.0.1:${target%%:*}/trustedx-resources/esignsp/v2/signer_processes/$id/result" >> "$work/wc" &
    done
  done < "$work/wc-ids"
  wait_for_curls() { while [ "$(jobs -rp | wc -l)" -gt 0 ]; do sleep 0.1; done; }
  sleep 2
  drain 60
  # (d) PostgreSQL restarted while 500 deliveries are pending (the receiver down meanwhile).
  kill "$rpid"; wait "$rpid" 2>/dev/null || true
  wload "$pport" 32 3801 4300 "$work/wd"
  sleep 2
  cluster stop
  receiver
  sleep 5
  cluster start
  drain 90
  kill "$wpid" 2>/dev/null || true
  local metrics; metrics=$(curl -fs "http://127.0.0.1:$pport/metrics" | grep '^esignsp_webhook' | tr '\n' ' ')
  psql "$purl" -AtF $'\t' -c "SELECT p.id, p.result_status FROM signer_processes p WHERE p.client_id = 'whdrill' AND p.result_status IS NOT NULL" > "$work/wcommitted"
  psql "$purl" -AtF $'\t' -c "SELECT d.process_id, a.attempt, extract(epoch FROM a.at), coalesce(a.error, '') FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id ORDER BY d.id, a.attempt" > "$work/wattempts"
  python3 - "$work" "$metrics" <<'PY'
import collections, json, sys
work, metrics = sys.argv[1], sys.argv[2]
ids = [l.strip() for l in open(f"{work}/wids")]
committed = dict(l.rstrip("\n").split("\t") for l in open(f"{work}/wcommitted") if l.strip())
def acked(name):
    try:
        return {l.strip() for l in open(f"{work}/{name}") if l.strip()}
    except FileNotFoundError:
        return set()
a, b, d = acked("wa"), acked("wb"), acked("wd")
c_codes = [l.split() for l in open(f"{work}/wc") if l.strip()]
c_ids = set(ids[3500:3800])
c_wins = collections.Counter(i for code, i in c_codes if code == "200")
received = [json.loads(l) for l in open(f"{work}/wh.log") if l.strip()]
ok_received = [r for r in received if r["status"] == 204]
unverified = [r for r in received if r["verified"] != [True]]
by_process = collections.defaultdict(set)
receipts = collections.Counter()
for r in ok_received:
    pid = json.loads(r["body"])["data"]["signer_process_id"]
    by_process[pid].add(r["id"])
    receipts[pid] += 1
delivered = set(by_process)
lost = set(committed) - delivered
phantom = delivered - set(committed)
multi_id = [p for p, s in by_process.items() if len(s) != 1]
duplicates = sum(n - 1 for n in receipts.values())
unacked_lost = (a | b | d) - set(committed)
# (b): the retry schedule of the deliveries made while the receiver was down.
attempts = collections.defaultdict(list)
for l in open(f"{work}/wattempts"):
    pid, n, at, err = l.rstrip("\n").split("\t")
    attempts[pid].append((int(n), float(at), err))
b_ids = set(ids[3000:3500]) & set(committed)
gaps = []
for pid in b_ids:
    tries = sorted(attempts[pid])
    for (n1, t1, e1), (n2, t2, _) in zip(tries, tries[1:]):
        if e1:
            base = min(1 * 4 ** (n1 - 1), 5)
            gaps.append((t2 - t1) / base)
b_tries = [len(attempts[p]) for p in b_ids]
print(f"webhook drills: {len(committed)} results committed, {len(delivered)} delivered (lost {len(lost)},"
      f" delivered but not committed {len(phantom)}), {len(ok_received)} deliveries received,"
      f" {duplicates} duplicates, processes with more than one webhook-id {len(multi_id)},"
      f" unverified signatures {len(unverified)} of {len(received)} requests")
print(f"  (a) kill -9 in a burst: {len(a)} acknowledged, {len(a - set(committed))} of them not stored")
print(f"  (b) receiver down 12 s: {len(b)} results, attempts per delivery {min(b_tries, default=0)}-{max(b_tries, default=0)},"
      f" retry waits / schedule {min(gaps, default=0):.2f}-{max(gaps, default=0):.2f} (jitter ±20 % plus the poll interval)")
print(f"  (c) two replicas: {len(c_ids)} processes, {sum(1 for i in c_ids if c_wins[i] == 1)} with exactly one 200,"
      f" {sum(1 for i in c_ids if i in delivered)} delivered, {sum(1 for i in c_ids if len(by_process.get(i, ())) == 1)} with one webhook-id")
print(f"  (d) PostgreSQL restarted with deliveries pending: {len(d)} results, {len(d & delivered)} delivered")
print(f"  metrics: {metrics}")
ok = (not lost and not phantom and not multi_id and not unverified and not unacked_lost and len(a) > 0
      and all(c_wins[i] == 1 for i in c_ids) and c_ids <= delivered and len(b) == 500 and len(d) == 500
      and min(b_tries, default=0) >= 3 and min(gaps, default=1) >= 0.75)
sys.exit(0 if ok else 1)
PY
}

if want column-type; then column_type_drill; fi
if want outage; then outage_drill; fi
if want webhooks; then webhook_drills; fi
if want full-disk; then full_disk_drill; fi
echo "drill passed"
