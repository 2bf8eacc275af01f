// Which worker of a node owns a client packet (node --workers N): the same function as the
// reuseport BPF program in sc/tun/native/udp.c (attach_steering), computed on the inner
// IPv4 packet: a hash of its source address and source port, mod N. The GUE socket of each
// worker counts the packets it gets that this says belong to another worker (must stay 0).
// Pure.

/** Multiplier of the mix (2^32 / golden ratio): one client's ports often share their low bit. */
const MIX = 0x9e3779b1;

/**
 * Worker index for the IPv4 packet at buf[off...] (TCP or UDP: the source port is the first
 * 16 bits after the IPv4 header). Out-of-range reads count as 0, as in BPF; callers pass
 * packets the GUE check already found valid.
 */
export function steerWorker(buf: Uint8Array, off: number, workers: number): number {
  const src =
    ((buf[off + 12]! << 24) | (buf[off + 13]! << 16) | (buf[off + 14]! << 8) | buf[off + 15]!) >>> 0;
  const l4 = off + (buf[off]! & 0x0f) * 4;
  const port = ((buf[l4] ?? 0) << 8) | (buf[l4 + 1] ?? 0);
  return steerClient(src, port, workers);
}

/**
 * Worker index of a client's connection by its address (uint32) and port: where the steering
 * sends its packets. A cloned connection must live on this worker of the clone's node too,
 * since its client's packets reach that node in GUE, steered the same way.
 */
export function steerClient(addr: number, port: number, workers: number): number {
  return (Math.imul((addr ^ port) >>> 0, MIX) >>> 16) % workers;
}
