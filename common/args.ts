// Small declarative option parser on top of node:util parseArgs, so every command
// gets the same --help layout (each option with its default) and the same errors.
import { parseArgs } from "node:util";
import { EXIT, UserError } from "./errors.js";

export interface OptionSpec {
  type: "string" | "boolean";
  /** What the option does, for --help. */
  help: string;
  /** Shown in --help and returned when the option is absent. */
  default?: string | boolean;
  /** Placeholder for the value in --help, e.g. "ADDR:PORT". */
  value?: string;
  multiple?: boolean;
  short?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  options: Record<string, OptionSpec>;
  /** Extra text after the option list. */
  epilog?: string;
  allowPositionals?: boolean;
}

/** A bad command line (exit code 2). */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message, "ERR_USAGE", { exitCode: EXIT.usage });
  }
}

export type ParsedValues = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  values: ParsedValues;
  positionals: string[];
  help: boolean;
}

export function parseCommand(spec: CommandSpec, argv: string[]): Parsed {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = {
      type: o.type,
      ...(o.multiple ? { multiple: true } : {}),
      ...(o.short ? { short: o.short } : {}),
    };
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options,
      allowPositionals: spec.allowPositionals ?? false,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(
      `${spec.name}: ${(err as Error).message.split("\n")[0]}\nTry 'sc-cluster ${spec.name} --help'.`,
    );
  }
  const values: ParsedValues = { ...(parsed.values as ParsedValues) };
  for (const [name, o] of Object.entries(spec.options)) {
    if (values[name] === undefined && o.default !== undefined) values[name] = o.default;
  }
  return { values, positionals: parsed.positionals, help: values.help === true };
}

export function formatHelp(spec: CommandSpec): string {
  const lines = [`Usage: ${spec.usage}`, "", spec.summary, "", "Options:"];
  const rows: [string, string][] = [];
  for (const [name, o] of Object.entries(spec.options)) {
    const flag = `${o.short ? `-${o.short}, ` : ""}--${name}${o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""}`;
    let text = o.help;
    if (o.multiple) text += " (repeatable)";
    if (o.default !== undefined && o.default !== false) text += ` [default: ${String(o.default)}]`;
    rows.push([flag, text]);
  }
  rows.push(["-h, --help", "Show this help"]);
  const width = Math.min(34, Math.max(...rows.map(([f]) => f.length)) + 2);
  for (const [flag, text] of rows) {
    lines.push(
      flag.length + 2 > width ? `  ${flag}\n  ${" ".repeat(width)}${text}` : `  ${flag.padEnd(width)}${text}`,
    );
  }
  if (spec.epilog) lines.push("", spec.epilog);
  return lines.join("\n");
}

/** Reads a string option that has a default, so it is always present. */
export function str(values: ParsedValues, name: string): string {
  const v = values[name];
  if (typeof v !== "string") throw new UsageError(`--${name} is required`);
  return v;
}

export function optStr(values: ParsedValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

export function list(values: ParsedValues, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
}

export function int(values: ParsedValues, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = str(values, name);
  if (!/^\d+$/.test(raw)) throw new UsageError(`--${name} must be a whole number, got '${raw}'`);
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function num(values: ParsedValues, name: string, min = -Infinity, max = Infinity): number {
  const raw = str(values, name);
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n))
    throw new UsageError(`--${name} must be a number, got '${raw}'`);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function bool(values: ParsedValues, name: string): boolean {
  return values[name] === true;
}

/** Parses "HOST:PORT" (IPv4 or a name); the port is required. */
export function hostPort(value: string, what: string): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(value);
  if (!m || !m[1] || Number(m[2]) > 65535) throw new UsageError(`${what} must be ADDR:PORT, got '${value}'`);
  return { host: m[1], port: Number(m[2]) };
}

// ------------------------------------------------------------------ config file and environment
//
// The daemons (node, dispatcher, origin) take every option also from the environment
// (SC_<OPTION>, e.g. SC_CACHE_BYTES for --cache-bytes) and from a JSON config file (--config
// FILE or SC_CONFIG): precedence flag > environment > file > default. The file has one section
// per command, keyed by the option names without "--" (docs/configuration.md):
//   { "node": { "cache-bytes": "512M", "peer": ["node1=198.18.0.11", ...] }, "dispatcher": {...} }

