// First proof of the packet path: with the VIP routed to node1 (--vip-host node1), a
// user-space process on node1's TUN answers the client's pings to the VIP, without loss.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { destroyTestbed, testPrefix, withTestbed } from "./testbed.js";
import { ping } from "./measure.js";
import { VIP } from "./topology.js";
import type { EchoStats } from "./icmp-responder.js";
import type { TunStats } from "../sc/tun/index.js";

const MAIN = fileURLToPath(new URL("./icmp-responder-main.js", import.meta.url));
const P = testPrefix("i");

after(async () => {
  await destroyTestbed(P);
});

test("ping -c 200 -i 0.01 to the VIP from the client: 0% loss, every reply from the TUN process", async () => {
  await withTestbed({ prefix: P, nodes: 1, vipHost: "node1" }, async (tb) => {
    // Nothing answers for the VIP in the kernel: it is not a local address anywhere.
    const silent = await ping(tb, "client", VIP, { count: 2, intervalS: 0.2, waitS: 0.5 });
    assert.equal(silent.received, 0);

    const responder = tb.spawn("node1", process.execPath, [MAIN, "--tun", "sctun", "--vip", VIP], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    responder.stderr!.on("data", (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((resolve) => responder.on("close", resolve));
    await new Promise<void>((resolve, reject) => {
      responder.stdout!.on("data", (b: Buffer) => {
        out += b.toString();
        if (out.includes("\n")) resolve();
      });
      void exited.then((code) => reject(new Error(`responder exited (${code}): ${err.trim()}`)));
    });
    assert.deepEqual(JSON.parse(out.split("\n")[0]!), { ready: true, tun: "sctun", vip: VIP });

    const s = await ping(tb, "client", VIP, { count: 200, intervalS: 0.01, waitS: 2 });
    assert.deepEqual(s, { transmitted: 200, received: 200, lossPercent: 0 });

    responder.kill("SIGTERM");
    assert.equal(await exited, 0, err);
    const stats = JSON.parse(out.split("\n")[1]!) as EchoStats & { tun: TunStats };
    // IPv6 is off in the testbed, so the TUN saw exactly the pings.
    assert.equal(stats.received, 200);
    assert.equal(stats.replied, 200);
    assert.deepEqual(stats.drops, {});
    assert.equal(stats.tun.packetsOut, 200);
    assert.equal(stats.tun.writeDrops, 0);
  });
});
