// The variant fixtures (loadgen/fixtures/) and what reading each must give: shared by the unit
// round trip (variants.test.ts) and the cluster replay (variants.netns.test.ts). Tests only.
import type { TraceFormat } from "./formats.js";

/** 1995-08-01T04:00:01Z, the first line of every fixture. */
export const FIRST = 807249601;

export interface VariantFixture {
  file: string;
  format: TraceFormat;
  records: number;
  /** Lines a static server reproduces (what `site` puts in the manifest). */
  replayable: number;
  /** The first record's url and status, and how bad lines are counted. */
  first: { url: string; status: number; bytes: number | null; host: string };
  badByReason: Record<string, number>;
}

export const VARIANT_FIXTURES: VariantFixture[] = [
  {
    file: "nasa-variant.tsv",
    format: "nasa-tsv",
    records: 7,
    replayable: 7,
    first: { url: "/history/apollo/", status: 200, bytes: 6245, host: "199.72.81.55" },
    badByReason: {},
  },
  {
    file: "nginx-timed.log",
    format: "clf",
    records: 5,
    replayable: 5,
    first: { url: "/index.html", status: 200, bytes: 1839, host: "203.0.113.9" },
    badByReason: { bad_request: 1 },
  },
  {
    file: "nginx-main.log",
    format: "combined",
    records: 5,
    replayable: 5,
    first: { url: "/index.html", status: 200, bytes: 1839, host: "203.0.113.9" },
    badByReason: {},
  },
  {
    file: "vhost-combined.log",
    format: "combined",
    records: 4,
    replayable: 3,
    first: { url: "/index.html", status: 200, bytes: 1839, host: "203.0.113.9" },
    badByReason: {},
  },
  {
    file: "nginx-iso.log",
    format: "combined",
    records: 4,
    replayable: 4,
    first: { url: "/index.html", status: 200, bytes: 1839, host: "203.0.113.9" },
    badByReason: {},
  },
  {
    file: "nginx.jsonl",
    format: "json",
    records: 4,
    replayable: 4,
    first: { url: "/index.html", status: 200, bytes: 1839, host: "203.0.113.9" },
    badByReason: { bad_request: 1 },
  },
  {
    file: "caddy.jsonl",
    format: "json",
    records: 4,
    replayable: 4,
    first: { url: "/index.html", status: 200, bytes: 1839, host: "203.0.113.9" },
    badByReason: { bad_request: 1 },
  },
  {
    file: "traefik.jsonl",
    format: "json",
    records: 4,
    replayable: 4,
    first: { url: "/index.html", status: 200, bytes: 1839, host: "203.0.113.9" },
    badByReason: {},
  },
  {
    file: "iis.log",
    format: "w3c",
    records: 5,
    replayable: 4,
    first: { url: "/index.html", status: 200, bytes: 1839, host: "203.0.113.9" },
    badByReason: {},
  },
  {
    file: "cloudfront.log",
    format: "w3c",
    records: 3,
    replayable: 3,
    first: { url: "/index.html", status: 200, bytes: 1839, host: "203.0.113.9" },
    badByReason: {},
  },
];
