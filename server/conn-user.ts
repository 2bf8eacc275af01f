// --stack user: our own TCP stack (sc/tcp) on a TUN device (sc/tun), owning one address (the
// VIP). Its TcpSocket follows node:net's Socket, so it is a Conn as it is; this adapter only
// turns its TcpServer into a ConnListener. Loaded lazily: the kernel stack never needs the
// native TUN addon.
import type { ConnListener } from "./conn.js";

export interface UserStackOptions {
  /** TUN device to attach to (the testbed makes a persistent "sctun" in each host). */
  tun: string;
  /** The address the stack answers for (the VIP). */
  address: string;
  port: number;
  /** Overrides of the TCP stack's configuration (sc/tcp/config.ts). */
  tcpConfig?: Record<string, unknown>;
}

export interface UserListener extends ConnListener {
  /** The stack's counters (for /stats). */
  tcpStats(): Record<string, unknown>;
}

export async function listenUser(opts: UserStackOptions): Promise<UserListener> {
  const { TunDevice } = await import("../sc/tun/index.js");
  const { TcpTunRuntime } = await import("../sc/tcp/runtime.js");
  const { TcpServer } = await import("../sc/tcp/socket.js");
  const tun = TunDevice.open({ name: opts.tun, up: true, maxBatch: 256 });
  let runtime;
  try {
    runtime = new TcpTunRuntime(tun, { addresses: [opts.address], config: opts.tcpConfig ?? {} });
  } catch (err) {
    tun.close();
    throw err;
  }
  const stack = runtime.stack;
  const server = new TcpServer(stack, { allowHalfOpen: true, noDelay: true });
  server.listen(opts.port, opts.address);
  let closed = false;
  return {
    address: { host: opts.address, port: opts.port },
    onConnection(handler) {
      server.on("connection", handler);
    },
    close() {
      if (!closed) {
        closed = true;
        server.close();
      }
      return Promise.resolve();
    },
    dispose() {
      runtime.close();
      tun.close();
      return Promise.resolve();
    },
    tcpStats() {
      return { connections: stack.connections, counters: stack.counters, tun: tun.stats };
    },
  };
}
