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
  /**
   * The first record's time when it is not FIRST (the older fixtures: their lines are not
   * all within seconds of one instant, so only the first is checked).
   */
  ownClock?: number;
}

export const VARIANT_FIXTURES: VariantFixture[] = [
  // The formats' first fixtures (bad lines on purpose; reader.test.ts checks them line by line).
  {
    file: "clf.log",
    format: "clf",
    records: 8,
    replayable: 7,
    first: { url: "/index.html", status: 200, bytes: 1839, host: "host1.example" },
    badByReason: { syntax: 1, bad_date: 1, bad_status: 1, bad_bytes: 1, bad_request: 1 },
    ownClock: FIRST,
  },
  {
    file: "combined.log",
    format: "combined",
    records: 4,
    replayable: 2,
    first: { url: "/apache_pb.gif", status: 200, bytes: 2326, host: "10.0.0.1" },
    badByReason: {},
    ownClock: 971211336,
  },
  {
    file: "epa.log",
    format: "epa",
    records: 6,
    replayable: 5,
    first: { url: "/Software.html", status: 200, bytes: 1497, host: "141.243.1.172" },
    badByReason: { bad_date: 1, syntax: 1 },
    ownClock: ((29 * 24 + 23) * 60 + 53) * 60 + 25,
  },
  {
    file: "nasa.tsv",
    format: "nasa-tsv",
    records: 3,
    replayable: 3,
    first: { url: "/history/apollo/", status: 200, bytes: 6245, host: "199.72.81.55" },
    badByReason: { bad_time: 1, syntax: 2 },
    ownClock: 804571201,
  },
  // The variants of issue 24, all starting at FIRST.
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
