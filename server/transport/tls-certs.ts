// A certificate authority and a server certificate for a demo or test cluster, made with the
// openssl CLI (node:crypto parses X.509 but cannot issue it). Every client that should trust
// the cluster gets the CA certificate (curl --cacert, a browser's authorities), never the key.
import { execFile } from "node:child_process";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { UserError } from "../../common/errors.js";

const run = promisify(execFile);

export interface DemoCertificates {
  /** The CA's certificate: what clients trust. */
  caCert: string;
  /** The server's certificate chain (leaf, then the CA) and its key (mode 0600): what nodes load. */
  cert: string;
  key: string;
}

export interface DemoCertificateOptions {
  /** IP addresses the certificate is valid for (subjectAltName IP:...), e.g. the VIP. */
  ips: readonly string[];
  /** DNS names it is valid for. */
  names: readonly string[];
  /** Validity in days (default 30: a demo certificate should not outlive its demo by much). */
  days?: number;
  /** The CA's common name, shown by browsers and `openssl x509 -text`. */
  caName?: string;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args, { timeout: 30_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT")
      throw new UserError(
        "the openssl command is needed to make the demo certificates (apt-get install openssl)",
      );
    throw new UserError(`openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim()}`);
  }
}

/**
 * Makes `dir`/ca.crt, ca.key, server.crt (leaf + CA), server.key: P-256 keys, a CA limited to
 * signing certificates, a leaf for serverAuth with the given names and addresses.
 */
export async function makeDemoCertificates(
  dir: string,
  o: DemoCertificateOptions,
): Promise<DemoCertificates> {
  const days = String(o.days ?? 30);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const f = (n: string) => join(dir, n);
  const san = [...o.ips.map((ip) => `IP:${ip}`), ...o.names.map((n) => `DNS:${n}`)].join(",");
  if (san === "") throw new UserError("a demo certificate needs at least one address or name");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await openssl([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.crt"),
    "-days",
    days,
    "-subj",
    `/CN=${o.caName ?? "sc-cluster demo CA"}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE,pathlen:0",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  await openssl([
    "req",
    ...ec,
    "-keyout",
    f("server.key"),
    "-out",
    f("server.csr"),
    "-subj",
    "/CN=sc-cluster",
  ]);
  await writeFile(
    f("server.ext"),
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      `subjectAltName=${san}`,
      "",
    ].join("\n"),
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    f("server.csr"),
    "-CA",
    f("ca.crt"),
    "-CAkey",
    f("ca.key"),
    "-CAcreateserial",
    "-out",
    f("leaf.crt"),
    "-days",
    days,
    "-extfile",
    f("server.ext"),
  ]);
  // The chain the nodes send: the leaf, then the CA (clients that trust the CA need only the leaf).
  await writeFile(
    f("server.crt"),
    Buffer.concat([await readFile(f("leaf.crt")), await readFile(f("ca.crt"))]),
  );
  await chmod(f("server.key"), 0o600);
  await chmod(f("ca.key"), 0o600);
  await Promise.all(["server.csr", "server.ext", "leaf.crt", "ca.srl"].map((n) => rm(f(n), { force: true })));
  return { caCert: f("ca.crt"), cert: f("server.crt"), key: f("server.key") };
}
