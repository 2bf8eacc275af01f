#!/bin/sh
# Entrypoint of the sc-cluster image: prepares the container's network for a role, then
# runs it as the unprivileged user `sc` (root's capabilities are not kept).
#
#   sc-entrypoint origin     [sc-cluster origin args...]
#   sc-entrypoint dispatcher [sc-cluster dispatcher args...]
#   sc-entrypoint node       [sc-cluster node args...]
#   sc-entrypoint client     [command...]      (default: wait until stopped)
#   sc-entrypoint sc-cluster ARGS... | help | any other command (run as is)
#
# Environment (defaults match docker-compose.yml and the testbed):
#   SC_VIP=198.18.100.1      virtual IP of the cluster
#   SC_TUN=sctun             TUN device of the dispatcher and the nodes
#   SC_TUN_MTU=1500          its MTU (1468 on the dispatcher: no fragmented GUE, see docs)
#   SC_VIA=198.18.0.1        client: the address the VIP is routed through (the dispatcher)
#   SC_SITE=/site            origin: document set directory (ROOT is $SC_SITE/root)
#   SC_SYNTH="--scale 0.001" origin: if set and $SC_SITE has no root/ yet, first make a site
#                            with `sc-cluster trace synth --out $SC_SITE $SC_SYNTH`
#   SC_USER=sc               user the role runs as; `root` keeps root (and its capabilities)
#   SC_CLUSTER_SECRET        dispatcher, node: the cluster secret; when neither it nor
#                            SC_CLUSTER_SECRET_FILE is set, the secret in
#                            $SC_SECRET_DIR/cluster.secret is used, made by the first
#                            container of the cluster that starts (a shared volume)
#   SC_SECRET_DIR=/run/sc-secret
#   SC_TLS_DIR=/run/sc-tls   node: if it is a directory (a shared volume) without demo/ yet,
#                            the first node to start makes the demo CA and the VIP's
#                            certificate there (`sc-cluster certs`; the CA's key is not kept)
#
# What each role needs from docker (docs/docker.md):
#   dispatcher, node: cap NET_ADMIN, device /dev/net/tun, sysctls net.ipv4.ip_forward=1,
#                     net.ipv4.conf.all.rp_filter=0, net.ipv4.conf.default.rp_filter=0;
#   dispatcher also:  net.ipv4.conf.default.accept_local=1 (GUE out through its TUN)
#   client, origin:   cap NET_ADMIN (routes: the VIP; no default route in any role)
# /proc/sys is read-only in a container, so sysctls come from docker; this script only
# checks them and says what is missing.
set -eu

SC_VIP="${SC_VIP:-198.18.100.1}"
SC_TUN="${SC_TUN:-sctun}"
SC_TUN_MTU="${SC_TUN_MTU:-1500}"
SC_VIA="${SC_VIA:-198.18.0.1}"
SC_SITE="${SC_SITE:-/site}"
SC_USER="${SC_USER:-sc}"
SC_SECRET_DIR="${SC_SECRET_DIR:-/run/sc-secret}"
SC_TLS_DIR="${SC_TLS_DIR:-/run/sc-tls}"

log() { echo "sc-entrypoint: $*" >&2; }
die() {
  log "$*"
  exit 1
}

sysctl_value() { cat "/proc/sys/$(echo "$1" | tr . /)" 2>/dev/null || echo "?"; }

# The kernel applies max(conf.all, conf.<dev>) for rp_filter; both must be 0 on the TUN,
# or it drops the packets a node writes with the VIP as source (direct return).
require_forwarding() {
  [ "$(sysctl_value net.ipv4.ip_forward)" = 1 ] ||
    die "net.ipv4.ip_forward is not 1; add to the service: sysctls: [net.ipv4.ip_forward=1]"
  for key in net.ipv4.conf.all.rp_filter "net.ipv4.conf.$SC_TUN.rp_filter"; do
    [ "$(sysctl_value "$key")" = 0 ] ||
      die "$key is $(sysctl_value "$key"), must be 0; add to the service: sysctls:" \
        "[net.ipv4.conf.all.rp_filter=0, net.ipv4.conf.default.rp_filter=0] (default is what a new TUN gets)"
  done
}

