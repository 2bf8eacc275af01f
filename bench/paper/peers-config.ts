// Configuration of the peers the benchmarks compare Socket Cloning with: nginx and haproxy as
// content-aware (URI-hash) reverse proxies in front of the cluster's nodes, the modern form of
// the paper's TCP splicing / LARD front-end. Pure: the text of each config file.

export type ProxyKind = "nginx" | "haproxy";
export const PROXIES: readonly ProxyKind[] = ["nginx", "haproxy"];

export interface ProxyConfig {
  /** Address and port the proxy listens on (in its host). */
  listen: { host: string; port: number };
  /** The nodes, in order; the hash ring is built from their addresses. */
  upstreams: { name: string; host: string; port: number }[];
  /** nginx worker processes / haproxy threads. */
  workers: number;
  /** Directory for the pid file, logs and temp paths (written by the benchmark, removed after). */
  dir: string;
  /** Idle keep-alive connections kept open to each upstream (connection reuse, as splicing did). */
  upstreamKeepalive: number;
  /**
   * HTTPS as well (bench micro --tls): TLS 1.3 terminated on `port` with this certificate chain
   * and key (haproxy: `pem`, the two in one file); plain HTTP stays on `listen` (the readiness
   * probe uses it). The proxy talks plain HTTP to the nodes.
   */
  tls?: { port: number; cert: string; key: string; pem: string };
}

/**
 * nginx: `hash $request_uri consistent` (ketama) over the nodes, keep-alive upstream
 * connections (HTTP/1.1, Connection header cleared), responses streamed to the client through
 * memory buffers only (no temp files), access log off. Idle upstream connections are closed
 * after 10 s, before the nodes' own 30 s idle timeout, so nginx never reuses one a node is closing.
 */
export function nginxConfig(c: ProxyConfig): string {
  const d = c.dir;
  return `# written by sc-cluster bench; started as: nginx -p ${d} -c ${d}/nginx.conf
daemon off;
master_process on;
worker_processes ${c.workers};
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events {
  worker_connections 16384;
}
http {
  access_log off;
  client_body_temp_path ${d}/tmp/client_body;
  proxy_temp_path ${d}/tmp/proxy;
  fastcgi_temp_path ${d}/tmp/fastcgi;
  uwsgi_temp_path ${d}/tmp/uwsgi;
  scgi_temp_path ${d}/tmp/scgi;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  upstream nodes {
    hash $request_uri consistent;
${c.upstreams.map((u) => `    server ${u.host}:${u.port} max_fails=0; # ${u.name}`).join("\n")}
    keepalive ${c.upstreamKeepalive};
    keepalive_timeout 10s;
    keepalive_requests 1000000;
  }
  server {
    listen ${c.listen.host}:${c.listen.port} backlog=4096;${
      c.tls
        ? `
    listen ${c.listen.host}:${c.tls.port} ssl backlog=4096;
    ssl_certificate ${c.tls.cert};
    ssl_certificate_key ${c.tls.key};
    ssl_protocols TLSv1.3;`
        : ""
    }
    location / {
      proxy_pass http://nodes;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_buffers 16 16k;
      proxy_max_temp_file_size 0;
    }
  }
}
`;
}

/**
 * haproxy: `balance uri` + `hash-type consistent` over the nodes, HTTP mode with keep-alive on
 * both sides and server connections reused across clients (`http-reuse always`), no health
 * checks (a node is never taken out, so the mapping never moves), no logging.
 */
export function haproxyConfig(c: ProxyConfig): string {
  return `# written by sc-cluster bench; started as: haproxy -f ${c.dir}/haproxy.cfg -db
global
  nbthread ${c.workers}
  maxconn 8000
  pidfile ${c.dir}/haproxy.pid
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 10s
  option http-keep-alive
  http-reuse always
frontend bench
  bind ${c.listen.host}:${c.listen.port}${c.tls ? `\n  bind ${c.listen.host}:${c.tls.port} ssl crt ${c.tls.pem} ssl-min-ver TLSv1.3` : ""}
  default_backend nodes
backend nodes
  balance uri
  hash-type consistent
${c.upstreams.map((u) => `  server ${u.name} ${u.host}:${u.port} pool-max-conn ${c.upstreamKeepalive}`).join("\n")}
`;
}

export function proxyConfig(kind: ProxyKind, c: ProxyConfig): { file: string; text: string; argv: string[] } {
  if (kind === "nginx")
    return {
      file: `${c.dir}/nginx.conf`,
      text: nginxConfig(c),
      argv: ["nginx", "-p", c.dir, "-c", `${c.dir}/nginx.conf`],
    };
  return {
    file: `${c.dir}/haproxy.cfg`,
    text: haproxyConfig(c),
    argv: ["haproxy", "-f", `${c.dir}/haproxy.cfg`, "-db"],
  };
}