export const CONFIG_OPTIONS: Record<string, OptionSpec> = {
  config: {
    type: "string",
    value: "FILE",
    help:
      "JSON config file: a section per command (node, dispatcher, origin) with the option names as keys; " +
      "flags win over SC_<OPTION> environment variables, which win over the file (docs/configuration.md)",
  },
};

/** The sections a config file may have (the configurable commands). */
export const CONFIG_SECTIONS: readonly string[] = ["node", "dispatcher", "origin"];

/** Where a value came from, for error messages and reload reports. */
export type ValueSource = "flag" | "env" | "file" | "default";

export interface ConfiguredParse extends Parsed {
  /** Where each present option's value came from. */
  sources: Record<string, ValueSource>;
  /** The config file read, if any. */
  configFile: string | undefined;
}

/** The environment variable of an option: SC_ + its name in upper case, '-' as '_'. */
export function envName(option: string): string {
  return `SC_${option.toUpperCase().replace(/-/g, "_")}`;
}

const TRUE_WORDS = new Set(["1", "true", "yes", "on"]);
const FALSE_WORDS = new Set(["0", "false", "no", "off", ""]);

/** The options set in `env` (pure). Multiple options take whitespace-separated values. */
export function optionsFromEnv(spec: CommandSpec, env: NodeJS.ProcessEnv): ParsedValues {
  const out: ParsedValues = {};
  for (const [name, o] of Object.entries(spec.options)) {
    if (name === "config") continue;
    const raw = env[envName(name)];
    if (raw === undefined) continue;
    if (o.type === "boolean") {
      const w = raw.trim().toLowerCase();
      if (TRUE_WORDS.has(w)) out[name] = true;
      else if (!FALSE_WORDS.has(w))
        throw new UsageError(
          `$${envName(name)} must be true/false (1/0, yes/no), got '${raw.slice(0, 100)}'`,
        );
    } else if (o.multiple) out[name] = raw.split(/\s+/).filter((s) => s !== "");
    else out[name] = raw;
  }
  return out;
}

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : `a ${typeof v}`;
}

/**
 * Checks a parsed config document and returns the options of `spec`'s section (pure). Every
 * error names the file and the field. Other commands' sections must be objects; their fields
 * are checked by their own command.
 */
export function optionsFromConfig(doc: unknown, spec: CommandSpec, file: string): ParsedValues {
  const where = (field: string) => `config ${file}: ${field}`;
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw new UsageError(
      `config ${file}: the top level must be an object with sections ${CONFIG_SECTIONS.join(", ")}`,
    );
  for (const [k, v] of Object.entries(doc)) {
    if (k === "$schema") continue;
    if (!CONFIG_SECTIONS.includes(k))
      throw new UsageError(`${where(`'${k}'`)} is not a section (sections: ${CONFIG_SECTIONS.join(", ")})`);
    if (typeof v !== "object" || v === null || Array.isArray(v))
      throw new UsageError(`${where(`'${k}'`)} must be an object, got ${typeName(v)}`);
  }
  const section = (doc as Record<string, unknown>)[spec.name];
  if (section === undefined) return {};
  const out: ParsedValues = {};
  for (const [name, v] of Object.entries(section as Record<string, unknown>)) {
    const field = `${spec.name}.${name}`;
    const o = spec.options[name];
    if (o === undefined || name === "config")
      throw new UsageError(
        `${where(field)}: unknown field (the ${spec.name} options are listed by 'sc-cluster ${spec.name} --help')`,
      );
    const scalar = (x: unknown): string => {
      if (typeof x === "string") return x;
      if (typeof x === "number" && Number.isFinite(x)) return String(x);
      throw new UsageError(`${where(field)}: must be a string or a number, got ${typeName(x)}`);
    };
    if (o.type === "boolean") {
      if (typeof v !== "boolean")
        throw new UsageError(`${where(field)}: must be true or false, got ${typeName(v)}`);
      if (v) out[name] = true;
    } else if (o.multiple) {
      if (!Array.isArray(v) && typeof v !== "string")
        throw new UsageError(`${where(field)}: must be an array of strings, got ${typeName(v)}`);
      out[name] = (Array.isArray(v) ? v : [v]).map(scalar);
    } else out[name] = scalar(v);
  }
  return out;
}

