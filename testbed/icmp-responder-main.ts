// Process entry of the ICMP responder, started inside a testbed host (a TUN device belongs
// to the namespace of the process that opens it):
//   ip netns exec sc-node1 node dist/testbed/icmp-responder-main.js [--tun sctun] [--vip 198.18.100.1]
// Prints {"ready":...} once attached; on SIGTERM/SIGINT prints its counters and exits 0.
import { parseArgs } from "node:util";
import { IcmpResponder } from "./icmp-responder.js";
import { TUN_DEV, VIP } from "./topology.js";

const { values } = parseArgs({
  options: { tun: { type: "string", default: TUN_DEV }, vip: { type: "string", default: VIP } },
});
const tun = values.tun!;
const vip = values.vip!;

let responder: IcmpResponder;
try {
  responder = IcmpResponder.open(vip, { name: tun, up: true });
} catch (err) {
  console.error(`icmp-responder: ${(err as Error).message}`);
  process.exit(1);
}

const stop = (): void => {
  const tunStats = responder.tun.stats;
  responder.close();
  process.stdout.write(JSON.stringify({ ...responder.stats, tun: tunStats }) + "\n", () => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdout.write(JSON.stringify({ ready: true, tun: responder.tun.name, vip }) + "\n");
