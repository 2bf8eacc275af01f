// The pure parts of server-bench.ts: wrk's output read, the median of a server's runs, and the
// table against nginx, apart from the script so they can be tested.

/** One run's figures: requests/s, MB/s and errors (transport errors and non-2xx/3xx responses). */
export interface Measured {
  rps: number;
  mbps: number;
  errors: number;
}

/** A server's figures for one file: its median run, with the errors of all its runs. */
export interface Result extends Measured {
  server: string;
  file: string;
}

/** The figures of one wrk run from its report (NaN where wrk printed none). */
export function parseWrk(out: string): Measured {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const t = /Transfer\/sec:\s+([\d.]+)(KB|MB|GB)/.exec(out);
  const mbps = t
    ? Number(t[1]) * { KB: 1 / 1024, MB: 1, GB: 1024 }[t[2] as "KB" | "MB" | "GB"] * 1.048576
    : NaN;
  const errLine = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = (errLine ? errLine.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + non2xx;
  return { rps, mbps, errors };
}

/** The run with the median requests/s (the upper one of an even count), with the errors of every run. */
export function medianRun(server: string, file: string, runs: readonly Measured[]): Result {
  const rs = [...runs].sort((a, b) => a.rps - b.rps);
  const med = rs[Math.floor(rs.length / 2)]!;
  return { server, file, ...med, errors: rs.reduce((n, r) => n + r.errors, 0) };
}

/** Markdown: per file, every server's requests/s and each one's ratio to nginx. */
export function comparisonTable(results: readonly Result[], files: readonly string[]): string[] {
  const names = [...new Set(results.map((r) => r.server))];
  const ours = names.filter((n) => n !== "nginx");
  return [
    `| file | ${names.map((n) => `${n} req/s`).join(" | ")} | ${ours.map((n) => `${n} / nginx`).join(" | ")} |`,
    `| --- |${names.map(() => " ---: |").join("")}${ours.map(() => " ---: |").join("")}`,
    ...files.map((file) => {
      const row = (n: string) => results.find((r) => r.file === file && r.server === n)!;
      const ng = row("nginx").rps;
      return `| ${file} | ${names.map((n) => row(n).rps.toFixed(0)).join(" | ")} | ${ours
        .map((n) => (row(n).rps / ng).toFixed(2))
        .join(" | ")} |`;
    }),
  ];
}
