// TunDevice against the real kernel, as root, in a private network namespace made here
// (no default route, only 198.18.7.0/24) and always deleted afterwards. The code under test
// runs in child processes inside the namespace (tun.netns.fixture.ts): a TUN device lives
// in the namespace of the process that opens it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const NS = `sct${process.pid}-tun`;
const FIXTURE = fileURLToPath(new URL("./tun.netns.fixture.js", import.meta.url));
/** Failure guard only: every scenario ends on its own well before this. */
const GUARD_MS = 20_000;

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: "pipe" });
}

function deleteNetns(): void {
  try {
    ip("netns", "del", NS);
  } catch {
    // not there
  }
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs one fixture scenario inside the namespace; onSpawn may interact with the child. */
function runScenario(
  scenario: string,
  opts: { unprivileged?: boolean; onStdout?: (text: string, child: ChildProcess) => void } = {},
): Promise<Run> {
  const drop = opts.unprivileged ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
  const child = spawn("ip", ["netns", "exec", NS, ...drop, process.execPath, FIXTURE, scenario], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
    opts.onStdout?.(stdout, child);
  });
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const guard = setTimeout(() => {
      stderr += `\n[test] still running after ${GUARD_MS} ms: killed`;
      child.kill("SIGKILL");
    }, GUARD_MS);
    child.on("exit", (code, signal) => {
      clearTimeout(guard);
      // 'exit' can come before the last output; 'close' waits for the pipes.
      child.on("close", () => resolve({ code, signal, stdout, stderr }));
    });
  });
}

function assertPassed(run: Run): void {
  assert.equal(
    run.code,
    0,
    `scenario failed (code ${run.code}, signal ${run.signal}):\n${run.stderr}${run.stdout}`,
  );
}

describe("TunDevice in a network namespace", { concurrency: false }, () => {
  before(() => {
    deleteNetns(); // a leftover of a crashed run with the same pid
    ip("netns", "add", NS);
    // No IPv6: the link would otherwise emit router solicitations into the reads.
    execFileSync("ip", [
      "netns",
      "exec",
      NS,
      "sysctl",
      "-qw",
      "net.ipv6.conf.all.disable_ipv6=1",
      "net.ipv6.conf.default.disable_ipv6=1",
      "net.ipv4.ip_forward=1", // the gso scenario routes from one TUN device to another
    ]);
    ip("-n", NS, "link", "set", "lo", "up");
    ip("-n", NS, "tuntap", "add", "mode", "tun", "name", "sctun0");
    ip("-n", NS, "addr", "add", "198.18.7.1/24", "dev", "sctun0");
    ip("-n", NS, "link", "set", "sctun0", "up");
  });

  after(() => {
    deleteNetns();
    const left = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    assert.ok(!left.includes(NS), `namespace ${NS} was not removed`);
  });

  test("attaches to a persistent device by name; closing twice is harmless", async () => {
    assertPassed(await runScenario("attach"));
  });

  test("creates a device from a name template with MTU and up; it disappears on close", async () => {
    assertPassed(await runScenario("create"));
  });

  test("two multi-queue TunDevices share one device and its flows", async () => {
    assertPassed(await runScenario("multiQueue"));
  });

  test("reads packets the kernel routes to the device, 64 per batch (io_uring)", async () => {
    assertPassed(await runScenario("read"));
  });

  test("reads the same with read(2) when io_uring is off", async () => {
    assertPassed(await runScenario("readPlain"));
  });

  test("an io_uring read cut short by a grown MTU is dropped and counted; the next is whole", async () => {
    assertPassed(await runScenario("readMtuGrows"));
  });

  test("writes queued and batched packets that the kernel delivers to a UDP socket", async () => {
    assertPassed(await runScenario("write"));
  });

  test("answers ping from the real ping tool (read + write round trip)", async () => {
    assertPassed(await runScenario("ping"));
  });

  test("a GSO write (vnetHdr) reaches the kernel as one packet and leaves as checksummed segments", async () => {
    assertPassed(await runScenario("gso"));
  });

  test("bad names, a busy device, a non-TUN name and bad options give user-facing errors", async () => {
    assertPassed(await runScenario("errors"));
  });

  test("an unprivileged user gets an error that says to run as root or with CAP_NET_ADMIN", async () => {
    assertPassed(await runScenario("noPermission", { unprivileged: true }));
  });

  test("a device deleted while reading gives one 'error' and stops reading", async () => {
    assertPassed(await runScenario("deleted"));
  });

  test("worker threads that end while reading release their device and do not crash", async () => {
    assertPassed(await runScenario("workerTeardown"));
  });

  test("the process exits by itself after close() with a read pending", async () => {
    const run = await runScenario("exitAfterClose");
    assertPassed(run);
    assert.equal(run.signal, null);
  });

  test("process.exit() with a read pending exits", async () => {
    assertPassed(await runScenario("exitWithReadPending"));
  });

  test("a reading process stays alive and still dies on SIGTERM", async () => {
    let aliveWhenSignalled: boolean | undefined;
    const run = await runScenario("waitForSignal", {
      onStdout: (text, child) => {
        if (text.includes("ready") && aliveWhenSignalled === undefined) {
          aliveWhenSignalled = child.exitCode === null && child.signalCode === null;
          child.kill("SIGTERM");
        }
      },
    });
    assert.equal(aliveWhenSignalled, true);
    assert.equal(run.signal, "SIGTERM", run.stderr);
  });

  test("an unref'd reader does not keep the process alive", async () => {
    const run = await runScenario("unrefIdle");
    assertPassed(run);
    assert.match(run.stdout, /exited while reading, closed=false/);
  });
});
