#!/usr/bin/env bash
# npm run test:compose: the docker-compose cluster end to end, as root, on one machine.
#
#  1. installs docker.io + docker-compose from Debian if missing; starts dockerd if none
#     answers (no iptables rules, no docker0, host ip_forward untouched) and stops only that
#     dockerd at the end, also on failure;
#  2. builds the local base image without pulling (docker/build-base.sh; cached between runs)
#     unless SC_BASE_IMAGE names another base, then `docker-compose build` (npm ci with the
#     TUN addon and tsc inside the image);
#  3. `docker-compose up -d`, waits until every service is healthy;
#  4. checks: TUN devices, routes and users in the containers; the host got no route into
#     198.18.0.0/24; the client fetches from the origin (curl + verified replay); the nodes
#     serve; the dispatcher sees every node up; the VIP path (see STACK below);
#  5. `docker-compose down -v` (containers, network, volume); images stay as the cache.
#
# What the VIP check covers depends on the nodes' command line in docker-compose.yml:
#  --stack user (the default): a verified trace replay from the client through the VIP
#    (client -> dispatcher TUN -> GUE -> node's own TCP stack -> direct return), spread over
#    the nodes; with --mode sc also clones counted on the nodes (sc_clones_sent_total and
#    sc_clones_received_total); HTTPS through the VIP trusting the demo CA the first node made
#    (curl, and a verified replay), with --mode sc TLS sessions cloned (sc_tls_clones_total);
#  --stack kernel: verified replays against each node's own address, and the VIP path up to
#    the dispatcher (a client connection to the VIP scheduled and forwarded in GUE).
#
# Environment: SC_BASE_IMAGE (default sc-cluster-base:bookworm, built here), SC_KEEP=1 (leave
# the cluster up for a look; `docker-compose -p sc-compose-test down -v` later),
# SC_REPLAY_REQUESTS (default 400).
set -euo pipefail

cd "$(dirname "$0")/.."
readonly t_start=$SECONDS
readonly project="sc-compose-test"
readonly vip="198.18.100.1"
readonly requests="${SC_REPLAY_REQUESTS:-400}"
export COMPOSE_PROJECT_NAME="$project"
export SC_BASE_IMAGE="${SC_BASE_IMAGE:-sc-cluster-base:bookworm}"
export SC_BUILD_NETWORK="${SC_BUILD_NETWORK:-host}" # our dockerd has no bridge/NAT for builds
export COMPOSE_DOCKER_CLI_BUILD=0 DOCKER_BUILDKIT=0  # classic builder: uses local base images as is
export COMPOSE_HTTP_TIMEOUT=120

say() { printf '[test:compose %4ds] %s\n' "$((SECONDS - t_start))" "$*" >&2; }
fail() {
  say "FAIL: $*"
  exit 1
}
phase_times=()
passed=0
skipped=0
ok() {
  passed=$((passed + 1))
  say "ok: $*"
}
skip() {
  skipped=$((skipped + 1))
  say "SKIPPED $*"
}
phase() { phase_times+=("$1 $2 s"); }

[ "$(id -u)" -eq 0 ] || fail "run as root (it installs packages and may start dockerd)"

node docker/compose-gen.mjs --check docker-compose.yml ||
  fail "docker-compose.yml is not what docker/compose-gen.mjs generates"
stack=kernel
grep -q -- '--stack user' docker-compose.yml && stack=user
mode="$(grep -o -m1 -- '--mode [a-z-]*' docker-compose.yml | cut -d' ' -f2)"
nodes="$(grep -c '^  node[0-9]*:$' docker-compose.yml)"
say "compose file: $nodes nodes, --stack $stack, --mode $mode"

# ---- 1. packages and the engine ------------------------------------------------------------
t=$SECONDS
missing=()
for p in docker.io docker-compose; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] && ! { command -v docker-compose >/dev/null && command -v dockerd >/dev/null; }; then
  say "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq
  timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if command -v docker-compose >/dev/null; then
  compose_cmd=(docker-compose)
else
  compose_cmd=(docker compose)
fi
compose() { timeout "${COMPOSE_TIMEOUT:-300}" "${compose_cmd[@]}" "$@"; }

