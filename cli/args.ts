// Small declarative option parser on top of node:util parseArgs, so every command
// gets the same --help layout (each option with its default) and the same errors.
import { parseArgs } from "node:util";

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

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
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
