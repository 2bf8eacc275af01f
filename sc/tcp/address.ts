// Which IPv4 addresses can be the remote end of a TCP connection. A packet "from" one of
// the others is spoofed or misrouted (RFC 1122 3.2.1.3, RFC 1812 5.3.7 "martian"
// addresses): the stack drops it at input, and imported connection state naming one is
// refused (state.ts).

/** Why `addr` cannot be a unicast TCP peer, or undefined if it can. */
export type ImplausibleAddress = "this-network" | "loopback" | "multicast" | "reserved";

/**
 * Classifies a remote address: 0.0.0.0/8 (this network; only a source while booting, never
 * for TCP), 127.0.0.0/8 (loopback, never on a wire), 224.0.0.0/4 (multicast: TCP is
 * unicast), 240.0.0.0/4 (reserved, including the limited broadcast 255.255.255.255).
 * The stack's own addresses are checked by the caller, which knows them.
 */
export function implausibleRemote(addr: number): ImplausibleAddress | undefined {
  const top = addr >>> 24;
  if (top === 0) return "this-network";
  if (top === 127) return "loopback";
  if (top >= 240) return "reserved";
  if (top >= 224) return "multicast";
  return undefined;
}
