// `--format` and `--json-fields`, the same for every command that reads a trace (site,
// loadgen, trace stats).
import { optStr, str, UsageError, type OptionSpec, type ParsedValues } from "../common/args.js";
import { TRACE_FORMATS } from "../loadgen/trace/formats.js";
import { JSON_FIELDS, parseJsonFields } from "../loadgen/trace/json.js";
import { isFormatOption, type FormatOption } from "../loadgen/trace/reader.js";

export const TRACE_FORMAT_OPTIONS: Record<"format" | "json-fields", OptionSpec> = {
  format: {
    type: "string",
    value: "F",
    help: `Trace format: auto|${TRACE_FORMATS.join("|")} (docs/loadgen.md lists the variants)`,
    default: "auto",
  },
  "json-fields": {
    type: "string",
    value: "MAP",
    help:
      `JSON lines: where a field is, FIELD=PATH[,...] with FIELD one of ${JSON_FIELDS.join(", ")} ` +
      "and PATH keys joined by dots (e.g. url=req.path); the others keep their defaults",
  },
};

/** The format (and JSON field names) the options ask for; UsageError if they are wrong. */
export function traceFormatOption(values: ParsedValues): FormatOption {
  const format = str(values, "format");
  if (!isFormatOption(format))
    throw new UsageError(`--format must be auto or one of ${TRACE_FORMATS.join(", ")}`);
  const spec = optStr(values, "json-fields");
  if (spec === undefined) return format;
  if (format !== "auto" && format !== "json")
    throw new UsageError("--json-fields is for --format json (or auto)");
  try {
    return { format, jsonFields: parseJsonFields(spec) };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