# One run at a time on this machine: the subnet and project name are fixed.
mkdir -p /run/lock
exec 9>/run/lock/sc-cluster-test-compose.lock
flock -w 600 9 || fail "another test:compose holds /run/lock/sc-cluster-test-compose.lock"

dockerd_pid=""
dockerd_log=""
created_ca=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  local keep=""
  [ -n "${SC_KEEP:-}" ] && [ "$rc" -eq 0 ] && keep=1
  if [ -n "$keep" ]; then
    say "SC_KEEP: cluster left up (COMPOSE_PROJECT_NAME=$project docker-compose down -v)"
    [ -n "$dockerd_pid" ] && say "SC_KEEP: and the dockerd this test started: kill $dockerd_pid"
  else
    if [ "$rc" -ne 0 ] && docker version >/dev/null 2>&1; then
      say "logs of the failed run (last 30 lines per service):"
      compose logs --no-color --tail=30 >&2 2>/dev/null
    fi
    COMPOSE_TIMEOUT=120 compose down -v --remove-orphans --timeout 10 >/dev/null 2>&1
  fi
  [ -n "$created_ca" ] && rm -f "$created_ca"
  if [ -n "$dockerd_pid" ] && [ -z "$keep" ]; then
    say "stopping the dockerd this test started (pid $dockerd_pid)"
    kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$dockerd_pid" 2>/dev/null && kill -KILL "$dockerd_pid" 2>/dev/null
    rm -f "$dockerd_log"
  fi
  say "$([ "$rc" -eq 0 ] && echo PASSED || echo "FAILED (exit $rc)") in $((SECONDS - t_start)) s"
  # The closing line CI reads: checks passed, the run failed or not, checks skipped.
  echo "compose: $passed passed, $([ "$rc" -eq 0 ] && echo 0 || echo 1) failed, $skipped skipped"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if timeout 10 docker version >/dev/null 2>&1; then
  say "using the running Docker engine"
else
  # No iptables/ip6tables rules, no NAT, no docker0 bridge, host ip_forward left alone: the
  # compose network is internal and the builds use the host's network (SC_BUILD_NETWORK=host).
  dockerd_log="$(mktemp /tmp/sc-dockerd.XXXXXX.log)"
  say "starting dockerd (log $dockerd_log)"
  # 9>&-: dockerd must not inherit (and so hold) the run lock after this script ends.
  dockerd --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --bridge=none --userland-proxy=false >"$dockerd_log" 2>&1 9>&- &
  dockerd_pid=$!
  for _ in $(seq 1 120); do
    timeout 5 docker version >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || { tail -20 "$dockerd_log" >&2; dockerd_pid=""; fail "dockerd exited"; }
    sleep 0.5
  done
  timeout 5 docker version >/dev/null 2>&1 || { tail -20 "$dockerd_log" >&2; fail "dockerd did not answer in 60 s"; }
fi
phase "engine" "$((SECONDS - t))"

# ---- 2. images -------------------------------------------------------------------------------
t=$SECONDS
if [ "$SC_BASE_IMAGE" = "sc-cluster-base:bookworm" ]; then
  timeout 900 docker/build-base.sh --tag "$SC_BASE_IMAGE"
fi
phase "base image" "$((SECONDS - t))"

# A TLS-intercepting proxy between this machine and the npm registry: npm here trusts it
# through its cafile; hand the same file to npm ci in the build stage (Dockerfile).
npm_ca="$(npm config get cafile 2>/dev/null || true)"
[ -f "$npm_ca" ] || npm_ca="${NODE_EXTRA_CA_CERTS:-}"
if [ -n "$npm_ca" ] && [ -f "$npm_ca" ] && [ ! -e docker/build-ca.pem ]; then
  cp "$npm_ca" docker/build-ca.pem
  created_ca="$PWD/docker/build-ca.pem"
fi

t=$SECONDS
compose down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true # leftovers of a crashed run
build_log="$(mktemp /tmp/sc-compose-build.XXXXXX.log)"
build_failed() {
  tail -40 "$build_log" >&2
  rm -f "$build_log"
  fail "$1"
}
# The build stage is tagged sc-cluster:build so that it stays as the cache of npm ci and tsc
# while the superseded (untagged) images of earlier runs are pruned below.
say "docker build --target build (base $SC_BASE_IMAGE)"
timeout 1200 docker build --force-rm --network "$SC_BUILD_NETWORK" --build-arg "BASE=$SC_BASE_IMAGE" \
  --target build -t sc-cluster:build . >"$build_log" 2>&1 || build_failed "docker build of the build stage failed"
