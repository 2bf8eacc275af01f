// Packet formats for the SC stack: checked zero-copy views and parse/emit representations.
// Pure: no I/O. Parsers return WireError values instead of throwing.
export * from "./error.js";
export * from "./checksum.js";
export * from "./addr.js";
export * from "./ipv4.js";
export * from "./tcp.js";
export * from "./udp.js";
export * from "./gue.js";
export * from "./icmp.js";
