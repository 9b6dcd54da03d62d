#!/usr/bin/env bash
# Sourced by the other scripts: makes sure a PostgreSQL server answers at DATABASE_URL.
#
# DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/postgres. When nothing answers
# there and this is a Debian machine where we are root, PostgreSQL is installed with apt
# (if absent) and its cluster started; when the local cluster refuses a password-less TCP
# login, the postgres user gets the password "postgres" and DATABASE_URL carries it.
# Exports DATABASE_URL.

: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/postgres}"
export DATABASE_URL

pg_answers() {
  command -v psql >/dev/null 2>&1 && PGCONNECT_TIMEOUT=3 psql "$1" -Atqc 'select 1' >/dev/null 2>&1
}

pg_local_url_with_password() {
  echo "postgres://postgres:postgres@127.0.0.1:5432/postgres"
}

ensure_postgres() {
  if pg_answers "$DATABASE_URL"; then
    return 0
  fi
  echo "esignsp: no PostgreSQL answers at DATABASE_URL; looking for a local one" >&2
  if [ "$(id -u)" != 0 ]; then
    echo "esignsp: start PostgreSQL or set DATABASE_URL (installing it needs root)" >&2
    return 1
  fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "esignsp: installing PostgreSQL with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql postgresql-client >/dev/null || return 1
  fi
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    echo "esignsp: PostgreSQL is installed but has no cluster" >&2
    return 1
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || pg_ctlcluster "$version" main start 2>/dev/null || true
  for _ in $(seq 1 30); do
    pg_isready -h 127.0.0.1 -p 5432 -q && break
    sleep 1
  done
  if pg_answers "$DATABASE_URL"; then
    return 0
  fi
  # Debian's default pg_hba.conf asks TCP clients for a password: give postgres one.
  su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null 2>&1 || true
  DATABASE_URL=$(pg_local_url_with_password)
  export DATABASE_URL
  if pg_answers "$DATABASE_URL"; then
    return 0
  fi
  echo "esignsp: PostgreSQL does not accept connections at $DATABASE_URL" >&2
  return 1
}

# Installs Debian's pgbouncer when absent (root only): the HTTP tests of transaction pooling
# (crates/api/tests/http/database.rs) start it themselves, on ports of their own.
ensure_pgbouncer() {
  [ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "esignsp: pgbouncer is not installed (apt-get install pgbouncer, as root)" >&2
    return 1
  fi
  echo "esignsp: installing pgbouncer with apt-get" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; }
}

# ensure_apt_tools COMMAND:PACKAGE...: installs Debian's PACKAGE for each COMMAND not on PATH
# (root only).
ensure_apt_tools() {
  local pair missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} = 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "esignsp: missing ${missing[*]} (apt-get install ${missing[*]}, as root)" >&2
    return 1
  fi
  echo "esignsp: installing ${missing[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
}

ensure_build_tools() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "esignsp: cargo not found; trying Debian's cargo (needs Rust 1.85 or newer)" >&2
    [ "$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq cargo rustc >/dev/null
  fi
  if ! command -v cc >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null
  fi
  command -v cargo >/dev/null 2>&1
}

# Prints DATABASE_URL with its database name replaced by $1.
url_with_database() {
  local url=$DATABASE_URL query=""
  case "$url" in *\?*) query="?${url#*\?}"; url=${url%%\?*} ;; esac
  echo "${url%/*}/$1$query"
}

# Creates database $1 on the server of DATABASE_URL unless it exists.
ensure_database() {
  if ! psql "$DATABASE_URL" -Atqc "select 1 from pg_database where datname = '$1'" | grep -q 1; then
    psql "$DATABASE_URL" -qc "CREATE DATABASE \"$1\"" >/dev/null
  fi
}