say "docker-compose build"
COMPOSE_TIMEOUT=1200 compose build --force-rm >"$build_log" 2>&1 || build_failed "docker-compose build failed"
rm -f "$build_log"
[ -n "$created_ca" ] && rm -f "$created_ca" && created_ca=""
docker image prune -f --filter label=org.sc-cluster.stage >/dev/null # dangling ones only
phase "project image" "$((SECONDS - t))"
image="$(docker image inspect -f '{{.Id}} {{.Size}}' sc-cluster:latest)"
say "image sc-cluster:latest ${image%% *} $(awk '{ printf "%.0f MB", $1 / 1e6 }' <<<"${image##* }")"
docker run --rm --network none --entrypoint sh sc-cluster:latest -c \
  'test ! -e /tmp/build-ca && test ! -e /app/docker/build-ca.pem && ! ls /app/src 2>/dev/null' ||
  fail "the runtime image contains build-only files"

# ---- 3. up ---------------------------------------------------------------------------------
t=$SECONDS
routes_before="$(ip -4 route show)"
say "docker-compose up -d"
compose up -d --no-build >&2 || fail "docker-compose up failed"
services=(origin dispatcher client)
for k in $(seq 1 "$nodes"); do services+=("node$k"); done
declare -A cid
for s in "${services[@]}"; do
  cid[$s]="$(compose ps -q "$s")"
  [ -n "${cid[$s]}" ] || fail "service $s has no container"
done
deadline=$((SECONDS + 120))
while :; do
  waiting=()
  for s in "${services[@]}"; do
    st="$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "${cid[$s]}")"
    if [ "${st%% *}" != running ]; then
      docker logs --tail 50 "${cid[$s]}" >&2 2>&1 || true
      fail "service $s is ${st} ($(docker inspect -f 'exit code {{.State.ExitCode}}{{if .State.OOMKilled}}, OOM-killed{{end}} {{.State.Error}}' "${cid[$s]}"))"
    fi
    [ "${st##* }" = healthy ] || waiting+=("$s:${st##* }")
  done
  [ "${#waiting[@]}" -eq 0 ] && break
  [ "$SECONDS" -lt "$deadline" ] || fail "not healthy after 120 s: ${waiting[*]}"
  sleep 1
done
phase "up + healthy" "$((SECONDS - t))"
say "all ${#services[@]} services healthy"

# ---- 4. checks -------------------------------------------------------------------------------
t=$SECONDS
# docker exec, not docker-compose exec: the same, but without starting compose (v1: ~1 s each).
ex() {
  local s="$1"
  shift
  timeout "${EX_TIMEOUT:-60}" docker exec -i "${cid[$s]}" "$@"
}
expect() { # expect DESCRIPTION COMMAND...: runs it, fails the test with its output if it fails
  local what="$1" out
  shift
  out="$("$@" 2>&1)" || fail "$what: $out"
  ok "$what"
}

# Network setup the entrypoint made, and who runs the roles.
expect "dispatcher: VIP routed into its TUN" ex dispatcher sh -c "ip route show $vip | grep 'dev sctun'"
for s in dispatcher node1; do
  # vnet_hdr is whatever the attached process asked for (the node's stack may use GSO).
  link="$(ex "$s" ip -d link show sctun | tr -s ' \n' ' ')"
  [[ "$link" == *"<"*UP*">"* && "$link" == *"tun type tun pi off "*" persist on user sc group sc"* ]] ||
    fail "$s: sctun is not an up, persistent TUN of user sc: $link"
  ok "$s: TUN sctun up, persistent, owned by sc"
done
expect "client: VIP routed via the dispatcher" ex client sh -c "ip route get $vip | grep 'via 198.18.0.1'"
for s in origin dispatcher node1; do
  users="$(docker top "${cid[$s]}" -eo pid,user,args | awk '/sc-cluster/ { print $2 }' | sort -u)"
  if [ -z "$users" ] || grep -qx root <<<"$users"; then
    fail "$s: sc-cluster runs as '$users', not the unprivileged user"
  fi
done
ok "roles run unprivileged"
[ "$(ip -4 route show)" = "$routes_before" ] || fail "the host's routes changed while the cluster is up"
! ip -4 route show | grep -q '^198\.18\.' || fail "the host has a route into 198.18.0.0/15"
ok "host routes untouched (no 198.18.x route on the host)"
ex client sh -c '! ip route show default | grep -q .' || fail "the client has a default route"
ok "no default route in the client"

# The origin serves the synthesized site: one document by curl, checked against the manifest.
doc="$(ex client node -e '
  const lines = require("fs").readFileSync("/site/manifest.jsonl", "utf8").trim().split("\n").slice(1);
  const e = lines.map((l) => JSON.parse(l)).find((e) => e.status === 200 && e.size > 0);
  console.log(e.url + " " + e.sha256);')"
url="${doc%% *}"
sha="$(ex client sh -c "curl -fsS -m 10 http://198.18.0.2:8000$url | sha256sum")"
[ "${sha%% *}" = "${doc##* }" ] || fail "curl origin$url: sha256 ${sha%% *}, manifest says ${doc##* }"
ok "client curl http://198.18.0.2:8000$url matches the manifest"

replay() { # replay TARGET REQUESTS [LOADGEN ARGS...]: verified trace replay from the client container
  local out target="$1" count="$2"
  shift 2
  EX_TIMEOUT=180 ex client sc-cluster loadgen --trace /site/trace.log --target "$target" \
    --verify /site/manifest.jsonl --requests "$count" --clients 1 --conns 8 --keepalive --timeout 5000 \
    --json /tmp/replay.json "$@" >/dev/null 2>&1 || {
    ex client cat /tmp/replay.json >&2 2>/dev/null || true
    fail "verified replay against $target failed"
  }
  # shellcheck disable=SC2016 # JavaScript template literal, not a shell expansion
  out="$(ex client node -e '
    const r = JSON.parse(require("fs").readFileSync("/tmp/replay.json", "utf8"));
    const line = `${r.requests} requests, ${r.ok} ok, ${r.errors} errors, ${r.verify_failures} verify failures, ${r.rps} req/s`;
    console.log(line);
    process.exitCode = r.requests === Number(process.argv[1]) && r.ok === r.requests && r.verify_failures === 0 ? 0 : 1;' "$count")" ||
    fail "replay against $target: $out"
  echo "$out"
}
out="$(replay http://198.18.0.2:8000 "$requests")" # an assignment: a failed replay stops the test
ok "replay against the origin: $out"

metric() { # metric SERVICE URL NAME: sum of the samples of a Prometheus counter/gauge
  ex "$1" curl -fsS -m 5 "$2" | awk -v n="$3" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d\n", s }' ||
    fail "$1: cannot read $2"
}

# Every node is healthy to the dispatcher (its health checks cross the compose network).
for k in $(seq 1 "$nodes"); do
  up="$(ex dispatcher curl -fsS -m 5 http://198.18.0.1:9100/metrics |
    awk -v n="node$k" '$1 ~ /^sc_dispatcher_node_up\{/ && index($1, "node=\"" n "\"") { print $2 }')"
  [ "$up" = 1 ] || fail "dispatcher: node$k is not up (sc_dispatcher_node_up=$up)"
