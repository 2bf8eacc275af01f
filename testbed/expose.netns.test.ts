// --expose: the root namespace reaches the LAN (and has a route for the VIP) while the
// testbed is up, and nothing of it is left after down.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { destroyTestbed, testPrefix, withTestbed } from "./testbed.js";
import { run } from "./run.js";

const P = testPrefix("x");

after(async () => {
  await destroyTestbed(P);
});

const SERVER = `
  const http = require("node:http");
  http.createServer((req, res) => res.end("hello from origin\\n")).listen(8080, "198.18.0.2", () => console.log("ready"));
`;

async function rootState(): Promise<string> {
  const links = (await run(["ip", "-o", "link", "show"])).stdout;
  const routes = (await run(["ip", "-4", "route", "show", "table", "all"])).stdout;
  const mine = (text: string): string[] => text.split("\n").filter((l) => l.includes(`${P}exp`));
  return JSON.stringify({ links: mine(links), routes: mine(routes) });
}

test("--expose: curl from the root namespace reaches a server in the LAN; down removes link and routes", async () => {
  const before = await rootState();
  await withTestbed({ prefix: P, nodes: 1, expose: true }, async (tb) => {
    const vipRoute = (await run(["ip", "-4", "route", "show", "198.18.100.1/32"])).stdout;
    assert.match(vipRoute, new RegExp(`198\\.18\\.100\\.1 via 198\\.18\\.0\\.1 dev ${P}exp`));

    const server = tb.spawn("origin", process.execPath, ["-e", SERVER], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      server.stdout!.on("data", (b: Buffer) => b.toString().includes("ready") && resolve());
      server.on("exit", (c) => reject(new Error(`server exited (${c})`)));
    });
    const r = await run(["curl", "-sS", "--max-time", "5", "http://198.18.0.2:8080/"]);
    assert.equal(r.stdout, "hello from origin\n");
    const p = await run(["ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "1", "198.18.0.11"]);
    assert.match(p.stdout, /2 received/);
  });
  assert.equal(await rootState(), before);
  assert.deepEqual(JSON.parse(before), { links: [], routes: [] });
  const vipRoute = (await run(["ip", "-4", "route", "show", "198.18.100.1/32"])).stdout;
  assert.equal(vipRoute.trim(), "");
});
