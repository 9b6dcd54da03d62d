#!/usr/bin/env bash
# Signing throughput (issue #16 item 3; called at the end of scripts/bench.sh, or alone): the
# PAdES signer at B-B on a ~1 MiB multi-page PDF with an ECDSA P-256 key, on as many threads as
# the machine has cores, against
#   * the machine's limit for the same work in the same run: one SHA-256 of the PDF's bytes plus
#     one ECDSA P-256 signature per document (`openssl speed`, one core, times the cores), and
#   * pyHanko signing the same PDF with the same key in one process (scripts/bench_pyhanko_sign.py,
#     one core, times the cores: pyHanko signs on one core per process).
# Prints one table and the peak memory per concurrent signature. SIGN_SECONDS (default 10)
# sets each measurement's length.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
ensure_venv scripts/requirements.txt >&2
cargo build --profile profiling --locked -p esignsp-bench --bin esignsp-sign-bench >&2
bin=target/profiling/esignsp-sign-bench
seconds=${SIGN_SECONDS:-10}
cores=$(nproc)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$work/key.pem"
openssl req -x509 -new -key "$work/key.pem" -subj "/CN=esignsp signing benchmark" -days 2 \
  -addext "keyUsage=critical,digitalSignature,nonRepudiation" -out "$work/cert.pem" 2>/dev/null
"$bin" --make-pdf "$work/doc.pdf" --mib 1
bytes=$(stat -c %s "$work/doc.pdf")

calc() { python3 -c "print(f'{$1:$2}')"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

# The limit: SHA-256 throughput over a buffer of the PDF's size, and ECDSA P-256 signatures/s.
sha_kbps=$(openssl speed -seconds 3 -bytes "$bytes" -evp sha256 2>/dev/null | awk '/^sha256/ {sub("k", "", $2); print $2}')
sign_ps=$(openssl speed -seconds 3 ecdsap256 2>/dev/null | awk '/nistp256/ {print $(NF-1)}')
limit_one=$(calc "1 / ($bytes / ($sha_kbps * 1000) + 1 / $sign_ps)" .1f)
limit=$(calc "$limit_one * $cores" .1f)

ours=$("$bin" --pdf "$work/doc.pdf" --key "$work/key.pem" --chain "$work/cert.pem" --concurrency "$cores" --seconds "$seconds")
one=$("$bin" --pdf "$work/doc.pdf" --key "$work/key.pem" --chain "$work/cert.pem" --concurrency 1 --seconds "$seconds")
pyhanko=$("$VENV/bin/python" scripts/bench_pyhanko_sign.py "$work/key.pem" "$work/cert.pem" "$work/doc.pdf" "$seconds")

ours_ps=$(field "$ours" per_second) py_ps=$(field "$pyhanko" per_second)
printf '%-34s %12s %14s\n' "signing a $(calc "$bytes / 1048576" .2f) MiB PDF at B-B, P-256" "signatures/s" "CPU ms/signature"
printf '%-34s %12s %14s\n' "limit (openssl: SHA-256 + 1 sign) × $cores" "$limit" "$(calc "1000 / $limit_one" .3f)"
printf '%-34s %12s %14s\n' "esignsp, $cores threads" "$(calc "$ours_ps" .1f)" "$(calc "$(field "$ours" cpu_ms_per_signature)" .3f)"
printf '%-34s %12s %14s\n' "esignsp, 1 thread" "$(calc "$(field "$one" per_second)" .1f)" "$(calc "$(field "$one" cpu_ms_per_signature)" .3f)"
printf '%-34s %12s %14s\n' "pyHanko, 1 process (× $cores)" "$(calc "$py_ps" .1f) ($(calc "$py_ps * $cores" .1f))" "$(calc "$(field "$pyhanko" cpu_ms_per_signature)" .3f)"
echo "esignsp / limit: $(calc "$ours_ps / $limit" .2f) (target ≥ 0.7); esignsp / pyHanko on as many cores: $(calc "$ours_ps / ($py_ps * $cores)" .1f) (target ≥ 10)"
echo "peak RSS: $(field "$ours" peak_rss_mib) MiB with $cores concurrent signatures of a $(calc "$bytes / 1048576" .2f) MiB PDF," \
  "$(field "$one" peak_rss_mib) MiB with one: $(calc "($(field "$ours" peak_rss_mib) - $(field "$one" peak_rss_mib)) / max(1, $cores - 1) / ($bytes / 1048576)" .1f) × the document per further signature (target ≤ 3)"
