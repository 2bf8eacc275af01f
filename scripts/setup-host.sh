#!/usr/bin/env bash
# Installs the Debian packages sc-cluster needs on a fresh Debian/Ubuntu machine (as root).
# Idempotent and quick when everything is present: apt runs only for missing packages.
#
#   scripts/setup-host.sh            what `npm start` and `npm test` need (the default)
#   scripts/setup-host.sh --runtime  only what `npm start` (a cluster, the CLI) needs
#   scripts/setup-host.sh --bench    also the benchmarks' peers (haproxy; nginx is a test peer
#                                    already) and packet tools; `sc-cluster bench` installs a
#                                    missing peer itself too
#
# Debian starts nginx and haproxy (on port 80 of the host) and keepalived when they are installed; this
# script keeps them from starting (policy-rc.d during the install) and stops and disables the
# services of the packages it installed: the tests and benchmarks run their own instances
# from config files in temp directories, inside the testbed's namespaces.
set -euo pipefail

level=test
for arg in "$@"; do
  case "$arg" in
    --runtime) level=runtime ;;
    --bench) level=bench ;;
    -h | --help)
      sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "setup-host.sh: unknown option '$arg' (--runtime, --bench)" >&2
      exit 2
      ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host.sh: run as root (sudo $0): it installs Debian packages" >&2
  exit 1
fi

# npm start: the testbed (iproute2, nftables, ping), the native addon build (g++, make, python3),
# the demo CA and certificate for HTTPS (openssl).
packages=(iproute2 nftables procps iputils-ping g++ make python3 openssl)
if [ "$level" != runtime ]; then
  # npm test: real clients (curl, ab, wrk), nginx as a replay target (loadgen's open-loop
  # test), reference packets (python3-scapy), the client's capture in the FIN-delegation test
  # (tcpdump), Chromium for the dashboard, static-site and HTTPS browser tests (and the
  # benchmark plots), certutil to make Chromium trust the demo CA (libnss3-tools), keepalived
  # to check deploy/'s configuration (keepalived -t).
  packages+=(curl apache2-utils wrk nginx python3-scapy tcpdump chromium libnss3-tools keepalived)
fi
if [ "$level" = bench ]; then
  # sc-cluster bench: the L7 peer; packet tools for looking at a run.
  packages+=(haproxy netcat-openbsd)
fi

# Services a package would start on the host, which must not stay running.
services=(nginx haproxy keepalived)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-host.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # invoke-rc.d asks policy-rc.d whether a maintainer script may start a service: 101 = no.
  # Only when none exists already (an operator's own policy stays in charge).
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
  fi
  trap '[ "$own_policy" = 1 ] && rm -f "$policy"' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages just installed get their services stopped and disabled (enabled by the
  # package, they would start at the next boot).
  for s in "${services[@]}"; do
    for p in "${missing[@]}"; do
      [ "$p" = "$s" ] || continue
      if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl disable --now "$s" >/dev/null 2>&1 || true
      elif command -v service >/dev/null; then
        service "$s" stop >/dev/null 2>&1 || true
        command -v update-rc.d >/dev/null && update-rc.d "$s" disable >/dev/null 2>&1 || true
      fi
    done
  done
fi

if [ ! -c /dev/net/tun ]; then
  echo "setup-host.sh: /dev/net/tun is missing; load the tun module (modprobe tun) or run in a VM/container with it" >&2
  exit 1
fi
