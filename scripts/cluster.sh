#!/usr/bin/env bash
# A throwaway ivrd cluster on loopback, to see several nodes cover for each other:
#
#   scripts/cluster.sh up N [--notify-url URL]
#       starts, on free 127.0.0.1 ports, a PostgreSQL server (scripts/pg.sh), an S3 server
#       (scripts/s3.sh), Kamailio with deploy/kamailio/kamailio.cfg in front, and N ivrd nodes
#       sharing them (one --cluster-secret, one URL-signing key), then prints one JSON line:
#         {"sip":"127.0.0.1:PORT","api":["http://127.0.0.1:PORT",...],"app_id":"...",
#          "access_token":"...","number":"+6560000000","pids":[PID,...],"dir":"..."}
#       sip is Kamailio's address, api the nodes' base URLs, pids the nodes' processes. Calls to
#       number go to URL (without --notify-url: to the built-in demo app of the node carrying
#       the call).
#   scripts/cluster.sh down
#       stops everything up started and removes its directory.
#
# Everything lives in $IVRD_CLUSTER_DIR (default ${TMPDIR:-/tmp}/ivrd-cluster); one cluster at a
# time per directory. IVRD_BIN is the ivrd binary to run (default: built from this checkout).
# Needs root or the postgres user for PostgreSQL (pg.sh), kamailio, and Go for versitygw.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${IVRD_CLUSTER_DIR:-${TMPDIR:-/tmp}/ivrd-cluster}
number=+6560000000
access=ivrd
secret_key=ivrd-secret
bucket=ivrd

usage() { echo "usage: $0 up N [--notify-url URL] | down" >&2; exit 2; }

# free_port prints a port free on 127.0.0.1 for both UDP and TCP.
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((40000 + RANDOM % 20000))
    if ! ss -Htuln "( sport = :$p )" | grep -q .; then
      echo "$p"
      return
    fi
  done
  echo "cluster.sh: no free port" >&2
  exit 1
}