done
ok "dispatcher sees all $nodes nodes up"

if [ "$stack" = kernel ]; then
  # Nodes on node:net serve on their own address; each one through the origin.
  for k in $(seq 1 "$nodes"); do
    replay "http://198.18.0.$((10 + k)):8080" 100 >/dev/null
    n="$(metric "node$k" "http://198.18.0.$((10 + k)):9080/metrics" sc_http_requests_total)"
    [ "$n" -ge 100 ] || fail "node$k counted $n requests, expected >= 100"
  done
  ok "verified replay against each of the $nodes nodes directly (kernel stack)"
  # The VIP path as far as it goes without the user stack: client -> dispatcher TUN -> GUE.
  before="$(metric dispatcher http://198.18.0.1:9100/metrics sc_dispatcher_packets_forwarded_total)"
  ex client curl -sS -m 2 -o /dev/null "http://$vip/" >/dev/null 2>&1 || true # no TCP answers yet
  after="$(metric dispatcher http://198.18.0.1:9100/metrics sc_dispatcher_packets_forwarded_total)"
  sched="$(metric dispatcher http://198.18.0.1:9100/metrics sc_dispatcher_connections_scheduled_total)"
  [ "$after" -gt "$before" ] && [ "$sched" -ge 1 ] || # both, or fail
    fail "dispatcher did not forward the client's VIP packets (forwarded $before -> $after, scheduled $sched)"
  ok "client -> VIP -> dispatcher TUN -> GUE: $((after - before)) packets forwarded"
  skip "(needs node --stack user): verified replay through the VIP, clone counters"
