// sc/tun: TUN devices from Node (see docs/tun.md).
export {
  MAX_PACKET_BYTES,
  PacketBatch,
  type PacketHandler,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TunDevice,
  type TunOpenOptions,
  type TunStats,
  VNET_HDR_LEN,
} from "./tun.js";
export { checkInterfaceName, explainTunError, TunError } from "./errors.js";
export {
  DatagramBatch,
  type DatagramHandler,
  GUE_ENCAP_HEADER_LEN,
  UDP_MAX_PAYLOAD,
  UdpBatchSocket,
  type UdpBatchOptions,
  type UdpBatchStats,
} from "./udp.js";