# wait_for runs its arguments until they succeed, for up to 15 s.
wait_for() {
  for _ in $(seq 150); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

down() {
  [ -d "$dir" ] || return 0
  if [ -f "$dir/pids" ]; then
    for pid in $(cat "$dir/pids"); do kill "$pid" 2>/dev/null || true; done
    for pid in $(cat "$dir/pids"); do
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    done
  fi
  if [ -f "$dir/kamailio/kamailio.pid" ]; then
    pid=$(cat "$dir/kamailio/kamailio.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 -- "-$pid" 2>/dev/null || true
  fi
  "$root/scripts/s3.sh" stop "$dir/s3" || true
  if [ -f "$dir/pgdir" ]; then
    "$root/scripts/pg.sh" stop "$(cat "$dir/pgdir")" || true
  fi
  rm -rf "$dir"
}

up() {
  local n=$1 notify=$2
  if [ -e "$dir" ]; then
    echo "cluster.sh: $dir exists: a cluster is up (scripts/cluster.sh down first)" >&2
    exit 1
  fi
  command -v kamailio >/dev/null || { echo "cluster.sh: kamailio is not installed (scripts/install-deps.sh)" >&2; exit 3; }
  mkdir -p "$dir/kamailio"
  trap 'echo "cluster.sh: up failed; stopping what started" >&2; down' ERR
  local bin=${IVRD_BIN:-}
  if [ -z "$bin" ]; then
    bin=$dir/ivrd
    (cd "$root" && go build -o "$bin" ./cmd/ivrd)
  fi

  local dsn s3port blob cluster_secret
  # PostgreSQL's directory is the postgres user's: outside $dir, which may be closed to it.
  mktemp -d "${TMPDIR:-/tmp}/ivrd-cluster-pg.XXXXXX" >"$dir/pgdir"
  chmod 755 "$(cat "$dir/pgdir")"
  dsn=$("$root/scripts/pg.sh" start "$(cat "$dir/pgdir")")
  mkdir -p "$dir/s3/$bucket" # a sub-directory is a bucket
  s3port=$(free_port)
  S3_ACCESS_KEY=$access S3_SECRET_KEY=$secret_key "$root/scripts/s3.sh" start "$dir/s3" "$s3port" >/dev/null
  blob="s3://$bucket?endpoint=http://127.0.0.1:$s3port&region=us-east-1"
  cluster_secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  head -c 32 /dev/urandom >"$dir/url-signing.key" # the same on every node: any node serves any URL

  local creds app_id token
  creds=$("$bin" app create --data "$dir/node1" --name cluster --store "$dsn")
  app_id=$(jq -r .app_id <<<"$creds")
  token=$(jq -r .access_token <<<"$creds")
  "$bin" number add --data "$dir/node1" --store "$dsn" --app "$app_id" --number "$number" \
    --notify-url "${notify:-/demo/notify}" >/dev/null

  local apis=() sips=() pids=() i hp sp
  for i in $(seq "$n"); do
    hp=$(free_port)
    sp=$(free_port)
    mkdir -p "$dir/node$i"
    cp "$dir/url-signing.key" "$dir/node$i/url-signing.key"
    chmod 600 "$dir/node$i/url-signing.key"
    AWS_ACCESS_KEY_ID=$access AWS_SECRET_ACCESS_KEY=$secret_key IVRD_CLUSTER_SECRET=$cluster_secret \
      setsid "$bin" serve --data "$dir/node$i" --http "127.0.0.1:$hp" --sip "127.0.0.1:$sp" \
      --store "$dsn" --blob "$blob" --public-url "http://127.0.0.1:$hp" \
      >"$dir/node$i.log" 2>&1 </dev/null &
    pids+=("$!")
    echo "${pids[*]}" >"$dir/pids"
    apis+=("http://127.0.0.1:$hp")
    sips+=("127.0.0.1:$sp")
  done
  for i in "${!apis[@]}"; do
    wait_for curl -sf "${apis[$i]}/readyz" || { echo "cluster.sh: node $((i + 1)) did not start:" >&2; tail -n 20 "$dir/node$((i + 1)).log" >&2; false; }
  done

  local kport
  kport=$(free_port)
  for s in "${sips[@]}"; do echo "1 sip:$s"; done >"$dir/kamailio/dispatcher.list"
  setsid kamailio -DD -E -f "$root/deploy/kamailio/kamailio.cfg" -P "$dir/kamailio/kamailio.pid" -Y "$dir/kamailio" \
    -m 64 -M 8 -A "LISTEN=udp:127.0.0.1:$kport" -A "LISTEN_TCP=tcp:127.0.0.1:$kport" \
    -A "DISPATCHER_LIST=\"$dir/kamailio/dispatcher.list\"" >"$dir/kamailio.log" 2>&1 </dev/null &
  wait_for sh -c "ss -Hlun '( sport = :$kport )' | grep -q ." || { echo "cluster.sh: kamailio did not start:" >&2; tail -n 20 "$dir/kamailio.log" >&2; false; }
  trap - ERR

  jq -cn --arg sip "127.0.0.1:$kport" --arg app "$app_id" --arg tok "$token" --arg num "$number" --arg dir "$dir" \
    --args '{sip: $sip, api: $ARGS.positional[:($ARGS.positional | length) / 2], app_id: $app, access_token: $tok,
      number: $num, pids: ($ARGS.positional[($ARGS.positional | length) / 2:] | map(tonumber)), dir: $dir}' \
    "${apis[@]}" "${pids[@]}"
}

case "${1:-}" in
  up)
    [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || usage
    n=$2
    shift 2
    notify=
    while [ $# -gt 0 ]; do
      case $1 in
        --notify-url) [ $# -ge 2 ] || usage; notify=$2; shift 2 ;;
        *) usage ;;
      esac
    done
    up "$n" "$notify"
    ;;
  down) down ;;
  *) usage ;;
esac
