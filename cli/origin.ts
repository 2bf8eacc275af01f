// `sc-cluster origin`: the origin file server that nodes started with --origin fetch from.
import type { Command } from "./command.js";
import { CONFIG_OPTIONS, hostPort, parseConfigured, str } from "../common/args.js";
import { createLogger, LOG_LEVELS } from "../server/log.js";
import { startOrigin } from "../origin/server.js";
import { untilSignal } from "../server/node/signals.js";
import { EXIT } from "../common/errors.js";

export const command: Command = {
  spec: {
    name: "origin",
    summary: "Run the origin file server (fastify + @fastify/static) that nodes fetch documents from",
    usage: "sc-cluster origin --root DIR [--listen ADDR:PORT]",
    options: {
      root: { type: "string", value: "DIR", help: "Directory to serve (required)" },
      listen: { type: "string", value: "ADDR:PORT", help: "Address to listen on", default: "127.0.0.1:8000" },
      "log-level": {
        type: "string",
        value: "LEVEL",
        help: `Log level: ${LOG_LEVELS.join("|")}`,
        default: "info",
      },
      ...CONFIG_OPTIONS,
    },
    epilog:
      'Serves GET/HEAD with a strong ETag "size-mtime", Last-Modified, ranges and 301 for /dir -> /dir/,\n' +
      "the same validators nodes compute from the same files. Logs are JSON lines on stdout.\n" +
      "Every option is also an SC_<OPTION> environment variable (SC_ROOT, SC_LISTEN); precedence\n" +
      "flag > environment > --config file > default (docs/configuration.md).",
  },
  async run(argv) {
    const { values } = await parseConfigured(this.spec, argv, process.env);
    const root = str(values, "root");
    const { host, port } = hostPort(str(values, "listen"), "--listen");
    const logger = createLogger(str(values, "log-level"), { role: "origin" });
    const origin = await startOrigin({ root, host, port, logger });
    logger.info({ listen: `${origin.address.host}:${origin.address.port}`, root }, "origin listening");
    const signal = await untilSignal();
    logger.info({ signal }, "origin stopping");
    await origin.close();
    return EXIT.ok;
  },
};

export default command;
