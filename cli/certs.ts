// `sc-cluster certs`: a demo CA and a server certificate for HTTPS on the VIP, as `up` makes
// them, for setups `up` does not start (docker compose, hand-run nodes). The openssl command
// does the work (server/transport/tls-certs.ts).
import { readdir, rm } from "node:fs/promises";
import { isIP } from "node:net";
import type { Command } from "./command.js";
import { bool, int, list, optStr, parseCommand, UsageError } from "../common/args.js";
import { EXIT } from "../common/errors.js";
import { makeDemoCertificates } from "../server/transport/tls-certs.js";

const DEFAULT_VIP = "198.18.100.1";

/** A directory that does not exist yet or is empty: nothing of someone else's is overwritten. */
async function checkEmpty(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new UsageError(`certs: cannot read ${dir}: ${(err as Error).message}`);
  }
  if (entries.length > 0) throw new UsageError(`certs: ${dir} is not empty (nothing is overwritten)`);
}

export const command: Command = {
  spec: {
    name: "certs",
    summary: "Make a demo CA and a server certificate for HTTPS on the VIP (openssl)",
    usage: "sc-cluster certs --out DIR [--ip ADDR]... [--name DNS]... [--days N] [--no-ca-key]",
    options: {
      out: { type: "string", value: "DIR", help: "Where the files go (a new or empty directory)" },
      ip: {
        type: "string",
        value: "ADDR",
        multiple: true,
        help: `An IP address the certificate is for [default: ${DEFAULT_VIP}, the VIP]`,
      },
      name: {
        type: "string",
        value: "DNS",
        multiple: true,
        help: "A DNS name it is for [default: localhost]",
      },
      days: { type: "string", value: "N", help: "Validity of both certificates in days", default: "30" },
      "no-ca-key": {
        type: "boolean",
        help: "Delete the CA's private key once the server certificate is signed (no more certificates can be made from it)",
      },
    },
    epilog:
      "Files: ca.crt (what clients trust), server.crt (the leaf, then the CA: give it to --tls-cert),\n" +
      "server.key (mode 0600: --tls-key), ca.key (mode 0600, unless --no-ca-key). P-256 keys; the CA can only\n" +
      "sign certificates (pathlen 0), the leaf only serve (serverAuth). A demo CA: trust it only where the\n" +
      "demo runs, and make a new one for each cluster (docs/tls.md).",
  },
  async run(argv) {
    const { values } = parseCommand(this.spec, argv);
    const out = optStr(values, "out");
    if (out === undefined) throw new UsageError("certs: --out DIR is required");
    const ips = list(values, "ip");
    for (const ip of ips) if (isIP(ip) === 0) throw new UsageError(`certs: --ip ${ip} is not an IP address`);
    const names = list(values, "name");
    for (const n of names)
      if (!/^[A-Za-z0-9.-]{1,253}$/.test(n)) throw new UsageError(`certs: --name ${n} is not a DNS name`);
    const days = int(values, "days", 1, 3650);
    await checkEmpty(out);
    const made = await makeDemoCertificates(out, {
      ips: ips.length > 0 ? ips : [DEFAULT_VIP],
      names: names.length > 0 ? names : ["localhost"],
      days,
    });
    if (bool(values, "no-ca-key")) await rm(`${out}/ca.key`, { force: true });
    process.stdout.write(`CA ${made.caCert}\ncertificate ${made.cert}\nkey ${made.key}\n`);
    return EXIT.ok;
  },
};

export default command;
