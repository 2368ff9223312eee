#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests and local clusters (Debian's postgresql package):
#
#   scripts/pg.sh start DIR     create a cluster in DIR (first time) and start it on a free
#                               127.0.0.1 port, its socket in DIR; prints the DSN of the
#                               "postgres" database, e.g. postgres://postgres@127.0.0.1:24817/postgres?sslmode=disable
#   scripts/pg.sh restart DIR   restart it (every connection is dropped), same port
#   scripts/pg.sh halt DIR      stop it, keeping DIR (start brings it back on the same port)
#   scripts/pg.sh stop DIR      stop it and remove DIR
#
# Runs initdb/pg_ctl as the postgres user (through su when run as root). Trust authentication,
# loopback only, fsync off: for tests, never for data that matters. PG_BIN overrides where the
# server binaries are (default: the newest /usr/lib/postgresql/*/bin).
set -euo pipefail

usage() { echo "usage: $0 start|restart|halt|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
  echo "pg.sh: PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BIN)" >&2
  exit 3
fi

# as_pg runs a command as the postgres user.
as_pg() {
  if [ "$(id -un)" = postgres ]; then
    "$@"
  elif [ "$(id -u)" = 0 ]; then
    su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
  else
    echo "pg.sh: must run as root or as postgres" >&2
    exit 3
  fi
}

pgctl() { as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" "$@"; }

dsn() { echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/postgres?sslmode=disable"; }

# launch starts the server on port $1 and reports whether it came up.
launch() {
  pgctl -w -t 30 -o "-p $1 -k $dir -c listen_addresses=127.0.0.1" start >/dev/null 2>&1
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
      }
      cat >>"$dir/data/postgresql.conf" <<EOF
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 32MB
EOF
    fi
    if [ -f "$dir/port" ]; then
      launch "$(cat "$dir/port")" || { tail -n 20 "$dir/log" >&2; exit 1; }
    else
      # A random port below the ephemeral range (and below the 20000-31999 the end-to-end tests
      # pick SIP ports from); a taken one makes the server exit, so retry.
      ok=
      for _ in $(seq 20); do
        port=$((15000 + RANDOM % 5000))
        if launch "$port"; then ok=1; break; fi
      done
      [ -n "$ok" ] || { tail -n 20 "$dir/log" >&2; exit 1; }
      echo "$port" >"$dir/port"
    fi
    dsn
    ;;
  restart)
    pgctl -w -t 30 -m fast restart >/dev/null
    ;;
  halt)
    pgctl -w -t 30 -m fast stop >/dev/null
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      pgctl -w -t 30 -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) usage ;;
esac
