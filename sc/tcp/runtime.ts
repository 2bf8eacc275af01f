// The I/O edge of the TCP stack: binds a TcpStack to a TUN device (sc/tun). TUN read
// batches go to stack.receive() followed by one flush (so ACKs for a batch coalesce);
// outgoing packets are queued on the device, which writes them in one native call per
// tick; ONE JS timer is armed for the stack's earliest deadline (stack.pollAt()).

import { TcpStack, type TcpStackOptions } from "./stack.js";
import type { TunDevice } from "../tun/index.js";

/** Opened with `vnetHdr: true`, the device gets GSO packets of up to config.gsoMaxBytes
 *  (default 65000) bytes: one TUN write per ~44 segments. */
export interface TunRuntimeOptions extends Omit<TcpStackOptions, "output" | "clock" | "onTimersChanged"> {
  /** Called for every outgoing packet before it is queued (tests, capture). */
  tap?: (packet: Uint8Array) => void;
}

export class TcpTunRuntime {
  readonly stack: TcpStack;
  readonly tun: TunDevice;
  private timer: NodeJS.Timeout | undefined = undefined;
  private timerAt = Infinity;
  private closed = false;
  /** Times the single timer fired. */
  timerWakeups = 0;

  constructor(tun: TunDevice, opts: TunRuntimeOptions) {
    this.tun = tun;
    const tap = opts.tap;
    const origin = performance.now();
    this.stack = new TcpStack({
      ...opts,
      clock: () => performance.now() - origin,
      reuseOutputBuffer: true,
      config: { ...opts.config, gsoMaxBytes: tun.vnetHdr ? (opts.config?.gsoMaxBytes ?? 65000) : 0 },
      output: tap
        ? (p, gso) => {
            tap(p);
            tun.write(p, gso);
          }
        : (p, gso) => tun.write(p, gso),
      onTimersChanged: () => this.arm(),
    });
    tun.onPackets((batch) => {
      const stack = this.stack;
      for (let i = 0; i < batch.count; i++) stack.receive(batch.packet(i));
      stack.flush();
    });
  }

  /** Arms the one timer for the earliest deadline, if it moved earlier. */
  private arm(): void {
    if (this.closed) return;
    const at = this.stack.pollAt();
    if (at === undefined) return;
    if (at >= this.timerAt) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    const delay = Math.max(0, at - this.stack.now());
    this.timer = setTimeout(this.fire, Math.ceil(delay));
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    this.timerWakeups++;
    this.stack.poll(this.stack.now());
    this.arm();
  };

  /** Stops reading and timers (connections are abandoned as they are). */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.tun.onPackets(null);
    this.tun.flush();
  }
}
