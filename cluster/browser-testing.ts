// Test support: headless Chromium (Debian's, driven by playwright-core) as the browser tests
// start it. Not product code.
export const CHROMIUM = "/usr/bin/chromium";

/** Quiet, headless, nothing fetched from the internet on its own (updates, sync, QUIC probes). */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
];
