#!/usr/bin/env node
// Entry point for `npx sc-cluster`: runs the compiled CLI (npm run build makes dist/).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error("sc-cluster: dist/ is missing; run `npm run build` in the checkout first.");
  process.exit(1);
}
const { runCli } = await import(main.href);
process.exitCode = await runCli(process.argv.slice(2));
