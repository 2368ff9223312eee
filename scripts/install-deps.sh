#!/usr/bin/env bash
# Installs the Debian packages ivrd needs, by purpose:
#   install-deps.sh run     build and run ivrd (make run)
#   install-deps.sh test    also the real peers and tools of the tests (make test)
#   install-deps.sh bench   also the load tools of the benchmarks (make bench)
# Idempotent: installs only what is missing, and only with apt as root.
set -euo pipefail

purpose=${1:-test}
RUN=(
  # build (cgo)
  gcc libmp3lame-dev libsoxr-dev libgsm1-dev
  # run: text-to-speech
  espeak-ng espeak-ng-data
)
TEST=(
  # real SIP peers, audio tools, captures, database, service checks
  sip-tester baresip-core lame ffmpeg sox libsox-fmt-mp3 mpg123 tshark postgresql systemd
  # prlimit (a known open-file limit for ivrd), mount (a tmpfs to fill)
  util-linux mount
  # the SIP provider (registrar + proxy with digest authentication, over TLS too) of the trunk tests
  kamailio kamailio-tls-modules
  # callers behind NAT in network namespaces (ip netns, veth, nftables masquerading)
  iproute2 nftables
  # the console driven in a headless browser (chromedp)
  chromium
  # promtool (check metrics) for the /metrics tests
  prometheus
  # scripts/cluster.sh (readiness checks, its JSON line; ss and setsid come with iproute2 and util-linux)
  curl jq
)
BENCH=(
  wrk hey
  # the carrier stack the peer phase measures ivrd beside: Kamailio (in TEST) and rtpengine,
  # run by the bench itself in the foreground with its own configuration
  rtpengine-daemon
)
case "$purpose" in
  run) PKGS=("${RUN[@]}") ;;
  test) PKGS=("${RUN[@]}" "${TEST[@]}") ;;
  bench) PKGS=("${RUN[@]}" "${TEST[@]}" "${BENCH[@]}") ;;
  *) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "missing packages: ${missing[*]}" >&2
  echo "run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
