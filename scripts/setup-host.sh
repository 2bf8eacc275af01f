#!/usr/bin/env bash
# Installs the Debian packages sc-cluster needs on a fresh Debian/Ubuntu machine (as root).
# Idempotent and quick when everything is present: apt runs only for missing packages.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host.sh: run as root (sudo $0): it installs Debian packages" >&2
  exit 1
fi

# Runtime: testbed (iproute2, nftables), native addon build (g++, make, python3).
# Tests and benchmarks: real clients and peers (curl, nc, ab, wrk, nginx, haproxy),
# reference packets (python3-scapy); chromium renders the benchmark plots (SVG -> PNG).
packages=(
  iproute2 nftables procps iputils-ping
  g++ make python3
  curl netcat-openbsd apache2-utils wrk nginx haproxy
  python3-scapy tcpdump chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-host.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -c /dev/net/tun ]; then
  echo "setup-host.sh: /dev/net/tun is missing; load the tun module (modprobe tun) or run in a VM/container with it" >&2
  exit 1
fi
