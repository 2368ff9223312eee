#!/usr/bin/env bash
# The S3 server of the tests and of scripts/cluster.sh: Versity's S3 gateway (versitygw,
# Apache-2.0), which serves a directory over the S3 API. Test-only; ivrd itself talks to any
# S3-compatible store.
#
#   s3.sh install              build the pinned versitygw once per machine (about a minute);
#                              prints the binary's path. Skipped when that version is present.
#   s3.sh serve DIR PORT       serve DIR on 127.0.0.1:PORT in the foreground (each sub-directory
#                              of DIR is a bucket). Credentials: S3_ACCESS_KEY / S3_SECRET_KEY
#                              (default ivrd / ivrd-secret).
#   s3.sh start DIR PORT       the same in the background: waits until it answers, prints its PID
#                              (also in DIR/.versitygw.pid; its log is DIR/.versitygw.log).
#   s3.sh stop DIR             stop the server started on DIR.
#
# The binary goes to $IVRD_TOOLS (default: $(go env GOPATH)/bin), shared by every checkout of the
# machine; a binary there of another version is replaced.
set -euo pipefail

VERSION=v1.8.0
MODULE=github.com/versity/versitygw
GO=${GO:-go}
TOOLS=${IVRD_TOOLS:-$("$GO" env GOPATH)/bin}
BIN=$TOOLS/versitygw

installed() {
  [ -x "$BIN" ] && "$GO" version -m "$BIN" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+$MODULE[[:space:]]+$VERSION([[:space:]]|$)"
}

install() {
  if installed; then
    echo "$BIN"
    return
  fi
  mkdir -p "$TOOLS"
  echo "building versitygw $VERSION into $TOOLS (about a minute)" >&2
  # A lock keeps two checkouts (or two test packages) from building at once.
  exec 9>"$TOOLS/.versitygw.lock"
  flock 9
  if ! installed; then
    GOBIN=$TOOLS GOFLAGS=-buildvcs=false "$GO" install "$MODULE/cmd/versitygw@$VERSION"
  fi
  flock -u 9
  installed || { echo "versitygw $VERSION not found in $BIN after install" >&2; exit 1; }
  echo "$BIN"
}

serve() {
  local dir=${1:?usage: s3.sh serve DIR PORT} port=${2:?usage: s3.sh serve DIR PORT}
  installed || install >/dev/null
  mkdir -p "$dir"
  # Global options come before the backend name.
  exec "$BIN" --port "127.0.0.1:$port" --access "${S3_ACCESS_KEY:-ivrd}" --secret "${S3_SECRET_KEY:-ivrd-secret}" \
    posix "$dir"
}

start() {
  local dir=${1:?usage: s3.sh start DIR PORT} port=${2:?usage: s3.sh start DIR PORT}
  installed || install >/dev/null
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local log="$dir/.versitygw.log" pidfile="$dir/.versitygw.pid"
  setsid "$0" serve "$dir" "$port" >"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$pidfile"
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "versitygw exited:" >&2
      cat "$log" >&2
      exit 1
    fi
    # Any HTTP answer (403 without credentials) means it serves.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$pid"
      return
    fi
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  echo "versitygw did not listen on 127.0.0.1:$port within 10 s" >&2
  cat "$log" >&2
  exit 1
}

stop() {
  local dir=${1:?usage: s3.sh stop DIR}
  local pidfile="$dir/.versitygw.pid"
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  install) install ;;
  serve) shift; serve "$@" ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 install | serve DIR PORT | start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
