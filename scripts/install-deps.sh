#!/usr/bin/env bash
# Installs the Debian packages ivrd needs to build, run and test. Idempotent: installs only what is
# missing, and only with apt as root. Used by `make run` and `make test`.
set -euo pipefail

PKGS=(
  # build (cgo)
  gcc libmp3lame-dev libsoxr-dev libgsm1-dev
  # run: text-to-speech
  espeak-ng espeak-ng-data
  # tests: real SIP peers, audio tools, captures, database
  sip-tester baresip-core lame ffmpeg sox libsox-fmt-mp3 mpg123 tshark postgresql
  # tests: prlimit (a known open-file limit for ivrd), mount (a tmpfs to fill)
  util-linux mount
  # benchmarks
  wrk hey
)

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
