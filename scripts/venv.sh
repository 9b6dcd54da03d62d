#!/usr/bin/env bash
# Sourced by the other scripts: the project's Python virtual environment at .venv/ (ignored by
# git), so no Python tool is ever installed into the machine's Python.
#
#   . scripts/venv.sh
#   ensure_venv scripts/requirements.txt   # creates .venv/ if absent, installs what changed
#   "$VENV/bin/st" ...                     # the tools are in $VENV/bin (also put on PATH)
#
# The environment is reused between runs: the requirements are installed again only when a
# requirements file changed (a stamp in .venv/ holds their checksum). On a Debian machine
# without the venv module, python3-venv is installed with apt when we are root.
# Exports VENV (the environment's directory) and prepends $VENV/bin to PATH.

VENV=${ESIGNSP_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv}
export VENV

venv_create() {
  python3 -m venv "$VENV" >/dev/null 2>&1 && [ -x "$VENV/bin/pip" ] && return 0
  rm -rf "$VENV"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "esignsp: installing python3-venv with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq python3 python3-venv >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null; }; } || return 1
    python3 -m venv "$VENV" && [ -x "$VENV/bin/pip" ] && return 0
  fi
  echo "esignsp: cannot create a Python virtual environment at $VENV (python3 -m venv;" \
    "on Debian: apt-get install python3-venv)" >&2
  return 1
}

# ensure_venv REQUIREMENTS_FILE...: the environment exists and holds exactly these pins.
ensure_venv() {
  local stamp="$VENV/.esignsp-requirements" sum
  sum=$(cat "$@" | sha256sum | cut -d' ' -f1) || return 1
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
    rm -rf "$VENV"
    venv_create || return 1
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    echo "esignsp: installing Python tools into $VENV" >&2
    local args=() file
    for file in "$@"; do args+=(-r "$file"); done
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}" || return 1
    echo "$sum" > "$stamp"
  fi
  case ":$PATH:" in *":$VENV/bin:"*) ;; *) PATH="$VENV/bin:$PATH"; export PATH ;; esac
}
