// sc-cluster command dispatcher. Only commands that are implemented are registered,
// so `--help` never lists something that does not work.
import { explainUsageError, formatHelp, parseCommand, UsageError } from "../common/args.js";
import { COMMANDS } from "./commands.js";
import { EXIT, UserError } from "../common/errors.js";
import { readFileSync } from "node:fs";

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

function topHelp(): string {
  const names = Object.keys(COMMANDS);
  const width = Math.max(...names.map((n) => n.length)) + 2;
  return [
    "Usage: sc-cluster <command> [options]",
    "",
    "A cluster web server with Socket Cloning (user-space TCP on Linux TUN devices).",
    "",
    "Commands:",
    ...names.map((n) => `  ${n.padEnd(width)}${COMMANDS[n]!.summary}`),
    "",
    "Run 'sc-cluster <command> --help' or 'sc-cluster help <command>' for a command's options.",
  ].join("\n");
}

export async function runCli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  // `sc-cluster help node` is `sc-cluster node --help`.
  if (name === "help" && rest.length > 0 && COMMANDS[rest[0]!]) return runCli([rest[0]!, "--help"]);
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(topHelp());
    return name ? EXIT.ok : EXIT.failed;
  }
  if (name === "--version" || name === "-V") {
    console.log(version());
    return EXIT.ok;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    console.error(`sc-cluster: unknown command '${name}'\n\n${topHelp()}`);
    return EXIT.usage;
  }
  try {
    const cmd = await entry.load();
    const parsedHelp = rest.includes("--help") || rest.includes("-h");
    if (parsedHelp) {
      parseCommand(cmd.spec, ["--help"]);
      console.log(formatHelp(cmd.spec));
      return EXIT.ok;
    }
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(explainUsageError(err).message);
      return err.exitCode;
    }
    if (err instanceof UserError) {
      console.error(`sc-cluster ${name}: ${err.message}`);
      return err.exitCode;
    }
    throw err;
  }
}