/** Largest config file read (a config is a few KiB; this bounds a wrong path to a big file). */
const MAX_CONFIG_BYTES = 1 << 20;

/** Reads and parses a JSON config file (I/O edge); errors name the file. */
export async function readConfigFile(path: string): Promise<unknown> {
  const { readFile, stat } = await import("node:fs/promises");
  let text: string;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new UsageError(`config ${path}: not a file`);
    if (st.size > MAX_CONFIG_BYTES)
      throw new UsageError(`config ${path}: larger than ${MAX_CONFIG_BYTES} bytes`);
    text = await readFile(path, "utf8");
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read config ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`config ${path}: not valid JSON: ${(err as Error).message}`);
  }
}

/** Layers the sources: flag > env > file > default (pure). */
export function layerOptions(
  spec: CommandSpec,
  flags: ParsedValues,
  env: ParsedValues,
  file: ParsedValues,
): { values: ParsedValues; sources: Record<string, ValueSource> } {
  const values: ParsedValues = {};
  const sources: Record<string, ValueSource> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    for (const [src, from] of [
      ["flag", flags],
      ["env", env],
      ["file", file],
    ] as const) {
      if (from[name] !== undefined) {
        values[name] = from[name];
        sources[name] = src;
        break;
      }
    }
    if (values[name] === undefined && o.default !== undefined) {
      values[name] = o.default;
      sources[name] = "default";
    }
  }
  if (flags.help === true) values.help = true;
  return { values, sources };
}

/**
 * parseCommand for the daemons: the command line, then SC_* variables, then the config file
 * (--config or $SC_CONFIG), then the defaults. Call again (e.g. on SIGHUP) to re-read the
 * environment's file.
 */
export async function parseConfigured(
  spec: CommandSpec,
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<ConfiguredParse> {
  const bare: CommandSpec = {
    ...spec,
    options: Object.fromEntries(
      Object.entries(spec.options).map(([k, { default: _d, ...o }]) => [k, o as OptionSpec]),
    ),
  };
  const { values: flags, positionals, help } = parseCommand(bare, argv);
  const fromEnv = optionsFromEnv(spec, env);
  const configFile = optStr(flags, "config") ?? env[envName("config")];
  const fromFile =
    configFile === undefined || configFile === "" || help
      ? {}
      : optionsFromConfig(await readConfigFile(configFile), spec, configFile);
  const { values, sources } = layerOptions(spec, flags, fromEnv, fromFile);
  const parsed = { values, positionals, help, sources, configFile: configFile || undefined };
  lastConfigured = { parsed, command: spec.name };
  return parsed;
}

/** The process's last configured parse (a process runs one command), for explainUsageError. */
let lastConfigured: { parsed: ConfiguredParse; command: string } | undefined;

/** withValueSource over the last configured parse: what main prints for a UsageError. */
export function explainUsageError(err: UsageError): UsageError {
  if (lastConfigured === undefined) return err;
  return withValueSource(err, lastConfigured.parsed, lastConfigured.command) as UsageError;
}

/**
 * Names where a bad value came from: a UsageError about `--name` whose value was set by the
 * environment or the config file gets "(set by $SC_NAME)" or "(set by FILE: node.name)".
 */
export function withValueSource(err: unknown, parsed: ConfiguredParse, command: string): unknown {
  if (!(err instanceof UsageError)) return err;
  const m = /--([a-z0-9-]+)/.exec(err.message);
  const name = m?.[1];
  if (name === undefined) return err;
  const src = parsed.sources[name];
  if (src === "env") return new UsageError(`${err.message} (set by $${envName(name)})`);
  if (src === "file")
    return new UsageError(`${err.message} (set by ${parsed.configFile}: ${command}.${name})`);
  return err;
}
