#!/usr/bin/env bash
# The test PKI of the PAdES level tests: certomancer (pinned in scripts/requirements.txt, run
# from .venv) serving the architecture of scripts/pki/esignsp-test.yml over HTTP — CA
# certificates, a time-stamping authority (RFC 3161), OCSP responders (RFC 6960) and CRLs — on
# a free loopback port.
#
#   . scripts/pki.sh
#   start_test_pki || exit 1     # needs ensure_venv first (scripts/venv.sh)
#   ...                          # ESIGNSP_TEST_PKI_URL, ESIGNSP_TEST_PKI_DIR exported
#   stop_test_pki
#
# or on its own, for a development shell: `bash scripts/pki.sh -- COMMAND...` runs COMMAND with
# the PKI up and stops it after.
#
# Exports
#   ESIGNSP_TEST_PKI_URL  the architecture's base URL, http://127.0.0.1:PORT/esignsp
#                         (its TSA at $ESIGNSP_TEST_PKI_URL/tsa/tsa)
#   ESIGNSP_TEST_PKI_DIR  a directory with root.pem (the trust anchor), signer.key.pem and
#                         signer2.key.pem (PKCS#8 PEM, unencrypted), signer.chain.pem and
#                         signer2.chain.pem (the certificate, the intermediate CA, the root), and
#                         certomancer.log
# The keys are generated afresh each time with openssl; certomancer issues the certificates,
# whose CRL distribution points and OCSP URLs point at the animator.

ESIGNSP_PKI_CONFIG=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pki/esignsp-test.yml
ESIGNSP_PKI_ANIMATE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pki/animate.py

stop_test_pki() {
  if [ -n "${ESIGNSP_PKI_PID:-}" ]; then
    kill "$ESIGNSP_PKI_PID" 2>/dev/null || true
    wait "$ESIGNSP_PKI_PID" 2>/dev/null || true
    ESIGNSP_PKI_PID=
  fi
  if [ -n "${ESIGNSP_TEST_PKI_DIR:-}" ] && [ -d "$ESIGNSP_TEST_PKI_DIR" ]; then
    rm -rf "$ESIGNSP_TEST_PKI_DIR"
  fi
}

start_test_pki() {
  local venv=${VENV:?run ensure_venv (scripts/venv.sh) first} dir port key i
  command -v openssl >/dev/null 2>&1 || { echo "esignsp: openssl is required for the test PKI" >&2; return 1; }
  dir=$(mktemp -d "${TMPDIR:-/tmp}/esignsp-pki.XXXXXX") || return 1
  ESIGNSP_TEST_PKI_DIR=$dir
  mkdir -p "$dir/keys"
  for key in root interm interm-ocsp tsa signer2; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/keys/$key.key.pem" 2>/dev/null || return 1
  done
  # The signer's key is RSA, the second signer's ECDSA: both kinds against a real OCSP responder.
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/keys/signer.key.pem" 2>/dev/null || return 1
  port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') ||
    return 1
  sed "s|@PREFIX@|http://127.0.0.1:$port|" "$ESIGNSP_PKI_CONFIG" > "$dir/certomancer.yml"
  local certomancer=("$venv/bin/certomancer" --config "$dir/certomancer.yml")
  "${certomancer[@]}" summon --ignore-tty esignsp root "$dir/root.pem" || return 1
  "${certomancer[@]}" summon --ignore-tty esignsp interm "$dir/interm.pem" || return 1
  for key in signer signer2; do
    "${certomancer[@]}" summon --ignore-tty esignsp "$key" "$dir/$key.pem" || return 1
    cat "$dir/$key.pem" "$dir/interm.pem" "$dir/root.pem" > "$dir/$key.chain.pem"
    cp "$dir/keys/$key.key.pem" "$dir/$key.key.pem"
  done
  # Through scripts/pki/animate.py: OCSP responses in whole seconds, which NSS (pdfsig) reads.
  "$venv/bin/python" "$ESIGNSP_PKI_ANIMATE" --config "$dir/certomancer.yml" \
    animate --port "$port" --no-web-ui > "$dir/certomancer.log" 2>&1 &
  ESIGNSP_PKI_PID=$!
  for i in $(seq 1 100); do
    if "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "http://127.0.0.1:$port/esignsp/crls/root/latest.crl" 2>/dev/null; then
      export ESIGNSP_TEST_PKI_URL="http://127.0.0.1:$port/esignsp" ESIGNSP_TEST_PKI_DIR
      echo "esignsp: test PKI (certomancer) at $ESIGNSP_TEST_PKI_URL" >&2
      return 0
    fi
    if ! kill -0 "$ESIGNSP_PKI_PID" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "esignsp: the test PKI did not start:" >&2
  cat "$dir/certomancer.log" >&2
  stop_test_pki
  return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cd "$(dirname "$0")/.."
  . scripts/venv.sh
  ensure_venv scripts/requirements.txt
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || { echo "usage: scripts/pki.sh -- COMMAND..." >&2; exit 2; }
  start_test_pki
  trap stop_test_pki EXIT
  "$@"
fi
