# sc-cluster image: one image for every role (origin, dispatcher, node, client), chosen by
# the first argument of the entrypoint (docker/entrypoint.sh). See docs/docker.md.
#
# BASE must be Debian bookworm with Node.js >= 20 laid out like the official image
# (/usr/local/bin/node, /usr/local/include/node, npm). Default: the official image.
# Without registry access, build docker/build-base.sh's local image and pass
#   --build-arg BASE=sc-cluster-base:bookworm
ARG BASE=node:20-bookworm-slim

# ---- build: npm ci (compiles the TUN addon against the base's node headers), tsc -------------
FROM ${BASE} AS build
# Labels let test-compose.sh prune superseded images of ours (and only ours).
LABEL org.sc-cluster.stage=build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ make python3 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
WORKDIR /app
# Dependencies first, so a source change does not re-run npm ci. The install hook
# (scripts/build-addon.mjs) builds sc/tun/native with node-gyp, hence its sources here.
COPY package.json package-lock.json ./
COPY scripts/build-addon.mjs scripts/
COPY sc/tun/native/binding.gyp sc/tun/native/*.c sc/tun/native/*.h sc/tun/native/
# Optional docker/build-ca.pem (never committed): CA certificates of a TLS-intercepting proxy
# between this build and the npm registry; test-compose.sh writes it from npm's own cafile.
# Only npm ci in this stage uses it; the runtime image below does not contain it.
COPY package.json docker/build-ca.pem* /tmp/build-ca/
RUN if [ -f /tmp/build-ca/build-ca.pem ]; then export NODE_EXTRA_CA_CERTS=/tmp/build-ca/build-ca.pem; fi \
 && npm ci --no-audit --no-fund \
 && test -f sc/tun/native/build/Release/sc_tun.node
# Everything else of the context (.dockerignore keeps out docs, git, build outputs and all of
# docker/ but the entrypoint, so editing the compose tooling does not re-run tsc).
COPY . .
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && find dist -name '*.test.js' -delete -o -name '*.test.js.map' -delete -o -name '*.fixture.js*' -delete

# ---- runtime: node + iproute2 (TUN, routes) + curl (health checks, the client) + openssl ----
# (the demo HTTPS certificate: sc-cluster certs)
FROM ${BASE}
LABEL org.sc-cluster.stage=runtime \
      org.opencontainers.image.title=sc-cluster \
      org.opencontainers.image.description="Socket Cloning cluster web server: origin, dispatcher, node, client roles"
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iproute2 curl openssl \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && (getent passwd sc >/dev/null || useradd --system --create-home --home-dir /home/sc --shell /usr/sbin/nologin sc) \
 && mkdir -p /site \
 && chown sc:sc /site
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/bin bin
COPY --from=build /app/dist dist
COPY --from=build /app/sc/tun/native/build/Release/sc_tun.node sc/tun/native/build/Release/sc_tun.node
COPY docker/entrypoint.sh /usr/local/bin/sc-entrypoint
RUN ln -s /app/bin/sc-cluster.js /usr/local/bin/sc-cluster \
 && sc-cluster --help >/dev/null
ENV NODE_ENV=production
ENTRYPOINT ["/usr/local/bin/sc-entrypoint"]
CMD ["help"]
