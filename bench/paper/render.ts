// SVG -> PNG with Debian's chromium in headless mode (scripts/setup-host.sh installs it). It runs
// in a network namespace of its own with no interfaces (`unshare --net`), so it cannot reach
// anything, with a throwaway profile directory; killed if it takes over a minute.
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { run } from "../../testbed/index.js";
import { findExecutable } from "../../testbed/run.js";

export function chromiumPath(): string | undefined {
  return findExecutable("chromium") ?? findExecutable("chromium-browser");
}

/** Renders `svg` (a file) to `png` at twice the SVG's size. Throws when chromium fails. */
export async function renderPng(svg: string, png: string, width: number, height: number): Promise<void> {
  const chromium = chromiumPath();
  if (!chromium) throw new Error("chromium is not installed (scripts/setup-host.sh installs it)");
  const profile = await mkdtemp(join(tmpdir(), "sc-bench-chromium-"));
  try {
    const argv = [
      chromium,
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-extensions",
      "--no-first-run",
      "--hide-scrollbars",
      "--force-device-scale-factor=2",
      `--user-data-dir=${profile}`,
      `--window-size=${width},${height}`,
      `--screenshot=${resolve(png)}`,
      pathToFileURL(resolve(svg)).href,
    ];
    const isolated = findExecutable("unshare") ? ["unshare", "--net", ...argv] : argv;
    await run(isolated, { timeoutMs: 60_000 });
    if ((await stat(png)).size === 0) throw new Error(`chromium wrote an empty ${png}`);
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

/** The width and height attributes of an SVG document. */
export function svgSize(svg: string): { width: number; height: number } {
  const w = /<svg[^>]*\bwidth="(\d+)"/.exec(svg);
  const h = /<svg[^>]*\bheight="(\d+)"/.exec(svg);
  return { width: Number(w?.[1] ?? 640), height: Number(h?.[1] ?? 480) };
}