# A persistent TUN (IFF_TUN | IFF_NO_PI, single queue) owned by the role's user, so the
# unprivileged process attaches to it by name without CAP_NET_ADMIN (sc/tun: TunDevice.open).
make_tun() {
  [ -c /dev/net/tun ] || die "/dev/net/tun is missing; add to the service: devices: [/dev/net/tun:/dev/net/tun]"
  owner=""
  if [ "$SC_USER" != root ]; then
    owner="user $SC_USER group $SC_USER"
    # Docker copies the host's mode of the device node (0600 on some hosts); this is the
    # container's own node in its /dev, so the host's stays as it is.
    chgrp "$SC_USER" /dev/net/tun && chmod 0660 /dev/net/tun
  fi
  if ! ip link show "$SC_TUN" >/dev/null 2>&1; then
    # shellcheck disable=SC2086 # $owner is two words or none
    ip tuntap add dev "$SC_TUN" mode tun $owner 2>/tmp/sc-tuntap.err || {
      cat /tmp/sc-tuntap.err >&2
      die "cannot create TUN $SC_TUN: the service needs cap_add: [NET_ADMIN] and devices: [/dev/net/tun:/dev/net/tun]"
    }
  fi
  ip link set dev "$SC_TUN" mtu "$SC_TUN_MTU" up
  log "TUN $SC_TUN ready: $(ip -d link show dev "$SC_TUN" | grep -o 'tun type.* group [a-z0-9_]*' || true)"
}

route_vip() {
  ip route replace "$SC_VIP/32" "$@" 2>/tmp/sc-route.err || {
    cat /tmp/sc-route.err >&2
    die "cannot route $SC_VIP $*: the service needs cap_add: [NET_ADMIN]"
  }
  log "route $(ip route show "$SC_VIP/32")"
}

# Docker gives even an internal network's containers a default route (via the network's
# gateway address, which nothing holds here): remove it, so like every host of the testbed
# a container reaches 198.18.0.0/24 (and the VIP, where routed) and nothing else.
drop_default_route() {
  ip route show default | grep -q . || return 0
  ip route del default 2>/tmp/sc-route.err || {
    cat /tmp/sc-route.err >&2
    die "cannot remove the default route: the service needs cap_add: [NET_ADMIN]"
  }
}

# Every member reads the same secret: given (SC_CLUSTER_SECRET or SC_CLUSTER_SECRET_FILE), or
# the one in the shared volume, which the first member to start makes. link(2) publishes the
# file whole and fails if another member was first, so all end up with one secret.
cluster_secret() {
  if [ -n "${SC_CLUSTER_SECRET:-}" ] || [ -n "${SC_CLUSTER_SECRET_FILE:-}" ]; then return 0; fi
  unset SC_CLUSTER_SECRET
  [ -d "$SC_SECRET_DIR" ] || die "no cluster secret: set SC_CLUSTER_SECRET or mount a volume at $SC_SECRET_DIR"
  file="$SC_SECRET_DIR/cluster.secret"
  if [ ! -f "$file" ]; then
    # A name of this container's own: every container's PID namespace makes $$ alike.
    tmp="$(mktemp "$SC_SECRET_DIR/.secret.XXXXXXXX")" || die "cannot write in $SC_SECRET_DIR"
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp" && echo >>"$tmp")
    [ "$SC_USER" = root ] || chown "$SC_USER:$SC_USER" "$tmp"
    ln "$tmp" "$file" 2>/dev/null && log "made the cluster secret $file" || true
    rm -f "$tmp"
  fi
  export SC_CLUSTER_SECRET_FILE="$file"
}

