import { test } from "node:test";
import assert from "node:assert/strict";
import { haproxyConfig, nginxConfig, proxyConfig, type ProxyConfig } from "./peers-config.js";

const CONFIG: ProxyConfig = {
  listen: { host: "198.18.0.1", port: 80 },
  upstreams: [
    { name: "node1", host: "198.18.1.11", port: 80 },
    { name: "node2", host: "198.18.1.12", port: 80 },
  ],
  workers: 2,
  dir: "/tmp/x",
  upstreamKeepalive: 64,
};

test("nginx: consistent URI hash over every node, keep-alive upstreams, files only in the temp dir", () => {
  const c = nginxConfig(CONFIG);
  assert.match(c, /upstream nodes \{\n\s+hash \$request_uri consistent;/);
  assert.match(c, /server 198\.18\.1\.11:80 max_fails=0;/);
  assert.match(c, /server 198\.18\.1\.12:80 max_fails=0;/);
  assert.match(c, /keepalive 64;/);
  assert.match(c, /listen 198\.18\.0\.1:80 /);
  assert.match(c, /proxy_http_version 1\.1;/);
  assert.match(c, /proxy_set_header Connection "";/);
  assert.match(c, /worker_processes 2;/);
  assert.match(c, /daemon off;/);
  assert.match(c, /access_log off;/);
  // Every path nginx writes lies in the benchmark's directory.
  for (const m of c.matchAll(/(?:pid|error_log|_temp_path) (\S+?);?\s/g))
    assert.ok(m[1]!.startsWith("/tmp/x/"), m[0]);
});

test("haproxy: balance uri with consistent hashing over every node, no health checks, HTTP reuse", () => {
  const c = haproxyConfig(CONFIG);
  assert.match(c, /balance uri\n\s+hash-type consistent/);
  assert.match(c, /server node1 198\.18\.1\.11:80 /);
  assert.match(c, /server node2 198\.18\.1\.12:80 /);
  assert.doesNotMatch(c, /\bcheck\b/);
  assert.match(c, /bind 198\.18\.0\.1:80/);
  assert.match(c, /nbthread 2/);
  assert.match(c, /http-reuse always/);
  assert.match(c, /pidfile \/tmp\/x\/haproxy\.pid/);
});

test("proxyConfig names the file and the foreground command line", () => {
  assert.deepEqual(proxyConfig("nginx", CONFIG).argv, ["nginx", "-p", "/tmp/x", "-c", "/tmp/x/nginx.conf"]);
  assert.deepEqual(proxyConfig("haproxy", CONFIG).argv, ["haproxy", "-f", "/tmp/x/haproxy.cfg", "-db"]);
  assert.equal(proxyConfig("haproxy", CONFIG).file, "/tmp/x/haproxy.cfg");
});

test("with TLS (bench micro --tls): TLS 1.3 terminated on 443 beside plain HTTP on 80, the demo certificate", () => {
  const tls = { port: 443, cert: "/c/server.crt", key: "/c/server.key", pem: "/tmp/x/tls.pem" };
  const n = nginxConfig({ ...CONFIG, tls });
  assert.match(n, /listen 198\.18\.0\.1:80 backlog=4096;/);
  assert.match(n, /listen 198\.18\.0\.1:443 ssl backlog=4096;/);
  assert.match(n, /ssl_certificate \/c\/server\.crt;/);
  assert.match(n, /ssl_certificate_key \/c\/server\.key;/);
  assert.match(n, /ssl_protocols TLSv1\.3;/);
  const h = haproxyConfig({ ...CONFIG, tls });
  assert.match(h, /bind 198\.18\.0\.1:80\n/);
  assert.match(h, /bind 198\.18\.0\.1:443 ssl crt \/tmp\/x\/tls\.pem ssl-min-ver TLSv1\.3\n/);
  assert.doesNotMatch(nginxConfig(CONFIG), /ssl/);
  assert.doesNotMatch(haproxyConfig(CONFIG), /ssl/);
});
