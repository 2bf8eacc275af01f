// `sc-cluster purge`: drop cached documents on every node (POST /purge on one node's admin
// API, which passes it on to the other members: server/node/purge.ts).
import type { Command } from "./command.js";
import { bool, optStr, parseCommand, str, UsageError, type CommandSpec } from "../common/args.js";
import { TRUST_OPTIONS, trustFrom } from "../sc/auth/trust-options.js";
import { ADMIN_ACCESS_OPTIONS, readAdminToken } from "../sc/auth/admin-access-options.js";
import { DEFAULT_PREFIX } from "../testbed/topology.js";
import { sendAdmin } from "./members.js";
import { EXIT } from "../common/errors.js";

const spec: CommandSpec = {
  name: "purge",
  summary: "Drop cached documents (one URL, a prefix, or all) on every node of the cluster",
  usage: "sc-cluster purge (--url PATH | --prefix PATH | --all) [--node ADMIN_URL] [options]",
  options: {
    url: { type: "string", value: "PATH", help: "The document to drop, e.g. /index.html" },
    prefix: { type: "string", value: "PATH", help: "Drop every document under this path, e.g. /assets/" },
    all: { type: "boolean", help: "Drop every cached document" },
    node: {
      type: "string",
      value: "URL",
      help: "Admin API of any node (e.g. http://198.18.0.11:9080) [default: node1 of the local cluster]",
    },
    cluster: {
      type: "string",
      value: "PREFIX",
      help: "The local cluster (its `sc-cluster up --prefix`), when --node is not given",
      default: DEFAULT_PREFIX,
    },
    ...TRUST_OPTIONS,
    "admin-token-file": ADMIN_ACCESS_OPTIONS["admin-token-file"]!,
  },
  epilog: [
    "The node purges its own cache, then every other member's (with the admin token of the cluster secret),",
    "and answers once all did: exit code 0 when every node purged, 1 naming those that did not. A request",
    "arriving at any node after that gets the origin's current version (docs/server.md, Content updates).",
  ].join("\n"),
};

export const command: Command = {
  spec,
  async run(argv) {
    const { values } = parseCommand(spec, argv);
    const url = optStr(values, "url");
    const prefix = optStr(values, "prefix");
    const all = bool(values, "all");
    if ([url !== undefined, prefix !== undefined, all].filter(Boolean).length !== 1)
      throw new UsageError(
        "purge: give exactly one of --url PATH, --prefix PATH, --all\nTry 'sc-cluster purge --help'.",
      );
    const body = all ? { all: true } : url !== undefined ? { url } : { prefix };
    const node = optStr(values, "node");
    const tokenFile = optStr(values, "admin-token-file");
    const trust = node === undefined ? null : await trustFrom(values, process.env, undefined);
    const token =
      tokenFile !== undefined
        ? await readAdminToken(tokenFile)
        : trust?.kind === "secret"
          ? trust.secret.adminToken()
          : undefined;
    const answer = await sendAdmin({
      cluster: str(values, "cluster"),
      admin: node,
      role: "node",
      method: "POST",
      path: "/purge",
      body,
      token,
    });
    console.log(answer.body);
    return answer.status === 200 ? EXIT.ok : EXIT.failed;
  },
};

export default command;
