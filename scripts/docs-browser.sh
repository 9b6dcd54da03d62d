#!/usr/bin/env bash
# Loads /docs of the live service (the debug binary that `cargo test` built, on a throw-away
# SQLite store) in a real headless browser, Debian's chromium, with every network request but
# loopback blocked, and checks that
#   * the rendered page shows every operation of the OpenAPI document, and
#   * the browser asked for nothing outside the service (its network log lists every URL).
# So /docs works offline and in a locked-down deployment: no CDN, no web font, no badge.
# Installs chromium with apt when it is missing (Debian, as root). ESIGNSP_BIN picks another
# binary (e.g. an older build, to see the check fail).
set -euo pipefail
cd "$(dirname "$0")/.."

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  [ "$(id -u)" = 0 ] || { echo "esignsp: chromium is required (apt-get install chromium)" >&2; exit 1; }
  echo "esignsp: installing chromium with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
  browser=$(command -v chromium)
fi
command -v curl >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
port=$(free_port)
dead=$(free_port) # nothing listens here: the proxy every non-loopback request is sent to
# The page is opened under a host name (resolved to loopback by the browser alone), as a real
# deployment would be: some UIs only fetch outside assets when not served from localhost.
host=esignsp.test
export ESIGNSP__SERVER__PORT=$port ESIGNSP__SERVER__PUBLIC_URL=http://$host:$port ESIGNSP__SERVER__DATA_DIR=$work
export ESIGNSP__DATABASE__URL=sqlite://$work/esignsp.db ESIGNSP__LOG__LEVEL=warn
unset ESIGNSP_CONFIG
"${ESIGNSP_BIN:-target/debug/esignsp}" serve > "$work/service.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/openapi.json" -o "$work/openapi.json"

# Blocked network: names other than $host do not resolve, and every request that is not to
# loopback or $host goes to a proxy port where nothing listens (this also stops IP literals).
"$browser" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --disable-default-apps --disable-extensions \
  --disable-features=AutofillServerCommunication,Translate,OptimizationHints,MediaRouter \
  --user-data-dir="$work/profile" \
  --host-resolver-rules="MAP $host 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
  --proxy-server="http://127.0.0.1:$dead" --proxy-bypass-list="127.0.0.1;$host" \
  --log-net-log="$work/netlog.json" \
  --virtual-time-budget=20000 --dump-dom "http://$host:$port/docs" > "$work/dom.html" 2> "$work/chromium.log" || {
  echo "esignsp: chromium failed:" >&2; cat "$work/chromium.log" >&2; exit 1
}

python3 - "$work/openapi.json" "$work/dom.html" "$work/netlog.json" "$host:$port" <<'EOF'
"""The rendered DOM shows every operation; the network log has no request outside the service."""
import html
import json
import re
import sys
import urllib.parse

doc = json.load(open(sys.argv[1]))
dom = open(sys.argv[2], encoding="utf-8", errors="replace").read()
origin = sys.argv[4]
failures = []

operations = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
# Swagger UI renders one `opblock` per operation, with its method and path as text.
shown = {
    (m.upper(), html.unescape(re.sub(r"<[^>]+>|\u200b", "", p)).strip())
    for m, p in re.findall(
        r'opblock-summary-method">\s*([A-Za-z]+)\s*<.*?data-path="([^"]*)"', dom, flags=re.S
    )
}
missing = sorted(operations - shown)
if missing:
    failures.append(f"{len(missing)} of {len(operations)} operations not rendered, e.g. {missing[:3]}")

# The NetLog: every request the browser started, with the site it was made for and who asked.
# The page's own (scripts, styles, fonts, images, XHR, frames) are made for the page's site by
# an origin; the browser's own pings (updates, accounts, autofill) have no origin as initiator.
netlog = json.load(open(sys.argv[3], encoding="utf-8", errors="replace"))
start_job = netlog["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
site = "http://" + origin.split(":")[0]
requests = [e.get("params", {}) for e in netlog["events"] if e["type"] == start_job]
urls = {
    r.get("url", "")
    for r in requests
    if r.get("network_isolation_key", "").startswith(site + " ")
    and (r.get("initiator", "not an origin") != "not an origin" or r.get("request_type") == "main frame")
}
outside = sorted(u for u in urls if urllib.parse.urlsplit(u).netloc != origin)
if outside:
    failures.append(f"the page asked for {len(outside)} outside URL(s): {outside[:5]}")

if failures:
    print("esignsp: /docs in a browser without network: FAILED", *failures, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"/docs in headless chromium without network: {len(shown)} operations rendered, "
      f"{len(urls)} URL(s) requested by the page, none outside the service")
EOF
