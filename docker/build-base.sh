#!/usr/bin/env bash
# Builds the local base image sc-cluster-base:bookworm WITHOUT pulling anything: a Debian
# bookworm root made by debootstrap (minbase) from this machine's apt mirror, plus this
# machine's Node.js 20 (binary, headers, npm) laid out under /usr/local exactly like the
# official node:20-bookworm-slim image, so the Dockerfile treats both bases the same.
# Use it where no registry is reachable (CI here); elsewhere the Dockerfile's default base,
# the official node:20-bookworm-slim, needs none of this.
#
# Usage: docker/build-base.sh [--force] [--tag NAME:TAG]
#   Skips the build when the image already exists (the cache between runs) unless --force.
# Needs: root, a running Docker engine, debootstrap (installed from Debian if missing),
# node >= 20 with its headers (<prefix>/include/node) and npm (<prefix>/lib/node_modules/npm).
set -euo pipefail

tag="sc-cluster-base:bookworm"
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --tag)
      tag="${2:?--tag needs NAME:TAG}"
      shift
      ;;
    -h | --help)
      sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "build-base: unknown argument $1" >&2
      exit 2
      ;;
  esac
  shift
done

say() { echo "build-base: $*" >&2; }
die() {
  say "$*"
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and chroot need it)"
docker version >/dev/null 2>&1 || die "no Docker engine answers (start dockerd, or run npm run test:compose)"

if [ "$force" -eq 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  say "$tag exists (cached); --force rebuilds it"
  exit 0
fi

# The Node.js to copy: the one on PATH, with the layout of an official tarball or Debian's
# nodejs + libnode-dev (headers in <prefix>/include/node, npm in <prefix>/lib/node_modules).
node_bin="$(readlink -f "$(command -v node)")" || die "node not found on PATH"
node_prefix="$(dirname "$(dirname "$node_bin")")"
node_major="$("$node_bin" -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "node $("$node_bin" --version) is too old: sc-cluster needs >= 20"
[ -f "$node_prefix/include/node/node_api.h" ] ||
  die "node headers not found in $node_prefix/include/node (Debian: apt-get install libnode-dev)"
npm_dir="$node_prefix/lib/node_modules/npm"
[ -f "$npm_dir/bin/npm-cli.js" ] || die "npm not found in $npm_dir"

if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
fi

# The mirrors apt already uses on this machine (deb822 or one-line format); the image's apt
# uses the same ones, since they are the ones known to be reachable.
first_uri() {
  local pattern="$1" fallback="$2" uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri="$(awk -v p="$pattern" '/^URIs:/ { u = $2 } /^Suites:/ && $0 ~ p { print u; exit }' \
      /etc/apt/sources.list.d/debian.sources)"
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri="$(awk -v p="$pattern" '$1 == "deb" && $3 ~ p { print $2; exit }' /etc/apt/sources.list)"
  fi
  echo "${uri:-$fallback}"
}
mirror="$(first_uri '(^| )bookworm( |$)' http://deb.debian.org/debian)"
security="$(first_uri 'bookworm-security' http://deb.debian.org/debian-security)"

work="$(mktemp -d /var/tmp/sc-cluster-base.XXXXXX)"
cleanup() { rm -rf --one-file-system "$work"; }
trap cleanup EXIT
root="$work/root"

t0=$SECONDS
say "debootstrap --variant=minbase bookworm from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  {
    tail -20 "$work/debootstrap.log" >&2
    die "debootstrap failed"
  }
t_debootstrap=$((SECONDS - t0))

# apt sources like the official debian:bookworm images, on the mirrors found above.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# Small like debian:bookworm-slim: apt keeps no .debs or package caches, dpkg installs no
# manuals, docs (but copyrights) or translations, and none of those are left from debootstrap.
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
  "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
  "$root"/var/log/*.log

# Node.js in the official image's layout: /usr/local/{bin/node,include/node,lib/node_modules/npm}.
install -D -m 0755 "$node_bin" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/include" "$root/usr/local/lib/node_modules"
cp -a "$node_prefix/include/node" "$root/usr/local/include/node"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

# The copied node must run on the root's own libraries (libstdc++, libc of bookworm). A clean
# environment: nothing of this machine's (e.g. NODE_EXTRA_CA_CERTS) leaks into the check.
in_root() { env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root "$(command -v chroot)" "$root" "$@"; }
node_version="$(in_root node --version)" ||
  die "the copied node does not run inside the bookworm root (ldd $node_bin: its libraries must be in bookworm)"
npm_version="$(in_root npm --version)" ||
  die "the copied npm does not run inside the bookworm root"

t1=$SECONDS
say "importing $tag (node $node_version, npm $npm_version)"
tar -C "$root" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${node_version#v}" \
  --change 'CMD ["node"]' \
  --change 'LABEL org.opencontainers.image.title=sc-cluster-base' \
  --change "LABEL org.opencontainers.image.description=\"Debian bookworm minbase + Node.js ${node_version}, built locally without pulling\"" \
  - "$tag" >/dev/null
t_import=$((SECONDS - t1))
say "built $tag in $((SECONDS - t0)) s (debootstrap ${t_debootstrap} s, import ${t_import} s); size $(docker image inspect -f '{{.Size}}' "$tag" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