else
  # The cluster proper: a verified replay through the VIP, spread over the nodes.
  out="$(replay "http://$vip" "$requests")"
  ok "replay through the VIP: $out"
  served=0
  total=0
  for k in $(seq 1 "$nodes"); do
    n="$(metric "node$k" "http://198.18.0.$((10 + k)):9080/metrics" sc_http_requests_total)"
    total=$((total + n))
    [ "$n" -gt 0 ] && served=$((served + 1))
  done
  [ "$total" -ge "$requests" ] || fail "the nodes counted $total requests, the replay made $requests"
  [ "$served" -ge $((nodes < 2 ? nodes : 2)) ] || fail "only $served of $nodes nodes served the replay"
  ok "$served of $nodes nodes served the replay ($total requests)"
  if [ "$mode" = sc ]; then
    sent=0
    received=0
    for k in $(seq 1 "$nodes"); do
      s="$(metric "node$k" "http://198.18.0.$((10 + k)):9080/metrics" sc_clones_sent_total)"
      r="$(metric "node$k" "http://198.18.0.$((10 + k)):9080/metrics" sc_clones_received_total)"
      sent=$((sent + s))
      received=$((received + r))
    done
    [ "$sent" -gt 0 ] && [ "$received" -gt 0 ] || # both, or fail
      fail "no clones counted on the nodes (sc_clones_sent_total $sent, sc_clones_received_total $received)"
    ok "clones counted on the nodes: sent $sent, received $received"
  else
    skip "(nodes run --mode $mode; needs --mode sc): clone counters"
  fi
  # HTTPS on the VIP with the demo certificate a node made in the shared volume.
  ca=/run/sc-tls/demo/ca.crt
  sha="$(ex client sh -c "curl -fsS -m 10 --tlsv1.3 --cacert $ca https://$vip$url | sha256sum")"
  [ "${sha%% *}" = "${doc##* }" ] || fail "curl https://$vip$url: sha256 ${sha%% *}, manifest says ${doc##* }"
  ok "client curl --cacert $ca https://$vip$url matches the manifest (TLS 1.3, the demo CA verified)"
  out="$(replay "https://$vip" "$requests" --ca "$ca")"
  ok "replay through the VIP over HTTPS: $out"
  if [ "$mode" = sc ]; then
    cloned=0
    for k in $(seq 1 "$nodes"); do
      c="$(ex "node$k" curl -fsS -m 5 "http://198.18.0.$((10 + k)):9080/metrics" |
        awk 'index($1, "sc_tls_clones_total{") == 1 && index($1, "side=\"sent\"") { s += $2 } END { printf "%d\n", s }')"
      cloned=$((cloned + c))
    done
    [ "$cloned" -gt 0 ] || fail "no TLS session cloned (sc_tls_clones_total{side=\"sent\"} is 0 on every node)"
    ok "TLS sessions cloned with their requests: $cloned"
  fi
fi
phase "checks" "$((SECONDS - t))"

t=$SECONDS
if [ -z "${SC_KEEP:-}" ]; then
  COMPOSE_TIMEOUT=120 compose down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || fail "docker-compose down failed"
  left="$(docker ps -aq --filter "label=com.docker.compose.project=$project")$(docker network ls -q --filter "label=com.docker.compose.project=$project")$(docker volume ls -q --filter "label=com.docker.compose.project=$project")"
  [ -z "$left" ] || fail "docker-compose down left containers/networks/volumes: $left"
  ok "down -v removed every container, network and volume of the project"
fi
phase "down" "$((SECONDS - t))"
times="$(printf '%s, ' "${phase_times[@]}")"
say "times: ${times%, }"
