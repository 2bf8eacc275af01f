// Helpers the stand-alone benchmark scripts share: a free loopback port, a child process's
// output, and one framed HTTP response read off a user-space TCP socket.
import { execFile } from "node:child_process";
import net from "node:net";
import type { TcpSocket } from "../sc/tcp/socket.js";

/** A port nothing listens on right now (the kernel's pick for port 0). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Runs a program to its end; its stdout and stderr, or an error with its stderr. */
export function exec(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${file}: ${stderr || err.message}`)) : resolve(stdout + stderr),
    ),
  );
}

/**
 * Resolves when one 200 response with `bodyBytes` of body has arrived (one request at a time);
 * rejects on another status, on bytes beyond that one response, or when the connection closes.
 */
export function readResponse(s: TcpSocket, bodyBytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let have = 0;
    let want = -1;
    let head = "";
    const onData = (chunk: Buffer) => {
      have += chunk.length;
      if (want < 0) {
        head += chunk.toString("latin1");
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        if (!head.startsWith("HTTP/1.1 200"))
          return fail(new Error(`unexpected response: ${head.slice(0, 40)}`));
        want = end + 4 + bodyBytes;
      }
      if (have < want) return;
      if (have > want) return fail(new Error(`${have - want} bytes more than one response`));
      stop();
      resolve();
    };
    const onClose = () => fail(new Error(`connection closed after ${have} bytes`));
    const stop = () => {
      s.off("data", onData);
      s.off("close", onClose);
    };
    const fail = (e: Error) => {
      stop();
      reject(e);
    };
    s.on("data", onData);
    s.on("close", onClose);
  });
}
