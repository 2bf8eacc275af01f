// `sc-cluster members`: the cluster's membership at run time, through the dispatcher's admin
// API (the source of truth nodes started with --members-from follow: server/membership/runtime.ts).
//   members                 list (GET /nodes)
//   members add SPEC        add or change a node (PUT /nodes/ID): new connections go to it and
//                           every node maps URLs to it on its next poll
//   members drain ID        weight 0 (PUT): no new connections, no URLs mapped to it; its
//                           connections and in-flight clones finish
//   members remove ID       DELETE: it drains, then leaves the list (nodes close their links)
import { request } from "undici";
import type { Command } from "./command.js";
import { optStr, parseCommand, str, UsageError, type CommandSpec } from "../common/args.js";
import { TRUST_OPTIONS, trustFrom } from "../sc/auth/trust-options.js";
import { ADMIN_ACCESS_OPTIONS, readAdminToken } from "../sc/auth/admin-access-options.js";
import { DEFAULT_PREFIX } from "../testbed/topology.js";
import { EXIT } from "../common/errors.js";

const spec: CommandSpec = {
  name: "members",
  summary: "List, add, drain or remove cluster nodes at run time (the dispatcher's membership)",
  usage:
    "sc-cluster members [list | add ID=ADDR[:PORT][,weight=W][,admin=URL] | drain ID | remove ID] [options]",
  allowPositionals: true,
  options: {
    dispatcher: {
      type: "string",
      value: "URL",
      help: "The dispatcher's admin API (e.g. http://198.18.0.1:9100) [default: the local cluster's]",
    },
    cluster: {
      type: "string",
      value: "PREFIX",
      help: "The local cluster (its `sc-cluster up --prefix`), when --dispatcher is not given",
      default: DEFAULT_PREFIX,
    },
    ...TRUST_OPTIONS,
    "admin-token-file": ADMIN_ACCESS_OPTIONS["admin-token-file"]!,
  },
  epilog: [
    "Nodes started with --members-from DISPATCHER_URL follow the change within --members-interval:",
    "they map URLs only to nodes that take new connections and keep their links to draining ones until",
    "those leave the list. To add a machine: start its node with --members-from (and the cluster",
    "secret), then `members add`. To take one out: `members drain ID`, wait for its connections to end",
    "(`members` shows them), `members remove ID`, then stop it (SIGTERM). docs/cluster.md has the steps.",
  ].join("\n"),
};

export interface AdminCall {
  /** Local cluster prefix, used when `admin` is not given. */
  cluster: string;
  admin: string | undefined;
  /** Whose admin API on the local cluster: node1's or the dispatcher's. */
  role: "node" | "dispatcher";
  method: "GET" | "PUT" | "POST" | "DELETE";
  path: string;
  body?: unknown;
  token: string | undefined;
}

/** One admin API call, to a given URL or to the local cluster (from its client host). */
export async function sendAdmin(c: AdminCall): Promise<{ status: number; body: string }> {
  if (c.admin !== undefined) {
    const res = await request(`${c.admin.replace(/\/+$/, "")}${c.path}`, {
      method: c.method,
      headers: {
        ...(c.body !== undefined ? { "content-type": "application/json" } : {}),
        ...(c.token !== undefined ? { authorization: `Bearer ${c.token}` } : {}),
      },
      ...(c.body !== undefined ? { body: JSON.stringify(c.body) } : {}),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    return { status: res.statusCode, body: await res.body.text() };
  }
  const { openCluster } = await import("../cluster/cluster.js");
  const cluster = await openCluster(c.cluster);
  if (cluster === undefined)
    throw new UsageError(`no local cluster '${c.cluster}' is up: give the admin URL (--node / --dispatcher)`);
  try {
    const host = c.role === "node" ? cluster.nodes[0]! : "dispatcher";
    const a = await cluster.request({
      url: `${cluster.process(host).admin!}${c.path}`,
      method: c.method,
      ...(c.body !== undefined ? { json: c.body } : {}),
      timeoutMs: 10_000,
    });
    if (a.status === undefined)
      throw new UsageError(`${host}'s admin API did not answer: ${a.error ?? "no answer"}`);
    return { status: a.status, body: a.body };
  } finally {
    await cluster.close();
  }
}

export const command: Command = {
  spec,
  async run(argv) {
    const { values, positionals } = parseCommand(spec, argv);
    const [verb = "list", arg, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError(`members: unexpected argument '${rest[0]}'`);
    const admin = optStr(values, "dispatcher");
    const tokenFile = optStr(values, "admin-token-file");
    const trust = admin === undefined ? null : await trustFrom(values, process.env, undefined);
    const token =
      tokenFile !== undefined
        ? await readAdminToken(tokenFile)
        : trust?.kind === "secret"
          ? trust.secret.adminToken()
          : undefined;
    const call = (method: AdminCall["method"], path: string, body?: unknown) =>
      sendAdmin({ cluster: str(values, "cluster"), admin, role: "dispatcher", method, path, body, token });
    const need = (what: string) => {
      if (arg === undefined)
        throw new UsageError(`members ${verb}: give ${what}\nTry 'sc-cluster members --help'.`);
      return arg;
    };
    let answer: { status: number; body: string };
    if (verb === "list") answer = await call("GET", "/nodes");
    else if (verb === "add") {
      const { parseNodeSpec } = await import("../dispatcher/nodes.js");
      const { ipv4ToString } = await import("../sc/wire/index.js");
      let n;
      try {
        n = parseNodeSpec(need("ID=ADDR[:PORT][,weight=W][,admin=URL]"));
      } catch (err) {
        throw new UsageError(`members add: ${(err as Error).message}`);
      }
      answer = await call("PUT", `/nodes/${encodeURIComponent(n.id)}`, {
        addr: ipv4ToString(n.addr),
        port: n.port,
        weight: n.weight,
        ...(n.admin !== undefined ? { admin: n.admin } : {}),
      });
    } else if (verb === "drain")
      answer = await call("PUT", `/nodes/${encodeURIComponent(need("a node id"))}`, { weight: 0 });
    else if (verb === "remove")
      answer = await call("DELETE", `/nodes/${encodeURIComponent(need("a node id"))}`);
    else throw new UsageError(`members: unknown action '${verb}' (list, add, drain, remove)`);
    if (answer.body !== "") console.log(answer.body);
    if (answer.status >= 300) {
      console.error(`sc-cluster members ${verb}: HTTP ${answer.status}`);
      return EXIT.failed;
    }
    return EXIT.ok;
  },
};

export default command;