# The demo HTTPS certificate in the shared volume, made once: each node that finds none makes
# one in a directory of its own and renames it into place; rename(2) of a directory onto a
# non-empty one fails, so the first wins and the others drop theirs. ca.crt is for clients.
demo_tls() {
  [ -d "$SC_TLS_DIR" ] || return 0
  dir="$SC_TLS_DIR/demo"
  [ -f "$dir/server.crt" ] && return 0
  # A directory of this container's own (not $$: every container's PID namespace makes it alike).
  tmp="$(mktemp -d "$SC_TLS_DIR/.new.XXXXXXXX")" || die "cannot write in $SC_TLS_DIR"
  sc-cluster certs --out "$tmp" --ip "$SC_VIP" --name localhost --no-ca-key >/dev/null ||
    die "cannot make the demo HTTPS certificate in $SC_TLS_DIR (sc-cluster certs)"
  [ "$SC_USER" = root ] || chown -R "$SC_USER:$SC_USER" "$tmp"
  chmod 0755 "$tmp" && chmod 0644 "$tmp/ca.crt" "$tmp/server.crt"
  if mv -T "$tmp" "$dir" 2>/dev/null; then log "made the demo CA and HTTPS certificate in $dir"; else rm -rf "$tmp"; fi
}

# Runs "$@" as $SC_USER with no capabilities at all (nothing to inherit, empty bounding set).
run_as_user() {
  if [ "$SC_USER" = root ] || [ "$(id -u)" != 0 ]; then exec "$@"; fi
  export HOME="/home/$SC_USER"
  exec setpriv --reuid="$SC_USER" --regid="$SC_USER" --init-groups \
    --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
}

role="${1:-help}"
[ $# -gt 0 ] && shift

case "$role" in
  origin)
    drop_default_route
    if [ -n "${SC_SYNTH:-}" ] && [ ! -d "$SC_SITE/root" ]; then
      log "no site in $SC_SITE: sc-cluster trace synth --out $SC_SITE $SC_SYNTH"
      # shellcheck disable=SC2086 # SC_SYNTH is a list of options
      (run_as_user sc-cluster trace synth --out "$SC_SITE" $SC_SYNTH) ||
        die "trace synth failed (is $SC_SITE writable by $SC_USER and empty?)"
    fi
    run_as_user sc-cluster origin "$@"
    ;;
  dispatcher)
    drop_default_route
    make_tun
    route_vip dev "$SC_TUN"
    require_forwarding
    # With --output tun (the default) GUE packets leave through the TUN with this host's
    # address as source: martians unless the TUN has accept_local=1.
    case " $* " in
      *" --output udp "* | *" --output=udp "*) ;;
      *)
        [ "$(sysctl_value "net.ipv4.conf.$SC_TUN.accept_local")" = 1 ] ||
          die "net.ipv4.conf.$SC_TUN.accept_local is not 1; add to the dispatcher: sysctls:" \
            "[net.ipv4.conf.default.accept_local=1] (or run it with --output udp)"
        ;;
    esac
    cluster_secret
    run_as_user sc-cluster dispatcher "$@"
    ;;
  node)
    drop_default_route
    make_tun
    require_forwarding
    cluster_secret
    demo_tls
    run_as_user sc-cluster node "$@"
    ;;
  client)
    drop_default_route
    route_vip via "$SC_VIA"
    if [ $# -eq 0 ]; then
      log "client ready: docker-compose exec client sc-cluster loadgen ... | curl http://$SC_VIP/"
      # Idle until stopped; `exec sleep` would ignore SIGTERM as PID 1, so wait in the shell.
      trap 'exit 0' TERM INT
      sleep infinity &
      wait
      exit 0
    fi
    run_as_user "$@"
    ;;
  help | -h | --help)
    sed -n "2,35p" "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    run_as_user "$role" "$@"
    ;;
esac
