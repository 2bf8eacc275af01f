// sc/tun without a device: the user-facing messages for failures a test machine cannot produce
// on demand (no /dev/net/tun, no tun module, addon not built), name rules, PacketBatch.
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkInterfaceName, explainTunError, TunError } from "./errors.js";
import { PacketBatch } from "./tun.js";
import { addonPath, loadAddonFrom, packageRoot } from "./addon.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../../common/errors.js";

const openErr = (code: string) => ({ code, syscall: "open /dev/net/tun", message: `open: ${code}` });
const setiff = (code: string) => ({ code, syscall: "ioctl TUNSETIFF", message: `ioctl: ${code}` });

test("a missing /dev/net/tun or tun module says how to get it, also for containers", () => {
  for (const code of ["ENOENT", "ENODEV", "ENXIO"]) {
    const err = explainTunError(openErr(code), "tun0");
    assert.ok(err instanceof TunError);
    assert.ok(err instanceof UserError);
    assert.equal(err.code, code);
    assert.match(err.message, /modprobe tun/);
    assert.match(err.message, /--device \/dev\/net\/tun/);
  }
});

test("permission errors say to run as root or with CAP_NET_ADMIN", () => {
  assert.match(explainTunError(openErr("EACCES"), "tun0").message, /root or with CAP_NET_ADMIN/);
  const e = explainTunError(setiff("EPERM"), "tun0");
  assert.match(e.message, /root or with CAP_NET_ADMIN/);
  assert.match(e.message, /ip tuntap add mode tun name NAME user UID/);
  assert.match(
    explainTunError({ code: "EPERM", syscall: "ioctl SIOCSIFMTU" }, "tun0").message,
    /MTU .* CAP_NET_ADMIN/,
  );
});

test("a busy or taken name names the device and the way out", () => {
  const busy = explainTunError(setiff("EBUSY"), "sc-node1");
  assert.match(busy.message, /'sc-node1' is busy/);
  assert.match(busy.message, /pick another name/);
  const taken = explainTunError(setiff("EINVAL"), "eth0");
  assert.match(taken.message, /'eth0'/);
  assert.match(taken.message, /not a compatible TUN device/);
});

test("an unknown failure keeps the system message and the errno fields", () => {
  const e = explainTunError({ code: "EIO", errno: 5, syscall: "ioctl X", message: "ioctl X: I/O error" }, "");
  assert.equal(e.code, "EIO");
  assert.equal(e.errno, 5);
  assert.equal(e.syscall, "ioctl X");
  assert.match(e.message, /a TUN device: ioctl X: I\/O error/);
});

test("interface names follow the kernel's rules", () => {
  for (const ok of ["tun0", "sc-node1", "sct%d", "a".repeat(15)])
    assert.equal(checkInterfaceName(ok), undefined, ok);
  for (const bad of ["", ".", "..", "a/b", "a:b", "a b", "a".repeat(16), "ééééééééé"]) {
    const err = checkInterfaceName(bad);
    assert.ok(err, `'${bad}' accepted`);
    assert.equal(err.code, "ERR_TUN_BAD_NAME");
    assert.ok(err instanceof UserError);
  }
});

test("a PacketBatch reports packets by offset and length, skipping a virtio header", () => {
  const buffer = new Uint8Array(64).map((_, i) => i);
  const meta = new Int32Array([0, 14, 16, 20, 40, 4]);
  const plain = new PacketBatch(buffer, meta, 0);
  plain.count = 3;
  assert.deepEqual(
    [...plain].map((p) => [...p]),
    [[...buffer.subarray(0, 14)], [...buffer.subarray(16, 36)], [...buffer.subarray(40, 44)]],
  );
  assert.equal(plain.packet(1).buffer, buffer.buffer, "packets are views, not copies");
  const vnet = new PacketBatch(buffer, meta, 10);
  vnet.count = 3;
  assert.deepEqual([vnet.offset(0), vnet.length(0)], [10, 4]);
  assert.deepEqual([vnet.offset(1), vnet.length(1)], [26, 10]);
  assert.equal(vnet.length(2), 0, "a read shorter than the header is an empty packet, not a negative length");
});

test("a missing addon says how to build it; a broken one how to rebuild it", () => {
  assert.equal(addonPath(), join(packageRoot(), "sc", "tun", "native", "build", "Release", "sc_tun.node"));
  const dir = mkdtempSync(join(tmpdir(), "sct-addon-"));
  try {
    const missing = join(dir, "sc_tun.node");
    assert.throws(
      () => loadAddonFrom(missing),
      (err: unknown) =>
        err instanceof TunError &&
        err instanceof UserError &&
        err.code === "ERR_TUN_ADDON_MISSING" &&
        err.message.includes("npm run install") &&
        err.message.includes("g++, make and python3"),
    );
    writeFileSync(missing, "not an ELF file");
    assert.throws(
      () => loadAddonFrom(missing),
      (err: unknown) =>
        err instanceof TunError && err.code === "ERR_TUN_ADDON_LOAD" && /--force/.test(err.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
